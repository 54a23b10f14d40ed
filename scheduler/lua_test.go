package scheduler

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// Lua behaviour is tested in Lua: every global function named Test* in
// testdata/*.lua runs as its own subtest (sorted), as a task on a fresh
// started Loop. It passes when the task returns without error within the
// deadline. Functions named TestShutdown* are expected to park; the runner
// then stops the loop and the function must end without error (it sees
// nil, "sysshutdown" from its park).
//
// Helpers available to the Lua tests (test.*, and a prelude in Lua):
//
//	test.spawn(f)      run f as a task; returns h with h.done, h.err (string)
//	test.nontask(f)    run f on the main state, outside any task: ok, err
//	test.stats()       Loop.Stats as a table
//	eq(a, b [, msg])   assert a == b with a readable message
//	waitfor(cond [, ms]) poll cond() every 5 ms (ba.sleep) until true or fail

const luaPrelude = `
function eq(a, b, msg)
  if a ~= b then
    error((msg or "eq") .. ": expected " .. tostring(b) .. ", got " .. tostring(a), 2)
  end
end
function waitfor(cond, ms)
  local deadline = ba.clock() + (ms or 3000)
  while not cond() do
    if ba.clock() > deadline then error("waitfor: timed out", 2) end
    ba.sleep(5)
  end
end
`

// testBudget is short so the runaway-loop test is quick.
const testBudget = 300 * time.Millisecond

// logBuffer collects log output of a test loop; tests read it.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newTestLoop returns a started Loop that is stopped when the test ends.
func newTestLoop(t testing.TB, cfg Config) (*Loop, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	}
	l, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	l.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := l.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return l, logs
}

// waitFor polls cond until it is true or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func openTestLib(l *Loop) {
	L := l.L()
	mod := L.NewTable()
	mod.RawSetString("spawn", L.NewFunction(func(L *lua.LState) int {
		fn := L.CheckFunction(1)
		h := L.NewTable()
		h.RawSetString("done", lua.LFalse)
		_, err := l.SpawnWith(func(t *Task) {
			t.OnExit(func(err error) {
				h.RawSetString("done", lua.LTrue)
				if err != nil {
					h.RawSetString("err", lua.LString(err.Error()))
				}
			})
		}, fn)
		if err != nil {
			L.RaiseError("%v", err)
		}
		L.Push(h)
		return 1
	}))
	mod.RawSetString("nontask", L.NewFunction(func(L *lua.LState) int {
		fn := L.CheckFunction(1)
		var res []lua.LValue
		l.Post(func(L *lua.LState) {
			L.Push(fn)
			if err := L.PCall(0, 0, nil); err != nil {
				res = []lua.LValue{lua.LFalse, lua.LString(err.Error())}
			} else {
				res = []lua.LValue{lua.LTrue}
			}
		})
		// Wait (yielding) until the posted call has run.
		t := Current(L)
		if t == nil {
			L.RaiseError("test.nontask must be called in a task")
		}
		var poll func()
		poll = func() {
			if res != nil {
				l.Resume(t, res...)
				return
			}
			l.AfterFunc(time.Millisecond, poll)
		}
		l.AfterFunc(0, poll)
		return t.Park(L)
	}))
	mod.RawSetString("stats", L.NewFunction(func(L *lua.LState) int {
		s := l.Stats()
		tb := L.NewTable()
		tb.RawSetString("live", lua.LNumber(s.TasksLive))
		tb.RawSetString("parked", lua.LNumber(s.TasksParked))
		tb.RawSetString("timers", lua.LNumber(s.TimersArmed))
		tb.RawSetString("budgetkills", lua.LNumber(s.BudgetKills))
		tb.RawSetString("invalidyields", lua.LNumber(s.InvalidYields))
		L.Push(tb)
		return 1
	}))
	L.SetGlobal("test", mod)
	fn, err := l.LoadString(luaPrelude, "prelude")
	if err != nil {
		panic(err)
	}
	L.Push(fn)
	if err := L.PCall(0, 0, nil); err != nil {
		panic(err)
	}
}

// luaTestNames loads a file in a scratch loop and lists its Test* globals.
func luaTestNames(t *testing.T, name, src string) []string {
	l, err := New(Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Stop(context.Background())
	L := l.L()
	openTestLib(l)
	fn, err := l.LoadString(src, name)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	L.Push(fn)
	if err := L.PCall(0, 0, nil); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var names []string
	L.G.Global.ForEach(func(k, v lua.LValue) {
		if s, ok := k.(lua.LString); ok && strings.HasPrefix(string(s), "Test") && v.Type() == lua.LTFunction {
			names = append(names, string(s))
		}
	})
	sort.Strings(names)
	return names
}

func TestLua(t *testing.T) {
	files, err := filepath.Glob("testdata/*.lua")
	if err != nil || len(files) == 0 {
		t.Fatalf("no Lua tests found: %v", err)
	}
	sort.Strings(files)
	for _, file := range files {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		base := filepath.Base(file)
		t.Run(strings.TrimSuffix(base, ".lua"), func(t *testing.T) {
			for _, name := range luaTestNames(t, base, string(src)) {
				t.Run(name, func(t *testing.T) { runLuaTest(t, base, string(src), name) })
			}
		})
	}
}

func runLuaTest(t *testing.T, file, src, name string) {
	// Only the budget tests run with a short budget: on a loaded machine a
	// starved VM goroutine must not fail unrelated tests.
	budget := 5 * time.Second
	if strings.HasPrefix(name, "TestBudget") {
		budget = testBudget
	}
	l, logs := newTestLoop(t, Config{Budget: budget})
	exit := make(chan error, 1)
	var setupErr error
	var testFn *lua.LFunction
	l.Do(func(L *lua.LState) {
		defer func() {
			if r := recover(); r != nil {
				setupErr = fmt.Errorf("panic: %v", r)
			}
		}()
		openTestLib(l)
		fn, err := l.LoadString(src, file)
		if err != nil {
			setupErr = err
			return
		}
		L.Push(fn)
		if err := L.PCall(0, 0, nil); err != nil {
			setupErr = err
			return
		}
		testFn, _ = L.GetGlobal(name).(*lua.LFunction)
	})
	if setupErr != nil || testFn == nil {
		t.Fatalf("setup: %v (function %s found: %v)", setupErr, name, testFn != nil)
	}
	var task *Task
	l.Do(func(L *lua.LState) {
		task, setupErr = l.SpawnWith(func(t *Task) {
			t.OnExit(func(err error) { exit <- err })
		}, testFn)
	})
	if setupErr != nil {
		t.Fatalf("spawn: %v", setupErr)
	}
	if strings.HasPrefix(name, "TestShutdown") {
		waitFor(t, 3*time.Second, "the test task to park", func() bool {
			parked := false
			l.Do(func(*lua.LState) { parked = task.Parked() })
			return parked
		})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := l.Stop(ctx); err != nil {
			t.Fatalf("Stop: %v", err)
		}
	}
	select {
	case err := <-exit:
		if err != nil {
			t.Fatalf("%v\nlog:\n%s", err, logs)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("test task did not finish\nlog:\n%s", logs)
	}
}
