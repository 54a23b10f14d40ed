package runtime

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	goruntime "runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// rawHandshake dials addr with d and performs a WebSocket handshake on path
// without holding a goroutine: the returned conn is plain and idle. It is
// safe to call from any goroutine (it reports errors instead of failing t).
func rawHandshake(d *net.Dialer, addr, path string) (net.Conn, *bufio.Reader, error) {
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	req := "GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + testKey + "\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := nc.Write([]byte(req)); err != nil {
		nc.Close()
		return nil, nil, err
	}
	br := bufio.NewReaderSize(nc, 256)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		nc.Close()
		return nil, nil, fmt.Errorf("handshake status %d", resp.StatusCode)
	}
	_ = nc.SetDeadline(time.Time{})
	return nc, br, nil
}

// raiseFileLimit lifts the soft RLIMIT_NOFILE to at least n (up to the hard
// limit) and restores it when the test ends.
func raiseFileLimit(t *testing.T, n uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur >= n {
		return
	}
	if lim.Max < n {
		t.Fatalf("RLIMIT_NOFILE hard limit %d is below the %d descriptors this test needs", lim.Max, n)
	}
	old := lim
	lim.Cur = n
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old) })
}

// TestConnectionsHoldNoGoroutines hands thousands of WebSocket connections
// through the real HTTP hand-off and checks the process does not gain a
// goroutine per connection, that every one still echoes, and that they all
// go away on close.
func TestConnectionsHoldNoGoroutines(t *testing.T) {
	n := 3000
	if testing.Short() {
		n = 500
	}
	// Client and server ends, plus descriptors gnet duplicates during enrolment.
	raiseFileLimit(t, uint64(2*n+1000))
	ts := newTestServer(t, Config{Loops: 2})

	// Warm up: the event loops, the ticker and the HTTP server are running.
	{
		c := ts.dialRaw(t, nil)
		c.write(clientFrame(finText, []byte("warm")))
		if _, p, err := c.readFrame(); err != nil || string(p) != "warm" {
			t.Fatalf("warm-up echo %q %v", p, err)
		}
		c.nc.Close()
		waitFor(t, 5*time.Second, "warm-up connection to close", func() bool { return ts.r.Stats().Open == 0 })
	}
	before := goruntime.NumGoroutine()

	type client struct {
		nc net.Conn
		br *bufio.Reader
	}
	clients := make([]client, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var d net.Dialer
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				nc, br, err := rawHandshake(&d, ts.addr, "/ws")
				if err != nil {
					errs <- fmt.Errorf("client %d: %w", i, err)
					return
				}
				clients[i] = client{nc, br}
			}
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range clients {
			if c.nc != nil {
				c.nc.Close()
			}
		}
	})
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	waitFor(t, 10*time.Second, fmt.Sprintf("%d open connections", n), func() bool { return ts.r.Stats().Open == int64(n) })

	var during int
	waitFor(t, 10*time.Second, "no goroutine per connection", func() bool {
		during = goruntime.NumGoroutine()
		return during < before+20
	})
	t.Logf("goroutines: %d before, %d with %d connections open", before, during, n)

	// Every connection still echoes: all writes first, then all reads.
	for i, c := range clients {
		_ = c.nc.SetDeadline(time.Now().Add(20 * time.Second))
		if _, err := c.nc.Write(clientFrame(finBinary, binary.BigEndian.AppendUint32(nil, uint32(i)))); err != nil {
			t.Fatalf("client %d write: %v", i, err)
		}
	}
	for i, c := range clients {
		r := &rawWS{t: t, nc: c.nc, br: c.br}
		b0, p, err := r.readFrame()
		if err != nil || b0 != finBinary || len(p) != 4 || binary.BigEndian.Uint32(p) != uint32(i) {
			t.Fatalf("client %d echo: %#x %x %v", i, b0, p, err)
		}
	}

	// Half say goodbye with a close frame and get the handshake, half just
	// drop the TCP connection.
	for i, c := range clients {
		if i%2 == 0 {
			if _, err := c.nc.Write(closeFrame(CloseNormal, "")); err != nil {
				t.Fatalf("client %d close: %v", i, err)
			}
		} else {
			c.nc.Close()
		}
	}
	for i := 0; i < n; i += 2 {
		r := &rawWS{t: t, nc: clients[i].nc, br: clients[i].br}
		b0, p, err := r.readFrame()
		if err != nil || b0 != finClose || len(p) < 2 || binary.BigEndian.Uint16(p) != CloseNormal {
			t.Fatalf("client %d close reply: %#x %x %v", i, b0, p, err)
		}
		if _, err := r.br.ReadByte(); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("client %d: connection not ended after the close reply (%v)", i, err)
		}
		clients[i].nc.Close()
	}
	waitFor(t, 20*time.Second, "all connections closed", func() bool { return ts.r.Stats().Open == 0 })
	st := ts.r.Stats()
	if st.Accepted != uint64(n+1) || st.Closed != uint64(n+1) {
		t.Fatalf("stats: accepted %d closed %d, want %d each", st.Accepted, st.Closed, n+1)
	}
	closes := ts.h.closeErrs()
	var normal, abnormal int
	for _, err := range closes {
		var ce *CloseError
		if !errors.As(err, &ce) {
			t.Fatalf("OnClose error %v, want a *CloseError", err)
		}
		switch ce.Code {
		case CloseNormal:
			normal++
		case CloseAbnormal:
			abnormal++
		}
	}
	// The warm-up connection was dropped too.
	if normal != n/2 || abnormal != n-n/2+1 {
		t.Fatalf("OnClose: %d normal and %d abnormal, want %d and %d", normal, abnormal, n/2, n-n/2+1)
	}
	waitFor(t, 10*time.Second, "goroutines back to the baseline", func() bool { return goruntime.NumGoroutine() < before+20 })
}
