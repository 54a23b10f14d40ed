package scheduler

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	goruntime "runtime"
	"sync"
	"sync/atomic"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// Errors reported by the scheduler. Task exit errors wrap one of these so
// callers can branch with errors.Is.
var (
	// ErrStopped is returned when the Loop has been stopped.
	ErrStopped = errors.New("scheduler: loop stopped")
	// ErrTooManyTasks is returned by Spawn when Config.MaxTasks tasks are live.
	ErrTooManyTasks = errors.New("scheduler: too many tasks")
	// ErrTooManyTimers is raised when Config.MaxTimers timers are armed.
	ErrTooManyTimers = errors.New("scheduler: too many timers")
	// ErrBudget ends a task that ran longer than Config.Budget without yielding.
	ErrBudget = errors.New("scheduler: task exceeded its run budget without yielding")
	// ErrMemory ends a task during whose run the live heap grew by more
	// than Config.MaxSliceGrowth.
	ErrMemory = errors.New("scheduler: not enough memory (task grew the heap past its limit without yielding)")
	// ErrInvalidYield ends a task that yielded other than through Park
	// (for example a bare coroutine.yield in the task's own coroutine).
	ErrInvalidYield = errors.New("scheduler: invalid yield")
	// ErrKilled ends a task stopped with Loop.Kill.
	ErrKilled = errors.New("scheduler: task killed")
	// ErrShutdown ends a task that was still live when the loop stopped.
	ErrShutdown = errors.New("scheduler: sysshutdown")
)

// Config configures a Loop. The zero value is ready to use.
type Config struct {
	// Budget is the longest a task (or a Post callback) may run without
	// yielding before it is stopped with ErrBudget. Zero means 1s.
	Budget time.Duration
	// MaxTasks caps live tasks; Spawn past it returns ErrTooManyTasks.
	// Zero means 100000.
	MaxTasks int
	// MaxTimers caps armed timers (AfterFunc, ba.timer, ba.sleep).
	// Zero means 1000000.
	MaxTimers int
	// MaxString caps the result of one call to string.rep, table.concat and
	// friends, so a single builtin call cannot allocate without bound.
	// Zero means 16 MiB.
	MaxString int
	// MaxSliceGrowth stops a task (ErrMemory) when the live Go heap grows
	// by more than this many bytes while it runs without yielding:
	// gopher-lua has no allocation hook, so the budget watchdog measures
	// the heap each tick instead (Budget/4; growth shows after the GC
	// cycles it causes). Zero means 256 MiB; negative turns it off.
	MaxSliceGrowth int64
	// Logger receives task failures and Lua print output. Nil means slog.Default().
	Logger *slog.Logger
}

// Stats is a snapshot of Loop counters. Gauges are current values, the
// rest count since New.
type Stats struct {
	TasksLive     int64  // gauge: tasks spawned and not yet ended (a ba.timer coroutine suspended between expiries is not counted)
	TasksParked   int64  // gauge: tasks suspended in Park
	TimersArmed   int64  // gauge: timers waiting in the heap
	Spawned       uint64 // tasks created
	Resumes       uint64 // Resume calls that resumed a parked task
	Finished      uint64 // tasks that returned normally
	Failed        uint64 // tasks that ended with an error (including kills)
	BudgetKills   uint64 // tasks stopped by the budget watchdog
	MemoryKills   uint64 // tasks stopped for growing the heap past MaxSliceGrowth
	InvalidYields uint64 // tasks ended by an invalid yield
	TimersFired   uint64 // timer callbacks run
	Posts         uint64 // callbacks accepted by Post
}

type counters struct {
	live, parked, timers                                      atomic.Int64
	spawned, resumes, finished, failed, budget, memory, inval atomic.Uint64
	fired, posts                                              atomic.Uint64
}

// Loop owns one gopher-lua VM and the goroutine that runs it.
//
// Goroutines: Post, Do, Stop and Stats may be called from any goroutine.
// Everything else (L, Spawn, Resume, Kill, AfterFunc, Timer methods, Task
// methods) is for the VM goroutine only, that is from inside a Post/Do
// callback, a timer callback, or a Lua binding.
type Loop struct {
	cfg Config
	log *slog.Logger
	l   *lua.LState

	// inbox, guarded by mu.
	mu     sync.Mutex
	inbox  []func(*lua.LState)
	spare  []func(*lua.LState)
	closed bool // no more posts accepted
	// busy says a goroutine owns the VM: the VM goroutine during a turn, or
	// an event loop running one callback through a Runner. Whoever clears
	// it looks at the inbox and pokes the VM goroutine if posts arrived
	// meanwhile, so Post need not wake a goroutine that is already at work.
	busy bool
	// runq holds Runner callbacks that found the VM busy (guarded by mu);
	// the holding Runner runs them before letting go, so deliveries from
	// event loops do not need the VM goroutine (see runner.go).
	runq      []func(*lua.LState)
	runqSpare []func(*lua.LState)
	runqLen   atomic.Int32 // len(runq), for a look without mu
	// runnerG is the goroutine id of the Runner holding the VM (0: none),
	// only so Do can tell it is called there.
	runnerG atomic.Uint64
	// runqT makes the VM goroutine run Runner callbacks left in runq when
	// no Runner came back for them (runqFired) within runqGrace.
	runqT     *time.Timer
	runqArmed atomic.Bool
	runqFired atomic.Bool
	wake      chan struct{}
	done      chan struct{} // closed when the VM goroutine has exited
	started   atomic.Bool
	// vmGoroutine is the VM goroutine's id, only so Do can tell it is
	// called there.
	vmGoroutine atomic.Uint64
	stopReq     sync.Once

	// VM goroutine state.
	tasks       map[*lua.LState]*Task
	cur         *Task // the innermost task being stepped (Current's fast path)
	heap        timerHeap
	armedFor    int64 // deadline the Go timer is armed for; 0 when idle
	wakeT       *time.Timer
	wakeFired   atomic.Bool // wakeT fired since the VM last armed it
	stopping    bool
	turnEnd     []func()       // OnTurnEnd hooks
	sentinel    *lua.LUserData // the value Park yields
	threads     []*lua.LState  // recycled pcall child threads
	entry       *lua.LFunction // root function of pcall child threads
	rawCoCreate lua.LGFunction // gopher-lua's coroutine.create
	base        time.Time      // monotonic origin of deadlines
	pendingJobs int            // ba.thread.run jobs posted, not yet started

	bud budget
	st  counters
}

// loops maps a VM's *lua.Global to its Loop so Current and bindings can find
// the Loop from any thread of the VM.
var loops sync.Map

func loopOf(L *lua.LState) *Loop {
	// Fast path: the scheduler's own threads carry the Loop's budget as
	// their context (see newThread); others (user coroutines with a derived
	// context) go through the map.
	if b, ok := L.Context().(*budget); ok && b.loop != nil {
		return b.loop
	}
	if v, ok := loops.Load(L.G); ok {
		return v.(*Loop)
	}
	return nil
}

// New creates a Loop and its VM with tuned options and the sandboxed
// libraries plus ba.timer, ba.sleep, ba.thread, ba.clock and yield-safe
// pcall/xpcall. The VM goroutine is not started until Start.
func New(cfg Config) (*Loop, error) {
	if cfg.Budget < 0 || cfg.MaxTasks < 0 || cfg.MaxTimers < 0 || cfg.MaxString < 0 {
		return nil, errors.New("scheduler: negative Config value")
	}
	if cfg.Budget == 0 {
		cfg.Budget = time.Second
	}
	if cfg.MaxTasks == 0 {
		cfg.MaxTasks = 100000
	}
	if cfg.MaxTimers == 0 {
		cfg.MaxTimers = 1000000
	}
	if cfg.MaxString == 0 {
		cfg.MaxString = 16 << 20
	}
	if cfg.MaxSliceGrowth == 0 {
		cfg.MaxSliceGrowth = 256 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	L := lua.NewState(lua.Options{
		// Per-coroutine cost is dominated by the registry (16 B a slot) and
		// the call stack. 128 slots (gopher-lua's minimum) growing in steps
		// of 128 and a call stack allocated in 8-frame segments keep a
		// parked task near 4 KiB; 256 slots would add 2 KiB to every task
		// and pcall level. CallStackSize caps Lua call depth at 200 frames.
		CallStackSize:       200,
		RegistrySize:        128,
		RegistryMaxSize:     1 << 18,
		RegistryGrowStep:    128,
		MinimizeStackMemory: true,
		SkipOpenLibs:        true,
	})
	l := &Loop{
		cfg:      cfg,
		log:      cfg.Logger,
		l:        L,
		wake:     make(chan struct{}, 1),
		done:     make(chan struct{}),
		tasks:    make(map[*lua.LState]*Task),
		sentinel: L.NewUserData(),
		base:     time.Now(),
	}
	// 128 slots is only NewState's minimum: threads (tasks, pcall levels)
	// inherit these options without the check, and a parked cosocket
	// usually needs a few dozen slots. Start them at 32 and grow by 64.
	L.Options.RegistrySize = 32
	L.Options.RegistryGrowStep = 64
	l.bud.init(cfg.Budget)
	if cfg.MaxSliceGrowth > 0 {
		l.bud.maxGrowth = uint64(cfg.MaxSliceGrowth)
	}
	l.bud.loop = l
	L.SetContext(&l.bud)
	loops.Store(L.G, l)
	if err := l.openLibs(); err != nil {
		loops.Delete(L.G)
		L.Close()
		return nil, fmt.Errorf("scheduler: opening libraries: %w", err)
	}
	return l, nil
}

// Start starts the VM goroutine and the budget watchdog. Calling it twice
// has no further effect. Any goroutine.
func (l *Loop) Start() {
	if !l.started.CompareAndSwap(false, true) {
		return
	}
	l.wakeT = time.AfterFunc(time.Hour, func() {
		l.wakeFired.Store(true)
		l.poke()
	})
	l.wakeT.Stop()
	l.runqT = time.AfterFunc(time.Hour, func() {
		l.runqArmed.Store(false)
		l.runqFired.Store(true)
		l.poke()
	})
	l.runqT.Stop()
	go l.bud.watch(l.done)
	go l.run()
}

// L returns the VM's main state. VM goroutine only.
func (l *Loop) L() *lua.LState { return l.l }

// Config returns the configuration with defaults filled in. Any goroutine.
func (l *Loop) Config() Config { return l.cfg }

// Logger returns the loop's logger. Any goroutine.
func (l *Loop) Logger() *slog.Logger { return l.log }

// Post queues fn to run on the VM goroutine. Any goroutine, including the VM
// goroutine itself; callbacks run in FIFO order. It never blocks and returns
// false if the loop is stopped (fn will not run).
func (l *Loop) Post(fn func(L *lua.LState)) bool {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return false
	}
	l.inbox = append(l.inbox, fn)
	busy := l.busy
	l.mu.Unlock()
	l.st.posts.Add(1)
	if !busy { // a busy owner sees the post when it releases the VM
		l.poke()
	}
	return true
}

// Do posts fn and waits until it has run. Meant for goroutines other than
// the VM's; called on the VM goroutine it runs fn at once instead of
// deadlocking. It returns false if the loop is stopped or stops before fn
// ran.
func (l *Loop) Do(fn func(L *lua.LState)) bool {
	if id := goroutineID(); id == l.vmGoroutine.Load() || id == l.runnerG.Load() {
		if l.l.IsClosed() {
			return false
		}
		fn(l.l)
		return true
	}
	ran := make(chan struct{})
	if !l.Post(func(L *lua.LState) {
		defer close(ran)
		fn(L)
	}) {
		return false
	}
	select {
	case <-ran:
		return true
	case <-l.done:
		select {
		case <-ran:
			return true
		default:
			return false
		}
	}
}

// poke wakes the VM goroutine. Any goroutine; never blocks.
func (l *Loop) poke() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// Stop resumes every parked task with (nil, "sysshutdown"), runs them until
// they yield or finish, ends what is left with ErrShutdown, then stops the VM
// goroutine and closes the VM. Any goroutine except the VM's. It returns
// ctx.Err() if ctx ends first (shutdown still completes in the background).
func (l *Loop) Stop(ctx context.Context) error {
	l.stopReq.Do(func() {
		if l.started.CompareAndSwap(false, true) {
			// Never started: shut down here; no other goroutine owns the VM.
			l.shutdown()
			loops.Delete(l.l.G)
			l.l.Close()
			close(l.done)
			return
		}
		l.Post(func(*lua.LState) { l.stopping = true })
	})
	select {
	case <-l.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Done returns a channel closed once the VM goroutine has exited. Any goroutine.
func (l *Loop) Done() <-chan struct{} { return l.done }

// Stats returns a snapshot of the counters. Any goroutine.
func (l *Loop) Stats() Stats {
	return Stats{
		TasksLive:     l.st.live.Load(),
		TasksParked:   l.st.parked.Load(),
		TimersArmed:   l.st.timers.Load(),
		Spawned:       l.st.spawned.Load(),
		Resumes:       l.st.resumes.Load(),
		Finished:      l.st.finished.Load(),
		Failed:        l.st.failed.Load(),
		BudgetKills:   l.st.budget.Load(),
		MemoryKills:   l.st.memory.Load(),
		InvalidYields: l.st.inval.Load(),
		TimersFired:   l.st.fired.Load(),
		Posts:         l.st.posts.Load(),
	}
}

// maxFiresPerPass bounds timer callbacks per loop pass so a storm of
// zero-delay timers cannot starve the inbox.
const maxFiresPerPass = 10000

// run is the VM goroutine.
func (l *Loop) run() {
	l.vmGoroutine.Store(goroutineID())
	defer func() {
		loops.Delete(l.l.G)
		l.l.Close()
		l.wakeT.Stop()
		l.runqT.Stop()
		close(l.done)
	}()
	for {
		<-l.wake
		if !l.acquire() {
			continue // a Runner holds the VM; it pokes again when it lets go
		}
		l.drainInbox()
		if l.runqFired.Swap(false) {
			l.runRunq(0)
		}
		l.fireTimers()
		if l.stopping {
			// busy stays set: no Runner may touch the VM any more.
			l.shutdown()
			l.endTurn()
			return
		}
		l.endTurn()
		l.armWake()
		l.release(false)
	}
}

// acquire takes the VM for a turn of the VM goroutine; false if a Runner
// holds it.
func (l *Loop) acquire() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.busy {
		return false
	}
	l.busy = true
	return true
}

// release gives the VM up and pokes the VM goroutine when work arrived while
// it was held: posts (which skipped their poke), a timer that fired, or, after
// a Runner's turn, a timer armed earlier than the runtime timer is set for
// (only the VM goroutine arms it). Runner callbacks still queued are left to
// the next Runner turn, with runqT as the guarantee that they run. Called
// by the owner.
func (l *Loop) release(runner bool) {
	again := l.wakeFired.Load()
	if runner && len(l.heap) > 0 && (l.armedFor == 0 || l.heap[0].when < l.armedFor) {
		again = true
	}
	l.mu.Lock()
	l.busy = false
	if len(l.inbox) > 0 {
		again = true
	}
	left := len(l.runq) > 0
	l.mu.Unlock()
	if again {
		l.poke()
	}
	if left && l.runqArmed.CompareAndSwap(false, true) {
		l.runqT.Reset(runqGrace)
	}
}

// OnTurnEnd registers fn to run on the VM goroutine after every turn (one
// batch of inbox callbacks and due timers), before the loop sleeps. The
// cosocket package flushes its batched writes there, so one turn that
// answers many sockets wakes each event loop once. Call before Start or on
// the VM goroutine.
func (l *Loop) OnTurnEnd(fn func()) {
	l.turnEnd = append(l.turnEnd, fn)
}

func (l *Loop) endTurn() {
	for _, fn := range l.turnEnd {
		fn()
	}
}

// drainInbox runs one batch of posted callbacks. Posts made while the batch
// runs poke the wake channel and are taken on the next pass.
func (l *Loop) drainInbox() {
	l.mu.Lock()
	batch := l.inbox
	l.inbox = l.spare[:0]
	l.mu.Unlock()
	for i, fn := range batch {
		batch[i] = nil
		l.callGo(fn)
	}
	l.mu.Lock()
	if cap(batch) <= 4096 {
		l.spare = batch[:0]
	} else {
		l.spare = nil
	}
	l.mu.Unlock()
}

// callGo runs a Go callback on the VM goroutine under the budget, turning a
// panic into a log line: a broken callback must not take the loop down.
func (l *Loop) callGo(fn func(*lua.LState)) {
	mark := l.bud.begin()
	defer func() {
		l.bud.end(mark)
		if r := recover(); r != nil {
			l.log.Error("scheduler: callback panicked", "panic", fmt.Sprint(r))
		}
	}()
	fn(l.l)
}

// shutdown runs on the VM goroutine (or on the caller of Stop when the loop
// never started). It resumes parked tasks with (nil, "sysshutdown") a few
// rounds, ends the rest, drops timers, and runs the final inbox batch.
func (l *Loop) shutdown() {
	l.stopping = true
	shut := []lua.LValue{lua.LNil, lua.LString("sysshutdown")}
	for round := 0; round < 4; round++ {
		var parked []*Task
		for _, t := range l.tasks {
			if t.state == stateParked {
				parked = append(parked, t)
			}
		}
		if len(parked) == 0 {
			break
		}
		for _, t := range parked {
			l.Resume(t, shut...)
		}
	}
	for _, t := range l.liveTasks() {
		l.finish(t, ErrShutdown)
	}
	for len(l.heap) > 0 {
		l.heap.remove(l.heap[0])
		l.st.timers.Add(-1)
	}
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.drainInbox()
	for l.runRunq(0) {
	}
	for _, t := range l.liveTasks() { // started by the last callbacks
		l.finish(t, ErrShutdown)
	}
}

func (l *Loop) liveTasks() []*Task {
	out := make([]*Task, 0, len(l.tasks))
	for _, t := range l.tasks {
		out = append(out, t)
	}
	return out
}

// now is the loop's monotonic clock in nanoseconds.
func (l *Loop) now() int64 { return int64(time.Since(l.base)) }

// goroutineID parses the current goroutine's id from its stack header
// ("goroutine 123 ["). Used only by Do's misuse check.
func goroutineID() uint64 {
	var buf [32]byte
	b := buf[:goruntime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	var id uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			break
		}
		id = id*10 + uint64(c-'0')
	}
	return id
}

// WriteMetrics writes the loop's figures in the Prometheus text format, for
// an admin endpoint. Any goroutine.
func (l *Loop) WriteMetrics(w io.Writer) {
	st := l.Stats()
	gauge := func(name, help string, v int64) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s gauge\n%s %d\n", name, help, name, name, v)
	}
	counter := func(name, help string, v uint64) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n%s %d\n", name, help, name, name, v)
	}
	gauge("tarpon_lua_tasks", "Lua tasks alive.", st.TasksLive)
	gauge("tarpon_lua_tasks_parked", "Lua tasks waiting for an event.", st.TasksParked)
	gauge("tarpon_lua_timers", "Armed timers.", st.TimersArmed)
	counter("tarpon_lua_tasks_spawned_total", "Lua tasks started.", st.Spawned)
	counter("tarpon_lua_failed_total", "Tasks that ended with an error.", st.Failed)
	counter("tarpon_lua_budget_kills_total", "Tasks stopped for running too long without yielding.", st.BudgetKills)
	counter("tarpon_lua_memory_kills_total", "Tasks stopped for growing the heap past their limit without yielding.", st.MemoryKills)
	counter("tarpon_lua_invalid_yields_total", "Tasks ended by a yield outside the runtime's calls.", st.InvalidYields)
}
