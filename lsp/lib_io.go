package lsp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// The app's io object gives Lua read-only access to the app's files (BAS's
// I/O interface, reduced): io:open(name [, "r"]) → file, io:stat(name) →
// {name, size, mtime, isdir}, io:files(dir) → iterator of name, isdir, mtime,
// size, io:type() → "fs". Names are relative to the app root ("/x" is the
// same as "x"); "..", and anything outside the app, is refused. Files are read
// on the scheduler goroutine: keep them small (the fs is local or embedded).

type appIO struct{ fsys fs.FS }

type luaFile struct {
	r      *bufio.Reader
	f      fs.File
	closed bool
}

// fsName turns a Lua path into an fs.FS name.
func fsName(p string) (string, bool) {
	p = strings.TrimPrefix(path.Clean("/"+p), "/")
	if p == "" {
		p = "."
	}
	return p, fs.ValidPath(p)
}

func checkIO(L *lua.LState) *appIO {
	ud := L.CheckUserData(1)
	a, ok := ud.Value.(*appIO)
	if !ok {
		L.ArgError(1, "io object expected")
	}
	return a
}

func pushErr(L *lua.LState, err error) int {
	L.Push(lua.LNil)
	msg := err.Error()
	switch {
	case errors.Is(err, fs.ErrNotExist):
		msg = "notfound"
	case errors.Is(err, fs.ErrPermission):
		msg = "noaccess"
	}
	L.Push(lua.LString(msg))
	return 2
}

func (s *Server) ioMethods() map[string]lua.LGFunction {
	return map[string]lua.LGFunction{
		"type": func(L *lua.LState) int { L.Push(lua.LString("fs")); return 1 },
		"open": func(L *lua.LState) int {
			a := checkIO(L)
			name, ok := fsName(L.CheckString(2))
			mode := L.OptString(3, "r")
			if !ok || (mode != "r" && mode != "rb") {
				L.Push(lua.LNil)
				L.Push(lua.LString("read-only or invalid name"))
				return 2
			}
			f, err := a.fsys.Open(name)
			if err != nil {
				return pushErr(L, err)
			}
			if st, err := f.Stat(); err == nil && st.IsDir() {
				f.Close()
				L.Push(lua.LNil)
				L.Push(lua.LString("is a directory"))
				return 2
			}
			ud := L.NewUserData()
			ud.Value = &luaFile{f: f, r: bufio.NewReader(f)}
			ud.Metatable = s.vm.fileMeta
			L.Push(ud)
			return 1
		},
		"stat": func(L *lua.LState) int {
			a := checkIO(L)
			name, ok := fsName(L.CheckString(2))
			if !ok {
				return pushErr(L, fs.ErrNotExist)
			}
			st, err := fs.Stat(a.fsys, name)
			if err != nil {
				return pushErr(L, err)
			}
			t := L.NewTable()
			t.RawSetString("name", lua.LString(st.Name()))
			t.RawSetString("size", lua.LNumber(st.Size()))
			t.RawSetString("mtime", lua.LNumber(st.ModTime().Unix()))
			t.RawSetString("isdir", lua.LBool(st.IsDir()))
			t.RawSetString("type", lua.LString(map[bool]string{true: "directory", false: "regular"}[st.IsDir()]))
			L.Push(t)
			return 1
		},
		"files": func(L *lua.LState) int {
			a := checkIO(L)
			name, ok := fsName(L.OptString(2, "."))
			if !ok {
				return pushErr(L, fs.ErrNotExist)
			}
			ents, err := fs.ReadDir(a.fsys, name)
			if err != nil {
				return pushErr(L, err)
			}
			sort.Slice(ents, func(i, j int) bool { return ents[i].Name() < ents[j].Name() })
			i := 0
			L.Push(L.NewFunction(func(L *lua.LState) int {
				if i >= len(ents) {
					L.Push(lua.LNil)
					return 1
				}
				e := ents[i]
				i++
				L.Push(lua.LString(e.Name()))
				L.Push(lua.LBool(e.IsDir()))
				var mt, size int64
				if info, err := e.Info(); err == nil {
					mt, size = info.ModTime().Unix(), info.Size()
				}
				L.Push(lua.LNumber(mt))
				L.Push(lua.LNumber(size))
				return 4
			}))
			return 1
		},
	}
}

func checkFile(L *lua.LState) *luaFile {
	ud := L.CheckUserData(1)
	f, ok := ud.Value.(*luaFile)
	if !ok {
		L.ArgError(1, "file expected")
	}
	if f.closed {
		L.RaiseError("attempt to use a closed file")
	}
	return f
}

// readOne implements one format of file:read: "a"/"*a" all, "l"/"*l" a line
// without its newline, "L"/"*L" with it, or a byte count.
func readOne(L *lua.LState, f *luaFile, format lua.LValue) lua.LValue {
	if n, ok := format.(lua.LNumber); ok {
		buf := make([]byte, int(n))
		k, err := io.ReadFull(f.r, buf)
		if k == 0 && err != nil && int(n) > 0 {
			return lua.LNil
		}
		return lua.LString(buf[:k])
	}
	switch strings.TrimPrefix(lua.LVAsString(format), "*") {
	case "a":
		b, _ := io.ReadAll(f.r)
		return lua.LString(b)
	case "L", "l":
		line, err := f.r.ReadBytes('\n')
		if len(line) == 0 && err != nil {
			return lua.LNil
		}
		if strings.HasPrefix(strings.TrimPrefix(lua.LVAsString(format), "*"), "l") {
			line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		}
		return lua.LString(line)
	}
	L.ArgError(2, "invalid format")
	return lua.LNil
}

var fileMethods = map[string]lua.LGFunction{
	"read": func(L *lua.LState) int {
		f := checkFile(L)
		n := L.GetTop()
		if n < 2 {
			L.Push(readOne(L, f, lua.LString("l")))
			return 1
		}
		for i := 2; i <= n; i++ {
			L.Push(readOne(L, f, L.Get(i)))
		}
		return n - 1
	},
	"lines": func(L *lua.LState) int {
		f := checkFile(L)
		L.Push(L.NewFunction(func(L *lua.LState) int {
			if f.closed {
				L.Push(lua.LNil)
				return 1
			}
			L.Push(readOne(L, f, lua.LString("l")))
			return 1
		}))
		return 1
	},
	"close": func(L *lua.LState) int {
		f := checkFile(L)
		f.closed = true
		f.f.Close()
		L.Push(lua.LTrue)
		return 1
	},
}
