package client

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tarponrt/tarpon/broker"
	"github.com/tarponrt/tarpon/runtime"
)

// testBroker is a real hub (runtime reactor + broker.Hub) behind an
// httptest server on loopback.
type testBroker struct {
	r    *runtime.Reactor
	hub  *broker.Hub
	srv  *httptest.Server
	addr string
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startBroker starts a broker listening on addr ("127.0.0.1:0" for a fresh
// port, or the address of a stopped broker to restart it there). It is
// stopped at test cleanup if still running.
func startBroker(t testing.TB, addr string, opts *broker.Options) *testBroker {
	t.Helper()
	r, err := runtime.New(runtime.Config{Loops: 2, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if opts == nil {
		opts = &broker.Options{}
	}
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	hub := broker.New(r, opts)
	var ln net.Listener
	// A just-closed listener's port can take a moment to become free again.
	waitFor(t, 5*time.Second, "listen on "+addr, func() bool {
		ln, err = net.Listen("tcp", addr)
		return err == nil
	})
	srv := httptest.NewUnstartedServer(hub)
	srv.Listener = ln
	srv.Start()
	b := &testBroker{r: r, hub: hub, srv: srv, addr: ln.Addr().String()}
	t.Cleanup(b.stop)
	return b
}

// stop closes the listener and every SMQ connection. Idempotent.
func (b *testBroker) stop() {
	if b.srv == nil {
		return
	}
	b.srv.Close()
	b.srv = nil
	b.hub.Shutdown("", 0)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = b.r.Shutdown(ctx)
}

func (b *testBroker) wsURL() string   { return "ws://" + b.addr + "/smq" }
func (b *testBroker) httpURL() string { return "http://" + b.addr + "/smq" }

// waitFor polls cond every few milliseconds until it is true or the
// deadline passes (then the test fails).
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
