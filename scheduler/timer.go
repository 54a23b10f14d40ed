package scheduler

import (
	"fmt"
	"time"
)

// Timers: a binary min-heap of deadlines owned by the VM goroutine and one
// time.Timer armed to the earliest deadline. When it fires it only pokes the
// wake channel; the VM goroutine then runs every due callback. 100k armed
// timers therefore cost one heap slot and one small struct each, not 100k
// runtime timers.

// Timer is a callback scheduled with Loop.AfterFunc. All methods are for the
// VM goroutine only.
type Timer struct {
	l    *Loop
	when int64 // loop clock, ns
	idx  int   // heap index; -1 when not armed
	fn   func()
}

// AfterFunc arranges for fn to run on the VM goroutine after d (resolution
// about 1 ms, never early). It returns nil if Config.MaxTimers timers are
// already armed or the loop is stopping. VM goroutine only.
func (l *Loop) AfterFunc(d time.Duration, fn func()) *Timer {
	t := &Timer{l: l, idx: -1, fn: fn}
	if !t.arm(d) {
		return nil
	}
	return t
}

// Stop disarms the timer. It returns true if the timer was armed (so fn will
// not run now), false if it had already fired or been stopped. VM goroutine only.
func (t *Timer) Stop() bool {
	if t == nil || t.idx < 0 {
		return false
	}
	t.l.heap.remove(t)
	t.l.st.timers.Add(-1)
	return true
}

// Reset re-arms the timer to fire after d, whether or not it was armed, and
// reports whether it was armed before. It returns false without arming when
// the timer cap is reached. VM goroutine only.
func (t *Timer) Reset(d time.Duration) bool {
	was := t.Stop()
	t.arm(d)
	return was
}

// Armed reports whether the timer is waiting to fire. VM goroutine only.
func (t *Timer) Armed() bool { return t != nil && t.idx >= 0 }

func (t *Timer) arm(d time.Duration) bool {
	l := t.l
	if l.stopping || len(l.heap) >= l.cfg.MaxTimers {
		if !l.stopping {
			l.log.Warn("scheduler: timer cap reached", "max", l.cfg.MaxTimers)
		}
		return false
	}
	if d < 0 {
		d = 0
	}
	t.when = l.now() + int64(d)
	l.heap.push(t)
	l.st.timers.Add(1)
	return true
}

// fireTimers runs the callbacks that are due. VM goroutine only.
func (l *Loop) fireTimers() {
	now := l.now()
	for n := 0; n < maxFiresPerPass && len(l.heap) > 0 && l.heap[0].when <= now; n++ {
		t := l.heap[0]
		l.heap.remove(t)
		l.st.timers.Add(-1)
		l.st.fired.Add(1)
		l.callTimer(t)
	}
	if len(l.heap) > 0 && l.heap[0].when <= now {
		l.poke() // more are due: come back after the inbox had a turn
	}
}

func (l *Loop) callTimer(t *Timer) {
	mark := l.bud.begin()
	defer func() {
		l.bud.end(mark)
		if r := recover(); r != nil {
			l.log.Error("scheduler: timer callback panicked", "panic", fmt.Sprint(r))
		}
	}()
	t.fn()
}

// armWake points the runtime timer at the earliest deadline. VM goroutine only.
func (l *Loop) armWake() {
	if l.wakeFired.Swap(false) {
		l.armedFor = 0 // the runtime timer is spent
	}
	if len(l.heap) == 0 {
		if l.armedFor != 0 {
			l.wakeT.Stop()
			l.armedFor = 0
		}
		return
	}
	when := l.heap[0].when
	if when == l.armedFor {
		return
	}
	l.armedFor = when
	l.wakeT.Reset(time.Duration(when - l.now()))
}

// timerHeap is a min-heap on when; each Timer records its index.
type timerHeap []*Timer

func (h *timerHeap) push(t *Timer) {
	t.idx = len(*h)
	*h = append(*h, t)
	h.up(t.idx)
}

func (h *timerHeap) remove(t *Timer) {
	s := *h
	i, last := t.idx, len(s)-1
	if i != last {
		s[i] = s[last]
		s[i].idx = i
	}
	s[last] = nil
	*h = s[:last]
	t.idx = -1
	if i != last {
		if !h.down(i) {
			h.up(i)
		}
	}
}

func (h timerHeap) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if h[p].when <= h[i].when {
			return
		}
		h.swap(i, p)
		i = p
	}
}

func (h timerHeap) down(i int) bool {
	start, n := i, len(h)
	for {
		c := 2*i + 1
		if c >= n {
			break
		}
		if r := c + 1; r < n && h[r].when < h[c].when {
			c = r
		}
		if h[i].when <= h[c].when {
			break
		}
		h.swap(i, c)
		i = c
	}
	return i > start
}

func (h timerHeap) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx = i
	h[j].idx = j
}
