package lsp

import (
	"testing"

	"github.com/tarponrt/tarpon/internal/leakcheck"
)

// TestMain fails the run if goroutines are left behind (coder/websocket's
// approach): every loop, server and reactor a test starts must be stopped.
func TestMain(m *testing.M) { leakcheck.Main(m) }
