package cosocket

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/tarponrt/tarpon/runtime"
	"github.com/tarponrt/tarpon/scheduler"
)

// Lua behaviour is tested in Lua: every global Test* function in
// testdata/*.lua runs as its own subtest (sorted), as a task on a fresh
// environment: a reactor, a scheduler with ba.socket, and an HTTP server
// whose routes are Lua functions. Helpers for the Lua side:
//
//	URL                     "ws://127.0.0.1:port" of the HTTP server
//	HTTPURL                 "http://127.0.0.1:port"
//	serve(path, fn)         route path to fn(request), run as a task; req2sock(request) works
//	eq(a, b [, msg])        assert a == b
//	waitfor(cond [, ms])    poll cond() every 5 ms until true or fail
//	sink.port               a Go TCP server that accepts and does not read until sink.drain()
//	echo.port               a Go TCP echo server
//	report(v)               send a string to the Go test (env.reports)

const luaPrelude = `
function eq(a, b, msg)
  if a ~= b then
    error((msg or "eq") .. ": expected " .. tostring(b) .. ", got " .. tostring(a), 2)
  end
end
function waitfor(cond, ms)
  local deadline = ba.clock() + (ms or 5000)
  while not cond() do
    if ba.clock() > deadline then error("waitfor: timed out", 2) end
    ba.sleep(5)
  end
end
`

type env struct {
	t       testing.TB
	r       *runtime.Reactor
	loop    *scheduler.Loop
	lib     *Lib
	srv     *httptest.Server
	routes  map[string]*lua.LFunction // VM-only
	reports chan string

	sinkMu    sync.Mutex
	sinkConns []net.Conn
	sinkDrain chan struct{}
}

// exchange is a minimal Exchange for tests (the lsp package has the real one).
type exchange struct {
	w        http.ResponseWriter
	r        *http.Request
	hijacked chan struct{}
	once     sync.Once
}

func (e *exchange) HTTP() (http.ResponseWriter, *http.Request) { return e.w, e.r }
func (e *exchange) Hijacked()                                  { e.once.Do(func() { close(e.hijacked) }) }

func newEnv(t testing.TB, cfg Config) *env {
	t.Helper()
	return newEnvLoops(t, cfg, 0)
}

// newEnvLoops is newEnv with a reactor of loops event loops (0: default).
func newEnvLoops(t testing.TB, cfg Config, loops int) *env {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	r, err := runtime.New(runtime.Config{Logger: logger, Loops: loops})
	if err != nil {
		t.Fatal(err)
	}
	loop, err := scheduler.New(scheduler.Config{Budget: 300 * time.Millisecond, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Logger == nil {
		cfg.Logger = logger
	}
	e := &env{t: t, r: r, loop: loop, routes: map[string]*lua.LFunction{}, reports: make(chan string, 100), sinkDrain: make(chan struct{})}
	e.lib = Open(loop, r, cfg)
	e.lib.Requests = func(L *lua.LState, v lua.LValue) (Exchange, bool) {
		ud, ok := v.(*lua.LUserData)
		if !ok {
			return nil, false
		}
		ex, ok := ud.Value.(*exchange)
		return ex, ok
	}
	e.srv = httptest.NewServer(http.HandlerFunc(e.serveHTTP))
	e.openHelpers()
	loop.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = loop.Stop(ctx)
		e.srv.Close()
		_ = r.Shutdown(ctx)
		e.sinkMu.Lock()
		for _, c := range e.sinkConns {
			c.Close()
		}
		e.sinkMu.Unlock()
	})
	return e
}

// serveHTTP runs the Lua route as a task and waits until it ends or takes
// the connection over.
func (e *env) serveHTTP(w http.ResponseWriter, r *http.Request) {
	ex := &exchange{w: w, r: r, hijacked: make(chan struct{})}
	done := make(chan struct{})
	ok := e.loop.Post(func(L *lua.LState) {
		fn := e.routes[r.URL.Path]
		if fn == nil {
			close(done)
			return
		}
		ud := L.NewUserData()
		ud.Value = ex
		_, err := e.loop.SpawnWith(func(t *scheduler.Task) {
			t.OnExit(func(error) { close(done) })
		}, fn, ud)
		if err != nil {
			close(done)
		}
	})
	if !ok {
		http.Error(w, "stopped", http.StatusServiceUnavailable)
		return
	}
	select {
	case <-done:
		select {
		case <-ex.hijacked:
		default:
			if e.routes != nil {
				w.WriteHeader(http.StatusNoContent)
			}
		}
	case <-ex.hijacked:
	}
}

func (e *env) openHelpers() {
	L := e.loop.L()
	addr := e.srv.Listener.Addr().String()
	L.SetGlobal("URL", lua.LString("ws://"+addr))
	L.SetGlobal("HTTPURL", lua.LString("http://"+addr))
	L.SetGlobal("serve", L.NewFunction(func(L *lua.LState) int {
		e.routes[L.CheckString(1)] = L.CheckFunction(2)
		return 0
	}))
	L.SetGlobal("report", L.NewFunction(func(L *lua.LState) int {
		e.reports <- L.ToStringMeta(L.Get(1)).String()
		return 0
	}))

	// A TCP server that accepts and does not read until drain() is called.
	sinkLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { sinkLn.Close() })
	go func() {
		for {
			c, err := sinkLn.Accept()
			if err != nil {
				return
			}
			e.sinkMu.Lock()
			e.sinkConns = append(e.sinkConns, c)
			e.sinkMu.Unlock()
			go func() {
				<-e.sinkDrain
				_, _ = io.Copy(io.Discard, c)
			}()
		}
	}()
	var drainOnce sync.Once
	sink := L.NewTable()
	sink.RawSetString("port", lua.LNumber(sinkLn.Addr().(*net.TCPAddr).Port))
	sink.RawSetString("drain", L.NewFunction(func(L *lua.LState) int {
		drainOnce.Do(func() { close(e.sinkDrain) })
		return 0
	}))
	L.SetGlobal("sink", sink)

	// A TCP echo server.
	echoLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { echoLn.Close() })
	go func() {
		for {
			c, err := echoLn.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	echo := L.NewTable()
	echo.RawSetString("port", lua.LNumber(echoLn.Addr().(*net.TCPAddr).Port))
	L.SetGlobal("echo", echo)

	if err := L.DoString(luaPrelude); err != nil {
		e.t.Fatal(err)
	}
}

// runLua loads file into the environment's VM and returns its Test* names.
func (e *env) load(file string) []string {
	src, err := os.ReadFile(file)
	if err != nil {
		e.t.Fatal(err)
	}
	var names []string
	var loadErr error
	e.loop.Do(func(L *lua.LState) {
		fn, err := e.loop.LoadString(string(src), filepath.Base(file))
		if err != nil {
			loadErr = err
			return
		}
		L.Push(fn)
		if err := L.PCall(0, 0, nil); err != nil {
			loadErr = err
			return
		}
		L.G.Global.ForEach(func(k, v lua.LValue) {
			if name := k.String(); strings.HasPrefix(name, "Test") {
				if _, ok := v.(*lua.LFunction); ok {
					names = append(names, name)
				}
			}
		})
	})
	if loadErr != nil {
		e.t.Fatal(loadErr)
	}
	sort.Strings(names)
	return names
}

// run runs global function name as a task and waits for it.
func (e *env) run(t *testing.T, name string) {
	done := make(chan error, 1)
	e.loop.Post(func(L *lua.LState) {
		fn, _ := L.GetGlobal(name).(*lua.LFunction)
		_, err := e.loop.SpawnWith(func(task *scheduler.Task) {
			task.OnExit(func(err error) { done <- err })
		}, fn)
		if err != nil {
			done <- err
		}
	})
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("timed out")
	}
}

func TestLua(t *testing.T) {
	files, err := filepath.Glob("testdata/*.lua")
	if err != nil || len(files) == 0 {
		t.Fatalf("no Lua tests: %v", err)
	}
	for _, file := range files {
		// A fresh environment per file keeps files independent.
		e := newEnv(t, Config{})
		for _, name := range e.load(file) {
			t.Run(strings.TrimSuffix(filepath.Base(file), ".lua")+"/"+name, func(t *testing.T) { e.run(t, name) })
		}
	}
}

// TestShutdownResumesCosockets: a cosocket parked in read is resumed with
// nil, "sysshutdown" when the scheduler stops.
func TestShutdownResumesCosockets(t *testing.T) {
	e := newEnv(t, Config{})
	e.loop.Do(func(L *lua.LState) {
		err := L.DoString(`
			serve("/park", function(request)
				local s = ba.socket.req2sock(request)
				s:event(function(s)
					local d, err = s:read()
					report(tostring(d) .. "," .. tostring(err))
				end, "s")
			end)`)
		if err != nil {
			t.Fatal(err)
		}
	})
	c, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET /park HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(buf); err != nil || !strings.Contains(string(buf[:n]), "101") {
		t.Fatalf("handshake: %q %v", buf[:n], err)
	}
	// The handshake is written before the connection enters the reactor;
	// wait until the cosocket is parked.
	deadline := time.Now().Add(5 * time.Second)
	for e.loop.Stats().TasksParked == 0 && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.loop.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-e.reports:
		if got != "nil,sysshutdown" {
			t.Fatalf("read returned %q, want nil,sysshutdown", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no report")
	}
}
