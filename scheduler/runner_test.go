package scheduler

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// startedLoop returns a started Loop whose VM goroutine is running (a Runner
// posts until then), stopped at cleanup.
func startedLoop(t *testing.T, cfg Config) *Loop {
	t.Helper()
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := l.Stop(ctx); err != nil {
			t.Error(err)
		}
	})
	waitFor(t, 5*time.Second, "VM goroutine running", func() bool { return l.vmGoroutine.Load() != 0 })
	waitIdle(t, l)
	return l
}

// waitIdle waits until no goroutine holds l's VM (the VM goroutine finishes
// its turn after the callback a Do waited for).
func waitIdle(t *testing.T, l *Loop) {
	t.Helper()
	waitFor(t, 5*time.Second, "VM idle", func() bool { l.mu.Lock(); defer l.mu.Unlock(); return !l.busy })
}

func TestRunner(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, l *Loop)
	}{
		{"runs at once on the caller when idle", func(t *testing.T, l *Loop) {
			r := l.NewRunner()
			var ran, onRunner bool
			if !r.Run(func(*lua.LState) { ran, onRunner = true, l.OnRunner() }) {
				t.Fatal("Run returned false")
			}
			if !ran || !onRunner {
				t.Fatalf("ran=%v onRunner=%v, want both true", ran, onRunner)
			}
			var onVM atomic.Bool
			l.Do(func(*lua.LState) { onVM.Store(!l.OnRunner()) })
			if !onVM.Load() {
				t.Fatal("OnRunner true on the VM goroutine")
			}
		}},
		{"queues while the VM goroutine is busy and the queue still runs", func(t *testing.T, l *Loop) {
			hold, held := make(chan struct{}), make(chan struct{})
			l.Post(func(*lua.LState) { close(held); <-hold })
			<-held
			var ran, onRunner atomic.Bool
			l.NewRunner().Run(func(*lua.LState) { onRunner.Store(l.OnRunner()); ran.Store(true) })
			if ran.Load() {
				t.Fatal("ran while the VM was held")
			}
			close(hold)
			// No Runner comes back: the VM goroutine runs it after runqGrace.
			waitFor(t, 5*time.Second, "queued callback", ran.Load)
			if onRunner.Load() {
				t.Fatal("a queued callback nobody came back for ran on a Runner")
			}
		}},
		{"a Runner turn runs what others queued meanwhile", func(t *testing.T, l *Loop) {
			queued, ranB := make(chan struct{}), make(chan bool, 1)
			l.NewRunner().Run(func(*lua.LState) {
				go func() {
					// B's own Runner (its goroutine) finds the VM held by A.
					b := l.NewRunner()
					b.Run(func(*lua.LState) { ranB <- l.OnRunner() })
					close(queued)
				}()
				<-queued
			})
			select {
			case onRunner := <-ranB:
				if !onRunner {
					t.Fatal("B's callback did not run in A's turn")
				}
			default:
				t.Fatal("A's turn ended with B's callback still queued")
			}
		}},
		{"Do inside a Runner turn runs at once", func(t *testing.T, l *Loop) {
			x := 0
			l.NewRunner().Run(func(*lua.LState) {
				if !l.Do(func(*lua.LState) { x = 1 }) {
					t.Error("Do returned false")
				}
			})
			if x != 1 {
				t.Fatal("Do inside a Runner turn did not run")
			}
		}},
		{"a slow callback makes the Runner post for a while", func(t *testing.T, l *Loop) {
			r := l.NewRunner()
			r.Run(func(*lua.LState) { time.Sleep(runnerSlow + time.Millisecond) })
			done := make(chan bool, 1)
			r.Run(func(*lua.LState) { done <- l.OnRunner() })
			select {
			case onRunner := <-done:
				if onRunner {
					t.Fatal("ran on the Runner right after a slow callback")
				}
			case <-time.After(5 * time.Second):
				t.Fatal("posted callback never ran")
			}
		}},
		{"a timer armed in a Runner turn fires", func(t *testing.T, l *Loop) {
			fired := make(chan struct{})
			l.NewRunner().Run(func(*lua.LState) { l.AfterFunc(2*time.Millisecond, func() { close(fired) }) })
			select {
			case <-fired:
			case <-time.After(5 * time.Second):
				t.Fatal("timer never fired")
			}
		}},
		{"a task parked on the VM goroutine resumes on a Runner", func(t *testing.T, l *Loop) {
			parked := make(chan *Task, 1)
			parkBinding(l, parked)
			out := make(chan string, 1)
			l.Do(func(L *lua.LState) {
				fn := mustLoad(t, l, `local v = wait(); done(v)`)
				L.SetGlobal("done", L.NewFunction(func(L *lua.LState) int { out <- L.CheckString(1); return 0 }))
				if _, err := l.Spawn(fn); err != nil {
					t.Error(err)
				}
			})
			task := <-parked
			waitIdle(t, l)
			l.NewRunner().Run(func(*lua.LState) { l.Resume(task, lua.LString("hi")) })
			select {
			case v := <-out:
				if v != "hi" {
					t.Fatalf("got %q", v)
				}
			default:
				t.Fatal("the task did not run in the Runner's turn")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, startedLoop(t, Config{})) })
	}
}

// TestRunnersPostsAndStopRace hammers one VM from several Runners, Post and
// timers at once, checks every callback ran once with the VM owned by one
// goroutine at a time (the race detector checks the hand-offs), then stops
// the loop while the Runners carry on.
func TestRunnersPostsAndStopRace(t *testing.T) {
	l, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	l.Start()
	const runners, perRunner, posts = 4, 2000, 2000
	count := 0 // VM-owned: touched only inside callbacks
	var wg sync.WaitGroup
	for i := 0; i < runners; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := l.NewRunner()
			for j := 0; j < perRunner; j++ {
				r.Run(func(*lua.LState) {
					count++
					if j%100 == 0 {
						l.AfterFunc(0, func() { count++ })
					}
				})
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for j := 0; j < posts; j++ {
			l.Post(func(*lua.LState) { count++ })
		}
	}()
	wg.Wait()
	want := runners*perRunner + posts + runners*(perRunner/100)
	waitFor(t, 5*time.Second, "every callback", func() bool {
		got := 0
		l.Do(func(*lua.LState) { got = count })
		return got == want
	})

	stop := make(chan struct{})
	var rejected atomic.Int64
	for i := 0; i < runners; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := l.NewRunner()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if !r.Run(func(*lua.LState) { count++ }) {
					rejected.Add(1)
				}
			}
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "Run to report the stop", func() bool { return rejected.Load() > 0 })
	close(stop)
	wg.Wait()
}

// BenchmarkRunnerEcho is the scheduler's share of a cosocket echo: an event
// loop's Runner resumes a task parked in read(), which calls write() and
// parks in read() again.
func BenchmarkRunnerEcho(b *testing.B) {
	l, _ := newTestLoop(b, Config{})
	var task *Task
	msg := lua.LString("0123456789012345678901234567890123456789012345678901234567890123")
	l.Do(func(L *lua.LState) {
		L.SetGlobal("read", L.NewFunction(func(L *lua.LState) int {
			t := Current(L)
			task = t
			return t.Park(L)
		}))
		L.SetGlobal("write", L.NewFunction(func(L *lua.LState) int {
			if Current(L) == nil {
				L.RaiseError("not in a task")
			}
			L.Push(lua.LTrue)
			return 1
		}))
		fn := mustLoad(b, l, `while true do local d = read() if not d then break end write(d) end`)
		if _, err := l.Spawn(fn); err != nil {
			b.Fatal(err)
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		l.mu.Lock()
		idle := !l.busy && l.vmGoroutine.Load() != 0
		l.mu.Unlock()
		if idle || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	r := l.NewRunner()
	deliver := func(*lua.LState) { l.Resume(task, msg) }
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r.Run(deliver)
	}
}

// BenchmarkRunnerEchoMany is BenchmarkRunnerEcho over many tasks resumed
// round-robin, as a server's connections are: each resume finds its
// coroutine out of the CPU caches.
func BenchmarkRunnerEchoMany(b *testing.B) {
	for _, n := range []int{1, 1000, 10000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			l, _ := newTestLoop(b, Config{})
			tasks := make([]*Task, 0, n)
			msg := lua.LString("0123456789012345678901234567890123456789012345678901234567890123")
			l.Do(func(L *lua.LState) {
				mt := L.NewTypeMetatable("benchsock")
				L.SetField(mt, "__index", L.SetFuncs(L.NewTable(), map[string]lua.LGFunction{
					"read": func(L *lua.LState) int {
						L.CheckUserData(1)
						return Current(L).Park(L)
					},
					"write": func(L *lua.LState) int {
						L.CheckUserData(1)
						if Current(L) == nil {
							L.RaiseError("not in a task")
						}
						L.Push(lua.LTrue)
						return 1
					},
				}))
				fn := mustLoad(b, l, `local s = ... while true do local d, t = s:read() if not d then break end s:write(d, t) end`)
				for i := 0; i < n; i++ {
					ud := L.NewUserData()
					L.SetMetatable(ud, mt)
					t, err := l.Spawn(fn, ud)
					if err != nil {
						b.Fatal(err)
					}
					tasks = append(tasks, t)
				}
			})
			r := l.NewRunner()
			i := 0
			deliver := func(*lua.LState) { l.Resume(tasks[i], msg, lua.LFalse) }
			b.ReportAllocs()
			b.ResetTimer()
			for k := 0; k < b.N; k++ {
				i = k % n
				for !r.TryRun(deliver) {
				}
			}
		})
	}
}
