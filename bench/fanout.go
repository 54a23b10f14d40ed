package bench

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tarponrt/tarpon/bench/loadgen"
)

// FanoutProtocols maps --proto names to fan-out protocol adapters: "bcast"
// for the *-bcast peers, "smq" for the SMQ broker (tarpon-smq), "nats" for
// nats-server over WebSocket (the nats peer).
var FanoutProtocols = map[string]loadgen.FanoutProtocol{
	"bcast": loadgen.Bcast{},
	"smq":   loadgen.SMQ{},
	"nats":  loadgen.NATS{},
}

// protoFor is the fan-out protocol a peer speaks.
func protoFor(peer string) string {
	switch {
	case peer == "tarpon-smq":
		return "smq"
	case peer == "nats":
		return "nats"
	}
	return "bcast"
}

// FanoutOptions configures the fan-out scenario: Subs subscribers on URL,
// Pubs publishers on PubURL publishing Size-byte messages at Rate per
// second in total; every subscriber should receive every message.
type FanoutOptions struct {
	URL      string
	PubURL   string // default: URL with ?pub=1 (bcast peers: publish only)
	Proto    string // key of FanoutProtocols; default "bcast"
	Subs     int
	Pubs     int
	Rate     float64 // open loop: publishes/s over all publishers
	InFlight int     // closed loop: outstanding publishes per publisher (wins over Rate)
	Topics   int     // subscribers spread over this many topics (default 1)
	Size     int
	Warmup   time.Duration
	Duration time.Duration
	Loops    int
	Live     io.Writer // progress line while it runs (nil: none)
	DialOptions
	Server Server
}

// FanoutSummary is one fan-out run. Latencies in µs, publish to delivery.
type FanoutSummary struct {
	Peer        string  `json:"peer,omitempty"`
	Proto       string  `json:"proto"`
	Transport   string  `json:"transport,omitempty"` // ws, wss; smq also raw, raw+tls
	Subs        int     `json:"subs"`
	Pubs        int     `json:"pubs"`
	Topics      int     `json:"topics"`
	InFlight    int     `json:"in_flight,omitempty"` // 0: open loop at Rate
	Rate        float64 `json:"rate,omitempty"`
	Completed   int64   `json:"completed,omitempty"` // closed loop: publishes fully delivered in the window
	PubsPerSec  float64 `json:"publishes_per_sec"`
	Stalled     int64   `json:"stalled,omitempty"`
	Size        int     `json:"size"`
	Published   int64   `json:"published"`
	Delivered   int64   `json:"delivered"`
	Ratio       float64 `json:"delivery_ratio"` // delivered / (published × subs)
	DeliveriesS float64 `json:"deliveries_per_sec"`
	WindowSecs  float64 `json:"window_secs"`

	P50  float64 `json:"p50_us"`
	P99  float64 `json:"p99_us"`
	P999 float64 `json:"p999_us"`
	Max  float64 `json:"max_us"`
	// Closed loop: publish to its last delivery.
	LastP50 float64 `json:"last_p50_us,omitempty"`
	LastP99 float64 `json:"last_p99_us,omitempty"`

	ServerCPUPerDelivery float64 `json:"server_cpu_us_per_delivery"` // -1 unknown
	ClientCPUPerDelivery float64 `json:"client_cpu_us_per_delivery"`
	ServerGCs            int64   `json:"server_gcs"`
	Lost                 int     `json:"lost_conns"`
	FirstError           string  `json:"first_error,omitempty"`
	Err                  string  `json:"error,omitempty"`
}

// RunFanout runs the fan-out scenario. It never panics; problems land in Err.
func RunFanout(opt FanoutOptions) FanoutSummary {
	if opt.Proto == "" {
		opt.Proto = "bcast"
	}
	if opt.Topics < 1 {
		opt.Topics = 1
	}
	if opt.InFlight > 0 {
		opt.Rate = 0
	}
	sum := FanoutSummary{Proto: opt.Proto, Subs: opt.Subs, Pubs: opt.Pubs, Topics: opt.Topics, InFlight: opt.InFlight,
		Rate: opt.Rate, Size: opt.Size, ServerCPUPerDelivery: -1, ServerGCs: -1}
	proto, ok := FanoutProtocols[opt.Proto]
	if !ok {
		sum.Err = fmt.Sprintf("bench: unknown fan-out protocol %q", opt.Proto)
		return sum
	}
	if opt.PubURL == "" {
		sep := "?"
		if strings.Contains(opt.URL, "?") {
			sep = "&"
		}
		opt.PubURL = opt.URL + sep + "pub=1"
	}
	opt.setDefaults()
	if opt.Subs <= 0 || opt.Pubs <= 0 || (opt.Rate <= 0 && opt.InFlight <= 0) || opt.Duration <= 0 {
		sum.Err = "bench: fanout needs --subs, --pubs, --pub-rate or --in-flight, and --duration > 0"
		return sum
	}
	st, err := loadgen.ParseURL(opt.URL)
	if err != nil {
		sum.Err = err.Error()
		return sum
	}
	pt, err := loadgen.ParseURL(opt.PubURL)
	if err != nil {
		sum.Err = err.Error()
		return sum
	}
	if _, err := loadgen.RaiseFDLimit(); err != nil {
		sum.Err = err.Error()
		return sum
	}
	// SMQ speaks its handshake inside the run (the protocol adapter), so
	// its raw transport is dialed bootstrapped only.
	kind := loadgen.KindWebSocket
	if opt.Proto == "smq" && st.HTTP {
		kind = loadgen.KindSMQRaw
	}
	sum.Transport = transport(st, opt.Proto == "smq")
	srv := resolveServer(opt.Server)
	sd := opt.dial(st, kind, opt.Subs)
	defer loadgen.CloseAll(sd.Conns)
	pd := opt.dial(pt, kind, opt.Pubs)
	defer loadgen.CloseAll(pd.Conns)
	if sd.Failed+pd.Failed > 0 {
		sum.FirstError = fmt.Sprintf("%d dials failed: %s%s", sd.Failed+pd.Failed, sd.FirstError, pd.FirstError)
	}
	if len(sd.Conns) == 0 || len(pd.Conns) == 0 {
		sum.Err = "bench: fanout: no connection opened: " + sum.FirstError
		return sum
	}
	var w window
	var live loadgen.Progress
	stop := startLive(opt.Live, "fanout", len(sd.Conns)+len(pd.Conns), &live)
	res, err := loadgen.RunFanout(sd.Conns, pd.Conns, loadgen.FanoutConfig{Progress: &live,
		Proto: proto, Size: opt.Size, Rate: opt.Rate, InFlight: opt.InFlight, Topics: opt.Topics,
		Warmup: opt.Warmup, Duration: opt.Duration,
		Loops: opt.Loops, OnWindow: func(start bool) { w.sample(srv, start) },
	})
	stop()
	if err != nil {
		sum.Err = err.Error()
		return sum
	}
	sum.Subs, sum.Pubs = res.Subscribers, res.Publishers
	sum.Published, sum.Delivered = res.Published, res.Delivered
	sum.WindowSecs = res.Window.Seconds()
	sum.Completed, sum.Stalled = res.Completed, res.Stalled
	if res.Expected > 0 {
		sum.Ratio = float64(res.Delivered) / float64(res.Expected)
	}
	if sum.WindowSecs > 0 {
		sum.DeliveriesS = float64(res.Delivered) / sum.WindowSecs
		sum.PubsPerSec = float64(res.Published) / sum.WindowSecs
	}
	if res.Completed > 0 {
		sum.LastP50 = float64(res.LastHist.ValueAtQuantile(50)) / 1e3
		sum.LastP99 = float64(res.LastHist.ValueAtQuantile(99)) / 1e3
	}
	if res.Delivered > 0 {
		us := func(v int64) float64 { return float64(v) / 1e3 }
		sum.P50 = us(res.Hist.ValueAtQuantile(50))
		sum.P99 = us(res.Hist.ValueAtQuantile(99))
		sum.P999 = us(res.Hist.ValueAtQuantile(99.9))
		sum.Max = us(res.Hist.Max())
		sum.ClientCPUPerDelivery = float64(w.clientCPU().Microseconds()) / float64(res.Delivered)
		if w.serverOK {
			sum.ServerCPUPerDelivery = float64(w.serverCPU().Microseconds()) / float64(res.Delivered)
		}
	}
	sum.ServerGCs = w.gcs()
	sum.Lost = res.Lost
	if res.FirstError != "" && sum.FirstError == "" {
		sum.FirstError = res.FirstError
	}
	return sum
}

// window samples server and client CPU and the server's GC count at the
// start and end of a measured window.
type window struct {
	cli0, cli1, srv0, srv1 time.Duration
	gc0, gc1               int64
	serverOK               bool
	started                bool
}

func (w *window) sample(srv Server, start bool) {
	cpu := selfCPU()
	var sc time.Duration
	ok := srv.PID > 0 && (start || w.serverOK)
	if ok {
		if ps, err := ReadProc(srv.PID); err == nil {
			sc = ps.CPU
		} else {
			ok = false
		}
	}
	gc := int64(-1)
	if srv.Admin != "" {
		if st, err := fetchStats(srv.Admin, false); err == nil {
			gc = int64(st.NumGC)
		}
	}
	if start {
		w.started = true
		w.cli0, w.srv0, w.gc0, w.serverOK = cpu, sc, gc, ok
	} else {
		w.cli1, w.srv1, w.gc1 = cpu, sc, gc
		w.serverOK = w.serverOK && ok
	}
}

func (w *window) clientCPU() time.Duration { return w.cli1 - w.cli0 }
func (w *window) serverCPU() time.Duration { return w.srv1 - w.srv0 }
func (w *window) gcs() int64 {
	if !w.started || w.gc0 < 0 || w.gc1 < 0 {
		return -1
	}
	return w.gc1 - w.gc0
}
