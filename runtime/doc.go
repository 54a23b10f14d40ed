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
// from any goroutine, and take one of four paths:
//
//   - In a callback of the Conn (a handler answering what it read), a Conn
//     with no queue stages the message in its loop's buffer, written in one
//     write when the callback ends (Conn.endCallback); only what the kernel
//     does not take makes the Conn a queue.
//   - Through a Batch (the Lua scheduler's turn, an event loop routing a
//     publish with Conn.CallbackBatch): messages are queued, and Flush
//     writes each Conn's queue once, from the Batch owner's goroutine, when
//     that queue is the socket's only pending output (flushDirect) — one
//     write per recipient for all it was sent, and no loop wake-up. A
//     loop's callback batch is flushed once the loop has handled the events
//     of its wake-up, so the publishes of a whole pass share the writes.
//   - A small message to an empty queue from another goroutine with a
//     Batch is written at once (writeNow).
//   - Otherwise Send appends to the Conn's queue under its mutex and puts
//     the Conn on its loop's dirty list; one task per burst flushes every
//     dirty Conn of the loop through gnet (writev), which keeps what the
//     socket does not take and is watched until it drains.
//
// Direct writes hold Conn.mu through the syscall, so no other sender
// overtakes them, and happen only while gnet holds none of the Conn's
// bytes. One ticker goroutine per reactor refreshes a coarse clock, polls
// the drain of congested queues (gnet has no "drained" callback), sweeps
// each loop once a second (pings, idle closes, trimming quiet Conns), and
// forgets idle admission entries.
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
// parser). A connection whose writes the kernel takes whole never gets a
// send queue (answers are staged in the loop's buffer), and one whose
// reads hold whole frames never gets a parser (the loop's parses them);
// the sweep gives back both from a connection quiet for a second (trim),
// so holes left by short-lived buffers do not pin memory either. It keeps no copy of the addresses gnet already holds (RemoteAddr
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
