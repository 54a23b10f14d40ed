// Package loadgen is the benchmark load generator: WebSocket, SMQ and HTTP
// clients built from plain Linux system calls so they cost the machine as
// little as possible and never become the bottleneck by design.
//
// Dial opens a non-blocking socket from a chosen 127.0.0.x source address
// (IP_BIND_ADDRESS_NO_PORT, so ports are picked per 4-tuple), runs the TLS
// handshake for wss:// and https://, then the handshake of its Kind: the
// WebSocket upgrade, none (HTTP keep-alive), SMQ's raw bootstrap (the C
// client's request on an http(s):// URL; messages then carry a u16 length
// prefix), or a whole SMQ handshake through Connack; it waits in poll(2).
// DialMany runs a few dialers in parallel and says when a machine limit
// (EMFILE, no free port) stopped it.
//
// TLS without a goroutine per connection: crypto/tls runs over fdLink, the
// connection's socket. Once a loop owns the connection a read that would
// block returns a temporary net.Error (crypto/tls keeps a partial record
// and carries on later) and encrypted output goes to the loop's write
// queue, so the loops stay non-blocking; they read a TLS connection until
// the socket is dry, since records buffered inside crypto/tls do not wake
// epoll again.
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
// It is not a general WebSocket or HTTP client: no fragmentation on send,
// inbound fragments are counted per final frame, no extensions, no TLS
// session resumption (every connection pays a full handshake); HTTP
// responses must carry Content-Length or chunked encoding.
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
//	dial.go      ParseURL, Kind, Dial, DialTCP, WebSocket handshake, SourceAddrs, limit errors
//	conn.go      Conn, fdLink (TLS over the non-blocking socket), blocking handshake I/O, CloseAll
//	dialmany.go  DialMany, RaiseFDLimit
//	wside.go     the I/O side every driver connection shares: write queue, EPOLLOUT, TLS, framing
//	frame.go     client frame encoding, frame parser, SMQ's u16 length prefix
//	echo.go      RunEcho: closed loop and fixed rate echo driver
//	fanout.go    RunFanout, FanoutProtocol, Bcast, closed-loop slots
//	smq.go       SMQ fan-out adapter, the SMQ handshake (KindSMQ), SMQ encoders
//	nats.go      NATS-over-WebSocket fan-out adapter
//	http.go      RunHTTP, ParseHTTPResponse
//	progress.go  Progress: live counts for a progress line
package loadgen
