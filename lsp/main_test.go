package lsp

import (
	"fmt"
	"os"
	goruntime "runtime"
	"strings"
	"testing"
	"time"
)

// TestMain fails the run if goroutines are left behind (coder/websocket's
// approach): every loop, server and reactor a test starts must be stopped.
func TestMain(m *testing.M) {
	base := goroutines()
	code := m.Run()
	if code == 0 {
		deadline := time.Now().Add(5 * time.Second)
		for goroutines() > base && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := goroutines(); n > base {
			buf := make([]byte, 1<<20)
			buf = buf[:goruntime.Stack(buf, true)]
			fmt.Fprintf(os.Stderr, "leaked goroutines: %d > %d\n%s\n", n, base, leakSummary(string(buf)))
			code = 1
		}
	}
	os.Exit(code)
}

// goroutines counts the process's goroutines except os/signal's receiver,
// which stays for good once anyone asked for signals (go test -fuzz does).
func goroutines() int {
	n := goruntime.NumGoroutine()
	buf := make([]byte, 1<<20)
	buf = buf[:goruntime.Stack(buf, true)]
	if strings.Contains(string(buf), "os/signal.signal_recv") {
		n--
	}
	return n
}

// leakSummary keeps the first frame line of every goroutine.
func leakSummary(stacks string) string {
	var out []string
	for _, g := range strings.Split(stacks, "\n\n") {
		lines := strings.Split(g, "\n")
		if len(lines) >= 2 {
			out = append(out, lines[0]+" "+strings.TrimSpace(lines[1]))
		}
	}
	return strings.Join(out, "\n")
}
