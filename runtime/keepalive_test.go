package runtime

import (
	"encoding/binary"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// TestPingIntervalKeepsLivePeerOpen: with PingInterval and IdleTimeout set,
// a client that answers the server's pings stays open past IdleTimeout; once
// it stops answering it is closed with 1001 after about IdleTimeout.
func TestPingIntervalKeepsLivePeerOpen(t *testing.T) {
	const ping, idle = 150 * time.Millisecond, 600 * time.Millisecond
	ts := newTestServer(t, Config{PingInterval: ping, IdleTimeout: idle})
	nc, br, err := rawHandshake(&net.Dialer{}, ts.addr, "/ws")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(20 * time.Second))

	var pings atomic.Int32
	var answer atomic.Bool
	answer.Store(true)
	closeCode := make(chan uint16, 1)
	go func() {
		r := &rawWS{t: t, nc: nc, br: br}
		for {
			b0, p, err := r.readFrame()
			if err != nil {
				closeCode <- CloseAbnormal
				return
			}
			switch b0 {
			case finPing:
				pings.Add(1)
				if answer.Load() {
					if _, err := nc.Write(clientFrame(finPong, p)); err != nil {
						closeCode <- CloseAbnormal
						return
					}
				}
			case finClose:
				code := CloseNoStatus
				if len(p) >= 2 {
					code = binary.BigEndian.Uint16(p)
				}
				closeCode <- code
				return
			}
		}
	}()

	// Answering pings, the client outlives IdleTimeout several times over.
	start := time.Now()
	waitFor(t, 10*time.Second, "3 × IdleTimeout with pings answered", func() bool {
		select {
		case code := <-closeCode:
			t.Fatalf("closed with %d after %v and %d pings, although every ping was answered", code, time.Since(start).Round(time.Millisecond), pings.Load())
		default:
		}
		return time.Since(start) >= 3*idle
	})
	if n := pings.Load(); n < 3 {
		t.Fatalf("%d pings in %v with PingInterval %v", n, time.Since(start).Round(time.Millisecond), ping)
	}

	// Silent from now on: closed for idleness.
	answer.Store(false)
	silentFrom := time.Now()
	select {
	case code := <-closeCode:
		if code != CloseGoingAway {
			t.Fatalf("close code %d, want 1001", code)
		}
		if d := time.Since(silentFrom); d > 3*idle {
			t.Fatalf("closed %v after the client fell silent, IdleTimeout is %v", d.Round(time.Millisecond), idle)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a silent client was never closed")
	}
}
