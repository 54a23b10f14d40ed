package peers

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/tarponrt/tarpon/examples"
	"github.com/tarponrt/tarpon/lsp"
)

func init() {
	Register("tarpon-lua", startLua)
}

// LuaEchoPath is the examples app's cosocket echo page (ws/echo.lsp): each
// connection is a Lua coroutine parked in s:read() between messages.
const LuaEchoPath = "/ws/echo.lsp"

// luaServer is the real Tarpon app server: lsp.NewStack, as the tarpon
// command builds it (the reactor, one Lua scheduler, ba.socket on LSP
// requests, require"smq.hub"), with the embedded examples app mounted at /.
// Its connections live in the reactor; Lua runs on the scheduler's one
// goroutine.
type luaServer struct {
	stack *lsp.Stack
	hs    *http.Server
	addr  string
}

func startLua(addr string) (Server, error) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	// The reactor's default loop count, as the tarpon command uses: with
	// one loop per core the Lua echo costs less per message than with one
	// loop (measured; the event loops take turns running Lua themselves).
	stack, err := lsp.NewStack(lsp.StackConfig{Logger: log})
	if err != nil {
		return nil, err
	}
	s := &luaServer{stack: stack}
	fail := func(err error) (Server, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = stack.Close(ctx)
		return nil, err
	}
	if _, err := stack.Pages.Mount("/", examples.WWW(), "examples"); err != nil {
		return fail(err)
	}
	ln, err := listen(addr)
	if err != nil {
		return fail(err)
	}
	s.addr = ln.Addr().String()
	s.hs = &http.Server{Handler: stack.Handler(), ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 64 << 10}
	go func() { _ = s.hs.Serve(ln) }()
	return s, nil
}

func (s *luaServer) Addr() string { return s.addr }

// Conns counts the connections the reactor holds (upgraded cosockets).
func (s *luaServer) Conns() int64 { return s.stack.Reactor.Stats().Open }

// Messages is the reactor's inbound message count.
func (s *luaServer) Messages() int64 { return int64(s.stack.Reactor.Stats().MessagesIn) }

// Shutdown stops in the order the tarpon command uses: HTTP, then the stack
// (apps, Lua with "sysshutdown", the reactor).
func (s *luaServer) Shutdown(ctx context.Context) error {
	return errors.Join(s.hs.Shutdown(ctx), s.stack.Close(ctx))
}
