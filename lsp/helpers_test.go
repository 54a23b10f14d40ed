package lsp

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/tarponrt/tarpon/scheduler"
)

// syncBuffer is a log sink safe for the scheduler and test goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// env is one test stack: a started Loop, a Server and an httptest server.
type env struct {
	t      testing.TB
	loop   *scheduler.Loop
	srv    *Server
	http   *httptest.Server
	client *http.Client
	log    *syncBuffer
}

// newEnv starts a loop and server; opts.Logger is replaced by a buffer.
func newEnv(t testing.TB, opts Options, cfg ...scheduler.Config) *env {
	t.Helper()
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var c scheduler.Config
	if len(cfg) > 0 {
		c = cfg[0]
	}
	c.Logger = logger
	loop, err := scheduler.New(c)
	if err != nil {
		t.Fatal(err)
	}
	loop.Start()
	opts.Logger = logger
	srv := NewServer(loop, opts)
	hs := httptest.NewServer(srv)
	jar, _ := cookiejar.New(nil)
	e := &env{t: t, loop: loop, srv: srv, http: hs, log: logs,
		client: &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}}}
	t.Cleanup(func() {
		hs.CloseClientConnections()
		hs.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("server close: %v", err)
		}
		if err := loop.Stop(ctx); err != nil {
			t.Errorf("loop stop: %v", err)
		}
	})
	return e
}

func (e *env) mount(prefix string, files map[string]string) *App {
	e.t.Helper()
	fsys := fstest.MapFS{}
	for name, body := range files {
		fsys[name] = &fstest.MapFile{Data: []byte(body)}
	}
	a, err := e.srv.Mount(prefix, fsys, strings.Trim(prefix, "/"))
	if err != nil {
		e.t.Fatalf("mount %s: %v", prefix, err)
	}
	return a
}

type result struct {
	status int
	header http.Header
	body   string
}

func (e *env) do(req *http.Request) result {
	e.t.Helper()
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("read body: %v", err)
	}
	return result{resp.StatusCode, resp.Header, string(b)}
}

func (e *env) get(path string) result {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.http.URL+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.do(req)
}

// vm runs fn on the scheduler goroutine and waits.
func (e *env) vm(fn func(L *lua.LState)) {
	e.t.Helper()
	if !e.loop.Do(fn) {
		e.t.Fatal("loop stopped")
	}
}

// waitFor polls cond until it holds or the timeout ends.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
