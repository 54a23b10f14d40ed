package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	goruntime "runtime"
	"slices"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/tarponrt/tarpon/scheduler"
)

// Lua timers at scale (issue 4: cost per armed timer and firing accuracy
// with 100k armed). The scenario runs in the harness's own process: a
// scheduler Loop like the server's, no sockets involved.
const (
	timerLateTarget = 10.0  // ms: p99 lateness of a firing against its deadline
	timerFiringRate = 10000 // firings a second the deadlines are spread for (10 s at 100k)
)

// timerSchedule gives the suite's first deadline (well after arming n has
// ended: 2 s at 100k) and the spread of the deadlines after it.
func timerSchedule(n int) (firstDue, spread time.Duration) {
	return 500*time.Millisecond + time.Duration(n)*15*time.Microsecond,
		time.Duration(n) * time.Second / timerFiringRate
}

// TimerResult is one timers run.
type TimerResult struct {
	Timers        int     `json:"timers"`
	FirstDue      float64 `json:"first_due_s"` // the first deadline, seconds after arming began
	Spread        float64 `json:"spread_s"`    // the deadlines' spread after it, seconds
	Fired         int     `json:"fired"`
	BytesPerTimer float64 `json:"bytes_per_timer"` // live heap after a GC, per armed ba.timer
	ArmMicros     float64 `json:"arm_us"`          // VM time to create and arm one, µs
	LateP50       float64 `json:"late_p50_ms"`
	LateP99       float64 `json:"late_p99_ms"`
	LateMax       float64 `json:"late_max_ms"`
	Err           string  `json:"error,omitempty"`
}

// timersLua arms n ba.timer objects from one task, each with its own
// closure, deadlines spread over spread ms; due(i, ms) tells Go the
// deadline just before set, fired(i) reports the firing.
const timersLua = `
local n, first, spread = ...
for i = 1, n do
  local ms = first + i % spread
  local t = ba.timer(function() fired(i) end)
  due(i, ms)
  t:set(ms)
end
`

// RunTimers arms n Lua timers (ba.timer, as an app would) on a fresh
// scheduler Loop, due from firstDue to firstDue+spread, and reports heap bytes per armed
// timer, the VM time to arm one, and how late each fired against its
// deadline (p50, p99, max), measured on the VM goroutine as it runs the
// callback.
func RunTimers(n int, firstDue, spread time.Duration) TimerResult {
	res := TimerResult{Timers: n, FirstDue: firstDue.Seconds(), Spread: spread.Seconds()}
	l, err := scheduler.New(scheduler.Config{Budget: time.Minute,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		res.Err = err.Error()
		return res
	}
	l.Start()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = l.Stop(ctx)
	}()
	deadline := make([]int64, n+1)
	late := make([]time.Duration, 0, n)
	done := make(chan struct{})
	var fn *lua.LFunction
	l.Do(func(L *lua.LState) {
		L.SetGlobal("due", L.NewFunction(func(L *lua.LState) int {
			deadline[L.CheckInt(1)] = time.Now().Add(time.Duration(L.CheckInt(2)) * time.Millisecond).UnixNano()
			return 0
		}))
		L.SetGlobal("fired", L.NewFunction(func(L *lua.LState) int {
			late = append(late, time.Duration(time.Now().UnixNano()-deadline[L.CheckInt(1)]))
			if len(late) == n {
				close(done)
			}
			return 0
		}))
		fn, err = l.LoadString(timersLua, "timers")
	})
	if err != nil {
		res.Err = err.Error()
		return res
	}
	before := liveHeap()
	start := time.Now()
	l.Do(func(L *lua.LState) {
		_, err = l.Spawn(fn, lua.LNumber(n), lua.LNumber(firstDue.Milliseconds()), lua.LNumber(max(spread.Milliseconds(), 1)))
	})
	armed := time.Since(start)
	if err != nil {
		res.Err = err.Error()
		return res
	}
	if armed >= firstDue {
		res.Err = fmt.Sprintf("arming took %v, past the first deadline", armed)
		return res
	}
	res.BytesPerTimer = float64(liveHeap()-before) / float64(n)
	res.ArmMicros = float64(armed.Microseconds()) / float64(n)
	select {
	case <-done:
	case <-time.After(firstDue + spread + 30*time.Second):
		res.Err = "timers did not all fire within 30 s of their deadlines"
	}
	l.Do(func(*lua.LState) { // late is the VM goroutine's
		res.Fired = len(late)
		slices.Sort(late)
	})
	if res.Fired > 0 {
		ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
		res.LateP50, res.LateP99, res.LateMax = ms(late[res.Fired/2]), ms(late[res.Fired*99/100]), ms(late[res.Fired-1])
	}
	return res
}

// liveHeap collects garbage and returns the bytes of live heap objects.
func liveHeap() uint64 {
	goruntime.GC()
	var ms goruntime.MemStats
	goruntime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
