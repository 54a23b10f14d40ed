package loadgen

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"time"

	"golang.org/x/sys/unix"
)

// wside is the I/O side every generator connection shares: bytes the
// kernel did not take wait in out, and EPOLLOUT is armed while they do; on
// TLS connections plaintext passes through tls first. Owned by the
// connection's loop goroutine.
type wside struct {
	fd      int
	idx     int32 // index in its loop's conns, carried in epoll events
	epfd    int   // the loop's epoll set
	out     []byte
	outArm  bool      // EPOLLOUT registered
	tls     *tls.Conn // nil on plain connections
	dead    bool      // failed; out of the epoll set
	framing Framing
	// fixed is the message size on a FramingStream connection: the echo
	// counts its byte stream in messages of this many bytes.
	fixed int
}

// failures is what a generator loop records of its failed connections.
// Loop goroutine only.
type failures struct {
	lost     int    // connections that failed
	firstErr string // the first error, for the report
}

// fail records err and, for a live w (nil: the loop itself failed), marks
// it dead and takes it out of the epoll set; the fd stays open (the
// caller of the run closes it).
func (f *failures) fail(w *wside, err error) {
	if f.firstErr == "" {
		f.firstErr = err.Error()
	}
	if w == nil || w.dead {
		return
	}
	w.dead = true
	f.lost++
	_ = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_DEL, w.fd, nil)
}

// arm turns EPOLLOUT on or off for the connection.
func (w *wside) arm(on bool) {
	if w.outArm == on {
		return
	}
	w.outArm = on
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: w.idx}
	if on {
		ev.Events |= unix.EPOLLOUT
	}
	_ = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_MOD, w.fd, &ev)
}

// send writes plaintext b (encrypted first on TLS connections), or queues
// it behind bytes still waiting. An error is a failed connection.
func (w *wside) send(b []byte) error {
	if w.tls != nil {
		_, err := w.tls.Write(b)
		return err
	}
	return w.put(b)
}

// put writes wire bytes b, or queues them behind bytes still waiting.
func (w *wside) put(b []byte) error {
	if len(w.out) > 0 {
		w.out = append(w.out, b...)
		return nil
	}
	n, err := unix.Write(w.fd, b)
	if err != nil {
		if err != unix.EAGAIN && err != unix.EINTR {
			return fmt.Errorf("write: %w", err)
		}
		n = 0
	}
	if n < len(b) {
		w.out = append(w.out[:0], b[n:]...)
		w.arm(true)
	}
	return nil
}

// flush writes queued bytes after EPOLLOUT and disarms it once they are out.
func (w *wside) flush() error {
	for len(w.out) > 0 {
		n, err := unix.Write(w.fd, w.out)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			return nil
		}
		if err != nil {
			return fmt.Errorf("write: %w", err)
		}
		w.out = w.out[:copy(w.out, w.out[n:])]
	}
	w.arm(false)
	return nil
}

// errAgain: nothing to read for now.
var errAgain = errors.New("loadgen: no data")

var errServerClosed = errors.New("server closed the connection")

// readAll reads what the connection has and hands it to consume, buffer
// by buffer, until the socket is empty or consume returns false (the
// connection failed). A TLS connection is read until the socket has
// nothing more, since decrypted records buffered in crypto/tls would not
// wake epoll again. The error is the connection's failure.
func (w *wside) readAll(buf []byte, consume func([]byte) bool) error {
	for {
		n, err := w.read(buf)
		if err == errAgain {
			return nil
		}
		if err != nil {
			return err
		}
		if !consume(buf[:n]) || n < len(buf) {
			return nil
		}
	}
}

// read reads the plaintext available now into buf (on TLS, record after
// record until the socket is empty or buf is full): errAgain when there
// is none, errServerClosed at the end of the stream.
func (w *wside) read(buf []byte) (int, error) {
	total := 0
	for total < len(buf) {
		var n int
		var err error
		if w.tls != nil {
			n, err = w.tls.Read(buf[total:])
		} else {
			n, err = readFD(w.fd, buf[total:], false, time.Time{})
		}
		total += n
		switch {
		case err == nil && w.tls == nil:
			return total, nil // one read(2) per wake-up: epoll is level-triggered
		case err == nil:
			continue
		case err == errWouldBlock: // crypto/tls passes its transport's error through
			if total == 0 {
				return 0, errAgain
			}
			return total, nil
		case errors.Is(err, io.EOF):
			if total > 0 {
				return total, nil
			}
			return 0, errServerClosed
		default:
			return 0, fmt.Errorf("read: %w", err)
		}
	}
	return total, nil
}

// appendFrame appends msg framed for this connection: a masked client
// WebSocket frame, SMQ's u16 length prefix, or (byte stream) msg as is.
func (w *wside) appendFrame(dst []byte, op byte, msg []byte, mask [4]byte) []byte {
	switch w.framing {
	case FramingLen16:
		return AppendLen16(dst, msg)
	case FramingStream:
		return append(dst, msg...)
	}
	return AppendClientFrame(dst, op, msg, mask)
}

// parse parses one inbound message of this connection's framing from b.
func (w *wside) parse(b []byte) (frameInfo, bool, error) {
	switch w.framing {
	case FramingLen16:
		return parseLen16(b)
	case FramingStream:
		if w.fixed <= 0 || len(b) < w.fixed {
			return frameInfo{}, false, nil
		}
		return frameInfo{op: opBin, fin: true, payload: b[:w.fixed], size: w.fixed}, true, nil
	}
	return parseFrame(b)
}
