package broker

import (
	"errors"
	"net/http"
	"net/url"

	"github.com/tarponrt/tarpon/runtime"
)

// serveState is the transport side of a Hub.
type serveState struct {
	r *runtime.Reactor
}

// ErrNotSMQ is returned by Connect for a request that carries neither
// Sec-WebSocket-Key nor SimpleMQ (it has been answered with 404).
var ErrNotSMQ = errors.New("broker: not an SMQ request")

// rawResponse is the HTTP bootstrap for raw clients that ask for it with
// SendSmqHttpResponse: true (SMQ spec §1.2).
var rawResponse = []byte("HTTP/1.1 200 OK\r\nSmqBroker: true\r\nContent-Length: 0\r\n\r\n")

// New creates a hub whose peers live in reactor r. opts may be nil.
func New(r *runtime.Reactor, opts *Options) *Hub {
	h := newHub(opts, encoders{ws: runtime.AppendServerFrame, raw: runtime.AppendLen16})
	h.srv.r = r
	return h
}

// IsSMQ reports whether req is an SMQ connection request: it carries
// Sec-WebSocket-Key (WebSocket) or SimpleMQ (raw) (BAS isSMQ).
func IsSMQ(req *http.Request) bool {
	return req.Header.Get("Sec-WebSocket-Key") != "" || req.Header.Get("SimpleMQ") != ""
}

// ServeHTTP makes the Hub an http.Handler: Connect(w, req, nil).
func (h *Hub) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if err := h.Connect(w, req, nil); err != nil && !errors.Is(err, ErrNotSMQ) {
		h.log.Debug("smq: connect failed", "remote", req.RemoteAddr, "err", err)
	}
}

// Connect bootstraps an SMQ connection from an HTTP request (SMQ spec §1.2,
// §1.6): 404 unless it is an SMQ request; a WebSocket upgrade (101 with
// SmqBroker: true) or, for SimpleMQ, a raw Len16 stream, preceded by an HTTP
// 200 only when the request has SendSmqHttpResponse: true. The method and
// path are not checked. arg appears as ConnectInfo.Arg. It returns once the
// connection is in the reactor (the HTTP goroutine is then free); the
// request must not be answered otherwise afterwards. Called from an
// http.Handler goroutine.
func (h *Hub) Connect(w http.ResponseWriter, req *http.Request, arg any) error {
	ws := req.Header.Get("Sec-WebSocket-Key") != ""
	if !ws && req.Header.Get("SimpleMQ") == "" {
		http.NotFound(w, req)
		return ErrNotSMQ
	}
	var q url.Values
	if req.URL != nil {
		q = req.URL.Query()
	}
	p := &Peer{h: h, raw: !ws}
	p.ci.Store(&ConnectInfo{
		Arg: arg, URL: req.RequestURI, Header: req.Header.Clone(), Query: q, RemoteAddr: req.RemoteAddr,
	})
	opts := &runtime.ConnOptions{UserData: p, HighWater: h.opts.HighWater}
	var err error
	if ws {
		opts.Header = http.Header{"SmqBroker": {"true"}}
		opts.MaxMessage = h.opts.MaxMessage
		_, err = h.srv.r.Upgrade(w, req, handler{h}, opts)
	} else {
		opts.Framing = runtime.FramingLen16
		if req.Header.Get("SendSmqHttpResponse") == "true" {
			opts.Response = rawResponse
		}
		_, err = h.srv.r.Morph(w, req, handler{h}, opts)
	}
	return err
}

// handler adapts the runtime's callbacks to the hub. Every method runs on
// the connection's event loop.
type handler struct{ h *Hub }

func peerOf(c *runtime.Conn) *Peer {
	p, _ := c.UserData().(*Peer)
	return p
}

func (a handler) OnOpen(c *runtime.Conn) {
	if p := peerOf(c); p != nil {
		p.c = c
		a.h.open(p)
	}
}

func (a handler) OnMessage(c *runtime.Conn, msg []byte, _ bool) {
	if p := peerOf(c); p != nil {
		a.h.message(p, msg)
	}
}

func (a handler) OnDrain(*runtime.Conn) {}

func (a handler) OnClose(c *runtime.Conn, err error) {
	if p := peerOf(c); p != nil && p.c != nil {
		a.h.closed(p, err)
	}
}
