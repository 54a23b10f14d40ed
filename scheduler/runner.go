package scheduler

import (
	"time"

	lua "github.com/yuin/gopher-lua"
)

// A Runner lets one other goroutine, typically a network event loop, run a
// callback as a VM turn of its own when the VM is idle, instead of posting it
// and waking the VM goroutine. A cosocket message then costs no
// cross-thread hand-off at all: the event loop that read it resumes the Lua
// reader, whose answer is written from the same thread.
//
// The VM is still owned by one goroutine at a time: Run takes it only when
// no one holds it and no post waits in the inbox (posts go first). When the
// VM is held, Run queues the callback and the holder runs it before letting
// go (a Runner turn keeps doing so for at most runnerDrain; what is left the
// next Runner turn takes, or the VM goroutine after runqGrace). The budget
// watchdog applies to a Runner's turn as to any other; after a callback
// longer than runnerSlow the Runner posts everything for runnerBackoff, so
// Lua that keeps running long stops occupying the event loop (the first such
// callback still holds it, up to the budget).
//
// Goroutines: NewRunner, Run and TryRun must be called on the goroutine the
// Runner is for, always the same one. Code running in a Runner callback is
// the VM's owner (every VM-only method may be called) but not on the VM
// goroutine: a binding that might wait for an event loop (an HTTP upgrade
// hands the connection to a loop and waits for its registration) must check
// OnRunner and move to the VM goroutine first.
type Runner struct {
	l       *Loop
	gid     uint64
	backoff int64 // loop clock: post instead of running until then
}

const (
	// runnerSlow is the callback length past which a Runner backs off.
	runnerSlow = 5 * time.Millisecond
	// runnerBackoff is how long it then posts instead of running.
	runnerBackoff = 100 * time.Millisecond
	// runnerDrain bounds how long one Runner turn keeps taking callbacks
	// other Runners queued while it held the VM.
	runnerDrain = 500 * time.Microsecond
	// runqGrace is how long queued Runner callbacks may wait for a Runner
	// turn before the VM goroutine runs them itself.
	runqGrace = 300 * time.Microsecond
)

// NewRunner returns a Runner for the calling goroutine. Any goroutine (the
// one that will call Run).
func (l *Loop) NewRunner() *Runner {
	return &Runner{l: l, gid: goroutineID()}
}

// Run runs fn on the calling goroutine when the VM is idle and the inbox
// empty: as a turn of its own, in which it also runs the callbacks that other
// Runners queued meanwhile. When the VM is busy (or posts wait in the inbox)
// it queues fn for the next Runner turn, and while backing off it posts fn.
// Callbacks given to Run keep their order among themselves but not with
// respect to Post. It returns false if the loop is stopped (fn will not run).
// The Runner's goroutine only; never from inside a VM turn.
func (r *Runner) Run(fn func(*lua.LState)) bool {
	l := r.l
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return false
	}
	// vmGoroutine is set once the VM goroutine runs: before that (or when
	// the loop was stopped without starting) the VM is not handed around.
	if l.vmGoroutine.Load() == 0 || (r.backoff != 0 && l.now() < r.backoff) {
		l.inbox = append(l.inbox, fn)
		busy := l.busy
		l.mu.Unlock()
		l.st.posts.Add(1)
		if !busy {
			l.poke()
		}
		return true
	}
	if l.busy || len(l.inbox) > 0 {
		// The holder runs it before letting go; with posts waiting, the
		// VM goroutine has been poked and its release arms runqT.
		l.runq = append(l.runq, fn)
		l.runqLen.Store(int32(len(l.runq)))
		l.mu.Unlock()
		l.st.posts.Add(1)
		return true
	}
	l.busy = true
	l.mu.Unlock()
	r.turn(fn)
	return true
}

// TryRun is Run without the fallbacks: it runs fn as a turn on the calling
// goroutine and returns true, or, when Run would queue or post fn, returns
// false and does nothing. The Runner's goroutine only; never from inside a
// VM turn.
func (r *Runner) TryRun(fn func(*lua.LState)) bool {
	l := r.l
	l.mu.Lock()
	if l.closed || l.busy || len(l.inbox) > 0 || l.vmGoroutine.Load() == 0 || (r.backoff != 0 && l.now() < r.backoff) {
		l.mu.Unlock()
		return false
	}
	l.busy = true
	l.mu.Unlock()
	r.turn(fn)
	return true
}

// turn runs fn and what other Runners queue meanwhile, then lets the VM go.
// Called with the VM taken (busy set by this goroutine).
func (r *Runner) turn(fn func(*lua.LState)) {
	l := r.l
	l.runnerG.Store(r.gid)
	start := l.now()
	l.callGo(fn)
	end := l.now()
	r.backoff = 0
	if end-start > int64(runnerSlow) {
		r.backoff = end + int64(runnerBackoff)
	}
	for r.backoff == 0 && end-start < int64(runnerDrain) && l.runqLen.Load() > 0 && l.runRunq(runnerSlow) {
		end = l.now()
	}
	l.endTurn()
	l.runnerG.Store(0)
	l.release(true)
}

// runRunq runs one batch of queued Runner callbacks, unless posts wait in the
// inbox (they go first). It reports whether it ran any. With slow > 0 it
// stops after a callback that ran longer than slow, leaving the rest queued.
// VM owner only.
func (l *Loop) runRunq(slow time.Duration) bool {
	l.mu.Lock()
	if len(l.runq) == 0 || (len(l.inbox) > 0 && !l.closed) {
		l.mu.Unlock()
		return false
	}
	batch := l.runq
	l.runq = l.runqSpare[:0]
	l.runqSpare = nil
	l.runqLen.Store(0)
	l.mu.Unlock()
	for i, fn := range batch {
		batch[i] = nil
		start := l.now()
		l.callGo(fn)
		if slow > 0 && l.now()-start > int64(slow) && i+1 < len(batch) {
			// Put the rest back in front of what came meanwhile.
			l.mu.Lock()
			l.runq = append(batch[i+1:len(batch):len(batch)], l.runq...)
			l.runqLen.Store(int32(len(l.runq)))
			l.mu.Unlock()
			return true
		}
	}
	l.mu.Lock()
	if l.runqSpare == nil && cap(batch) <= 4096 {
		l.runqSpare = batch[:0]
	}
	l.mu.Unlock()
	return true
}

// OnRunner reports whether the current turn runs on a Runner rather than on
// the VM goroutine. VM only (a binding, a callback).
func (l *Loop) OnRunner() bool { return l.runnerG.Load() != 0 }
