package smqjs

import (
	_ "embed"
	"net/http"
	"strconv"
)

// Source is the browser client, embedded at build time.
//
//go:embed smq.js
var Source []byte

// Handler returns an http.Handler that serves smq.js with Content-Type
// application/javascript for GET and HEAD and answers 405 to anything else.
// It is stateless and safe for concurrent use; the lead mounts it at
// /rtl/smq.js, where BAS/Mako pages expect it.
func Handler() http.Handler {
	return http.HandlerFunc(serve)
}

func serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/javascript; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(Source)))
	h.Set("Cache-Control", "no-cache")
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(Source)
}
