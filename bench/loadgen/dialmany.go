package loadgen

import (
	"errors"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// DialResult is the outcome of DialMany.
type DialResult struct {
	Conns      []Conn
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

// DialMany opens n connections of kind to t (see Dial), spreading them
// round robin over srcs, with parallel dialer goroutines (each blocks in
// plain system calls). It stops early at the first client fd limit or
// after maxFailures failures. The caller owns the connections (CloseAll).
func DialMany(t Target, kind Kind, n int, srcs [][4]byte, parallel int, timeout time.Duration) *DialResult {
	return dialMany(n, srcs, parallel, func(src [4]byte) (Conn, error) { return Dial(t, kind, src, timeout) })
}

func dialMany(n int, srcs [][4]byte, parallel int, dial func(src [4]byte) (Conn, error)) *DialResult {
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
				c, err := dial(srcs[i%len(srcs)])
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
					res.Conns = append(res.Conns, c)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	res.End = time.Now()
	return res
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
