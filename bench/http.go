package bench

import (
	"io"
	"time"

	"github.com/tarponrt/tarpon/bench/loadgen"
)

// HTTPOptions configures the http scenario: Conns keep-alive connections
// to URL (http:// or https://host:port/path), each with one GET
// outstanding.
type HTTPOptions struct {
	URL      string
	Conns    int
	Warmup   time.Duration
	Duration time.Duration
	Loops    int
	Live     io.Writer // progress line while it runs (nil: none)
	DialOptions
	Server Server
}

// RunHTTP runs the http scenario. The result is an EchoSummary with Mode
// "http": messages are responses, latency is request to complete
// response, Unexpected counts non-2xx answers. It never panics.
func RunHTTP(opt HTTPOptions) EchoSummary {
	opt.setDefaults()
	sum := EchoSummary{Mode: "http", Conns: opt.Conns, Batch: 1,
		ServerCPUPerMsg: -1, ServerGCs: -1, ServerCores: -1}
	t, err := loadgen.ParseURL(opt.URL)
	if err != nil {
		sum.Err = err.Error()
		return sum
	}
	sum.Path, sum.Transport = t.Path, transport(t, false)
	if opt.Conns <= 0 || opt.Duration <= 0 {
		sum.Err = "bench: http needs --conns > 0 and --duration > 0"
		return sum
	}
	dr, ok := sum.dialFor(opt.DialOptions, t, loadgen.KindHTTP, opt.Conns, "dials failed", "bench: no connection opened")
	defer loadgen.CloseAll(dr.Conns)
	if !ok {
		return sum
	}
	sum.drive(opt.Live, "http", dr.Conns, opt.Server, func(p *loadgen.Progress, onWindow func(bool)) (*loadgen.EchoResult, error) {
		return loadgen.RunHTTP(dr.Conns, loadgen.HTTPConfig{Path: t.Path, Host: t.HostPort, Progress: p, OnWindow: onWindow,
			Warmup: opt.Warmup, Duration: opt.Duration, Loops: opt.Loops})
	})
	return sum
}
