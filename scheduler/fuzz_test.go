package scheduler

import (
	"io"
	"log/slog"
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/ast"
	"github.com/yuin/gopher-lua/parse"
)

// FuzzLoad: the generic-for rewrite never panics, and whatever gopher-lua
// parses still compiles after the rewrite.
func FuzzLoad(f *testing.F) {
	for _, s := range []string{
		`for k, v in pairs(t) do print(k, v) end`,
		`for a in f do break end return a`,
		`local function g() for _, x in ipairs({1}) do for y in h(x) do goto c end ::c:: end end`,
		`x = function() for i in (function() end) do end end`,
		`for a, b, c, d in next, {}, nil do local a = function() return a end end`,
		`repeat for q in z do until q end until true`,
	} {
		f.Add(s)
	}
	l, err := New(Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, src string) {
		if _, err := parse.Parse(strings.NewReader(src), "fuzz"); err != nil {
			return
		}
		if _, err := lua.Compile(mustParse(src), "fuzz"); err != nil {
			return // gopher-lua rejects it too (e.g. a bad goto)
		}
		if _, err := l.LoadString(src, "fuzz"); err != nil {
			t.Fatalf("compiles raw but not rewritten: %v\n%s", err, src)
		}
	})
}

func mustParse(src string) []ast.Stmt {
	chunk, _ := parse.Parse(strings.NewReader(src), "fuzz")
	return chunk
}

// FuzzCheckFormat: checkFormat never panics, and a format it accepts never
// makes string.format produce more than a small multiple of its inputs.
func FuzzCheckFormat(f *testing.F) {
	for _, s := range []string{"%d", "%5.2f", "%-99s", "%999d", "%.100f", "%%", "%", "%*d", "%0#+ 12.34x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, format string) {
		if checkFormat(format) != "" {
			return
		}
		L := lua.NewState()
		defer L.Close()
		L.SetGlobal("f", lua.LString(format))
		_ = L.DoString(`s = string.format(f, 1, 2, 3, 4, 5, 6, 7, 8)`)
		if s, ok := L.GetGlobal("s").(lua.LString); ok && len(s) > 200*(len(format)+10) {
			t.Fatalf("format %q made %d bytes", format, len(s))
		}
	})
}
