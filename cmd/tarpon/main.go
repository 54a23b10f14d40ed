// Command tarpon serves Lua apps the Mako Server way on Tarpon's cosocket
// runtime, and runs the benchmark harness.
//
//	tarpon                        serve the embedded examples app on 127.0.0.1:8080
//	tarpon -l::www -l name::dir   serve app folders (or .zip files), Mako's form
//	tarpon -c tarpon.conf         read a Lua configuration file (like mako.conf)
//	tarpon version
//	tarpon bench ...              the benchmark harness (tarpon bench --help)
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/tarponrt/tarpon/bench"
	"github.com/tarponrt/tarpon/examples"
	"github.com/tarponrt/tarpon/lsp"
	"github.com/tarponrt/tarpon/runtime"
	"github.com/tarponrt/tarpon/scheduler"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "version", "--version", "-version":
			fmt.Fprintf(stdout, "tarpon %s\n", version)
			return 0
		case "bench":
			return bench.Main(args[1:])
		case "bench-peer":
			return bench.PeerMain(args[1:])
		case "bench-worker":
			return bench.WorkerMain(args[1:])
		}
	}
	s, err := parseSettings(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "tarpon:", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: parseLevel(s.logLevel)}))
	slog.SetDefault(log)
	srv, err := start(s, log)
	if err != nil {
		log.Error("tarpon: cannot start", "err", err)
		return 1
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	for {
		select {
		case err := <-srv.failed:
			log.Error("tarpon: server failed", "err", err)
			srv.stop(log)
			return 1
		case got := <-sig:
			if got == syscall.SIGHUP {
				log.Info("tarpon: SIGHUP: reloading apps")
				if err := srv.lsp.Reload(); err != nil {
					log.Error("tarpon: reload", "err", err)
				}
				continue
			}
			log.Info("tarpon: shutting down", "signal", got.String())
			srv.stop(log)
			return 0
		}
	}
}

// server is a running tarpon: the reactor, the Lua scheduler, the LSP apps
// and the HTTP listeners.
type server struct {
	stack   *lsp.Stack
	lsp     *lsp.Server
	https   []*http.Server
	closers []io.Closer
	failed  chan error
	stopW   chan struct{}
	addr    string // the HTTP listener's address
}

// exchange adapts an lsp request to what ba.socket.req2sock needs.
type exchange struct{ q *lsp.Request }

func (e exchange) HTTP() (http.ResponseWriter, *http.Request) { return e.q.HTTP() }
func (e exchange) Hijacked()                                  { e.q.MarkHijacked() }

func start(s *settings, log *slog.Logger) (*server, error) {
	stack, err := lsp.NewStack(lsp.StackConfig{
		Runtime: runtime.Config{
			Loops:         s.loops,
			MaxMessage:    s.maxMessage,
			HighWater:     s.highWater,
			PingInterval:  s.ping,
			IdleTimeout:   s.idleTimeout,
			MaxConns:      s.maxConns,
			MaxConnsPerIP: s.maxPerIP,
			UpgradeRate:   s.upgradeRate,
			Origin:        runtime.OriginPolicy{Allow: s.origins, RequireOrigin: s.needOrigin},
		},
		Scheduler: scheduler.Config{Budget: s.budget, MaxSliceGrowth: s.luaGrowth},
		Pages:     lsp.Options{Dev: s.dev},
		Logger:    log,
	})
	if err != nil {
		return nil, err
	}
	srv := &server{stack: stack, lsp: stack.Pages, failed: make(chan error, 4), stopW: make(chan struct{})}
	started := false
	defer func() {
		if !started { // release what was started if a later step failed
			for _, h := range srv.https {
				_ = h.Close()
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = stack.Close(ctx)
		}
	}()
	pages := stack.Pages

	var dirs []string
	if len(s.apps) == 0 {
		if _, err := pages.Mount("/", examples.WWW(), "examples"); err != nil {
			return nil, fmt.Errorf("mount the examples app: %w", err)
		}
	}
	for _, app := range s.apps {
		fsys, closer, err := openApp(app.path)
		if err != nil {
			return nil, fmt.Errorf("app %s: %w", app.path, err)
		}
		if closer != nil {
			srv.closers = append(srv.closers, closer)
		} else {
			dirs = append(dirs, app.path)
		}
		prefix := "/"
		if app.name != "" {
			prefix = "/" + app.name + "/"
		}
		if _, err := pages.Mount(prefix, fsys, filepath.Base(app.path)); err != nil {
			return nil, fmt.Errorf("mount %s at %s: %w", app.path, prefix, err)
		}
		log.Info("tarpon: app mounted", "path", app.path, "prefix", prefix)
	}

	handler := stack.Handler()
	newHTTP := func() *http.Server {
		return &http.Server{Handler: handler, ReadHeaderTimeout: s.readHeader, MaxHeaderBytes: 64 << 10, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return nil, err
	}
	srv.addr = ln.Addr().String()
	plain := newHTTP()
	srv.https = append(srv.https, plain)
	go srv.serve(plain, ln)
	log.Info("tarpon: serving", "addr", "http://"+ln.Addr().String(), "version", version)

	if s.tlsAddr != "" {
		cert, err := tls.LoadX509KeyPair(s.tlsCert, s.tlsKey)
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		tln, err := net.Listen("tcp", s.tlsAddr)
		if err != nil {
			return nil, err
		}
		secure := newHTTP()
		srv.https = append(srv.https, secure)
		go srv.serve(secure, runtime.NewTLSListener(tln, &tls.Config{Certificates: []tls.Certificate{cert}}))
		log.Info("tarpon: serving", "addr", "https://"+tln.Addr().String())
	}
	if s.admin != "" {
		aln, err := net.Listen("tcp", s.admin)
		if err != nil {
			return nil, err
		}
		admin := &http.Server{Handler: runtime.AdminHandler(stack.Reactor, stack.MetricsWriters()...), ReadHeaderTimeout: 5 * time.Second}
		srv.https = append(srv.https, admin)
		go srv.serve(admin, aln)
		log.Info("tarpon: admin", "addr", "http://"+aln.Addr().String())
	}
	if s.reload && len(dirs) > 0 {
		go srv.watch(dirs, log)
	}
	started = true
	return srv, nil
}

func (srv *server) serve(h *http.Server, ln net.Listener) {
	if err := h.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		srv.failed <- err
	}
}

// stop shuts down in the order that loses nothing: stop accepting requests,
// unload apps (onunload), resume every parked cosocket with "sysshutdown" so
// it can say goodbye, then close upgraded connections with 1001 and flush.
func (srv *server) stop(log *slog.Logger) {
	close(srv.stopW)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// A second for requests in flight; connections that never sent one
	// (browsers open them speculatively) would hold Shutdown for 5 s.
	grace, cancelGrace := context.WithTimeout(ctx, time.Second)
	defer cancelGrace()
	for _, h := range srv.https {
		if h.Shutdown(grace) != nil {
			_ = h.Close()
		}
	}
	if err := srv.stack.Close(ctx); err != nil {
		log.Warn("tarpon: shutting down", "err", err)
	}
	for _, c := range srv.closers {
		_ = c.Close()
	}
}

// watch polls app folders and reloads the apps when a file changes.
func (srv *server) watch(dirs []string, log *slog.Logger) {
	stamp := func() string {
		var sum int64
		var n int
		for _, d := range dirs {
			_ = filepath.WalkDir(d, func(_ string, e fs.DirEntry, err error) error {
				if err == nil {
					if info, err := e.Info(); err == nil {
						sum += info.ModTime().UnixNano() + info.Size()
						n++
					}
				}
				return nil
			})
		}
		return fmt.Sprint(sum, n)
	}
	last := stamp()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-srv.stopW:
			return
		case <-t.C:
			if now := stamp(); now != last {
				last = now
				log.Info("tarpon: app files changed: reloading")
				if err := srv.lsp.Reload(); err != nil {
					log.Error("tarpon: reload", "err", err)
				}
			}
		}
	}
}
