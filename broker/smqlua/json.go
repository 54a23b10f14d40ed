package smqlua

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"

	lua "github.com/yuin/gopher-lua"
)

// encodeJSON encodes a Lua table for publish (BAS: table → JSON). A table
// whose keys are exactly 1..n (n ≥ 1) is an array, any other table an
// object (non-string keys are converted with tostring rules); an empty
// table is {}. Functions, userdata and threads are errors, as are NaN,
// ±Inf and cycles. Object keys are sorted so the output is deterministic.
func encodeJSON(t *lua.LTable) ([]byte, error) {
	return appendJSON(nil, t, 0)
}

func appendJSON(b []byte, v lua.LValue, depth int) ([]byte, error) {
	if depth > 100 {
		return nil, errCycle
	}
	switch v := v.(type) {
	case *lua.LNilType:
		return append(b, "null"...), nil
	case lua.LBool:
		return strconv.AppendBool(b, bool(v)), nil
	case lua.LNumber:
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("cannot encode %v as JSON", f)
		}
		if f == math.Trunc(f) && math.Abs(f) < 1e15 {
			return strconv.AppendInt(b, int64(f), 10), nil
		}
		return strconv.AppendFloat(b, f, 'g', -1, 64), nil
	case lua.LString:
		return appendJSONString(b, string(v)), nil
	case *lua.LTable:
		n := v.Len()
		count := 0
		v.ForEach(func(lua.LValue, lua.LValue) { count++ })
		if n > 0 && count == n {
			b = append(b, '[')
			for i := 1; i <= n; i++ {
				if i > 1 {
					b = append(b, ',')
				}
				var err error
				if b, err = appendJSON(b, v.RawGetInt(i), depth+1); err != nil {
					return nil, err
				}
			}
			return append(b, ']'), nil
		}
		type kv struct {
			k string
			v lua.LValue
		}
		var kvs []kv
		var bad error
		v.ForEach(func(k, val lua.LValue) {
			switch k := k.(type) {
			case lua.LString:
				kvs = append(kvs, kv{string(k), val})
			case lua.LNumber:
				kvs = append(kvs, kv{k.String(), val})
			case lua.LBool:
				kvs = append(kvs, kv{k.String(), val})
			default:
				bad = fmt.Errorf("cannot encode a %s key as JSON", k.Type())
			}
		})
		if bad != nil {
			return nil, bad
		}
		sort.Slice(kvs, func(i, j int) bool { return kvs[i].k < kvs[j].k })
		b = append(b, '{')
		for i, e := range kvs {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, e.k)
			b = append(b, ':')
			var err error
			if b, err = appendJSON(b, e.v, depth+1); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	}
	return nil, fmt.Errorf("cannot encode a %s as JSON", v.Type())
}

func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always marshals; invalid UTF-8 becomes U+FFFD
	return append(b, q...)
}

// goToLua converts a value decoded by encoding/json into Lua: objects and
// arrays become tables, null becomes nil. VM goroutine only.
func goToLua(L *lua.LState, v any) lua.LValue {
	switch v := v.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(v)
	case float64:
		return lua.LNumber(v)
	case json.Number:
		f, _ := v.Float64()
		return lua.LNumber(f)
	case string:
		return lua.LString(v)
	case []any:
		t := L.CreateTable(len(v), 0)
		for i, e := range v {
			t.RawSetInt(i+1, goToLua(L, e))
		}
		return t
	case map[string]any:
		t := L.CreateTable(0, len(v))
		for k, e := range v {
			t.RawSetString(k, goToLua(L, e))
		}
		return t
	}
	return lua.LString(fmt.Sprint(v))
}
