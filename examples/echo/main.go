// Command echo embeds Tarpon's runtime in a Go program: a WebSocket echo at
// /echo (text stays text, binary stays binary) and a raw TCP echo at /raw
// (the HTTP request is morphed into a plain byte stream, no HTTP response).
// Upgraded connections live in the reactor and hold no goroutine.
//
//	go run ./examples/echo --addr 127.0.0.1:8081 --admin 127.0.0.1:9091
package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tarponrt/tarpon/runtime"
)

// echo sends every message back to its sender, from the event loop.
type echo struct{}

func (echo) OnOpen(*runtime.Conn)         {}
func (echo) OnDrain(*runtime.Conn)        {}
func (echo) OnClose(*runtime.Conn, error) {}
func (echo) OnMessage(c *runtime.Conn, msg []byte, text bool) {
	if text {
		_ = c.SendText(msg)
	} else {
		_ = c.Send(msg)
	}
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8081", "HTTP listen address")
	admin := flag.String("admin", "", "admin address for /metrics, /healthz and pprof (off when empty)")
	flag.Parse()

	r, err := runtime.New(runtime.Config{})
	if err != nil {
		slog.Error("start reactor", "err", err)
		os.Exit(1)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", func(w http.ResponseWriter, req *http.Request) {
		_, _ = r.Upgrade(w, req, echo{}, nil)
	})
	mux.HandleFunc("/raw", func(w http.ResponseWriter, req *http.Request) {
		_, _ = r.Morph(w, req, echo{}, nil)
	})
	srv := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	if *admin != "" {
		go func() {
			if err := http.ListenAndServe(*admin, runtime.AdminHandler(r)); err != nil {
				slog.Error("admin server", "err", err)
			}
		}()
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
		<-sig
		// http.Server.Shutdown does not see hijacked connections: the
		// reactor closes those (1001 "going away") and flushes them.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		_ = r.Shutdown(ctx)
	}()
	slog.Info("echo serving", "addr", *addr, "websocket", "/echo", "raw", "/raw")
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		slog.Error("serve", "err", err)
		os.Exit(1)
	}
	<-stopped
}
