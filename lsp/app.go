package lsp

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/tarponrt/tarpon/scheduler"
)

// App is a folder (any fs.FS, so embed.FS works) mounted at a URL prefix:
// .preload runs once in the app's environment, .lua/ holds its private
// modules, .lsp files are executed, other files are served statically, and
// names starting with a dot are never served.
type App struct {
	s      *Server
	prefix string
	name   string
	fsys   fs.FS
	dir    *Dir

	reloadMu sync.Mutex // serialises load, unload and Reload

	mu    sync.Mutex // guards pages and etags (HTTP goroutines)
	pages map[string]*pageEntry
	etags map[string]etagEntry

	gen *generation // current generation; scheduler goroutine only
}

// pageEntry is a compiled page, valid while the file keeps its mtime and size.
type pageEntry struct {
	proto *lua.FunctionProto
	mod   time.Time
	size  int64
}

type etagEntry struct {
	size int64
	tag  string
}

// generation is one load of an app: its environment and everything it
// created, so that an unload can end all of it. Scheduler goroutine only.
type generation struct {
	app     *App
	env     *lua.LTable
	reqMeta *lua.LTable // {__index = env} for request environments
	io      *lua.LUserData
	loaded  *lua.LTable // require cache for .lua/ modules
	pages   map[string]*lua.LTable
	timers  []lua.LValue
	tasks   map[*scheduler.Task]struct{}
	dirs    []*Dir
	dead    bool
}

// Prefix returns the app's mount prefix ("/name/"). Any goroutine.
func (a *App) Prefix() string { return a.prefix }

// Name returns the app's name. Any goroutine.
func (a *App) Name() string { return a.name }

// FS returns the app's file system. Any goroutine.
func (a *App) FS() fs.FS { return a.fsys }

// Reload unloads the app (onunload runs; timers it created are cancelled,
// ba.thread jobs it started are killed, directories it created are
// unlinked, page tables are dropped) and loads it again from its files.
// Any goroutine but the scheduler's.
func (a *App) Reload() error {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	if !a.s.loop.Do(func(L *lua.LState) { a.unloadGen(L) }) {
		return ErrLoopStopped
	}
	a.mu.Lock()
	a.pages = map[string]*pageEntry{}
	a.etags = nil
	a.mu.Unlock()
	return a.loadLocked()
}

func (a *App) load() error {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	return a.loadLocked()
}

// loadLocked creates a new generation, runs .preload as a task and waits
// for it, then makes the app reachable. Caller holds reloadMu; not the
// scheduler goroutine.
func (a *App) loadLocked() error {
	s := a.s
	var proto *lua.FunctionProto
	src, err := fs.ReadFile(a.fsys, ".preload")
	switch {
	case err == nil:
		if proto, err = compileLua(a.chunkName(".preload"), string(src)); err != nil {
			return fmt.Errorf("lsp: %w", err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("lsp: reading .preload: %w", err)
	}
	if a.dir == nil {
		s.mu.Lock()
		a.dir = &Dir{s: s, fixed: a.prefix, service: a, seq: s.dirSeq.Add(1)}
		s.mu.Unlock()
	}
	res := make(chan error, 1)
	report := func(err error) {
		select {
		case res <- err:
		default:
		}
	}
	if !s.loop.Do(func(L *lua.LState) {
		s.vmInit(L)
		g := a.newGeneration(L)
		a.gen = g
		if proto == nil {
			report(nil)
			return
		}
		fn := L.NewFunctionFromProto(proto)
		fn.Env = g.env
		done := L.NewFunction(func(L *lua.LState) int {
			if !L.ToBool(1) {
				report(errors.New(luaToString(L, L.Get(2))))
			} else {
				report(nil)
			}
			return 0
		})
		t, err := s.loop.Spawn(s.vm.preRunner, done, fn)
		if err != nil {
			report(err)
			return
		}
		t.OnExit(func(err error) { report(err) })
		if t.Done() {
			report(errors.New("lsp: .preload ended without a result"))
		}
	}) {
		return ErrLoopStopped
	}
	if err := <-res; err != nil {
		return fmt.Errorf("lsp: %s: %w", a.chunkName(".preload"), err)
	}
	s.mu.Lock()
	s.inserted[a.dir] = struct{}{}
	s.rebuildRoutes()
	s.mu.Unlock()
	s.log.Info("lsp: app loaded", "app", a.name, "prefix", a.prefix)
	return nil
}

// unload makes the app unreachable and ends its generation. Any goroutine
// but the scheduler's.
func (a *App) unload() {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	s := a.s
	s.mu.Lock()
	if a.dir != nil {
		delete(s.inserted, a.dir)
		s.rebuildRoutes()
	}
	s.mu.Unlock()
	s.loop.Do(func(L *lua.LState) { a.unloadGen(L) })
	s.log.Info("lsp: app unloaded", "app", a.name, "prefix", a.prefix)
}

// unloadGen runs onunload and ends everything the current generation
// created. Scheduler goroutine.
func (a *App) unloadGen(L *lua.LState) {
	g := a.gen
	if g == nil {
		return
	}
	a.gen = nil
	s := a.s
	if f, ok := g.env.RawGetString("onunload").(*lua.LFunction); ok {
		if err := L.CallByParam(lua.P{Fn: f, NRet: 0, Protect: true}); err != nil {
			s.log.Error("lsp: onunload failed", "app", a.name, "err", err)
		}
	}
	g.dead = true
	for _, t := range g.timers {
		if cancel := L.GetField(t, "cancel"); cancel.Type() == lua.LTFunction {
			if err := L.CallByParam(lua.P{Fn: cancel, NRet: 0, Protect: true}, t); err != nil {
				s.log.Debug("lsp: timer cancel", "app", a.name, "err", err)
			}
		}
	}
	g.timers = nil
	for t := range g.tasks {
		s.loop.Kill(t, "app unloaded")
	}
	g.tasks = nil
	s.mu.Lock()
	for _, d := range g.dirs {
		delete(s.inserted, d)
		d.fn = nil
	}
	if a.dir != nil {
		a.dir.fn = nil
	}
	s.rebuildRoutes()
	s.mu.Unlock()
	g.dirs = nil
	g.pages = nil
}

// newGeneration builds the app environment: a table falling back to the
// globals, holding app (itself), io, dir, require and an app-bound ba whose
// timer/thread/sleep/create record what the app starts. Scheduler goroutine.
func (a *App) newGeneration(L *lua.LState) *generation {
	s := a.s
	g := &generation{app: a, pages: map[string]*lua.LTable{}, tasks: map[*scheduler.Task]struct{}{}}
	env := L.NewTable()
	env.Metatable = s.vm.globalMeta
	g.env = env
	g.reqMeta = L.NewTable()
	g.reqMeta.RawSetString("__index", env)
	g.loaded = L.NewTable()
	g.io = L.NewUserData()
	g.io.Value = &appIO{fsys: a.fsys}
	g.io.Metatable = s.vm.ioMeta

	reg := L.NewTable()
	reg.RawSetString("dead", L.NewFunction(func(L *lua.LState) int { L.Push(lua.LBool(g.dead)); return 1 }))
	reg.RawSetString("timer", L.NewFunction(func(L *lua.LState) int {
		if !g.dead {
			g.timers = append(g.timers, L.Get(1))
		}
		return 0
	}))
	reg.RawSetString("track", L.NewFunction(func(L *lua.LState) int {
		t := scheduler.Current(L)
		if t == nil || g.dead {
			return 0
		}
		g.tasks[t] = struct{}{}
		t.OnExit(func(error) { delete(g.tasks, t) })
		return 0
	}))
	// ba.create for the app: the global one's other members, dir bound to g.
	create := L.NewTable()
	if gc, ok := L.GetField(L.GetGlobal("ba"), "create").(*lua.LTable); ok {
		gc.ForEach(func(k, v lua.LValue) { create.RawSet(k, v) })
	}
	create.RawSetString("dir", L.NewFunction(s.createDir(g)))
	reg.RawSetString("create", create)
	gba := L.GetGlobal("ba")
	if gba.Type() != lua.LTTable {
		gba = L.NewTable()
	}
	L.Push(L.NewFunctionFromProto(s.vm.appBaProto))
	L.Push(gba)
	L.Push(reg)
	L.Call(2, 1)
	appBa := L.Get(-1)
	L.Pop(1)

	env.RawSetString("app", env)
	env.RawSetString("io", g.io)
	env.RawSetString("dir", s.newDirValue(L, a.dir))
	env.RawSetString("ba", appBa)
	env.RawSetString("require", L.NewFunction(a.require(g)))
	if s.opts.AppSetup != nil {
		s.opts.AppSetup(L, env)
	}
	return g
}

// pageTable returns the persistent page table of name. Scheduler goroutine.
func (g *generation) pageTable(L *lua.LState, name string) *lua.LTable {
	if g.pages == nil {
		g.pages = map[string]*lua.LTable{}
	}
	t := g.pages[name]
	if t == nil {
		t = L.NewTable()
		g.pages[name] = t
	}
	return t
}

// require returns the app's require(name): modules already loaded by this
// generation; Go modules registered with Server.Preload (loaded once per
// VM); the app's .lua/ folder ("a.b" → .lua/a/b.lua, run with the app
// environment); finally the global require, if the sandbox has one.
func (a *App) require(g *generation) lua.LGFunction {
	s := a.s
	return func(L *lua.LState) int {
		name := L.CheckString(1)
		if v := g.loaded.RawGetString(name); v != lua.LNil {
			L.Push(v)
			return 1
		}
		if v, ok := s.vm.modules[name]; ok {
			L.Push(v)
			return 1
		}
		if loader := s.preload(name); loader != nil {
			L.Push(L.NewFunction(loader))
			L.Push(lua.LString(name))
			L.Call(1, 1)
			v := L.Get(-1)
			L.Pop(1)
			if v == lua.LNil {
				v = lua.LTrue
			}
			s.vm.modules[name] = v
			L.Push(v)
			return 1
		}
		file := ".lua/" + strings.ReplaceAll(name, ".", "/") + ".lua"
		if fs.ValidPath(file) && !strings.Contains(name, "/") {
			src, err := fs.ReadFile(a.fsys, file)
			if err == nil {
				proto, err := compileLua(a.chunkName(file), string(src))
				if err != nil {
					L.RaiseError("%s", err.Error())
				}
				fn := L.NewFunctionFromProto(proto)
				fn.Env = g.env
				L.Push(fn)
				L.Push(lua.LString(name))
				L.Call(1, 1)
				v := L.Get(-1)
				L.Pop(1)
				if v == lua.LNil {
					v = lua.LTrue
				}
				g.loaded.RawSetString(name, v)
				L.Push(v)
				return 1
			}
		}
		if greq, ok := L.GetGlobal("require").(*lua.LFunction); ok {
			L.Push(greq)
			L.Push(lua.LString(name))
			L.Call(1, 1)
			return 1
		}
		L.RaiseError("module '%s' not found (looked in %s and registered modules)", name, file)
		return 0
	}
}

func (a *App) chunkName(name string) string {
	if a.name == "" {
		return name
	}
	return a.name + "/" + name
}

// hidden reports whether a slash-separated path has a segment starting with
// a dot (never served).
func hidden(p string) bool {
	for _, seg := range strings.Split(p, "/") {
		if strings.HasPrefix(seg, ".") {
			return true
		}
	}
	return false
}

// serve answers rel (the path below the prefix) from the app's files and
// reports whether it did; false lets the router try the next directory.
// HTTP goroutine.
func (a *App) serve(w http.ResponseWriter, r *http.Request, rel string, qp **Request) bool {
	if hidden(rel) {
		http.NotFound(w, r)
		return true
	}
	name := strings.TrimSuffix(rel, "/")
	if name == "" {
		name = "."
	}
	if !fs.ValidPath(name) {
		http.NotFound(w, r)
		return true
	}
	st, err := fs.Stat(a.fsys, name)
	if err != nil {
		return false
	}
	if st.IsDir() {
		if rel != "" && !strings.HasSuffix(rel, "/") {
			redirectSlash(w, r)
			return true
		}
		found := false
		for _, idx := range []string{"index.lsp", "index.html", "index.htm"} {
			p := path.Join(name, idx)
			if st2, err := fs.Stat(a.fsys, p); err == nil && !st2.IsDir() {
				name, st, found = p, st2, true
				break
			}
		}
		if !found {
			return false
		}
	}
	if strings.HasSuffix(name, ".lsp") {
		a.runPage(w, r, name, qp)
		return true
	}
	a.serveStatic(w, r, name, st)
	return true
}

// runPage executes an .lsp page as a task. HTTP goroutine.
func (a *App) runPage(w http.ResponseWriter, r *http.Request, name string, qp **Request) {
	s := a.s
	proto, err := a.pageProto(name)
	if err != nil {
		s.log.Error("lsp: page compile error", "app", a.name, "page", name, "err", err)
		body := "Internal Server Error"
		if s.opts.Dev {
			body += "\n\n" + err.Error()
		}
		http.Error(w, body, http.StatusInternalServerError)
		return
	}
	q := *qp
	if q == nil {
		var ok bool
		if q, ok = s.newRequest(w, r); !ok {
			return
		}
		*qp = q
	}
	err = s.runHandler(q, func(L *lua.LState) (*lua.LFunction, []lua.LValue, error) {
		g := a.gen
		if g == nil {
			return nil, nil, ErrNotMounted
		}
		env := q.newEnv(L, g)
		q.page = name
		fn := L.NewFunctionFromProto(proto)
		fn.Env = env
		return fn, []lua.LValue{env, lua.LString(name), g.io, g.pageTable(L, name), g.env}, nil
	})
	if err == nil {
		q.declined = false // a page cannot decline
	}
	s.finish(q, err, "page "+a.chunkName(name))
}

// pageProto returns the compiled page, compiling it when the file is new or
// its mtime or size changed. Any goroutine.
func (a *App) pageProto(name string) (*lua.FunctionProto, error) {
	st, err := fs.Stat(a.fsys, name)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	e := a.pages[name]
	a.mu.Unlock()
	if e != nil && e.mod.Equal(st.ModTime()) && e.size == st.Size() {
		return e.proto, nil
	}
	src, err := fs.ReadFile(a.fsys, name)
	if err != nil {
		return nil, err
	}
	proto, err := CompilePage(a.chunkName(name), src)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	a.pages[name] = &pageEntry{proto: proto, mod: st.ModTime(), size: st.Size()}
	a.mu.Unlock()
	return proto, nil
}

// serveStatic serves a file with http.ServeContent (content type, ranges,
// conditional requests) plus an ETag: mtime and size, or a content hash for
// files without a modification time (embed.FS). HTTP goroutine.
func (a *App) serveStatic(w http.ResponseWriter, r *http.Request, name string, st fs.FileInfo) {
	f, err := a.fsys.Open(name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	rs, ok := f.(io.ReadSeeker)
	if !ok {
		b, err := io.ReadAll(f)
		if err != nil {
			http.Error(w, "Internal Server Error", http.StatusInternalServerError)
			return
		}
		rs = bytes.NewReader(b)
	}
	if tag := a.etag(name, st, rs); tag != "" {
		w.Header().Set("ETag", tag)
	}
	http.ServeContent(w, r, path.Base(name), st.ModTime(), rs)
}

func (a *App) etag(name string, st fs.FileInfo, rs io.ReadSeeker) string {
	if mt := st.ModTime(); !mt.IsZero() {
		return fmt.Sprintf(`"%x-%x"`, mt.UnixNano(), st.Size())
	}
	a.mu.Lock()
	e, ok := a.etags[name]
	a.mu.Unlock()
	if ok && e.size == st.Size() {
		return e.tag
	}
	h := sha256.New()
	if _, err := io.Copy(h, rs); err != nil {
		return ""
	}
	if _, err := rs.Seek(0, io.SeekStart); err != nil {
		return ""
	}
	tag := `"` + hex.EncodeToString(h.Sum(nil)[:12]) + `"`
	a.mu.Lock()
	if a.etags == nil {
		a.etags = map[string]etagEntry{}
	}
	a.etags[name] = etagEntry{size: st.Size(), tag: tag}
	a.mu.Unlock()
	return tag
}
