package peers

import (
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/lesismal/nbio/nbhttp"
	"github.com/lesismal/nbio/nbhttp/websocket"
)

func init() {
	Register("nbio-echo", func(addr string) (Server, error) { return startNbio(addr, false) })
	Register("nbio-bcast", func(addr string) (Server, error) { return startNbio(addr, true) })
}

// nbioServer is nbio's non-blocking engine (nbhttp) with its websocket
// upgrader: pollers read, OnMessage runs on nbio's handler pool.
type nbioServer struct {
	engine *nbhttp.Engine
	addr   string
	set    *connSet[*websocket.Conn]
	// subs is the broadcast receiver list (copy-on-write); nil for echo.
	mu   sync.Mutex
	subs atomic.Pointer[[]*websocket.Conn]
}

func (s *nbioServer) Addr() string    { return s.addr }
func (s *nbioServer) Conns() int64    { return s.set.n.Load() }
func (s *nbioServer) Messages() int64 { return s.set.msgs.Load() }

// Shutdown stops the engine, which closes every connection.
func (s *nbioServer) Shutdown(ctx context.Context) error {
	return s.engine.Shutdown(ctx)
}

func (s *nbioServer) updateSubs(fn func([]*websocket.Conn) []*websocket.Conn) {
	s.mu.Lock()
	old := *s.subs.Load()
	nw := fn(append([]*websocket.Conn(nil), old...))
	s.subs.Store(&nw)
	s.mu.Unlock()
}

func startNbio(addr string, bcast bool) (Server, error) {
	s := &nbioServer{set: newConnSet(func(c *websocket.Conn) { _ = c.Close() })}
	empty := []*websocket.Conn{}
	s.subs.Store(&empty)

	up := websocket.NewUpgrader()
	up.CheckOrigin = func(*http.Request) bool { return true }
	up.OnOpen(func(c *websocket.Conn) { s.set.add(c) })
	up.OnClose(func(c *websocket.Conn, _ error) {
		s.set.remove(c)
		if bcast {
			s.updateSubs(func(l []*websocket.Conn) []*websocket.Conn {
				for i, x := range l {
					if x == c {
						return append(l[:i], l[i+1:]...)
					}
				}
				return l
			})
		}
	})
	if bcast {
		up.OnMessage(func(_ *websocket.Conn, mt websocket.MessageType, data []byte) {
			s.set.msgs.Add(1)
			// data is released after the callback (ReleaseWebsocketPayload),
			// and WriteMessage copies into nbio's write path: one write per
			// subscriber, no copy kept here.
			for _, c := range *s.subs.Load() {
				_ = c.WriteMessage(mt, data)
			}
		})
	} else {
		up.OnMessage(func(c *websocket.Conn, mt websocket.MessageType, data []byte) {
			s.set.msgs.Add(1)
			_ = c.WriteMessage(mt, data)
		})
	}

	mux := http.NewServeMux()
	handler := func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		if bcast && r.URL.Query().Get("pub") == "" {
			s.updateSubs(func(l []*websocket.Conn) []*websocket.Conn { return append(l, c) })
		}
	}
	if bcast {
		mux.HandleFunc("/bcast", handler)
	} else {
		mux.HandleFunc("/echo", handler)
	}

	// Listen before the engine exists: a bad or busy address then fails
	// here, cleanly (nbio's own start-failure path has been seen to hang),
	// and the bound port is known when addr says port 0.
	ln, err := listen(addr)
	if err != nil {
		return nil, err
	}
	s.engine = nbhttp.NewEngine(nbhttp.Config{
		Network:                 "tcp",
		Addrs:                   []string{ln.Addr().String()},
		Handler:                 mux,
		Listen:                  func(string, string) (net.Listener, error) { return ln, nil },
		MaxLoad:                 1 << 20,
		ReleaseWebsocketPayload: true,
	})
	if err := s.engine.Start(); err != nil {
		_ = ln.Close()
		return nil, err
	}
	s.addr = ln.Addr().String()
	return s, nil
}
