package lsp

import (
	"bytes"
	"fmt"
	"html"
	"net/http"
	"strconv"

	lua "github.com/yuin/gopher-lua"
)

// The response is buffered: Lua (scheduler goroutine) fills status, header
// and buf while its task runs; the HTTP goroutine writes them after the task
// ends, or at a flush() while the task is parked. The channel hand-offs in
// runHandler order the two, so these fields need no lock.

// writeOut writes the buffered response. HTTP goroutine, after the task.
func (q *Request) writeOut() {
	if !q.headerSent {
		h := q.w.Header()
		for k, v := range q.header {
			h[k] = v
		}
		if q.header.Get("Content-Type") == "" && q.buf.Len() > 0 {
			h.Set("Content-Type", "text/html; charset=utf-8")
		}
		if q.header.Get("Content-Length") == "" {
			h.Set("Content-Length", strconv.Itoa(q.buf.Len()))
		}
		q.w.WriteHeader(q.statusCode())
		q.headerSent = true
	}
	if q.r.Method != http.MethodHead {
		_, _ = q.w.Write(q.buf.Bytes())
	}
	q.buf.Reset()
}

// sendPartial writes what is buffered so far and flushes it to the client
// (response:flush()). HTTP goroutine, while the task is parked.
func (q *Request) sendPartial() {
	if !q.headerSent {
		h := q.w.Header()
		for k, v := range q.header {
			h[k] = v
		}
		if h.Get("Content-Type") == "" {
			h.Set("Content-Type", "text/html; charset=utf-8")
		}
		q.w.WriteHeader(q.statusCode())
		q.headerSent = true
	}
	if q.buf.Len() > 0 && q.r.Method != http.MethodHead {
		_, _ = q.w.Write(q.buf.Bytes())
	}
	q.buf.Reset()
	if f, ok := q.w.(http.Flusher); ok {
		f.Flush()
	}
}

func (q *Request) statusCode() int {
	if q.status == 0 {
		return http.StatusOK
	}
	return q.status
}

// writeL appends to the response body unless it is committed by senderror,
// sendredirect, json or forward, and raises a Lua error past
// Options.MaxResponse. Scheduler goroutine.
func (q *Request) writeL(L *lua.LState, s string) {
	if q.committed || q.finished() {
		return
	}
	if int64(q.buf.Len()+len(s)) > q.s.opts.MaxResponse {
		L.RaiseError("response larger than %d bytes (use response:flush)", q.s.opts.MaxResponse)
	}
	q.buf.WriteString(s)
	q.bytes += int64(len(s))
}

// sendError replaces the body with a small error page. Scheduler goroutine.
func (q *Request) sendError(code int, msg string) {
	q.buf.Reset()
	q.status = code
	if msg == "" {
		msg = http.StatusText(code)
	}
	q.header.Set("Content-Type", "text/html; charset=utf-8")
	var b bytes.Buffer
	fmt.Fprintf(&b, "<html><head><title>%d</title></head><body><h1>%d %s</h1></body></html>\n",
		code, code, html.EscapeString(msg))
	q.buf.Write(b.Bytes())
	q.committed = true
}

// redirect sets a redirect status and Location. Scheduler goroutine.
func (q *Request) redirect(code int, url string) {
	q.buf.Reset()
	q.status = code
	q.header.Set("Location", url)
	q.committed = true
}
