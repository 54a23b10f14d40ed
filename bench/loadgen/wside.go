package loadgen

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// wside is the write side every generator connection shares: bytes the
// kernel did not take wait in out, and EPOLLOUT is armed while they do.
// Owned by the connection's loop goroutine.
type wside struct {
	fd     int
	idx    int32 // index in its loop's conns, carried in epoll events
	out    []byte
	outArm bool // EPOLLOUT registered
}

// arm turns EPOLLOUT on or off for the connection in epfd.
func (w *wside) arm(epfd int, on bool) {
	if w.outArm == on {
		return
	}
	w.outArm = on
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: w.idx}
	if on {
		ev.Events |= unix.EPOLLOUT
	}
	_ = unix.EpollCtl(epfd, unix.EPOLL_CTL_MOD, w.fd, &ev)
}

// writeNow writes b on an empty queue and queues what the kernel did not
// take, arming EPOLLOUT. An error is a failed connection.
func (w *wside) writeNow(epfd int, b []byte) error {
	n, err := unix.Write(w.fd, b)
	if err != nil {
		if err != unix.EAGAIN && err != unix.EINTR {
			return fmt.Errorf("write: %w", err)
		}
		n = 0
	}
	if n < len(b) {
		w.out = append(w.out[:0], b[n:]...)
		w.arm(epfd, true)
	}
	return nil
}

// flush writes queued bytes after EPOLLOUT and disarms it once they are out.
func (w *wside) flush(epfd int) error {
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
	w.arm(epfd, false)
	return nil
}
