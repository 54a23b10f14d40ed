package bench

import (
	"encoding/xml"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/tarponrt/tarpon/bench/loadgen"
	"github.com/tarponrt/tarpon/bench/peers"
)

// TestMain lets the test binary stand in for cmd/tarpon: the harness
// re-executes os.Executable() (this binary) as bench-peer / bench-worker.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case PeerCommand:
			os.Exit(PeerMain(os.Args[2:]))
		case WorkerCommand:
			os.Exit(WorkerMain(os.Args[2:]))
		}
	}
	// nbio hands accepted connections from its accept goroutine to its
	// pollers through epoll, which the race detector cannot see; it then
	// reports nbio-internal races (net.TCPAddr written by accept, read by
	// the poller). Race-built nbio peer children therefore must not turn
	// such reports into a failed exit; every other peer keeps the default.
	peerEnv = func(name string) []string {
		if strings.HasPrefix(name, "nbio-") {
			return []string{"GORACE=exitcode=0"}
		}
		return nil
	}
	os.Exit(m.Run())
}

func TestPercentiles(t *testing.T) {
	cases := []struct {
		name   string
		values []int64 // ns
		p50    float64 // µs
		p99    float64
		max    float64
	}{
		{name: "uniform 1..1000 µs", values: seq(1000, func(i int) int64 { return int64(i+1) * 1000 }), p50: 500, p99: 990, max: 1000},
		{name: "constant 20 ms", values: seq(100, func(int) int64 { return 20_000_000 }), p50: 20000, p99: 20000, max: 20000},
		{name: "one outlier", values: append(seq(999, func(int) int64 { return 50_000 }), 1_000_000_000), p50: 50, p99: 50, max: 1_000_000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Split over two histograms and merge, as the generator loops do.
			a, b := loadgen.NewHist(), loadgen.NewHist()
			for i, v := range tc.values {
				h := a
				if i%2 == 1 {
					h = b
				}
				if err := h.RecordValue(v); err != nil {
					t.Fatal(err)
				}
			}
			a.Merge(b)
			var s EchoSummary
			s.Percentiles(a)
			for _, c := range []struct {
				what      string
				got, want float64
			}{{"p50", s.P50, tc.p50}, {"p99", s.P99, tc.p99}, {"max", s.Max, tc.max}} {
				if math.Abs(c.got-c.want) > c.want*0.002 {
					t.Errorf("%s = %v µs, want %v µs ±0.2%%", c.what, c.got, c.want)
				}
			}
		})
	}
}

func seq(n int, f func(int) int64) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = f(i)
	}
	return out
}

func TestPerConn(t *testing.T) {
	cases := []struct {
		name               string
		loaded, base, want float64
		n                  int
	}{
		{name: "2 KiB each", loaded: 30 << 20, base: 30<<20 - 10000*2048, n: 10000, want: 2048},
		{name: "no connections", loaded: 100, base: 50, n: 0, want: 0},
		{name: "noisy baseline stays negative", loaded: 100, base: 200, n: 10, want: -10},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := perConn(tc.loaded, tc.base, tc.n); got != tc.want {
				t.Fatalf("perConn = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestParseProc(t *testing.T) {
	stat := []byte("1234 (we ird) (name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 7 0 123 456 789 1 2 3")
	cpu, threads, err := parseStat(stat)
	if err != nil {
		t.Fatal(err)
	}
	if cpu != 325*clockTick || threads != 7 {
		t.Fatalf("cpu %v threads %d, want %v 7", cpu, threads, 325*clockTick)
	}
	if _, _, err := parseStat([]byte("garbage")); err == nil {
		t.Fatal("malformed stat accepted")
	}
	rss, err := parseVmRSS([]byte("Name:\tx\nVmPeak:\t 999 kB\nVmRSS:\t    2048 kB\n"))
	if err != nil || rss != 2048*1024 {
		t.Fatalf("rss %d %v", rss, err)
	}
	if _, err := parseVmRSS([]byte("Name: x\n")); err == nil {
		t.Fatal("missing VmRSS accepted")
	}
	lim := parseFDLimit([]byte("Limit Soft Hard Units\nMax open files            20000                20000                files\n"))
	if lim != 20000 {
		t.Fatalf("fd limit %d", lim)
	}
	self, err := ReadProc(os.Getpid())
	if err != nil || self.RSS == 0 || self.FDs == 0 || self.Threads == 0 {
		t.Fatalf("ReadProc(self) = %+v, %v", self, err)
	}
}

// delayedEcho is an in-process server that answers every message after a
// fixed delay, so the harness's latency figures can be checked against it.
func delayedEcho(t *testing.T, delay time.Duration) string {
	t.Helper()
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			mt, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			time.Sleep(delay) // the behaviour under test, not synchronisation
			if err := c.WriteMessage(mt, msg); err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/echo"
}

func TestEchoReportsKnownDelay(t *testing.T) {
	// The machine may be shared and loaded, so the checks are the ones that
	// hold under any load: no echo can beat the server's delay, the median
	// stays near it, and a closed loop obeys Little's law.
	const delay = 20 * time.Millisecond
	url := delayedEcho(t, delay)
	cases := []struct {
		name string
		rate float64
		text bool
	}{
		{name: "closed loop binary"},
		{name: "closed loop text", text: true},
		{name: "fixed rate 40/s", rate: 40},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			const conns = 4
			s := RunEcho(EchoOptions{URL: url, Conns: conns, Size: 32, Rate: tc.rate, Text: tc.text,
				Warmup: 100 * time.Millisecond, Duration: time.Second})
			if s.Err != "" || s.Lost > 0 || s.FirstError != "" || s.Unexpected > 0 {
				t.Fatalf("run failed: %+v", s)
			}
			ms := func(us float64) float64 { return us / 1000 }
			if ms(s.Min) < 19.9 {
				t.Fatalf("min latency %.2f ms is below the server's 20 ms delay", ms(s.Min))
			}
			if ms(s.P50) > 60 {
				t.Fatalf("p50 = %.2f ms, want about 20 ms", ms(s.P50))
			}
			if s.ServerCPUPerMsg != -1 || s.ServerGCs != -1 {
				t.Fatalf("server figures without a server pid/admin: %+v", s)
			}
			if tc.rate > 0 {
				if s.MsgsPerSec < tc.rate*0.7 || s.MsgsPerSec > tc.rate*1.3 {
					t.Fatalf("%.0f msgs/s at a fixed rate of %.0f", s.MsgsPerSec, tc.rate)
				}
				return
			}
			// Little's law: throughput = connections in flight / mean latency.
			want := conns / (s.Mean / 1e6)
			if math.Abs(s.MsgsPerSec-want) > want*0.25 {
				t.Fatalf("%.0f msgs/s, Little's law says %.0f (mean %.2f ms)", s.MsgsPerSec, want, ms(s.Mean))
			}
		})
	}
}

// TestEchoCoordinatedOmission: at a fixed rate faster than the server can
// answer, latency must grow with the queue (measured from intended send
// times), not stay at the service time.
func TestEchoCoordinatedOmission(t *testing.T) {
	url := delayedEcho(t, 20*time.Millisecond)
	// One connection, 100 msgs/s offered, 50/s served: the queue grows by
	// 50 per second, so later messages wait hundreds of ms.
	s := RunEcho(EchoOptions{URL: url, Conns: 1, Size: 8, Rate: 100, Warmup: 50 * time.Millisecond,
		Duration: time.Second})
	if s.Err != "" {
		t.Fatal(s.Err)
	}
	if s.P99 < 200_000 {
		t.Fatalf("p99 %.0f µs: queueing delay hidden (coordinated omission)", s.P99)
	}
}

func TestIdleInProcess(t *testing.T) {
	srv, err := peers.Start("gorilla-echo", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs, ln, err := peers.ServeAdmin("127.0.0.1:0", "gorilla-echo", srv)
	if err != nil {
		t.Fatal(err)
	}
	defer hs.Close()
	defer shutdown(srv)
	r := RunIdle(IdleOptions{URL: "ws://" + srv.Addr() + "/echo", Conns: 200, Procs: -1,
		Settle: 400 * time.Millisecond, Server: Server{Admin: ln.Addr().String()}})
	if r.Err != "" || r.Opened != 200 || r.ServerConns != 200 {
		t.Fatalf("idle: %+v", r)
	}
	if r.PIDResolved() != os.Getpid() {
		t.Fatalf("pid not resolved from admin")
	}
	// gorilla holds one goroutine per connection.
	if math.Abs(r.GoroutinesPerConn-1) > 0.1 {
		t.Fatalf("goroutines/conn = %.3f, want 1", r.GoroutinesPerConn)
	}
	if r.Capped != "" {
		t.Fatalf("capped: %s", r.Capped)
	}
}

// PIDResolved is a test hook: the pid RunIdle read /proc from.
func (x IdleResult) PIDResolved() int { return x.pid }

func TestIdleWithWorkerProcesses(t *testing.T) {
	pp, err := StartPeer("nbio-echo", 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := pp.Stop(10 * time.Second); err != nil {
			t.Error(err)
		}
	}()
	r := RunIdle(IdleOptions{URL: pp.URL("/echo"), Conns: 300, Procs: 2, DialOptions: DialOptions{Sources: 3},
		Settle: 400 * time.Millisecond, Server: Server{PID: pp.PID, Admin: pp.Admin}})
	if r.Err != "" || r.Opened != 300 || r.ServerConns != 300 || r.Procs != 2 {
		t.Fatalf("idle: %+v", r)
	}
	if r.RSSLoaded == 0 || r.RSSBaseline == 0 || r.ConnectRate <= 0 {
		t.Fatalf("missing figures: %+v", r)
	}
	if r.GoroutinesPerConn > 0.5 {
		t.Fatalf("nbio goroutines/conn = %.3f", r.GoroutinesPerConn)
	}
	// Workers closed their connections on the way out.
	if !waitUntil(10*time.Second, func() bool {
		st, err := fetchStats(pp.Admin, false)
		return err == nil && st.Conns == 0
	}) {
		t.Fatal("connections still open after the idle run")
	}
}

func TestPeersStartEchoAndStop(t *testing.T) {
	for _, name := range peers.Names() {
		t.Run(name, func(t *testing.T) {
			pp, err := StartPeer(name, 30*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			stopped := false
			t.Cleanup(func() { // a failed check must not leave the peer running
				if !stopped {
					_ = pp.Stop(10 * time.Second)
				}
			})
			switch protoFor(name) {
			case "smq", "nats":
				// Pub/sub peers: a tiny closed-loop fan-out in their protocol.
				r := RunFanout(FanoutOptions{URL: pp.URL(peerPath(name)), Proto: protoFor(name), Subs: 3, Pubs: 1,
					InFlight: 2, Size: 32, Warmup: 50 * time.Millisecond, Duration: 200 * time.Millisecond})
				if r.Err != "" || r.Completed == 0 || r.Lost != 0 {
					t.Fatalf("fanout: %+v", r)
				}
			default:
				tg, err := loadgen.ParseURL(pp.URL(peerPath(name)))
				if err != nil {
					t.Fatal(err)
				}
				tg.Insecure = isTLSPeer(name) // self-signed
				// Closed loop over 2 connections (1 for a broadcast peer,
				// where one subscriber is an echo; fan-out has its own test).
				n := 2
				if strings.HasSuffix(name, "-bcast") {
					n = 1
				}
				dr := loadgen.DialMany(tg, loadgen.KindWebSocket, n, loadgen.SourceAddrs(2), 2, 5*time.Second)
				if len(dr.Conns) != n {
					t.Fatalf("dial: %+v", dr)
				}
				res, err := loadgen.RunEcho(dr.Conns, loadgen.EchoConfig{Size: 16, Duration: 200 * time.Millisecond})
				loadgen.CloseAll(dr.Conns)
				if err != nil || res.Received == 0 || res.Lost != 0 {
					t.Fatalf("echo: %+v %v", res, err)
				}
			}
			st, err := fetchStats(pp.Admin, false)
			if err != nil || st.PID != pp.PID || st.Peer != name {
				t.Fatalf("admin: %+v %v", st, err)
			}
			stopped = true
			if err := pp.Stop(10 * time.Second); err != nil {
				t.Fatalf("stop: %v", err)
			}
		})
	}
}

func TestPeerStartFailures(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cases := []struct {
		name, peer, addr, want string
	}{
		{name: "unknown peer", peer: "no-such-peer", addr: "127.0.0.1:0", want: "unknown peer"},
		{name: "port in use", peer: "gorilla-echo", addr: busy.Addr().String(), want: "address already in use"},
		{name: "port in use nbio", peer: "nbio-echo", addr: busy.Addr().String(), want: "address already in use"},
		{name: "port in use nats", peer: "nats", addr: busy.Addr().String(), want: "address already in use"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pp, err := StartPeerAt(tc.peer, tc.addr, 30*time.Second)
			if err == nil {
				_ = pp.Stop(5 * time.Second)
				t.Fatal("peer started")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not say %q", err, tc.want)
			}
		})
	}
}

func TestSuiteReportsFailedPeer(t *testing.T) {
	dir := t.TempDir()
	results := filepath.Join(dir, "RESULTS.md")
	var out strings.Builder
	code := mainTo([]string{"--peers", "--peer-list", "gorilla-echo,no-such-peer,tarpon-lua",
		"--idle-conns", "20", "--echo-conns", "5", "--echo-batch", "4",
		"--duration", "300ms", "--warmup", "100ms", "--settle", "400ms",
		"--fanout-peers", "tarpon-smq,gorilla-bcast", "--fanout-subs", "10", "--fanout-in-flight", "0,2",
		"--fanout-duration", "300ms", "--pub-rate", "100",
		"--rpc-peers", "tarpon-smq", "--rpc-clients", "5", "--rpc-transports", "ws,raw",
		"--http-peers", "tarpon-lua", "--http-conns", "3",
		"--tls-peers", "tarpon-echo-tls", "--smq-idle-conns", "20", "--raw-peers", "gorilla-echo",
		"--timers", "2000", "--report", dir, "--results", results}, &out, io.Discard)
	if code != 1 {
		t.Fatalf("exit code %d, want 1 (one peer failed)\n%s", code, out.String())
	}
	b, err := os.ReadFile(results)
	if err != nil {
		t.Fatal(err)
	}
	md := string(b)
	for _, want := range []string{"Machine:", "Date:", "Command:", "| gorilla-echo | ws | 20 | 20 |",
		"| no-such-peer | ws | 20 |", "FAILED: peer failed to start", "| gorilla-echo | ws | closed | 5 | 64 | 4 |",
		"| tarpon-echo-tls | wss | closed | 5 | 64 | 1 |", "| gorilla-echo | raw | closed | 5 | 64 | 4 |", "| tarpon-smq | smq/ws | 20 | 20 |", "idle SMQ 20 clients over ws",
		"| gorilla-bcast | bcast | 10 | 1 | 100/s |", "| gorilla-bcast | bcast | 10 | 1 | 2 in flight |",
		"| tarpon-smq | smq | 10 | 1 | 2 in flight |", "### SMQ rpc", "| tarpon-smq | ws | /smq | 5 |", "| tarpon-smq | raw | /smq | 5 |",
		"### HTTP", "| tarpon-lua | http | / | 3 |", "### Targets", "fan-out 10 subs, 2 in flight: tarpon-smq deliveries/s ÷ best peer (gorilla-bcast)",
		"lua-echo 5 conns, batch 1: server CPU per message ÷ gorilla-echo's", "lua idle 20 conns",
		"### Lua timers", "| 2000 | 0.5 | 0.2 | 2000 |", "2000 Lua timers armed: p99 firing lateness (all 2000 fired: yes)"} {
		if !strings.Contains(md, want) {
			t.Errorf("RESULTS.md lacks %q:\n%s", want, md)
		}
	}
	for _, f := range []string{"report.md", "results.json", "latency.svg", "rss.svg", "fanout.svg"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(f, ".svg") {
			if err := wellFormed(b); err != nil {
				t.Errorf("%s: %v", f, err)
			}
		}
	}
}

func wellFormed(b []byte) error {
	d := xml.NewDecoder(strings.NewReader(string(b)))
	for {
		_, err := d.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// TestRunTimers: every armed ba.timer fires, close to its deadline, and
// the armed timers show up as live heap.
func TestRunTimers(t *testing.T) {
	const n = 5000
	r := RunTimers(n, 300*time.Millisecond, 500*time.Millisecond)
	if r.Err != "" || r.Fired != n {
		t.Fatalf("%d of %d fired, err %q", r.Fired, n, r.Err)
	}
	if r.BytesPerTimer <= 0 || r.ArmMicros <= 0 {
		t.Fatalf("heap %.0f B per timer, arm %.2f µs: want both positive", r.BytesPerTimer, r.ArmMicros)
	}
	if r.LateP50 > r.LateP99 || r.LateP99 > r.LateMax || r.LateMax > 1000 {
		t.Fatalf("lateness p50 %.2f, p99 %.2f, max %.2f ms", r.LateP50, r.LateP99, r.LateMax)
	}
	t.Logf("%.0f B/timer, arm %.2f µs, late p50 %.2f p99 %.2f max %.2f ms", r.BytesPerTimer, r.ArmMicros, r.LateP50, r.LateP99, r.LateMax)
}

func TestFanout(t *testing.T) {
	for _, name := range []string{"gorilla-bcast", "tarpon-bcast"} {
		t.Run(name, func(t *testing.T) {
			srv, err := peers.Start(name, "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer shutdown(srv)
			s := RunFanout(FanoutOptions{URL: "ws://" + srv.Addr() + "/bcast", Subs: 20, Pubs: 2, Rate: 200,
				Size: 64, Warmup: 100 * time.Millisecond, Duration: 600 * time.Millisecond,
				Server: Server{PID: os.Getpid()}})
			if s.Err != "" || s.Lost != 0 || s.FirstError != "" {
				t.Fatalf("fanout: %+v", s)
			}
			// Every subscriber gets every publish; the window edges may cut a
			// few in or out.
			if s.Ratio < 0.9 || s.Ratio > 1.1 || s.Published < 60 {
				t.Fatalf("published %d, delivered %d, ratio %.3f", s.Published, s.Delivered, s.Ratio)
			}
			if s.P50 <= 0 || s.ServerCPUPerDelivery < 0 || s.ServerGCs != -1 {
				t.Fatalf("figures: %+v", s)
			}
		})
	}
	if s := RunFanout(FanoutOptions{URL: "ws://127.0.0.1:1/bcast", Proto: "nope", Subs: 1, Pubs: 1, Rate: 1,
		Duration: time.Second}); !strings.Contains(s.Err, "unknown fan-out protocol") {
		t.Fatalf("bad protocol: %+v", s)
	}
}

func TestUsageErrors(t *testing.T) {
	cases := []struct {
		name string
		args []string
	}{
		{name: "no scenario", args: nil},
		{name: "unknown scenario", args: []string{"nonsense"}},
		{name: "echo without url", args: []string{"echo"}},
		{name: "bad flag", args: []string{"echo", "--conns", "x"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if code := mainTo(tc.args, io.Discard, io.Discard); code != 2 {
				t.Fatalf("exit %d, want 2", code)
			}
		})
	}
}
