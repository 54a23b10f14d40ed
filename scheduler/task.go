package scheduler

import (
	"errors"
	"fmt"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

type taskState uint8

const (
	stateRunning   taskState = iota // on the CPU (possibly below a nested resume)
	stateParked                     // suspended in Park; Resume continues it
	stateSuspended                  // suspended by a non-Park yield its owner accepts (ba.timer)
	stateDone
)

// Task is one Lua coroutine run by the Loop. All methods are for the VM
// goroutine only.
type Task struct {
	loop   *Loop
	th     *lua.LState
	state  taskState
	data   any
	onExit func(error)
	// onYield, when set, accepts yields that do not come from Park (the
	// ba.timer protocol); without it such a yield ends the task with
	// ErrInvalidYield.
	onYield func(t *Task, vals []lua.LValue)
	// onReturn, when set, sees the values a task returned (before OnExit).
	onReturn func(t *Task, rets []lua.LValue)
	kill     error  // set by Kill while running: end at the next stop
	wake     *Timer // ba.sleep's timer, stopped when the task resumes
	parkSeq  uint64 // incremented by every Park
	exitErr  error  // why the task ended, once Done
}

// Parked reports whether t is suspended in Park. VM goroutine only.
func (t *Task) Parked() bool { return t.state == stateParked }

// Done reports whether t has ended. VM goroutine only.
func (t *Task) Done() bool { return t.state == stateDone }

// Data returns the owner data set with SetData. VM goroutine only.
func (t *Task) Data() any { return t.data }

// SetData attaches owner data (for example the cosocket object). VM goroutine only.
func (t *Task) SetData(v any) { t.data = v }

// Thread returns the task's own coroutine. VM goroutine only.
func (t *Task) Thread() *lua.LState { return t.th }

// ParkSeq counts the Park calls of t; a wake-up source can remember it to
// ignore a stale wake after the task was resumed by something else.
// VM goroutine only.
func (t *Task) ParkSeq() uint64 { return t.parkSeq }

// OnExit registers fn to be called once on the VM goroutine when the task
// returns (err nil) or fails (err carries the Lua message and traceback) or
// is killed (errors.Is(err, ErrBudget / ErrKilled / ErrShutdown /
// ErrInvalidYield)). Several functions run in registration order. If the task
// has already ended (Spawn runs it at once), fn is called immediately with
// its exit error. VM goroutine only.
func (t *Task) OnExit(fn func(err error)) {
	if fn == nil {
		return
	}
	if t.state == stateDone {
		fn(t.exitErr)
		return
	}
	if prev := t.onExit; prev != nil {
		t.onExit = func(err error) { prev(err); fn(err) }
		return
	}
	t.onExit = fn
}

// Spawn creates a task running fn(args...) in a new coroutine and runs it at
// once until its first yield or its end (the BAS rule), so the task may
// already be Done when Spawn returns. VM goroutine only.
func (l *Loop) Spawn(fn *lua.LFunction, args ...lua.LValue) (*Task, error) {
	return l.spawn(fn, nil, args...)
}

// SpawnWith is Spawn with setup called on the new task before its first
// instruction runs, so OnExit and SetData are in place when the task's code
// (which runs at once) looks for them. VM goroutine only.
func (l *Loop) SpawnWith(setup func(*Task), fn *lua.LFunction, args ...lua.LValue) (*Task, error) {
	return l.spawn(fn, setup, args...)
}

// Err returns why the task ended (nil for a normal return), or nil while it
// is live. VM goroutine only.
func (t *Task) Err() error { return t.exitErr }

// spawn is Spawn with a hook to set up the task (onExit, onYield, data)
// before its first instruction runs.
func (l *Loop) spawn(fn *lua.LFunction, setup func(*Task), args ...lua.LValue) (*Task, error) {
	if fn == nil {
		return nil, errors.New("scheduler: Spawn of a nil function")
	}
	if l.l.IsClosed() {
		return nil, ErrStopped
	}
	if len(l.tasks) >= l.cfg.MaxTasks {
		return nil, ErrTooManyTasks
	}
	t := &Task{loop: l, th: l.newThread()}
	l.tasks[t.th] = t
	l.st.live.Add(1)
	l.st.spawned.Add(1)
	if setup != nil {
		setup(t)
	}
	l.step(t, fn, args)
	return t, nil
}

// newThread makes a coroutine that shares the budget context instead of a
// child context (NewThread on a state with a context would derive one).
func (l *Loop) newThread() *lua.LState {
	ctx := l.l.RemoveContext()
	th, _ := l.l.NewThread()
	l.l.SetContext(ctx)
	th.SetContext(&l.bud)
	return th
}

// Current returns the task whose code is running in L, walking from a pcall
// or user coroutine up to the task's own coroutine; nil when L is not inside
// a task. VM goroutine only.
func Current(L *lua.LState) *Task {
	l := loopOf(L)
	if l == nil {
		return nil
	}
	// Fast path: the innermost task being stepped. A task's thread is
	// resumed from the main state, so no other task's thread lies between
	// L and it.
	if c := l.cur; c != nil {
		for th := L; th != nil; th = th.Parent {
			if th == c.th {
				if c.state == stateRunning {
					return c
				}
				return nil
			}
		}
	}
	for th := L; th != nil; th = th.Parent {
		if t := l.tasks[th]; t != nil {
			if t.state == stateRunning {
				return t
			}
			return nil
		}
	}
	return nil
}

// Park suspends the task; a Go binding does `return t.Park(L)` where L is the
// state passed to the binding. The binding's results are the values later
// given to Resume. It works inside the scheduler's pcall/xpcall, inside user
// coroutines and in generic-for iterators of code loaded by the Loop. Park
// raises a Lua error if t is not the task running in L. VM goroutine only.
func (t *Task) Park(L *lua.LState) int {
	if t.state != stateRunning || Current(L) != t {
		L.RaiseError("scheduler: Park outside its running task")
		return 0
	}
	if err := yieldable(L); err != "" {
		L.RaiseError("%s", err)
		return 0
	}
	t.state = stateParked
	t.parkSeq++
	t.loop.st.parked.Add(1)
	return L.Yield(t.loop.sentinel)
}

// Resume continues a parked task; its Park returns vals. It runs the task
// until its next yield or end before returning. It is a no-op for a task that
// is not parked (running, suspended by a timer yield, or done). VM goroutine
// only; it may be called from inside another task's binding.
func (l *Loop) Resume(t *Task, vals ...lua.LValue) {
	if t == nil || t.state != stateParked || t.loop != l {
		return
	}
	t.state = stateRunning
	l.st.parked.Add(-1)
	l.st.resumes.Add(1)
	if t.wake != nil {
		t.wake.Stop()
		t.wake = nil
	}
	l.step(t, nil, vals)
}

// resumeSuspended continues a task stopped by an accepted non-Park yield.
func (l *Loop) resumeSuspended(t *Task, vals ...lua.LValue) {
	if t.state != stateSuspended {
		return
	}
	t.state = stateRunning
	l.tasks[t.th] = t
	l.st.live.Add(1)
	l.step(t, nil, vals)
}

// Kill ends t; it will not be resumed again and OnExit gets an error wrapping
// ErrKilled with reason. Killing the running task takes effect when it next
// yields or ends. No-op for a finished task. VM goroutine only.
func (l *Loop) Kill(t *Task, reason string) {
	if t == nil || t.state == stateDone {
		return
	}
	err := fmt.Errorf("%w: %s", ErrKilled, reason)
	if t.state == stateRunning {
		t.kill = err
		return
	}
	l.finish(t, err)
}

// step runs t's coroutine (starting fn when fn is non-nil) until it yields
// or ends, and settles the outcome. It is the only place that resumes tasks.
func (l *Loop) step(t *Task, fn *lua.LFunction, args []lua.LValue) {
	saved, savedCur := l.l.G.CurrentThread, l.cur
	l.cur = t
	mark := l.bud.begin()
	st, rets, err := l.safeResume(t.th, fn, args)
	killed := l.bud.end(mark)
	l.l.G.CurrentThread, l.cur = saved, savedCur

	if t.state == stateDone { // finished from inside (e.g. Stop) while running
		return
	}
	switch {
	case killed == ErrMemory:
		l.st.memory.Add(1)
		l.finish(t, fmt.Errorf("%w (%d MiB)", ErrMemory, l.cfg.MaxSliceGrowth>>20))
	case killed != nil:
		l.st.budget.Add(1)
		l.finish(t, fmt.Errorf("%w (%v)", ErrBudget, l.cfg.Budget))
	case st == lua.ResumeOK:
		if t.onReturn != nil && t.kill == nil {
			t.onReturn(t, rets)
		}
		l.finish(t, t.kill)
	case st == lua.ResumeError:
		l.finish(t, taskError(t.th, err))
	case t.kill != nil:
		l.finish(t, t.kill)
	case t.state == stateParked && len(rets) > 0 && rets[0] == l.sentinel:
		// parked; Resume continues it
	default:
		if t.state == stateParked { // Park's yield was swallowed on its way out
			t.state = stateRunning
			l.st.parked.Add(-1)
		}
		if t.onYield != nil {
			// A suspended task is owned by whoever accepted the yield (a
			// ba.timer object) and is collected with it if dropped.
			t.state = stateSuspended
			delete(l.tasks, t.th)
			l.st.live.Add(-1)
			t.onYield(t, rets)
			return
		}
		l.st.inval.Add(1)
		err := fmt.Errorf("%w: a task may only yield through scheduler calls (got coroutine.yield)", ErrInvalidYield)
		l.log.Warn("scheduler: invalid yield ends task", "err", err)
		l.finish(t, err)
	}
}

// safeResume resumes th and converts a Go panic escaping the VM into an
// error: the one recover boundary around LState.Resume.
func (l *Loop) safeResume(th *lua.LState, fn *lua.LFunction, args []lua.LValue) (st lua.ResumeState, rets []lua.LValue, err error) {
	defer func() {
		if r := recover(); r != nil {
			st, rets, err = lua.ResumeError, nil, fmt.Errorf("scheduler: panic in task: %v", r)
		}
	}()
	st, err, rets = l.l.Resume(th, fn, args...)
	return st, rets, err
}

// finish ends t once: bookkeeping, then OnExit.
func (l *Loop) finish(t *Task, err error) {
	if t.state == stateDone {
		return
	}
	switch t.state {
	case stateParked:
		l.st.parked.Add(-1)
		l.st.live.Add(-1)
	case stateSuspended: // already detached
	default:
		l.st.live.Add(-1)
	}
	t.state = stateDone
	t.exitErr = err
	delete(l.tasks, t.th)
	if t.wake != nil {
		t.wake.Stop()
		t.wake = nil
	}
	if err != nil {
		l.st.failed.Add(1)
	} else {
		l.st.finished.Add(1)
	}
	if fn := t.onExit; fn != nil {
		t.onExit = nil
		func() {
			defer func() {
				if r := recover(); r != nil {
					l.log.Error("scheduler: OnExit panicked", "panic", fmt.Sprint(r))
				}
			}()
			fn(err)
		}()
	}
}

// TaskError is the error a task that failed in Lua exits with.
type TaskError struct {
	Value     lua.LValue // the error value as raised
	Traceback string     // "stack traceback:" lines of the frames left on the coroutine
}

func (e *TaskError) Error() string {
	if e.Traceback == "" {
		return lua.LVAsString(e.Value)
	}
	return lua.LVAsString(e.Value) + "\n" + e.Traceback
}

// taskError builds a TaskError from a failed resume. The raising frame is
// already popped (its position is in the message); the callers remain.
func taskError(th *lua.LState, err error) error {
	var v lua.LValue = lua.LString(err.Error())
	var ae *lua.ApiError
	if errors.As(err, &ae) && ae.Object != nil {
		v = ae.Object
	}
	if v.Type() != lua.LTString && v.Type() != lua.LTNumber {
		v = lua.LString(v.String())
	}
	return &TaskError{Value: v, Traceback: traceback(th)}
}

func traceback(th *lua.LState) (tb string) {
	defer func() {
		if recover() != nil { // a dead coroutine's frames are best effort
			tb = ""
		}
	}()
	var b strings.Builder
	for level := 0; level < 20; level++ {
		dbg, ok := th.GetStack(level)
		if !ok {
			break
		}
		if _, err := th.GetInfo("Sl", dbg, lua.LNil); err != nil {
			break
		}
		if b.Len() == 0 {
			b.WriteString("stack traceback:")
		}
		if dbg.CurrentLine > 0 {
			fmt.Fprintf(&b, "\n\t%s:%d", dbg.Source, dbg.CurrentLine)
		} else {
			fmt.Fprintf(&b, "\n\t%s", dbg.Source)
		}
	}
	return b.String()
}
