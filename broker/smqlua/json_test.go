package smqlua

import (
	"encoding/json"
	"reflect"
	"testing"

	lua "github.com/yuin/gopher-lua"

	"github.com/tarponrt/tarpon/scheduler"
)

func TestEncodeJSON(t *testing.T) {
	tests := []struct {
		name, lua, want string
		fails           bool
	}{
		{name: "empty table is an object", lua: `return {}`, want: `{}`},
		{name: "array", lua: `return {1, "two", true}`, want: `[1,"two",true]`},
		{name: "object keys sorted", lua: `return {b = 1, a = {x = 2.5}}`, want: `{"a":{"x":2.5},"b":1}`},
		{name: "holes make an object", lua: `return {[1] = 1, [3] = 3}`, want: `{"1":1,"3":3}`},
		{name: "escapes and UTF-8", lua: `return {s = "a\"b\\\n<é>"}`, want: `{"s":"a\"b\\\n\u003cé\u003e"}`},
		{name: "large integer", lua: `return {4294967295}`, want: `[4294967295]`},
		{name: "function fails", lua: `return {f = print}`, fails: true},
		{name: "NaN fails", lua: `return {0/0}`, fails: true},
		{name: "cycle fails", lua: `local t = {}; t.t = t; return t`, fails: true},
		{name: "table key fails", lua: `return {[{}] = 1}`, fails: true},
	}
	L := lua.NewState()
	defer L.Close()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := L.DoString(tc.lua); err != nil {
				t.Fatal(err)
			}
			tbl := L.Get(-1).(*lua.LTable)
			L.Pop(1)
			got, err := scheduler.EncodeJSON(tbl)
			if tc.fails {
				if err == nil {
					t.Fatalf("want an error, got %s", got)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Fatalf("got %s, %v; want %s", got, err, tc.want)
			}
		})
	}
}

// FuzzJSONRoundTrip: any JSON document decoded into Lua (goToLua, the
// subscribe{json=true} path) encodes back (scheduler.EncodeJSON, the publish path)
// to valid JSON with the same value, except that [] and {} both come back
// as {} (Lua has one empty table).
func FuzzJSONRoundTrip(f *testing.F) {
	for _, s := range []string{`{"a":[1,2,{"b":null}],"c":"é"}`, `[true,false,1.5e300]`, `{"":""}`, `[[[]]]`} {
		f.Add(s)
	}
	L := lua.NewState()
	f.Fuzz(func(t *testing.T, s string) {
		var v any
		if json.Unmarshal([]byte(s), &v) != nil {
			return
		}
		tbl, ok := goToLua(L, v).(*lua.LTable)
		if !ok {
			return // a scalar document: publish only takes tables
		}
		out, err := scheduler.EncodeJSON(tbl)
		if err != nil {
			if depth(v) > 100 {
				return // nesting limit
			}
			t.Fatalf("encode %q: %v", s, err)
		}
		var back any
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("invalid JSON %s from %q: %v", out, s, err)
		}
		if !reflect.DeepEqual(normalize(v), normalize(back)) {
			t.Fatalf("round trip of %q gave %s", s, out)
		}
	})
}

func depth(v any) int {
	d := 0
	switch v := v.(type) {
	case []any:
		for _, e := range v {
			d = max(d, depth(e))
		}
		return d + 1
	case map[string]any:
		for _, e := range v {
			d = max(d, depth(e))
		}
		return d + 1
	}
	return 0
}

// normalize maps what Lua cannot tell apart onto one form: empty arrays
// and objects become an empty object; nulls inside containers vanish
// (a Lua table cannot hold nil), which can also turn an array with a null
// into an object keyed "1", "2"...
func normalize(v any) any {
	switch v := v.(type) {
	case []any:
		m := map[string]any{}
		var arr []any
		dense := true
		for i, e := range v {
			if e == nil {
				dense = false
				continue
			}
			m[json.Number(itoa(i+1)).String()] = normalize(e)
			arr = append(arr, normalize(e))
		}
		if len(m) == 0 {
			return map[string]any{}
		}
		if dense {
			return arr
		}
		return m
	case map[string]any:
		m := map[string]any{}
		for k, e := range v {
			if e != nil {
				m[k] = normalize(e)
			}
		}
		return m
	}
	return v
}

func itoa(i int) string { return lua.LNumber(i).String() }
