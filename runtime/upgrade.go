package runtime

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/gobwas/ws"
)

// ConnOptions tunes one connection. Nil means the reactor's defaults.
type ConnOptions struct {
	// Framing for Morph and Dial: FramingRaw (default) or FramingLen16.
	// Upgrade and DialWebSocket always use FramingWebSocket.
	Framing Framing
	// MaxMessage overrides Config.MaxMessage for this connection.
	MaxMessage int
	// HighWater overrides Config.HighWater for this connection.
	HighWater int
	// UserData is attached to the Conn before any callback runs.
	UserData any
	// Response (Morph only) is written before the connection enters the
	// reactor, e.g. an HTTP 200 header block. Nil writes nothing at all.
	Response []byte
	// Header (Upgrade: extra 101 response headers; DialWebSocket: extra
	// request headers).
	Header http.Header
	// Protocol (Upgrade only) selects a subprotocol the client offered.
	Protocol func(string) bool
	// TLSConfig (Dial: use TLS; DialWebSocket: settings for wss://).
	TLSConfig *tls.Config
}

// handshakeTimeout bounds the blocking writes of a hand-off (the 101 or the
// Morph response) on the HTTP goroutine.
const handshakeTimeout = 10 * time.Second

// Upgrade answers the WebSocket handshake for an HTTP request, hijacks the
// connection and moves it, with every byte net/http had already read past the
// request, into the reactor. It returns as soon as the connection is enrolled:
// the HTTP handler should return and its goroutine ends. On a bad handshake
// the client gets the HTTP error and Upgrade returns it.
//
// Called from an http.Handler's goroutine. h's callbacks then run on the
// connection's event loop; OnOpen has run when Upgrade returns.
func (r *Reactor) Upgrade(w http.ResponseWriter, req *http.Request, h Handler, opts *ConnOptions) (*Conn, error) {
	if !r.beginHandoff() {
		http.Error(w, "server shutting down", http.StatusServiceUnavailable)
		return nil, ErrShuttingDown
	}
	if status, reason, _ := r.admit(req, true); status != 0 {
		r.handoffs.Add(-1)
		http.Error(w, reason, status)
		return nil, fmt.Errorf("runtime: upgrade refused: %s", reason)
	}
	u := ws.HTTPUpgrader{Timeout: handshakeTimeout}
	if opts != nil {
		u.Header, u.Protocol = opts.Header, opts.Protocol
	}
	hr := &heldResponse{ResponseWriter: w}
	nc, rw, hs, err := u.Upgrade(req, hr)
	if err != nil {
		r.handoffs.Add(-1)
		r.release(ipKey(req.RemoteAddr))
		if nc != nil {
			if len(hr.out) > 0 { // gobwas's rejection (400, 426, ...) goes out now
				_ = nc.SetWriteDeadline(time.Now().Add(handshakeTimeout))
				_, _ = nc.Write(hr.out)
			}
			_ = nc.Close()
		}
		return nil, fmt.Errorf("runtime: websocket handshake: %w", err)
	}
	c := r.newConn(h, opts, FramingWebSocket, false)
	c.admitted = true
	if hs.Protocol != "" {
		c.extra().protocol = hs.Protocol
	}
	if tc, ok := nc.(*tls.Conn); ok {
		return c, r.enrollTLS(tc, rw.Reader, c)
	}
	return c, r.enrollWith(nc, rw.Reader, c, hr.out)
}

// heldResponse is the ResponseWriter Upgrade hands gobwas: gobwas hijacks
// through it and writes its 101 into out instead of the socket, and the
// event loop sends it once the connection is enrolled (engine.OnOpen). The
// client learns of the upgrade only when the server can serve it, and the
// socket write (on loopback it also runs the peer's receive path, long
// enough for the Go scheduler to hand the processor to another OS thread)
// happens on the loop's thread rather than on each of many concurrent HTTP
// goroutines: a burst of upgrades then leaves fewer OS threads behind, which
// are never freed (see also fdtable.go). TLS connections write their 101 at
// once, through crypto/tls.
type heldResponse struct {
	http.ResponseWriter
	out []byte
	buf [192]byte // room for a plain 101 without growing out
}

// Hijack hijacks the connection and points gobwas's writer at out.
func (h *heldResponse) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, rw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err == nil {
		if _, isTLS := nc.(*tls.Conn); !isTLS {
			rw.Writer.Reset(heldWriter{h})
		}
	}
	return nc, rw, err
}

// heldWriter collects what gobwas writes after the hijack (heldResponse
// keeps the ResponseWriter's own Write for errors before the hijack).
type heldWriter struct{ h *heldResponse }

func (w heldWriter) Write(p []byte) (int, error) {
	if w.h.out == nil {
		w.h.out = w.h.buf[:0]
	}
	w.h.out = append(w.h.out, p...)
	return len(p), nil
}

// pendingOpen is the gnet context of a connection whose 101 waits for its
// loop; engine.OnOpen writes resp and puts the Conn in its place.
type pendingOpen struct {
	c    *Conn
	resp []byte
	err  error // the write failed (set on the loop, read after EnrollContext returned)
}

// Morph hijacks an HTTP request's connection as a raw stream (FramingRaw or
// FramingLen16, from opts), writes opts.Response if any, and moves it into
// the reactor like Upgrade. Called from an http.Handler's goroutine.
func (r *Reactor) Morph(w http.ResponseWriter, req *http.Request, h Handler, opts *ConnOptions) (*Conn, error) {
	if !r.beginHandoff() {
		http.Error(w, "server shutting down", http.StatusServiceUnavailable)
		return nil, ErrShuttingDown
	}
	if status, reason, _ := r.admit(req, false); status != 0 {
		r.handoffs.Add(-1)
		http.Error(w, reason, status)
		return nil, fmt.Errorf("runtime: connection refused: %s", reason)
	}
	nc, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		r.handoffs.Add(-1)
		r.release(ipKey(req.RemoteAddr))
		return nil, fmt.Errorf("runtime: hijack: %w", err)
	}
	_ = nc.SetDeadline(time.Time{})
	framing := FramingRaw
	if opts != nil && opts.Framing == FramingLen16 {
		framing = FramingLen16
	}
	if opts != nil && len(opts.Response) > 0 {
		_ = nc.SetWriteDeadline(time.Now().Add(handshakeTimeout))
		if _, err := nc.Write(opts.Response); err != nil {
			r.handoffs.Add(-1)
			r.release(ipKey(req.RemoteAddr))
			_ = nc.Close()
			return nil, fmt.Errorf("runtime: write morph response: %w", err)
		}
		_ = nc.SetWriteDeadline(time.Time{})
	}
	c := r.newConn(h, opts, framing, false)
	c.admitted = true
	if tc, ok := nc.(*tls.Conn); ok {
		return c, r.enrollTLS(tc, rw.Reader, c)
	}
	return c, r.enroll(nc, rw.Reader, c)
}

// Dial opens an outbound TCP connection in the reactor (FramingRaw or
// FramingLen16), with TLS when opts.TLSConfig is set. It blocks the calling
// goroutine for the connect and the TLS handshake only.
func (r *Reactor) Dial(ctx context.Context, network, addr string, h Handler, opts *ConnOptions) (*Conn, error) {
	if !r.beginHandoff() {
		return nil, ErrShuttingDown
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, network, addr)
	if err != nil {
		r.handoffs.Add(-1)
		return nil, fmt.Errorf("runtime: dial: %w", err)
	}
	framing := FramingRaw
	if opts != nil && opts.Framing == FramingLen16 {
		framing = FramingLen16
	}
	c := r.newConn(h, opts, framing, false)
	if opts != nil && opts.TLSConfig != nil {
		tc, err := clientTLS(ctx, nc, opts.TLSConfig, addr)
		if err != nil {
			r.handoffs.Add(-1)
			return nil, err
		}
		return c, r.enrollTLS(tc, nil, c)
	}
	return c, r.enroll(nc, nil, c)
}

// clientTLS runs a TLS client handshake over a switchConn so the session can
// move to the reactor afterwards.
func clientTLS(ctx context.Context, nc net.Conn, cfg *tls.Config, addr string) (*tls.Conn, error) {
	tcp, ok := nc.(*net.TCPConn)
	if !ok {
		_ = nc.Close()
		return nil, errors.New("runtime: TLS needs a TCP connection")
	}
	if cfg.ServerName == "" {
		cfg = cfg.Clone()
		cfg.ServerName, _, _ = net.SplitHostPort(addr)
	}
	tc := tls.Client(&switchConn{TCPConn: tcp}, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = nc.Close()
		return nil, fmt.Errorf("runtime: tls handshake: %w", err)
	}
	return tc, nil
}

// DialWebSocket opens an outbound WebSocket, ws:// or wss:// (client role:
// frames are masked with fresh random keys), and moves it into the reactor.
// It blocks the calling goroutine for the connect and the handshakes only.
func (r *Reactor) DialWebSocket(ctx context.Context, url string, h Handler, opts *ConnOptions) (*Conn, error) {
	if !r.beginHandoff() {
		return nil, ErrShuttingDown
	}
	d := ws.Dialer{Timeout: handshakeTimeout}
	var tlsCfg *tls.Config
	if opts != nil {
		if opts.Header != nil {
			d.Header = ws.HandshakeHeaderHTTP(opts.Header)
		}
		tlsCfg = opts.TLSConfig
	}
	d.TLSClient = func(nc net.Conn, hostname string) net.Conn {
		cfg := &tls.Config{}
		if tlsCfg != nil {
			cfg = tlsCfg.Clone()
		}
		if cfg.ServerName == "" {
			cfg.ServerName = hostname
		}
		if tcp, ok := nc.(*net.TCPConn); ok {
			return tls.Client(&switchConn{TCPConn: tcp}, cfg)
		}
		return tls.Client(nc, cfg)
	}
	nc, br, hs, err := d.Dial(ctx, url)
	if err != nil {
		r.handoffs.Add(-1)
		return nil, fmt.Errorf("runtime: websocket dial: %w", err)
	}
	c := r.newConn(h, opts, FramingWebSocket, true)
	if hs.Protocol != "" {
		c.extra().protocol = hs.Protocol
	}
	if tc, ok := nc.(*tls.Conn); ok {
		err = r.enrollTLS(tc, br, c)
	} else {
		err = r.enroll(nc, br, c)
	}
	if br != nil {
		ws.PutReader(br)
	}
	return c, err
}

// enroll hands nc to an event loop together with the bytes br had buffered.
// gnet duplicates the descriptor and closes nc.
func (r *Reactor) enroll(nc net.Conn, br *bufio.Reader, c *Conn) error {
	return r.enrollWith(nc, br, c, nil)
}

// enrollWith is enroll whose loop first writes resp, when not empty.
func (r *Reactor) enrollWith(nc net.Conn, br *bufio.Reader, c *Conn, resp []byte) error {
	defer r.handoffs.Add(-1)
	if br != nil && br.Buffered() > 0 {
		b, _ := br.Peek(br.Buffered())
		c.extra().carry = append([]byte(nil), b...)
	}
	remote := nc.RemoteAddr()
	r.shareAddrs(nc)
	var ctx any = c
	var pending *pendingOpen
	if len(resp) > 0 {
		pending = &pendingOpen{c: c, resp: resp}
		ctx = pending
	}
	_, err := r.client.EnrollContext(nc, ctx)
	if err == nil && pending != nil && pending.err != nil {
		err = fmt.Errorf("write handshake response: %w", pending.err)
	}
	if err != nil {
		_ = nc.Close()
		if c.admitted {
			r.release(ipKey(remote.String()))
		}
		c.mu.Lock()
		c.cls = &closeState{err: err, remote: remote} // RemoteAddr still answers
		c.mu.Unlock()
		return fmt.Errorf("runtime: enroll: %w", err)
	}
	return nil
}

// ipKey is the admission key of an address "host:port": the host.
func ipKey(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return host
}

// beginHandoff counts a connection on its way into the reactor, so Shutdown
// waits for it; false once Shutdown has begun.
func (r *Reactor) beginHandoff() bool {
	r.handoffs.Add(1)
	if r.shutting.Load() {
		r.handoffs.Add(-1)
		return false
	}
	return true
}

// Adopt moves an established connection (for example one returned by a
// net.Listener's Accept) into the reactor with FramingRaw or FramingLen16.
// A *tls.Conn is not accepted here.
func (r *Reactor) Adopt(nc net.Conn, h Handler, opts *ConnOptions) (*Conn, error) {
	if !r.beginHandoff() {
		_ = nc.Close()
		return nil, ErrShuttingDown
	}
	framing := FramingRaw
	if opts != nil && opts.Framing == FramingLen16 {
		framing = FramingLen16
	}
	c := r.newConn(h, opts, framing, false)
	return c, r.enroll(nc, nil, c)
}
