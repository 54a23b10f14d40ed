package bench

import (
	"fmt"
	"io"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/tarponrt/tarpon/bench/loadgen"
)

// EchoOptions configures the echo scenario: WebSocket on a ws:// or
// wss:// URL; on http:// or https:// a raw byte stream (a GET answered
// with 200, then bytes echoed as they come), counted in Size-byte
// messages.
type EchoOptions struct {
	URL      string
	Conns    int
	Size     int
	Batch    int     // frames per TCP write
	Rate     float64 // total msgs/s; 0 = closed loop
	Text     bool
	Warmup   time.Duration
	Duration time.Duration
	Loops    int       // generator goroutines (default 1)
	Live     io.Writer // progress line while it runs (nil: none)
	DialOptions
	Server Server
}

// EchoSummary is one echo run. Latencies are in microseconds.
type EchoSummary struct {
	Peer       string  `json:"peer,omitempty"`
	Mode       string  `json:"mode"` // "closed", "rate", "rpc" (SMQ round trips) or "http" (GETs)
	Path       string  `json:"path,omitempty"`
	Transport  string  `json:"transport,omitempty"` // ws, wss, raw, raw+tls, http, https
	Conns      int     `json:"conns"`
	Opened     int     `json:"opened"`
	Size       int     `json:"size"`
	Batch      int     `json:"batch"`
	Rate       float64 `json:"rate,omitempty"`
	Messages   int64   `json:"messages"`
	WindowSecs float64 `json:"window_secs"`
	MsgsPerSec float64 `json:"msgs_per_sec"`

	Min  float64 `json:"min_us"`
	P50  float64 `json:"p50_us"`
	P90  float64 `json:"p90_us"`
	P99  float64 `json:"p99_us"`
	P999 float64 `json:"p999_us"`
	Max  float64 `json:"max_us"`
	Mean float64 `json:"mean_us"`

	ServerCPUPerMsg float64 `json:"server_cpu_us_per_msg"` // -1 unknown
	ClientCPUPerMsg float64 `json:"client_cpu_us_per_msg"`
	ServerCores     float64 `json:"server_cores"` // average cores busy during the window
	ClientCores     float64 `json:"client_cores"`
	ServerGCs       int64   `json:"server_gcs"` // -1 unknown
	Lost            int     `json:"lost_conns"`
	Unexpected      int64   `json:"unexpected,omitempty"`
	Backlogged      int64   `json:"backlogged,omitempty"`
	FirstError      string  `json:"first_error,omitempty"`
	Err             string  `json:"error,omitempty"`
}

// Percentiles fills the latency fields from h (ns values) in µs.
func (s *EchoSummary) Percentiles(h *hdrhistogram.Histogram) {
	us := func(v int64) float64 { return float64(v) / 1e3 }
	s.Min = us(h.Min())
	s.P50 = us(h.ValueAtQuantile(50))
	s.P90 = us(h.ValueAtQuantile(90))
	s.P99 = us(h.ValueAtQuantile(99))
	s.P999 = us(h.ValueAtQuantile(99.9))
	s.Max = us(h.Max())
	s.Mean = h.Mean() / 1e3
}

// RunEcho runs the echo scenario: dial Conns, drive them for Warmup +
// Duration, and measure the window. It never panics; problems land in Err.
func RunEcho(opt EchoOptions) EchoSummary {
	if opt.Batch < 1 {
		opt.Batch = 1
	}
	opt.setDefaults()
	sum := EchoSummary{Mode: "closed", Conns: opt.Conns, Size: opt.Size, Batch: opt.Batch,
		ServerCPUPerMsg: -1, ServerGCs: -1, ServerCores: -1}
	if opt.Rate > 0 {
		sum.Mode, sum.Rate = "rate", opt.Rate
	}
	t, err := loadgen.ParseURL(opt.URL)
	if err != nil {
		sum.Err = err.Error()
		return sum
	}
	sum.Transport = transport(t, true)
	if opt.Conns <= 0 || opt.Duration <= 0 {
		sum.Err = "bench: echo needs --conns > 0 and --duration > 0"
		return sum
	}
	kind := loadgen.KindWebSocket
	if t.HTTP {
		kind = loadgen.KindStream // http(s)://: a raw byte stream after a 200
	}
	dr, ok := sum.dialFor(opt.DialOptions, t, kind, opt.Conns, "dials failed", "bench: no connection opened")
	defer loadgen.CloseAll(dr.Conns)
	if !ok {
		return sum
	}
	sum.drive(opt.Live, "echo", dr.Conns, opt.Server, func(p *loadgen.Progress, onWindow func(bool)) (*loadgen.EchoResult, error) {
		return loadgen.RunEcho(dr.Conns, loadgen.EchoConfig{Progress: p, OnWindow: onWindow,
			Size: opt.Size, Batch: opt.Batch, Rate: opt.Rate, Text: opt.Text,
			Warmup: opt.Warmup, Duration: opt.Duration, Loops: opt.Loops})
	})
	return sum
}

// dialFor opens what a round-trip scenario (echo, rpc, http) drives: it
// raises the fd limit and dials n connections of kind to t, recording in
// sum how many opened and, as failed, how many did not. ok is false, with
// sum.Err set (none, then the first error), when none opened. The caller
// closes dr.Conns either way.
func (sum *EchoSummary) dialFor(d DialOptions, t loadgen.Target, kind loadgen.Kind, n int, failed, none string) (dr *loadgen.DialResult, ok bool) {
	if _, err := loadgen.RaiseFDLimit(); err != nil {
		sum.Err = err.Error()
		return &loadgen.DialResult{}, false
	}
	dr = d.dial(t, kind, n)
	sum.Opened = len(dr.Conns)
	if dr.Failed > 0 {
		sum.FirstError = fmt.Sprintf("%d of %d %s: %s", dr.Failed, n, failed, dr.FirstError)
	}
	if len(dr.Conns) == 0 {
		sum.Err = none + ": " + dr.FirstError
		return dr, false
	}
	return dr, true
}

// drive runs one load generator driver over conns with the server's CPU
// window and the progress line around it, and fills sum from its result.
func (sum *EchoSummary) drive(live io.Writer, label string, conns []loadgen.Conn, server Server,
	run func(p *loadgen.Progress, onWindow func(start bool)) (*loadgen.EchoResult, error)) {
	srv := resolveServer(server)
	var w window
	var p loadgen.Progress
	stop := startLive(live, label, len(conns), &p)
	res, err := run(&p, func(start bool) { w.sample(srv, start) })
	stop()
	if err != nil {
		sum.Err = err.Error()
		return
	}
	sum.fill(res, &w)
}

// fill computes the summary's figures from a run and its CPU window.
func (sum *EchoSummary) fill(res *loadgen.EchoResult, w *window) {
	sum.Messages = res.Received
	sum.WindowSecs = res.Window.Seconds()
	if sum.WindowSecs > 0 {
		sum.MsgsPerSec = float64(res.Received) / sum.WindowSecs
		sum.ClientCores = w.clientCPU().Seconds() / sum.WindowSecs
		if w.serverOK {
			sum.ServerCores = w.serverCPU().Seconds() / sum.WindowSecs
		}
	}
	if res.Received > 0 {
		sum.ClientCPUPerMsg = float64(w.clientCPU().Microseconds()) / float64(res.Received)
		if w.serverOK {
			sum.ServerCPUPerMsg = float64(w.serverCPU().Microseconds()) / float64(res.Received)
		}
		sum.Percentiles(res.Hist)
	}
	sum.ServerGCs = w.gcs()
	sum.Lost = res.Lost
	sum.Unexpected = res.Unexpected
	sum.Backlogged = res.Backlogged
	if res.FirstError != "" && sum.FirstError == "" {
		sum.FirstError = res.FirstError
	}
}
