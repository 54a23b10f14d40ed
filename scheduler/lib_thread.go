package scheduler

import (
	lua "github.com/yuin/gopher-lua"
)

// ba.thread (cosocket-api.md §3.2), mapped onto tasks: there is no thread
// pool and no parallel Lua. "Blocking" calls inside a job (ba.sleep, socket
// reads) park the job's task instead of an OS thread.
//
//	ba.thread.run(f)      queue f; jobs start in FIFO order, each as its own
//	                      task, soon after the caller yields or returns;
//	                      returns the number of jobs not yet started.
//	ba.thread.create()    a private thread object; its :run(f) queues f and
//	                      jobs run strictly one after another (the next
//	                      starts when the previous one ends).
//
// Errors in a job are logged ("ba.thread job failed: …"), never raised in
// the caller, as in BAS.

const threadTypeName = "ba.thread"

type serialThread struct {
	l       *Loop
	queue   []*lua.LFunction
	running bool
}

func (l *Loop) openThread() *lua.LTable {
	L := l.l
	mod := L.NewTable()
	mod.RawSetString("run", L.NewFunction(l.threadRun))
	mod.RawSetString("create", L.NewFunction(l.threadCreate))
	mt := L.NewTypeMetatable(threadTypeName)
	idx := L.NewTable()
	idx.RawSetString("run", L.NewFunction(l.serialRun))
	mt.RawSetString("__index", idx)
	return mod
}

// threadRun implements ba.thread.run(f) → pending jobs.
func (l *Loop) threadRun(L *lua.LState) int {
	fn := L.CheckFunction(1)
	l.pendingJobs++
	ok := l.Post(func(*lua.LState) {
		l.pendingJobs--
		l.startJob(fn, nil)
	})
	if !ok {
		l.pendingJobs--
		L.RaiseError("ba.thread.run: %v", ErrStopped)
	}
	L.Push(lua.LNumber(l.pendingJobs))
	return 1
}

// startJob runs fn as a task; done (optional) is called when it ends.
func (l *Loop) startJob(fn *lua.LFunction, done func()) {
	_, err := l.spawn(fn, func(t *Task) {
		t.OnExit(func(err error) {
			if err != nil {
				l.log.Error("ba.thread job failed: " + err.Error())
			}
			if done != nil {
				done()
			}
		})
	})
	if err != nil {
		l.log.Error("ba.thread job not started: " + err.Error())
		if done != nil {
			done()
		}
	}
}

// threadCreate implements ba.thread.create().
func (l *Loop) threadCreate(L *lua.LState) int {
	ud := L.NewUserData()
	ud.Value = &serialThread{l: l}
	L.SetMetatable(ud, L.GetTypeMetatable(threadTypeName))
	L.Push(ud)
	return 1
}

// serialRun implements thread:run(f) → jobs queued or running on this thread.
func (l *Loop) serialRun(L *lua.LState) int {
	ud := L.CheckUserData(1)
	st, ok := ud.Value.(*serialThread)
	if !ok {
		L.ArgError(1, "ba.thread object expected")
		return 0
	}
	st.queue = append(st.queue, L.CheckFunction(2))
	if !st.running {
		st.running = true
		if !l.Post(func(*lua.LState) { st.next() }) {
			L.RaiseError("thread:run: %v", ErrStopped)
		}
	}
	n := len(st.queue)
	L.Push(lua.LNumber(n))
	return 1
}

// next starts the first queued job; the job's end posts the following one
// (posting, not recursing, keeps a long queue off the Go stack).
func (st *serialThread) next() {
	if len(st.queue) == 0 {
		st.running = false
		return
	}
	fn := st.queue[0]
	st.queue[0] = nil
	st.queue = st.queue[1:]
	st.l.startJob(fn, func() {
		if !st.l.Post(func(*lua.LState) { st.next() }) {
			st.running = false
		}
	})
}
