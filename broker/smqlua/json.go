package smqlua

import (
	"encoding/json"
	"fmt"

	lua "github.com/yuin/gopher-lua"
)

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
