// Package scheduler runs Lua coroutines ("tasks") for one gopher-lua VM on
// one goroutine: the BAS execution model (one global lock, cooperative
// scheduling, yields only at I/O points) without locks.
//
// # Goroutines
//
// Loop.Start launches the VM goroutine, which runs the *lua.LState, its
// coroutines, tasks and timers, and a watchdog goroutine that enforces
// Config.Budget. Every other goroutine (event loops, HTTP handlers, the
// broker) reaches the VM through Loop.Post (FIFO, never blocks) or Loop.Do
// (posts and waits). Post, Do, Stop, Stats, Done may be called from any
// goroutine; everything else (L, Spawn, SpawnWith, Resume, Kill, AfterFunc,
// Load, Timer and Task methods, Current) only by the VM's owner: inside a
// Post/Do callback, a timer callback, a Runner callback or a Lua binding.
//
// The owner is one goroutine at a time, not always the same one: an event
// loop holding a Runner (runner.go) runs a callback itself when the VM is
// idle and nothing is queued, so a cosocket message is read, answered in Lua
// and written on one thread with no wake-up of the VM goroutine. Ownership
// passes under the inbox mutex (the busy flag): whoever lets the VM go pokes
// the VM goroutine if posts or timers came meanwhile, and Post does not wake
// a VM that is already at work. A Runner that finds the VM busy queues its
// callback for the holder to run before letting go. The budget applies to
// Runner turns as to any other; a Runner whose callback ran long posts for a
// while instead. A binding that could wait for an event loop must not do so
// on a Runner: it checks Loop.OnRunner and continues on the VM goroutine.
//
// # Tasks
//
// A task is a Lua coroutine started with Spawn; it runs at once until its
// first yield or its end (the BAS rule). A Go binding suspends the running
// task with `return t.Park(L)` (t = Current(L)); whoever holds t later calls
// Resume(t, vals...) and the binding returns vals. Parking works inside the
// package's pcall/xpcall (which run the protected function in a child
// coroutine and pass yields outward), inside user coroutines (coroutine.resume
// and wrap pass a Park through to the scheduler), and inside generic-for
// iterators of code compiled with Loop.Load/LoadString or Lua's load and
// loadstring (generic for is rewritten to an explicit loop so the iterator
// call is an ordinary, yieldable call). A Park where yielding is impossible
// (a metamethod, a table.sort comparator, a for loop compiled outside the
// Loop) raises a Lua error instead of corrupting the coroutine. A task that
// yields other than through Park ends with ErrInvalidYield.
//
// Config.Budget bounds how long a task or callback may run without yielding:
// gopher-lua checks the VM's context between instructions and the watchdog
// cancels it, so the running Lua code fails with ErrBudget's message and the
// task ends while the others carry on. Long Go calls are not interrupted;
// the builtins that can allocate without bound in one call are capped
// (Config.MaxString). The same watchdog is the memory guard: it reads the
// live Go heap each tick (Budget/4, at most 50 ms) and stops the running
// slice with ErrMemory once the heap grew by more than
// Config.MaxSliceGrowth since the slice began (gopher-lua has no
// allocation hook, so per-task memory is measured as what one run kept).
//
// Stop resumes every parked task with (nil, "sysshutdown"), ends what is
// left with ErrShutdown, and closes the VM.
//
// # Lua API
//
// Globals are the sandbox of sandbox.go (no io, debug, file loading or
// process control) plus ba.sleep, ba.clock, ba.timer and ba.thread with the
// BAS semantics described in cosocket-api.md §3; lib_*.go say what each
// call does. Other packages add ba.socket and friends to Loop.BA().
//
// # For packages built on it
//
//   - Start a task with SpawnWith when its code needs Task.Data or OnExit on
//     its first run (Spawn runs the task before returning).
//   - A wake-up with a timeout is AfterFunc plus Resume; whichever comes
//     second must see the task is no longer parked for that wait
//     (Task.Parked and Task.ParkSeq), and the winner stops the timer.
//   - Compile Lua with Loop.Load/LoadString, not LState.LoadString, so
//     iterators may park. Do not create threads with LState.NewThread
//     (they escape the budget); use Spawn.
//   - Inside pcall and user coroutines coroutine.running() is that inner
//     coroutine; find the task with Current, which walks outward.
//
// # What it is not
//
// It does no I/O and imports no other project package (cosocket binds
// sockets to tasks on top of it). It is not parallel: one VM, one owner at a
// time.
// It has no memory limit for Lua beyond the caps above, and no scoped file
// access yet. Lua is 5.1 (gopher-lua); BAS's Lua 5.4 code needs porting.
//
// # Files
//
//	loop.go       Config, Loop, New/Start/Stop, the inbox (Post/Do), the VM goroutine, VM ownership, Stats
//	runner.go     Runner: callbacks run as VM turns on another goroutine (an event loop)
//	budget.go     the shared context the watchdog cancels when a slice overruns its time or memory
//	task.go       Task lifecycle (running → parked/suspended → done), Spawn, Park, Resume, Kill, Current
//	timer.go      AfterFunc: deadline min-heap, one time.Timer re-armed to the earliest deadline
//	pcall.go      yield-safe pcall/xpcall, coroutine.create/resume/wrap, the yieldable check
//	compile.go    Load/LoadString: generic-for rewrite; Lua load/loadstring
//	sandbox.go    the libraries opened and what is removed or capped
//	lib_ba.go     the ba table, ba.sleep, ba.clock
//	lib_timer.go  ba.timer objects
//	lib_thread.go ba.thread.run, ba.thread.create
//	lib_json.go   ba.json; EncodeJSON/DecodeJSON for other packages (lsp, smqlua)
//	testdata/*.lua Lua tests, run by lua_test.go
package scheduler
