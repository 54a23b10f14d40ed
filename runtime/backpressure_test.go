package runtime

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"
)

// serveHandler mounts /ws on a fresh HTTP server that upgrades into r with
// h and hands each new Conn to conns. It returns the server's address.
func serveHandler(t testing.TB, r *Reactor, h Handler, opts *ConnOptions) (string, <-chan *Conn) {
	t.Helper()
	conns := make(chan *Conn, 16)
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", func(w http.ResponseWriter, req *http.Request) {
		c, err := r.Upgrade(w, req, h, opts)
		if err != nil {
			t.Logf("upgrade: %v", err)
			return
		}
		conns <- c
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String(), conns
}

// smallBufferDialer dials with an 8 KiB receive buffer, set before connect.
func smallBufferDialer() *net.Dialer {
	return &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 8<<10)
		})
		if err != nil {
			return err
		}
		return serr
	}}
}

// smallSendBuffer shrinks the server socket's send buffer to 4 KiB, so a
// client that does not read leaves the queue in the runtime.
func smallSendBuffer(t testing.TB, c *Conn) {
	t.Helper()
	done := make(chan error, 1)
	if err := c.Execute(func() { done <- c.gnetConn().SetWriteBuffer(4 << 10) }); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// slowPeer connects a client with small socket buffers to a serveHandler
// server at addr and shrinks the server side's send buffer, so that little
// of what the server sends fits in the kernel.
func slowPeer(t *testing.T, addr string, conns <-chan *Conn) (net.Conn, *rawWS, *Conn) {
	t.Helper()
	nc, br, err := rawHandshake(smallBufferDialer(), addr, "/ws")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	c := nextConn(t, conns)
	smallSendBuffer(t, c)
	return nc, &rawWS{t: t, nc: nc, br: br}, c
}

func nextConn(t testing.TB, conns <-chan *Conn) *Conn {
	t.Helper()
	select {
	case c := <-conns:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no connection reached the handler")
		return nil
	}
}

// TestBackpressure: a writer floods a client that does not read. The queue
// goes over HighWater (Congested), Send fails with ErrQueueFull at MaxQueue
// and each refusal is counted; once the client reads everything, every
// accepted message arrives in order and OnDrain fires once.
func TestBackpressure(t *testing.T) {
	const highWater, maxQueue, chunk = 32 << 10, 256 << 10, 16 << 10
	ts := newTestServer(t, Config{HighWater: highWater, MaxQueue: maxQueue})
	var drains atomic.Int32
	h := &funcHandler{onDrain: func(*Conn) { drains.Add(1) }}
	addr, conns := serveHandler(t, ts.r, h, nil)

	// Small socket buffers so the kernel soaks up little of the flood.
	d := smallBufferDialer()
	nc, br, err := rawHandshake(d, addr, "/ws")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c := nextConn(t, conns)
	// Once the flood has filled the kernel's small buffers, the queue cannot
	// fall to HighWater/2 (and report a drain) before the client reads.
	smallSendBuffer(t, c)
	if c.HighWater() != highWater {
		t.Fatalf("HighWater %d, want %d", c.HighWater(), highWater)
	}

	// Flood until the queue is full and stays over HighWater: the kernel's
	// buffers are full too, so only the client reading can drain it.
	msg := make([]byte, chunk)
	var accepted, refused uint64
	congestedAt := -1
	deadline := time.Now().Add(20 * time.Second)
	for {
		binary.BigEndian.PutUint64(msg, accepted)
		switch err := c.Send(msg); {
		case err == nil:
			accepted++
		case errors.Is(err, ErrQueueFull):
			refused++
		default:
			t.Fatalf("send: %v", err)
		}
		if c.Congested() {
			if congestedAt < 0 {
				congestedAt = int(accepted)
			}
			if q := c.Queued(); refused > 0 && q > highWater {
				break // (TestQueueStaysUnderMaxQueue checks the upper bound)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue never filled: %d sent, %d refused, queued %d", accepted, refused, c.Queued())
		}
	}
	t.Logf("congested after %d messages; %d accepted, %d refused, %d queued", congestedAt, accepted, refused, c.Queued())
	if drops := ts.r.Stats().QueueDrops; drops != refused {
		t.Fatalf("Stats().QueueDrops %d, want %d", drops, refused)
	}
	drainsBefore := drains.Load()

	// The client reads everything: every accepted message, in order.
	r := &rawWS{t: t, nc: nc, br: br}
	_ = nc.SetReadDeadline(time.Now().Add(20 * time.Second))
	for i := range accepted {
		b0, p, err := r.readFrame()
		if err != nil {
			t.Fatalf("message %d of %d: %v", i, accepted, err)
		}
		if b0 != finBinary || len(p) != chunk || binary.BigEndian.Uint64(p) != i {
			t.Fatalf("message %d: first byte %#x, %d bytes, sequence %d", i, b0, len(p), binary.BigEndian.Uint64(p))
		}
	}
	waitFor(t, 5*time.Second, "OnDrain", func() bool { return drains.Load() > drainsBefore })
	waitFor(t, 5*time.Second, "empty queue", func() bool { return c.Queued() == 0 })
	if got := drains.Load() - drainsBefore; got != 1 {
		t.Fatalf("OnDrain fired %d times after the client read, want 1", got)
	}
	if drops := ts.r.Stats().QueueDrops; drops != refused {
		t.Fatalf("Stats().QueueDrops %d, want %d", drops, refused)
	}
	if c.Congested() {
		t.Fatal("still congested after draining")
	}
	// And the connection works normally again.
	if err := c.Send([]byte("after")); err != nil {
		t.Fatal(err)
	}
	if _, p, err := r.readFrame(); err != nil || string(p) != "after" {
		t.Fatalf("%q %v", p, err)
	}
	if got := drains.Load() - drainsBefore; got != 1 {
		t.Fatalf("OnDrain fired %d times, want 1 (a small send must not report a drain)", got)
	}
}

// TestCloseFromServer: Conn.Close(code, reason) reaches the client as a close
// frame with that code and reason after everything queued before it; Sends
// after Close fail with ErrClosed; OnClose reports the code.
func TestCloseFromServer(t *testing.T) {
	ts := newTestServer(t, Config{})
	h := &funcHandler{}
	addr, conns := serveHandler(t, ts.r, h, nil)

	t.Run("raw client", func(t *testing.T) {
		nc, br, err := rawHandshake(&net.Dialer{}, addr, "/ws")
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
		c := nextConn(t, conns)
		for _, m := range []string{"one", "two", "three"} {
			if err := c.SendText([]byte(m)); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Close(4001, "why"); err != nil {
			t.Fatal(err)
		}
		if err := c.Close(4002, "again"); err != nil {
			t.Fatalf("second Close: %v, want nil (idempotent)", err)
		}
		for name, send := range map[string]func() error{
			"Send":        func() error { return c.Send([]byte("late")) },
			"SendText":    func() error { return c.SendText([]byte("late")) },
			"SendEncoded": func() error { return c.SendEncoded(AppendServerFrame(nil, false, []byte("late"))) },
			"Ping":        func() error { return c.Ping(nil) },
		} {
			if err := send(); !errors.Is(err, ErrClosed) {
				t.Errorf("%s after Close: %v, want ErrClosed", name, err)
			}
		}
		r := &rawWS{t: t, nc: nc, br: br}
		for _, want := range []string{"one", "two", "three"} {
			if b0, p, err := r.readFrame(); err != nil || b0 != finText || string(p) != want {
				t.Fatalf("got %#x %q %v, want %q", b0, p, err, want)
			}
		}
		b0, p, err := r.readFrame()
		if err != nil || b0 != finClose || len(p) < 2 {
			t.Fatalf("close frame: %#x %x %v", b0, p, err)
		}
		if code, reason := binary.BigEndian.Uint16(p), string(p[2:]); code != 4001 || reason != "why" {
			t.Fatalf("close %d %q, want 4001 \"why\"", code, reason)
		}
		if _, err := br.ReadByte(); err == nil {
			t.Fatal("data after the close frame")
		}
		waitFor(t, 5*time.Second, "OnClose", h.closed)
		h.mu.Lock()
		err = h.closeErr
		h.mu.Unlock()
		var ce *CloseError
		if !errors.As(err, &ce) || ce.Code != 4001 || ce.Reason != "why" {
			t.Fatalf("OnClose(%v), want close 4001 why", err)
		}
		if err := c.Send([]byte("dead")); !errors.Is(err, ErrClosed) {
			t.Fatalf("Send on a closed conn: %v, want ErrClosed", err)
		}
	})

	t.Run("coder client", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cc := dialCoderURL(t, ctx, "ws://"+addr+"/ws")
		c := nextConn(t, conns)
		_ = c.Close(4001, "why")
		_, _, err := cc.Read(ctx)
		if status, ce := coderCloseStatus(err); status != 4001 || ce != "why" {
			t.Fatalf("coder read: %v, want close 4001 why", err)
		}
	})
}

// TestWebSocketClientRoleServerClose: a DialWebSocket (client role) Conn whose
// server closes with a code reports that code in OnClose and answers the
// close handshake with masked frames the server accepts.
func TestWebSocketClientRoleServerClose(t *testing.T) {
	ts := newTestServer(t, Config{})
	srvH := &funcHandler{onMessage: func(c *Conn, msg []byte, text bool) {
		if string(msg) == "close me" {
			_ = c.Close(4002, "as you wish")
			return
		}
		_ = c.SendText(msg)
	}}
	addr, conns := serveHandler(t, ts.r, srvH, nil)
	got := make(chan string, 1)
	cliH := &funcHandler{onMessage: func(_ *Conn, msg []byte, _ bool) { got <- string(msg) }}
	c, err := ts.r.DialWebSocket(context.Background(), "ws://"+addr+"/ws", cliH, nil)
	if err != nil {
		t.Fatal(err)
	}
	nextConn(t, conns)
	if err := c.SendText([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if m != "hello" {
			t.Fatalf("echo %q", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no echo")
	}
	if err := c.SendText([]byte("close me")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "client OnClose", cliH.closed)
	waitFor(t, 5*time.Second, "server OnClose", srvH.closed)
	cliH.mu.Lock()
	cerr := cliH.closeErr
	cliH.mu.Unlock()
	var ce *CloseError
	if !errors.As(cerr, &ce) || ce.Code != 4002 || ce.Reason != "as you wish" {
		t.Fatalf("client OnClose(%v), want close 4002 \"as you wish\"", cerr)
	}
	srvH.mu.Lock()
	serr := srvH.closeErr
	srvH.mu.Unlock()
	if !errors.As(serr, &ce) || ce.Code != 4002 {
		t.Fatalf("server OnClose(%v), want its own close 4002", serr)
	}
	if st := ts.r.Stats(); st.ProtocolErrors != 0 {
		t.Fatalf("%d protocol errors: the client's close reply must be a valid masked frame", st.ProtocolErrors)
	}
	if err := c.SendText([]byte("late")); !errors.Is(err, ErrClosed) {
		t.Fatalf("client Send after close: %v, want ErrClosed", err)
	}
}

// TestCloseFromServerPayload: what Close(code, reason) puts on the wire.
func TestCloseFromServerPayload(t *testing.T) {
	ts := newTestServer(t, Config{})
	h := &funcHandler{}
	addr, conns := serveHandler(t, ts.r, h, nil)
	cases := []struct {
		name       string
		code       uint16
		reason     string
		noFrame    bool // code 0: the TCP connection just ends
		wantReason string
	}{
		{name: "normal without reason", code: CloseNormal, wantReason: ""},
		{name: "application code with reason", code: 4999, reason: "bye now", wantReason: "bye now"},
		{name: "reason cut to 123 bytes", code: CloseGoingAway, reason: strings.Repeat("r", 200), wantReason: strings.Repeat("r", 123)},
		{name: "reason cut on a rune boundary", code: CloseGoingAway, reason: strings.Repeat("é", 100), wantReason: strings.Repeat("é", 61)},
		{name: "code 0 sends no close frame", code: 0, reason: "ignored", noFrame: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			nc, br, err := rawHandshake(&net.Dialer{}, addr, "/ws")
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
			c := nextConn(t, conns)
			_ = c.Close(tc.code, tc.reason)
			r := &rawWS{t: t, nc: nc, br: br}
			b0, p, err := r.readFrame()
			if tc.noFrame {
				if err == nil {
					t.Fatalf("got frame %#x %q, want the connection to end", b0, p)
				}
				if errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatal("connection not closed")
				}
				return
			}
			if err != nil || b0 != finClose || len(p) < 2 {
				t.Fatalf("close frame: %#x %q %v", b0, p, err)
			}
			if code, reason := binary.BigEndian.Uint16(p), string(p[2:]); code != tc.code || reason != tc.wantReason || !utf8.ValidString(reason) {
				t.Fatalf("close %d %q, want %d %q", code, reason, tc.code, tc.wantReason)
			}
			if _, err := br.ReadByte(); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("after the close frame: %v, want the connection to end", err)
			}
		})
	}
}

// TestConcurrentSendersThenClose: several goroutines send while another
// closes. Each sender's accepted messages arrive complete and in its order,
// nothing follows the close frame, and senders see only ErrClosed after it.
func TestConcurrentSendersThenClose(t *testing.T) {
	ts := newTestServer(t, Config{})
	h := &funcHandler{}
	addr, conns := serveHandler(t, ts.r, h, nil)
	// The race between a flush and Close is narrow: try it a few times.
	for round := range 5 {
		t.Run(fmt.Sprintf("round %d", round), func(t *testing.T) {
			nc, br, err := rawHandshake(&net.Dialer{}, addr, "/ws")
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			c := nextConn(t, conns)

			const senders, perSender = 8, 2000
			var accepted [senders]atomic.Int64
			var wrongErr atomic.Value
			var wg sync.WaitGroup
			for s := range senders {
				wg.Add(1)
				go func() {
					defer wg.Done()
					msg := make([]byte, 1+int(s)*37) // different sizes: 1 to 260 bytes
					for i := range perSender {
						msg[0] = byte(s)
						if len(msg) >= 5 {
							binary.BigEndian.PutUint32(msg[1:], uint32(i))
						}
						err := c.Send(msg)
						switch {
						case err == nil:
							accepted[s].Add(1)
						case errors.Is(err, ErrClosed):
							return
						default:
							wrongErr.Store(err)
							return
						}
					}
				}()
			}
			// Close while they are busy: once the first sender is a quarter through.
			waitFor(t, 10*time.Second, "senders under way", func() bool { return accepted[0].Load() >= perSender/4 })
			_ = c.Close(4003, "enough")
			wg.Wait()
			if err, _ := wrongErr.Load().(error); err != nil {
				t.Fatalf("sender got %v, want nil or ErrClosed", err)
			}

			r := &rawWS{t: t, nc: nc, br: br}
			_ = nc.SetReadDeadline(time.Now().Add(20 * time.Second))
			var got [senders]int64
			for {
				b0, p, err := r.readFrame()
				if err != nil {
					t.Fatalf("before the close frame: %v (got %v)", err, got)
				}
				if b0 == finClose {
					if code := binary.BigEndian.Uint16(p); code != 4003 {
						t.Fatalf("close code %d", code)
					}
					break
				}
				s := int(p[0])
				if b0 != finBinary || s >= senders || len(p) != 1+s*37 {
					t.Fatalf("bad frame %#x of %d bytes from sender %d", b0, len(p), s)
				}
				if len(p) >= 5 && int64(binary.BigEndian.Uint32(p[1:])) != got[s] {
					t.Fatalf("sender %d: message %d arrived as number %d", s, binary.BigEndian.Uint32(p[1:]), got[s])
				}
				got[s]++
			}
			for s := range senders {
				if got[s] != accepted[s].Load() {
					t.Fatalf("sender %d: %d accepted, %d arrived", s, accepted[s].Load(), got[s])
				}
			}
			if _, err := br.ReadByte(); err == nil {
				t.Fatal("data after the close frame")
			}
		})
	}
}

// TestCloseFlushesCongestedQueue: Close on a connection whose client is not
// reading keeps the queue; when the client reads (well within CloseTimeout)
// it gets every accepted message and then the close frame.
func TestCloseFlushesCongestedQueue(t *testing.T) {
	const highWater, maxQueue, chunk = 32 << 10, 256 << 10, 16 << 10
	ts := newTestServer(t, Config{HighWater: highWater, MaxQueue: maxQueue})
	h := &funcHandler{}
	addr, conns := serveHandler(t, ts.r, h, nil)
	// The race between the drain ticker and Close is narrow: try it a few times.
	for round := range 10 {
		t.Run(fmt.Sprintf("round %d", round), func(t *testing.T) {
			nc, br, err := rawHandshake(smallBufferDialer(), addr, "/ws")
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			c := nextConn(t, conns)
			smallSendBuffer(t, c)
			msg := make([]byte, chunk)
			var accepted uint64
			for {
				binary.BigEndian.PutUint64(msg, accepted)
				if err := c.Send(msg); errors.Is(err, ErrQueueFull) {
					break
				} else if err != nil {
					t.Fatal(err)
				}
				accepted++
			}
			if err := c.Close(4001, "why"); err != nil {
				t.Fatal(err)
			}
			// Give the loop's ticker (5 ms) a few rounds with the close pending and
			// the client still not reading: the queue must survive them.
			start := ts.r.now.Load()
			waitFor(t, 5*time.Second, "30 ms on the reactor's clock", func() bool { return ts.r.now.Load()-start >= int64(30*time.Millisecond) })
			r := &rawWS{t: t, nc: nc, br: br}
			_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
			for i := range accepted {
				b0, p, err := r.readFrame()
				if err != nil || b0 != finBinary || binary.BigEndian.Uint64(p) != i {
					t.Fatalf("message %d of %d: %#x %v (the queue was dropped on Close)", i, accepted, b0, err)
				}
			}
			b0, p, err := r.readFrame()
			if err != nil || b0 != finClose || binary.BigEndian.Uint16(p) != 4001 {
				t.Fatalf("close frame: %#x %x %v", b0, p, err)
			}
		})
	}
}

// TestQueueStaysUnderMaxQueue: concurrent senders into a connection whose
// client does not read; Queued() must never pass MaxQueue, since admission is
// what enforces it.
func TestQueueStaysUnderMaxQueue(t *testing.T) {
	const highWater, maxQueue = 16 << 10, 64 << 10
	ts := newTestServer(t, Config{HighWater: highWater, MaxQueue: maxQueue})
	addr, conns := serveHandler(t, ts.r, &funcHandler{}, nil)
	_, _, c := slowPeer(t, addr, conns)

	var refused atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := make([]byte, 1000)
			for {
				select {
				case <-stop:
					return
				default:
				}
				if errors.Is(c.Send(msg), ErrQueueFull) {
					refused.Add(1)
				}
			}
		}()
	}
	maxSeen := 0
	deadline := time.Now().Add(10 * time.Second)
	for refused.Load() < 20000 && time.Now().Before(deadline) {
		maxSeen = max(maxSeen, c.Queued())
	}
	close(stop)
	wg.Wait()
	maxSeen = max(maxSeen, c.Queued())
	t.Logf("%d sends refused; largest queue seen %d bytes", refused.Load(), maxSeen)
	if refused.Load() == 0 {
		t.Fatal("the queue never filled")
	}
	if maxSeen > maxQueue {
		t.Fatalf("Queued() reached %d bytes, over MaxQueue %d", maxSeen, maxQueue)
	}
}

// TestStagedAnswersOutgrowTheSocket: answers a callback staged (no queue
// yet) that the kernel takes only in part are queued, and everything
// reaches the client whole and in order, with a send from another
// goroutine behind them.
func TestStagedAnswersOutgrowTheSocket(t *testing.T) {
	ts := newTestServer(t, Config{})
	addr, conns := serveHandler(t, ts.r, &echoHandler{}, nil)
	nc, r, c := slowPeer(t, addr, conns)

	big := bytes.Repeat([]byte("0123456789abcdef"), 3<<10) // 48 KiB: staged, over both socket buffers
	if _, err := nc.Write(append(clientFrame(finBinary, big), clientFrame(finBinary, []byte("second"))...)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the answers' rest to wait in the queue", func() bool { return c.Queued() > 0 })
	if err := c.Send([]byte("third")); err != nil {
		t.Fatal(err)
	}
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for i, want := range [][]byte{big, []byte("second"), []byte("third")} {
		b0, p, err := r.readFrame()
		if err != nil || b0 != finBinary || !bytes.Equal(p, want) {
			t.Fatalf("message %d: %#x, %d bytes, %v; want %d bytes", i, b0, len(p), err, len(want))
		}
	}
}

// TestBatchFlushWritesInOrder: messages queued through a Batch reach every
// recipient whole and in order when Flush writes them, several per write,
// also when a recipient's socket takes only part (the rest goes through its
// loop) and when other senders write to it in between.
func TestBatchFlushWritesInOrder(t *testing.T) {
	ts := newTestServer(t, Config{HighWater: 4 << 20, MaxQueue: 8 << 20}) // the clients read only at the end
	addr, conns := serveHandler(t, ts.r, &funcHandler{}, nil)
	type client struct {
		nc net.Conn
		r  *rawWS
		c  *Conn
	}
	var cs []client
	for i := 0; i < 3; i++ {
		nc, r, c := slowPeer(t, addr, conns)
		cs = append(cs, client{nc: nc, r: r, c: c})
	}
	const rounds, perFlush = 40, 10
	payload := func(i int) []byte { return append(bytes.Repeat([]byte{'x'}, 2000), strconv.Itoa(i)...) }
	var b Batch
	for i := 0; i < rounds*perFlush; i++ {
		frame := AppendServerFrame(nil, false, payload(i))
		for _, cl := range cs {
			if ok, err := cl.c.TrySendEncoded(frame, &b); err != nil || !ok {
				t.Fatalf("message %d: queued %v, %v", i, ok, err)
			}
		}
		if i%perFlush == perFlush-1 {
			b.Flush()
		}
	}
	for _, cl := range cs {
		_ = cl.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		for i := 0; i < rounds*perFlush; i++ {
			b0, p, err := cl.r.readFrame()
			if err != nil || b0 != finBinary || !bytes.Equal(p, payload(i)) {
				t.Fatalf("message %d: %#x, %d bytes, %v", i, b0, len(p), err)
			}
		}
	}
}

// TestTrySendRefusesOverHighWater: TrySend queues while the queue is under
// its high-water mark and refuses (false, no error) once it is over, and
// what it queued arrives framed and in order.
func TestTrySendRefusesOverHighWater(t *testing.T) {
	const highWater = 16 << 10
	ts := newTestServer(t, Config{HighWater: highWater, MaxQueue: 1 << 20})
	addr, conns := serveHandler(t, ts.r, &funcHandler{}, nil)
	nc, r, c := slowPeer(t, addr, conns)
	msg := bytes.Repeat([]byte{'t'}, 4<<10)
	queued := 0
	for deadline := time.Now().Add(10 * time.Second); ; queued++ {
		ok, err := c.TrySend(msg, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("TrySend never refused: %d queued, %d bytes waiting", queued, c.Queued())
		}
	}
	if q := c.Queued(); q <= highWater {
		t.Fatalf("refused with %d bytes queued, under the high-water mark %d", q, highWater)
	}
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for i := 0; i < queued; i++ {
		if b0, p, err := r.readFrame(); err != nil || b0 != finBinary || !bytes.Equal(p, msg) {
			t.Fatalf("message %d: %#x, %d bytes, %v", i, b0, len(p), err)
		}
	}
}
