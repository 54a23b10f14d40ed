package scheduler

import (
	"time"

	lua "github.com/yuin/gopher-lua"
)

// The global table ba: ba.sleep, ba.clock here; ba.timer in lib_timer.go,
// ba.thread in lib_thread.go. Other packages add their fields (ba.socket)
// to the same table with BA.

var baFuncs = map[string]func(l *Loop) lua.LGFunction{
	"sleep": func(l *Loop) lua.LGFunction { return l.baSleep },
	"clock": func(l *Loop) lua.LGFunction { return l.baClock },
	"timer": func(l *Loop) lua.LGFunction { return l.baTimer },
}

// openBa creates the global ba table.
func (l *Loop) openBa() {
	L := l.l
	ba := L.NewTable()
	for name, mk := range baFuncs {
		ba.RawSetString(name, L.NewFunction(mk(l)))
	}
	ba.RawSetString("thread", l.openThread())
	ba.RawSetString("json", L.SetFuncs(L.NewTable(), jsonFuncs))
	L.SetGlobal("ba", ba)
	l.openTimerType()
}

// BA returns the global ba table so other packages can add to it
// (ba.socket). VM goroutine only.
func (l *Loop) BA() *lua.LTable {
	if t, ok := l.l.GetGlobal("ba").(*lua.LTable); ok {
		return t
	}
	t := l.l.NewTable()
	l.l.SetGlobal("ba", t)
	return t
}

// baSleep implements ba.sleep(ms): parks the calling task for ms
// milliseconds; the VM keeps running other tasks. It returns nothing, or
// (nil, "sysshutdown") when the loop stops during the sleep. Outside a task
// it raises an error.
func (l *Loop) baSleep(L *lua.LState) int {
	ms := float64(L.CheckNumber(1))
	t := Current(L)
	if t == nil {
		L.RaiseError("ba.sleep: not inside a task (use it in ba.thread.run jobs, timers, cosockets or requests)")
		return 0
	}
	if len(l.heap) >= l.cfg.MaxTimers {
		L.RaiseError("ba.sleep: %v (%d armed)", ErrTooManyTimers, l.cfg.MaxTimers)
		return 0
	}
	n := t.Park(L) // raises before parking if the task cannot yield here
	var tm *Timer
	tm = l.AfterFunc(msDuration(ms), func() {
		if t.wake == tm {
			l.Resume(t)
		}
	})
	t.wake = tm
	return n
}

// baClock implements ba.clock(): milliseconds on a monotonic clock.
func (l *Loop) baClock(L *lua.LState) int {
	L.Push(lua.LNumber(time.Since(l.base) / time.Millisecond))
	return 1
}

// maxMs caps Lua millisecond arguments (about 31 years) so they convert to
// a time.Duration without overflow.
const maxMs = 1e12

func msDuration(ms float64) time.Duration {
	if ms < 0 || ms != ms {
		return 0
	}
	if ms > maxMs {
		ms = maxMs
	}
	return time.Duration(ms * float64(time.Millisecond))
}
