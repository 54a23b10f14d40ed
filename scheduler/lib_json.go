package scheduler

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"

	lua "github.com/yuin/gopher-lua"
)

// maxJSONDepth bounds nesting on encode (cycles) and decode.
const maxJSONDepth = 200

// jsonFuncs is ba.json: encode(value) → string | nil, err; decode(string) →
// value | nil, err. A table whose keys are exactly 1..n (n ≥ 1) is an array;
// any other table, the empty one included, is an object; object keys are
// sorted, so the output is deterministic.
var jsonFuncs = map[string]lua.LGFunction{
	"encode": func(L *lua.LState) int {
		b, err := EncodeJSON(L.Get(1))
		if err != nil {
			L.Push(lua.LNil)
			L.Push(lua.LString(err.Error()))
			return 2
		}
		L.Push(lua.LString(b))
		return 1
	},
	"decode": func(L *lua.LState) int {
		v, err := DecodeJSON(L, L.CheckString(1))
		if err != nil {
			L.Push(lua.LNil)
			L.Push(lua.LString(err.Error()))
			return 2
		}
		L.Push(v)
		return 1
	},
}

// EncodeJSON encodes a Lua value as JSON (the rules of ba.json.encode).
// Functions, userdata, threads, NaN, ±Inf and cycles are errors. Any goroutine
// that may read v (the VM's, for a live table).
func EncodeJSON(v lua.LValue) ([]byte, error) {
	var b bytes.Buffer
	if err := encodeValue(&b, v, 0); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func encodeValue(b *bytes.Buffer, v lua.LValue, depth int) error {
	if depth > maxJSONDepth {
		return errors.New("json: nesting too deep (cycle?)")
	}
	switch v := v.(type) {
	case *lua.LNilType:
		b.WriteString("null")
	case lua.LBool:
		b.WriteString(strconv.FormatBool(bool(v)))
	case lua.LNumber:
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("json: cannot encode %v", f)
		}
		if f == math.Trunc(f) && math.Abs(f) < 1e15 {
			b.WriteString(strconv.FormatInt(int64(f), 10))
		} else {
			b.WriteString(strconv.FormatFloat(f, 'g', -1, 64))
		}
	case lua.LString:
		enc, _ := json.Marshal(string(v))
		b.Write(enc)
	case *lua.LTable:
		n := v.Len()
		count := 0
		v.ForEach(func(lua.LValue, lua.LValue) { count++ })
		if n > 0 && count == n {
			b.WriteByte('[')
			for i := 1; i <= n; i++ {
				if i > 1 {
					b.WriteByte(',')
				}
				if err := encodeValue(b, v.RawGetInt(i), depth+1); err != nil {
					return err
				}
			}
			b.WriteByte(']')
			return nil
		}
		type kv struct {
			k string
			v lua.LValue
		}
		var fields []kv
		var bad error
		v.ForEach(func(k, val lua.LValue) {
			switch k := k.(type) {
			case lua.LString:
				fields = append(fields, kv{string(k), val})
			case lua.LNumber:
				fields = append(fields, kv{k.String(), val})
			default:
				bad = fmt.Errorf("json: cannot encode a %s key", k.Type())
			}
		})
		if bad != nil {
			return bad
		}
		sort.Slice(fields, func(i, j int) bool { return fields[i].k < fields[j].k })
		b.WriteByte('{')
		for i, f := range fields {
			if i > 0 {
				b.WriteByte(',')
			}
			enc, _ := json.Marshal(f.k)
			b.Write(enc)
			b.WriteByte(':')
			if err := encodeValue(b, f.v, depth+1); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	default:
		return fmt.Errorf("json: cannot encode a %s", v.Type())
	}
	return nil
}

// DecodeJSON decodes JSON into Lua values (null → nil). VM goroutine.
func DecodeJSON(L *lua.LState, s string) (lua.LValue, error) {
	d := json.NewDecoder(bytes.NewReader([]byte(s)))
	d.UseNumber()
	v, err := decodeValue(L, d, 0)
	if err != nil {
		return nil, err
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, errors.New("json: trailing data")
	}
	return v, nil
}

func decodeValue(L *lua.LState, d *json.Decoder, depth int) (lua.LValue, error) {
	if depth > maxJSONDepth {
		return nil, errors.New("json: nesting too deep")
	}
	tok, err := d.Token()
	if err != nil {
		return nil, fmt.Errorf("json: %w", err)
	}
	switch t := tok.(type) {
	case nil:
		return lua.LNil, nil
	case bool:
		return lua.LBool(t), nil
	case json.Number:
		f, err := strconv.ParseFloat(string(t), 64)
		if err != nil {
			return nil, fmt.Errorf("json: %w", err)
		}
		return lua.LNumber(f), nil
	case string:
		return lua.LString(t), nil
	case json.Delim:
		tbl := L.NewTable()
		switch t {
		case '[':
			for i := 1; d.More(); i++ {
				v, err := decodeValue(L, d, depth+1)
				if err != nil {
					return nil, err
				}
				tbl.RawSetInt(i, v)
			}
		case '{':
			for d.More() {
				k, err := d.Token()
				if err != nil {
					return nil, fmt.Errorf("json: %w", err)
				}
				key, _ := k.(string)
				v, err := decodeValue(L, d, depth+1)
				if err != nil {
					return nil, err
				}
				tbl.RawSetString(key, v)
			}
		}
		if _, err := d.Token(); err != nil { // closing delimiter
			return nil, fmt.Errorf("json: %w", err)
		}
		return tbl, nil
	}
	return nil, errors.New("json: unexpected token")
}
