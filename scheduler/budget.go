package scheduler

import (
	"runtime/metrics"
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
	// tickWall holds when each recent tick began (watchdog only). The
	// watchdog judges a slice by the wall time since the tick after its
	// start, not by ticks counted: a starved watchdog (GC assists, a busy
	// machine) misses ticks, which must not stretch the budget.
	tickWall [tickRing]int64
	ch       atomic.Pointer[chan struct{}]

	mu     sync.Mutex // guards start, fired, memory, slices and closing ch
	start  int64      // tick count at the start of the innermost running slice; 0 when idle
	fired  bool       // ch was closed for the running slice
	memory bool       // ...because the heap grew past maxGrowth, not for time
	slices uint64     // slices begun so far: tells the watchdog a new one started

	// The memory guard (watchdog only, besides maxGrowth): gopher-lua has
	// no allocation hook, so the watchdog reads the Go heap's live bytes
	// (as of the last GC) on each tick while a slice runs and stops the
	// slice once they grew by more than maxGrowth since its first tick. The
	// VM runs one slice at a time, so growth in that window is the running
	// task's (or garbage-free growth of the rest of the process: a slice
	// stopped for it is what keeps the process alive).
	maxGrowth uint64 // 0: off
	memSlice  uint64 // the slice heapBase belongs to
	heapBase  uint64
	sample    []metrics.Sample
}

// heapLiveMetric is the live heap as of the last GC: it grows when memory is
// kept, not when garbage is made, so a task producing garbage is not blamed.
const heapLiveMetric = "/gc/heap/live:bytes"

func (b *budget) init(limit time.Duration) {
	b.limit = limit
	// At most 50 ms, so the memory guard looks often enough to stop a
	// task allocating fast before it has taken much.
	b.tick = min(max(limit/4, 5*time.Millisecond), 50*time.Millisecond)
	b.limitTicks = int64((limit + b.tick - 1) / b.tick)
	b.ticks.Store(1)
	b.tickWall[1] = time.Now().UnixNano()
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
		b.mu.Lock()
		mem := b.memory
		b.mu.Unlock()
		if mem {
			return ErrMemory
		}
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
		b.fired, b.memory = false, false
		ch := make(chan struct{})
		b.ch.Store(&ch)
	}
	prev := b.start
	b.start = b.now()
	b.slices++
	b.mu.Unlock()
	return prev
}

// end closes the slice begun with mark and says why the watchdog stopped
// it: ErrBudget (too long) or ErrMemory (the heap grew too much); nil when
// it did not. VM goroutine only.
func (b *budget) end(prev int64) (killed error) {
	b.mu.Lock()
	now := b.now()
	elapsed := now - b.start
	if b.fired {
		killed = ErrBudget
		if b.memory {
			killed = ErrMemory
		}
		b.fired, b.memory = false, false
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
		wall := time.Now().UnixNano()
		b.tickWall[now%tickRing] = wall
		heap := b.heapLive()
		b.mu.Lock()
		if b.start != 0 && !b.fired {
			switch {
			case b.start < now && b.overdue(now, wall):
				b.fired = true
				close(*b.ch.Load())
			case b.maxGrowth == 0:
			case b.memSlice != b.slices: // a slice we have not seen: its baseline
				b.memSlice, b.heapBase = b.slices, heap
			case heap > b.heapBase+b.maxGrowth:
				b.fired, b.memory = true, true
				close(*b.ch.Load())
			}
		}
		b.mu.Unlock()
	}
}

// tickRing is how many ticks' start times the watchdog remembers.
const tickRing = 256

// overdue reports whether the running slice, begun during tick b.start, has
// run past the limit: by the wall time since the tick after its start (so
// never early, at most a tick late), or by ticks counted. Watchdog, under mu.
func (b *budget) overdue(now, wall int64) bool {
	n := now - b.start
	if n > b.limitTicks {
		return true
	}
	if n >= tickRing-1 {
		return false // the ring no longer holds its start; counting decides
	}
	return time.Duration(wall-b.tickWall[(b.start+1)%tickRing]) > b.limit
}

// heapLive reads the live heap (0 with the guard off). Watchdog only.
func (b *budget) heapLive() uint64 {
	if b.maxGrowth == 0 {
		return 0
	}
	if b.sample == nil {
		b.sample = []metrics.Sample{{Name: heapLiveMetric}}
	}
	metrics.Read(b.sample)
	if b.sample[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return b.sample[0].Value.Uint64()
}
