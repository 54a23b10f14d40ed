// Package hostile is Tarpon's hostile-client suite (issue 8): the whole
// server (runtime, scheduler, cosocket, smq.hub, lsp with the examples app)
// started in-process on loopback, attacked by deliberately broken clients,
// then checked for a normal client still being served and its memory back
// near the baseline.
//
// The package's only non-test code is Stack (stack.go), the in-process
// server built with lsp.NewStack as the tarpon command builds it, which cmd/soak
// reuses. It is not a library for applications.
//
// # Goroutines
//
// Start and Close may be called from any goroutine except the scheduler's.
// The Stack's parts keep their own rules (see their doc.go).
//
// # Files
//
//	stack.go         Config, Stack, Start, Close, Metrics/Metric
//	helpers_test.go  naive WebSocket and SMQ clients, baselines, health checks
//	ws_test.go       WebSocket frames cut/corrupted, protocol violations, origins, connection floods, slowloris
//	smq_test.go      every SMQ message cut/corrupted over both transports, PubFrag, PTID spoofing, floods, readtmo, silent peers
//	slow_test.go     a subscriber that stops reading while a publisher floods
//	lua_test.go      Lua abuse through real pages: loops, rep, gsub, recursion, table bombs
//	auth_test.go     the login example (examples/www/auth): pages and SMQ topics
//	fault_test.go    EMFILE accept back-off, a panicking Go handler
package hostile
