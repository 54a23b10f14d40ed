package lsp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	lua "github.com/yuin/gopher-lua"

	"github.com/tarponrt/tarpon/broker/smqjs"
	"github.com/tarponrt/tarpon/broker/smqlua"
	"github.com/tarponrt/tarpon/cosocket"
	"github.com/tarponrt/tarpon/runtime"
	"github.com/tarponrt/tarpon/scheduler"
)

// Stack is Tarpon's application server put together: the reactor, one Lua
// scheduler with ba.socket (req2sock on LSP requests) and require"smq.hub",
// and the LSP server. The tarpon command serves it; the benchmark's Lua peer
// and the end-to-end tests build the very same thing through NewStack.
type Stack struct {
	Reactor *runtime.Reactor
	Loop    *scheduler.Loop
	Sockets *cosocket.Lib
	SMQ     *smqlua.Module
	Pages   *Server
}

// StackConfig configures every part of a Stack; zero values are the parts'
// defaults. Logger, when set, is used by every part that has none.
type StackConfig struct {
	Runtime   runtime.Config
	Scheduler scheduler.Config
	Sockets   cosocket.Config
	Pages     Options
	Logger    *slog.Logger
}

// NewStack starts a Stack's reactor and scheduler. Mount apps on its Pages,
// serve its Handler, and Close it.
func NewStack(cfg StackConfig) (*Stack, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Runtime.Logger == nil {
		cfg.Runtime.Logger = cfg.Logger
	}
	if cfg.Scheduler.Logger == nil {
		cfg.Scheduler.Logger = cfg.Logger
	}
	if cfg.Sockets.Logger == nil {
		cfg.Sockets.Logger = cfg.Logger
	}
	if cfg.Pages.Logger == nil {
		cfg.Pages.Logger = cfg.Logger
	}
	r, err := runtime.New(cfg.Runtime)
	if err != nil {
		return nil, err
	}
	loop, err := scheduler.New(cfg.Scheduler)
	if err != nil {
		_ = r.Shutdown(context.Background())
		return nil, fmt.Errorf("lsp: %w", err)
	}
	s := &Stack{Reactor: r, Loop: loop}
	s.Sockets = cosocket.Open(loop, r, cfg.Sockets)
	s.Sockets.Requests = func(L *lua.LState, v lua.LValue) (cosocket.Exchange, bool) {
		q, ok := RequestFrom(L, v)
		if !ok {
			return nil, false
		}
		return q, true // *Request is a cosocket.Exchange
	}
	s.SMQ = smqlua.Open(loop, s.Sockets, r, cfg.Logger)
	loop.Start()
	s.Pages = NewServer(loop, cfg.Pages)
	s.Pages.Preload("smq.hub", s.SMQ.Loader)
	return s, nil
}

// Handler serves the browser SMQ client at /rtl/smq.js (where Mako apps load
// it from) and the mounted apps everywhere else.
func (s *Stack) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/rtl/smq.js", smqjs.Handler())
	mux.Handle("/", s.Pages)
	return mux
}

// MetricsWriters are the figures of the Lua side for runtime.AdminHandler.
func (s *Stack) MetricsWriters() []runtime.MetricsWriter {
	return []runtime.MetricsWriter{s.Sockets.WriteMetrics, s.SMQ.WriteMetrics, s.Loop.WriteMetrics}
}

// Close shuts down in the order that loses nothing: the apps unload
// (onunload), every parked cosocket resumes with "sysshutdown" and may say
// goodbye, then upgraded connections get 1001 and their queues are flushed.
// Stop the HTTP servers first.
func (s *Stack) Close(ctx context.Context) error {
	err := s.Pages.Close(ctx)
	err = errors.Join(err, s.Loop.Stop(ctx))
	return errors.Join(err, s.Reactor.Shutdown(ctx))
}
