package bench

import (
	"fmt"
	"time"

	"github.com/tarponrt/tarpon/bench/loadgen"
)

// HTTPOptions configures the http scenario: Conns keep-alive connections
// to URL (http://host:port/path), each with one GET outstanding.
type HTTPOptions struct {
	URL      string
	Conns    int
	Warmup   time.Duration
	Duration time.Duration
	Loops    int
	Sources  int
	Parallel int
	Timeout  time.Duration
	Server   Server
}

// RunHTTP runs the http scenario. The result is an EchoSummary with Mode
// "http": messages are responses, latency is request to complete
// response, Unexpected counts non-2xx answers. It never panics.
func RunHTTP(opt HTTPOptions) EchoSummary {
	if opt.Sources <= 0 {
		opt.Sources = 4
	}
	if opt.Parallel <= 0 {
		opt.Parallel = 32
	}
	if opt.Timeout <= 0 {
		opt.Timeout = 5 * time.Second
	}
	sum := EchoSummary{Mode: "http", Conns: opt.Conns, Batch: 1,
		ServerCPUPerMsg: -1, ServerGCs: -1, ServerCores: -1}
	t, err := loadgen.ParseURL(opt.URL)
	if err != nil {
		sum.Err = err.Error()
		return sum
	}
	sum.Path = t.Path
	if opt.Conns <= 0 || opt.Duration <= 0 {
		sum.Err = "bench: http needs --conns > 0 and --duration > 0"
		return sum
	}
	if _, err := loadgen.RaiseFDLimit(); err != nil {
		sum.Err = err.Error()
		return sum
	}
	srv := resolveServer(opt.Server)
	dr := loadgen.DialManyTCP(t, opt.Conns, loadgen.SourceAddrs(opt.Sources), opt.Parallel, opt.Timeout)
	defer loadgen.CloseAll(dr.FDs)
	sum.Opened = len(dr.FDs)
	if dr.Failed > 0 {
		sum.FirstError = fmt.Sprintf("%d of %d dials failed: %s", dr.Failed, opt.Conns, dr.FirstError)
	}
	if len(dr.FDs) == 0 {
		sum.Err = "bench: no connection opened: " + dr.FirstError
		return sum
	}
	var w window
	res, err := loadgen.RunHTTP(dr.FDs, loadgen.HTTPConfig{Path: t.Path, Host: t.HostPort,
		Warmup: opt.Warmup, Duration: opt.Duration, Loops: opt.Loops,
		OnWindow: func(start bool) { w.sample(srv, start) }})
	if err != nil {
		sum.Err = err.Error()
		return sum
	}
	sum.fill(res, &w)
	return sum
}
