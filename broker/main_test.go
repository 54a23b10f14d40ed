package broker

import (
	"fmt"
	"os"
	goruntime "runtime"
	"strings"
	"testing"
	"time"
)

// TestMain fails the package if goroutines started by the tests (event
// loops, timers, server callbacks) are still alive after them.
func TestMain(m *testing.M) {
	base := goruntime.NumGoroutine()
	code := m.Run()
	if code == 0 {
		deadline := time.Now().Add(5 * time.Second)
		for goruntime.NumGoroutine() > base && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := goruntime.NumGoroutine(); n > base {
			buf := make([]byte, 1<<20)
			buf = buf[:goruntime.Stack(buf, true)]
			fmt.Fprintf(os.Stderr, "goroutine leak: %d running, %d before the tests\n%s\n", n, base, leakedStacks(string(buf)))
			code = 1
		}
	}
	os.Exit(code)
}

// leakedStacks drops the main and testing goroutines from a stack dump.
func leakedStacks(dump string) string {
	var keep []string
	for _, g := range strings.Split(dump, "\n\n") {
		if strings.Contains(g, "testing.(*M).Run") || strings.Contains(g, "main.main") {
			continue
		}
		keep = append(keep, g)
	}
	return strings.Join(keep, "\n\n")
}
