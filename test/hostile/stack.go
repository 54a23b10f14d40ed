package hostile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tarponrt/tarpon/broker"
	"github.com/tarponrt/tarpon/cosocket"
	"github.com/tarponrt/tarpon/examples"
	"github.com/tarponrt/tarpon/lsp"
	"github.com/tarponrt/tarpon/runtime"
	"github.com/tarponrt/tarpon/scheduler"
)

// Config configures a Stack. The zero value gives cmd/tarpon's defaults
// with the examples app at "/".
type Config struct {
	// Runtime configures the reactor (Logger is filled in).
	Runtime runtime.Config
	// Scheduler configures the Lua VM (Logger is filled in).
	Scheduler scheduler.Config
	// Cosocket configures ba.socket (Logger is filled in).
	Cosocket cosocket.Config
	// LSP configures the app server (Logger is filled in).
	LSP lsp.Options
	// Broker configures the Go broker served at /gosmq (Logger is filled in).
	Broker broker.Options
	// Apps mounts more apps: URL prefix ("/abuse/") → files.
	Apps map[string]fs.FS
	// ReadHeaderTimeout and MaxHeaderBytes of the HTTP server; zero means
	// cmd/tarpon's 10 s and 64 KiB.
	ReadHeaderTimeout time.Duration
	MaxHeaderBytes    int
	// Logger for every component. Nil discards.
	Logger *slog.Logger
}

// Stack is the whole server in-process: lsp.Stack, the app server the tarpon
// command runs (reactor, scheduler, cosocket, smq.hub, lsp) with the
// examples app and the browser client at /rtl/smq.js, plus a Go broker at
// /gosmq whose Options tests set directly (the Lua broker has no option for
// every limit).
type Stack struct {
	*lsp.Stack             // the app server the tarpon command runs
	Hub        *broker.Hub // the Go broker at /gosmq
	HTTP       *http.Server
	Addr       string // host:port of the HTTP listener
	Admin      http.Handler

	// AcceptErrors counts failed Accepts on the HTTP listener (EMFILE,
	// ENFILE...); net/http backs off and retries after each.
	AcceptErrors atomic.Uint64

	served chan error
}

// countingListener counts Accept errors; net/http's Serve retries
// temporary ones (EMFILE, ENFILE) with a back-off from 5 ms to 1 s.
type countingListener struct {
	net.Listener
	n *atomic.Uint64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		l.n.Add(1)
	}
	return c, err
}

// Start builds and starts a Stack on 127.0.0.1:0. Any goroutine.
func Start(cfg Config) (*Stack, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	cfg.Runtime.Logger = log
	cfg.Scheduler.Logger = log
	cfg.Cosocket.Logger = log
	cfg.LSP.Logger = log
	cfg.Broker.Logger = log
	if cfg.ReadHeaderTimeout == 0 {
		cfg.ReadHeaderTimeout = 10 * time.Second
	}
	if cfg.MaxHeaderBytes == 0 {
		cfg.MaxHeaderBytes = 64 << 10
	}
	ls, err := lsp.NewStack(lsp.StackConfig{Runtime: cfg.Runtime, Scheduler: cfg.Scheduler,
		Sockets: cfg.Cosocket, Pages: cfg.LSP, Logger: log})
	if err != nil {
		return nil, err
	}
	s := &Stack{Stack: ls, served: make(chan error, 1)}
	s.Hub = broker.New(ls.Reactor, &cfg.Broker)
	pages := ls.Pages
	if _, err := pages.Mount("/", examples.WWW(), "examples"); err != nil {
		s.Close()
		return nil, fmt.Errorf("mount examples: %w", err)
	}
	for prefix, fsys := range cfg.Apps {
		if _, err := pages.Mount(prefix, fsys, strings.Trim(prefix, "/")); err != nil {
			s.Close()
			return nil, fmt.Errorf("mount %s: %w", prefix, err)
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/gosmq", s.Hub)
	mux.Handle("/", ls.Handler())
	s.Admin = runtime.AdminHandler(ls.Reactor, ls.MetricsWriters()...)
	s.HTTP = &http.Server{Handler: mux, ReadHeaderTimeout: cfg.ReadHeaderTimeout, MaxHeaderBytes: cfg.MaxHeaderBytes,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.Close()
		return nil, err
	}
	s.Addr = ln.Addr().String()
	go func() { s.served <- s.HTTP.Serve(countingListener{ln, &s.AcceptErrors}) }()
	return s, nil
}

// URL returns "http://addr" + path.
func (s *Stack) URL(path string) string { return "http://" + s.Addr + path }

// WSURL returns "ws://addr" + path.
func (s *Stack) WSURL(path string) string { return "ws://" + s.Addr + path }

// Close shuts everything down in cmd/tarpon's order. Any goroutine but the VM's.
func (s *Stack) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var errs []error
	if s.HTTP != nil {
		if err := s.HTTP.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if s.Hub != nil {
		s.Hub.Shutdown("bye", 0)
	}
	if err := s.Stack.Close(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Metrics returns the admin /metrics text.
func (s *Stack) Metrics() string {
	var b strings.Builder
	rw := &metricsWriter{h: http.Header{}, b: &b}
	req, _ := http.NewRequest("GET", "/metrics", nil)
	s.Admin.ServeHTTP(rw, req)
	return b.String()
}

type metricsWriter struct {
	h http.Header
	b *strings.Builder
}

func (m *metricsWriter) Header() http.Header         { return m.h }
func (m *metricsWriter) Write(p []byte) (int, error) { return m.b.Write(p) }
func (m *metricsWriter) WriteHeader(int)             {}

// Metric returns the value of the first /metrics line that starts with
// name (a full series name with labels, e.g.
// `tarpon_connections_refused_total{reason="origin"}`), or -1.
func (s *Stack) Metric(name string) float64 {
	for _, line := range strings.Split(s.Metrics(), "\n") {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			var v float64
			if _, err := fmt.Sscan(rest, &v); err == nil {
				return v
			}
		}
	}
	return -1
}
