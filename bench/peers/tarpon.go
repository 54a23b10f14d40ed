package peers

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tarponrt/tarpon/runtime"
)

func init() {
	Register("tarpon-echo", func(addr string) (Server, error) { return startTarpon(addr, false, false) })
	Register("tarpon-echo-tls", func(addr string) (Server, error) { return startTarpon(addr, false, true) })
	Register("tarpon-bcast", func(addr string) (Server, error) { return startTarpon(addr, true, false) })
}

// tarponServer is the project's runtime: net/http accepts and upgrades,
// then the reactor owns every connection with no goroutine per connection.
type tarponServer struct {
	r     *runtime.Reactor
	ln    net.Listener
	hs    *http.Server
	conns atomic.Int64
	msgs  atomic.Int64

	// Broadcast receivers, copy-on-write so OnMessage (on any loop) reads
	// them without a lock; mu serialises writers.
	mu   sync.Mutex
	subs atomic.Pointer[[]*runtime.Conn]
}

func (s *tarponServer) Addr() string    { return s.ln.Addr().String() }
func (s *tarponServer) Conns() int64    { return s.conns.Load() }
func (s *tarponServer) Messages() int64 { return s.msgs.Load() }

// Shutdown stops the HTTP front end, then the reactor (close 1001 to every
// connection, flush, stop the loops).
func (s *tarponServer) Shutdown(ctx context.Context) error {
	err := s.hs.Shutdown(ctx)
	return errors.Join(err, s.r.Shutdown(ctx))
}

// echoHandler echoes every message on the connection's event loop; text
// stays text. Raw connections get their bytes back as they came.
type echoHandler struct{ s *tarponServer }

func (h echoHandler) OnOpen(*runtime.Conn) { h.s.conns.Add(1) }
func (h echoHandler) OnMessage(c *runtime.Conn, msg []byte, text bool) {
	h.s.msgs.Add(1)
	if text {
		_ = c.SendText(msg)
	} else {
		_ = c.Send(msg) // copies msg
	}
}
func (h echoHandler) OnDrain(*runtime.Conn)        {}
func (h echoHandler) OnClose(*runtime.Conn, error) { h.s.conns.Add(-1) }

// bcastHandler encodes each inbound message once as a server frame and
// hands the same bytes to every receiver (one queued write each).
type bcastHandler struct {
	s        *tarponServer
	receiver bool
}

func (h bcastHandler) OnOpen(c *runtime.Conn) {
	h.s.conns.Add(1)
	if h.receiver {
		h.s.updateSubs(func(l []*runtime.Conn) []*runtime.Conn { return append(l, c) })
	}
}
func (h bcastHandler) OnMessage(_ *runtime.Conn, msg []byte, text bool) {
	h.s.msgs.Add(1)
	frame := runtime.AppendServerFrame(nil, text, msg) // shared, never modified
	for _, c := range *h.s.subs.Load() {
		_ = c.SendEncoded(frame)
	}
}
func (h bcastHandler) OnDrain(*runtime.Conn) {}
func (h bcastHandler) OnClose(c *runtime.Conn, _ error) {
	h.s.conns.Add(-1)
	if h.receiver {
		h.s.updateSubs(func(l []*runtime.Conn) []*runtime.Conn {
			for i, x := range l {
				if x == c {
					return append(l[:i], l[i+1:]...)
				}
			}
			return l
		})
	}
}

func (s *tarponServer) updateSubs(fn func([]*runtime.Conn) []*runtime.Conn) {
	s.mu.Lock()
	old := *s.subs.Load()
	nw := fn(append([]*runtime.Conn(nil), old...))
	s.subs.Store(&nw)
	s.mu.Unlock()
}

// rawResponse answers /raw before the connection becomes a byte stream.
var rawResponse = []byte("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n")

// startTarpon starts the echo (or, bcast, the broadcast) server; with
// withTLS it serves wss:// through runtime.NewTLSListener, so TLS
// connections live in the reactor too.
func startTarpon(addr string, bcast, withTLS bool) (Server, error) {
	r, err := runtime.New(runtime.Config{})
	if err != nil {
		return nil, err
	}
	s := &tarponServer{r: r}
	empty := []*runtime.Conn{}
	s.subs.Store(&empty)
	mux := http.NewServeMux()
	if bcast {
		mux.HandleFunc("/bcast", func(w http.ResponseWriter, req *http.Request) {
			// ?pub=1 marks a publisher-only connection that receives nothing.
			h := bcastHandler{s: s, receiver: req.URL.Query().Get("pub") == ""}
			_, _ = r.Upgrade(w, req, h, nil)
		})
	} else {
		mux.HandleFunc("/echo", func(w http.ResponseWriter, req *http.Request) {
			_, _ = r.Upgrade(w, req, echoHandler{s}, nil)
		})
		mux.HandleFunc("/raw", func(w http.ResponseWriter, req *http.Request) {
			_, _ = r.Morph(w, req, echoHandler{s}, &runtime.ConnOptions{Framing: runtime.FramingRaw, Response: rawResponse})
		})
	}
	ln, err := listen(addr)
	var cfg *tls.Config
	if err == nil && withTLS {
		if cfg, err = selfSignedTLS(); err == nil {
			ln = runtime.NewTLSListener(ln, cfg)
		} else {
			_ = ln.Close()
		}
	}
	if err != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = r.Shutdown(ctx)
		return nil, err
	}
	s.ln = ln
	s.hs = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.hs.Serve(ln) }()
	return s, nil
}
