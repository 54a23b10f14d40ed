package hostile

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	goruntime "runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tarponrt/tarpon/broker"
	"github.com/tarponrt/tarpon/broker/client"
)

// startStack starts a Stack for one test and closes it at the end.
func startStack(t testing.TB, cfg Config) *Stack {
	t.Helper()
	s, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Logf("close stack: %v", err)
		}
	})
	return s
}

// waitFor polls cond until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// heapInuse returns HeapInuse after two collections.
func heapInuse() uint64 {
	goruntime.GC()
	goruntime.GC()
	var ms goruntime.MemStats
	goruntime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// peakHeapDuring runs fn while sampling HeapInuse every 5 ms; it returns the peak.
func peakHeapDuring(fn func()) uint64 {
	var peak uint64
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		var ms goruntime.MemStats
		for {
			goruntime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	fn()
	close(stop)
	<-done
	return peak
}

// baseline is a stack's state when idle, to compare against after abuse.
type baseline struct {
	heap uint64
	open int64
}

// settle warms the stack up with a healthy round and records its idle state.
func settle(t testing.TB, s *Stack) baseline {
	t.Helper()
	healthy(t, s)
	waitFor(t, 5*time.Second, "idle reactor", func() bool { return s.Reactor.Stats().Open == 0 })
	return baseline{heap: heapInuse(), open: 0}
}

// heapSlack is how far HeapInuse may end above its baseline after a group
// of abuse: generous (the race detector, gnet's buffers, the Lua VM's
// garbage and the sync.Pools all keep some), yet far below what any of the
// attacks would hold if it leaked (each sends megabytes or thousands of
// connections).
const heapSlack = 8 << 20

// recovered checks that the stack is back to its baseline: no connection
// left in the reactor, no SMQ peer left, a normal client served, and the
// heap near where it was.
func recovered(t testing.TB, s *Stack, b baseline) {
	t.Helper()
	waitFor(t, 10*time.Second, "every hostile connection closed", func() bool { return s.Reactor.Stats().Open == 0 })
	waitFor(t, 5*time.Second, "no SMQ peer left", func() bool {
		st := s.Hub.Stats()
		return st.Peers == 0 && st.Handshaking == 0 && s.Metric("tarpon_smq_peers") == 0 && s.Metric("tarpon_smq_handshaking") == 0
	})
	healthy(t, s)
	waitFor(t, 5*time.Second, "idle reactor after the healthy round", func() bool { return s.Reactor.Stats().Open == 0 })
	var heap uint64
	waitFor(t, 10*time.Second, "heap back near its baseline", func() bool {
		heap = heapInuse()
		return heap <= b.heap+heapSlack
	})
	t.Logf("heap in use: baseline %.1f MiB, after %.1f MiB", float64(b.heap)/(1<<20), float64(heap)/(1<<20))
}

// healthy checks that a normal client is served: a page, a WebSocket echo
// through Lua, and an SMQ round trip on the app's broker over both
// transports.
func healthy(t testing.TB, s *Stack) {
	t.Helper()
	resp, err := http.Get(s.URL("/"))
	if err != nil {
		t.Fatalf("healthy: GET /: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthy: GET / = %d", resp.StatusCode)
	}
	wc, err := dialWS(s.Addr, "/ws/echo.lsp", nil)
	if err != nil {
		t.Fatalf("healthy: echo: %v", err)
	}
	if wc.status != 101 {
		t.Fatalf("healthy: echo upgrade = %d", wc.status)
	}
	msg := []byte("still serving")
	if _, err := wc.Write(wsFrame(0x81, msg, true)); err != nil {
		t.Fatalf("healthy: echo write: %v", err)
	}
	op, got, err := wc.readFrame(5 * time.Second)
	if err != nil || op != 1 || !bytes.Equal(got, msg) {
		t.Fatalf("healthy: echo got op %d %q, %v", op, got, err)
	}
	wc.Close()
	for _, raw := range []bool{false, true} {
		smqRoundTrip(t, s.URL("/smq.lsp"), raw)
	}
}

// smqRoundTrip subscribes and publishes to itself through the broker at url.
func smqRoundTrip(t testing.TB, url string, raw bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := make(chan string, 1)
	c, err := client.Dial(ctx, url, &client.Options{Raw: raw})
	if err != nil {
		t.Fatalf("healthy: smq dial (raw %v): %v", raw, err)
	}
	defer c.Close()
	if _, _, err := c.SubscribeWait(ctx, "healthy", &client.SubscribeOptions{OnMsg: func(m client.Message) {
		select {
		case got <- string(m.Data):
		default:
		}
	}}); err != nil {
		t.Fatalf("healthy: smq subscribe: %v", err)
	}
	if err := c.Publish([]byte("ping"), "healthy", ""); err != nil {
		t.Fatalf("healthy: smq publish: %v", err)
	}
	select {
	case m := <-got:
		if m != "ping" {
			t.Fatalf("healthy: smq got %q", m)
		}
	case <-ctx.Done():
		t.Fatalf("healthy: smq round trip (raw %v) timed out", raw)
	}
}

// ---- a deliberately naive WebSocket client that sends whatever it is told ----

// wsConn is a client connection after the handshake.
type wsConn struct {
	net.Conn
	br     *bufio.Reader
	status int
	resp   *http.Response
}

// dialWS sends an upgrade request for path with extra headers and reads
// the response. A non-101 status is returned in wsConn.status, not as an
// error.
func dialWS(addr, path string, hdr http.Header) (*wsConn, error) {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n", path, addr)
	b.WriteString("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n")
	for k, vs := range hdr {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	b.WriteString("\r\n")
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(nc, b.String()); err != nil {
		nc.Close()
		return nil, err
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		nc.Close()
		return nil, err
	}
	_ = nc.SetDeadline(time.Time{})
	return &wsConn{Conn: nc, br: br, status: resp.StatusCode, resp: resp}, nil
}

// wsFrame builds one frame: first is FIN|RSV|opcode; masked with a random key.
func wsFrame(first byte, payload []byte, masked bool) []byte {
	f := []byte{first}
	mbit := byte(0)
	if masked {
		mbit = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		f = append(f, mbit|byte(n))
	case n < 1<<16:
		f = append(f, mbit|126, byte(n>>8), byte(n))
	default:
		f = append(f, mbit|127)
		f = binary.BigEndian.AppendUint64(f, uint64(n))
	}
	if !masked {
		return append(f, payload...)
	}
	var key [4]byte
	_, _ = rand.Read(key[:])
	f = append(f, key[:]...)
	for i, c := range payload {
		f = append(f, c^key[i%4])
	}
	return f
}

// readFrame reads one server frame (unmasked, as servers send).
func (c *wsConn) readFrame(d time.Duration) (op byte, payload []byte, err error) {
	_ = c.SetReadDeadline(time.Now().Add(d))
	defer c.SetReadDeadline(time.Time{})
	var h [2]byte
	if _, err = io.ReadFull(c.br, h[:]); err != nil {
		return 0, nil, err
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var e [2]byte
		if _, err = io.ReadFull(c.br, e[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(e[:]))
	case 127:
		var e [8]byte
		if _, err = io.ReadFull(c.br, e[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(e[:])
	}
	if n > 1<<24 {
		return 0, nil, fmt.Errorf("server frame of %d bytes", n)
	}
	payload = make([]byte, n)
	_, err = io.ReadFull(c.br, payload)
	return h[0] & 0x0f, payload, err
}

// readUntilClose reads frames until a close frame (returning its code) or
// the end of the stream (code 0, err EOF-like).
func (c *wsConn) readUntilClose(d time.Duration) (uint16, error) {
	deadline := time.Now().Add(d)
	for {
		op, p, err := c.readFrame(time.Until(deadline))
		if err != nil {
			return 0, err
		}
		if op == 8 {
			if len(p) >= 2 {
				return binary.BigEndian.Uint16(p), nil
			}
			return 1005, nil
		}
	}
}

// drainToEOF half-closes our side and reads until the server closes, which
// it must do within d. It fails the test otherwise.
func drainToEOF(t testing.TB, nc net.Conn, r io.Reader, d time.Duration, what string) {
	t.Helper()
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	_ = nc.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, r)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("%s: the server kept the connection open %v after our FIN", what, d)
	}
	nc.Close()
}

// ---- SMQ over a naive client, both transports ----

// smqConn is a hostile SMQ connection: it sends exactly the bytes it is given.
type smqConn struct {
	raw  bool
	nc   net.Conn
	br   *bufio.Reader
	ws   *wsConn
	etid uint32
}

// dialSMQ opens a transport to path and reads Init.
func dialSMQ(addr, path string, raw bool) (*smqConn, error) {
	if !raw {
		wc, err := dialWS(addr, path, nil)
		if err != nil {
			return nil, err
		}
		if wc.status != 101 {
			wc.Close()
			return nil, fmt.Errorf("upgrade: %d", wc.status)
		}
		c := &smqConn{nc: wc.Conn, br: wc.br, ws: wc}
		m, err := c.read(5 * time.Second)
		if err != nil || len(m) == 0 || m[0] != byte(broker.MsgInit) {
			c.nc.Close()
			return nil, fmt.Errorf("want Init, got %x, %v", m, err)
		}
		return c, nil
	}
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	if _, err := fmt.Fprintf(nc, "GET %s HTTP/1.0\r\nHost: %s\r\nSimpleMQ: 1\r\nUser-Agent: SimpleMQ/1\r\n\r\n", path, addr); err != nil {
		nc.Close()
		return nil, err
	}
	c := &smqConn{raw: true, nc: nc, br: bufio.NewReader(nc)}
	m, err := c.read(5 * time.Second)
	if err != nil || len(m) == 0 || m[0] != byte(broker.MsgInit) {
		nc.Close()
		return nil, fmt.Errorf("want Init, got %x, %v", m, err)
	}
	return c, nil
}

// frame wraps one SMQ message for the transport.
func (c *smqConn) frame(msg []byte) []byte {
	if c.raw {
		return broker.AppendLen16(nil, msg)
	}
	return wsFrame(0x82, msg, true)
}

func (c *smqConn) send(msg []byte) error {
	_, err := c.nc.Write(c.frame(msg))
	return err
}

// read returns the next SMQ message (WebSocket control frames skipped; a
// close frame is io.EOF).
func (c *smqConn) read(d time.Duration) ([]byte, error) {
	if !c.raw {
		deadline := time.Now().Add(d)
		for {
			op, p, err := c.ws.readFrame(time.Until(deadline))
			if err != nil {
				return nil, err
			}
			switch op {
			case 8:
				return nil, io.EOF
			case 1, 2:
				return p, nil
			}
		}
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(d))
	defer c.nc.SetReadDeadline(time.Time{})
	var h [2]byte
	if _, err := io.ReadFull(c.br, h[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(h[:]))
	if n < 3 {
		return nil, fmt.Errorf("bad length %d", n)
	}
	m := make([]byte, n-2)
	_, err := io.ReadFull(c.br, m)
	return m, err
}

// connect performs Connect/Connack.
func (c *smqConn) connect(uid string) error {
	m, _ := broker.AppendConnect(nil, 1, 0, []byte(uid), nil, []byte("hostile"))
	if err := c.send(m); err != nil {
		return err
	}
	r, err := c.read(5 * time.Second)
	if err != nil {
		return err
	}
	if len(r) < 6 || r[0] != byte(broker.MsgConnack) || r[1] != 0 {
		return fmt.Errorf("connack %x", r)
	}
	c.etid = binary.BigEndian.Uint32(r[2:])
	return nil
}

// waitFor reads until a message of type typ (returned) or an error.
func (c *smqConn) waitFor(typ broker.MsgType, d time.Duration) ([]byte, error) {
	deadline := time.Now().Add(d)
	for {
		m, err := c.read(time.Until(deadline))
		if err != nil {
			return nil, err
		}
		if len(m) > 0 && m[0] == byte(typ) {
			return m, nil
		}
	}
}

func (c *smqConn) Close() error { return c.nc.Close() }

// uidSeq makes UIDs unique across parallel hostile connections.
var uidSeq struct {
	sync.Mutex
	n int
}

func nextUID() string {
	uidSeq.Lock()
	defer uidSeq.Unlock()
	uidSeq.n++
	return fmt.Sprintf("hostile-%06d", uidSeq.n)
}

// parallel runs fn(i) for i in [0, n) on at most width goroutines.
func parallel(n, width int, fn func(i int)) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, width)
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			fn(i)
		}()
	}
	wg.Wait()
}
