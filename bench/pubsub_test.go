package bench

import (
	"bytes"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tarponrt/tarpon/bench/peers"
)

// startInProcess starts a peer inside the test process (so the race
// detector sees it) and stops it when the test ends.
func startInProcess(t *testing.T, name string) peers.Server {
	t.Helper()
	srv, err := peers.Start(name, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := shutdown(srv); err != nil {
			t.Errorf("shutdown %s: %v", name, err)
		}
	})
	return srv
}

func TestFanoutSMQ(t *testing.T) {
	srv := startInProcess(t, "tarpon-smq")
	url := "ws://" + srv.Addr() + peers.SMQPath
	cases := []struct {
		name      string
		url       string
		transport string
		inFlight  int
		rate      float64
		topics    int
		pubs      int
	}{
		{name: "closed loop 1 in flight", url: url, transport: "ws", inFlight: 1, topics: 1, pubs: 1},
		{name: "closed loop 8 in flight, 3 topics, 2 publishers", url: url, transport: "ws", inFlight: 8, topics: 3, pubs: 2},
		{name: "open loop 200/s, 2 topics", url: url, transport: "ws", rate: 200, topics: 2, pubs: 1},
		{name: "raw transport, closed loop 4 in flight, 2 topics", url: "http://" + srv.Addr() + peers.SMQPath,
			transport: "raw", inFlight: 4, topics: 2, pubs: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := RunFanout(FanoutOptions{URL: tc.url, Proto: "smq", Subs: 30, Pubs: tc.pubs, Topics: tc.topics,
				InFlight: tc.inFlight, Rate: tc.rate, Size: 64, Warmup: 100 * time.Millisecond,
				Duration: 500 * time.Millisecond, Server: Server{PID: os.Getpid()}})
			if s.Err != "" || s.Lost != 0 || s.FirstError != "" || s.Stalled != 0 || s.Transport != tc.transport {
				t.Fatalf("fanout: %+v", s)
			}
			// Each publish reaches the subscribers of its topic only; the
			// window edges may cut a few deliveries in or out.
			if s.Ratio < 0.85 || s.Ratio > 1.15 || s.Published < 20 {
				t.Fatalf("published %d, delivered %d, ratio %.3f", s.Published, s.Delivered, s.Ratio)
			}
			if s.P50 <= 0 || s.ServerCPUPerDelivery < 0 {
				t.Fatalf("figures: %+v", s)
			}
			if tc.inFlight > 0 && (s.Completed == 0 || s.LastP50 < s.P50 || s.LastP99 <= 0) {
				t.Fatalf("closed-loop figures: completed %d, last p50 %.0f µs, p50 %.0f µs", s.Completed, s.LastP50, s.P50)
			}
		})
	}
	// More topics than a broadcast server has is refused up front.
	if s := RunFanout(FanoutOptions{URL: url, Proto: "bcast", Subs: 4, Pubs: 1, Topics: 2, InFlight: 1,
		Duration: 100 * time.Millisecond}); !strings.Contains(s.Err, "at most 1 topic") {
		t.Fatalf("bcast with 2 topics: %+v", s)
	}
}

func TestRPC(t *testing.T) {
	srv := startInProcess(t, "tarpon-smq")
	for _, tc := range []struct{ scheme, transport string }{{"ws", "ws"}, {"http", "raw"}} {
		t.Run(tc.transport, func(t *testing.T) {
			s := RunRPC(RPCOptions{URL: tc.scheme + "://" + srv.Addr() + peers.SMQPath, Clients: 10, Size: 32,
				Warmup: 100 * time.Millisecond, Duration: 400 * time.Millisecond, Server: Server{PID: os.Getpid()}})
			if s.Err != "" || s.FirstError != "" || s.Lost != 0 || s.Unexpected != 0 || s.Opened != 10 {
				t.Fatalf("rpc: %+v", s)
			}
			if s.Messages < 10 || s.P50 <= 0 || s.Mode != "rpc" || s.Path != peers.SMQPath || s.Transport != tc.transport {
				t.Fatalf("rpc figures: %+v", s)
			}
		})
	}
	// A server that is not an SMQ broker fails the handshake cleanly.
	echo := startInProcess(t, "gorilla-echo")
	bad := RunRPC(RPCOptions{URL: "ws://" + echo.Addr() + "/echo", Clients: 2, Duration: 100 * time.Millisecond,
		DialOptions: DialOptions{Timeout: 300 * time.Millisecond}})
	if !strings.Contains(bad.Err, "no SMQ client connected") {
		t.Fatalf("rpc against an echo server: %+v", bad)
	}
}

func TestLuaEchoAndHTTP(t *testing.T) {
	srv := startInProcess(t, "tarpon-lua")
	t.Run("lua-echo", func(t *testing.T) {
		for _, batch := range []int{1, 4} {
			s := RunEcho(EchoOptions{URL: "ws://" + srv.Addr() + peers.LuaEchoPath, Conns: 5, Size: 64, Batch: batch,
				Warmup: 100 * time.Millisecond, Duration: 400 * time.Millisecond, Server: Server{PID: os.Getpid()}})
			if s.Err != "" || s.FirstError != "" || s.Lost != 0 || s.Unexpected != 0 || s.Messages == 0 {
				t.Fatalf("batch %d: %+v", batch, s)
			}
		}
	})
	t.Run("http", func(t *testing.T) {
		cases := []struct {
			name, path string
			wantBad    bool
		}{
			{name: "front page", path: "/"},
			{name: "missing page", path: "/no-such-page.lsp", wantBad: true},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				s := RunHTTP(HTTPOptions{URL: "http://" + srv.Addr() + tc.path, Conns: 3,
					Warmup: 100 * time.Millisecond, Duration: 400 * time.Millisecond})
				if s.Err != "" || s.Lost != 0 || s.Messages == 0 || s.Path != tc.path {
					t.Fatalf("http: %+v", s)
				}
				if (s.Unexpected > 0) != tc.wantBad {
					t.Fatalf("%d non-2xx answers of %d", s.Unexpected, s.Messages)
				}
			})
		}
	})
}

func TestTargets(t *testing.T) {
	fan := func(peer string, subs, k int, dps, cpu float64) FanoutSummary {
		return FanoutSummary{Peer: peer, Subs: subs, Topics: 1, InFlight: k, DeliveriesS: dps, Delivered: 1, ServerCPUPerDelivery: cpu}
	}
	cases := []struct {
		name    string
		rep     Report
		want    []string
		notWant []string
	}{
		{name: "fan-out met and missed", rep: Report{Fanout: []FanoutSummary{
			fan("tarpon-bcast", 1000, 16, 900, 1),
			fan("tarpon-smq", 1000, 16, 600, 1.2), fan("nats", 1000, 16, 100, 3), fan("gorilla-bcast", 1000, 16, 110, 3),
			fan("tarpon-smq", 1000, 1, 90, 4), fan("nats", 1000, 1, 100, 5),
		}}, want: []string{
			"| fan-out 1000 subs, 16 in flight: tarpon-smq deliveries/s ÷ best peer (gorilla-bcast) | 600 ÷ 110 = 5.45× | ≥ 5.00× | met |",
			"| fan-out 1000 subs, 16 in flight: tarpon-smq server CPU per delivery | 1.200 µs | ≤ 1.5 µs | met |",
			"| fan-out 1000 subs, 1 in flight: tarpon-smq deliveries/s ÷ best peer (nats) | 90 ÷ 100 = 0.90× | ≥ 0.95× | **missed** |",
		}},
		{name: "tarpon failed", rep: Report{Fanout: []FanoutSummary{
			{Peer: "tarpon-smq", Subs: 10, Topics: 1, InFlight: 16, Err: "boom"}, fan("nats", 10, 16, 100, 3),
		}}, want: []string{"no tarpon-smq figure"}},
		{name: "lua echo and idle", rep: Report{
			Echo: []EchoSummary{{Peer: "tarpon-lua", Mode: "closed", Conns: 10, Batch: 1, ServerCPUPerMsg: 4},
				{Peer: "gorilla-echo", Mode: "closed", Conns: 10, Batch: 1, ServerCPUPerMsg: 5},
				// The raw-stream row of the same peer is context, not the bar.
				{Peer: "gorilla-echo", Transport: "raw", Mode: "closed", Conns: 10, Batch: 1, ServerCPUPerMsg: 1}},
			Idle: []IdleResult{{Peer: "tarpon-lua", Opened: 100, RSSPerConn: 7 * 1024}},
		}, want: []string{
			"| lua-echo 10 conns, batch 1: server CPU per message ÷ gorilla-echo's | 4.00 ÷ 5.00 µs = 0.80× | ≤ 0.85× | met |",
			"RSS per connection | 7.00 KiB | ≤ 6 KiB | **missed** |",
		}, notWant: []string{"4.00 ÷ 1.00 µs"}},
		{name: "idle SMQ clients", rep: Report{Idle: []IdleResult{
			{Peer: "tarpon-smq", SMQ: true, Transport: "raw", Opened: 100, RSSPerConn: 1.25 * 1024},
			{Peer: "tarpon-smq", Opened: 100, RSSPerConn: 9 * 1024}, // bare WebSocket: not the SMQ target
		}}, want: []string{
			"| idle SMQ 100 clients over raw (past Connack): tarpon-smq RSS per connection | 1.25 KiB | ≤ 1.5 KiB | met |",
		}},
	}
	if got := (&Report{Idle: []IdleResult{{Peer: "tarpon-smq", Opened: 100, RSSPerConn: 9 * 1024}}}).targets(); strings.Contains(got, "idle SMQ") {
		t.Fatalf("bare WebSocket connections judged as SMQ clients:\n%s", got)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.rep.targets()
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("targets lack %q:\n%s", w, got)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(got, w) {
					t.Errorf("targets hold %q:\n%s", w, got)
				}
			}
		})
	}
	if got := (&Report{Echo: []EchoSummary{{Peer: "gorilla-echo"}}}).targets(); got != "" {
		t.Fatalf("targets without figures: %q", got)
	}
}

// TestIdleSMQ holds SMQ clients past Connack on both transports, dialed in
// this process, and checks the broker counted them.
func TestIdleSMQ(t *testing.T) {
	srv := startInProcess(t, "tarpon-smq")
	for _, tc := range []struct{ scheme, transport string }{{"ws", "ws"}, {"http", "raw"}} {
		t.Run(tc.transport, func(t *testing.T) {
			r := RunIdle(IdleOptions{URL: tc.scheme + "://" + srv.Addr() + peers.SMQPath, Conns: 40, Procs: -1, SMQ: true,
				Settle: 200 * time.Millisecond, Server: Server{PID: os.Getpid()}})
			if r.Err != "" || r.Opened != 40 || r.Failed != 0 || r.Transport != tc.transport || !r.SMQ {
				t.Fatalf("idle smq: %+v", r)
			}
		})
		// The clients said goodbye on the way out.
		if !waitUntil(5*time.Second, func() bool { return srv.Conns() == 0 }) {
			t.Fatalf("%d SMQ connections still open after the %s run", srv.Conns(), tc.transport)
		}
	}
}

// TestEchoWSS runs the echo over wss:// against both TLS peers: Tarpon's
// (TLS on the reactor) and gorilla's (crypto/tls per goroutine).
func TestEchoWSS(t *testing.T) {
	for _, name := range []string{"tarpon-echo-tls", "gorilla-echo-tls"} {
		t.Run(name, func(t *testing.T) {
			srv := startInProcess(t, name)
			// 200 kB messages span several TLS records and reads.
			for _, v := range []struct{ batch, size int }{{1, 100}, {8, 100}, {1, 200_000}} {
				batch := v.batch
				s := RunEcho(EchoOptions{URL: "wss://" + srv.Addr() + "/echo", Conns: 4, Size: v.size, Batch: batch,
					Warmup: 50 * time.Millisecond, Duration: 300 * time.Millisecond, DialOptions: DialOptions{Insecure: true}})
				if s.Err != "" || s.FirstError != "" || s.Lost != 0 || s.Unexpected != 0 || s.Messages == 0 || s.Transport != "wss" {
					t.Fatalf("batch %d: %+v", batch, s)
				}
			}
			// Certificate checks are on unless asked otherwise.
			s := RunEcho(EchoOptions{URL: "wss://" + srv.Addr() + "/echo", Conns: 1, Size: 8, Duration: 100 * time.Millisecond})
			if !strings.Contains(s.Err, "certificate") {
				t.Fatalf("self-signed certificate accepted without --insecure: %+v", s)
			}
		})
	}
}

// TestEchoRaw echoes over a raw byte stream (a GET answered with 200, then
// bytes) on Tarpon's runtime (Morph) and on the goroutine-per-connection
// baseline, in plain TCP and TLS.
func TestEchoRaw(t *testing.T) {
	for _, name := range []string{"tarpon-echo", "gorilla-echo", "tarpon-echo-tls"} {
		t.Run(name, func(t *testing.T) {
			srv := startInProcess(t, name)
			scheme, want := "http", "raw"
			if strings.HasSuffix(name, "-tls") {
				scheme, want = "https", "raw+tls"
			}
			for _, batch := range []int{1, 16} {
				s := RunEcho(EchoOptions{URL: scheme + "://" + srv.Addr() + "/raw", Conns: 4, Size: 64, Batch: batch,
					Warmup: 50 * time.Millisecond, Duration: 300 * time.Millisecond, DialOptions: DialOptions{Insecure: true}})
				if s.Err != "" || s.FirstError != "" || s.Lost != 0 || s.Messages == 0 || s.Transport != want {
					t.Fatalf("batch %d: %+v", batch, s)
				}
			}
		})
	}
	// A page that is not a raw endpoint is refused at dial time.
	srv := startInProcess(t, "gorilla-echo")
	if s := RunEcho(EchoOptions{URL: "http://" + srv.Addr() + "/nothing", Conns: 1, Size: 8, Duration: 100 * time.Millisecond}); !strings.Contains(s.Err, "raw stream refused") {
		t.Fatalf("404 page taken for a raw stream: %+v", s)
	}
}

// TestLiveProgress: while a run goes on, progress lines show connections,
// rate and losses (every liveLogInterval when not on a terminal).
func TestLiveProgress(t *testing.T) {
	defer func(d time.Duration) { liveLogInterval = d }(liveLogInterval)
	liveLogInterval = 20 * time.Millisecond
	srv := startInProcess(t, "tarpon-echo")
	var out lockedBuffer
	s := RunEcho(EchoOptions{URL: "ws://" + srv.Addr() + "/echo", Conns: 3, Size: 16,
		Warmup: 50 * time.Millisecond, Duration: 300 * time.Millisecond, Live: &out})
	if s.Err != "" || s.Messages == 0 {
		t.Fatalf("echo: %+v", s)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) < 3 || !strings.Contains(lines[len(lines)-1], "echo: 3 conns,") ||
		!strings.Contains(lines[len(lines)-1], "msgs/s") || !strings.Contains(lines[len(lines)-1], "0 conns lost") {
		t.Fatalf("progress lines:\n%s", out.String())
	}
}

// lockedBuffer is a bytes.Buffer safe for the progress goroutine and the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
