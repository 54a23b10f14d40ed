package scheduler

import (
	"testing"

	lua "github.com/yuin/gopher-lua"
)

func TestJSON(t *testing.T) {
	tests := []struct {
		name, lua, want string
	}{
		{"array", `return {1, 2.5, "x"}`, `[1,2.5,"x"]`},
		{"object sorted", `return {b = true, a = false}`, `{"a":false,"b":true}`},
		{"empty table is an object", `return {}`, `{}`},
		{"nested", `return {list = {{n = 1}}, s = "q\"\n"}`, `{"list":[{"n":1}],"s":"q\"\n"}`},
		{"sparse array is an object", `local t = {} t[1] = 1 t[3] = 3 return t`, `{"1":1,"3":3}`},
	}
	L := lua.NewState()
	defer L.Close()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := L.DoString(tc.lua); err != nil {
				t.Fatal(err)
			}
			v := L.Get(-1)
			L.Pop(1)
			gotb, err := EncodeJSON(v)
			got := string(gotb)
			if err != nil || got != tc.want {
				t.Fatalf("encode = %q, %v; want %q", got, err, tc.want)
			}
			back, err := DecodeJSON(L, got)
			if err != nil {
				t.Fatal(err)
			}
			againb, _ := EncodeJSON(back)
			again := string(againb)
			if again != got {
				t.Fatalf("round trip %q → %q", got, again)
			}
		})
	}
	bad := []struct{ name, lua string }{
		{"cycle", `local t = {} t.t = t return t`},
		{"function", `return {f = print}`},
		{"nan", `return 0/0`},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			if err := L.DoString(tc.lua); err != nil {
				t.Fatal(err)
			}
			v := L.Get(-1)
			L.Pop(1)
			if _, err := EncodeJSON(v); err == nil {
				t.Fatal("no error")
			}
		})
	}
	for _, in := range []string{`{"a":`, `[1,]`, `1 2`, ``} {
		if _, err := DecodeJSON(L, in); err == nil {
			t.Errorf("decode %q: no error", in)
		}
	}
}

func FuzzJSONDecode(f *testing.F) {
	for _, s := range []string{`{"a":[1,2,{"b":null}]}`, `"x"`, `[[[]]]`, `{"a":`, `1e400`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		L := lua.NewState()
		defer L.Close()
		v, err := DecodeJSON(L, s)
		if err != nil {
			return
		}
		if _, err := EncodeJSON(v); err != nil {
			// Decoded values are always encodable except ±Inf from huge numbers.
			if n, ok := v.(lua.LNumber); !ok || (float64(n) == float64(n) && n < 1e308 && n > -1e308) {
				t.Fatalf("re-encode of %q failed: %v", s, err)
			}
		}
	})
}
