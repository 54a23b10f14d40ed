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
//	Main(args)       tarpon bench idle|echo|lua-echo|fanout|rpc|http --url URL ... | --peer NAME ... | --peers ...
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
// # Targets and transports
//
// --url takes ws:// and wss:// (WebSocket), http:// and https:// (the http
// scenario; in SMQ scenarios — fanout --proto smq, rpc, idle --smq — SMQ's
// raw transport, the C client's bootstrap with u16 length prefixes).
// --insecure accepts a self-signed certificate; the *-tls peers
// (tarpon-echo-tls: TLS on Tarpon's reactor; gorilla-echo-tls: crypto/tls
// per goroutine) serve one generated at start, and the harness dials them
// without certificate checks. With --peer, --raw picks SMQ's raw transport.
// Every row records its transport.
//
// # Scenarios
//
//   - idle: open N connections (--smq: SMQ clients past Connack; spread over --sources 127.0.0.x source
//     addresses and --procs worker processes, 10,000 per process by default,
//     because a process may hold at most 20,000 descriptors here), wait for
//     the server to count them, GC, wait until its RSS is steady, then report
//     (RSS_loaded − RSS_baseline)/N, heap and goroutines per connection and
//     the connect rate. When a limit (client or server fd limit, client
//     ports) rather than the server capped the run, the notes say so.
//   - echo: C connections (WebSocket, or on an http(s):// URL a raw byte
//     stream counted in --size byte messages), closed loop (each waits for its echo) or fixed
//     --rate (latency from the intended send time: no coordinated omission);
//     --batch K frames per write; latency percentiles from an HDR histogram,
//     server and client CPU µs per message, server GC count.
//   - lua-echo: echo against the tarpon-lua peer's /ws/echo.lsp, where each
//     connection is a Lua cosocket parked in s:read() (the Lua vs Go echo
//     comparison; idle against the same page gives memory per parked
//     cosocket).
//   - fanout: S subscribers (spread over --topics T) and P publishers;
//     publishers send --size byte messages (bytes 0..8 the send time, 8..16
//     the closed-loop slot and generation), either open loop at --pub-rate
//     or closed loop with --in-flight K publishes outstanding per publisher
//     (the next one goes out when one has reached every subscriber of its
//     topic; one not complete after 2 s is counted as stalled and
//     replaced). Reports deliveries/s, delivery ratio, latency to each
//     delivery and (closed loop) to the last delivery of a publish, server
//     CPU per delivery. The wire protocol is a loadgen.FanoutProtocol
//     picked by --proto from FanoutProtocols: "bcast" (*-bcast peers), "smq"
//     (tarpon-smq: Init/Connect/Connack, Subscribe or Create, Publish),
//     "nats" (the nats peer: CONNECT/SUB/PUB/MSG/PING/PONG over WebSocket).
//   - rpc: N SMQ clients (default 1000), each publishing to the server-side
//     client's ETID 1 and waiting for the reply published back to its ETID
//     (tarpon-smq answers in Go); round trips/s and latency percentiles.
//     The SMQ handshake is done at dial time, then the echo driver runs
//     with one Publish per connection (EchoConfig.Payloads).
//   - http: N keep-alive connections, one GET --path outstanding each
//     (default peer tarpon-lua, the examples app's front page); req/s,
//     latency percentiles, server CPU per request.
//   - --peers: each peer on a fresh process per run: idle at each
//     --idle-conns size and echo closed loop and batched (--echo-batch) for
//     --peer-list (tarpon-lua included: lua-echo), fan-out for each
//     --fanout-peers × --fanout-subs × --fanout-in-flight (1k/10k
//     subscribers, 1 and 16 in flight, tarpon-smq, tarpon-bcast,
//     gorilla-bcast, nbio-bcast, nats), rpc (--rpc-peers) and http (--http-peers); a peer
//     that fails to start gets FAILED rows. The report ends with the issue
//     targets computed from the same run (targets.go). Also: echo over wss
//     for --tls-peers, idle SMQ clients on tarpon-smq at each
//     --smq-idle-conns size, rpc over each of --rpc-transports (ws, raw),
//     echo over a raw byte stream for --raw-peers (tarpon-echo: runtime.Morph;
//     gorilla-echo: a hijacked net.Conn per goroutine). --report DIR writes
//     report.md, results.json, latency.svg, rss.svg, fanout.svg; --results
//     FILE writes the results file (machine, load average, date, command,
//     tables). --large raises the sizes as far as this machine allows. The
//     default suite takes about 5 minutes on 2 cores.
//
// # Progress
//
// While a scenario runs, a progress line on stderr shows its connections,
// the receive rate and lost connections: redrawn every second on a
// terminal, a line every 5 s otherwise (live.go; the loops publish their
// counts to a loadgen.Progress once per wake-up).
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
//	live.go      the progress line
//	dial.go      DialOptions (sources, dialers, timeout, --insecure), transport names
//	idle.go      idle scenario, WorkerMain, settle polling
//	echo.go      echo scenario
//	fanout.go    fan-out scenario, FanoutProtocols, protoFor, window CPU sampling
//	rpc.go       rpc scenario (SMQ request/response to the server's ETID 1)
//	http.go      http scenario (keep-alive GETs)
//	suite.go     --peers side-by-side suite
//	report.go    Report, markdown tables, SVG charts, results file, machine info
//	targets.go   issue targets computed from a report's figures
//	procstat.go  /proc readers (RSS, CPU, fds, fd limit), per-connection maths
//
// Subpackages: peers (the comparison servers and their admin endpoint),
// loadgen (dialer incl. TLS and SMQ's raw transport, WebSocket client
// framing, epoll echo, fan-out and HTTP drivers, SMQ and NATS client
// adapters), cmd/benchdev (a development
// main).
package bench
