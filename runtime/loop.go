package runtime

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

// loop is the runtime's state for one gnet event loop. Writers on any
// goroutine put their connection on dirty; one task per burst (not one per
// message or per connection) then flushes every dirty connection on the loop,
// so a broadcast to N connections of a loop costs one cross-thread wake-up.
type loop struct {
	r         *Reactor
	el        gnet.EventLoop
	idx       int
	flushTask gnet.Runnable
	batchTask gnet.Runnable

	mu        sync.Mutex // guards dirty and scheduled
	dirty     []*Conn
	scheduled bool

	// Loop-only state.
	stage     []byte   // what the Conn in a callback sent with no queue of its own (Conn.send); guarded by that Conn's mu
	wsr       wsReader // parses the Conns that keep no parser of their own (Conn.consume)
	batch     Batch    // Conn.CallbackBatch, flushed by batchTask
	batchDue  bool     // batchTask is scheduled
	iov       []unix.Iovec
	spare     []*Conn
	tlsBuf    []byte             // plaintext scratch for TLS connections
	conns     []*Conn            // every open Conn of this loop, at its Conn.slot
	congested map[*Conn]struct{} // Conns with bytes left in gnet's outbound buffer, or closing
	watching  atomic.Int32       // len(congested), read by the ticker
}

// execute runs fn on the loop. Safe for concurrent use.
func (lp *loop) execute(fn func()) error {
	return lp.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
		fn()
		return nil
	}))
}

// markDirty queues c for the next flush pass. Safe for concurrent use.
func (lp *loop) markDirty(c *Conn) {
	lp.mu.Lock()
	lp.dirty = append(lp.dirty, c)
	wake := !lp.scheduled
	lp.scheduled = true
	lp.mu.Unlock()
	if wake {
		lp.wake()
	}
}

// wake schedules a flush pass on the loop.
func (lp *loop) wake() {
	if err := lp.el.Execute(context.Background(), lp.flushTask); err != nil {
		// The engine is stopping: nothing will be written any more.
		lp.mu.Lock()
		lp.scheduled = false
		lp.mu.Unlock()
	}
}

// Batch defers the writes of many sends made by one goroutine to Flush,
// which writes each connection's queue once, from that goroutine: a
// goroutine that sends to many connections in one turn (the Lua scheduler
// answering its tasks, an event loop routing the publishes of one read)
// then makes one write per recipient however many messages it sent each,
// and wakes no event loop for it. A Batch belongs to one goroutine. Until
// Flush, sends through it wait, and so do other goroutines' sends to the
// same connections: a Batch that is never flushed stalls them. Flush at the
// end of every turn, on every path.
type Batch struct {
	conns   []*Conn // queued through the batch, in order of their first send
	scratch []byte  // frames written at once by SendBatched
	iov     []unix.Iovec
}

// Flush writes what sends through b queued. Owner goroutine only.
func (b *Batch) Flush() {
	for i, c := range b.conns {
		c.flushDirect(b)
		b.conns[i] = nil
	}
	b.conns = b.conns[:0]
	if cap(b.conns) > 1<<16 {
		b.conns = nil // do not keep a huge fan-out's list
	}
}

// scheduleBatch arranges for the callback batch to be flushed once the loop
// has handled the events of its current wake-up: the publishes of every
// read in that pass then leave in one write per recipient. (gnet runs
// tasks after the next poll, so under load more input is read first and
// the writes grow; when idle the task runs at once.) Loop only.
func (lp *loop) scheduleBatch() {
	if lp.batchDue || len(lp.batch.conns) == 0 {
		return
	}
	lp.batchDue = true
	if err := lp.el.Execute(context.Background(), lp.batchTask); err != nil {
		lp.flushBatch() // the engine is stopping: write now
	}
}

func (lp *loop) flushBatch() {
	lp.batchDue = false
	lp.batch.Flush()
}

// flush writes every dirty connection's queue. Loop only.
func (lp *loop) flush() {
	lp.mu.Lock()
	batch := lp.dirty
	lp.dirty = lp.spare[:0]
	lp.scheduled = false
	lp.mu.Unlock()
	for _, c := range batch {
		c.flush()
	}
	clear(batch)
	lp.spare = batch[:0]
}

// add records c as open on the loop. A slice indexed by Conn.slot costs an
// idle connection 8 bytes (plus growth slack) where a map[*Conn] costs
// about 30. Loop only.
func (lp *loop) add(c *Conn) {
	c.slot = int32(len(lp.conns))
	lp.conns = append(lp.conns, c)
}

// remove forgets c, moving the last Conn into its slot. Loop only.
func (lp *loop) remove(c *Conn) {
	i := int(c.slot)
	if i < 0 || i >= len(lp.conns) || lp.conns[i] != c {
		return
	}
	last := len(lp.conns) - 1
	lp.conns[i] = lp.conns[last]
	lp.conns[i].slot = int32(i)
	lp.conns[last] = nil
	lp.conns = lp.conns[:last]
	c.slot = -1
	// Give back a slice left mostly empty after a mass close.
	if cap(lp.conns) > 1024 && len(lp.conns) < cap(lp.conns)/4 {
		lp.conns = append([]*Conn(nil), lp.conns...)
	}
}

// watch adds c to the set whose drain the ticker polls (gnet has no
// "outbound drained" callback). Loop only.
func (lp *loop) watch(c *Conn) {
	if lp.congested == nil {
		lp.congested = make(map[*Conn]struct{})
	}
	if _, ok := lp.congested[c]; !ok {
		lp.congested[c] = struct{}{}
		lp.watching.Add(1)
	}
}

func (lp *loop) unwatch(c *Conn) {
	if _, ok := lp.congested[c]; ok {
		delete(lp.congested, c)
		lp.watching.Add(-1)
	}
}

// checkCongested updates the outbound figures of watched connections, reports
// drains and finishes closes whose queue is flushed or whose time is up. Loop only.
func (lp *loop) checkCongested() {
	now := lp.r.now.Load()
	for c := range lp.congested {
		c.checkDrain(now)
	}
}

// msClock turns the coarse clock (unix nanoseconds) into the 32-bit
// milliseconds a Conn keeps of its last read: the difference of two
// readings is right while they lie less than 49 days apart, and a Conn that
// silent has long been pinged or closed.
func msClock(unixNano int64) uint32 { return uint32(unixNano / int64(time.Millisecond)) }

// sweep pings silent connections, closes idle ones and trims quiet ones.
// Loop only.
func (lp *loop) sweep() {
	now := msClock(lp.r.now.Load())
	ping, idle := lp.r.cfg.PingInterval, lp.r.cfg.IdleTimeout
	// Downwards: a Conn that closes during the pass only moves one already seen.
	for i := len(lp.conns) - 1; i >= 0; i-- {
		c := lp.conns[i]
		silent := time.Duration(now-c.lastRead) * time.Millisecond // modular: right across the wrap
		switch {
		case idle > 0 && silent >= idle:
			_ = c.Close(CloseGoingAway, "idle timeout")
		case ping > 0 && silent >= ping && c.framing == FramingWebSocket:
			_ = c.Ping(nil)
		default:
			c.trim(silent >= sweepEvery)
		}
	}
}

// trim gives back the send queue of a connection that sent nothing since
// the last sweep and has nothing queued, and the WebSocket parser of one
// that has been silent for a sweep with no partial input: most of a
// million-connection server's connections are idle, and these buffers
// (about 300 bytes with their backing arrays) are a third of an idle
// connection's memory. Both come back with the next send or read. Loop only.
func (c *Conn) trim(silent bool) {
	if silent && c.wsr != nil && c.leftIn == 0 && (c.x == nil || len(c.x.carry) == 0) && !c.wsr.fragging {
		c.wsr = nil
	}
	c.mu.Lock()
	if q := c.snd; q != nil && !c.closing {
		switch {
		case q.used:
			q.used = false
		case !c.dirty && q.pendingBytes == 0 && q.outbound == 0 && q.inflight == 0:
			c.snd = nil
		}
	}
	c.mu.Unlock()
}
