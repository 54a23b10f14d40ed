package broker

import (
	"testing"

	"github.com/tarponrt/tarpon/internal/leakcheck"
)

// TestMain fails the package if goroutines started by the tests (event
// loops, timers, server callbacks) are still alive after them.
func TestMain(m *testing.M) { leakcheck.Main(m) }
