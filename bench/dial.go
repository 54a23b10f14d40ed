package bench

import (
	"time"

	"github.com/tarponrt/tarpon/bench/loadgen"
)

// DialOptions is how a scenario opens its connections.
type DialOptions struct {
	Sources  int           // 127.0.0.1 .. 127.0.0.N source addresses (default 4)
	Parallel int           // concurrent dialers per process (default 32)
	Timeout  time.Duration // per dial + handshake (default 5 s)
	// Insecure accepts any server certificate on wss:// and https://
	// (self-signed test servers, such as the *-tls peers).
	Insecure bool
}

func (d *DialOptions) setDefaults() {
	if d.Sources <= 0 {
		d.Sources = 4
	}
	if d.Parallel <= 0 {
		d.Parallel = 32
	}
	if d.Timeout <= 0 {
		d.Timeout = 5 * time.Second
	}
}

// dial opens n connections of kind to t after raising the fd limit.
func (d DialOptions) dial(t loadgen.Target, kind loadgen.Kind, n int) *loadgen.DialResult {
	t.Insecure = d.Insecure
	return loadgen.DialMany(t, kind, n, loadgen.SourceAddrs(d.Sources), d.Parallel, d.Timeout)
}

// transport names how a URL's connections travel, for the tables: ws,
// wss, http, https; raw and raw+tls when an http(s):// URL becomes a raw
// stream (SMQ's raw transport, or the echo's byte stream).
func transport(t loadgen.Target, raw bool) string {
	switch {
	case t.HTTP && raw && t.TLS:
		return "raw+tls"
	case t.HTTP && raw:
		return "raw"
	case t.HTTP && t.TLS:
		return "https"
	case t.HTTP:
		return "http"
	case t.TLS:
		return "wss"
	}
	return "ws"
}
