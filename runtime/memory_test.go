package runtime

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/gorilla/websocket"
	"golang.org/x/sys/unix"
)

// TestConnFitsItsSizeClass guards the memory per idle connection: a Conn
// is one 144-byte allocation (Go's size classes around it are 128, 144 and
// 160). A field added to Conn should go behind x (connExtra), snd or cls
// unless every connection needs it.
func TestConnFitsItsSizeClass(t *testing.T) {
	if n := unsafe.Sizeof(Conn{}); n > 144 {
		t.Fatalf("Conn is %d bytes, over the 144-byte size class", n)
	}
}

func TestIPTableShares(t *testing.T) {
	var tab ipTable
	cases := []struct {
		name string
		a, b net.IP
		same bool // b gets a's copy
	}{
		{"same IPv4", net.IP{127, 0, 0, 1}, net.IP{127, 0, 0, 1}, true},
		{"same IPv6", net.ParseIP("2001:db8::1"), net.ParseIP("2001:db8::1"), true},
		{"4-byte and 16-byte forms stay apart", net.IP{10, 1, 2, 3}, net.IPv4(10, 1, 2, 3), false},
		{"different IPv4", net.IP{127, 0, 0, 2}, net.IP{127, 0, 0, 3}, false},
		{"empty", nil, nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sa, sb := tab.share(tc.a), tab.share(tc.b)
			if !bytes.Equal(sa, tc.a) || !bytes.Equal(sb, tc.b) {
				t.Fatalf("share changed the IP: %v -> %v, %v -> %v", tc.a, sa, tc.b, sb)
			}
			if len(sa) > 0 && &sa[0] == &tc.a[0] {
				t.Fatal("share returned the caller's slice, not a copy")
			}
			if same := len(sa) > 0 && len(sb) > 0 && &sa[0] == &sb[0]; same != tc.same {
				t.Fatalf("shared backing %v, want %v", same, tc.same)
			}
		})
	}
	// Many IPs: colliding slots evict, never mix up.
	for i := 0; i < 4*ipTableSize; i++ {
		ip := net.IP{10, 0, byte(i >> 8), byte(i)}
		if got := tab.share(ip); !bytes.Equal(got, ip) {
			t.Fatalf("share(%v) = %v", ip, got)
		}
	}
}

// connRecorder keeps every Conn it sees and what OnClose saw of it.
type connRecorder struct {
	mu           sync.Mutex
	conns        []*Conn
	closedRemote map[*Conn]net.Addr
}

func (h *connRecorder) OnOpen(c *Conn) {
	h.mu.Lock()
	h.conns = append(h.conns, c)
	h.mu.Unlock()
}
func (h *connRecorder) OnMessage(*Conn, []byte, bool) {}
func (h *connRecorder) OnDrain(*Conn)                 {}
func (h *connRecorder) OnClose(c *Conn, _ error) {
	h.mu.Lock()
	h.closedRemote[c] = c.RemoteAddr()
	h.mu.Unlock()
}

func (h *connRecorder) snapshot() ([]*Conn, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*Conn(nil), h.conns...), len(h.closedRemote)
}

func newRecorderServer(t *testing.T, opts *ConnOptions) (*Reactor, *connRecorder, string) {
	t.Helper()
	r := newReactor(t, Config{Loops: 2})
	h := &connRecorder{closedRemote: map[*Conn]net.Addr{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = r.Upgrade(w, req, h, opts)
	}))
	t.Cleanup(srv.Close)
	return r, h, srv.Listener.Addr().String()
}

// TestConnAddresses: RemoteAddr and LocalAddr say what the sockets say,
// connections of one listener share their IPs' bytes (shareAddrs), and
// RemoteAddr still answers in OnClose and after the close.
func TestConnAddresses(t *testing.T) {
	_, h, addr := newRecorderServer(t, nil)
	var clients []net.Conn
	for i := 0; i < 3; i++ {
		nc, _, err := rawHandshake(&net.Dialer{}, addr, "/ws")
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		clients = append(clients, nc)
	}
	waitFor(t, 5*time.Second, "3 conns open", func() bool { c, _ := h.snapshot(); return len(c) == 3 })
	conns, _ := h.snapshot()
	byPort := map[int]*Conn{}
	for _, c := range conns {
		ra, ok := c.RemoteAddr().(*net.TCPAddr)
		if !ok {
			t.Fatalf("RemoteAddr %T %v", c.RemoteAddr(), c.RemoteAddr())
		}
		la, ok := c.LocalAddr().(*net.TCPAddr)
		if !ok || la.String() != addr {
			t.Fatalf("LocalAddr %v, want %s", c.LocalAddr(), addr)
		}
		if c.Loop() < 0 || c.Loop() > 1 {
			t.Fatalf("Loop() = %d with 2 loops", c.Loop())
		}
		byPort[ra.Port] = c
	}
	first := conns[0].LocalAddr().(*net.TCPAddr).IP
	for _, c := range conns[1:] {
		if ip := c.LocalAddr().(*net.TCPAddr).IP; &ip[0] != &first[0] {
			t.Fatal("local IPs of one listener's connections are not shared")
		}
		if ip := c.RemoteAddr().(*net.TCPAddr).IP; !ip.Equal(net.IPv4(127, 0, 0, 1)) {
			t.Fatalf("remote IP %v", ip)
		}
	}
	for _, nc := range clients {
		port := nc.LocalAddr().(*net.TCPAddr).Port
		if byPort[port] == nil {
			t.Fatalf("no Conn with remote port %d", port)
		}
	}

	nc := clients[0]
	c := byPort[nc.LocalAddr().(*net.TCPAddr).Port]
	want := nc.LocalAddr().String()
	_ = nc.Close()
	waitFor(t, 5*time.Second, "OnClose", func() bool { _, n := h.snapshot(); return n == 1 })
	h.mu.Lock()
	inClose := h.closedRemote[c]
	h.mu.Unlock()
	if inClose == nil || inClose.String() != want {
		t.Fatalf("RemoteAddr in OnClose = %v, want %s", inClose, want)
	}
	if got := c.RemoteAddr(); got == nil || got.String() != want {
		t.Fatalf("RemoteAddr after close = %v, want %s", got, want)
	}
	if got := c.LocalAddr(); got != nil {
		t.Fatalf("LocalAddr after close = %v, want nil", got)
	}
}

// TestLoopConnsSlots: the loops' conns slices stay consistent (every open
// Conn at its slot, nothing else) while connections open and close in any
// order, and Shutdown still reaches every one of them.
func TestLoopConnsSlots(t *testing.T) {
	r, h, addr := newRecorderServer(t, nil)
	const n = 40
	clients := make([]net.Conn, n)
	for i := range clients {
		nc, _, err := rawHandshake(&net.Dialer{}, addr, "/ws")
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		clients[i] = nc
	}
	waitFor(t, 5*time.Second, "all open", func() bool { c, _ := h.snapshot(); return len(c) == n })
	check := func(wantOpen int) {
		t.Helper()
		total := 0
		for i, lp := range r.loopList() {
			done := make(chan error, 1)
			if err := r.ExecuteOn(i, func() {
				for j, c := range lp.conns {
					if c == nil || int(c.slot) != j || !c.isOpen {
						done <- errSlot
						return
					}
				}
				total += len(lp.conns)
				done <- nil
			}); err != nil {
				t.Fatal(err)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
		if total != wantOpen {
			t.Fatalf("%d Conns in the loops, want %d", total, wantOpen)
		}
	}
	check(n)
	// Close every third, then the first, then one from the middle.
	closed := 0
	for i := 0; i < n; i += 3 {
		_ = clients[i].Close()
		closed++
	}
	for _, i := range []int{1, n / 2} {
		_ = clients[i].Close()
		closed++
	}
	waitFor(t, 5*time.Second, "closes", func() bool { _, k := h.snapshot(); return k == closed })
	check(n - closed)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	// The loops have stopped: their state can be read from here.
	for i, lp := range r.loopList() {
		if len(lp.conns) != 0 {
			t.Fatalf("loop %d still lists %d Conns after Shutdown", i, len(lp.conns))
		}
	}
}

var errSlot = &CloseError{Reason: "a Conn is not at its slot"}

// TestConnOptionsMaxMessage: a per-connection MaxMessage (kept in the parser,
// not in the Conn) bounds that connection's messages.
func TestConnOptionsMaxMessage(t *testing.T) {
	_, _, addr := newRecorderServer(t, &ConnOptions{MaxMessage: 100})
	nc, br, err := rawHandshake(&net.Dialer{}, addr, "/ws")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	r := &rawWS{t: t, nc: nc, br: br}
	if _, err := nc.Write(clientFrame(finBinary, bytes.Repeat([]byte{1}, 101))); err != nil {
		t.Fatal(err)
	}
	b0, p, err := r.readFrame()
	if err != nil || b0 != finClose || len(p) < 2 {
		t.Fatalf("frame %#x %q %v, want a close", b0, p, err)
	}
	if code := binary.BigEndian.Uint16(p); code != CloseMessageTooBig {
		t.Fatalf("close code %d, want %d", code, CloseMessageTooBig)
	}
}

// TestNewGrowsFDTable: New sizes the descriptor table for MaxConns (capped
// by RLIMIT_NOFILE and maxFDTableHint), as /proc/self/status's FDSize shows.
func TestNewGrowsFDTable(t *testing.T) {
	if goruntime.GOOS != "linux" {
		t.Log("FDSize is read from Linux's /proc; nothing to check here")
		return
	}
	const maxConns = 3000
	newReactor(t, Config{MaxConns: maxConns})
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	want := min(uint64(maxConns+1024), lim.Cur, maxFDTableHint)
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	var size uint64
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "FDSize:"); ok {
			size, err = strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if size < want {
		t.Fatalf("FDSize %d after New, want at least %d", size, want)
	}
}

// greeter sends a message from OnOpen, to check it follows the 101.
type greeter struct{ connRecorder }

func (g *greeter) OnOpen(c *Conn) {
	g.connRecorder.OnOpen(c)
	_ = c.SendText([]byte("hello"))
}

// TestUpgradeHeldResponse: the 101 that the loop writes (heldResponse)
// comes before anything OnOpen sends, and gobwas's rejections still reach
// the client, written by the HTTP goroutine.
func TestUpgradeHeldResponse(t *testing.T) {
	r := newReactor(t, Config{Loops: 1})
	g := &greeter{connRecorder{closedRemote: map[*Conn]net.Addr{}}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = r.Upgrade(w, req, g, nil)
	}))
	t.Cleanup(srv.Close)
	addr := srv.Listener.Addr().String()

	t.Run("101 before OnOpen's message", func(t *testing.T) {
		nc, br, err := rawHandshake(&net.Dialer{}, addr, "/ws") // fails unless the first bytes are a 101
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
		rw := &rawWS{t: t, nc: nc, br: br}
		b0, p, err := rw.readFrame()
		if err != nil || b0 != 0x81 || string(p) != "hello" {
			t.Fatalf("first frame %#x %q %v, want text \"hello\"", b0, p, err)
		}
	})

	cases := []struct {
		name    string
		headers string
		status  int
	}{
		{"unsupported version", "Sec-WebSocket-Key: " + testKey + "\r\nSec-WebSocket-Version: 8\r\n", http.StatusUpgradeRequired},
		{"no key", "Sec-WebSocket-Version: 13\r\n", http.StatusBadRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
			req := "GET /ws HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" + tc.headers + "\r\n"
			if _, err := nc.Write([]byte(req)); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
		})
	}
}

// TestQuietConnectionIsTrimmed: an echo whose answer the kernel takes
// whole allocates neither a send queue nor a parser of its own; a send
// from another goroutine queues, a frame cut in two keeps a parser, and a
// sweep later both are gone again, while the connection keeps working.
func TestQuietConnectionIsTrimmed(t *testing.T) {
	r := newReactor(t, Config{Loops: 1})
	addr, conns := serveHandler(t, r, &echoHandler{}, nil)
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	c := nextConn(t, conns)
	_ = ws.SetReadDeadline(time.Now().Add(20 * time.Second))

	held := func() (snd, wsr bool) {
		done := make(chan bool, 1)
		if err := c.Execute(func() { done <- c.wsr != nil }); err != nil {
			t.Fatal(err)
		}
		wsr = <-done
		c.mu.Lock()
		snd = c.snd != nil
		c.mu.Unlock()
		return snd, wsr
	}
	expect := func(msg string) {
		t.Helper()
		if _, got, err := ws.ReadMessage(); err != nil || string(got) != msg {
			t.Fatalf("read %q, %v; want %q", got, err, msg)
		}
	}

	if err := ws.WriteMessage(websocket.TextMessage, []byte("echo")); err != nil {
		t.Fatal(err)
	}
	expect("echo")
	if snd, wsr := held(); snd || wsr {
		t.Fatalf("after a whole echo: send queue %v, parser %v; want neither", snd, wsr)
	}

	// A send from another goroutine without a Batch goes through a queue.
	if err := c.Send([]byte("from the server")); err != nil {
		t.Fatal(err)
	}
	expect("from the server")
	if snd, _ := held(); !snd {
		t.Fatal("no send queue after a queued send")
	}
	waitFor(t, 5*time.Second, "the quiet connection's queue to be trimmed", func() bool { snd, _ := held(); return !snd })

	// A frame cut in two leaves parser state between the reads.
	frame := clientFrame(finBinary, []byte("cut in two"))
	nc := ws.NetConn()
	if _, err := nc.Write(frame[:4]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "a parser for the partial frame", func() bool { _, wsr := held(); return wsr })
	if _, err := nc.Write(frame[4:]); err != nil {
		t.Fatal(err)
	}
	expect("cut in two")
	waitFor(t, 5*time.Second, "the silent connection's parser to be trimmed", func() bool { _, wsr := held(); return !wsr })

	if err := ws.WriteMessage(websocket.BinaryMessage, []byte("after the trims")); err != nil {
		t.Fatal(err)
	}
	expect("after the trims")
}
