package loadgen

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// Conn is an open client connection: a non-blocking socket, the bytes that
// came after its handshake, and how its messages travel.
type Conn struct {
	FD    int
	Extra []byte // plaintext received after the handshake, not yet parsed
	// TLS is set on wss:// and https:// connections: FD carries TLS
	// records and every byte goes through it (see fdLink).
	TLS *tls.Conn
	// Framing is how messages are delimited once the handshake is done.
	Framing Framing
	// ETID is the SMQ client's ETID once DialMany with KindSMQ has done
	// the SMQ handshake (0 otherwise).
	ETID uint32

	link *fdLink // the transport under TLS
}

// fdLink is the net.Conn crypto/tls runs over: the connection's
// non-blocking socket. While dialing (no write side attached) it waits in
// poll(2) up to deadline. Once a generator loop owns the connection, a
// read that would block returns errWouldBlock, a temporary net.Error after
// which crypto/tls keeps its state (a partial record stays buffered), and
// writes go to the loop's write side (written now or queued with EPOLLOUT
// armed), so encryption never blocks a loop.
type fdLink struct {
	fd       int
	deadline time.Time
	w        *wside // set when a loop owns the connection
	noWait   bool   // closing: writes that would block fail instead of waiting
}

// errWouldBlock tells crypto/tls that the socket has nothing more for now.
var errWouldBlock net.Error = wouldBlock{}

type wouldBlock struct{}

func (wouldBlock) Error() string   { return "loadgen: would block" }
func (wouldBlock) Timeout() bool   { return true }
func (wouldBlock) Temporary() bool { return true }

func (l *fdLink) Read(b []byte) (int, error) {
	return readFD(l.fd, b, l.w == nil && !l.noWait, l.deadline)
}

// readFD reads from the non-blocking fd, retrying EINTR. When the socket
// is empty it waits in poll(2) until deadline if wait is set, else it
// returns errWouldBlock; io.EOF at the end of the stream.
func readFD(fd int, b []byte, wait bool, deadline time.Time) (int, error) {
	for {
		n, err := unix.Read(fd, b)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			if !wait {
				return 0, errWouldBlock
			}
			if err := waitFD(fd, unix.POLLIN, deadline); err != nil {
				return 0, err
			}
			continue
		case err != nil:
			return 0, err
		case n == 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

func (l *fdLink) Write(b []byte) (int, error) {
	switch {
	case l.w != nil:
		if err := l.w.put(b); err != nil {
			return 0, err
		}
	case l.noWait:
		n, err := unix.Write(l.fd, b)
		if err != nil || n < len(b) {
			return max(n, 0), errors.New("loadgen: socket full while closing")
		}
	default:
		if err := writeAll(l.fd, b, l.deadline); err != nil {
			return 0, err
		}
	}
	return len(b), nil
}

func (l *fdLink) Close() error                       { return nil } // the Conn owns the fd
func (l *fdLink) LocalAddr() net.Addr                { return &net.TCPAddr{} }
func (l *fdLink) RemoteAddr() net.Addr               { return &net.TCPAddr{} }
func (l *fdLink) SetDeadline(t time.Time) error      { l.deadline = t; return nil }
func (l *fdLink) SetReadDeadline(t time.Time) error  { l.deadline = t; return nil }
func (l *fdLink) SetWriteDeadline(t time.Time) error { l.deadline = t; return nil }

// startTLS runs the TLS client handshake over fd, blocking in poll(2)
// until deadline.
func startTLS(fd int, cfg *tls.Config, deadline time.Time) (*tls.Conn, *fdLink, error) {
	link := &fdLink{fd: fd, deadline: deadline}
	tc := tls.Client(link, cfg)
	if err := tc.Handshake(); err != nil {
		return nil, nil, fmt.Errorf("loadgen: tls handshake: %w", err)
	}
	return tc, link, nil
}

// writeAll writes b to the non-blocking fd, waiting in poll(2) until
// deadline when the socket is full.
func writeAll(fd int, b []byte, deadline time.Time) error {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		switch {
		case err == unix.EAGAIN:
			if err := waitFD(fd, unix.POLLOUT, deadline); err != nil {
				return err
			}
			continue
		case err == unix.EINTR:
			continue
		case err != nil:
			return err
		}
		b = b[n:]
	}
	return nil
}

// writeBlocking writes b during a handshake (plaintext; encrypted on TLS
// connections), waiting until deadline.
func (c *Conn) writeBlocking(b []byte, deadline time.Time) error {
	if c.TLS != nil {
		c.link.deadline = deadline
		_, err := c.TLS.Write(b)
		return err
	}
	return writeAll(c.FD, b, deadline)
}

// readBlocking reads some plaintext during a handshake, waiting until
// deadline; io.EOF when the server closed.
func (c *Conn) readBlocking(b []byte, deadline time.Time) (int, error) {
	if c.TLS != nil {
		c.link.deadline = deadline
		return c.TLS.Read(b)
	}
	return readFD(c.FD, b, true, deadline)
}

// close sends final bytes (best effort, never waiting) and closes the fd.
func (c *Conn) close(final []byte) {
	switch {
	case len(final) == 0:
	case c.TLS != nil:
		c.link.w, c.link.noWait = nil, true
		_, _ = c.TLS.Write(final)
	default:
		_, _ = unix.Write(c.FD, final)
	}
	_ = unix.Close(c.FD)
}

// closeFrame is a masked close frame with status 1000 (normal closure).
var closeFrame = AppendClientFrame(nil, opClose, []byte{0x03, 0xE8}, [4]byte{1, 2, 3, 4})

// CloseAll sends each connection its goodbye (a WebSocket close frame
// with status 1000, SMQ's Disconnect on its raw transport, nothing on a
// byte stream; best effort, never blocking) and closes it.
func CloseAll(conns []Conn) {
	for i := range conns {
		switch conns[i].Framing {
		case FramingWebSocket:
			conns[i].close(closeFrame)
		case FramingLen16:
			conns[i].close(smqDisconnectFrame)
		default:
			conns[i].close(nil)
		}
	}
}

// attach hands c to a generator loop's write side w (epfd is the loop's
// epoll set): from now on TLS reads never wait and TLS writes are queued
// on w.
func (c *Conn) attach(w *wside, idx int32, epfd int) {
	w.fd, w.idx, w.epfd = c.FD, idx, epfd
	w.tls, w.framing = c.TLS, c.Framing
	if c.link != nil {
		c.link.w = w
	}
}
