package lsp

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"
)

// runPageSource compiles src as a page and runs it in a bare LState,
// returning what it emitted.
func runPageSource(t *testing.T, name string, src []byte) (string, error) {
	t.Helper()
	proto, err := CompilePage(name, src)
	if err != nil {
		return "", err
	}
	L := lua.NewState()
	defer L.Close()
	var out strings.Builder
	env := L.NewTable()
	emit := L.NewFunction(func(L *lua.LState) int { out.WriteString(L.ToString(1)); return 0 })
	env.RawSetString("_emit", emit)
	env.RawSetString("print", L.NewFunction(func(L *lua.LState) int {
		for i := 1; i <= L.GetTop(); i++ {
			if i > 1 {
				out.WriteByte('\t')
			}
			out.WriteString(L.ToString(i))
		}
		out.WriteByte('\n')
		return 0
	}))
	meta := L.NewTable()
	meta.RawSetString("__index", L.Get(lua.GlobalsIndex))
	env.Metatable = meta
	fn := L.NewFunctionFromProto(proto)
	fn.Env = env
	err = L.CallByParam(lua.P{Fn: fn, NRet: 0, Protect: true}, env, lua.LString(name), lua.LNil, L.NewTable(), L.NewTable())
	return out.String(), err
}

func TestCompileGolden(t *testing.T) {
	pages, err := filepath.Glob("testdata/golden/*.lsp")
	if err != nil || len(pages) == 0 {
		t.Fatalf("no golden pages: %v", err)
	}
	for _, p := range pages {
		name := strings.TrimSuffix(filepath.Base(p), ".lsp")
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(strings.TrimSuffix(p, ".lsp") + ".out")
			if err != nil {
				t.Fatal(err)
			}
			got, err := runPageSource(t, name+".lsp", src)
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			if got != string(want) {
				t.Fatalf("output mismatch\n got: %q\nwant: %q", got, want)
			}
		})
	}
}

func TestCompileBinaryStaticText(t *testing.T) {
	// Every byte value, both CR-LF orders, and bracket look-alikes survive.
	var b strings.Builder
	for i := 0; i < 256; i++ {
		b.WriteByte(byte(i))
	}
	b.WriteString("\n\r\r\n]=]]==]]===]\n")
	text := b.String()
	src := strings.ReplaceAll(text, "<?", "<_") // no tags inside
	got, err := runPageSource(t, "bin.lsp", []byte(src+"<?lsp ?>"))
	if err != nil {
		t.Fatal(err)
	}
	if got != src {
		t.Fatalf("static text changed:\n got %q\nwant %q", got, src)
	}
}

func TestCompileErrorLines(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string // substring of the error
	}{
		{"runtime error line", "a\nb\n<?lsp\nlocal x = 1\nerror('boom')\n?>\n", "err.lsp:5: boom"},
		{"after static lines", "<html>\n\n\n\n<?lsp= nosuch.field ?>\n", "err.lsp:5:"},
		{"after comment block", "<?lsp -- note ?>\n\n<?lsp error('x') ?>", "err.lsp:3: x"},
		{"crlf text", "a\r\nb\r\n<?lsp error('y') ?>", "err.lsp:3: y"},
		{"leading newlines", "\n\n\n<?lsp error('z') ?>", "err.lsp:4: z"},
		{"unterminated tag", "x\n\n<?lsp if true then", "err.lsp:3: unterminated <?lsp tag"},
		{"syntax error", "x\n<?lsp if then ?>", "err.lsp"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runPageSource(t, "err.lsp", []byte(tc.src))
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestTranslateKeepsLines(t *testing.T) {
	src := "a\n<?lsp x = 1\n y = 2 ?>\nb\r\n\n<?= x ?>\n]]\nc"
	code, err := Translate("p.lsp", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Count(code, "\n"), strings.Count(src, "\n"); got != want {
		t.Fatalf("chunk has %d newlines, page %d:\n%s", got, want, code)
	}
}

func FuzzTranslate(f *testing.F) {
	for _, s := range []string{"", "<?lsp ?>", "a]]b<?= 1 ?>\r\n", "<?lsp -- c ?>\nx", "<?xml?><?lsp"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		// Static-only pages must round-trip exactly.
		if strings.Contains(src, "<?") {
			_, _ = Translate("f.lsp", []byte(src))
			return
		}
		got, err := runPageSource(t, "f.lsp", []byte(src))
		if err != nil {
			t.Fatalf("static page failed: %v", err)
		}
		if got != src && strings.TrimSpace(src) != "" {
			t.Fatalf("got %q want %q", got, src)
		}
	})
}
