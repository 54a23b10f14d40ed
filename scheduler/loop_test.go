package scheduler

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"os"
	goruntime "runtime"
	"strings"
	"sync"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// TestMain fails the package if goroutines started by the tests outlive
// them (every Loop's VM goroutine and watchdog must exit on Stop).
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		deadline := time.Now().Add(3 * time.Second)
		leaked := leakedGoroutines()
		for len(leaked) > 0 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
			leaked = leakedGoroutines()
		}
		if len(leaked) > 0 {
			fmt.Fprintf(os.Stderr, "goroutine leak:\n%s\n", strings.Join(leaked, "\n\n"))
			code = 1
		}
	}
	os.Exit(code)
}

// leakedGoroutines lists goroutines of this package still running, leaving
// out the test runner's and the fuzzing engine's own.
func leakedGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:goruntime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "tarpon/scheduler.") && !strings.Contains(g, "scheduler.TestMain") {
			out = append(out, g)
		}
	}
	return out
}

// parkBinding registers a global Lua function wait() that parks the calling
// task and reports it on ch.
func parkBinding(l *Loop, ch chan<- *Task) {
	l.L().SetGlobal("wait", l.L().NewFunction(func(L *lua.LState) int {
		t := Current(L)
		if t == nil {
			L.RaiseError("wait: not in a task")
		}
		if ch != nil {
			ch <- t
		}
		return t.Park(L)
	}))
}

func mustLoad(t testing.TB, l *Loop, src string) *lua.LFunction {
	t.Helper()
	fn, err := l.LoadString(src, "test")
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return fn
}

func TestPostDoManyGoroutines(t *testing.T) {
	l, _ := newTestLoop(t, Config{})
	const workers, per = 8, 500
	last := make([]int, workers) // VM-owned: written only in callbacks
	count := 0
	var fifoErr error
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 1; i <= per; i++ {
				i := i
				ok := l.Post(func(L *lua.LState) {
					if i != last[w]+1 && fifoErr == nil {
						fifoErr = fmt.Errorf("worker %d: got %d after %d", w, i, last[w])
					}
					last[w] = i
					count++
				})
				if !ok {
					t.Error("Post refused on a running loop")
					return
				}
				if i%100 == 0 {
					l.Do(func(*lua.LState) {})
				}
			}
		}(w)
	}
	wg.Wait()
	var got int
	if !l.Do(func(*lua.LState) { got = count }) {
		t.Fatal("Do refused")
	}
	if got != workers*per {
		t.Fatalf("ran %d callbacks, want %d", got, workers*per)
	}
	if fifoErr != nil {
		t.Fatal(fifoErr)
	}
	if s := l.Stats(); s.Posts < workers*per {
		t.Fatalf("Stats.Posts = %d", s.Posts)
	}
}

func TestParkResumeFromGo(t *testing.T) {
	l, _ := newTestLoop(t, Config{})
	parked := make(chan *Task, 1)
	var exitErr error
	exits := 0
	var result string
	l.Do(func(L *lua.LState) {
		parkBinding(l, parked)
		fn := mustLoad(t, l, `local a, b = wait(); result = a .. b; local c = wait(); return c`)
		task, err := l.SpawnWith(func(t *Task) {
			t.SetData("owner")
			t.OnExit(func(err error) { exits++; exitErr = err })
		}, fn)
		if err != nil {
			t.Errorf("Spawn: %v", err)
		}
		if !task.Parked() || task.Done() || task.Data() != "owner" {
			t.Errorf("after Spawn: parked=%v done=%v data=%v", task.Parked(), task.Done(), task.Data())
		}
	})
	task := <-parked
	// Resume from another goroutine goes through Post.
	go l.Post(func(*lua.LState) { l.Resume(task, lua.LString("x"), lua.LNumber(2)) })
	<-parked
	l.Do(func(L *lua.LState) {
		result = L.GetGlobal("result").String()
		if s := l.Stats(); s.TasksParked != 1 || s.TasksLive != 1 {
			t.Errorf("stats while parked: %+v", s)
		}
		l.Resume(task, lua.LNil)
		l.Resume(task, lua.LNil) // no-op: done
		if !task.Done() || task.Parked() {
			t.Errorf("after end: parked=%v done=%v", task.Parked(), task.Done())
		}
		late := 0
		task.OnExit(func(err error) { late++ })
		if late != 1 {
			t.Error("OnExit on an ended task was not called at once")
		}
	})
	if result != "x2" {
		t.Fatalf("result = %q", result)
	}
	if exits != 1 || exitErr != nil {
		t.Fatalf("OnExit called %d times, err %v", exits, exitErr)
	}
	s := l.Stats()
	if s.TasksLive != 0 || s.TasksParked != 0 || s.Finished != 1 || s.Resumes != 2 {
		t.Fatalf("stats: %+v", s)
	}
}

func TestKill(t *testing.T) {
	l, _ := newTestLoop(t, Config{})
	l.Do(func(L *lua.LState) {
		parkBinding(l, nil)
		var errs []error
		t1, _ := l.SpawnWith(func(t *Task) { t.OnExit(func(err error) { errs = append(errs, err) }) },
			mustLoad(t, l, `wait()`))
		l.Kill(t1, "bye")
		l.Kill(t1, "again")
		l.Resume(t1) // no-op
		if len(errs) != 1 || !errors.Is(errs[0], ErrKilled) || !strings.Contains(errs[0].Error(), "bye") {
			t.Errorf("kill parked: %v", errs)
		}
		// Kill of the running task (from its own binding) applies at its next yield.
		L.SetGlobal("killme", L.NewFunction(func(L *lua.LState) int {
			l.Kill(Current(L), "self")
			return 0
		}))
		var err2 error
		t2, _ := l.SpawnWith(func(t *Task) { t.OnExit(func(err error) { err2 = err }) },
			mustLoad(t, l, `killme(); reached = true; wait(); error("resumed")`))
		if !t2.Done() || !errors.Is(err2, ErrKilled) {
			t.Errorf("self kill: done=%v err=%v", t2.Done(), err2)
		}
		if L.GetGlobal("reached") != lua.LTrue {
			t.Error("code before the next yield did not run")
		}
	})
}

func TestTaskErrorHasTraceback(t *testing.T) {
	l, _ := newTestLoop(t, Config{})
	var exitErr error
	l.Do(func(L *lua.LState) {
		fn, err := l.LoadString("local function f()\n  error('kaput')\nend\nlocal function g() f() end\ng()\n", "tb.lua")
		if err != nil {
			t.Fatal(err)
		}
		l.SpawnWith(func(t *Task) { t.OnExit(func(err error) { exitErr = err }) }, fn)
	})
	var te *TaskError
	if !errors.As(exitErr, &te) {
		t.Fatalf("exit error %T %v", exitErr, exitErr)
	}
	msg := te.Error()
	for _, want := range []string{"tb.lua:2", "kaput", "stack traceback", "tb.lua:4"} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in %q", want, msg)
		}
	}
}

func TestCurrentOutsideTask(t *testing.T) {
	l, _ := newTestLoop(t, Config{})
	l.Do(func(L *lua.LState) {
		if Current(L) != nil {
			t.Error("Current on the main state is not nil")
		}
		other := lua.NewState()
		defer other.Close()
		if Current(other) != nil {
			t.Error("Current on a foreign state is not nil")
		}
	})
}

func TestSpawnMaxTasks(t *testing.T) {
	l, _ := newTestLoop(t, Config{MaxTasks: 3})
	l.Do(func(L *lua.LState) {
		parkBinding(l, nil)
		fn := mustLoad(t, l, `wait()`)
		for i := 0; i < 3; i++ {
			if _, err := l.Spawn(fn); err != nil {
				t.Fatalf("spawn %d: %v", i, err)
			}
		}
		if _, err := l.Spawn(fn); !errors.Is(err, ErrTooManyTasks) {
			t.Fatalf("4th spawn: %v", err)
		}
		if _, err := l.Spawn(nil); err == nil {
			t.Fatal("Spawn(nil) accepted")
		}
	})
}

func TestAfterFunc(t *testing.T) {
	l, _ := newTestLoop(t, Config{})
	var mu sync.Mutex
	var order []string
	note := func(s string) func() {
		return func() { mu.Lock(); order = append(order, s); mu.Unlock() }
	}
	start := time.Now()
	var fired time.Duration
	l.Do(func(L *lua.LState) {
		l.AfterFunc(30*time.Millisecond, note("30"))
		l.AfterFunc(10*time.Millisecond, func() { fired = time.Since(start); note("10")() })
		l.AfterFunc(20*time.Millisecond, note("20"))
		stopped := l.AfterFunc(15*time.Millisecond, note("stopped"))
		if !stopped.Stop() || stopped.Stop() {
			t.Error("Stop results")
		}
		moved := l.AfterFunc(time.Hour, note("moved"))
		if !moved.Reset(25*time.Millisecond) || !moved.Armed() {
			t.Error("Reset of an armed timer")
		}
		if s := l.Stats(); s.TimersArmed != 4 {
			t.Errorf("armed = %d", s.TimersArmed)
		}
	})
	waitFor(t, 2*time.Second, "timers", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(order) == 4
	})
	if got := strings.Join(order, ","); got != "10,20,moved,30" {
		t.Fatalf("order %s", got)
	}
	if fired < 10*time.Millisecond {
		t.Fatalf("fired early: %v", fired)
	}
	waitFor(t, time.Second, "stats", func() bool { return l.Stats().TimersArmed == 0 && l.Stats().TimersFired == 4 })
}

func TestAfterFuncCap(t *testing.T) {
	l, logs := newTestLoop(t, Config{MaxTimers: 2})
	l.Do(func(L *lua.LState) {
		a := l.AfterFunc(time.Hour, func() {})
		b := l.AfterFunc(time.Hour, func() {})
		if a == nil || b == nil || l.AfterFunc(time.Hour, func() {}) != nil {
			t.Error("cap not applied")
		}
	})
	if !strings.Contains(logs.String(), "timer cap") {
		t.Error("cap not logged")
	}
}

func TestBudgetStopsPostCallback(t *testing.T) {
	l, _ := newTestLoop(t, Config{Budget: 200 * time.Millisecond})
	var err error
	l.Do(func(L *lua.LState) { err = L.DoString(`while true do end`) })
	if err == nil || !strings.Contains(err.Error(), "budget") {
		t.Fatalf("runaway Post callback: %v", err)
	}
	// The loop is healthy afterwards.
	l.Do(func(L *lua.LState) { err = L.DoString(`x = 1`) })
	if err != nil {
		t.Fatal(err)
	}
}

// TestMemoryGuardStopsHeapBomb: a task that keeps what it allocates
// without yielding is stopped once the live heap grew past MaxSliceGrowth,
// well inside its time budget; the VM then serves the next task, and a
// task that only makes garbage is left alone.
func TestMemoryGuardStopsHeapBomb(t *testing.T) {
	l, _ := newTestLoop(t, Config{Budget: 20 * time.Second, MaxSliceGrowth: 32 << 20})
	ended := make(chan error, 2)
	start := time.Now()
	l.Do(func(L *lua.LState) {
		fn := mustLoad(t, l, `local t = {}
			for i = 1, 1e9 do t[i .. "k"] = string.rep("x", 64) .. i end`)
		if _, err := l.SpawnWith(func(t *Task) { t.OnExit(func(err error) { ended <- err }) }, fn); err != nil {
			t.Errorf("Spawn: %v", err)
		}
	})
	err := <-ended
	if !errors.Is(err, ErrMemory) {
		t.Fatalf("heap bomb ended with %v, want ErrMemory", err)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Fatalf("stopped after %v: the time budget, not the memory guard, would have caught it", d)
	}
	l.Do(func(L *lua.LState) {
		fn := mustLoad(t, l, `local n = 0
			for i = 1, 3e5 do local s = string.rep("y", 64) .. i; n = n + #s end
			return n`)
		if _, err := l.SpawnWith(func(t *Task) { t.OnExit(func(err error) { ended <- err }) }, fn); err != nil {
			t.Errorf("Spawn: %v", err)
		}
	})
	if err := <-ended; err != nil {
		t.Fatalf("a task making only garbage was stopped: %v", err)
	}
	if st := l.Stats(); st.MemoryKills != 1 || st.BudgetKills != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestPanicInCallbackIsContained(t *testing.T) {
	l, logs := newTestLoop(t, Config{})
	l.Do(func(*lua.LState) { panic("oops") })
	ran := false
	l.Do(func(*lua.LState) { ran = true })
	if !ran || !strings.Contains(logs.String(), "oops") {
		t.Fatalf("ran=%v log=%s", ran, logs)
	}
}

func TestStopLifecycle(t *testing.T) {
	t.Run("never started", func(t *testing.T) {
		l, err := New(Config{})
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		if l.Post(func(*lua.LState) {}) || l.Do(func(*lua.LState) {}) {
			t.Fatal("Post/Do accepted after Stop")
		}
	})
	t.Run("parked tasks get sysshutdown", func(t *testing.T) {
		l, err := New(Config{})
		if err != nil {
			t.Fatal(err)
		}
		l.Start()
		var got []string
		l.Do(func(L *lua.LState) {
			parkBinding(l, nil)
			fn := mustLoad(t, l, `local a, b = wait(); return a, b`)
			for i := 0; i < 3; i++ {
				l.SpawnWith(func(t *Task) {
					t.OnExit(func(err error) { got = append(got, fmt.Sprint(err)) })
				}, fn)
			}
			// one that refuses to end: parks again after sysshutdown
			l.SpawnWith(func(t *Task) {
				t.OnExit(func(err error) { got = append(got, fmt.Sprint(err)) })
			}, mustLoad(t, l, `while true do wait() end`))
		})
		if err := l.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := l.Stop(context.Background()); err != nil {
			t.Fatal("second Stop:", err)
		}
		want := "<nil>,<nil>,<nil>," + ErrShutdown.Error()
		if strings.Join(got, ",") != want {
			t.Fatalf("exits %q, want %q", strings.Join(got, ","), want)
		}
		if l.Post(func(*lua.LState) {}) {
			t.Fatal("Post accepted after Stop")
		}
	})
	t.Run("ctx expires", func(t *testing.T) {
		l, _ := New(Config{Budget: 200 * time.Millisecond})
		l.Start()
		l.Post(func(L *lua.LState) { L.DoString(`while true do end`) }) // busy until the budget stops it
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		defer cancel()
		if err := l.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Stop with short ctx: %v", err)
		}
		<-l.Done()
	})
}

func TestNewRejectsNegative(t *testing.T) {
	if _, err := New(Config{MaxTasks: -1}); err == nil {
		t.Fatal("negative MaxTasks accepted")
	}
}

// TestRandomOpsKeepStatsConsistent drives many tasks through random
// Resume/Kill/Spawn sequences (parks inside pcall and user coroutines
// included) and checks the gauges against the tasks' own states.
func TestRandomOpsKeepStatsConsistent(t *testing.T) {
	l, _ := newTestLoop(t, Config{})
	rng := rand.New(rand.NewSource(7))
	bodies := []string{
		`while true do wait() end`,
		`for i = 1, 3 do pcall(wait) end`,
		`local co = coroutine.wrap(function() wait() coroutine.yield(1) wait() end) co() co()`,
		`local ok = pcall(function() wait() error("x") end) wait()`,
		`wait() error("fail")`,
	}
	l.Do(func(L *lua.LState) {
		parkBinding(l, nil)
		var fns []*lua.LFunction
		for _, b := range bodies {
			fns = append(fns, mustLoad(t, l, b))
		}
		var tasks []*Task
		exits := map[*Task]int{}
		for step := 0; step < 3000; step++ {
			switch op := rng.Intn(10); {
			case op < 2 || len(tasks) == 0:
				tk, err := l.SpawnWith(func(tk *Task) {
					tk.OnExit(func(error) { exits[tk]++ })
				}, fns[rng.Intn(len(fns))])
				if err != nil {
					t.Fatal(err)
				}
				tasks = append(tasks, tk)
			case op < 9:
				l.Resume(tasks[rng.Intn(len(tasks))], lua.LNumber(step))
			default:
				l.Kill(tasks[rng.Intn(len(tasks))], "random")
			}
		}
		var live, parked int64
		for _, tk := range tasks {
			if !tk.Done() {
				live++
			} else if exits[tk] != 1 {
				t.Fatalf("ended task saw OnExit %d times", exits[tk])
			}
			if tk.Parked() {
				parked++
			}
		}
		s := l.Stats()
		if s.TasksLive != live || s.TasksParked != parked || int64(len(l.tasks)) != live {
			t.Fatalf("stats %+v, counted live=%d parked=%d map=%d", s, live, parked, len(l.tasks))
		}
		if s.Spawned != uint64(len(tasks)) || s.Finished+s.Failed != uint64(len(tasks))-uint64(live) {
			t.Fatalf("counters %+v for %d tasks, %d live", s, len(tasks), live)
		}
	})
}

// TestParkInRawGenericForIsAnError: code compiled by gopher-lua directly
// (not Loop.Load) keeps OP_TFORLOOP, whose iterator runs in a nested Go
// call; a Park there must fail cleanly instead of corrupting the task.
func TestParkInRawGenericForIsAnError(t *testing.T) {
	l, _ := newTestLoop(t, Config{})
	var exitErr error
	var viaLoad string
	l.Do(func(L *lua.LState) {
		parkBinding(l, nil)
		src := `local out = {}
for v in function(_, i) wait() if i < 2 then return i + 1 end end, nil, 0 do out[#out+1] = v end
return table.concat(out)`
		raw, err := L.LoadString(src)
		if err != nil {
			t.Fatal(err)
		}
		l.SpawnWith(func(tk *Task) { tk.OnExit(func(err error) { exitErr = err }) }, raw)

		// The same source through Loop.Load parks fine.
		L.SetGlobal("src", lua.LString(src))
		tk, err := l.SpawnWith(nil, mustLoad(t, l, `result = assert(loadstring(src))()`))
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 10 && !tk.Done(); i++ {
			l.Resume(tk)
		}
		viaLoad = L.GetGlobal("result").String()
	})
	if exitErr == nil || !strings.Contains(exitErr.Error(), "yield across") {
		t.Fatalf("raw generic for: %v", exitErr)
	}
	if viaLoad != "12" {
		t.Fatalf("generic for via loadstring: %q", viaLoad)
	}
}

func TestDoOnVMGoroutineRunsInline(t *testing.T) {
	l, _ := newTestLoop(t, Config{})
	order := ""
	ok := l.Do(func(*lua.LState) {
		order += "a"
		inner := l.Do(func(*lua.LState) { order += "b" })
		if !inner {
			t.Error("nested Do refused")
		}
		order += "c"
	})
	if !ok || order != "abc" {
		t.Fatalf("ok=%v order=%q", ok, order)
	}
}
