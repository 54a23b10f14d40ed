package lsp

import (
	"errors"
	"io/fs"
	"mime"
	"path"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// vmState is the server's Lua-side state. Scheduler goroutine only.
type vmState struct {
	ready       bool
	runner      *lua.LFunction // runs a handler under pcall and reports to done
	done        *lua.LFunction
	preRunner   *lua.LFunction
	appBaProto  *lua.FunctionProto
	reqMeta     *lua.LTable
	globalMeta  *lua.LTable // {__index = _G}
	dirMeta     *lua.LTable
	ioMeta      *lua.LTable
	fileMeta    *lua.LTable
	cookieMeta  *lua.LTable
	sessionMeta *lua.LTable
	sessions    map[string]*session
	sessionOf   map[*lua.LTable]*session
	lastSweep   time.Time
	modules     map[string]lua.LValue // Server.Preload results
}

// runnerSrc is the body of every request task: the handler runs under the
// scheduler's yield-safe pcall, so its error (with the page's line number)
// comes back through done, and its first result says whether a directory
// function declined.
const runnerSrc = `local done, rq, fn = ...
return done(rq, pcall(fn, select(4, ...)))`

// preRunnerSrc runs .preload under pcall.
const preRunnerSrc = `local done, fn = ...
return done(pcall(fn))`

// includeSrc implements response:include and response:forward in Lua, so
// that the included page runs in the same coroutine and may yield.
const includeSrc = `local load, restore = ...
local M = {}
function M.include(rq, path)
  local fn, env, pn, io, pg, app, prev = load(rq, path, false)
  if type(fn) ~= "function" then return fn, env end
  fn(env, pn, io, pg, app)
  restore(rq, prev, false)
  return true
end
function M.forward(rq, path)
  local fn, env, pn, io, pg, app, prev = load(rq, path, true)
  if type(fn) ~= "function" then return fn, env end
  fn(env, pn, io, pg, app)
  restore(rq, prev, true)
  return true
end
return M`

// appBaSrc builds an app's ba: the global ba plus wrappers that record what
// the app starts, so an unload can end it (timers cancelled, ba.thread jobs
// killed, sleeps in a dead app raise "app unloaded"), and ba.create bound to
// the app.
const appBaSrc = `local gba, reg = ...
local ba = setmetatable({}, {__index = gba})
local dead, track = reg.dead, reg.track
if type(gba.timer) == "function" then
  local gtimer = gba.timer
  ba.timer = function(f, ...)
    local t = gtimer(function(...) if dead() then return false end return f(...) end, ...)
    reg.timer(t)
    return t
  end
end
if type(gba.thread) == "table" then
  local th = setmetatable({}, {__index = gba.thread})
  local grun = gba.thread.run
  local function guard(f)
    return function(...) if dead() then return end track() return f(...) end
  end
  if type(grun) == "function" then
    th.run = function(f) return grun(guard(f)) end
  end
  local gcreate = gba.thread.create
  if type(gcreate) == "function" then
    th.create = function(...)
      local o = gcreate(...)
      return setmetatable({run = function(_, f) return o:run(guard(f)) end}, {__index = function(_, k)
        local v = o[k]
        if type(v) == "function" then return function(_, ...) return v(o, ...) end end
        return v
      end})
    end
  end
  ba.thread = th
end
if type(gba.sleep) == "function" then
  local gsleep = gba.sleep
  ba.sleep = function(...)
    local r = gsleep(...)
    if dead() then error("app unloaded", 0) end
    return r
  end
end
ba.create = reg.create
return ba`

// vmInit sets up the server's Lua side on first use. Scheduler goroutine.
func (s *Server) vmInit(L *lua.LState) {
	v := &s.vm
	if v.ready {
		return
	}
	v.ready = true
	mustProto := func(name, src string) *lua.FunctionProto {
		p, err := compileLua(name, src)
		if err != nil {
			panic("lsp: built-in Lua does not compile: " + err.Error())
		}
		return p
	}
	v.runner = L.NewFunctionFromProto(mustProto("=lsp.runner", runnerSrc))
	v.preRunner = L.NewFunctionFromProto(mustProto("=lsp.preload", preRunnerSrc))
	v.appBaProto = mustProto("=lsp.appba", appBaSrc)
	v.done = L.NewFunction(luaDone)
	v.sessions = map[string]*session{}
	v.sessionOf = map[*lua.LTable]*session{}
	v.modules = map[string]lua.LValue{}

	v.globalMeta = L.NewTable()
	v.globalMeta.RawSetString("__index", L.Get(lua.GlobalsIndex))

	methods := L.SetFuncs(L.NewTable(), requestMethods)
	L.Push(L.NewFunctionFromProto(mustProto("=lsp.include", includeSrc)))
	L.Push(L.NewFunction(s.luaLoadPage))
	L.Push(L.NewFunction(luaRestorePage))
	L.Call(2, 1)
	incl := L.Get(-1).(*lua.LTable)
	L.Pop(1)
	methods.RawSetString("include", incl.RawGetString("include"))
	methods.RawSetString("forward", incl.RawGetString("forward"))
	v.reqMeta = newMeta(L, requestType, methods)
	v.dirMeta = newMeta(L, dirType, L.SetFuncs(L.NewTable(), s.dirMethods()))
	v.ioMeta = newMeta(L, "lsp.io", L.SetFuncs(L.NewTable(), s.ioMethods()))
	v.fileMeta = newMeta(L, "lsp.file", L.SetFuncs(L.NewTable(), fileMethods))
	v.cookieMeta = newMeta(L, cookieType, L.SetFuncs(L.NewTable(), cookieMethods))
	v.sessionMeta = L.NewTable()
	v.sessionMeta.RawSetString("__index", s.sessionMethods(L))

	// Globals: ba.create.dir (outside apps: not tied to one)
	// unless the scheduler has one, trace().
	ba, ok := L.GetGlobal("ba").(*lua.LTable)
	if !ok {
		ba = L.NewTable()
		L.SetGlobal("ba", ba)
	}
	create, ok := ba.RawGetString("create").(*lua.LTable)
	if !ok {
		create = L.NewTable()
		ba.RawSetString("create", create)
	}
	create.RawSetString("dir", L.NewFunction(s.createDir(nil)))
	L.SetGlobal("trace", L.NewFunction(s.luaTrace))
	if s.opts.Setup != nil {
		s.opts.Setup(L)
	}
}

// newMeta makes a metatable with __index = methods and a __tostring.
func newMeta(L *lua.LState, typeName string, methods *lua.LTable) *lua.LTable {
	m := L.NewTable()
	m.RawSetString("__index", methods)
	m.RawSetString("__metatable", lua.LString(typeName))
	m.RawSetString("__tostring", L.NewFunction(func(L *lua.LState) int {
		L.Push(lua.LString(typeName))
		return 1
	}))
	return m
}

// luaDone is done(rq, ok, ...) at the end of a request task.
func luaDone(L *lua.LState) int {
	ud, _ := L.Get(1).(*lua.LUserData)
	if ud == nil {
		return 0
	}
	q, ok := ud.Value.(*Request)
	if !ok {
		return 0
	}
	if !L.ToBool(2) {
		var err error
		if q.aborted {
			err = errAbortRequest
		} else {
			err = errors.New(luaToString(L, L.Get(3)))
		}
		q.done(err)
		return 0
	}
	q.declined = L.Get(3) == lua.LFalse
	q.done(nil)
	return 0
}

// luaTrace is trace(...): the arguments, tab-separated, to the log.
func (s *Server) luaTrace(L *lua.LState) int {
	n := L.GetTop()
	parts := make([]string, 0, n)
	for i := 1; i <= n; i++ {
		parts = append(parts, luaToString(L, L.Get(i)))
	}
	where := ""
	if dbg, ok := L.GetStack(1); ok {
		if _, err := L.GetInfo("Sl", dbg, lua.LNil); err == nil && dbg.CurrentLine > 0 {
			where = dbg.Source + ":" + itoa(dbg.CurrentLine)
		}
	}
	s.log.Info(strings.Join(parts, "\t"), "src", "lua", "at", where)
	return 0
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	neg := n < 0
	if neg {
		n = -n
	}
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}

// luaLoadPage is load(rq, path, forward) for include/forward: it resolves
// path ("/x" from the app root, otherwise relative to the running page),
// and either returns the page function and its arguments plus the previous
// page name, or writes a static file and returns true, or returns nil, err.
func (s *Server) luaLoadPage(L *lua.LState) int {
	q := checkRequest(L, true)
	p := L.CheckString(2)
	fwd := L.ToBool(3)
	g := q.gen
	if g == nil || g.dead {
		L.Push(lua.LNil)
		L.Push(lua.LString("no app"))
		return 2
	}
	a := g.app
	rel := p
	if !strings.HasPrefix(p, "/") {
		rel = path.Join(path.Dir(q.page), p)
	}
	name, ok := fsName(rel)
	if !ok || hidden(name) {
		L.Push(lua.LNil)
		L.Push(lua.LString("notfound"))
		return 2
	}
	st, err := fs.Stat(a.fsys, name)
	if err == nil && st.IsDir() {
		err = fs.ErrNotExist
		for _, idx := range []string{"index.lsp", "index.html"} {
			if st2, err2 := fs.Stat(a.fsys, path.Join(name, idx)); err2 == nil && !st2.IsDir() {
				name, err = path.Join(name, idx), nil
				break
			}
		}
	}
	if err != nil {
		L.Push(lua.LNil)
		L.Push(lua.LString("notfound"))
		return 2
	}
	if fwd {
		if q.headerSent {
			L.RaiseError("response:forward: response already committed")
		}
		q.buf.Reset()
		q.committed = false
		q.forwarded = true
	}
	if !strings.HasSuffix(name, ".lsp") {
		b, err := fs.ReadFile(a.fsys, name)
		if err != nil {
			return pushErr(L, err)
		}
		if fwd {
			if ct := mime.TypeByExtension(path.Ext(name)); ct != "" {
				q.header.Set("Content-Type", ct)
			}
		}
		q.writeL(L, string(b))
		if fwd {
			q.committed = true
		}
		L.Push(lua.LTrue)
		return 1
	}
	proto, err := a.pageProto(name)
	if err != nil {
		L.RaiseError("%s", err.Error())
	}
	fn := L.NewFunctionFromProto(proto)
	fn.Env = q.env
	prev := q.page
	q.page = name
	if !fwd {
		q.included++
	}
	L.Push(fn)
	L.Push(q.env)
	L.Push(lua.LString(name))
	L.Push(g.io)
	L.Push(g.pageTable(L, name))
	L.Push(g.env)
	L.Push(lua.LString(prev))
	return 7
}

// luaRestorePage is restore(rq, prev, forward) after an included or
// forwarded page returned.
func luaRestorePage(L *lua.LState) int {
	q := checkRequest(L, false)
	q.page = L.CheckString(2)
	if L.ToBool(3) {
		q.committed = true
	} else if q.included > 0 {
		q.included--
	}
	return 0
}
