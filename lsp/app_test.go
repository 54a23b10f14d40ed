package lsp

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/tarponrt/tarpon/scheduler"
)

// recorder collects note(...) calls made from Lua.
type recorder struct {
	mu    sync.Mutex
	notes []string
	ticks map[string]int
}

func (r *recorder) setup(L *lua.LState) {
	L.SetGlobal("note", L.NewFunction(func(L *lua.LState) int {
		r.mu.Lock()
		r.notes = append(r.notes, L.CheckString(1))
		r.mu.Unlock()
		return 0
	}))
	L.SetGlobal("tick", L.NewFunction(func(L *lua.LState) int {
		r.mu.Lock()
		if r.ticks == nil {
			r.ticks = map[string]int{}
		}
		r.ticks[L.CheckString(1)]++
		r.mu.Unlock()
		return 0
	}))
}

func (r *recorder) has(note string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range r.notes {
		if n == note {
			return true
		}
	}
	return false
}

func (r *recorder) count(key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ticks[key]
}

func TestScopes(t *testing.T) {
	e := newEnv(t, Options{})
	e.mount("/s/", map[string]string{
		".preload": `app.counter = 0 greeting = "hi"`,
		"scope.lsp": `<?lsp
app.counter = app.counter + 1
page.n = (page.n or 0) + 1
reqvar = (reqvar or 0) + 1
?><?lsp= greeting ?> app=<?lsp= app.counter ?> page=<?lsp= page.n ?> req=<?lsp= reqvar ?>`,
		"other.lsp": `<?lsp= page.n ?>|<?lsp= tostring(reqvar) ?>|<?lsp= tostring(rawget(_G, "greeting")) ?>`,
	})
	for i, want := range []string{"hi app=1 page=1 req=1", "hi app=2 page=2 req=1", "hi app=3 page=3 req=1"} {
		if r := e.get("/s/scope.lsp"); r.body != want {
			t.Fatalf("request %d: %q, want %q", i, r.body, want)
		}
	}
	// Another page has its own page table; request globals do not leak;
	// the app's globals stay out of _G.
	if r := e.get("/s/other.lsp"); r.body != "nil|nil|nil" {
		t.Fatalf("other page: %q", r.body)
	}
}

func TestDirectoryFunctions(t *testing.T) {
	e := newEnv(t, Options{})
	e.mount("/app/", map[string]string{
		".preload": `
local api = ba.create.dir("api", 0)
api:setfunc(function(_ENV, rel)
  if rel == "decline" then return false end
  response:setcontenttype("text/plain")
  response:write("api:", rel, ":", request:method())
end)
api:insert()
app.api = api
-- a lower-priority fallback at the same prefix catches what api declines
local fb = ba.create.dir("api", -1)
fb:setfunc(function(_ENV, rel) print("fallback " .. rel) return true end)
fb:insert()
-- nested: /p/c/
local p = ba.create.dir("p")
p:insert()
local c = ba.create.dir("c")
p:insert(c, true)
c:setfunc(function(_ENV, rel) response:write("nested:", rel, ":", c:baseuri()) end)
-- the app's own directory: virtual pages in front of the files
dir:setfunc(function(_ENV, rel)
  if rel == "virtual" then response:write("virtual") return true end
  return false
end)
`,
		"file.txt":   "a file",
		"unlink.lsp": `<?lsp app.api:unlink() ?>gone`,
	})
	tests := []struct {
		name, path string
		status     int
		body       string
	}{
		{"handled", "/api/x/y", 200, "api:x/y:GET"},
		{"declined to lower priority", "/api/decline", 200, "fallback decline\n"},
		{"nested directory", "/p/c/z", 200, "nested:z:/p/c/"},
		{"app dir handles", "/app/virtual", 200, "virtual"},
		{"app dir declines to files", "/app/file.txt", 200, "a file"},
		{"nothing", "/nothing", 404, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.get(tc.path)
			if r.status != tc.status || (tc.body != "" && r.body != tc.body) {
				t.Fatalf("got %d %q, want %d %q", r.status, r.body, tc.status, tc.body)
			}
		})
	}
	t.Run("unlink", func(t *testing.T) {
		if r := e.get("/app/unlink.lsp"); r.body != "gone" {
			t.Fatalf("unlink page: %q", r.body)
		}
		if r := e.get("/api/x"); r.body != "fallback x\n" {
			t.Fatalf("after unlink: %d %q", r.status, r.body)
		}
	})
	t.Run("unmount removes app directories", func(t *testing.T) {
		if err := e.srv.Unmount("/app/"); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"/api/x", "/p/c/z", "/app/file.txt"} {
			if r := e.get(p); r.status != 404 {
				t.Fatalf("%s after unmount: %d %q", p, r.status, r.body)
			}
		}
	})
}

func TestStaticFiles(t *testing.T) {
	e := newEnv(t, Options{})
	mem := fstest.MapFS{
		"hello.txt":        {Data: []byte("hello, world")},
		"style.css":        {Data: []byte("body{}")},
		"sub/index.html":   {Data: []byte("<p>index</p>")},
		"sub/.secret":      {Data: []byte("secret")},
		".lua/mod.lua":     {Data: []byte("return 1")},
		".preload":         {Data: []byte("")},
		".hidden/page.lsp": {Data: []byte("x")},
		"page.lsp":         {Data: []byte("<?lsp= 1+1 ?>")},
	}
	if _, err := e.srv.Mount("/m/", mem, "m"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "disk.txt"), []byte("0123456789"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := e.srv.Mount("/d", os.DirFS(dir), "d"); err != nil {
		t.Fatal(err)
	}

	t.Run("content and type", func(t *testing.T) {
		r := e.get("/m/hello.txt")
		if r.status != 200 || r.body != "hello, world" || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
			t.Fatalf("got %d %v %q", r.status, r.header, r.body)
		}
		if ct := e.get("/m/style.css").header.Get("Content-Type"); !strings.HasPrefix(ct, "text/css") {
			t.Fatalf("css type %q", ct)
		}
	})
	t.Run("etag and 304 without mtime", func(t *testing.T) {
		r := e.get("/m/hello.txt")
		tag := r.header.Get("ETag")
		if tag == "" {
			t.Fatal("no ETag")
		}
		req, _ := http.NewRequest("GET", e.http.URL+"/m/hello.txt", nil)
		req.Header.Set("If-None-Match", tag)
		if r := e.do(req); r.status != http.StatusNotModified {
			t.Fatalf("status %d", r.status)
		}
	})
	t.Run("last-modified and range on disk", func(t *testing.T) {
		r := e.get("/d/disk.txt")
		if r.header.Get("Last-Modified") == "" || r.header.Get("ETag") == "" {
			t.Fatalf("headers %v", r.header)
		}
		req, _ := http.NewRequest("GET", e.http.URL+"/d/disk.txt", nil)
		req.Header.Set("Range", "bytes=2-4")
		if r := e.do(req); r.status != http.StatusPartialContent || r.body != "234" {
			t.Fatalf("range: %d %q", r.status, r.body)
		}
		req, _ = http.NewRequest("GET", e.http.URL+"/d/disk.txt", nil)
		req.Header.Set("If-Modified-Since", r.header.Get("Last-Modified"))
		if r := e.do(req); r.status != http.StatusNotModified {
			t.Fatalf("if-modified-since: %d", r.status)
		}
	})
	t.Run("index and directory redirect", func(t *testing.T) {
		if r := e.get("/m/sub/"); r.body != "<p>index</p>" {
			t.Fatalf("index: %d %q", r.status, r.body)
		}
		if r := e.get("/m/sub"); r.status != http.StatusMovedPermanently || r.header.Get("Location") != "/m/sub/" {
			t.Fatalf("redirect: %d %v", r.status, r.header)
		}
		if r := e.get("/m"); r.status != http.StatusMovedPermanently {
			t.Fatalf("prefix redirect: %d", r.status)
		}
	})
	t.Run("hidden names are 404", func(t *testing.T) {
		for _, p := range []string{"/m/.preload", "/m/.lua/mod.lua", "/m/sub/.secret", "/m/.hidden/page.lsp", "/m/sub/../.preload"} {
			if r := e.get(p); r.status != 404 {
				t.Errorf("%s: %d %q", p, r.status, r.body)
			}
		}
	})
	t.Run("lsp executed", func(t *testing.T) {
		if r := e.get("/m/page.lsp"); r.body != "2" {
			t.Fatalf("page: %q", r.body)
		}
	})
	t.Run("page recompiled when the file changes", func(t *testing.T) {
		p := filepath.Join(dir, "v.lsp")
		if err := os.WriteFile(p, []byte("one"), 0o644); err != nil {
			t.Fatal(err)
		}
		if r := e.get("/d/v.lsp"); r.body != "one" {
			t.Fatalf("v1: %q", r.body)
		}
		if err := os.WriteFile(p, []byte("two!"), 0o644); err != nil {
			t.Fatal(err)
		}
		if r := e.get("/d/v.lsp"); r.body != "two!" {
			t.Fatalf("v2: %q", r.body)
		}
	})
}

func TestPreloadRequireOnunload(t *testing.T) {
	rec := &recorder{}
	e := newEnv(t, Options{Setup: rec.setup})
	e.srv.Preload("gomod", func(L *lua.LState) int {
		m := L.NewTable()
		m.RawSetString("name", lua.LString("from go"))
		L.Push(m)
		return 1
	})
	e.mount("/p/", map[string]string{
		".preload": `
local util = require "util"
local deep = require "sub.deep"
app.greeting = util.greet("preload") .. "/" .. deep
app.gomod = require("gomod").name
app.same = require("util") == util
local f = io:open("data/cfg.txt")
app.cfg = f:read("*a")
f:close()
app.hasOs = os ~= nil
function onunload() note("unloaded " .. app.greeting) end
note("preloaded")
`,
		".lua/util.lua":     `local M = {} function M.greet(s) return "hello " .. s end return M`,
		".lua/sub/deep.lua": `return "deep"`,
		"data/cfg.txt":      "cfg-data",
		"show.lsp":          `<?lsp= app.greeting ?>|<?lsp= app.gomod ?>|<?lsp= tostring(app.same) ?>|<?lsp= app.cfg ?>|<?lsp= require("util").greet("page") ?>`,
		"io.lsp": `<?lsp local st = io:stat("data/cfg.txt") local n = 0
for name, isdir in io:files("data") do n = n + 1 end
local ok, err = io:open("../x") ?><?lsp= st.size ?>|<?lsp= n ?>|<?lsp= tostring(ok) ?>|<?lsp= tostring((io:open("nope"))) ?>`,
	})
	if !rec.has("preloaded") {
		t.Fatal(".preload did not run")
	}
	if r := e.get("/p/show.lsp"); r.body != "hello preload/deep|from go|true|cfg-data|hello page" {
		t.Fatalf("show: %q", r.body)
	}
	if r := e.get("/p/io.lsp"); r.body != "8|1|nil|nil" {
		t.Fatalf("io: %q", r.body)
	}
	if err := e.srv.Unmount("/p/"); err != nil {
		t.Fatal(err)
	}
	if !rec.has("unloaded hello preload/deep") {
		t.Fatalf("onunload did not run: %v", rec.notes)
	}
	if err := e.srv.Unmount("/p/"); err == nil {
		t.Fatal("second unmount succeeded")
	}
}

func TestPreloadError(t *testing.T) {
	e := newEnv(t, Options{})
	_, err := e.srv.Mount("/bad/", fstest.MapFS{".preload": {Data: []byte("\n\nerror('nope')")}}, "bad")
	if err == nil || !strings.Contains(err.Error(), "bad/.preload:3: nope") {
		t.Fatalf("err = %v", err)
	}
	if r := e.get("/bad/"); r.status != 404 {
		t.Fatalf("failed app is reachable: %d", r.status)
	}
	if _, err := e.srv.Mount("/bad/", fstest.MapFS{}, "bad"); err != nil {
		t.Fatalf("prefix not released: %v", err)
	}
}

func TestReloadEndsTimersAndThreads(t *testing.T) {
	rec := &recorder{}
	e := newEnv(t, Options{Setup: rec.setup})
	var gen atomic.Int32
	e.vm(func(L *lua.LState) {
		L.SetGlobal("nextgen", L.NewFunction(func(L *lua.LState) int {
			L.Push(lua.LString(string(rune('0' + gen.Add(1)))))
			return 1
		}))
	})
	a := e.mount("/r/", map[string]string{
		".preload": `
local g = nextgen()
app.gen = g
ba.timer(function() tick("timer" .. g) return true end):set(5)
ba.thread.run(function() while true do ba.sleep(5) tick("thread" .. g) end end)
local d = ba.create.dir("gen" .. g)
d:setfunc(function(_ENV) response:write(g) end)
d:insert()
function onunload() note("onunload" .. g) end
`,
		"gen.lsp": `<?lsp= app.gen ?>`,
	})
	waitFor(t, 5*time.Second, "first generation ticks", func() bool { return rec.count("timer1") >= 2 && rec.count("thread1") >= 2 })
	if r := e.get("/gen1/"); r.body != "1" {
		t.Fatalf("gen1 dir: %q", r.body)
	}
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	if !rec.has("onunload1") {
		t.Fatal("onunload not called on reload")
	}
	t1, h1 := rec.count("timer1"), rec.count("thread1")
	waitFor(t, 5*time.Second, "second generation ticks", func() bool { return rec.count("timer2") >= 5 && rec.count("thread2") >= 5 })
	if rec.count("timer1") != t1 || rec.count("thread1") != h1 {
		t.Fatalf("first generation still running: timer %d→%d thread %d→%d", t1, rec.count("timer1"), h1, rec.count("thread1"))
	}
	if r := e.get("/r/gen.lsp"); r.body != "2" {
		t.Fatalf("page sees generation %q", r.body)
	}
	if r := e.get("/gen1/"); r.status != 404 {
		t.Fatalf("old directory still mounted: %d", r.status)
	}
	if r := e.get("/gen2/"); r.body != "2" {
		t.Fatalf("new directory: %d %q", r.status, r.body)
	}
	// Server.Reload reloads every app.
	if err := e.srv.Reload(); err != nil {
		t.Fatal(err)
	}
	if r := e.get("/r/gen.lsp"); r.body != "3" {
		t.Fatalf("after Server.Reload: %q", r.body)
	}
}

func TestErrorPages(t *testing.T) {
	files := map[string]string{
		"boom.lsp":   "<html>\n<?lsp\nlocal x = nil\nx.field = 1 ?>\n</html>",
		"syntax.lsp": "ok\n<?lsp if then ?>",
		"raise.lsp":  "<?lsp error('custom failure') ?>",
	}
	for _, dev := range []bool{false, true} {
		name := "production"
		if dev {
			name = "dev"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, Options{Dev: dev})
			e.mount("/", files)
			r := e.get("/boom.lsp")
			if r.status != 500 {
				t.Fatalf("status %d", r.status)
			}
			if shown := strings.Contains(r.body, "boom.lsp:4:"); shown != dev {
				t.Fatalf("dev=%v but body %q", dev, r.body)
			}
			waitFor(t, time.Second, "error logged", func() bool { return strings.Contains(e.log.String(), "boom.lsp:4:") })
			if r := e.get("/syntax.lsp"); r.status != 500 {
				t.Fatalf("syntax error status %d", r.status)
			}
			if r := e.get("/raise.lsp"); r.status != 500 || strings.Contains(r.body, "custom failure") != dev {
				t.Fatalf("raise: %d %q", r.status, r.body)
			}
		})
	}
}

func TestSleepingPageDoesNotBlockOthers(t *testing.T) {
	e := newEnv(t, Options{})
	e.mount("/", map[string]string{
		"slow.lsp": `<?lsp ba.sleep(200) ?>slow`,
		"fast.lsp": `fast`,
	})
	slowDone := make(chan result, 1)
	go func() {
		resp, err := e.client.Get(e.http.URL + "/slow.lsp")
		if err != nil {
			slowDone <- result{status: -1, body: err.Error()}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		slowDone <- result{status: resp.StatusCode, body: string(b)}
	}()
	waitFor(t, 5*time.Second, "slow page parked", func() bool { return e.loop.Stats().TasksParked >= 1 })
	start := time.Now()
	if r := e.get("/fast.lsp"); r.body != "fast" {
		t.Fatalf("fast: %q", r.body)
	}
	if d := time.Since(start); d > 150*time.Millisecond {
		t.Fatalf("fast page took %v while slow page slept", d)
	}
	select {
	case r := <-slowDone:
		t.Fatalf("slow page finished before the fast one was checked: %+v", r)
	default:
	}
	select {
	case r := <-slowDone:
		if r.status != 200 || r.body != "slow" {
			t.Fatalf("slow: %+v", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("slow page never finished")
	}
}

func TestClientGoneWhilePageSleeps(t *testing.T) {
	e := newEnv(t, Options{})
	e.mount("/", map[string]string{"wait.lsp": `<?lsp ba.sleep(100) ?>late`})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", e.http.URL+"/wait.lsp", nil)
	errc := make(chan error, 1)
	go func() {
		resp, err := e.client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	waitFor(t, 5*time.Second, "page parked", func() bool { return e.loop.Stats().TasksParked >= 1 })
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("cancelled request succeeded")
	}
	// The task still ends normally and the server keeps working.
	waitFor(t, 5*time.Second, "task ended", func() bool { return e.loop.Stats().TasksLive == 0 })
	if r := e.get("/wait.lsp"); r.body != "late" {
		t.Fatalf("after cancel: %q", r.body)
	}
}

func TestRunawayPageIsStopped(t *testing.T) {
	e := newEnv(t, Options{}, scheduler.Config{Budget: 50 * time.Millisecond})
	e.mount("/", map[string]string{
		"spin.lsp":  `<?lsp while true do end ?>`,
		"later.lsp": `<?lsp ba.sleep(1) while true do end ?>`,
		"ok.lsp":    `ok`,
	})
	for _, p := range []string{"/spin.lsp", "/later.lsp"} {
		if r := e.get(p); r.status != 500 {
			t.Fatalf("%s: %d %q", p, r.status, r.body)
		}
	}
	if r := e.get("/ok.lsp"); r.body != "ok" {
		t.Fatalf("server stuck: %q", r.body)
	}
}

func TestThreadCreateTrackedOnReload(t *testing.T) {
	rec := &recorder{}
	e := newEnv(t, Options{Setup: rec.setup})
	a := e.mount("/c/", map[string]string{
		".preload": `local th = ba.thread.create()
th:run(function() while true do ba.sleep(5) tick("serial") end end)`,
	})
	waitFor(t, 5*time.Second, "serial thread ticks", func() bool { return rec.count("serial") >= 2 })
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	// The reloaded preload starts one new job; the old one must be gone:
	// ticks then grow at one job's rate. Check the old job is not alive by
	// counting live tasks: one job (the new one) parked in ba.sleep.
	waitFor(t, 5*time.Second, "one live job", func() bool {
		var live int64
		e.vm(func(*lua.LState) {})
		live = e.loop.Stats().TasksLive
		return live == 1
	})
}

func TestLoopStopReleasesWaitingRequests(t *testing.T) {
	e := newEnv(t, Options{})
	e.mount("/", map[string]string{"wait.lsp": `<?lsp ba.sleep(60000) ?>x`})
	done := make(chan int, 1)
	go func() {
		resp, err := e.client.Get(e.http.URL + "/wait.lsp")
		if err != nil {
			done <- -1
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	waitFor(t, 5*time.Second, "page parked", func() bool { return e.loop.Stats().TasksParked >= 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.loop.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("request still waiting after the loop stopped")
	}
	if r := e.get("/wait.lsp"); r.status != http.StatusServiceUnavailable {
		t.Fatalf("after stop: %d", r.status)
	}
}

// TestInterleavedRequestsKeepTheirEnvironments runs many requests that park
// in the middle, so their tasks interleave on the one VM: every request must
// still see only its own globals, in pages and in directory functions.
func TestInterleavedRequestsKeepTheirEnvironments(t *testing.T) {
	e := newEnv(t, Options{})
	e.mount("/", map[string]string{
		".preload": `local d = ba.create.dir("dirfn")
d:setfunc(function(_ENV, rel)
  mine = rel
  ba.sleep(5)
  response:write(mine)
end)
d:insert()`,
		"page.lsp": `<?lsp mine = request:data("id") ba.sleep(5) ?><?lsp= mine ?>`,
	})
	const n = 40
	errs := make(chan error, 2*n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		for _, kind := range []string{"page", "dir"} {
			wg.Add(1)
			go func(i int, kind string) {
				defer wg.Done()
				id := kind + "-" + strings.Repeat("x", i%5) + string(rune('a'+i%26))
				u := e.http.URL + "/page.lsp?id=" + id
				if kind == "dir" {
					u = e.http.URL + "/dirfn/" + id
				}
				resp, err := e.client.Get(u)
				if err != nil {
					errs <- err
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(b) != id {
					errs <- &mismatch{id, string(b)}
				}
			}(i, kind)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

type mismatch struct{ want, got string }

func (m *mismatch) Error() string { return "want " + m.want + ", got " + m.got }

// TestParkInsidePageIterator: a page whose generic-for iterator parks (here
// with ba.sleep) works, because pages are compiled with the scheduler's
// rewrite of generic for loops.
func TestParkInsidePageIterator(t *testing.T) {
	e := newEnv(t, Options{})
	e.mount("/", map[string]string{
		"iter.lsp": `<?lsp
local function slowly(n)
  local i = 0
  return function() i = i + 1; if i > n then return nil end; ba.sleep(1); return i end
end
for i in slowly(3) do ?>[<?lsp= i ?>]<?lsp end ?>`,
	})
	if r := e.get("/iter.lsp"); r.status != 200 || r.body != "[1][2][3]" {
		t.Fatalf("got %d %q", r.status, r.body)
	}
}
