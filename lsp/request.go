package lsp

import (
	"bytes"
	"context"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"

	lua "github.com/yuin/gopher-lua"

	"github.com/tarponrt/tarpon/scheduler"
)

// requestType is the userdata type name of the request/response object.
const requestType = "lsp.request"

// Request is one HTTP request as seen by Lua: BAS's request and response are
// the same object (cosocket-api.md §4.3). The Go side is created by the HTTP
// goroutine; the Lua-facing fields are used on the scheduler goroutine while
// a task runs for it, and by the HTTP goroutine only when no task runs (the
// hand-offs in Server.runHandler order the two).
type Request struct {
	s    *Server
	w    http.ResponseWriter
	r    *http.Request
	body []byte
	form url.Values // query and form parameters, query first

	ev chan event // scheduler → HTTP goroutine: flush requests and task ends

	mu       sync.Mutex
	state    int           // stActive, stDetached, stHijacked; guarded by mu
	hijacked chan struct{} // closed by MarkHijacked: the HTTP goroutine returns

	// Scheduler goroutine while a task runs.
	ud        *lua.LUserData
	env       *lua.LTable
	gen       *generation
	page      string // app-relative path of the page being run (for include)
	active    bool   // a task runs for the request and may use it
	runDone   bool   // the current run has reported its end
	declined  bool   // the directory function returned false
	aborted   bool
	status    int
	header    http.Header
	buf       bytes.Buffer
	committed bool // senderror, sendredirect, json or forward ended the body
	bytes     int64
	included  int
	forwarded bool
	sessionID string
	rdrOff    int

	headerSent bool // HTTP goroutine (set during flush while the task is parked)
}

type event struct {
	task *scheduler.Task // flush: resume this task when written; nil: the run ended
	err  error
}

const (
	stActive   = iota // the HTTP goroutine waits for Lua
	stDetached        // the HTTP goroutine returned (client gone)
	stHijacked        // another package took the connection
)

// newRequest reads the body (up to Options.MaxBody) and the parameters.
// It answers the request itself and returns false on failure. HTTP goroutine.
func (s *Server) newRequest(w http.ResponseWriter, r *http.Request) (*Request, bool) {
	q := &Request{s: s, w: w, r: r, ev: make(chan event, 4), header: http.Header{}, hijacked: make(chan struct{})}
	// Read a body only when one is announced and this is not an upgrade:
	// a raw-socket hand-off must find its bytes unread.
	if r.Body != nil && r.Header.Get("Upgrade") == "" && r.Header.Get("SimpleMQ") == "" &&
		(r.ContentLength > 0 || len(r.TransferEncoding) > 0) {
		b, err := io.ReadAll(io.LimitReader(r.Body, s.opts.MaxBody+1))
		if err != nil {
			http.Error(w, "Bad Request", http.StatusBadRequest)
			return nil, false
		}
		if int64(len(b)) > s.opts.MaxBody {
			http.Error(w, "Request Entity Too Large", http.StatusRequestEntityTooLarge)
			return nil, false
		}
		q.body = b
		r.Body = io.NopCloser(bytes.NewReader(b))
	}
	q.form = url.Values{}
	for k, v := range r.URL.Query() {
		q.form[k] = append(q.form[k], v...)
	}
	ct, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case ct == "application/x-www-form-urlencoded" && q.body != nil:
		if vals, err := url.ParseQuery(string(q.body)); err == nil {
			for k, v := range vals {
				q.form[k] = append(q.form[k], v...)
			}
		}
	case ct == "multipart/form-data" && q.body != nil && params["boundary"] != "":
		if err := r.ParseMultipartForm(s.opts.MaxBody); err == nil && r.MultipartForm != nil {
			for k, v := range r.MultipartForm.Value {
				q.form[k] = append(q.form[k], v...)
			}
		}
		r.Body = io.NopCloser(bytes.NewReader(q.body))
	}
	return q, true
}

// RequestFrom returns the Request behind a Lua request/response value (the
// `request` global of a page or directory function). Scheduler goroutine.
func RequestFrom(L *lua.LState, v lua.LValue) (*Request, bool) {
	ud, ok := v.(*lua.LUserData)
	if !ok {
		return nil, false
	}
	q, ok := ud.Value.(*Request)
	return q, ok
}

// HTTP returns the request's ResponseWriter and *http.Request, for a package
// that takes the connection over (ba.socket.req2sock). While the request's
// task runs, the HTTP goroutine is blocked in ServeHTTP and does not touch
// them. Scheduler goroutine, from the request's own task.
func (q *Request) HTTP() (http.ResponseWriter, *http.Request) { return q.w, q.r }

// MarkHijacked tells the HTTP side that the connection has been taken over
// (call it after the hijack): no response is written, and the HTTP goroutine
// returns at once although the task goes on, so an upgraded connection
// holds no goroutine. It returns false if the HTTP goroutine had already
// returned because the client went away. Safe for concurrent use;
// idempotent.
func (q *Request) MarkHijacked() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	switch q.state {
	case stDetached:
		return false
	case stActive:
		q.state = stHijacked
		close(q.hijacked)
		// The connection is no longer HTTP's, but Lua may keep the request
		// object for the socket's whole life (a cosocket closure's
		// environment holds it). Keep what Lua can still read and let
		// net/http's buffers (8 KiB per connection) and context go. The
		// HTTP goroutine no longer touches w or r: its last use happened
		// before the Post that ran this task.
		q.w = hijackedWriter{}
		q.r = detachedRequest(q.r)
	}
	return true
}

// hijackedWriter stands in for the ResponseWriter of a hijacked request.
type hijackedWriter struct{}

func (hijackedWriter) Header() http.Header        { return http.Header{} }
func (hijackedWriter) Write([]byte) (int, error)  { return 0, http.ErrHijacked }
func (hijackedWriter) WriteHeader(statusCode int) {}

// detachedRequest copies what request methods read (method, URL, headers,
// host, addresses, TLS state) without the body and the connection's context.
func detachedRequest(r *http.Request) *http.Request {
	d := &http.Request{
		Method: r.Method, URL: r.URL, Proto: r.Proto, ProtoMajor: r.ProtoMajor, ProtoMinor: r.ProtoMinor,
		Header: r.Header, Host: r.Host, RemoteAddr: r.RemoteAddr, RequestURI: r.RequestURI, TLS: r.TLS,
		Body: http.NoBody,
	}
	ctx := context.Background()
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		ctx = context.WithValue(ctx, http.LocalAddrContextKey, a)
	}
	return d.WithContext(ctx)
}

// Hijacked is MarkHijacked without the result: it makes *Request satisfy
// cosocket.Exchange (HTTP + Hijacked) directly.
func (q *Request) Hijacked() { q.MarkHijacked() }

// IsHijacked reports whether MarkHijacked was called. Safe for concurrent use.
func (q *Request) IsHijacked() bool { return q.isHijacked() }

func (q *Request) isHijacked() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.state == stHijacked
}

// Valid reports whether Lua may still use the request (a task runs for it).
// Scheduler goroutine.
func (q *Request) Valid() bool { return q.active }

// detach marks the HTTP goroutine gone and releases a task parked in flush.
// It returns false when the connection was hijacked (keep waiting).
// HTTP goroutine.
func (q *Request) detach() bool {
	q.mu.Lock()
	if q.state == stHijacked {
		q.mu.Unlock()
		return false
	}
	q.state = stDetached
	q.mu.Unlock()
	for {
		select {
		case ev := <-q.ev:
			if t := ev.task; t != nil {
				q.s.loop.Post(func(*lua.LState) { q.s.loop.Resume(t) })
			}
		default:
			return true
		}
	}
}

func (q *Request) finished() bool { return !q.active }

// done reports the end of the current run to the HTTP goroutine, once.
// Scheduler goroutine; never blocks.
func (q *Request) done(err error) {
	if q.runDone {
		return
	}
	q.runDone = true
	q.active = false
	select {
	case q.ev <- event{err: err}:
	default:
	}
	if q.ud != nil && q.isHijacked() {
		// The page is over and its connection belongs to a socket now. A
		// cosocket's closure keeps the request environment, and with it the
		// request object, for the socket's whole life: let the Request go
		// (as in BAS, the request is not valid after its page).
		q.ud.Value = releasedRequest{}
		q.ud = nil
	}
}

// releasedRequest replaces a hijacked request's Go value once its page has
// ended; request methods then raise "request is no longer valid".
type releasedRequest struct{}

// userdata returns the request's Lua value, creating it once. Scheduler goroutine.
func (q *Request) userdata(L *lua.LState) *lua.LUserData {
	if q.ud == nil {
		q.ud = L.NewUserData()
		q.ud.Value = q
		q.ud.Metatable = q.s.vm.reqMeta
	}
	return q.ud
}

// newEnv builds the request (command) environment: a fresh table holding
// request, response, print and _emit whose __index is the app environment
// (or the globals when g is nil). Scheduler goroutine.
func (q *Request) newEnv(L *lua.LState, g *generation) *lua.LTable {
	q.runDone = false
	ud := q.userdata(L)
	env := L.CreateTable(0, 4)
	env.RawSetString("request", ud)
	env.RawSetString("response", ud)
	env.RawSetString("print", L.NewClosure(reqPrint, ud))
	env.RawSetString("_emit", L.NewClosure(reqEmit, ud))
	if g != nil {
		env.Metatable = g.reqMeta
	} else {
		env.Metatable = q.s.vm.globalMeta
	}
	q.env = env
	q.gen = g
	return env
}

func upvalueRequest(L *lua.LState) *Request {
	ud, _ := L.Get(lua.UpvalueIndex(1)).(*lua.LUserData)
	if ud == nil {
		return nil
	}
	q, _ := ud.Value.(*Request)
	return q
}

// reqPrint is the page's print: tab-separated tostring of the arguments and
// a newline, to the response.
func reqPrint(L *lua.LState) int {
	q := upvalueRequest(L)
	if q == nil || !q.active {
		return 0
	}
	n := L.GetTop()
	var b strings.Builder
	for i := 1; i <= n; i++ {
		if i > 1 {
			b.WriteByte('\t')
		}
		b.WriteString(luaToString(L, L.Get(i)))
	}
	b.WriteByte('\n')
	q.writeL(L, b.String())
	return 0
}

// reqEmit is _emit(s): the compiled page's output call.
func reqEmit(L *lua.LState) int {
	q := upvalueRequest(L)
	if q == nil || !q.active {
		return 0
	}
	q.writeL(L, luaToString(L, L.Get(1)))
	return 0
}

// luaToString is tostring() including __tostring metamethods.
func luaToString(L *lua.LState, v lua.LValue) string {
	switch v := v.(type) {
	case lua.LString:
		return string(v)
	case lua.LNumber:
		return v.String()
	}
	if fn := L.GetMetaField(v, "__tostring"); fn != lua.LNil {
		L.Push(fn)
		L.Push(v)
		L.Call(1, 1)
		s := L.Get(-1)
		L.Pop(1)
		return lua.LVAsString(s)
	}
	return v.String()
}

// checkRequest returns the Request at argument 1. With live set it raises
// an error when the request is no longer valid.
func checkRequest(L *lua.LState, live bool) *Request {
	ud := L.CheckUserData(1)
	q, ok := ud.Value.(*Request)
	if !ok {
		if _, released := ud.Value.(releasedRequest); released {
			L.RaiseError("request is no longer valid: its connection was taken over and its page has ended")
		}
		L.ArgError(1, "request expected")
		return nil
	}
	if live && !q.active {
		L.RaiseError("request is no longer valid")
	}
	return q
}

// requestMethods are the Go methods of the request/response object
// (cosocket-api.md §4.3). include and forward are added from Lua (lua.go)
// so that included pages may yield.
var requestMethods = map[string]lua.LGFunction{
	// request side
	"header":    reqHeader,
	"data":      reqData,
	"datapairs": reqDatapairs,
	"method":    func(L *lua.LState) int { L.Push(lua.LString(checkRequest(L, false).r.Method)); return 1 },
	"uri":       func(L *lua.LState) int { L.Push(lua.LString(checkRequest(L, false).r.URL.Path)); return 1 },
	"url":       reqURL,
	"version":   reqVersion,
	"cookie":    reqCookie,
	"session":   reqSession,
	"issecure":  func(L *lua.LState) int { L.Push(lua.LBool(checkRequest(L, false).r.TLS != nil)); return 1 },
	"peername":  func(L *lua.LState) int { return pushAddr(L, checkRequest(L, false).r.RemoteAddr) },
	"sockname":  reqSockname,
	"rawrdr":    reqRawrdr,
	"body":      func(L *lua.LState) int { L.Push(lua.LString(checkRequest(L, false).body)); return 1 },
	"domain":    reqDomain,
	"user":      func(L *lua.LState) int { L.Push(lua.LNil); return 1 },
	"abort":     reqAbort,
	"isinclude": func(L *lua.LState) int { L.Push(lua.LBool(checkRequest(L, false).included > 0)); return 1 },
	"isforward": func(L *lua.LState) int { L.Push(lua.LBool(checkRequest(L, false).forwarded)); return 1 },
	"initial": func(L *lua.LState) int {
		q := checkRequest(L, false)
		L.Push(lua.LBool(q.included == 0 && !q.forwarded))
		return 1
	},
	"valid":      func(L *lua.LState) int { L.Push(lua.LBool(checkRequest(L, false).active)); return 1 },
	"encodeurl":  func(L *lua.LState) int { L.Push(lua.LString(L.CheckString(2))); return 1 },
	"setnodelay": func(L *lua.LState) int { L.Push(lua.LTrue); return 1 },

	// response side
	"write":            respWrite,
	"send":             respWrite,
	"setstatus":        respSetstatus,
	"getstatus":        func(L *lua.LState) int { L.Push(lua.LNumber(checkRequest(L, false).statusCode())); return 1 },
	"setheader":        respSetheader,
	"containsheader":   respContainsheader,
	"setcontenttype":   respSetcontenttype,
	"setcontentlength": respSetcontentlength,
	"setdateheader":    respSetdateheader,
	"setmaxage":        respSetmaxage,
	"senderror":        respSenderror,
	"sendredirect":     respSendredirect,
	"redirect":         respSendredirect,
	"json":             respJSON,
	"flush":            respFlush,
	"reset":            respReset,
	"committed": func(L *lua.LState) int {
		q := checkRequest(L, false)
		L.Push(lua.LBool(q.committed || q.headerSent))
		return 1
	},
	"bytecount":    func(L *lua.LState) int { L.Push(lua.LNumber(checkRequest(L, false).bytes)); return 1 },
	"createcookie": respCreatecookie,
}

func reqHeader(L *lua.LState) int {
	q := checkRequest(L, false)
	if L.GetTop() >= 2 {
		name := L.CheckString(2)
		if name == "Host" || strings.EqualFold(name, "host") {
			L.Push(lua.LString(q.r.Host))
			return 1
		}
		v := q.r.Header.Values(name)
		if len(v) == 0 {
			L.Push(lua.LNil)
			return 1
		}
		L.Push(lua.LString(strings.Join(v, ", ")))
		return 1
	}
	t := L.CreateTable(0, len(q.r.Header)+1)
	for k, v := range q.r.Header {
		t.RawSetString(k, lua.LString(strings.Join(v, ", ")))
	}
	if q.r.Host != "" {
		t.RawSetString("Host", lua.LString(q.r.Host))
	}
	L.Push(t)
	return 1
}

// reqData: data() → table of all parameters (first value each);
// data(name, ...) → one value per name.
func reqData(L *lua.LState) int {
	q := checkRequest(L, false)
	n := L.GetTop()
	if n < 2 {
		t := L.CreateTable(0, len(q.form))
		for k, v := range q.form {
			if len(v) > 0 {
				t.RawSetString(k, lua.LString(v[0]))
			}
		}
		L.Push(t)
		return 1
	}
	for i := 2; i <= n; i++ {
		v := q.form[L.CheckString(i)]
		if len(v) == 0 {
			L.Push(lua.LNil)
		} else {
			L.Push(lua.LString(v[0]))
		}
	}
	return n - 1
}

// reqDatapairs returns an iterator over every name, value pair (repeated
// names give several pairs), names sorted.
func reqDatapairs(L *lua.LState) int {
	q := checkRequest(L, false)
	names := make([]string, 0, len(q.form))
	for k := range q.form {
		names = append(names, k)
	}
	sort.Strings(names)
	type kv struct{ k, v string }
	var all []kv
	for _, k := range names {
		for _, v := range q.form[k] {
			all = append(all, kv{k, v})
		}
	}
	i := 0
	L.Push(L.NewFunction(func(L *lua.LState) int {
		if i >= len(all) {
			L.Push(lua.LNil)
			return 1
		}
		p := all[i]
		i++
		L.Push(lua.LString(p.k))
		L.Push(lua.LString(p.v))
		return 2
	}))
	return 1
}

// reqURL returns the full URL without the query; url(true) forces https.
func reqURL(L *lua.LState) int {
	q := checkRequest(L, false)
	scheme := "http"
	if q.r.TLS != nil || L.OptBool(2, false) {
		scheme = "https"
	}
	L.Push(lua.LString(scheme + "://" + q.r.Host + q.r.URL.EscapedPath()))
	return 1
}

func reqVersion(L *lua.LState) int {
	q := checkRequest(L, false)
	L.Push(lua.LString(strconv.Itoa(q.r.ProtoMajor) + "." + strconv.Itoa(q.r.ProtoMinor)))
	return 1
}

func reqDomain(L *lua.LState) int {
	q := checkRequest(L, false)
	host := q.r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	L.Push(lua.LString(host))
	return 1
}

// pushAddr pushes "ip", port for an address string, or nil.
func pushAddr(L *lua.LState, addr string) int {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		L.Push(lua.LNil)
		return 1
	}
	p, _ := strconv.Atoi(port)
	L.Push(lua.LString(host))
	L.Push(lua.LNumber(p))
	return 2
}

func reqSockname(L *lua.LState) int {
	q := checkRequest(L, false)
	if a, ok := q.r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		return pushAddr(L, a.String())
	}
	L.Push(lua.LNil)
	return 1
}

// reqRawrdr returns a reader over the raw body: rdr:read([n]) and rdr() give
// the next chunk (at most n bytes, default 4096) or nil at the end, so
// `for chunk in request:rawrdr() do ... end` works.
func reqRawrdr(L *lua.LState) int {
	q := checkRequest(L, false)
	off := 0
	next := func(L *lua.LState, n int) int {
		if off >= len(q.body) {
			L.Push(lua.LNil)
			return 1
		}
		if n <= 0 {
			n = 4096
		}
		end := min(off+n, len(q.body))
		L.Push(lua.LString(q.body[off:end]))
		off = end
		return 1
	}
	rdr := L.NewTable()
	rdr.RawSetString("read", L.NewFunction(func(L *lua.LState) int { return next(L, L.OptInt(2, 0)) }))
	meta := L.NewTable()
	meta.RawSetString("__call", L.NewFunction(func(L *lua.LState) int { return next(L, 0) }))
	rdr.Metatable = meta
	L.Push(rdr)
	return 1
}

// abortSignal is the error value response:abort() raises to unwind the page.
const abortSignal = "lsp: request aborted"

func reqAbort(L *lua.LState) int {
	q := checkRequest(L, true)
	q.aborted = true
	L.RaiseError(abortSignal)
	return 0
}

func respWrite(L *lua.LState) int {
	q := checkRequest(L, true)
	n := L.GetTop()
	for i := 2; i <= n; i++ {
		q.writeL(L, luaToString(L, L.Get(i)))
	}
	return 0
}

func respSetstatus(L *lua.LState) int {
	q := checkRequest(L, true)
	code := L.CheckInt(2)
	if code < 100 || code > 999 {
		L.ArgError(2, "status code out of range")
	}
	q.status = code
	return 0
}

func respSetheader(L *lua.LState) int {
	q := checkRequest(L, true)
	name := L.CheckString(2)
	if L.Get(3) == lua.LNil {
		q.header.Del(name)
		return 0
	}
	val := L.CheckString(3)
	if strings.ContainsAny(name+val, "\r\n") {
		L.ArgError(2, "header contains a line break")
	}
	q.header.Set(name, val)
	return 0
}

func respContainsheader(L *lua.LState) int {
	q := checkRequest(L, false)
	L.Push(lua.LBool(q.header.Get(L.CheckString(2)) != ""))
	return 1
}

func respSetcontenttype(L *lua.LState) int {
	q := checkRequest(L, true)
	q.header.Set("Content-Type", L.CheckString(2))
	return 0
}

func respSetcontentlength(L *lua.LState) int {
	q := checkRequest(L, true)
	q.header.Set("Content-Length", strconv.Itoa(L.CheckInt(2)))
	return 0
}

func respSetdateheader(L *lua.LState) int {
	q := checkRequest(L, true)
	name := L.CheckString(2)
	q.header.Set(name, httpTime(int64(L.CheckNumber(3))))
	return 0
}

func respSetmaxage(L *lua.LState) int {
	q := checkRequest(L, true)
	q.header.Set("Cache-Control", "max-age="+strconv.Itoa(L.CheckInt(2)))
	return 0
}

func respSenderror(L *lua.LState) int {
	q := checkRequest(L, true)
	code := L.CheckInt(2)
	if code < 100 || code > 999 {
		L.ArgError(2, "status code out of range")
	}
	q.sendError(code, L.OptString(3, ""))
	L.Push(lua.LTrue)
	return 1
}

func respSendredirect(L *lua.LState) int {
	q := checkRequest(L, true)
	q.redirect(http.StatusFound, L.CheckString(2))
	L.Push(lua.LTrue)
	return 1
}

func respJSON(L *lua.LState) int {
	q := checkRequest(L, true)
	b, err := scheduler.EncodeJSON(L.Get(2))
	if err != nil {
		L.RaiseError("response:json: %v", err)
	}
	q.buf.Reset()
	q.header.Set("Content-Type", "application/json")
	q.writeL(L, string(b))
	q.committed = true
	return 0
}

// respFlush sends what is buffered to the client now: the task parks while
// the HTTP goroutine writes and flushes, then continues.
func respFlush(L *lua.LState) int {
	q := checkRequest(L, true)
	t := scheduler.Current(L)
	if t == nil {
		return 0
	}
	q.mu.Lock()
	if q.state != stActive {
		q.mu.Unlock()
		return 0
	}
	select {
	case q.ev <- event{task: t}:
	default:
		q.mu.Unlock()
		return 0
	}
	q.mu.Unlock()
	return t.Park(L)
}

// respReset clears the body, and unless called as reset("buffer") also the
// status and headers. It fails once the response is committed.
func respReset(L *lua.LState) int {
	q := checkRequest(L, true)
	if q.headerSent {
		L.Push(lua.LFalse)
		return 1
	}
	q.buf.Reset()
	q.committed = false
	if L.OptString(2, "") != "buffer" {
		q.status = 0
		q.header = http.Header{}
	}
	L.Push(lua.LTrue)
	return 1
}
