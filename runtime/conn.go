package runtime

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

// Handler receives a connection's events. Every callback runs on the
// connection's event-loop goroutine and must not block: hand slow work to
// another goroutine (a scheduler inbox, a channel) and return.
type Handler interface {
	// OnOpen runs once, when the connection has entered the reactor.
	OnOpen(c *Conn)
	// OnMessage delivers one message. msg is only valid during the call:
	// copy what you keep. text is true for a WebSocket text message.
	OnMessage(c *Conn, msg []byte, text bool)
	// OnDrain runs when the send queue fell to HighWater/2 or below after a
	// send had taken it over HighWater.
	OnDrain(c *Conn)
	// OnClose runs once, last. err is nil, a *CloseError (the close code the
	// peer sent or the runtime chose), or the I/O error that ended it.
	OnClose(c *Conn, err error)
}

// CloseError reports a WebSocket close handshake or a close the runtime
// decided on (for raw connections the code is informative only).
type CloseError struct {
	Code   uint16
	Reason string
}

func (e *CloseError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("websocket: close %d", e.Code)
	}
	return fmt.Sprintf("websocket: close %d: %s", e.Code, e.Reason)
}

// Conn is one connection in the reactor. It holds no goroutine: reads are
// driven by its event loop, writes are queued from any goroutine and flushed
// by the loop.
//
// Memory per idle connection is a headline figure: the struct is laid out to
// fit the 144-byte size class (the fields of 4 bytes and less pack into 48
// bytes), and what few connections need lives behind x, snd, cls and wsr.
type Conn struct {
	r         *Reactor
	h         Handler
	x         *connExtra // rarely needed state; nil for a plain idle connection
	highWater int32
	maxQueue  int32
	framing   Framing
	client    bool // WebSocket client role: our frames are masked
	admitted  bool // counted by the admission gate (released on close)

	// Loop-only state. Input stops being delivered once closingFlag is set
	// (a close frame, a protocol error, Close from anywhere, the socket gone).
	isOpen   bool
	leftIn   int32  // bytes left in gnet's inbound buffer by the last traffic (already counted)
	slot     int32  // index in its loop's conns while open
	lastRead uint32 // coarse clock of the last read (msClock)
	gc       gnet.Conn
	wsr      *wsReader // only while parser state is left between reads (see consume), or trimmed

	closingFlag atomic.Bool // a close was requested; stop delivering input
	wantDrain   atomic.Bool // a send went over HighWater: report OnDrain

	mu        sync.Mutex // guards lp, snd, cls, the flags below and userData
	dirty     bool       // flush pending (in a loop's dirty list, or in traffic)
	inTraffic bool       // the loop is inside a callback of this Conn: it flushes after
	closing   bool
	dead      bool
	maxMsg    int32 // a MaxMessage of its own (0: the reactor's), for the parser made with the next input
	lp        *loop
	snd       *sendState  // allocated with the first send
	cls       *closeState // allocated by the first close
	userData  any
}

// closeState is what a closing connection needs, allocated on Close so that
// open connections do not carry it. Guarded by Conn.mu.
type closeState struct {
	err    error    // reported to OnClose (the close the peer sent or we chose)
	at     int64    // when the close is forced even if the queue is not flushed
	remote net.Addr // RemoteAddr once gnet has let go of the connection
}

// connExtra holds what few connections need, so an idle plain connection
// stays small (memory per idle connection is a headline figure).
type connExtra struct {
	protocol string
	carry    []byte      // bytes not yet parsed: buffered by net/http before the hand-off, or TLS plaintext
	tls      *tls.Conn   // TLS session decrypting on the loop (see tls.go)
	sw       *switchConn // tls's transport
}

// sendState is a connection's send queue, guarded by Conn.mu. Frames wait in
// pending, in order; frames copied by Send share the own buffer, frames from
// SendEncoded are referenced as they are.
type sendState struct {
	pending      [][]byte
	pendingBytes int
	own          []byte
	ownStart     int  // start of the open region of own (valid while ownOpen)
	ownOpen      bool // pending's last entry is own[ownStart:]
	used         bool // sent since the loop's last sweep (see Conn.trim)
	spare        [][]byte
	ownSpare     []byte
	outbound     int // bytes in gnet's outbound buffer at the last look
	inflight     int // bytes a flush is handing to gnet right now
}

func (c *Conn) extra() *connExtra {
	if c.x == nil {
		c.x = &connExtra{}
	}
	return c.x
}

func (r *Reactor) newConn(h Handler, opts *ConnOptions, framing Framing, client bool) *Conn {
	c := &Conn{r: r, h: h, framing: framing, client: client,
		highWater: int32(r.cfg.HighWater), maxQueue: int32(r.cfg.MaxQueue)}
	if opts != nil {
		if opts.HighWater > 0 {
			c.highWater = int32(opts.HighWater)
			c.maxQueue = max(c.maxQueue, c.highWater)
		}
		if opts.MaxMessage > 0 && opts.MaxMessage != r.cfg.MaxMessage && framing == FramingWebSocket {
			c.maxMsg = int32(min(opts.MaxMessage, math.MaxInt32))
		}
		c.userData = opts.UserData
	}
	return c
}

// Framing returns how the connection's stream is framed. Any goroutine.
func (c *Conn) Framing() Framing { return c.framing }

// Protocol returns the negotiated WebSocket subprotocol, if any. Any goroutine.
func (c *Conn) Protocol() string {
	if c.x == nil {
		return ""
	}
	return c.x.protocol
}

// RemoteAddr returns the peer's address, also after the connection closed.
// Any goroutine.
//
// The Conn keeps no copy while gnet holds the address (memory per idle
// connection counts); closed() saves it before gnet releases it.
func (c *Conn) RemoteAddr() net.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.dead && c.gc != nil {
		return c.gc.RemoteAddr()
	}
	if c.cls != nil {
		return c.cls.remote
	}
	return nil
}

// remoteAddr is RemoteAddr for the loop, which needs no lock: gnet's
// connection is valid until closed() has returned. Loop only.
func (c *Conn) remoteAddr() net.Addr {
	if c.gc == nil {
		return nil
	}
	return c.gc.RemoteAddr()
}

// LocalAddr returns the local address, or nil once the connection is
// closed (gnet holds it; a Conn does not keep a copy, to stay small). Any
// goroutine.
func (c *Conn) LocalAddr() net.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead || c.gc == nil {
		return nil
	}
	// closed() sets dead under mu before gnet releases the address.
	return c.gc.LocalAddr()
}

// Loop returns the index of the connection's event loop, for
// Reactor.ExecuteOn, or -1 before the connection entered one. Any goroutine.
func (c *Conn) Loop() int {
	c.mu.Lock()
	lp := c.lp
	c.mu.Unlock()
	if lp == nil {
		return -1
	}
	return lp.idx
}

// UserData returns the value set with SetUserData or ConnOptions.UserData. Any goroutine.
func (c *Conn) UserData() any {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.userData
}

// SetUserData attaches v to the connection. Any goroutine.
func (c *Conn) SetUserData(v any) {
	c.mu.Lock()
	c.userData = v
	c.mu.Unlock()
}

// Execute runs fn on the connection's event loop. Any goroutine.
func (c *Conn) Execute(fn func()) error {
	c.mu.Lock()
	lp := c.lp
	c.mu.Unlock()
	if lp == nil {
		return ErrClosed
	}
	return lp.execute(fn)
}

// Send queues msg as one message: a binary WebSocket message, raw bytes, or a
// length-prefixed SMQ frame, as the framing says. msg is copied. It never
// blocks. It fails with ErrClosed once the connection is closing and with
// ErrQueueFull (counted) when the queue would pass MaxQueue (a message on an
// empty queue is always accepted, whatever its size). Check Congested
// after a send to apply backpressure. Any goroutine.
func (c *Conn) Send(msg []byte) error {
	_, err := c.send(ws.OpBinary, msg, nil)
	return err
}

// SendText queues msg as a WebSocket text message (as Send for other framings).
// The caller guarantees msg is valid UTF-8. Any goroutine.
func (c *Conn) SendText(msg []byte) error {
	_, err := c.send(ws.OpText, msg, nil)
	return err
}

// SendBatched is Send (or SendText) through b: a small message to an empty
// queue is written at once, anything else waits for b.Flush.
// It also reports whether the queue is now over its high-water mark (what
// Congested would say), saving the writer a second look. The goroutine that
// owns b only.
func (c *Conn) SendBatched(b *Batch, msg []byte, text bool) (congested bool, err error) {
	op := ws.OpBinary
	if text {
		op = ws.OpText
	}
	return c.send(op, msg, b)
}

// SendEncoded queues frame, already framed for this connection (see
// AppendServerFrame and AppendLen16), without copying it: a broadcast encodes
// a message once and shares the bytes with every recipient. The caller must
// never modify frame afterwards. Any goroutine.
func (c *Conn) SendEncoded(frame []byte) error {
	c.mu.Lock()
	if err := c.admit(len(frame)); err != nil {
		c.mu.Unlock()
		return err
	}
	q := c.queue()
	q.pending = append(q.pending, frame)
	q.ownOpen = false
	c.queued(len(frame), nil)
	return nil
}

// TrySendEncoded is SendEncoded for a broadcast: it queues frame only when
// the queue is not over its high-water mark (false: the caller applies its
// slow-consumer policy), in one lock where Congested + SendEncoded take two.
// With a non-nil b the write waits for b.Flush (b's goroutine only).
func (c *Conn) TrySendEncoded(frame []byte, b *Batch) (bool, error) {
	c.mu.Lock()
	if c.queuedLocked() > int(c.highWater) {
		c.wantDrain.Store(true)
		c.mu.Unlock()
		return false, nil
	}
	if err := c.admit(len(frame)); err != nil {
		c.mu.Unlock()
		return false, err
	}
	q := c.queue()
	q.pending = append(q.pending, frame)
	q.ownOpen = false
	c.queued(len(frame), b)
	return true, nil
}

// TrySend is Send (binary) for a message to a single recipient, which
// needs no encoding of its own to share: msg is framed into the
// connection's queue (or written at once, as SendBatched), unless the queue
// is over its high-water mark (false: the caller applies its slow-consumer
// policy). With a non-nil b the write may wait for b.Flush (b's goroutine
// only). Any goroutine.
func (c *Conn) TrySend(msg []byte, b *Batch) (bool, error) {
	_, err := c.sendUnlessOver(ws.OpBinary, msg, b, true)
	if err == errOverHighWater {
		return false, nil
	}
	return err == nil, err
}

// errOverHighWater is send's refusal when asked to queue only under the
// high-water mark (TrySend); it never leaves the package.
var errOverHighWater = errors.New("runtime: queue over its high-water mark")

// Ping sends a WebSocket ping. Any goroutine.
func (c *Conn) Ping(payload []byte) error {
	if c.framing != FramingWebSocket {
		return ErrNotWebSocket
	}
	if len(payload) > maxControlPayload {
		return errors.New("runtime: ping payload over 125 bytes")
	}
	_, err := c.send(ws.OpPing, payload, nil)
	return err
}

// send frames and queues (or writes) msg and reports whether the queue is
// now over its high-water mark.
func (c *Conn) send(op ws.OpCode, msg []byte, b *Batch) (over bool, err error) {
	return c.sendUnlessOver(op, msg, b, false)
}

// sendUnlessOver is send; with refuse it queues nothing and returns
// errOverHighWater when the queue is already over its high-water mark
// (checked under the same lock as the send).
func (c *Conn) sendUnlessOver(op ws.OpCode, msg []byte, b *Batch, refuse bool) (over bool, err error) {
	n := len(msg)
	switch c.framing {
	case FramingWebSocket:
		n += 14
	case FramingLen16:
		if len(msg) > MaxLen16Payload {
			return false, fmt.Errorf("runtime: message of %d bytes exceeds the length-prefix limit %d", len(msg), MaxLen16Payload)
		}
		n += 2
	}
	c.mu.Lock()
	if refuse && c.queuedLocked() > int(c.highWater) {
		c.wantDrain.Store(true)
		c.mu.Unlock()
		return true, errOverHighWater
	}
	if err := c.admit(n); err != nil {
		c.mu.Unlock()
		return false, err
	}
	q := c.snd
	// Inside one of the connection's own callbacks (inTraffic: the
	// handler answering what it read, or a Lua reader the loop resumed)
	// a connection with no queue stages the message in its loop's buffer,
	// written when the callback ends: the answers to a whole read go out
	// in one write, and a connection whose writes the kernel takes whole
	// never allocates a queue at all.
	if q == nil && c.inTraffic && c.x == nil && len(c.lp.stage)+n <= int(c.highWater) {
		c.lp.stage = c.appendMessage(c.lp.stage, op, msg)
		c.mu.Unlock()
		c.r.stats.msgsOut.Add(1)
		return false, nil
	}
	// From other goroutines, small messages to an empty queue are written
	// at once (writeNow). A large one goes through the queue, where it
	// crosses the high-water mark and a cosocket writer yields for the
	// drain instead of holding the scheduler through a bulk transfer. Nor
	// while a flush is handing earlier bytes to gnet (inflight): they must
	// reach the socket first.
	empty := q == nil || (q.pendingBytes == 0 && q.outbound == 0 && q.inflight == 0)
	if b != nil && n <= int(c.highWater)/2 && c.x == nil && c.gc != nil && !c.dirty && !c.inTraffic && empty {
		return c.writeNow(op, msg, b)
	}
	q = c.queue()
	before := q.openOwn()
	q.own = c.appendMessage(q.own, op, msg)
	return c.queued(q.ownGrew(before), b), nil
}

// appendMessage frames msg for the connection.
func (c *Conn) appendMessage(dst []byte, op ws.OpCode, msg []byte) []byte {
	switch c.framing {
	case FramingWebSocket:
		return appendFrame(dst, op, msg, c.client)
	case FramingLen16:
		return AppendLen16(dst, msg)
	}
	return append(dst, msg...)
}

// writeNow writes a message straight to the socket from the sender's
// goroutine when nothing is queued or in flight: the scheduler answering a
// cosocket then needs no hop to the event loop at all (read on the loop, Lua
// and write on the scheduler, like BAS's single dispatcher thread). What the
// kernel does not take is queued as usual. Called with mu held (closed()
// takes mu before gnet closes the descriptor, so it is valid here); unlocks.
func (c *Conn) writeNow(op ws.OpCode, msg []byte, b *Batch) (over bool, err error) {
	b.scratch = c.appendMessage(b.scratch[:0], op, msg)
	frame := b.scratch
	if cap(b.scratch) > 64<<10 {
		b.scratch = nil // do not keep a large message's buffer
	}
	n, werr := unix.Write(c.gc.Fd(), frame)
	if werr != nil || n < 0 {
		n = 0 // EAGAIN, or an error the loop will meet and close on
	}
	c.r.stats.bytesOut.Add(uint64(n))
	if n == len(frame) {
		c.mu.Unlock()
		c.r.stats.msgsOut.Add(1)
		return false, nil
	}
	return c.queued(c.queue().appendOwn(frame[n:]), b), nil
}

// openOwn makes pending's last entry the open region of own and returns
// own's length before the caller appends. Called with Conn.mu held.
func (q *sendState) openOwn() int {
	if !q.ownOpen {
		q.ownStart = len(q.own)
		q.ownOpen = true
		q.pending = append(q.pending, nil)
	}
	return len(q.own)
}

// ownGrew makes pending's last entry the whole open region of own again,
// after own grew from before (openOwn's result), and returns the bytes
// added. Called with Conn.mu held.
func (q *sendState) ownGrew(before int) int {
	q.pending[len(q.pending)-1] = q.own[q.ownStart:]
	return len(q.own) - before
}

// appendOwn copies b into the open region of own and returns len(b).
// Called with Conn.mu held.
func (q *sendState) appendOwn(b []byte) int {
	before := q.openOwn()
	q.own = append(q.own, b...)
	return q.ownGrew(before)
}

// admit checks whether n more bytes may be queued. Called with mu held.
func (c *Conn) admit(n int) error {
	if c.dead || c.closing {
		return ErrClosed
	}
	// A message larger than the whole cap still goes out on an empty queue.
	// Bytes a flush is writing count here (the hard cap holds at every
	// moment) but not against the high-water mark: a loop thread that the
	// OS preempts mid-flush must not make a fast reader look slow.
	q := c.queuedLocked()
	if c.snd != nil {
		c.snd.used = true
		q += c.snd.inflight
	}
	if q > 0 && q+n > int(c.maxQueue) {
		c.r.stats.queueDrops.Add(1)
		return ErrQueueFull
	}
	return nil
}

// queue returns the connection's send queue, allocating it with the first
// message that must wait; what the current callback staged moves in first,
// since it was sent first. Called with mu held.
func (c *Conn) queue() *sendState {
	if c.snd != nil {
		return c.snd
	}
	q := &sendState{used: true}
	c.snd = q
	if c.inTraffic && len(c.lp.stage) > 0 {
		q.pendingBytes += q.appendOwn(c.lp.stage)
		c.lp.stage = c.lp.stage[:0]
		c.dirty = true // endCallback flushes it
	}
	return q
}

// queuedLocked returns the bytes queued (or staged by the current
// callback) and not yet taken by the kernel. mu held.
func (c *Conn) queuedLocked() int {
	if c.snd == nil {
		if c.inTraffic && c.lp != nil {
			return len(c.lp.stage)
		}
		return 0
	}
	return c.snd.pendingBytes + c.snd.outbound
}

// queued accounts for n queued bytes, schedules a flush, unlocks mu and
// reports whether the queue is over its high-water mark.
func (c *Conn) queued(n int, b *Batch) (over bool) {
	c.snd.pendingBytes += n
	over = c.queuedLocked() > int(c.highWater)
	if over {
		c.wantDrain.Store(true)
	}
	// The first send that leaves bytes waiting arranges their write: the
	// end of the callback the connection is in, the Batch's Flush, or a
	// flush pass of its loop.
	wake, batched := false, false
	if !c.dirty {
		c.dirty = true
		if !c.inTraffic && c.lp != nil {
			batched = b != nil
			wake = !batched
		}
	}
	lp := c.lp
	c.mu.Unlock()
	c.r.stats.msgsOut.Add(1)
	if batched {
		b.conns = append(b.conns, c)
	} else if wake {
		lp.markDirty(c)
	}
	return over
}

// flushDirect writes c's queue from a Batch owner's goroutine, so that a
// broadcast or a scheduler turn costs no event-loop wake-up. It does when
// the queue is the socket's only pending output (nothing in gnet's buffer
// or in flight, no TLS, no close under way) and c is in no callback (whose
// end flushes it anyway); otherwise, and with what the kernel does not
// take, c goes to its loop's flush pass. mu is held through the write, so
// no other sender can overtake it, and closed() takes mu before gnet
// closes the descriptor. Any goroutine.
func (c *Conn) flushDirect(b *Batch) {
	c.mu.Lock()
	q := c.snd
	if !c.dirty || q == nil || c.inTraffic {
		c.mu.Unlock() // flushed meanwhile, or the callback's end will
		return
	}
	if c.x != nil || c.gc == nil || c.dead || c.closing || q.inflight > 0 || q.outbound > 0 {
		lp := c.lp
		c.mu.Unlock()
		lp.markDirty(c)
		return
	}
	n := 0
	for rest := q.pending; len(rest) > 0; {
		chunk := rest[:min(len(rest), 1024)] // IOV_MAX
		rest = rest[len(chunk):]
		var w int
		var err error
		if len(chunk) == 1 {
			w, err = unix.Write(c.gc.Fd(), chunk[0]) // a fan-out's usual case, and cheaper in the kernel
		} else {
			w, err = writev(c.gc.Fd(), chunk, &b.iov)
		}
		if err != nil || w < 0 {
			break // EAGAIN, or an error the loop will meet and close on
		}
		n += w
		if w < chunkLen(chunk) {
			break
		}
	}
	c.r.stats.bytesOut.Add(uint64(n))
	if n == q.pendingBytes {
		clear(q.pending)
		q.pending, q.own = q.pending[:0], q.own[:0]
		q.ownOpen = false
		q.pendingBytes = 0
		if !c.wantDrain.Load() {
			c.dirty = false
			c.mu.Unlock()
			return
		}
		// A writer waits for OnDrain: the loop reports it (its flush
		// pass finds the queue empty).
	} else {
		q.drop(n) // gnet takes the rest and watches the socket
	}
	lp := c.lp
	c.mu.Unlock()
	lp.markDirty(c)
}

// drop removes the first n bytes of pending (written). Called with mu held.
func (q *sendState) drop(n int) {
	q.pendingBytes -= n
	rest := advance(q.pending, n)
	if len(rest) <= 1 {
		q.ownOpen = false // the last entry may no longer be own's whole open region
	}
	m := copy(q.pending, rest)
	clear(q.pending[m:])
	q.pending = q.pending[:m]
}

// advance drops the first n bytes of bufs, in place, and returns the rest.
func advance(bufs [][]byte, n int) [][]byte {
	i := 0
	for ; i < len(bufs) && n >= len(bufs[i]); i++ {
		n -= len(bufs[i])
	}
	if i < len(bufs) {
		bufs[i] = bufs[i][n:]
	}
	return bufs[i:]
}

// writev is writev(2) with iov as its reused scratch: unix.Writev
// allocates its iovec array on every call, which a fan-out pays per
// recipient.
func writev(fd int, bufs [][]byte, iov *[]unix.Iovec) (int, error) {
	v := (*iov)[:0]
	for _, b := range bufs {
		if len(b) > 0 {
			e := unix.Iovec{Base: &b[0]}
			e.SetLen(len(b))
			v = append(v, e)
		}
	}
	if len(v) == 0 {
		return 0, nil
	}
	n, _, errno := unix.Syscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&v[0])), uintptr(len(v)))
	clear(v) // keep no buffer alive
	*iov = v[:0]
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

func chunkLen(bufs [][]byte) int {
	n := 0
	for _, b := range bufs {
		n += len(b)
	}
	return n
}

// Queued returns the bytes queued and not yet accepted by the kernel. Any goroutine.
func (c *Conn) Queued() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.queuedLocked()
}

// Congested reports whether the queue is over its high-water mark. A writer
// that sees true should wait for OnDrain, drop, or close. Any goroutine.
func (c *Conn) Congested() bool {
	c.mu.Lock()
	over := c.queuedLocked() > int(c.highWater)
	if over {
		c.wantDrain.Store(true)
	}
	c.mu.Unlock()
	return over
}

// HighWater returns the connection's high-water mark in bytes. Any goroutine.
func (c *Conn) HighWater() int { return int(c.highWater) }

// Close starts closing the connection: a WebSocket gets a close frame with
// code and reason (code 0 sends none), then the queue is flushed (bounded by
// Config.CloseTimeout) and the socket closed. Idempotent. Any goroutine.
func (c *Conn) Close(code uint16, reason string) error {
	return c.closeWith(code, reason, &CloseError{Code: code, Reason: reason})
}

func (c *Conn) closeWith(code uint16, reason string, report error) error {
	c.mu.Lock()
	if c.closing || c.dead {
		c.mu.Unlock()
		return nil
	}
	if c.framing == FramingWebSocket && code != 0 {
		q := c.queue()
		before := q.openOwn()
		q.own = appendFrame(q.own, ws.OpClose, closePayload(code, reason), c.client)
		q.pendingBytes += q.ownGrew(before)
	}
	c.closing = true
	c.closingFlag.Store(true)
	if c.cls == nil {
		c.cls = &closeState{err: report}
	}
	wake := false
	if !c.dirty {
		c.dirty = true
		wake = !c.inTraffic && c.lp != nil
	}
	lp := c.lp
	c.mu.Unlock()
	if wake {
		lp.markDirty(c)
	}
	return nil
}

// opened runs on the loop when gnet has registered the connection.
func (c *Conn) opened(gc gnet.Conn, lp *loop) {
	c.mu.Lock()
	c.gc, c.lp, c.inTraffic = gc, lp, true
	c.mu.Unlock()
	c.isOpen = true
	c.lastRead = msClock(c.r.now.Load())
	lp.add(c)
	c.r.stats.accepted.Add(1)
	c.r.stats.open.Add(1)
	c.r.stats.openByFrame[c.framing].Add(1)
	c.h.OnOpen(c)
	if c.r.shutting.Load() {
		// Enrolled while Shutdown was closing the others.
		_ = c.Close(CloseGoingAway, "going away")
	}
	if x := c.x; x != nil {
		if x.sw != nil {
			x.sw.gc = gc
			if !c.readTLS(nil) { // plaintext crypto/tls still holds
				_ = c.Close(0, "")
			}
		}
		if len(x.carry) > 0 {
			c.r.stats.bytesIn.Add(uint64(len(x.carry)))
			n := c.consume(x.carry)
			x.carry = append([]byte(nil), x.carry[n:]...)
			if len(x.carry) == 0 {
				x.carry = nil
			}
		}
	}
	c.endCallback()
}

// traffic runs on the loop when bytes arrived.
func (c *Conn) traffic() gnet.Action {
	gc := c.gc
	in := gc.InboundBuffered()
	if in == 0 {
		return gnet.None
	}
	c.lastRead = msClock(c.r.now.Load())
	// Bytes left unconsumed last time are offered again: count only new ones.
	c.r.stats.bytesIn.Add(uint64(in - int(c.leftIn)))
	c.leftIn = int32(in)
	x := c.x
	direct := x == nil || (x.tls == nil && x.carry == nil) // parse gnet's buffer in place
	if direct && c.wsr != nil && in < c.wsr.need {
		return gnet.None // the pending frame cannot be complete yet: do not Peek (copy) it again
	}
	buf, _ := gc.Peek(-1)
	c.mu.Lock()
	c.inTraffic = true
	c.mu.Unlock()
	switch {
	case direct:
		if n := c.consume(buf); n > 0 {
			_, _ = gc.Discard(n)
			c.leftIn = int32(len(buf) - n)
		}
	case x.tls != nil:
		_, _ = gc.Discard(len(buf))
		c.leftIn = 0
		ok := c.readTLS(buf)
		c.consumeCarry()
		if !ok {
			_ = c.Close(0, "")
		}
	default:
		// Rare: a partial frame was buffered by net/http before the hand-off.
		_, _ = gc.Discard(len(buf))
		c.leftIn = 0
		x.carry = append(x.carry, buf...)
		c.consumeCarry()
		if len(x.carry) == 0 {
			x.carry = nil
		}
	}
	c.endCallback()
	return gnet.None
}

// consumeCarry parses what x.carry holds and keeps the incomplete rest;
// below the parser's need it does not even look, so a large message over
// many reads costs linear time. Loop only.
func (c *Conn) consumeCarry() {
	x := c.x
	if c.wsr != nil && len(x.carry) < c.wsr.need {
		return
	}
	if n := c.consume(x.carry); n > 0 {
		x.carry = append(x.carry[:0], x.carry[n:]...)
	}
}

// endCallback leaves callback context and writes what the callback staged
// or queued. Loop only.
func (c *Conn) endCallback() {
	c.mu.Lock()
	c.inTraffic = false
	if st := c.lp.stage; len(st) > 0 {
		c.writeStaged(st)
		if cap(st) > 64<<10 {
			st = nil // do not keep a large answer's buffer
		}
		c.lp.stage = st[:0]
	}
	dirty := c.dirty
	c.mu.Unlock()
	if dirty {
		c.flush()
	}
	c.lp.scheduleBatch()
}

// CallbackBatch returns the Batch of the event loop running c's OnOpen or
// OnMessage: what is sent through it is written by that loop once it has
// handled the events of its current wake-up, one write per recipient for
// all of them (a publish routed to many subscribers, or many publishes in
// one read or one pass). Nil outside such a callback
// (a function run by Execute, say): the caller then uses a Batch of its
// own. c's loop goroutine only.
func (c *Conn) CallbackBatch() *Batch {
	c.mu.Lock()
	in := c.inTraffic
	c.mu.Unlock()
	if !in {
		return nil
	}
	return &c.lp.batch
}

// writeStaged writes what a callback staged straight to the socket (there
// is no queue: see send) and queues what the kernel does not take. The
// write happens under mu, so no other sender's bytes can overtake it; gnet
// must hold nothing of ours (a 101 it could not write whole). Loop only,
// mu held.
func (c *Conn) writeStaged(st []byte) {
	n := 0
	if c.isOpen && c.gc.OutboundBuffered() == 0 {
		var err error
		if n, err = unix.Write(c.gc.Fd(), st); err != nil || n < 0 {
			n = 0 // EAGAIN, or an error the loop will meet and close on
		}
		c.r.stats.bytesOut.Add(uint64(n))
	}
	if n == len(st) {
		return
	}
	q := c.queue()
	q.pendingBytes += q.appendOwn(st[n:])
	c.dirty = true
}

// consume parses buf and delivers what is complete; it returns the bytes
// used. After a protocol error or a close it swallows everything. Loop only.
func (c *Conn) consume(buf []byte) int {
	if c.closingFlag.Load() {
		return len(buf)
	}
	var n int
	var cerr *CloseError
	switch c.framing {
	case FramingRaw:
		c.r.stats.msgsIn.Add(1)
		c.h.OnMessage(c, buf, false)
		return len(buf)
	case FramingLen16:
		n, cerr = splitLen16(buf, c)
	default:
		r := c.wsr
		if r == nil {
			// Most reads hold whole frames: parse with the loop's reader
			// and give the connection one of its own only when state is
			// left over (a partial frame, a fragmented message), so an
			// idle connection has none.
			r = &c.lp.wsr
			*r = wsReader{server: !c.client, maxMessage: c.maxMessage()}
		}
		n, cerr = r.parse(buf, c)
		if r != c.wsr && cerr == nil && (n < len(buf) || r.fragging) {
			own := *r
			c.wsr = &own
		}
	}
	if cerr != nil && cerr != errStop {
		c.closingFlag.Store(true) // no more input, even if a close is already under way
		c.r.stats.protoErrors.Add(1)
		c.r.log.Debug("runtime: closing connection on bad input", "remote", c.remoteAddr(), "code", cerr.Code, "reason", cerr.Reason)
		_ = c.Close(cerr.Code, cerr.Reason)
		return len(buf)
	}
	return n
}

// maxMessage is the connection's inbound message limit.
func (c *Conn) maxMessage() int {
	if c.maxMsg > 0 {
		return int(c.maxMsg)
	}
	return c.r.cfg.MaxMessage
}

// onLen16 receives one SMQ raw message from splitLen16. Loop only.
func (c *Conn) onLen16(msg []byte) bool {
	c.r.stats.msgsIn.Add(1)
	c.h.OnMessage(c, msg, false)
	return !c.closingFlag.Load()
}

// onFrame receives one WebSocket message or control frame from the parser. Loop only.
func (c *Conn) onFrame(ev wsEvent) bool {
	switch ev.op {
	case ws.OpText, ws.OpBinary:
		c.r.stats.msgsIn.Add(1)
		c.h.OnMessage(c, ev.payload, ev.op == ws.OpText)
	case ws.OpPing:
		_, _ = c.send(ws.OpPong, ev.payload, nil)
	case ws.OpPong:
		// lastRead was refreshed by the read itself.
	case ws.OpClose:
		c.closingFlag.Store(true) // no more input (closeWith sets it too, unless already closing)
		peer := &CloseError{Code: CloseNoStatus}
		code := CloseNormal
		if len(ev.payload) >= 2 {
			peer.Code = binary.BigEndian.Uint16(ev.payload)
			peer.Reason = string(ev.payload[2:])
			code = peer.Code
		}
		// Echo the peer's code (RFC 6455 §5.5.1); the peer's close is what we report.
		_ = c.closeWith(code, "", peer)
		return false
	}
	return !c.closingFlag.Load()
}

// flush hands the queued frames to gnet, which writes them or keeps the
// rest in its outbound buffer. Loop only.
func (c *Conn) flush() {
	c.mu.Lock()
	c.dirty = false
	q := c.snd
	if q == nil {
		closing := c.closing
		c.mu.Unlock()
		c.afterFlush(0, closing)
		return
	}
	bufs, own, n := q.pending, q.own, q.pendingBytes
	q.pending, q.own = q.spare[:0], q.ownSpare[:0]
	q.spare, q.ownSpare = nil, nil
	q.pendingBytes = 0
	q.inflight = n // counted against MaxQueue until gnet has them
	q.ownOpen = false
	closing := c.closing
	c.mu.Unlock()

	if c.isOpen && len(bufs) > 0 {
		for rest := bufs; len(rest) > 0 && c.isOpen; {
			chunk := rest[:min(len(rest), 1024)] // IOV_MAX
			rest = rest[len(chunk):]
			if x := c.x; x != nil && x.tls != nil {
				for _, b := range chunk {
					_, _ = x.tls.Write(b) // encrypts on the loop; switchConn hands it to gnet
				}
			} else if len(chunk) == 1 {
				_, _ = c.gc.Write(chunk[0])
			} else {
				c.writevLoop(chunk)
			}
		}
		c.r.stats.bytesOut.Add(uint64(n))
	}
	out := 0
	if c.isOpen {
		out = c.gc.OutboundBuffered()
	}
	clear(bufs)
	c.mu.Lock()
	if c.snd == q { // closed() drops the queue
		q.outbound, q.inflight = out, 0
		if q.spare == nil && cap(bufs) <= 1024 {
			q.spare = bufs[:0]
		}
		if q.ownSpare == nil && cap(own) <= 64<<10 {
			q.ownSpare = own[:0]
		}
	}
	c.mu.Unlock()
	c.afterFlush(out, closing)
}

// writevLoop writes bufs on the loop: with writev and the loop's iovec
// scratch while gnet holds nothing of c's (gnet's Writev allocates an iovec
// array per call), and through gnet, which keeps it, for what the socket
// does not take. bufs is modified. Loop only.
func (c *Conn) writevLoop(bufs [][]byte) {
	if c.gc.OutboundBuffered() == 0 {
		n, err := writev(c.gc.Fd(), bufs, &c.lp.iov)
		if err != nil || n < 0 {
			n = 0 // EAGAIN, or an error gnet meets next and closes on
		}
		if bufs = advance(bufs, n); len(bufs) == 0 {
			return
		}
	}
	_, _ = c.gc.Writev(bufs)
}

// afterFlush starts watching a connection whose bytes wait in gnet's buffer
// or that is closing, and reports drains. Loop only.
func (c *Conn) afterFlush(out int, closing bool) {
	if !c.isOpen {
		return
	}
	if out > 0 || closing {
		c.lp.watch(c)
	} else if !c.wantDrain.Load() {
		// Everything went out and nobody waits for a drain: the common case
		// of every flush needs no second look at the queue.
		c.lp.unwatch(c)
		return
	}
	c.checkDrain(c.r.now.Load())
}

// checkDrain refreshes the outbound figure, reports a drain and completes a
// close once flushed (or timed out). Loop only.
func (c *Conn) checkDrain(now int64) {
	if !c.isOpen {
		c.lp.unwatch(c)
		return
	}
	out := c.gc.OutboundBuffered()
	c.mu.Lock()
	if c.snd != nil {
		c.snd.outbound = out
	}
	q := c.queuedLocked()
	closing := c.closing
	cutAt := int64(0)
	if closing {
		if c.cls.at == 0 {
			c.cls.at = now + int64(c.r.cfg.CloseTimeout)
		}
		cutAt = c.cls.at
	}
	c.mu.Unlock()
	if closing {
		if q == 0 || now >= cutAt {
			_ = c.lp.el.Close(c.gc) // runs closed() synchronously
		}
		return
	}
	if out == 0 {
		c.lp.unwatch(c)
	}
	if q <= int(c.highWater)/2 && c.wantDrain.CompareAndSwap(true, false) {
		c.h.OnDrain(c)
	}
}

// closed runs on the loop when gnet has closed the socket.
func (c *Conn) closed(err error) {
	if !c.isOpen {
		return
	}
	c.isOpen = false
	remote := c.gc.RemoteAddr() // valid until this callback returns
	if c.admitted {
		c.r.release(ipKey(remote.String()))
	}
	c.lp.unwatch(c)
	c.lp.remove(c)
	c.r.stats.open.Add(-1)
	c.r.stats.openByFrame[c.framing].Add(-1)
	c.r.stats.closed.Add(1)
	c.mu.Lock()
	c.dead = true
	c.closingFlag.Store(true)
	c.snd = nil
	if c.cls == nil {
		c.cls = &closeState{}
	}
	c.cls.remote = remote
	report := c.cls.err
	c.mu.Unlock()
	c.wsr = nil
	if x := c.x; x != nil {
		x.carry = nil
		if x.sw != nil {
			x.sw.gc, x.sw.in = nil, nil
		}
	}
	if report == nil {
		switch {
		case c.framing == FramingWebSocket:
			reason := "connection closed without a close frame"
			if err != nil && !errors.Is(err, io.EOF) {
				reason = err.Error()
			}
			report = &CloseError{Code: CloseAbnormal, Reason: reason}
		case err != nil:
			report = err
		}
	}
	c.h.OnClose(c, report)
}

// SetNoDelay turns Nagle's algorithm off (true) or on. Any goroutine.
func (c *Conn) SetNoDelay(noDelay bool) error {
	gc := c.gnetConn()
	if gc == nil {
		return ErrClosed
	}
	return gc.SetNoDelay(noDelay)
}

// SetKeepAlive turns TCP keepalive on with the given idle time and probe
// interval, or off. Any goroutine.
func (c *Conn) SetKeepAlive(on bool, idle, interval time.Duration) error {
	gc := c.gnetConn()
	if gc == nil {
		return ErrClosed
	}
	if !on {
		return gc.SetKeepAlive(false, time.Second, time.Second, 1)
	}
	return gc.SetKeepAlive(true, idle, interval, 5)
}

func (c *Conn) gnetConn() gnet.Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead {
		return nil
	}
	return c.gc
}
