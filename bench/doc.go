// Package bench is Tarpon's benchmark harness: `tarpon bench`. It starts
// comparison servers (peers) as separate processes, drives them with a
// non-blocking load generator, reads the servers from /proc and from a small
// admin endpoint, and prints or writes the results (markdown tables, JSON,
// hand-written SVG charts, the bench/RESULTS.md file of `make bench`).
//
// It is not a unit-benchmark package (microbenchmarks live beside the code
// they measure) and it imports the runtime only through its tarpon peers.
//
// # Entry points (wired into cmd/tarpon)
//
//	Main(args)       tarpon bench idle|echo|fanout --url URL ... | --peer NAME ... | --peers ...
//	PeerMain(args)   tarpon bench-peer NAME [--addr A] [--admin B]  (hidden; one server per process)
//	WorkerMain(args) tarpon bench-worker idle --url U --conns N ... (hidden; holds idle connections)
//
// The harness re-executes its own binary (os.Executable) for peers and
// workers, so every server is its own process: RSS is VmRSS from
// /proc/<pid>/status, CPU is utime+stime from /proc/<pid>/stat (10 ms
// ticks). A peer prints one line "TARPON-BENCH-PEER READY addr=A admin=B
// pid=P" on stdout when it serves, and shuts down cleanly on SIGTERM.
//
// # Admin endpoint (every peer, same JSON)
//
// GET http://ADMIN/stats returns peers.Stats: peer, pid, conns, goroutines,
// num_gc, heap_inuse, heap_alloc, heap_sys, stack_inuse, sys, messages.
// GET /gc runs runtime.GC first. A server not started by the harness can be
// measured with --admin (pid comes from the JSON) or --pid.
//
// # Scenarios
//
//   - idle: open N connections (spread over --sources 127.0.0.x source
//     addresses and --procs worker processes, 10,000 per process by default,
//     because a process may hold at most 20,000 descriptors here), wait for
//     the server to count them, GC, wait until its RSS is steady, then report
//     (RSS_loaded − RSS_baseline)/N, heap and goroutines per connection and
//     the connect rate. When a limit (client or server fd limit, client
//     ports) rather than the server capped the run, the notes say so.
//   - echo: C connections, closed loop (each waits for its echo) or fixed
//     --rate (latency from the intended send time: no coordinated omission);
//     --batch K frames per write; latency percentiles from an HDR histogram,
//     server and client CPU µs per message, server GC count.
//   - fanout: S subscribers and P publishers; publishers send --size byte
//     messages at --pub-rate (send time in the first 8 bytes); deliveries,
//     delivery ratio, latency, server CPU per delivery. The wire protocol is
//     a loadgen.FanoutProtocol picked by --proto from FanoutProtocols
//     ("bcast" for the *-bcast peers; an SMQ adapter registers there).
//   - --peers: each listed peer on a fresh process per run: idle at each
//     --idle-conns size, echo closed loop and batched (--echo-batch), and
//     optionally fan-out (--fanout-peers); a peer that fails to start gets
//     FAILED rows. --report DIR writes report.md, results.json, latency.svg,
//     rss.svg; --results FILE writes the results file (machine, load
//     average, date, command, tables). --large raises the sizes as far as
//     this machine allows (idle up to the server's fd limit, 5000 echo
//     connections, fan-out to 10000 subscribers); about 4.5 minutes on 2
//     cores, the default suite about 1.5 minutes.
//
// # Goroutines
//
// Main runs scenarios one after another on the caller's goroutine. The load
// generator (package loadgen) uses --loops goroutines, each owning an epoll
// set and its connections outright; dialing uses --parallel goroutines that
// block in poll(2). Child-process pipes are read by one goroutine each.
//
// # Files
//
//	main.go      flags, Main, dispatch, peerPath
//	peerproc.go  PeerMain, PeerProc (start, ready line, stop), admin client
//	idle.go      idle scenario, WorkerMain, settle polling
//	echo.go      echo scenario
//	fanout.go    fan-out scenario, FanoutProtocols, window CPU sampling
//	suite.go     --peers side-by-side suite
//	report.go    Report, markdown tables, SVG charts, results file, machine info
//	procstat.go  /proc readers (RSS, CPU, fds, fd limit), per-connection maths
//
// Subpackages: peers (the comparison servers and their admin endpoint),
// loadgen (dialer, WebSocket client framing, epoll echo and fan-out
// drivers), cmd/benchdev (a development main).
package bench
