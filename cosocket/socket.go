package cosocket

import (
	"errors"
	"fmt"
	"net"
	"sync"

	lua "github.com/yuin/gopher-lua"

	"github.com/tarponrt/tarpon/runtime"
	"github.com/tarponrt/tarpon/scheduler"
)

// waiter is a task parked on a socket. The park sequence number tells a
// stale entry (the task was resumed by something else, e.g. "sysshutdown",
// and may be parked elsewhere now) from a live one.
type waiter struct {
	t   *scheduler.Task
	seq uint64
}

// park records t as about to park; the caller then returns t.Park(L).
func park(t *scheduler.Task) waiter { return waiter{t: t, seq: t.ParkSeq() + 1} }

// live reports whether the waiter is still parked where it was recorded.
func (w waiter) live() bool { return w.t != nil && w.t.Parked() && w.t.ParkSeq() == w.seq }

// rxMsg is one inbound message waiting for sock:read.
type rxMsg struct {
	data string // a string, so Lua gets it without another copy
	text bool
}

// Socket is the Go side of a Lua socket object. Fields marked "VM" belong to
// the VM's owner (the scheduler goroutine, or an event loop in a Runner
// turn); the rx queue is shared with the connection's event loop under mu.
// Outside a Runner turn the event loop never touches Lua: it queues.
type Socket struct {
	lib  *Lib
	ud   *lua.LUserData // VM
	conn *runtime.Conn  // nil for an unconnected cosocket (ba.socket.event)
	ln   *listener      // non-nil for a listen socket (ba.socket.bind)

	// VM-only state.
	owner     *scheduler.Task // the coroutine the socket belongs to (after event)
	mode      byte            // 's' cosocket, 'r' asynchronous, 0 none
	reader    waiter          // task parked in read or accept
	readTimer *scheduler.Timer
	disabled  waiter   // owner parked in disable
	writers   []waiter // cosocket writers parked until the queue drains
	state     string
	queueLen  int  // limit for non-cosocket writers (sock:queuelen)
	maxSize   int  // sock:maxsize, recorded for BAS compatibility
	paused    bool // reception paused by sock:disable() from another coroutine
	dead      bool // closed and reported to Lua
	readAfter int  // reads on a dead socket; the second raises (BAS)
	closeCode uint16
	res       [2]lua.LValue // read's results, reused (see messageResult)
	// more: when read last returned a message, others were queued behind
	// it, so the reader is answering a burst (see sockWrite).
	more bool

	// Shared with the event loop.
	mu      sync.Mutex
	rx      []rxMsg
	rxHead  int
	rxBytes int
	rxErr   error // set once by OnClose
	rxDone  bool
	posted  bool // deliver is queued on the scheduler
	deliver func(*lua.LState)
	drained func(*lua.LState)

	// The message OnMessage offers deliverDirect, which runs at once on the
	// same event loop (Runner.TryRun) or not at all. Event loop only.
	direct     []byte
	directText bool
	handOver   func(*lua.LState)
}

func (lib *Lib) newSocket(L *lua.LState) *Socket {
	s := &Socket{lib: lib, state: "notcon", queueLen: lib.cfg.QueueLen, maxSize: 8192}
	s.deliver = s.deliverVM
	s.drained = s.drainedVM
	s.handOver = s.deliverDirect
	s.ud = L.NewUserData()
	s.ud.Value = s
	L.SetMetatable(s.ud, L.GetTypeMetatable(socketType))
	lib.total.Add(1)
	lib.active.Add(1)
	return s
}

// runtime.Handler: these run on the connection's event loop.

// OnOpen implements runtime.Handler.
func (s *Socket) OnOpen(*runtime.Conn) {}

// OnMessage implements runtime.Handler: it copies msg into the rx queue and
// posts one delivery to the scheduler per burst, not per message.
func (s *Socket) OnMessage(c *runtime.Conn, msg []byte, text bool) {
	s.mu.Lock()
	if s.rxBytes+len(msg) > s.lib.cfg.MaxInbox {
		s.mu.Unlock()
		s.lib.inboxDrops.Add(1)
		s.lib.log.Warn("cosocket: closing socket: Lua reader too slow, inbox limit reached",
			"remote", c.RemoteAddr(), "limit", s.lib.cfg.MaxInbox)
		_ = c.Close(runtime.ClosePolicyViolation, "reader too slow")
		return
	}
	if s.rxHead == len(s.rx) && !s.posted {
		// Nothing waits ahead of msg: when the VM is free, hand it to the
		// reader from this loop without queueing it (the VM side only
		// pops, so the queue stays empty meanwhile).
		s.mu.Unlock()
		s.direct, s.directText = msg, text
		ok := s.lib.deliverNow(c, s.handOver)
		s.direct = nil
		if ok {
			return
		}
		s.mu.Lock()
	}
	s.rx = append(s.rx, rxMsg{data: string(msg), text: text})
	s.rxBytes += len(msg)
	post := !s.posted
	s.posted = true
	s.mu.Unlock()
	if post {
		s.lib.deliverFrom(c, s.deliver)
	}
}

// OnDrain implements runtime.Handler: writers suspended on this socket resume.
func (s *Socket) OnDrain(*runtime.Conn) { s.lib.loop.Post(s.drained) }

// OnClose implements runtime.Handler.
func (s *Socket) OnClose(_ *runtime.Conn, err error) {
	s.mu.Lock()
	s.rxErr, s.rxDone = err, true
	post := !s.posted
	s.posted = true
	s.mu.Unlock()
	if post {
		s.lib.loop.Post(s.deliver)
	}
}

// deliverVM hands queued input to a parked reader and reports a close. VM.
func (s *Socket) deliverVM(*lua.LState) {
	// One critical section: clear posted, pop what the reader gets, see
	// whether the connection is over (reader and paused are VM-only, so
	// reading them here is safe).
	s.mu.Lock()
	s.posted = false
	var m rxMsg
	got, closed := false, false
	if s.reader.live() && !s.paused {
		m, got = s.popLocked()
		closed = !got && s.rxDone
	}
	done := s.rxDone && s.rxHead == len(s.rx)
	s.mu.Unlock()
	switch {
	case got:
		s.wake(s.messageResult(m)...)
	case closed:
		// Mark the socket dead before the reader runs (markDead wakes it),
		// so one more read raises, as in BAS.
		s.readAfter++
		s.markDead()
		return
	}
	if done && !s.dead {
		s.markDead()
	}
}

// deliverDirect gives the message OnMessage holds in s.direct to a parked
// reader, or queues it for the next read. It runs on the event loop that
// received it, as a Runner turn, with nothing queued ahead. VM.
func (s *Socket) deliverDirect(*lua.LState) {
	m := rxMsg{data: string(s.direct), text: s.directText}
	if s.reader.live() && !s.paused {
		s.more = false
		s.wake(s.messageResult(m)...)
		return
	}
	s.mu.Lock()
	s.rx = append(s.rx, m)
	s.rxBytes += len(m.data)
	s.mu.Unlock()
}

// popLocked takes the oldest queued message and records in s.more whether
// others wait behind it. Called on the VM with mu held.
func (s *Socket) popLocked() (rxMsg, bool) {
	s.more = false
	if s.rxHead == len(s.rx) {
		return rxMsg{}, false
	}
	m := s.rx[s.rxHead]
	s.rx[s.rxHead] = rxMsg{}
	s.rxHead++
	s.rxBytes -= len(m.data)
	if s.rxHead == len(s.rx) {
		s.rx, s.rxHead = s.rx[:0], 0
	} else {
		s.more = true
	}
	return m, true
}

// messageResult is what read returns for m, in a buffer of the socket's own
// (the scheduler copies resume values onto the coroutine's stack). VM.
func (s *Socket) messageResult(m rxMsg) []lua.LValue {
	s.res[0] = lua.LString(m.data)
	if s.conn != nil && s.conn.Framing() == runtime.FramingWebSocket {
		s.res[1] = lua.LBool(m.text)
		return s.res[:2]
	}
	return s.res[:1]
}

// take pops the next message as read's results, or the close as
// nil, "socketclosed", code once the queue is empty. VM.
func (s *Socket) take() ([]lua.LValue, bool) {
	s.mu.Lock()
	m, got := s.popLocked()
	done := s.rxDone
	s.mu.Unlock()
	if got {
		return s.messageResult(m), true
	}
	if done {
		return s.closedResult(), true
	}
	return nil, false
}

// closedResult is what read returns once the connection is gone. Called with mu held or VM-only data.
func (s *Socket) closedResult() []lua.LValue {
	var ce *runtime.CloseError
	if errors.As(s.rxErr, &ce) && ce.Code != 0 {
		return []lua.LValue{lua.LNil, lua.LString("socketclosed"), lua.LNumber(ce.Code)}
	}
	return []lua.LValue{lua.LNil, lua.LString("socketclosed")}
}

// wake resumes the task parked in read or accept. VM.
func (s *Socket) wake(vals ...lua.LValue) {
	w := s.reader
	s.reader = waiter{}
	if s.readTimer != nil {
		s.readTimer.Stop()
		s.readTimer = nil
	}
	if s.state == "read" || s.state == "accept" {
		s.state = "exec"
	}
	if w.live() {
		s.lib.loop.Resume(w.t, vals...)
	}
}

// drainedVM resumes cosocket writers once the queue has drained. VM.
func (s *Socket) drainedVM(*lua.LState) {
	ws := s.writers
	s.writers = nil
	for _, w := range ws {
		if w.live() {
			s.lib.loop.Resume(w.t, lua.LTrue)
		}
	}
}

// markDead records that the connection is gone and releases everyone
// waiting on it. VM.
func (s *Socket) markDead() {
	if s.dead {
		return
	}
	s.dead = true
	s.state = "terminated"
	s.lib.active.Add(-1)
	if s.reader.live() {
		s.mu.Lock()
		res := s.closedResult()
		s.mu.Unlock()
		s.wake(res...)
	}
	ws := s.writers
	s.writers = nil
	for _, w := range ws {
		if w.live() {
			s.lib.loop.Resume(w.t, lua.LNil, lua.LString("socketclosed"))
		}
	}
}

// close closes the connection (WebSocket: 1000) and releases waiters. VM.
func (s *Socket) close() bool {
	if s.ln != nil {
		if s.dead {
			return false
		}
		s.ln.close()
		s.markDead()
		return true
	}
	if s.conn == nil {
		if s.dead {
			return false
		}
		s.markDead()
		return true
	}
	if s.dead || s.state == "closing" {
		return false
	}
	code := uint16(0)
	if s.conn.Framing() == runtime.FramingWebSocket {
		code = runtime.CloseNormal
	}
	_ = s.conn.Close(code, "")
	s.mu.Lock()
	if !s.rxDone {
		s.rxDone, s.rxErr = true, &runtime.CloseError{Code: code}
	}
	s.mu.Unlock()
	s.markDead()
	return true
}

// String formats the socket the way BAS prints it.
func (s *Socket) String() string {
	local, peer := "", ""
	if s.conn != nil {
		local, peer = addrString(s.conn.LocalAddr()), addrString(s.conn.RemoteAddr())
	} else if s.ln != nil {
		local = addrString(s.ln.ln.Addr())
	}
	return fmt.Sprintf("[Sock %p S:%s {%s -> %s}]", s, s.state, local, peer)
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}
