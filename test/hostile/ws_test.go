package hostile

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tarponrt/tarpon/runtime"
)

// closeFrame is a masked client close frame.
func closeFrame(code uint16, reason string) []byte {
	p := binary.BigEndian.AppendUint16(nil, code)
	return wsFrame(0x88, append(p, reason...), true)
}

// TestWebSocketFramesCutAndCorrupted sends well-formed client frames to the
// Lua echo page cut short at every byte and with every byte corrupted, each
// on its own connection, then half-closes: the server must close the
// connection (a peer resetting mid-frame), and afterwards serve a normal
// client with its memory back near the baseline.
func TestWebSocketFramesCutAndCorrupted(t *testing.T) {
	s := startStack(t, Config{})
	b := settle(t, s)
	bin := bytes.Repeat([]byte{0xa5}, 130) // 16-bit length form
	bases := []struct {
		name  string
		bytes []byte
	}{
		{"text", wsFrame(0x81, []byte("hello"), true)},
		{"binary130", wsFrame(0x82, bin, true)},
		{"ping", wsFrame(0x89, []byte("p"), true)},
		{"close", closeFrame(1000, "bye")},
		{"fragmented", append(wsFrame(0x01, []byte("hel"), true), wsFrame(0x80, []byte("lo"), true)...)},
	}
	for _, base := range bases {
		t.Run(base.name, func(t *testing.T) {
			var cases [][]byte
			for i := 1; i < len(base.bytes); i++ {
				cases = append(cases, base.bytes[:i])
			}
			for i := range base.bytes {
				c := bytes.Clone(base.bytes)
				c[i] ^= 0xff
				cases = append(cases, c)
			}
			t.Logf("%d hostile connections", len(cases))
			parallel(len(cases), 16, func(i int) {
				wc, err := dialWS(s.Addr, "/ws/echo.lsp", nil)
				if err != nil || wc.status != 101 {
					t.Errorf("case %d: dial: %v %v", i, err, wc)
					return
				}
				_, _ = wc.Write(cases[i])
				drainToEOF(t, wc.Conn, wc.br, 5*time.Second, fmt.Sprintf("%s case %d", base.name, i))
			})
		})
	}
	recovered(t, s, b)
}

// TestWebSocketProtocolViolations covers bad UTF-8, oversize frames and
// messages, unmasked frames and abrupt resets: each gets its close code
// and nothing else is disturbed.
func TestWebSocketProtocolViolations(t *testing.T) {
	s := startStack(t, Config{Runtime: runtime.Config{MaxMessage: 64 << 10}})
	b := settle(t, s)
	bad := []byte{'a', 0xff, 0xfe, 'b'}
	huge := []byte{0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4} // 2^63-1 bytes claimed
	var frags []byte
	for i := 0; i < 8; i++ {
		op := byte(0x00)
		if i == 0 {
			op = 0x02
		}
		frags = append(frags, wsFrame(op, make([]byte, 16<<10), true)...)
	}
	cases := []struct {
		name  string
		path  string
		bytes []byte
		codes []uint16 // acceptable close codes
	}{
		{"text with bad UTF-8", "/ws/echo.lsp", wsFrame(0x81, bad, true), []uint16{1007}},
		{"bad UTF-8 split over fragments", "/ws/echo.lsp", append(wsFrame(0x01, []byte{'a', 0xe2}, true), wsFrame(0x80, []byte{0x28, 0xa1}, true)...), []uint16{1007}},
		{"close reason with bad UTF-8", "/ws/echo.lsp", wsFrame(0x88, append([]byte{3, 232}, bad...), true), []uint16{1007, 1002}},
		{"frame claiming 2^63 bytes", "/ws/echo.lsp", huge, []uint16{1009, 1002}},
		{"message over MaxMessage in fragments", "/ws/echo.lsp", frags, []uint16{1009}},
		{"single frame over MaxMessage", "/ws/echo.lsp", wsFrame(0x82, make([]byte, 70<<10), true), []uint16{1009}},
		{"unmasked client frame", "/ws/echo.lsp", wsFrame(0x82, []byte("x"), false), []uint16{1002}},
		{"reserved opcode", "/ws/echo.lsp", wsFrame(0x83, []byte("x"), true), []uint16{1002}},
		{"RSV bits", "/ws/echo.lsp", wsFrame(0xf2, []byte("x"), true), []uint16{1002}},
		{"fragmented ping", "/ws/echo.lsp", wsFrame(0x09, []byte("x"), true), []uint16{1002}},
		{"continuation without a start", "/ws/echo.lsp", wsFrame(0x80, []byte("x"), true), []uint16{1002}},
		{"SMQ message over 65533 bytes", "/smq.lsp", wsFrame(0x82, make([]byte, 70000), true), []uint16{1009}},
		{"SMQ bad UTF-8 text frame", "/smq.lsp", wsFrame(0x81, bad, true), []uint16{1007}},
	}
	before := s.Reactor.Stats().ProtocolErrors
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wc, err := dialWS(s.Addr, tc.path, nil)
			if err != nil || wc.status != 101 {
				t.Fatalf("dial: %v", err)
			}
			defer wc.Close()
			_, _ = wc.Write(tc.bytes)
			code, err := wc.readUntilClose(5 * time.Second)
			if err != nil {
				t.Fatalf("no close frame: %v", err)
			}
			ok := false
			for _, c := range tc.codes {
				ok = ok || c == code
			}
			if !ok {
				t.Fatalf("close code %d, want one of %v", code, tc.codes)
			}
			drainToEOF(t, wc.Conn, wc.br, 5*time.Second, tc.name)
		})
	}
	if got := s.Reactor.Stats().ProtocolErrors - before; got < uint64(len(cases)) {
		t.Errorf("protocol errors counted: %d, want %d", got, len(cases))
	}
	t.Run("reset mid-frame", func(t *testing.T) {
		parallel(50, 10, func(i int) {
			wc, err := dialWS(s.Addr, "/ws/echo.lsp", nil)
			if err != nil || wc.status != 101 {
				t.Errorf("dial: %v", err)
				return
			}
			f := wsFrame(0x82, make([]byte, 4000), true)
			_, _ = wc.Write(f[:len(f)/2])
			_ = wc.Conn.(*net.TCPConn).SetLinger(0) // RST instead of FIN
			wc.Close()
		})
	})
	t.Run("write to a closed peer", func(t *testing.T) {
		// The echo answers after the peer has gone: the write must fail quietly.
		parallel(50, 10, func(i int) {
			wc, err := dialWS(s.Addr, "/ws/echo.lsp", nil)
			if err != nil || wc.status != 101 {
				t.Errorf("dial: %v", err)
				return
			}
			_, _ = wc.Write(wsFrame(0x82, make([]byte, 60000), true))
			_ = wc.Conn.(*net.TCPConn).SetLinger(0)
			wc.Close()
		})
	})
	recovered(t, s, b)
}

// TestOriginPolicy: foreign origins get 403 on pages and on the broker,
// counted; same-origin, allowlisted and Origin-less requests upgrade.
func TestOriginPolicy(t *testing.T) {
	s := startStack(t, Config{Runtime: runtime.Config{Origin: runtime.OriginPolicy{Allow: []string{"https://*.example.com"}}}})
	b := settle(t, s)
	before := s.Metric(`tarpon_connections_refused_total{reason="origin"}`)
	cases := []struct {
		name, origin string
		want         int
	}{
		{"none", "", 101},
		{"same origin", "http://" + s.Addr, 101},
		{"allowlisted glob", "https://app.example.com", 101},
		{"foreign", "https://evil.test", 403},
		{"foreign with our port", "http://evil.test:" + strings.Split(s.Addr, ":")[1], 403},
		{"suffix trick", "https://example.com.evil.test", 403},
		{"malformed", "::::", 403},
		{"null", "null", 403},
	}
	refused := 0
	for _, tc := range cases {
		for _, path := range []string{"/ws/echo.lsp", "/smq.lsp"} {
			t.Run(tc.name+path, func(t *testing.T) {
				h := http.Header{}
				if tc.origin != "" {
					h.Set("Origin", tc.origin)
				}
				wc, err := dialWS(s.Addr, path, h)
				if err != nil {
					t.Fatal(err)
				}
				defer wc.Close()
				if wc.status != tc.want {
					t.Fatalf("status %d, want %d", wc.status, tc.want)
				}
			})
			if tc.want == 403 {
				refused++
			}
		}
	}
	if got := s.Metric(`tarpon_connections_refused_total{reason="origin"}`) - before; got != float64(refused) {
		t.Errorf("origin refusals counted: %v, want %d", got, refused)
	}
	recovered(t, s, b)

	t.Run("RequireOrigin", func(t *testing.T) {
		s := startStack(t, Config{Runtime: runtime.Config{Origin: runtime.OriginPolicy{RequireOrigin: true}}})
		for _, path := range []string{"/ws/echo.lsp", "/smq.lsp"} {
			wc, err := dialWS(s.Addr, path, nil)
			if err != nil {
				t.Fatal(err)
			}
			wc.Close()
			if wc.status != 403 {
				t.Errorf("%s without Origin: %d, want 403", path, wc.status)
			}
		}
	})
}

// TestConnectionFloods: past MaxConnsPerIP, MaxConns and the upgrade rate,
// WebSocket and raw SMQ connections alike are refused and counted; the
// slots come back when the connections close.
func TestConnectionFloods(t *testing.T) {
	refusedMetric := func(s *Stack, reason string) float64 {
		return s.Metric(`tarpon_connections_refused_total{reason="` + reason + `"}`)
	}
	// open makes one connection of either transport and returns it with its status.
	open := func(t *testing.T, s *Stack, raw bool) (io.Closer, int) {
		if !raw {
			wc, err := dialWS(s.Addr, "/ws/echo.lsp", nil)
			if err != nil {
				t.Fatal(err)
			}
			return wc, wc.status
		}
		nc, err := net.Dial("tcp", s.Addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(nc, "GET /smq.lsp HTTP/1.1\r\nHost: x\r\nSimpleMQ: 1\r\nSendSmqHttpResponse: true\r\n\r\n")
		_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 12)
		if _, err := io.ReadFull(nc, buf); err != nil {
			t.Fatal(err)
		}
		var code int
		fmt.Sscanf(string(buf[9:12]), "%d", &code)
		return nc, code
	}
	for _, limit := range []struct {
		name, reason string
		cfg          runtime.Config
		allowed      int
		refusal      int
	}{
		{"per IP", "max_conns_per_ip", runtime.Config{MaxConnsPerIP: 20}, 20, 503},
		{"total", "max_conns", runtime.Config{MaxConns: 15}, 15, 503},
		{"upgrade rate", "rate", runtime.Config{UpgradeRate: 0.5, UpgradeBurst: 10}, 10, 429},
	} {
		t.Run(limit.name, func(t *testing.T) {
			s := startStack(t, Config{Runtime: limit.cfg})
			var held []io.Closer
			defer func() {
				for _, c := range held {
					c.Close()
				}
			}()
			for i := 0; i < limit.allowed; i++ {
				c, code := open(t, s, i%2 == 1)
				held = append(held, c)
				if code != 101 && code != 200 {
					t.Fatalf("connection %d within the limit: %d", i, code)
				}
			}
			before := refusedMetric(s, limit.reason)
			for i := 0; i < 10; i++ {
				c, code := open(t, s, i%2 == 1)
				c.Close()
				if code != limit.refusal {
					t.Fatalf("connection past the limit (raw %v): %d, want %d", i%2 == 1, code, limit.refusal)
				}
			}
			if got := refusedMetric(s, limit.reason) - before; got != 10 {
				t.Errorf("refusals counted: %v, want 10", got)
			}
			if limit.reason == "rate" {
				return // the bucket refills at 0.5/s: no new connection soon
			}
			for _, c := range held {
				c.Close()
			}
			held = nil
			waitFor(t, 5*time.Second, "slots released", func() bool { return s.Reactor.Stats().Open == 0 })
			healthy(t, s)
		})
	}
}

// TestSlowlorisAndHeaders: clients that trickle their request headers are
// cut at ReadHeaderTimeout, and oversize headers get 431, while a normal
// client is served meanwhile.
func TestSlowlorisAndHeaders(t *testing.T) {
	s := startStack(t, Config{ReadHeaderTimeout: 500 * time.Millisecond})
	b := settle(t, s)
	const n = 100
	conns := make([]net.Conn, n)
	for i := range conns {
		nc, err := net.Dial("tcp", s.Addr)
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = nc
		path := "/ws/echo.lsp"
		if i%2 == 1 {
			path = "/smq.lsp"
		}
		fmt.Fprintf(nc, "GET %s HTTP/1.1\r\nHost: x\r\nX-Slow: ", path)
	}
	start := time.Now()
	done := make(chan struct{})
	go func() { // keep trickling, one byte per connection every 100 ms
		defer close(done)
		for time.Since(start) < 3*time.Second {
			for _, nc := range conns {
				_, _ = nc.Write([]byte("a"))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	healthy(t, s) // served while the slow ones hang on
	for i, nc := range conns {
		_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := io.Copy(io.Discard, nc)
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("slow connection %d still open after %v", i, time.Since(start))
		}
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("slow connections cut after %v, want about the 500 ms ReadHeaderTimeout", took)
	}
	<-done
	for _, nc := range conns {
		nc.Close()
	}
	t.Run("header over MaxHeaderBytes", func(t *testing.T) {
		for _, path := range []string{"/ws/echo.lsp", "/smq.lsp"} {
			h := http.Header{"X-Big": {strings.Repeat("b", 100<<10)}}
			wc, err := dialWS(s.Addr, path, h)
			if err != nil {
				t.Fatal(err)
			}
			wc.Close()
			if wc.status != http.StatusRequestHeaderFieldsTooLarge {
				t.Errorf("%s: status %d, want 431", path, wc.status)
			}
		}
	})
	recovered(t, s, b)
}
