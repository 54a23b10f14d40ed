package scheduler

import (
	"errors"
	"reflect"
	"unsafe"

	lua "github.com/yuin/gopher-lua"
)

// Yield-safe pcall/xpcall and coroutine.resume/wrap.
//
// gopher-lua cannot resume a coroutine that yielded inside its own pcall,
// because pcall runs the function in a nested Go call. Here the protected
// function runs as the root of a child coroutine instead; every yield of the
// child (a Park, or a user's coroutine.yield) is re-yielded outward by a
// small Lua continuation, and the values the outer resume delivers are passed
// back down. Continuations must be Lua because a Go function cannot continue
// after it yields; the heavy part (thread reuse, resume, result shaping) is
// Go: pstart/pstep.
//
// Replaced coroutine.resume/wrap pass a Park's yield (the loop's sentinel
// value) through a user coroutine to the scheduler, so ba.sleep works inside
// a user's generator while ordinary yields still reach the user's resume.

const pcallSrc = `
local pstart, pstep, yield, rawresume, rawcreate, sentinel, error, select = ...

local function cont(a, ...)
  if a == true or a == false then return a, ... end
  return cont(pstep(a, yield(...)))
end
local function pcall(f, ...)
  return cont(pstart(f, ...))
end

local function herr(h, ...)
  return false, select(2, pcall(h, ...))
end
local function xcont(h, a, ...)
  if a == true then return true, ... end
  if a == false then return herr(h, ...) end
  return xcont(h, pstep(a, yield(...)))
end
local function xpcall(f, h, ...)
  return xcont(h, pstart(f, ...))
end

local function pass(co, ok, a, ...)
  if ok and a == sentinel then
    return pass(co, rawresume(co, yield(a, ...)))
  end
  return ok, a, ...
end
local function resume(co, ...)
  return pass(co, rawresume(co, ...))
end

local function wrapret(ok, ...)
  if not ok then error((...), 0) end
  return ...
end
local function wrap(f)
  local co = rawcreate(f)
  return function(...) return wrapret(pass(co, rawresume(co, ...))) end
end

return pcall, xpcall, resume, wrap
`

// entrySrc is the root function of a pcall child: the leading true lets Go
// tell "returned nothing" from "returned nil" (LState.Resume pads).
const entrySrc = `return function(f, ...) return true, f(...) end`

// maxPooledThreads bounds the recycled pcall child coroutines.
const maxPooledThreads = 64

// openPcall installs pcall, xpcall, coroutine.create/resume/wrap.
func (l *Loop) openPcall() error {
	L := l.l
	entry, err := l.compileString(entrySrc, "scheduler.entry")
	if err != nil {
		return err
	}
	L.Push(entry)
	L.Call(0, 1)
	l.entry = L.CheckFunction(-1)
	L.Pop(1)

	co := L.GetGlobal("coroutine").(*lua.LTable)
	rawresume := co.RawGetString("resume")
	orig, ok := co.RawGetString("create").(*lua.LFunction)
	if !ok || !orig.IsG {
		return errors.New("coroutine.create is not a Go function")
	}
	l.rawCoCreate = orig.GFunction
	create := L.NewFunction(l.coCreate)
	co.RawSetString("create", create)

	fn, err := l.compileString(pcallSrc, "scheduler.pcall")
	if err != nil {
		return err
	}
	L.Push(fn)
	L.Push(L.NewFunction(l.pstart))
	L.Push(L.NewFunction(l.pstep))
	L.Push(co.RawGetString("yield"))
	L.Push(rawresume)
	L.Push(create)
	L.Push(l.sentinel)
	L.Push(L.GetGlobal("error"))
	L.Push(L.GetGlobal("select"))
	L.Call(8, 4)
	L.SetGlobal("pcall", L.Get(-4))
	L.SetGlobal("xpcall", L.Get(-3))
	co.RawSetString("resume", L.Get(-2))
	co.RawSetString("wrap", L.Get(-1))
	L.Pop(4)
	return nil
}

// coCreate replaces coroutine.create: the new coroutine gets the budget
// context itself instead of a derived child context per coroutine.
func (l *Loop) coCreate(L *lua.LState) int {
	saved := L.RemoveContext()
	defer func() {
		if saved != nil {
			L.SetContext(saved)
		}
	}()
	n := l.rawCoCreate(L)
	if th, ok := L.Get(-1).(*lua.LState); ok {
		th.SetContext(&l.bud)
	}
	return n
}

// getThread returns a pooled or new child coroutine for pcall.
func (l *Loop) getThread() *lua.LState {
	if n := len(l.threads); n > 0 {
		th := l.threads[n-1]
		l.threads[n-1] = nil
		l.threads = l.threads[:n-1]
		return th
	}
	return l.newThread()
}

// putThread recycles a child that returned normally: its call stack is
// empty, so clearing Dead lets LState.Resume start it with a new function.
func (l *Loop) putThread(th *lua.LState) {
	if len(l.threads) >= maxPooledThreads {
		return
	}
	th.Dead = false
	th.Parent = nil
	th.SetTop(0) // drop references to the last call's values
	l.threads = append(l.threads, th)
}

// pstart(f, ...) runs f(...) in a child coroutine. Results:
// true, results... | false, err | co, yielded...  (co: resume with pstep).
func (l *Loop) pstart(L *lua.LState) int {
	top := L.GetTop()
	if top == 0 {
		L.ArgError(1, "value expected")
		return 0
	}
	f := L.Get(1)
	args := make([]lua.LValue, 0, top)
	if _, ok := f.(*lua.LFunction); !ok {
		mf, ok := L.GetMetaField(f, "__call").(*lua.LFunction)
		if !ok {
			L.Push(lua.LFalse)
			L.Push(lua.LString("attempt to call a " + f.Type().String() + " value"))
			return 2
		}
		args = append(args, mf)
	}
	for i := 1; i <= top; i++ {
		args = append(args, L.Get(i))
	}
	return l.presume(L, l.getThread(), l.entry, args)
}

// pstep(co, ...) resumes a child that yielded, with the values the outer
// resume delivered. Same results as pstart.
func (l *Loop) pstep(L *lua.LState) int {
	co := L.CheckThread(1)
	top := L.GetTop()
	args := make([]lua.LValue, 0, top-1)
	for i := 2; i <= top; i++ {
		args = append(args, L.Get(i))
	}
	return l.presume(L, co, nil, args)
}

func (l *Loop) presume(L, co *lua.LState, fn *lua.LFunction, args []lua.LValue) int {
	st, err, rets := L.Resume(co, fn, args...)
	switch st {
	case lua.ResumeOK:
		l.putThread(co)
		for _, v := range rets {
			L.Push(v)
		}
		return len(rets)
	case lua.ResumeYield:
		L.Push(co)
		for _, v := range rets {
			L.Push(v)
		}
		return 1 + len(rets)
	default:
		L.Push(lua.LFalse)
		if ae, ok := err.(*lua.ApiError); ok && ae.Object != nil {
			L.Push(ae.Object)
		} else {
			L.Push(lua.LString(err.Error()))
		}
		return 2
	}
}

// Frame inspection for yieldable. gopher-lua keeps call frames unexported;
// their layout is read once by reflection (and checked), then walked with
// unsafe reads. If the layout is not as expected, the check is skipped.
var frameLayout struct {
	ok             bool
	debugFrame     uintptr
	fn, parent, pc uintptr
	// current is LState.currentFrame's offset (when found), read instead of
	// GetStack(0), which allocates a Debug on every Park.
	current   uintptr
	currentOK bool
}

func init() {
	f, ok := reflect.TypeOf(lua.Debug{}).FieldByName("frame")
	if !ok || f.Type.Kind() != reflect.Pointer || f.Type.Elem().Kind() != reflect.Struct {
		return
	}
	ct := f.Type.Elem()
	fn, ok1 := ct.FieldByName("Fn")
	par, ok2 := ct.FieldByName("Parent")
	pc, ok3 := ct.FieldByName("Pc")
	if !ok1 || !ok2 || !ok3 || fn.Type != reflect.TypeOf((*lua.LFunction)(nil)) ||
		par.Type != f.Type || pc.Type.Kind() != reflect.Int {
		return
	}
	frameLayout.debugFrame, frameLayout.fn, frameLayout.parent, frameLayout.pc = f.Offset, fn.Offset, par.Offset, pc.Offset
	frameLayout.ok = true
	if cur, ok := reflect.TypeOf(lua.LState{}).FieldByName("currentFrame"); ok && cur.Type == f.Type {
		frameLayout.current, frameLayout.currentOK = cur.Offset, true
	}
}

// topFrame returns th's current call frame (what GetStack(0) describes) as an
// unsafe pointer, or nil.
func topFrame(th *lua.LState) unsafe.Pointer {
	if frameLayout.currentOK {
		return *(*unsafe.Pointer)(unsafe.Add(unsafe.Pointer(th), frameLayout.current))
	}
	dbg, ok := th.GetStack(0)
	if !ok {
		return nil
	}
	return *(*unsafe.Pointer)(unsafe.Add(unsafe.Pointer(dbg), frameLayout.debugFrame))
}

// yieldable reports why a Go binding running in L could not yield to the
// scheduler: a yield is only safe when every frame between the binding and
// the task's root was entered by a Lua CALL/TAILCALL in the same VM loop. A
// metamethod, a Go library callback (table.sort, string.gsub) or a generic
// for compiled outside the Loop runs in a nested Go call; yielding there
// would corrupt the coroutine. Returns "" when the yield is safe.
func yieldable(L *lua.LState) string {
	if !frameLayout.ok {
		return ""
	}
	l := loopOf(L)
	for th := L; th != nil; th = th.Parent {
		p := topFrame(th)
		if p == nil {
			break
		}
		first := true
		for ; p != nil; p = *(*unsafe.Pointer)(unsafe.Add(p, frameLayout.parent)) {
			if first { // the binding itself, or the Go resume in an outer thread
				first = false
				continue
			}
			fn := *(**lua.LFunction)(unsafe.Add(p, frameLayout.fn))
			if fn == nil || fn.IsG || fn.Proto == nil {
				return "attempt to yield across a Go call boundary (yielding call made from a Go callback)"
			}
			pc := *(*int)(unsafe.Add(p, frameLayout.pc))
			if pc < 1 || pc > len(fn.Proto.Code) {
				return ""
			}
			if op := int(fn.Proto.Code[pc-1] >> 26); op != lua.OP_CALL && op != lua.OP_TAILCALL {
				return "attempt to yield across a metamethod/iterator boundary (load code with Loop.Load to make generic-for iterators yieldable)"
			}
		}
		if l != nil && (l.cur != nil && l.cur.th == th || l.tasks[th] != nil) {
			break
		}
	}
	return ""
}
