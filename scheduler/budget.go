package scheduler

import (
	"sync"
	"sync/atomic"
	"time"
)

// budget is the context.Context installed on every thread of the VM.
// gopher-lua polls ctx.Done() between instructions; the watchdog goroutine
// closes the current Done channel when the running slice (a task resume or a
// Post callback) has run longer than the limit, so the Lua code running at
// that moment raises ErrBudget's message. The VM goroutine then installs a
// fresh channel. One shared context (instead of one per task) costs nothing
// per task and needs no cancel bookkeeping.
type budget struct {
	loop  *Loop // the Loop whose VM this is (loopOf's fast path)
	limit time.Duration
	tick  time.Duration // the watchdog's period
	// ticks is the slices' clock: watchdog ticks since init, from 1. A
	// counter instead of the time keeps two clock reads off every slice
	// (a cosocket message is two slices); the watchdog looks once a tick
	// anyway, so a kill comes between limit and limit+tick as before.
	ticks      atomic.Int64
	limitTicks int64 // a slice that spans more ticks than this overran
	ch         atomic.Pointer[chan struct{}]

	mu    sync.Mutex // guards start, fired and closing ch
	start int64      // tick count at the start of the innermost running slice; 0 when idle
	fired bool       // ch was closed for the running slice
}

func (b *budget) init(limit time.Duration) {
	b.limit = limit
	b.tick = max(limit/4, 5*time.Millisecond)
	b.limitTicks = int64((limit + b.tick - 1) / b.tick)
	b.ticks.Store(1)
	ch := make(chan struct{})
	b.ch.Store(&ch)
}

func (b *budget) now() int64 { return b.ticks.Load() }

// Deadline, Done, Err and Value implement context.Context.
func (b *budget) Deadline() (time.Time, bool) { return time.Time{}, false }

func (b *budget) Done() <-chan struct{} { return *b.ch.Load() }

func (b *budget) Err() error {
	select {
	case <-b.Done():
		return ErrBudget
	default:
		return nil
	}
}

func (b *budget) Value(any) any { return nil }

// AfterFunc makes context.WithCancel(budget) register nothing and start no
// goroutine (see context.propagateCancel). Threads created by LState.NewThread
// therefore do not leak; the scheduler gives its own threads the budget
// itself instead of a child context.
func (b *budget) AfterFunc(func()) func() bool { return func() bool { return true } }

// begin starts a slice and returns the mark end needs. Slices nest: a task
// that resumes another pauses its own clock. VM goroutine only.
func (b *budget) begin() int64 {
	b.mu.Lock()
	if b.fired {
		// The enclosing slice overran (in Go code, since no Lua noticed).
		// Give the new slice a fresh channel so it is not blamed; the
		// watchdog fires again for the enclosing slice once it resumes.
		b.fired = false
		ch := make(chan struct{})
		b.ch.Store(&ch)
	}
	prev := b.start
	b.start = b.now()
	b.mu.Unlock()
	return prev
}

// end closes the slice begun with mark and reports whether the watchdog
// stopped it. VM goroutine only.
func (b *budget) end(prev int64) (killed bool) {
	b.mu.Lock()
	now := b.now()
	elapsed := now - b.start
	if b.fired {
		killed = true
		b.fired = false
		ch := make(chan struct{})
		b.ch.Store(&ch)
	}
	if prev != 0 {
		b.start = prev + elapsed
	} else {
		b.start = 0
	}
	b.mu.Unlock()
	return killed
}

// watch is the watchdog goroutine; it exits when done closes.
func (b *budget) watch(done <-chan struct{}) {
	t := time.NewTicker(b.tick)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		now := b.ticks.Add(1)
		b.mu.Lock()
		if b.start != 0 && !b.fired && now-b.start > b.limitTicks {
			b.fired = true
			close(*b.ch.Load())
		}
		b.mu.Unlock()
	}
}
