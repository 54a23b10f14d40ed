package leakcheck

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Main runs m and exits. A run whose tests passed fails if, 5 seconds after
// them, more goroutines are alive than before them; the survivors' stacks
// are printed.
func Main(m *testing.M) {
	base := Count()
	code := m.Run()
	if code == 0 {
		deadline := time.Now().Add(5 * time.Second)
		for Count() > base && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := Count(); n > base {
			fmt.Fprintf(os.Stderr, "goroutine leak: %d running, %d before the tests\n%s\n", n, base, survivors())
			code = 1
		}
	}
	os.Exit(code)
}

// Count returns the number of goroutines, leaving out os/signal's receiver:
// it stays for good once anyone has asked for signals, and go test -fuzz
// does so after TestMain has counted.
func Count() int {
	n := runtime.NumGoroutine()
	if strings.Contains(stacks(), "os/signal.signal_recv") {
		n--
	}
	return n
}

func stacks() string {
	buf := make([]byte, 1<<20)
	return string(buf[:runtime.Stack(buf, true)])
}

// survivors returns the stacks of every goroutine but the test runner's.
func survivors() string {
	var keep []string
	for _, g := range strings.Split(stacks(), "\n\n") {
		if !strings.Contains(g, "testing.(*M).Run") && !strings.Contains(g, "main.main") && !strings.Contains(g, "os/signal.signal_recv") {
			keep = append(keep, g)
		}
	}
	return strings.Join(keep, "\n\n")
}
