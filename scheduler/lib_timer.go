package scheduler

import (
	"time"

	lua "github.com/yuin/gopher-lua"
)

// ba.timer(f) → timer object (BAS semantics, cosocket-api.md §3.1).
//
// Each expiry runs f as a task. f returning true re-arms the timer with the
// same interval (periodic); returning anything else stops it. f yielding
// (coroutine.yield(v)) suspends its coroutine: v == true keeps the timer
// running and the next expiry resumes f where it left off (state machines);
// any other v stops the timer but keeps the coroutine, so a later :set
// resumes it. f may also park (ba.sleep, socket calls); the decision is then
// made when it returns or yields. An error disables the timer: it is logged
// as "Timer callback failed: …" and later :set/:reset/:cancel raise it.
//
// Anchoring: an armed timer is always kept referenced by the loop, so the
// anchor argument of :set is accepted and needs no further effect. (BAS
// collects unanchored armed timers; we never drop an armed timer silently.)
// An unarmed timer object is collected normally once Lua drops it.

const timerTypeName = "ba.timer"

var timerMethods = map[string]func(*Loop) lua.LGFunction{
	"set":    func(l *Loop) lua.LGFunction { return l.timerSet },
	"reset":  func(l *Loop) lua.LGFunction { return l.timerReset },
	"cancel": func(l *Loop) lua.LGFunction { return l.timerCancel },
}

type luaTimer struct {
	l        *Loop
	fn       *lua.LFunction
	interval time.Duration
	due      int64  // loop clock of the current/last expiry
	t        *Timer // reused runtime timer entry
	task     *Task  // the callback's coroutine while running, parked or suspended
	failed   string // set when the callback failed; the timer is dead
}

func (l *Loop) openTimerType() {
	L := l.l
	mt := L.NewTypeMetatable(timerTypeName)
	idx := L.NewTable()
	for name, mk := range timerMethods {
		idx.RawSetString(name, L.NewFunction(mk(l)))
	}
	mt.RawSetString("__index", idx)
	mt.RawSetString("__close", idx.RawGetString("cancel"))
	mt.RawSetString("__tostring", L.NewFunction(func(L *lua.LState) int {
		L.Push(lua.LString("ba.timer"))
		return 1
	}))
}

func checkTimer(L *lua.LState, n int) *luaTimer {
	ud := L.CheckUserData(n)
	if lt, ok := ud.Value.(*luaTimer); ok {
		if lt.failed != "" {
			L.RaiseError("%s", lt.failed)
		}
		return lt
	}
	L.ArgError(n, "ba.timer expected")
	return nil
}

// baTimer implements ba.timer(f).
func (l *Loop) baTimer(L *lua.LState) int {
	lt := &luaTimer{l: l, fn: L.CheckFunction(1)}
	lt.t = &Timer{l: l, idx: -1, fn: lt.expire}
	ud := L.NewUserData()
	ud.Value = lt
	L.SetMetatable(ud, L.GetTypeMetatable(timerTypeName))
	L.Push(ud)
	return 1
}

// timerSet implements t:set(ms [, anchor [, runNow]]) → true | false | nil.
func (l *Loop) timerSet(L *lua.LState) int {
	lt := checkTimer(L, 1)
	ms := float64(L.CheckNumber(2))
	runNow := L.ToBool(4)
	lt.t.Stop()
	lt.interval = msDuration(ms)
	if runNow {
		lt.due = l.now()
		lt.run()
		if lt.failed != "" {
			L.Push(lua.LNil)
			return 1
		}
		if lt.t.Armed() || (lt.task != nil && lt.task.state != stateSuspended) {
			L.Push(lua.LTrue) // continuing, or still busy (parked) and deciding later
		} else {
			L.Push(lua.LFalse)
		}
		return 1
	}
	lt.due = l.now() + int64(lt.interval)
	if !lt.t.arm(lt.interval) {
		L.Push(lua.LNil)
		return 1
	}
	L.Push(lua.LTrue)
	return 1
}

// timerReset implements t:reset([ms]) → true | nil (not armed).
func (l *Loop) timerReset(L *lua.LState) int {
	lt := checkTimer(L, 1)
	if !lt.t.Armed() {
		L.Push(lua.LNil)
		return 1
	}
	if L.GetTop() >= 2 && L.Get(2) != lua.LNil {
		lt.interval = msDuration(float64(L.CheckNumber(2)))
	}
	lt.t.Stop()
	lt.due = l.now() + int64(lt.interval)
	lt.t.arm(lt.interval)
	L.Push(lua.LTrue)
	return 1
}

// timerCancel implements t:cancel() → true | nil (nothing pending).
func (l *Loop) timerCancel(L *lua.LState) int {
	lt := checkTimer(L, 1)
	if lt.t.Stop() {
		L.Push(lua.LTrue)
	} else {
		L.Push(lua.LNil)
	}
	return 1
}

// expire is the runtime timer callback.
func (lt *luaTimer) expire() { lt.run() }

// run starts or resumes the callback once. The outcome arrives through the
// task hooks (possibly later, if the callback parks).
func (lt *luaTimer) run() {
	l := lt.l
	if lt.failed != "" {
		return
	}
	if lt.task != nil {
		if lt.task.state == stateSuspended {
			l.resumeSuspended(lt.task)
		}
		return // still running or parked: this expiry is absorbed
	}
	_, err := l.spawn(lt.fn, func(t *Task) {
		lt.task = t
		t.data = lt
		t.onYield = lt.yielded
		t.onReturn = lt.returned
		t.OnExit(lt.exited)
	})
	if err != nil {
		lt.fail("Timer callback failed: " + err.Error())
	}
}

func (lt *luaTimer) yielded(_ *Task, vals []lua.LValue) {
	if len(vals) > 0 && vals[0] == lua.LTrue {
		lt.rearm()
	}
}

func (lt *luaTimer) returned(t *Task, rets []lua.LValue) {
	lt.task = nil
	if len(rets) > 0 && rets[0] == lua.LTrue {
		lt.rearm()
	}
}

func (lt *luaTimer) exited(err error) {
	lt.task = nil
	if err != nil {
		lt.fail("Timer callback failed: " + err.Error())
	}
}

func (lt *luaTimer) fail(msg string) {
	lt.failed = msg
	lt.t.Stop()
	lt.l.log.Error(msg)
}

// rearm schedules the next expiry one interval after the previous one
// (no drift), or one interval from now if the callback overran.
func (lt *luaTimer) rearm() {
	if lt.t.Armed() || lt.l.stopping {
		return // set/reset was called from inside the callback, or shutting down
	}
	now := lt.l.now()
	lt.due += int64(lt.interval)
	if lt.due <= now {
		lt.due = now + int64(lt.interval)
	}
	if !lt.t.arm(time.Duration(lt.due - now)) {
		lt.fail("Timer callback failed: " + ErrTooManyTimers.Error())
	}
}
