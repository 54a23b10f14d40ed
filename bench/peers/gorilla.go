package peers

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

func init() {
	Register("gorilla-echo", func(addr string) (Server, error) { return startGorillaEcho(addr, false) })
	Register("gorilla-echo-tls", func(addr string) (Server, error) { return startGorillaEcho(addr, true) })
	Register("gorilla-bcast", startGorillaBcast)
}

// gorillaServer is the goroutine-per-connection baseline: net/http accepts,
// gorilla upgrades, and the handler goroutine then owns the connection for
// its whole life (plus, for broadcast, one writer goroutine per subscriber).
type gorillaServer struct {
	ln  net.Listener
	hs  *http.Server
	set *connSet[*websocket.Conn]
	raw *connSet[net.Conn] // /raw byte streams
	wg  sync.WaitGroup     // one per live connection handler
}

var gorillaUpgrader = websocket.Upgrader{
	// Buffer sizes 0: reuse the buffers net/http allocated (gorilla's default).
	CheckOrigin: func(*http.Request) bool { return true },
}

// newGorillaServer listens; serve starts accepting. Handlers are built in
// between so they can refer to g without a race.
// With withTLS, net/http serves wss:// (crypto/tls on each connection's
// goroutine, as a Go server normally does).
func newGorillaServer(addr string, withTLS bool) (*gorillaServer, error) {
	ln, err := listen(addr)
	if err != nil {
		return nil, err
	}
	if withTLS {
		cfg, err := selfSignedTLS()
		if err != nil {
			_ = ln.Close()
			return nil, err
		}
		ln = tls.NewListener(ln, cfg)
	}
	return &gorillaServer{
		ln:  ln,
		set: newConnSet(func(c *websocket.Conn) { _ = c.Close() }),
		raw: newConnSet(func(c net.Conn) { _ = c.Close() }),
	}, nil
}

func (g *gorillaServer) serve(mux *http.ServeMux) {
	g.hs = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = g.hs.Serve(g.ln) }()
}

func (g *gorillaServer) Addr() string    { return g.ln.Addr().String() }
func (g *gorillaServer) Conns() int64    { return g.set.n.Load() + g.raw.n.Load() }
func (g *gorillaServer) Messages() int64 { return g.set.msgs.Load() }

// Shutdown closes the listener, then every hijacked connection (which
// http.Server.Shutdown does not track), and waits for the handlers.
func (g *gorillaServer) Shutdown(ctx context.Context) error {
	err := g.hs.Shutdown(ctx)
	g.set.closeAll()
	g.raw.closeAll()
	done := make(chan struct{})
	go func() { g.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return err
}

// upgrade runs on the net/http handler goroutine, which then becomes the
// connection's reader for its whole life.
func (g *gorillaServer) upgrade(w http.ResponseWriter, r *http.Request) *websocket.Conn {
	c, err := gorillaUpgrader.Upgrade(w, r, nil)
	if err != nil {
		return nil // Upgrade already answered with an HTTP error
	}
	g.wg.Add(1)
	g.set.add(c)
	return c
}

func (g *gorillaServer) done(c *websocket.Conn) {
	g.set.remove(c)
	_ = c.Close()
	g.wg.Done()
}

func startGorillaEcho(addr string, withTLS bool) (Server, error) {
	g, err := newGorillaServer(addr, withTLS)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		c := g.upgrade(w, r)
		if c == nil {
			return
		}
		defer g.done(c)
		// The idiomatic gorilla echo (its examples/echo): one message in,
		// the same message type out, one flush per message.
		for {
			mt, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(mt, msg); err != nil {
				return
			}
			g.set.msgs.Add(1)
		}
	})
	mux.HandleFunc("/raw", g.rawEcho)
	g.serve(mux)
	return g, nil
}

// rawEcho is the goroutine-per-connection raw echo: hijack, answer 200,
// then copy every byte back as it comes (what io.Copy would do, with the
// bytes net/http had already buffered first).
func (g *gorillaServer) rawEcho(w http.ResponseWriter, r *http.Request) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "no hijacking", http.StatusInternalServerError)
		return
	}
	nc, brw, err := hj.Hijack()
	if err != nil {
		return
	}
	g.wg.Add(1)
	g.raw.add(nc)
	defer func() {
		g.raw.remove(nc)
		_ = nc.Close()
		g.wg.Done()
	}()
	if _, err := nc.Write(rawResponse); err != nil {
		return
	}
	buf := make([]byte, 16<<10)
	for {
		n, err := brw.Read(buf)
		if n > 0 {
			if _, werr := nc.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// bcastMsg is one message queued for a gorilla subscriber's writer.
type bcastMsg struct {
	mt   int
	data []byte // shared by every subscriber; never modified
}

// gorillaSub is one subscriber: its writer goroutine drains out and makes
// exactly one WriteMessage (one write system call) per message.
type gorillaSub struct {
	c    *websocket.Conn
	out  chan bcastMsg // never closed: publishers may hold an old snapshot
	done chan struct{} // closed when the subscriber's handler ends
}

// gorillaSubQueue bounds a subscriber's backlog; past it the subscriber is
// disconnected as a slow consumer (counted in drops).
const gorillaSubQueue = 1024

func startGorillaBcast(addr string) (Server, error) {
	g, err := newGorillaServer(addr, false)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	var (
		mu    sync.Mutex
		subs  atomic.Pointer[[]*gorillaSub] // copy-on-write, read lock-free per message
		drops atomic.Int64
	)
	empty := []*gorillaSub{}
	subs.Store(&empty)
	update := func(fn func([]*gorillaSub) []*gorillaSub) {
		mu.Lock()
		old := *subs.Load()
		nw := fn(append([]*gorillaSub(nil), old...))
		subs.Store(&nw)
		mu.Unlock()
	}
	mux.HandleFunc("/bcast", func(w http.ResponseWriter, r *http.Request) {
		// ?pub=1 marks a publisher-only connection that receives nothing.
		receiver := r.URL.Query().Get("pub") == ""
		c := g.upgrade(w, r)
		if c == nil {
			return
		}
		defer g.done(c)
		var sub *gorillaSub
		if receiver {
			sub = &gorillaSub{c: c, out: make(chan bcastMsg, gorillaSubQueue), done: make(chan struct{})}
			update(func(s []*gorillaSub) []*gorillaSub { return append(s, sub) })
			writerDone := make(chan struct{})
			go func() {
				defer close(writerDone)
				for {
					select {
					case m := <-sub.out:
						if err := c.WriteMessage(m.mt, m.data); err != nil {
							_ = c.Close() // wakes the reader below
							return
						}
					case <-sub.done:
						return
					}
				}
			}()
			defer func() {
				update(func(s []*gorillaSub) []*gorillaSub {
					for i, x := range s {
						if x == sub {
							return append(s[:i], s[i+1:]...)
						}
					}
					return s
				})
				close(sub.done)
				_ = c.Close() // unblocks a writer stuck on a full socket
				<-writerDone
			}()
		}
		for {
			mt, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			g.set.msgs.Add(1)
			m := bcastMsg{mt: mt, data: msg}
			for _, s := range *subs.Load() {
				select {
				case s.out <- m:
				default:
					drops.Add(1)
					_ = s.c.Close() // slow consumer
				}
			}
		}
	})
	g.serve(mux)
	return g, nil
}
