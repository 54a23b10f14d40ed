package runtime

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// echoHandler sends every message back with its type.
type echoHandler struct {
	mu     sync.Mutex
	closes []error
	drains int
}

func (e *echoHandler) OnOpen(*Conn) {}
func (e *echoHandler) OnMessage(c *Conn, msg []byte, text bool) {
	if text {
		_ = c.SendText(msg)
	} else {
		_ = c.Send(msg)
	}
}
func (e *echoHandler) OnDrain(*Conn) { e.mu.Lock(); e.drains++; e.mu.Unlock() }
func (e *echoHandler) OnClose(_ *Conn, err error) {
	e.mu.Lock()
	e.closes = append(e.closes, err)
	e.mu.Unlock()
}

func (e *echoHandler) closeErrs() []error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]error(nil), e.closes...)
}

// testServer is a reactor behind an httptest server with /ws (WebSocket
// echo), /raw (raw echo, no response) and /len16 (length-prefixed echo after
// a 200 header block).
type testServer struct {
	r    *Reactor
	h    *echoHandler
	http *httptest.Server
	addr string
}

// newReactor starts a reactor (logging nowhere unless cfg says) that is
// shut down when the test ends, after anything the test registers later.
func newReactor(t testing.TB, cfg Config) *Reactor {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = r.Shutdown(ctx)
	})
	return r
}

func newTestServer(t testing.TB, cfg Config) *testServer {
	t.Helper()
	r := newReactor(t, cfg)
	ts := &testServer{r: r, h: &echoHandler{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", func(w http.ResponseWriter, req *http.Request) {
		if _, err := r.Upgrade(w, req, ts.h, nil); err != nil {
			t.Logf("upgrade: %v", err)
		}
	})
	mux.HandleFunc("/raw", func(w http.ResponseWriter, req *http.Request) {
		if _, err := r.Morph(w, req, ts.h, nil); err != nil {
			t.Logf("morph: %v", err)
		}
	})
	mux.HandleFunc("/len16", func(w http.ResponseWriter, req *http.Request) {
		opts := &ConnOptions{Framing: FramingLen16, Response: []byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")}
		if _, err := r.Morph(w, req, ts.h, opts); err != nil {
			t.Logf("morph: %v", err)
		}
	})
	ts.http = httptest.NewServer(mux)
	ts.addr = ts.http.Listener.Addr().String()
	t.Cleanup(ts.http.Close)
	return ts
}

func (ts *testServer) dial(t testing.TB) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial("ws://"+ts.addr+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestEchoTextAndBinary(t *testing.T) {
	ts := newTestServer(t, Config{})
	c := ts.dial(t)
	cases := []struct {
		name string
		typ  int
		msg  []byte
	}{
		{"text", websocket.TextMessage, []byte("hello, wörld")},
		{"binary", websocket.BinaryMessage, []byte{0, 1, 2, 0xff}},
		{"empty text", websocket.TextMessage, nil},
		{"126 bytes", websocket.BinaryMessage, bytes.Repeat([]byte{7}, 126)},
		{"64 KiB", websocket.BinaryMessage, bytes.Repeat([]byte{9}, 65536)},
		{"1 MiB", websocket.BinaryMessage, bytes.Repeat([]byte("abcdefgh"), 1<<17)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := c.WriteMessage(tc.typ, tc.msg); err != nil {
				t.Fatal(err)
			}
			typ, got, err := c.ReadMessage()
			if err != nil {
				t.Fatal(err)
			}
			if typ != tc.typ || !bytes.Equal(got, tc.msg) {
				t.Fatalf("got type %d len %d, want type %d len %d", typ, len(got), tc.typ, len(tc.msg))
			}
		})
	}
}

func TestFragmentedMessage(t *testing.T) {
	ts := newTestServer(t, Config{})
	c := ts.dial(t)
	w, err := c.NextWriter(websocket.TextMessage)
	if err != nil {
		t.Fatal(err)
	}
	// gorilla flushes a frame per Write once its buffer fills; force several
	// frames with writes larger than its 4 KiB buffer.
	want := strings.Repeat("fragment-", 3000)
	for i := 0; i < len(want); i += 5000 {
		if _, err := w.Write([]byte(want[i:min(i+5000, len(want))])); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	typ, got, err := c.ReadMessage()
	if err != nil || typ != websocket.TextMessage || string(got) != want {
		t.Fatalf("typ %d err %v len %d", typ, err, len(got))
	}
}

// rawWS speaks WebSocket by hand so tests can send exactly the bytes they want.
type rawWS struct {
	t  testing.TB
	nc net.Conn
	br *bufio.Reader
}

const testKey = "dGhlIHNhbXBsZSBub25jZQ=="

func handshakeRequest(host string) string {
	return "GET /ws HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + testKey + "\r\nSec-WebSocket-Version: 13\r\n\r\n"
}

// dialRaw performs the handshake, sending extra right behind the request in
// the same write.
func (ts *testServer) dialRaw(t testing.TB, extra []byte) *rawWS {
	t.Helper()
	nc, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	if _, err := nc.Write(append([]byte(handshakeRequest(ts.addr)), extra...)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d", resp.StatusCode)
	}
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawWS{t: t, nc: nc, br: br}
}

// clientFrame builds one masked frame with the given first byte (FIN, RSV, opcode).
func clientFrame(b0 byte, payload []byte) []byte {
	f := []byte{b0}
	n := len(payload)
	switch {
	case n <= 125:
		f = append(f, 0x80|byte(n))
	case n <= 0xffff:
		f = append(f, 0x80|126, byte(n>>8), byte(n))
	default:
		f = append(f, 0x80|127)
		f = binary.BigEndian.AppendUint64(f, uint64(n))
	}
	mask := []byte{0x11, 0x22, 0x33, 0x44}
	f = append(f, mask...)
	for i, b := range payload {
		f = append(f, b^mask[i%4])
	}
	return f
}

func (c *rawWS) write(b []byte) {
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatal(err)
	}
}

// readFrame reads one server frame: first byte and payload.
func (c *rawWS) readFrame() (byte, []byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(c.br, h[:]); err != nil {
		return 0, nil, err
	}
	if h[1]&0x80 != 0 {
		return 0, nil, errors.New("server frame masked")
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(c.br, b[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(c.br, b[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	p := make([]byte, n)
	_, err := io.ReadFull(c.br, p)
	return h[0], p, err
}

// expectClose reads frames until a close frame and returns its code; the
// TCP connection must then end.
func (c *rawWS) expectClose() uint16 {
	c.t.Helper()
	for {
		b0, p, err := c.readFrame()
		if err != nil {
			c.t.Fatalf("reading close frame: %v", err)
		}
		if b0&0x0f == 0x8 {
			code := uint16(CloseNoStatus)
			if len(p) >= 2 {
				code = binary.BigEndian.Uint16(p)
			}
			if _, err := c.br.ReadByte(); err == nil {
				c.t.Fatal("data after close frame")
			}
			return code
		}
	}
}

func TestBytesBehindHandshakeAreKept(t *testing.T) {
	ts := newTestServer(t, Config{})
	extra := append(clientFrame(0x81, []byte("first")), clientFrame(0x82, []byte("second"))...)
	extra = append(extra, clientFrame(0x81, []byte("thi"))[:4]...) // and a partial frame
	c := ts.dialRaw(t, extra)
	rest := clientFrame(0x81, []byte("thi"))
	// The partial frame's mask differs from a fresh build only if the
	// payload differed; same payload, same mask, so continue where we cut.
	c.write(rest[4:])
	for _, want := range []string{"first", "second", "thi"} {
		_, p, err := c.readFrame()
		if err != nil || string(p) != want {
			t.Fatalf("got %q %v, want %q", p, err, want)
		}
	}
}

func TestPingPongAndClose(t *testing.T) {
	ts := newTestServer(t, Config{})
	c := ts.dialRaw(t, nil)
	c.write(clientFrame(0x89, []byte("are you there")))
	b0, p, err := c.readFrame()
	if err != nil || b0 != 0x8A || string(p) != "are you there" {
		t.Fatalf("pong: %x %q %v", b0, p, err)
	}
	c.write(clientFrame(0x88, append([]byte{0x0f, 0xa0}, "bye"...))) // 4000
	if code := c.expectClose(); code != 4000 {
		t.Fatalf("close code %d, want 4000", code)
	}
	waitFor(t, 5*time.Second, "OnClose", func() bool { return len(ts.h.closeErrs()) == 1 })
	var ce *CloseError
	if err := ts.h.closeErrs()[0]; !errors.As(err, &ce) || ce.Code != 4000 || ce.Reason != "bye" {
		t.Fatalf("OnClose err %v", err)
	}
}

func TestBadInputClosesWithCode(t *testing.T) {
	unmasked := []byte{0x81, 0x02, 'h', 'i'}
	huge := clientFrame(0x82, nil)
	huge[1] = 0x80 | 127
	huge = append(huge[:2], append(binary.BigEndian.AppendUint64(nil, 1<<40), huge[2:]...)...)
	cases := []struct {
		name  string
		bytes []byte
		code  uint16
	}{
		{"unmasked client frame", unmasked, CloseProtocolError},
		{"reserved bit", clientFrame(0x81|0x40, []byte("x")), CloseProtocolError},
		{"reserved opcode", clientFrame(0x83, nil), CloseProtocolError},
		{"bad utf-8 text", clientFrame(0x81, []byte{0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xce, 0xbc, 0xce, 0xb5, 0xed, 0xa0, 0x80}), CloseInvalidPayload},
		{"oversize frame", huge, CloseMessageTooBig},
		{"fragmented ping", clientFrame(0x09, nil), CloseProtocolError},
		{"continuation without start", clientFrame(0x80, []byte("x")), CloseProtocolError},
		{"close with 1 byte", clientFrame(0x88, []byte{3}), CloseProtocolError},
		{"close code 1005", clientFrame(0x88, []byte{0x03, 0xed}), CloseProtocolError},
		{"ping over 125 bytes", clientFrame(0x89, bytes.Repeat([]byte{1}, 126)), CloseProtocolError},
	}
	ts := newTestServer(t, Config{MaxMessage: 1 << 20})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := ts.dialRaw(t, nil)
			c.write(tc.bytes)
			if code := c.expectClose(); code != tc.code {
				t.Fatalf("close code %d, want %d", code, tc.code)
			}
			// The server keeps serving others.
			g := ts.dial(t)
			if err := g.WriteMessage(websocket.TextMessage, []byte("still here")); err != nil {
				t.Fatal(err)
			}
			if _, p, err := g.ReadMessage(); err != nil || string(p) != "still here" {
				t.Fatalf("%q %v", p, err)
			}
		})
	}
}

func TestRawMorph(t *testing.T) {
	ts := newTestServer(t, Config{})
	t.Run("no response", func(t *testing.T) {
		nc, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
		// Bytes right behind the request reach the handler too.
		if _, err := io.WriteString(nc, "GET /raw HTTP/1.0\r\nHost: x\r\n\r\nping"); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 4)
		if _, err := io.ReadFull(nc, got); err != nil || string(got) != "ping" {
			t.Fatalf("got %q %v (the first bytes must be the echo, no HTTP response)", got, err)
		}
	})
	t.Run("200 first, length-prefixed", func(t *testing.T) {
		nc, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
		msg := AppendLen16(nil, []byte("hello"))
		msg = AppendLen16(msg, []byte("world"))
		if _, err := nc.Write(append([]byte("GET /len16 HTTP/1.1\r\nHost: x\r\n\r\n"), msg[:4]...)); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(nc)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%v %v", resp, err)
		}
		if _, err := nc.Write(msg[4:]); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(br, got); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("got %q %v want %q", got, err, msg)
		}
	})
	t.Run("length below 3 closes", func(t *testing.T) {
		nc, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(nc, "GET /len16 HTTP/1.1\r\nHost: x\r\n\r\n\x00\x02"); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(nc)
		if _, err := http.ReadResponse(br, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := br.ReadByte(); err == nil {
			t.Fatal("connection stayed open")
		}
	})
}

func TestWebSocketClientRole(t *testing.T) {
	ts := newTestServer(t, Config{})
	got := make(chan string, 4)
	h := &funcHandler{onMessage: func(c *Conn, msg []byte, text bool) { got <- string(msg) }}
	c, err := ts.r.DialWebSocket(context.Background(), "ws://"+ts.addr+"/ws", h, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"one", "two", strings.Repeat("x", 70000)} {
		if err := c.SendText([]byte(m)); err != nil {
			t.Fatal(err)
		}
		select {
		case g := <-got:
			if g != m {
				t.Fatalf("got %d bytes, want %d", len(g), len(m))
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no echo")
		}
	}
	_ = c.Close(CloseNormal, "done")
	waitFor(t, 5*time.Second, "client close", func() bool { return h.closed() })
}

// funcHandler adapts functions to Handler for tests.
type funcHandler struct {
	onMessage func(*Conn, []byte, bool)
	onDrain   func(*Conn)
	mu        sync.Mutex
	closeErr  error
	isClosed  bool
}

func (f *funcHandler) OnOpen(*Conn) {}
func (f *funcHandler) OnMessage(c *Conn, m []byte, text bool) {
	if f.onMessage != nil {
		f.onMessage(c, m, text)
	}
}
func (f *funcHandler) OnDrain(c *Conn) {
	if f.onDrain != nil {
		f.onDrain(c)
	}
}
func (f *funcHandler) OnClose(_ *Conn, err error) {
	f.mu.Lock()
	f.closeErr, f.isClosed = err, true
	f.mu.Unlock()
}
func (f *funcHandler) closed() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.isClosed }

func TestShutdownSendsGoingAway(t *testing.T) {
	ts := newTestServer(t, Config{})
	c := ts.dialRaw(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- ts.r.Shutdown(ctx) }()
	if code := c.expectClose(); code != CloseGoingAway {
		t.Fatalf("code %d, want 1001", code)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := ts.r.Stats().Open; n != 0 {
		t.Fatalf("%d connections still open", n)
	}
}
