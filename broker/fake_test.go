package broker

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tarponrt/tarpon/runtime"
)

// fakeConn is a slice-backed conn for hub tests without sockets. Sends are
// recorded as SMQ messages (unframed again); Close calls the hub's close
// path synchronously, which is stricter than the reactor (re-entrancy).
type fakeConn struct {
	h   *Hub
	p   *Peer
	raw bool

	congested atomic.Bool

	mu     sync.Mutex
	out    [][]byte
	closed bool
	code   uint16
	reason string
}

func (f *fakeConn) Send(msg []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return runtime.ErrClosed
	}
	f.out = append(f.out, bytes.Clone(msg))
	return nil
}

func (f *fakeConn) CallbackBatch() *runtime.Batch { return nil }

func (f *fakeConn) TrySend(msg []byte, _ *runtime.Batch) (bool, error) {
	if f.Congested() {
		return false, nil
	}
	return true, f.Send(msg)
}

func (f *fakeConn) TrySendEncoded(frame []byte, _ *runtime.Batch) (bool, error) {
	if f.Congested() {
		return false, nil
	}
	return true, f.SendEncoded(frame)
}

func (f *fakeConn) SendEncoded(frame []byte) error {
	var msg []byte
	if f.raw {
		n := int(binary.BigEndian.Uint16(frame))
		if n != len(frame) {
			panic(fmt.Sprintf("bad len16 frame: prefix %d, len %d", n, len(frame)))
		}
		msg = frame[2:]
	} else {
		msg = unframeWS(frame)
	}
	return f.Send(msg)
}

// unframeWS parses one unmasked server frame (FIN, binary).
func unframeWS(b []byte) []byte {
	if b[0] != 0x82 {
		panic(fmt.Sprintf("unexpected ws header byte %#x", b[0]))
	}
	n, off := int(b[1]&0x7f), 2
	switch n {
	case 126:
		n, off = int(binary.BigEndian.Uint16(b[2:])), 4
	case 127:
		n, off = int(binary.BigEndian.Uint64(b[2:])), 10
	}
	if off+n != len(b) {
		panic("bad ws frame length")
	}
	return b[off:]
}

func (f *fakeConn) Congested() bool { return f.congested.Load() }

// Execute runs fn at once: the test goroutine stands in for the event loop.
func (f *fakeConn) Execute(fn func()) error {
	if f.isClosed() {
		return runtime.ErrClosed
	}
	fn()
	return nil
}

func (f *fakeConn) Close(code uint16, reason string) error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	f.closed, f.code, f.reason = true, code, reason
	f.mu.Unlock()
	f.h.closed(f.p, nil)
	return nil
}

func (f *fakeConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.ParseIP("::ffff:127.0.0.1"), Port: 40000}
}

func (f *fakeConn) isClosed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

// take returns and clears the recorded messages.
func (f *fakeConn) take() [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.out
	f.out = nil
	return out
}

// fclient drives one fake peer from the test goroutine.
type fclient struct {
	t    *testing.T
	h    *Hub
	p    *Peer
	c    *fakeConn
	etid uint32
	seed uint32
}

func newFakeHub(t *testing.T, opts *Options) *Hub {
	t.Helper()
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return newHub(&o, encoders{ws: runtime.AppendServerFrame, raw: runtime.AppendLen16})
}

// openFake opens a peer and consumes its Init.
func openFake(t *testing.T, h *Hub, raw bool) *fclient {
	t.Helper()
	p := &Peer{h: h, raw: raw}
	p.ci.Store(&ConnectInfo{})
	fc := &fakeConn{h: h, p: p, raw: raw}
	p.c = fc
	h.open(p)
	c := &fclient{t: t, h: h, p: p, c: fc}
	init := c.expect(msgInit)
	c.seed = init.Seed
	if string(init.Text) != "127.0.0.1" {
		t.Fatalf("Init IP %q, want 127.0.0.1 (::ffff: stripped)", init.Text)
	}
	return c
}

// connectFake opens a peer and completes Connect v1 with uid.
func connectFake(t *testing.T, h *Hub, raw bool, uid string) *fclient {
	t.Helper()
	c := openFake(t, h, raw)
	msg, _ := AppendConnect(nil, 1, 0, []byte(uid), nil, []byte("info"))
	c.send(msg)
	ack := c.expect(msgConnack)
	if ack.Code != ConnackAccepted || ack.ID == 0 || len(ack.Text) != 0 {
		t.Fatalf("Connack %+v", ack)
	}
	c.etid = ack.ID
	return c
}

func (c *fclient) send(msg []byte) { c.h.message(c.p, msg) }

// expect returns the next recorded message, which must be of type typ.
func (c *fclient) expect(typ MsgType) Packet {
	c.t.Helper()
	out := c.c.take()
	if len(out) == 0 {
		c.t.Fatalf("expected %v, got nothing", typ)
	}
	// Put back the rest.
	c.c.mu.Lock()
	c.c.out = append(out[1:], c.c.out...)
	c.c.mu.Unlock()
	p, err := Decode(out[0])
	if err != nil || p.Type != typ {
		c.t.Fatalf("expected %v, got % X (%v)", typ, out[0], err)
	}
	return p
}

// expectRaw returns the next recorded message's bytes.
func (c *fclient) expectRaw() []byte {
	c.t.Helper()
	out := c.c.take()
	if len(out) == 0 {
		c.t.Fatal("expected a message, got nothing")
	}
	c.c.mu.Lock()
	c.c.out = append(out[1:], c.c.out...)
	c.c.mu.Unlock()
	return out[0]
}

func (c *fclient) expectNothing() {
	c.t.Helper()
	if out := c.c.take(); len(out) != 0 {
		c.t.Fatalf("expected nothing, got %d message(s), first % X", len(out), out[0])
	}
}

func (c *fclient) expectClosed() {
	c.t.Helper()
	if !c.c.isClosed() {
		c.t.Fatal("expected the connection to be closed")
	}
}

func (c *fclient) expectOpen() {
	c.t.Helper()
	if c.c.isClosed() {
		c.t.Fatalf("connection closed unexpectedly (%d %q)", c.c.code, c.c.reason)
	}
}

func (c *fclient) subscribe(name string) uint32 {
	c.t.Helper()
	c.send(AppendSubscribe(nil, name))
	a := c.expect(msgSuback)
	if a.Status != 0 || string(a.Text) != name {
		c.t.Fatalf("Suback %+v for %q", a, name)
	}
	return a.ID
}

func (c *fclient) publish(tid, subtid uint32, payload string) {
	c.send(AppendPublish(nil, tid, c.etid, subtid, []byte(payload)))
}

func (c *fclient) expectPublish(tid, ptid, subtid uint32, payload string) {
	c.t.Helper()
	m := c.expect(msgPublish)
	if m.Tid != tid || m.Ptid != ptid || m.Subtid != subtid || string(m.Payload) != payload {
		c.t.Fatalf("Publish %+v; want tid %#x ptid %#x subtid %d %q", m, tid, ptid, subtid, payload)
	}
}

func (c *fclient) expectChange(id uint32, count uint32) {
	c.t.Helper()
	m := c.expect(msgChange)
	if m.ID != id || m.Count != count {
		c.t.Fatalf("Change(%#x, %d); want (%#x, %d)", m.ID, m.Count, id, count)
	}
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
