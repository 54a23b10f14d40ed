package smqlua

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	goruntime "runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/tarponrt/tarpon/broker/client"
	"github.com/tarponrt/tarpon/cosocket"
	"github.com/tarponrt/tarpon/runtime"
	"github.com/tarponrt/tarpon/scheduler"
)

// Lua behaviour is tested in Lua: every global Test* function in
// testdata/*.lua runs as its own subtest (sorted), as a task, in a fresh
// environment per file: a reactor, a scheduler with ba.socket and
// require"smq.hub", and an HTTP server whose routes are Lua functions.
// Helpers for the Lua side:
//
//	WSURL, RAWURL, HTTPURL  base URLs of the HTTP server (ws://, http://)
//	serve(path, fn)         route path to fn(request), run as a task
//	eq(a, b [, msg])        assert a == b
//	waitfor(cond [, ms])    poll cond() every 5 ms until true or fail
//	httpget(url)            plain GET (parks) → status code
//	loadapp(path)           run an app's .preload in an app environment → app
//	trace(...)              no-op (the lsp package logs)
//	smqc.dial(url, op)      Go SMQ client (broker/client), parks → client,
//	                        or nil, err, connackCode. op: raw, sendhttp,
//	                        uid, cred, info, v2, frag (PubFrag size)
//	c:subscribe(topic [, subtopic]) parks → tid or nil, err
//	c:create(topic)         parks → tid or nil, err
//	c:publish(data, topic|tid [, subtopic|subtid]) → true or nil, err
//	c:observe(tid)          Change messages go to c:change()
//	c:recv([ms])            parks → data, ptid, tid, subtid or nil, "timeout"
//	c:change([ms])          parks → tid, count or nil, "timeout"
//	c:closed([ms])          parks until the broker closed it → err text
//	c:etid(), c:close()

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
	t      testing.TB
	r      *runtime.Reactor
	loop   *scheduler.Loop
	mod    *Module
	srv    *httptest.Server
	routes map[string]*lua.LFunction // VM-only

	mu      sync.Mutex
	clients []*client.Client
}

// exchange is a minimal cosocket.Exchange (the lsp package has the real one).
type exchange struct {
	w        http.ResponseWriter
	r        *http.Request
	hijacked chan struct{}
	once     sync.Once
}

func (e *exchange) HTTP() (http.ResponseWriter, *http.Request) { return e.w, e.r }
func (e *exchange) Hijacked()                                  { e.once.Do(func() { close(e.hijacked) }) }

func newEnv(t testing.TB) *env {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("SMQLUA_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	r, err := runtime.New(runtime.Config{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	// The budget is wall time: generous, for -race on a loaded machine.
	loop, err := scheduler.New(scheduler.Config{Budget: 2 * time.Second, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, r: r, loop: loop, routes: map[string]*lua.LFunction{}}
	lib := cosocket.Open(loop, r, cosocket.Config{Logger: logger})
	lib.Requests = func(L *lua.LState, v lua.LValue) (cosocket.Exchange, bool) {
		ud, ok := v.(*lua.LUserData)
		if !ok {
			return nil, false
		}
		ex, ok := ud.Value.(*exchange)
		return ex, ok
	}
	e.mod = Open(loop, lib, r, logger)
	loop.L().PreloadModule("smq.hub", e.mod.Loader)
	e.srv = httptest.NewServer(http.HandlerFunc(e.serveHTTP))
	e.openHelpers()
	loop.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		e.mu.Lock()
		cs := e.clients
		e.mu.Unlock()
		for _, c := range cs {
			c.CloseAsync()
		}
		_ = loop.Stop(ctx)
		e.srv.Close()
		_ = r.Shutdown(ctx)
	})
	return e
}

// serveHTTP runs the Lua route as a task and waits until it ends or takes
// the connection over; a route that wrote nothing answers 204.
func (e *env) serveHTTP(w http.ResponseWriter, r *http.Request) {
	ex := &exchange{w: w, r: r, hijacked: make(chan struct{})}
	done := make(chan struct{})
	ok := e.loop.Post(func(L *lua.LState) {
		fn := e.routes[r.URL.Path]
		if fn == nil {
			http.NotFound(w, r)
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
			w.WriteHeader(http.StatusNoContent)
		}
	case <-ex.hijacked:
	}
}

// waiter is a task parked in a helper, resumed once by whichever comes
// first (result or timeout). VM goroutine only.
type waiter struct {
	loop *scheduler.Loop
	t    *scheduler.Task
	tm   *scheduler.Timer
	done bool
}

func (e *env) park(L *lua.LState, ms float64) (*waiter, int) {
	t := scheduler.Current(L)
	if t == nil {
		L.RaiseError("must be called from a task")
	}
	w := &waiter{loop: e.loop, t: t}
	if ms > 0 {
		w.tm = e.loop.AfterFunc(time.Duration(ms*float64(time.Millisecond)), func() {
			w.resume(lua.LNil, lua.LString("timeout"))
		})
	}
	return w, t.Park(L)
}

func (w *waiter) resume(vals ...lua.LValue) {
	if w.done {
		return
	}
	w.done = true
	if w.tm != nil {
		w.tm.Stop()
	}
	w.loop.Resume(w.t, vals...)
}

// goAsync runs fn on a goroutine and resumes the calling task with what
// fn's result function returns (on the VM goroutine).
func (e *env) goAsync(L *lua.LState, fn func() func(L *lua.LState) []lua.LValue) int {
	t := scheduler.Current(L)
	if t == nil {
		L.RaiseError("must be called from a task")
	}
	go func() {
		res := fn()
		e.loop.Post(func(L *lua.LState) { e.loop.Resume(t, res(L)...) })
	}()
	return t.Park(L)
}

// tclient is a Go SMQ client seen from Lua. Queues are VM-owned.
type tclient struct {
	c       *client.Client
	msgs    [][]lua.LValue
	changes [][]lua.LValue
	mw, cw  *waiter
	closed  lua.LValue // nil until the broker closed the connection
	clw     *waiter
}

func (tc *tclient) push(q *[][]lua.LValue, w **waiter, vals []lua.LValue) {
	if *w != nil && !(*w).done {
		ww := *w
		*w = nil
		ww.resume(vals...)
		return
	}
	*q = append(*q, vals)
}

func checkClient(L *lua.LState) *tclient {
	ud, ok := L.Get(1).(*lua.LUserData)
	if ok {
		if c, ok := ud.Value.(*tclient); ok {
			return c
		}
	}
	L.ArgError(1, "client expected")
	return nil
}

func errVals(err error) func(*lua.LState) []lua.LValue {
	return func(*lua.LState) []lua.LValue { return []lua.LValue{lua.LNil, lua.LString(err.Error())} }
}

func (e *env) openClient(L *lua.LState) {
	mt := L.NewTable()
	methods := map[string]lua.LGFunction{
		"etid": func(L *lua.LState) int { L.Push(lua.LNumber(checkClient(L).c.Etid())); return 1 },
		"close": func(L *lua.LState) int {
			tc := checkClient(L)
			return e.goAsync(L, func() func(*lua.LState) []lua.LValue {
				_ = tc.c.Close()
				return func(*lua.LState) []lua.LValue { return []lua.LValue{lua.LTrue} }
			})
		},
		"subscribe": func(L *lua.LState) int {
			tc := checkClient(L)
			topic, sub := L.CheckString(2), L.OptString(3, "")
			return e.goAsync(L, func() func(*lua.LState) []lua.LValue {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				tid, subtid, err := tc.c.SubscribeWait(ctx, topic, &client.SubscribeOptions{Subtopic: sub})
				if err != nil {
					return errVals(err)
				}
				return func(*lua.LState) []lua.LValue { return []lua.LValue{lua.LNumber(tid), lua.LNumber(subtid)} }
			})
		},
		"create": func(L *lua.LState) int {
			tc := checkClient(L)
			topic := L.CheckString(2)
			return e.goAsync(L, func() func(*lua.LState) []lua.LValue {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				tid, err := tc.c.Create(ctx, topic)
				if err != nil {
					return errVals(err)
				}
				return func(*lua.LState) []lua.LValue { return []lua.LValue{lua.LNumber(tid)} }
			})
		},
		"publish": func(L *lua.LState) int {
			tc := checkClient(L)
			data := []byte(L.CheckString(2))
			var err error
			if n, ok := L.Get(3).(lua.LNumber); ok {
				err = tc.c.PublishTo(data, uint32(n), uint32(L.OptNumber(4, 0)))
			} else {
				// Publish by name may wait for a CreateAck: do it off the VM.
				topic, sub := L.CheckString(3), L.OptString(4, "")
				return e.goAsync(L, func() func(*lua.LState) []lua.LValue {
					if err := tc.c.Publish(data, topic, sub); err != nil {
						return errVals(err)
					}
					return func(*lua.LState) []lua.LValue { return []lua.LValue{lua.LTrue} }
				})
			}
			if err != nil {
				L.Push(lua.LNil)
				L.Push(lua.LString(err.Error()))
				return 2
			}
			L.Push(lua.LTrue)
			return 1
		},
		"observe": func(L *lua.LState) int {
			tc := checkClient(L)
			tid := uint32(L.CheckNumber(2))
			err := tc.c.Observe(tid, func(count uint32) {
				e.loop.Post(func(*lua.LState) {
					tc.push(&tc.changes, &tc.cw, []lua.LValue{lua.LNumber(tid), lua.LNumber(count)})
				})
			})
			L.Push(lua.LBool(err == nil))
			return 1
		},
		"recv": func(L *lua.LState) int {
			tc := checkClient(L)
			if len(tc.msgs) > 0 {
				m := tc.msgs[0]
				tc.msgs = tc.msgs[1:]
				for _, v := range m {
					L.Push(v)
				}
				return len(m)
			}
			w, n := e.park(L, float64(L.OptNumber(2, 5000)))
			tc.mw = w
			return n
		},
		"change": func(L *lua.LState) int {
			tc := checkClient(L)
			if len(tc.changes) > 0 {
				m := tc.changes[0]
				tc.changes = tc.changes[1:]
				L.Push(m[0])
				L.Push(m[1])
				return 2
			}
			w, n := e.park(L, float64(L.OptNumber(2, 5000)))
			tc.cw = w
			return n
		},
		"closed": func(L *lua.LState) int {
			tc := checkClient(L)
			if tc.closed != nil {
				L.Push(tc.closed)
				return 1
			}
			w, n := e.park(L, float64(L.OptNumber(2, 5000)))
			tc.clw = w
			return n
		},
	}
	L.SetField(mt, "__index", L.SetFuncs(L.NewTable(), methods))

	smqc := L.NewTable()
	L.SetField(smqc, "dial", L.NewFunction(func(L *lua.LState) int {
		url := L.CheckString(1)
		op := L.OptTable(2, L.NewTable())
		tc := &tclient{}
		opts := &client.Options{
			Raw:              lua.LVAsBool(op.RawGetString("raw")),
			SendHTTPResponse: lua.LVAsBool(op.RawGetString("sendhttp")),
			ConnectV2:        lua.LVAsBool(op.RawGetString("v2")),
			UID:              lua.LVAsString(op.RawGetString("uid")),
			Info:             lua.LVAsString(op.RawGetString("info")),
			FragmentSize:     int(lua.LVAsNumber(op.RawGetString("frag"))),
			Timeout:          5 * time.Second,
			OnMsg: func(m client.Message) {
				data := string(m.Data)
				e.loop.Post(func(*lua.LState) {
					tc.push(&tc.msgs, &tc.mw, []lua.LValue{lua.LString(data), lua.LNumber(m.PTID), lua.LNumber(m.TID), lua.LNumber(m.SubTID)})
				})
			},
			OnClose: func(err error, _ bool) {
				msg := "closed"
				if err != nil {
					msg = err.Error()
				}
				e.loop.Post(func(*lua.LState) {
					tc.closed = lua.LString(msg)
					if tc.clw != nil {
						tc.clw.resume(tc.closed)
					}
				})
			},
		}
		if cred := lua.LVAsString(op.RawGetString("cred")); cred != "" {
			opts.Credentials = func(uint32, string) []byte { return []byte(cred) }
		}
		return e.goAsync(L, func() func(*lua.LState) []lua.LValue {
			c, err := client.Dial(context.Background(), url, opts)
			if err != nil {
				var ce *client.ConnackError
				code := lua.LValue(lua.LNil)
				if errors.As(err, &ce) {
					code = lua.LNumber(ce.Code)
				}
				return func(*lua.LState) []lua.LValue { return []lua.LValue{lua.LNil, lua.LString(err.Error()), code} }
			}
			e.mu.Lock()
			e.clients = append(e.clients, c)
			e.mu.Unlock()
			return func(L *lua.LState) []lua.LValue {
				tc.c = c
				ud := L.NewUserData()
				ud.Value = tc
				L.SetMetatable(ud, mt)
				return []lua.LValue{ud}
			}
		})
	}))
	L.SetGlobal("smqc", smqc)
}

func (e *env) openHelpers() {
	L := e.loop.L()
	addr := e.srv.Listener.Addr().String()
	L.SetGlobal("WSURL", lua.LString("ws://"+addr))
	L.SetGlobal("RAWURL", lua.LString("http://"+addr))
	L.SetGlobal("HTTPURL", lua.LString("http://"+addr))
	L.SetGlobal("serve", L.NewFunction(func(L *lua.LState) int {
		e.routes[L.CheckString(1)] = L.CheckFunction(2)
		return 0
	}))
	L.SetGlobal("httpget", L.NewFunction(func(L *lua.LState) int {
		url := L.CheckString(1)
		return e.goAsync(L, func() func(*lua.LState) []lua.LValue {
			resp, err := http.Get(url)
			if err != nil {
				return errVals(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return func(*lua.LState) []lua.LValue { return []lua.LValue{lua.LNumber(resp.StatusCode)} }
		})
	}))
	// loadapp(path): run an app's .preload the way the lsp package does, in
	// an app environment (app = itself, __index = _G); returns the app.
	L.SetGlobal("loadapp", L.NewFunction(func(L *lua.LState) int {
		src, err := os.ReadFile(L.CheckString(1))
		if err != nil {
			L.RaiseError("%v", err)
		}
		fn, err := e.loop.LoadString(string(src), L.CheckString(1))
		if err != nil {
			L.RaiseError("%v", err)
		}
		app := L.NewTable()
		app.RawSetString("app", app)
		mt := L.NewTable()
		mt.RawSetString("__index", L.G.Global)
		L.SetMetatable(app, mt)
		L.SetFEnv(fn, app)
		L.Push(fn)
		L.Call(0, 0)
		L.Push(app)
		return 1
	}))
	L.SetGlobal("trace", L.NewFunction(func(L *lua.LState) int { return 0 }))
	e.openClient(L)
	if err := L.DoString(luaPrelude); err != nil {
		e.t.Fatal(err)
	}
}

// load loads file into the environment's VM and returns its Test* names.
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
		if _, err := e.loop.Spawn(fn); err != nil {
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
		buf := make([]byte, 1<<20)
		t.Fatalf("timed out; goroutines:\n%s", buf[:goruntime.Stack(buf, true)])
	}
}

func TestLua(t *testing.T) {
	files, err := filepath.Glob("testdata/*.lua")
	if err != nil || len(files) == 0 {
		t.Fatalf("no Lua tests: %v", err)
	}
	for _, file := range files {
		e := newEnv(t) // a fresh environment per file keeps files independent
		for _, name := range e.load(file) {
			t.Run(strings.TrimSuffix(filepath.Base(file), ".lua")+"/"+name, func(t *testing.T) { e.run(t, name) })
		}
	}
}

// TestLogOption: the log option receives the hub's diagnostics as text,
// on the scheduler goroutine. The hub logs only rare events (a recursion
// limit, an oversize PubFrag assembly that the project's client never
// sends), so the handler the hub gets is driven directly.
func TestLogOption(t *testing.T) {
	e := newEnv(t)
	var b *lbroker
	e.loop.Do(func(L *lua.LState) {
		if err := L.DoString(`logs = {}; logbroker = require"smq.hub".create{log = function(sock, msg) logs[#logs + 1] = tostring(sock) .. " " .. msg end}`); err != nil {
			t.Error(err)
			return
		}
		b = L.GetGlobal("logbroker").(*lua.LUserData).Value.(*lbroker)
	})
	if b == nil {
		t.FailNow()
	}
	slog.New(&luaLogHandler{b: b, level: slog.LevelDebug}).With("etid", 7).Warn("smq: something odd", "bytes", 65528)
	deadline := time.Now().Add(5 * time.Second)
	for {
		var got string
		e.loop.Do(func(L *lua.LState) {
			if v := L.GetGlobal("logs").(*lua.LTable).RawGetInt(1); v != lua.LNil {
				got = v.String()
			}
		})
		if got != "" {
			if want := "nil smq: something odd etid=7 bytes=65528"; got != want {
				t.Fatalf("log got %q, want %q", got, want)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("log callback not called")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestWriteMetrics: brokers created from Lua are counted (including names
// refused by maxhubtopics), and Hub gives Go code the broker.Hub behind a
// broker object.
func TestWriteMetrics(t *testing.T) {
	e := newEnv(t)
	var ok bool
	e.loop.Do(func(L *lua.LState) {
		if err := L.DoString(`mb = require"smq.hub".create{maxhubtopics = 3}; mb:create("a"); mb:create("b"); mb:createsub("s")
			assert(mb:create("c") == nil and mb:createsub("d") == nil, "maxhubtopics")`); err != nil {
			t.Error(err)
			return
		}
		var h interface{ ServerEtid() uint32 }
		h, ok = Hub(L.GetGlobal("mb"))
		ok = ok && h.ServerEtid() == 1
		_, notHub := Hub(lua.LString("x"))
		ok = ok && !notHub
	})
	if !ok {
		t.Fatal("Hub does not resolve a broker object")
	}
	var buf strings.Builder
	e.mod.WriteMetrics(&buf)
	for _, want := range []string{"tarpon_smq_brokers 1\n", "tarpon_smq_topics 2\n", "tarpon_smq_subtopics 1\n", "tarpon_smq_peers 0\n",
		"# TYPE tarpon_smq_publishes_total counter\n", "# TYPE tarpon_smq_topics_refused_total counter\n", "tarpon_smq_topics_refused_total 2\n"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, buf.String())
		}
	}
}
