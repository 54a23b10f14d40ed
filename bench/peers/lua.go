package peers

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/tarponrt/tarpon/broker/smqlua"
	"github.com/tarponrt/tarpon/cosocket"
	"github.com/tarponrt/tarpon/examples"
	"github.com/tarponrt/tarpon/lsp"
	"github.com/tarponrt/tarpon/runtime"
	"github.com/tarponrt/tarpon/scheduler"
)

func init() {
	Register("tarpon-lua", startLua)
}

// LuaEchoPath is the examples app's cosocket echo page (ws/echo.lsp): each
// connection is a Lua coroutine parked in s:read() between messages.
const LuaEchoPath = "/ws/echo.lsp"

// luaServer is the real Tarpon app server, assembled as `tarpon start`
// assembles it (cmd/tarpon is package main and cannot be imported): the
// runtime reactor, one Lua scheduler, ba.socket (cosocket) with LSP
// requests, require"smq.hub", and the embedded examples app mounted at /.
// Its connections live in the reactor; Lua runs on the scheduler's one
// goroutine.
type luaServer struct {
	r     *runtime.Reactor
	loop  *scheduler.Loop
	pages *lsp.Server
	hs    *http.Server
	addr  string
}

func startLua(addr string) (Server, error) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	r, err := runtime.New(runtime.Config{Logger: log})
	if err != nil {
		return nil, err
	}
	s := &luaServer{r: r}
	fail := func(err error) (Server, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if s.loop != nil {
			_ = s.loop.Stop(ctx)
		}
		_ = r.Shutdown(ctx)
		return nil, err
	}
	s.loop, err = scheduler.New(scheduler.Config{Logger: log})
	if err != nil {
		return fail(err)
	}
	sockets := cosocket.Open(s.loop, r, cosocket.Config{Logger: log})
	sockets.Requests = func(L *lua.LState, v lua.LValue) (cosocket.Exchange, bool) {
		q, ok := lsp.RequestFrom(L, v)
		if !ok {
			return nil, false
		}
		return q, true // *lsp.Request is a cosocket.Exchange
	}
	smq := smqlua.Open(s.loop, sockets, r, log)
	s.loop.Start()
	s.pages = lsp.NewServer(s.loop, lsp.Options{Logger: log})
	s.pages.Preload("smq.hub", smq.Loader)
	if _, err := s.pages.Mount("/", examples.WWW(), "examples"); err != nil {
		return fail(err)
	}
	ln, err := listen(addr)
	if err != nil {
		return fail(err)
	}
	s.addr = ln.Addr().String()
	s.hs = &http.Server{Handler: s.pages, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 64 << 10}
	go func() { _ = s.hs.Serve(ln) }()
	return s, nil
}

func (s *luaServer) Addr() string { return s.addr }

// Conns counts the connections the reactor holds (upgraded cosockets).
func (s *luaServer) Conns() int64 { return s.r.Stats().Open }

// Messages is the reactor's inbound message count.
func (s *luaServer) Messages() int64 { return int64(s.r.Stats().MessagesIn) }

// Shutdown stops in the order `tarpon start` uses: HTTP, apps, Lua (parked
// cosockets resume with "sysshutdown"), then the reactor.
func (s *luaServer) Shutdown(ctx context.Context) error {
	err := s.hs.Shutdown(ctx)
	err = errors.Join(err, s.pages.Close(ctx))
	err = errors.Join(err, s.loop.Stop(ctx))
	return errors.Join(err, s.r.Shutdown(ctx))
}
