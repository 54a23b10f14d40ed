// Package loadgen is the benchmark load generator: a WebSocket client built
// from plain Linux system calls so it costs the machine as little as
// possible and never becomes the bottleneck by design.
//
// DialWS opens a non-blocking socket from a chosen 127.0.0.x source
// address (IP_BIND_ADDRESS_NO_PORT, so ports are picked per 4-tuple) and does
// the client handshake, waiting in poll(2). DialMany runs a few dialers in
// parallel and says when a machine limit (EMFILE, no free port) stopped it.
// DialManyTCP does the same without the WebSocket handshake (HTTP).
// RunEcho, RunFanout and RunHTTP then drive the connections from a few goroutines,
// each owning an epoll set, a timerfd for fixed-rate sends and its
// connections: no goroutine per connection, no locks on the data path.
// Messages are pre-encoded (masked client frames) once per connection;
// K-frame batches go out in one write. Latency goes into HDR histograms in
// nanoseconds; fixed-rate runs stamp the intended send time, so a stalled
// server shows up as latency (no coordinated omission).
//
// Fan-out speaks a pub/sub protocol through a FanoutProtocol: Bcast (raw
// broadcast), SMQ (the broker's protocol, §1 of smq-protocol.md, with its
// own tiny encoders so it imports no project package) and NATS (the NATS
// text protocol as a byte stream inside WebSocket messages). Closed-loop
// fan-out tracks each outstanding publish in a slot shared by every loop
// (atomic remaining count and generation); the loop that sees the last
// delivery hands the slot back to the publisher's loop (its own list, or
// the owner's mutex-guarded list plus an eventfd wake-up).
//
// It is not a general WebSocket or HTTP client: no TLS, no fragmentation
// on send, inbound fragments are counted per final frame, no extensions;
// HTTP responses must carry Content-Length or chunked encoding.
//
// # Goroutines
//
// DialMany: parallel dialer goroutines, joined before it returns. RunEcho /
// RunFanout / RunHTTP: Loops goroutines, each the only user of its connections;
// results are read after they end. The caller's goroutine sleeps through the
// phases (warm-up, window, drain) and calls OnWindow at the window's edges.
//
// # Files
//
//	dial.go      ParseURL, DialTCP, DialWS, handshake, SourceAddrs, limit errors
//	dialmany.go  DialMany, DialManyTCP, CloseAll, RaiseFDLimit
//	frame.go     client frame encoding, frame parser
//	echo.go      RunEcho: closed loop and fixed rate echo driver
//	fanout.go    RunFanout, FanoutProtocol, Bcast, closed-loop slots
//	smq.go       SMQ fan-out adapter, SMQHandshake (rpc), SMQ encoders
//	nats.go      NATS-over-WebSocket fan-out adapter
//	http.go      RunHTTP, ParseHTTPResponse
package loadgen
