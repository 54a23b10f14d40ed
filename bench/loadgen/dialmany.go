package loadgen

import (
	"errors"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// DialResult is the outcome of DialMany.
type DialResult struct {
	FDs        []int
	Extra      [][]byte // bytes received with each handshake (usually nil)
	Failed     int
	FirstError string
	// ClientFDLimit / PortLimit say that a machine limit on the client side
	// stopped the dialing, not the server.
	ClientFDLimit bool
	PortLimit     bool
	Start, End    time.Time
}

// maxFailures stops a DialMany early: once this many dials failed, more
// attempts only burn time on handshake timeouts.
const maxFailures = 64

// DialMany opens n WebSocket connections to t, spreading them round robin
// over srcs, with parallel dialer goroutines (each blocks in plain system
// calls). It stops early at the first client fd limit or after maxFailures
// failures. The caller owns the returned fds (see CloseAll).
func DialMany(t Target, n int, srcs [][4]byte, parallel int, timeout time.Duration) *DialResult {
	return dialMany(n, srcs, parallel, func(src [4]byte) (int, []byte, error) { return DialWS(t, src, timeout) })
}

// DialManyTCP is DialMany for plain TCP connections (no handshake): the
// http scenario's keep-alive clients.
func DialManyTCP(t Target, n int, srcs [][4]byte, parallel int, timeout time.Duration) *DialResult {
	return dialMany(n, srcs, parallel, func(src [4]byte) (int, []byte, error) {
		fd, err := DialTCP(t, src, time.Now().Add(timeout))
		return fd, nil, err
	})
}

func dialMany(n int, srcs [][4]byte, parallel int, dial func(src [4]byte) (int, []byte, error)) *DialResult {
	if parallel < 1 {
		parallel = 1
	}
	if len(srcs) == 0 {
		srcs = [][4]byte{{}}
	}
	res := &DialResult{Start: time.Now()}
	var (
		mu   sync.Mutex
		next int
		stop bool
		wg   sync.WaitGroup
	)
	for w := 0; w < parallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				if stop || next >= n {
					mu.Unlock()
					return
				}
				i := next
				next++
				mu.Unlock()
				fd, extra, err := dial(srcs[i%len(srcs)])
				mu.Lock()
				if err != nil {
					res.Failed++
					if res.FirstError == "" {
						res.FirstError = err.Error()
					}
					switch {
					case errors.Is(err, ErrClientFDLimit):
						res.ClientFDLimit = true
						stop = true
					case errors.Is(err, ErrNoPorts):
						res.PortLimit = true
					}
					if res.Failed >= maxFailures {
						stop = true
					}
				} else {
					res.FDs = append(res.FDs, fd)
					res.Extra = append(res.Extra, extra)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	res.End = time.Now()
	return res
}

// closeFrame is a masked close frame with status 1000 (normal closure).
var closeFrame = AppendClientFrame(nil, opClose, []byte{0x03, 0xE8}, [4]byte{1, 2, 3, 4})

// CloseAll sends each connection a close frame (best effort, never
// blocking: the sockets are non-blocking) and closes it.
func CloseAll(fds []int) {
	for _, fd := range fds {
		_, _ = unix.Write(fd, closeFrame)
		_ = unix.Close(fd)
	}
}

// RaiseFDLimit raises this process's soft RLIMIT_NOFILE to its hard limit
// and returns the new soft limit. (The hard limit cannot be raised here.)
func RaiseFDLimit() (uint64, error) {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return 0, err
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
			return 0, err
		}
	}
	return rl.Cur, nil
}
