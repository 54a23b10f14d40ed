package runtime

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// TLS on the reactor.
//
// gnet cannot enroll a *tls.Conn, and a goroutine per TLS connection is what
// the reactor exists to avoid. So net/http keeps doing the TLS handshake and
// the HTTP exchange over a *tls.Conn whose transport is a switchConn. At the
// hand-off the TCP descriptor moves to the reactor and the switchConn stops
// talking to the socket: the event loop feeds it the ciphertext gnet read, and
// the same *tls.Conn decrypts it on the loop; encrypted output goes straight to
// gnet. crypto/tls treats a temporary net.Error from its transport as "no data
// yet", not as a failure, which is what makes this work without a goroutine.

// NewTLSListener wraps a TCP listener so that net/http serves TLS over
// connections the reactor can take over. Use it instead of
// http.Server.ServeTLS: srv.Serve(runtime.NewTLSListener(ln, cfg)).
func NewTLSListener(inner net.Listener, cfg *tls.Config) net.Listener {
	if cfg.NextProtos == nil {
		// HTTP/2 connections cannot be hijacked; keep to HTTP/1.1.
		cfg = cfg.Clone()
		cfg.NextProtos = []string{"http/1.1"}
	}
	return &tlsListener{Listener: inner, cfg: cfg}
}

type tlsListener struct {
	net.Listener
	cfg *tls.Config
}

func (l *tlsListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return tls.Server(nc, l.cfg), nil
	}
	return tls.Server(&switchConn{TCPConn: tc}, l.cfg), nil
}

// switchConn is a TLS transport that reads and writes the socket until the
// hand-off, and the reactor afterwards. After the switch it is used on the
// connection's event loop only.
type switchConn struct {
	*net.TCPConn
	switched bool
	in       []byte    // ciphertext fed by the loop, not yet read by crypto/tls
	gc       gnet.Conn // set when the connection opens in the reactor
}

// errNoData tells crypto/tls that the loop has no more ciphertext for now.
var errNoData net.Error = noDataError{}

type noDataError struct{}

func (noDataError) Error() string   { return "runtime: no buffered TLS data" }
func (noDataError) Timeout() bool   { return true }
func (noDataError) Temporary() bool { return true }

func (s *switchConn) Read(p []byte) (int, error) {
	if !s.switched {
		return s.TCPConn.Read(p)
	}
	if len(s.in) == 0 {
		return 0, errNoData
	}
	n := copy(p, s.in)
	s.in = s.in[n:]
	if len(s.in) == 0 {
		s.in = s.in[:0:0] // let the backing array go
	}
	return n, nil
}

func (s *switchConn) Write(p []byte) (int, error) {
	if !s.switched {
		return s.TCPConn.Write(p)
	}
	if s.gc == nil {
		return 0, net.ErrClosed
	}
	return s.gc.Write(p) // gnet copies what the kernel does not take at once
}

func (s *switchConn) SetDeadline(t time.Time) error {
	if s.switched {
		return nil
	}
	return s.TCPConn.SetDeadline(t)
}

func (s *switchConn) SetReadDeadline(t time.Time) error {
	if s.switched {
		return nil
	}
	return s.TCPConn.SetReadDeadline(t)
}

func (s *switchConn) SetWriteDeadline(t time.Time) error {
	if s.switched {
		return nil
	}
	return s.TCPConn.SetWriteDeadline(t)
}

// enrollTLS hands a TLS connection's socket to the reactor; tc keeps its
// session state and goes on decrypting on the event loop.
func (r *Reactor) enrollTLS(tc *tls.Conn, br *bufio.Reader, c *Conn) error {
	defer r.handoffs.Add(-1)
	sw, ok := tc.NetConn().(*switchConn)
	if !ok {
		_ = tc.Close()
		return errors.New("runtime: TLS connections must be accepted through runtime.NewTLSListener")
	}
	x := c.extra()
	if br != nil && br.Buffered() > 0 {
		b, _ := br.Peek(br.Buffered())
		x.carry = append([]byte(nil), b...)
	}
	x.tls, x.sw = tc, sw
	sw.switched = true
	remote := sw.TCPConn.RemoteAddr()
	r.shareAddrs(sw.TCPConn)
	if _, err := r.client.EnrollContext(sw.TCPConn, c); err != nil {
		_ = sw.TCPConn.Close()
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

// readTLS feeds ciphertext to the TLS session and appends the plaintext it
// yields to c.x.carry. Loop only. It reports false when the session failed or
// the peer closed it; the caller then closes the connection.
func (c *Conn) readTLS(cipher []byte) bool {
	x := c.x
	if len(cipher) > 0 {
		x.sw.in = append(x.sw.in, cipher...)
	}
	if c.lp.tlsBuf == nil {
		c.lp.tlsBuf = make([]byte, 16<<10)
	}
	buf := c.lp.tlsBuf
	for {
		n, err := x.tls.Read(buf)
		x.carry = append(x.carry, buf[:n]...)
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return true
		}
		if !errors.Is(err, io.EOF) {
			c.r.log.Debug("runtime: TLS read failed", "remote", c.remoteAddr(), "err", err)
		}
		return false
	}
}
