package lsp

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"
)

var requestApp = map[string]string{
	"info.lsp": `<?lsp
local a, b = request:data("a", "b")
local all = request:data()
local h = request:header()
local ip, port = request:peername()
local c = request:cookie("c")
?>method=<?lsp= request:method() ?>
uri=<?lsp= request:uri() ?>
url=<?lsp= request:url() ?>
hdr=<?lsp= request:header("x-test") ?>
hdrtab=<?lsp= h["X-Test"] ?>
a=<?lsp= a ?> b=<?lsp= b ?> n=<?lsp= all.n ?>
peer=<?lsp= ip ?> <?lsp= type(port) ?>
cookie=<?lsp= c and c:value() ?>
version=<?lsp= request:version() ?>
same=<?lsp= tostring(request == response) ?>
`,
	"pairs.lsp": `<?lsp for k, v in request:datapairs() do print(k, v) end ?>`,
	"status.lsp": `<?lsp response:setstatus(201) response:setheader("X-A", "1")
response:setcontenttype("text/plain") response:write("made", 1) ?>`,
	"err404.lsp":     `<?lsp response:write("lost") response:senderror(404, "nope") response:write("more") ?>`,
	"redir.lsp":      `<?lsp response:sendredirect("/elsewhere") ?>`,
	"json.lsp":       `<?lsp response:json({a = 1, b = {1, 2, "x"}, c = {k = true}}) ?>`,
	"include.lsp":    `<?lsp shared = "from-parent" ?>[<?lsp response:include("inc/part.lsp") response:include("inc/static.txt") ?>]`,
	"inc/part.lsp":   `part:<?lsp= shared ?>:<?lsp= tostring(request:isinclude()) ?>`,
	"inc/static.txt": "STATIC",
	"forward.lsp":    `dropped<?lsp response:forward("target.lsp") response:write("after") ?>`,
	"target.lsp":     `target:<?lsp= tostring(request:isforward()) ?>`,
	"session.lsp": `<?lsp local s = request:session(true)
s.n = (s.n or 0) + 1 ?><?lsp= s.n ?>`,
	"nosession.lsp": `<?lsp= tostring(request:session()) ?>`,
	"raw.lsp": `<?lsp local t = {}
for chunk in request:rawrdr() do t[#t+1] = chunk end
response:write(#t > 0 and table.concat(t) or "none", "|", request:body()) ?>`,
	"cookie.lsp":     `<?lsp local c = response:createcookie("k") c:setvalue("v") c:activate() ?>ok`,
	"flush.lsp":      `first<?lsp response:flush() while not app.release do ba.sleep(5) end ?>second`,
	"release.lsp":    `<?lsp app.release = true ?>released`,
	"abort.lsp":      `<?lsp response:write("x") response:abort() ?>`,
	"reset.lsp":      `junk<?lsp response:setheader("X-Gone", "1") response:reset() ?>clean`,
	"hijack.lsp":     `<?lsp hijack(request) ?>never`,
	"hijackwait.lsp": `<?lsp hijack(request) while not app.release2 do ba.sleep(5) end ?>never`,
	"release2.lsp":   `<?lsp app.release2 = true ?>ok`,
}

func TestRequestResponseMethods(t *testing.T) {
	e := newEnv(t, Options{Setup: func(L *lua.LState) {
		// hijack(request) does what ba.socket.req2sock does with the request.
		L.SetGlobal("hijack", L.NewFunction(func(L *lua.LState) int {
			q, ok := RequestFrom(L, L.Get(1))
			if !ok || !q.Valid() {
				L.RaiseError("not a live request")
			}
			w, _ := q.HTTP()
			conn, brw, err := w.(http.Hijacker).Hijack()
			if err != nil {
				L.RaiseError("hijack: %v", err)
			}
			_ = brw.Flush()
			if !q.MarkHijacked() || !q.IsHijacked() {
				L.RaiseError("MarkHijacked refused")
			}
			_, _ = io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhj")
			conn.Close()
			return 0
		}))
	}})
	e.mount("/", requestApp)
	base := e.http.URL

	t.Run("request getters", func(t *testing.T) {
		req, _ := http.NewRequest("POST", base+"/info.lsp?a=1&n=q", strings.NewReader("b=2&n=form"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Test", "hello")
		req.AddCookie(&http.Cookie{Name: "c", Value: "cv"})
		r := e.do(req)
		host := strings.TrimPrefix(base, "http://")
		for _, want := range []string{
			"method=POST\n", "uri=/info.lsp\n", "url=http://" + host + "/info.lsp\n",
			"hdr=hello\n", "hdrtab=hello\n", "a=1 b=2 n=q\n", "peer=127.0.0.1 number\n",
			"cookie=cv\n", "version=1.1\n", "same=true",
		} {
			if !strings.Contains(r.body, want) {
				t.Errorf("body lacks %q:\n%s", want, r.body)
			}
		}
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
			t.Errorf("content type %q", ct)
		}
	})
	t.Run("datapairs", func(t *testing.T) {
		r := e.get("/pairs.lsp?x=1&x=2&a=0")
		if r.body != "a\t0\nx\t1\nx\t2\n" {
			t.Fatalf("body %q", r.body)
		}
	})
	t.Run("setstatus setheader setcontenttype write", func(t *testing.T) {
		r := e.get("/status.lsp")
		if r.status != 201 || r.header.Get("X-A") != "1" || r.header.Get("Content-Type") != "text/plain" || r.body != "made1" {
			t.Fatalf("got %d %v %q", r.status, r.header, r.body)
		}
	})
	t.Run("senderror", func(t *testing.T) {
		r := e.get("/err404.lsp")
		if r.status != 404 || !strings.Contains(r.body, "nope") || strings.Contains(r.body, "lost") || strings.Contains(r.body, "more") {
			t.Fatalf("got %d %q", r.status, r.body)
		}
	})
	t.Run("sendredirect", func(t *testing.T) {
		r := e.get("/redir.lsp")
		if r.status != http.StatusFound || r.header.Get("Location") != "/elsewhere" {
			t.Fatalf("got %d %v", r.status, r.header)
		}
	})
	t.Run("json", func(t *testing.T) {
		r := e.get("/json.lsp")
		if r.header.Get("Content-Type") != "application/json" || r.body != `{"a":1,"b":[1,2,"x"],"c":{"k":true}}` {
			t.Fatalf("got %v %q", r.header, r.body)
		}
	})
	t.Run("include shares the request env", func(t *testing.T) {
		r := e.get("/include.lsp")
		if r.body != "[part:from-parent:trueSTATIC]" {
			t.Fatalf("body %q", r.body)
		}
	})
	t.Run("forward", func(t *testing.T) {
		r := e.get("/forward.lsp")
		if r.body != "target:true" {
			t.Fatalf("body %q", r.body)
		}
	})
	t.Run("session", func(t *testing.T) {
		if r := e.get("/nosession.lsp"); r.body != "nil" {
			t.Fatalf("fresh client has a session: %q", r.body)
		}
		for i := 1; i <= 3; i++ {
			if r := e.get("/session.lsp"); r.body != fmt.Sprint(i) {
				t.Fatalf("request %d: body %q", i, r.body)
			}
		}
		if r := e.get("/nosession.lsp"); r.body == "nil" {
			t.Fatal("session lost")
		}
	})
	t.Run("rawrdr and body", func(t *testing.T) {
		req, _ := http.NewRequest("PUT", base+"/raw.lsp", strings.NewReader("raw-bytes"))
		r := e.do(req)
		if r.body != "raw-bytes|raw-bytes" {
			t.Fatalf("body %q", r.body)
		}
	})
	t.Run("createcookie", func(t *testing.T) {
		r := e.get("/cookie.lsp")
		if !strings.Contains(r.header.Get("Set-Cookie"), "k=v") {
			t.Fatalf("set-cookie %q", r.header.Get("Set-Cookie"))
		}
	})
	t.Run("reset", func(t *testing.T) {
		r := e.get("/reset.lsp")
		if r.body != "clean" || r.header.Get("X-Gone") != "" {
			t.Fatalf("got %v %q", r.header, r.body)
		}
	})
	t.Run("flush streams while the page waits", func(t *testing.T) {
		resp, err := e.client.Get(base + "/flush.lsp")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		br := bufio.NewReader(resp.Body)
		first := make([]byte, len("first"))
		if _, err := io.ReadFull(br, first); err != nil || string(first) != "first" {
			t.Fatalf("first chunk %q, %v", first, err)
		}
		if r := e.get("/release.lsp"); r.body != "released" {
			t.Fatalf("release: %q", r.body)
		}
		rest, err := io.ReadAll(br)
		if err != nil || string(rest) != "second" {
			t.Fatalf("rest %q, %v", rest, err)
		}
	})
	t.Run("abort closes the connection", func(t *testing.T) {
		resp, err := e.client.Get(base + "/abort.lsp")
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		if err == nil {
			t.Fatal("aborted request got a complete response")
		}
	})
	t.Run("hijack via RequestFrom", func(t *testing.T) {
		r := e.get("/hijack.lsp")
		if r.status != 200 || r.body != "hj" {
			t.Fatalf("got %d %q", r.status, r.body)
		}
	})
	t.Run("HTTP goroutine returns after hijack while the task goes on", func(t *testing.T) {
		r := e.get("/hijackwait.lsp")
		if r.body != "hj" {
			t.Fatalf("got %d %q", r.status, r.body)
		}
		waitFor(t, 5*time.Second, "ServeHTTP returned", func() bool { return e.srv.serving.Load() == 0 })
		if n := e.loop.Stats().TasksLive; n != 1 {
			t.Fatalf("%d live tasks, want the hijacking page still running", n)
		}
		if r := e.get("/release2.lsp"); r.body != "ok" {
			t.Fatalf("release2: %q", r.body)
		}
		waitFor(t, 5*time.Second, "task ended", func() bool { return e.loop.Stats().TasksLive == 0 })
	})
	t.Run("body too large", func(t *testing.T) {
		e2 := newEnv(t, Options{MaxBody: 4})
		e2.mount("/", requestApp)
		req, _ := http.NewRequest("POST", e2.http.URL+"/raw.lsp", strings.NewReader("12345"))
		if r := e2.do(req); r.status != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d", r.status)
		}
	})
	t.Run("multipart form", func(t *testing.T) {
		body := "--XX\r\nContent-Disposition: form-data; name=\"b\"\r\n\r\nmp\r\n--XX--\r\n"
		req, _ := http.NewRequest("POST", base+"/info.lsp?"+url.Values{"a": {"q"}}.Encode(), strings.NewReader(body))
		req.Header.Set("Content-Type", "multipart/form-data; boundary=XX")
		if r := e.do(req); !strings.Contains(r.body, "a=q b=mp") {
			t.Fatalf("body %q", r.body)
		}
	})
}

func TestMiscLuaAPI(t *testing.T) {
	e := newEnv(t, Options{})
	e.mount("/", map[string]string{
		"trace.lsp":   `<?lsp trace("hello", 42) ?>`,
		"missing.lsp": `<?lsp local ok, err = response:include("nope.lsp") ?><?lsp= tostring(ok) ?>,<?lsp= err ?>`,
		"sess.lsp": `<?lsp local s = request:session(true)
local id = s:id()
s:maxinactiveinterval(60)
s:terminate()
local again = request:session()
?><?lsp= #id ?>,<?lsp= tostring(again) ?>`,
		"json.lsp": `<?lsp local v = ba.json.decode('{"a":[1,2,{"b":"c"}]}') ?><?lsp= v.a[3].b ?>,<?lsp= ba.json.encode(v) ?>,<?lsp= select(2, ba.json.decode("{")) and "err" ?>`,
		"stale.lsp": `<?lsp if page.old then
  local ok, err = pcall(function() page.old:write("x") end)
  response:write(tostring(ok), " ", tostring(page.old:valid()), " ", tostring(request:valid()))
else page.old = request end ?>`,
		"head.lsp": `body`,
	})
	if r := e.get("/trace.lsp"); r.status != 200 {
		t.Fatalf("trace: %d", r.status)
	}
	waitFor(t, time.Second, "trace in log", func() bool {
		l := e.log.String()
		return strings.Contains(l, "hello\t42") || strings.Contains(l, `"hello\t42"`)
	})
	if !strings.Contains(e.log.String(), "trace.lsp:1") {
		t.Errorf("trace has no position: %s", e.log.String())
	}
	if r := e.get("/missing.lsp"); r.body != "nil,notfound" {
		t.Fatalf("missing include: %q", r.body)
	}
	if r := e.get("/sess.lsp"); r.body != "32,nil" {
		t.Fatalf("session methods: %q", r.body)
	}
	if r := e.get("/json.lsp"); r.body != `c,{"a":[1,2,{"b":"c"}]},err` {
		t.Fatalf("json: %q", r.body)
	}
	e.get("/stale.lsp")
	if r := e.get("/stale.lsp"); r.body != "false false true" {
		t.Fatalf("stale request: %q", r.body)
	}
	req, _ := http.NewRequest(http.MethodHead, e.http.URL+"/head.lsp", nil)
	if r := e.do(req); r.status != 200 || r.body != "" || r.header.Get("Content-Length") != "4" {
		t.Fatalf("HEAD: %d %v %q", r.status, r.header, r.body)
	}
}

func TestMaxResponse(t *testing.T) {
	e := newEnv(t, Options{MaxResponse: 10})
	e.mount("/", map[string]string{
		"big.lsp":     `<?lsp response:write(string.rep("x", 11)) ?>`,
		"flushed.lsp": `<?lsp for i = 1, 3 do response:write(string.rep("x", 8)) response:flush() end ?>`,
	})
	if r := e.get("/big.lsp"); r.status != 500 {
		t.Fatalf("big: %d", r.status)
	}
	if r := e.get("/flushed.lsp"); r.status != 200 || len(r.body) != 24 {
		t.Fatalf("flushed: %d %d bytes", r.status, len(r.body))
	}
}

func TestSmallMethods(t *testing.T) {
	e := newEnv(t, Options{Dev: true})
	a := e.mount("/", map[string]string{
		"small.lsp": `<?lsp
response:setheader("X-Has", "y")
response:setmaxage(60)
response:setdateheader("X-Date", 0)
local ip, port = request:sockname()
local obj = setmetatable({}, {__tostring = function() return "OBJ" end})
print(request:domain(), ip, type(port), tostring(response:containsheader("X-Has")), tostring(response:containsheader("X-No")), obj)
response:write(obj, "\n")
local f = io:open("lines.txt")
local l1 = f:read("*l")
local two = f:read(2)
local rest = {}
for l in f:lines() do rest[#rest+1] = l end
f:close()
local all = (io:open("lines.txt")):read("a")
local lineWithNL = (io:open("lines.txt")):read("L")
print(l1, two, table.concat(rest, ","), #all, #lineWithNL)
local ok = pcall(function() return f:read() end)
print(tostring(ok), tostring((io:open("lines.txt", "w"))), tostring((io:open("/"))))
response:setcontentlength(response:bytecount())
?>`,
		"lines.txt": "first\nsecond\nthird\n",
	})
	if a.Prefix() != "/" || a.Name() != "" || a.FS() == nil || e.srv.App("/") != a || e.srv.Loop() != e.loop {
		t.Fatalf("accessors: %q %q", a.Prefix(), a.Name())
	}
	r := e.get("/small.lsp")
	if r.header.Get("Cache-Control") != "max-age=60" || r.header.Get("X-Date") != "Thu, 01 Jan 1970 00:00:00 GMT" {
		t.Fatalf("headers %v %q", r.header, r.body)
	}
	want := "127.0.0.1\t127.0.0.1\tnumber\ttrue\tfalse\tOBJ\nOBJ\nfirst\tse\tcond,third\t19\t6\nfalse\tnil\tnil\n"
	if r.body != want {
		t.Fatalf("body\n got %q\nwant %q", r.body, want)
	}
}
