package bench

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/tarponrt/tarpon/bench/loadgen"
)

// startLive prints a progress line for a running scenario to w: the
// connections, the receive rate over the last interval and the failed
// connections. On a terminal the line is redrawn every second; elsewhere
// (a log file, make's output) a line is written every 5 seconds. A nil w
// prints nothing. The returned stop ends the line; it must be called once.
func startLive(w io.Writer, label string, conns int, p *loadgen.Progress) (stop func()) {
	if w == nil {
		return func() {}
	}
	tty := isTerminal(w)
	every := liveLogInterval
	if tty {
		every = time.Second
	}
	done := make(chan struct{})
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		t := time.NewTicker(every)
		defer t.Stop()
		start, last, lastN := time.Now(), time.Now(), int64(0)
		for {
			select {
			case <-done:
				if tty {
					fmt.Fprintln(w)
				}
				return
			case now := <-t.C:
				n := p.Received.Load()
				rate := float64(n-lastN) / now.Sub(last).Seconds()
				last, lastN = now, n
				line := fmt.Sprintf("bench:   %s: %d conns, %.0f msgs/s, %d received, %d conns lost, %.0f s",
					label, conns, rate, n, p.Lost.Load(), now.Sub(start).Seconds())
				if tty {
					fmt.Fprintf(w, "\r%-110s", line)
				} else {
					fmt.Fprintln(w, line)
				}
			}
		}
	}()
	return func() {
		close(done)
		<-ended
	}
}

// liveLogInterval spaces progress lines written to a non-terminal.
var liveLogInterval = 5 * time.Second

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
