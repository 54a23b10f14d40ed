package lsp

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/tarponrt/tarpon/scheduler"
)

// Errors returned by the Server's Go API.
var (
	ErrClosed       = errors.New("lsp: server closed")
	ErrLoopStopped  = errors.New("lsp: scheduler loop is not running")
	ErrPrefixInUse  = errors.New("lsp: prefix already mounted")
	ErrBadPrefix    = errors.New("lsp: prefix must start with /")
	ErrNotMounted   = errors.New("lsp: app not mounted")
	errClientGone   = errors.New("lsp: client went away")
	errHijacked     = errors.New("lsp: connection hijacked")
	errAbortRequest = errors.New("lsp: request aborted")
)

// Options configures a Server. The zero value is ready to use.
type Options struct {
	// Logger receives Lua errors, trace() output and app lifecycle events.
	// Nil means slog.Default().
	Logger *slog.Logger
	// Dev shows Lua error messages in 500 pages. Off, the page says only
	// "Internal Server Error" and the message goes to the log.
	Dev bool
	// MaxBody caps a request body read for Lua (request:data, rawrdr).
	// Larger bodies get 413. Zero means 8 MiB.
	MaxBody int64
	// MaxResponse caps the buffered body of one response (what is written
	// between flushes); writing past it raises a Lua error. Zero means 64 MiB.
	MaxResponse int64
	// SessionTimeout is how long an unused session lives. Zero means 30 min.
	SessionTimeout time.Duration
	// SessionCookie names the session cookie. Empty means "tarponsid".
	SessionCookie string
	// Setup runs once on the scheduler goroutine before the first app
	// loads: the place to register globals for every app.
	Setup func(L *lua.LState)
	// AppSetup runs on the scheduler goroutine for every app environment
	// (each load and reload) before .preload runs.
	AppSetup func(L *lua.LState, appEnv *lua.LTable)
}

// Server serves mounted apps and Lua directories over net/http. It is an
// http.Handler: ServeHTTP is called by net/http on its goroutines, and Lua
// code runs as tasks on the scheduler Loop.
type Server struct {
	loop *scheduler.Loop
	opts Options
	log  *slog.Logger

	mu       sync.Mutex // guards apps, inserted, preloads and Dir.fn/parent/inserted
	apps     map[string]*App
	inserted map[*Dir]struct{}
	preloads map[string]lua.LGFunction
	routes   atomic.Pointer[[]route] // sorted snapshot, rebuilt under mu

	closing  atomic.Bool
	inflight sync.WaitGroup
	serving  atomic.Int64  // ServeHTTP calls in progress (tests)
	dirSeq   atomic.Uint64 // creation order of directories (route tie-break)

	vm vmState // scheduler goroutine only
}

// route is one mounted directory at its computed prefix ("/a/b/").
type route struct {
	prefix string
	dir    *Dir
}

// NewServer returns a Server whose Lua runs on loop. It does not touch the
// loop: the Lua side is set up on first use. Any goroutine.
func NewServer(loop *scheduler.Loop, opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = 8 << 20
	}
	if opts.MaxResponse <= 0 {
		opts.MaxResponse = 64 << 20
	}
	if opts.SessionTimeout <= 0 {
		opts.SessionTimeout = 30 * time.Minute
	}
	if opts.SessionCookie == "" {
		opts.SessionCookie = "tarponsid"
	}
	s := &Server{
		loop:     loop,
		opts:     opts,
		log:      opts.Logger,
		apps:     map[string]*App{},
		inserted: map[*Dir]struct{}{},
		preloads: map[string]lua.LGFunction{},
	}
	empty := []route{}
	s.routes.Store(&empty)
	return s
}

// Loop returns the scheduler loop the server runs Lua on. Any goroutine.
func (s *Server) Loop() *scheduler.Loop { return s.loop }

// Preload registers a Go module loader for require(name) in every app (for
// example require"smq.hub"). The loader is called once per VM, on the
// scheduler goroutine, with the module name as argument, and returns the
// module value. Register before mounting apps that need it. Any goroutine.
func (s *Server) Preload(name string, loader lua.LGFunction) {
	s.mu.Lock()
	s.preloads[name] = loader
	s.mu.Unlock()
}

func (s *Server) preload(name string) lua.LGFunction {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.preloads[name]
}

// rebuildRoutes recomputes the sorted route snapshot. Caller holds s.mu.
// Longer prefixes are searched first, then higher priority, then older.
func (s *Server) rebuildRoutes() {
	var rs []route
	for d := range s.inserted {
		if p, ok := d.prefixLocked(); ok {
			rs = append(rs, route{prefix: p, dir: d})
		}
	}
	sort.SliceStable(rs, func(i, j int) bool {
		if len(rs[i].prefix) != len(rs[j].prefix) {
			return len(rs[i].prefix) > len(rs[j].prefix)
		}
		if rs[i].dir.prio != rs[j].dir.prio {
			return rs[i].dir.prio > rs[j].dir.prio
		}
		return rs[i].dir.seq < rs[j].dir.seq
	})
	s.routes.Store(&rs)
}

// ServeHTTP routes the request through the mounted directories: a Lua
// directory function may handle or decline it; an app serves its files (.lsp
// executed, others static); nothing found is 404. net/http goroutines.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.closing.Load() {
		http.Error(w, "Service Unavailable", http.StatusServiceUnavailable)
		return
	}
	s.inflight.Add(1)
	s.serving.Add(1)
	defer func() {
		s.serving.Add(-1)
		s.inflight.Done()
	}()

	p := r.URL.Path
	if p == "" || p[0] != '/' {
		p = "/" + p
	}
	var q *Request
	for _, rt := range *s.routes.Load() {
		if !strings.HasPrefix(p, rt.prefix) {
			if p+"/" == rt.prefix {
				redirectSlash(w, r)
				return
			}
			continue
		}
		rel := p[len(rt.prefix):]
		d := rt.dir
		s.mu.Lock()
		fn := d.fn
		s.mu.Unlock()
		if fn != nil {
			if q == nil {
				var ok bool
				if q, ok = s.newRequest(w, r); !ok {
					return
				}
			}
			err := s.runHandler(q, func(L *lua.LState) (*lua.LFunction, []lua.LValue, error) {
				env := q.newEnv(L, d.appGen())
				fn := &lua.LFunction{Env: env, Proto: fn.Proto, GFunction: fn.GFunction, IsG: fn.IsG, Upvalues: fn.Upvalues}
				return fn, []lua.LValue{env, lua.LString(rel)}, nil
			})
			if s.finish(q, err, "directory "+rt.prefix) {
				return
			}
		}
		if d.service != nil {
			if d.service.serve(w, r, rel, &q) {
				return
			}
		}
	}
	http.NotFound(w, r)
}

// finish ends a request after a Lua handler ran and reports whether the
// request is done (false: the handler declined). HTTP goroutine.
func (s *Server) finish(q *Request, err error, what string) bool {
	switch {
	case errors.Is(err, errClientGone), errors.Is(err, errHijacked):
		return true
	case errors.Is(err, ErrLoopStopped):
		http.Error(q.w, "Service Unavailable", http.StatusServiceUnavailable)
		return true
	case errors.Is(err, ErrNotMounted): // unloaded between routing and running
		http.NotFound(q.w, q.r)
		return true
	}
	if q.isHijacked() {
		return true
	}
	if q.aborted {
		panic(http.ErrAbortHandler)
	}
	if err != nil {
		s.log.Error("lsp: Lua error", "what", what, "path", q.r.URL.Path, "err", err)
		if q.headerSent {
			// Part of the page went out with flush(): all we can do is stop.
			panic(http.ErrAbortHandler)
		}
		body := "Internal Server Error"
		if s.opts.Dev {
			body += "\n\n" + err.Error()
		}
		http.Error(q.w, body, http.StatusInternalServerError)
		return true
	}
	if q.declined {
		// The next handler starts with an empty body (headers stay).
		q.declined = false
		q.buf.Reset()
		return false
	}
	q.writeOut()
	return true
}

// runHandler runs a Lua function built by build as a scheduler task for q and
// waits, serving flush() requests, until it ends. HTTP goroutine.
func (s *Server) runHandler(q *Request, build func(L *lua.LState) (*lua.LFunction, []lua.LValue, error)) error {
	q.declined = false
	// Read before the Post: once the task runs it may hijack the request
	// and replace q.r (see MarkHijacked).
	ctxDone := q.r.Context().Done()
	ok := s.loop.Post(func(L *lua.LState) {
		s.vmInit(L)
		q.runDone = false
		fn, args, err := build(L)
		if err != nil {
			q.done(err)
			return
		}
		q.active = true
		all := make([]lua.LValue, 0, len(args)+3)
		all = append(all, s.vm.done, q.userdata(L), fn)
		all = append(all, args...)
		t, err := s.loop.Spawn(s.vm.runner, all...)
		if err != nil {
			q.done(err)
			return
		}
		t.OnExit(func(err error) { q.done(err) })
		if t.Done() {
			// Ended inside Spawn without reaching done (killed by the run
			// budget, say); OnExit is not called for a finished task.
			q.done(errors.New("lsp: handler ended without a result"))
		}
	})
	if !ok {
		return ErrLoopStopped
	}
	for {
		select {
		case ev := <-q.ev:
			if ev.task == nil {
				return ev.err
			}
			q.sendPartial()
			t := ev.task
			if !s.loop.Post(func(*lua.LState) { s.loop.Resume(t) }) {
				return ErrLoopStopped
			}
		case <-s.loop.Done():
			// The loop stopped; a posted spawn may never have run.
			select {
			case ev := <-q.ev:
				if ev.task == nil {
					return ev.err
				}
			default:
			}
			if q.detach() {
				return ErrLoopStopped
			}
			return errClientGone // hijacked: the connection is not ours
		case <-q.hijacked:
			return errHijacked
		case <-ctxDone:
			if q.detach() {
				return errClientGone
			}
			ctxDone = nil // hijacked: wait for the task to end
		}
	}
}

// redirectSlash answers a directory URL without its trailing slash.
func redirectSlash(w http.ResponseWriter, r *http.Request) {
	u := *r.URL
	u.Path += "/"
	http.Redirect(w, r, u.String(), http.StatusMovedPermanently)
}

// Mount loads the app in fsys at prefix ("/" or "/name/"): its .preload runs
// (as a scheduler task) before Mount returns. name is for logs and
// app:name(). Any goroutine but the scheduler's; the loop must be started.
func (s *Server) Mount(prefix string, fsys fs.FS, name string) (*App, error) {
	if s.closing.Load() {
		return nil, ErrClosed
	}
	if !strings.HasPrefix(prefix, "/") {
		return nil, fmt.Errorf("%w: %q", ErrBadPrefix, prefix)
	}
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	a := &App{s: s, prefix: prefix, name: name, fsys: fsys, pages: map[string]*pageEntry{}}
	s.mu.Lock()
	if _, dup := s.apps[prefix]; dup {
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: %s", ErrPrefixInUse, prefix)
	}
	s.apps[prefix] = a
	s.mu.Unlock()
	if err := a.load(); err != nil {
		a.unload()
		s.mu.Lock()
		delete(s.apps, prefix)
		s.mu.Unlock()
		return nil, err
	}
	return a, nil
}

// App returns the app mounted at prefix, or nil. Any goroutine.
func (s *Server) App(prefix string) *App {
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.apps[prefix]
}

// Unmount unloads the app at prefix (onunload runs, its timers and
// directories go) and stops serving it. Any goroutine but the scheduler's.
func (s *Server) Unmount(prefix string) error {
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	s.mu.Lock()
	a := s.apps[prefix]
	delete(s.apps, prefix)
	s.mu.Unlock()
	if a == nil {
		return fmt.Errorf("%w: %s", ErrNotMounted, prefix)
	}
	a.unload()
	return nil
}

// Reload reloads every mounted app (see App.Reload) and returns the first
// error. Any goroutine but the scheduler's.
func (s *Server) Reload() error {
	s.mu.Lock()
	apps := make([]*App, 0, len(s.apps))
	for _, a := range s.apps {
		apps = append(apps, a)
	}
	s.mu.Unlock()
	sort.Slice(apps, func(i, j int) bool { return apps[i].prefix < apps[j].prefix })
	var first error
	for _, a := range apps {
		if err := a.Reload(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Close stops accepting requests (503), waits for requests in flight until
// ctx ends, then unloads every app. It does not stop the loop. Any goroutine
// but the scheduler's.
func (s *Server) Close(ctx context.Context) error {
	s.closing.Store(true)
	waited := make(chan struct{})
	go func() { s.inflight.Wait(); close(waited) }()
	var err error
	select {
	case <-waited:
	case <-ctx.Done():
		err = ctx.Err()
	}
	s.mu.Lock()
	apps := make([]*App, 0, len(s.apps))
	for p, a := range s.apps {
		apps = append(apps, a)
		delete(s.apps, p)
	}
	s.mu.Unlock()
	for _, a := range apps {
		a.unload()
	}
	return err
}
