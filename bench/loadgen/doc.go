// Package loadgen is the benchmark load generator: a WebSocket client built
// from plain Linux system calls so it costs the machine as little as
// possible and never becomes the bottleneck by design.
//
// DialWS opens a non-blocking socket from a chosen 127.0.0.x source
// address (IP_BIND_ADDRESS_NO_PORT, so ports are picked per 4-tuple) and does
// the client handshake, waiting in poll(2). DialMany runs a few dialers in
// parallel and says when a machine limit (EMFILE, no free port) stopped it.
// RunEcho and RunFanout then drive the connections from a few goroutines,
// each owning an epoll set, a timerfd for fixed-rate sends and its
// connections: no goroutine per connection, no locks on the data path.
// Messages are pre-encoded (masked client frames) once per connection;
// K-frame batches go out in one write. Latency goes into HDR histograms in
// nanoseconds; fixed-rate runs stamp the intended send time, so a stalled
// server shows up as latency (no coordinated omission).
//
// It is not a general WebSocket client: no TLS, no fragmentation on send,
// inbound fragments are counted per final frame, no extensions.
//
// # Goroutines
//
// DialMany: parallel dialer goroutines, joined before it returns. RunEcho /
// RunFanout: Loops goroutines, each the only user of its connections;
// results are read after they end. The caller's goroutine sleeps through the
// phases (warm-up, window, drain) and calls OnWindow at the window's edges.
//
// # Files
//
//	dial.go      ParseURL, DialWS, handshake, SourceAddrs, limit errors
//	dialmany.go  DialMany, CloseAll, RaiseFDLimit
//	frame.go     client frame encoding, frame parser
//	echo.go      RunEcho: closed loop and fixed rate echo driver
//	fanout.go    RunFanout, FanoutProtocol, Bcast
package loadgen
