// Package leakcheck is the goroutine-leak check that test binaries run from
// TestMain: every event loop, server, reactor and timer a package's tests
// start must be gone when they end.
//
// It counts goroutines, so it only fits a TestMain whose tests run alone
// in their process. It is not a library for production code, and not a
// race detector.
//
// Files: leakcheck.go (Main, Count).
package leakcheck
