// Command soak runs Tarpon's whole stack in-process (test/hostile.Stack:
// runtime, scheduler, cosocket, smq.hub, lsp and the examples app) under a
// bounded mixed load: WebSocket echo clients through a Lua cosocket, SMQ
// clients over both transports that connect, subscribe, publish and leave,
// and Lua page requests. Afterwards every client is gone and it checks
// that goroutines, file descriptors and heap are back near their values
// before the load; it prints the figures and appends them to a results
// file under a "Soak" heading (make soak: bench/RESULTS.md).
//
//	go run ./cmd/soak --duration 10m --results bench/RESULTS.md
//
// It exits 1 when a figure did not come back.
//
// Goroutines: one per simulated client, a sampler, and the Stack's own.
// It is not a benchmark (make bench) nor a stress test: the load is paced
// (--workers, --pause) to stay under the reactor's default upgrade rate.
//
// Files: doc.go, main.go (flags, load rounds, the report).
package main
