package lsp

import (
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// dirType is the userdata type name of directory objects.
const dirType = "lsp.dir"

// Dir is a virtual directory (BAS ba.create.dir, cosocket-api.md §4.4): a
// URL prefix with an optional Lua directory function and, for an app's own
// directory, the app's file service behind it.
//
// Routing: the server tries every inserted directory whose prefix matches,
// longest prefix first, then higher priority, then older. A directory
// function returning false declines; the app service (if any) and then the
// next directory are tried; nothing left is 404.
type Dir struct {
	s       *Server
	name    string // "" for an unnamed directory (mounted at its parent's prefix)
	prio    int
	seq     uint64
	fixed   string // an app's directory: its mount prefix
	service *App   // an app's directory: serves the app's files

	// Guarded by s.mu (the HTTP goroutines read them).
	fn     *lua.LFunction
	parent *Dir

	gen *generation // creating app generation; scheduler goroutine only
}

// prefixLocked returns the URL prefix of an inserted directory. Caller holds
// s.mu.
func (d *Dir) prefixLocked() (string, bool) {
	base := "/"
	for depth, cur := 0, d; ; depth++ {
		if depth > 64 {
			return "", false
		}
		if _, ok := d.s.inserted[cur]; !ok {
			return "", false
		}
		if cur.fixed != "" {
			base = cur.fixed
			break
		}
		if cur.parent == nil {
			break
		}
		cur = cur.parent
	}
	// Walk again from the top down to build the path.
	var names []string
	for cur := d; cur != nil && cur.fixed == ""; cur = cur.parent {
		if cur.name != "" {
			names = append(names, cur.name)
		}
	}
	p := base
	for i := len(names) - 1; i >= 0; i-- {
		p += names[i] + "/"
	}
	return p, true
}

// appGen is the generation whose environment the directory function's
// request environment falls back to. Scheduler goroutine.
func (d *Dir) appGen() *generation {
	if d.service != nil {
		return d.service.gen
	}
	return d.gen
}

func checkDir(L *lua.LState, n int) *Dir {
	ud := L.CheckUserData(n)
	d, ok := ud.Value.(*Dir)
	if !ok {
		L.ArgError(n, "directory expected")
	}
	return d
}

// newDirValue wraps d for Lua. Scheduler goroutine.
func (s *Server) newDirValue(L *lua.LState, d *Dir) *lua.LUserData {
	ud := L.NewUserData()
	ud.Value = d
	ud.Metatable = s.vm.dirMeta
	return ud
}

// createDir implements ba.create.dir([name [, priority]]) for generation g
// (nil: created outside any app). Scheduler goroutine.
func (s *Server) createDir(g *generation) lua.LGFunction {
	return func(L *lua.LState) int {
		name := ""
		if v := L.Get(1); v != lua.LNil {
			name = strings.Trim(L.CheckString(1), "/")
		}
		if strings.Contains(name, "..") {
			L.ArgError(1, "invalid directory name")
		}
		d := &Dir{s: s, name: name, prio: L.OptInt(2, 0), seq: s.dirSeq.Add(1), gen: g}
		if g != nil {
			g.dirs = append(g.dirs, d)
		}
		L.Push(s.newDirValue(L, d))
		return 1
	}
}

func (s *Server) dirMethods() map[string]lua.LGFunction {
	return map[string]lua.LGFunction{
		// dir:setfunc(f): f(_ENV, relpath) handles a request; returning
		// false declines. In Lua 5.1 f also gets the request environment as
		// its function environment, per call. setfunc(nil) removes it.
		"setfunc": func(L *lua.LState) int {
			d := checkDir(L, 1)
			var fn *lua.LFunction
			if L.Get(2) != lua.LNil {
				fn = L.CheckFunction(2)
			}
			s.mu.Lock()
			d.fn = fn
			s.mu.Unlock()
			L.Push(lua.LTrue)
			return 1
		},
		// dir:insert() mounts dir at the server root; parent:insert(child
		// [, ...]) mounts the children under parent (BAS's form). Trailing
		// booleans are accepted and ignored.
		"insert": func(L *lua.LState) int {
			d := checkDir(L, 1)
			var children []*Dir
			for i := 2; i <= L.GetTop(); i++ {
				if _, ok := L.Get(i).(*lua.LUserData); ok {
					children = append(children, checkDir(L, i))
				}
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			if len(children) == 0 {
				if d.fixed == "" {
					d.parent = nil
					s.inserted[d] = struct{}{}
				}
			}
			for _, c := range children {
				if c.fixed != "" {
					L.ArgError(2, "an app directory cannot be moved")
				}
				for p := d; p != nil; p = p.parent {
					if p == c {
						L.ArgError(2, "directory would contain itself")
					}
				}
				c.parent = d
				s.inserted[c] = struct{}{}
			}
			s.rebuildRoutes()
			L.Push(lua.LTrue)
			return 1
		},
		"unlink": func(L *lua.LState) int {
			d := checkDir(L, 1)
			if d.fixed != "" {
				L.Push(lua.LFalse)
				return 1
			}
			s.mu.Lock()
			_, was := s.inserted[d]
			delete(s.inserted, d)
			s.rebuildRoutes()
			s.mu.Unlock()
			L.Push(lua.LBool(was))
			return 1
		},
		"name": func(L *lua.LState) int {
			d := checkDir(L, 1)
			if d.fixed != "" {
				L.Push(lua.LString(strings.Trim(d.fixed, "/")))
			} else if d.name == "" {
				L.Push(lua.LNil)
			} else {
				L.Push(lua.LString(d.name))
			}
			return 1
		},
		"baseuri": func(L *lua.LState) int {
			d := checkDir(L, 1)
			s.mu.Lock()
			p, ok := d.prefixLocked()
			s.mu.Unlock()
			if !ok {
				L.Push(lua.LNil)
				return 1
			}
			L.Push(lua.LString(p))
			return 1
		},
	}
}
