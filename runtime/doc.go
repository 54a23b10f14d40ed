// Package runtime is Tarpon's event-driven core: a reactor on gnet/v2's
// epoll/kqueue event loops that holds upgraded connections without a
// goroutine each, frames their bytes (WebSocket, raw stream, SMQ's 2-byte
// length prefix), and queues their writes with backpressure. It has no Lua
// in it and imports no other package of the project.
//
// # Hand-off
//
// An http.Handler calls Reactor.Upgrade (WebSocket, answered with gobwas/ws)
// or Reactor.Morph (raw; an optional response such as SMQ's "200" header
// block is written first). Either hijacks the connection, takes the bytes
// net/http had already read past the request, and enrolls the descriptor in
// an event loop; the handler then returns and its goroutine ends. Upgrade's
// 101 is written by the loop as the connection opens (heldResponse; over TLS
// it goes out at once), so the client hears of the upgrade only once the
// server can serve it. TLS connections accepted through NewTLSListener move
// the same way: the *tls.Conn keeps its session and decrypts on the event
// loop over a transport the loop feeds (tls.go). Dial, DialWebSocket and
// Adopt bring outbound and foreign connections in.
//
// # Goroutines
//
// gnet runs one event loop per core, each on a locked OS thread; a Conn's
// reads, parsing and Handler callbacks happen on its loop. Writes may come
// from any goroutine: Send appends to the Conn's queue under its mutex and
// puts the Conn on its loop's dirty list; one task per burst flushes every
// dirty Conn of the loop (writev), so a broadcast costs each loop one
// wake-up. A Batch defers even that wake-up to the end of a caller's turn
// (the Lua scheduler). One ticker goroutine per reactor refreshes a coarse
// clock, polls the drain of congested queues (gnet has no "drained"
// callback), pings and reaps idle connections, and forgets idle admission
// entries.
//
// # Locks
//
// Conn.mu (send queue, flags, user data) and loop.mu (dirty list) are
// leaves: neither is held while taking the other, nor while calling a
// Handler. gate.mu guards the admission counters.
//
// # Memory per idle connection
//
// An idle connection costs no goroutine and as few bytes as the design
// allows: the Conn is one 144-byte object (what few connections need hangs
// off it lazily: connExtra, the send queue, the close state, the WebSocket
// parser); it keeps no copy of the addresses gnet already holds (RemoteAddr
// is saved only when the connection closes); the loops list their Conns in
// slices indexed by Conn.slot rather than maps; and the IPs of the
// *net.TCPAddr pair gnet keeps per connection are shared copies (addr.go),
// which frees the two sockaddrs net allocated for them. What remains is
// mostly gnet's: its conn object, its sockaddr, the two *net.TCPAddr and its
// fd map entry. New sizes the process's descriptor table for MaxConns up
// front (fdtable.go): growing it during a burst of hand-offs stalls every
// goroutine duplicating a socket, and the Go scheduler answers with OS
// threads that are never freed.
//
// # What it is not
//
// Not an HTTP server (net/http is), not a WebSocket extension host (no
// permessage-deflate), and not a Lua binding (package cosocket is).
//
// # Files
//
//	reactor.go    Config, Reactor, the gnet engine adapter, ticker, Shutdown
//	loop.go       per-loop dirty lists, flush passes, Batch, drain polling, sweeps
//	conn.go       Conn: Handler, send queue, close handshake, input dispatch
//	frame_ws.go   incremental WebSocket parser (both roles) and frame encoding
//	frame_raw.go  Framing, SMQ length-prefixed splitting and encoding
//	upgrade.go    Upgrade, Morph, Dial, DialWebSocket, Adopt, enrolment
//	addr.go       shared IPs of the addresses gnet keeps per connection
//	fdtable.go    sizing the descriptor table before connections pour in
//	tls.go        TLS on the reactor: switchable transport, NewTLSListener
//	admission.go  origin policy, connection caps, per-IP upgrade rate
//	stats.go      counters and their Prometheus text
//	admin.go      AdminHandler: /metrics, /healthz, pprof
package runtime
