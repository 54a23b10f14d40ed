// Package cosocket implements BAS's ba.socket Lua API over the runtime's
// connections: Lua coroutines drive sockets as cosockets.
//
// A socket object is Lua userdata whose Go side is a Socket. Its connection
// lives in the reactor (package runtime) and holds no goroutine; the
// coroutine that owns it is a scheduler task. sock:read() parks the task;
// when the event loop receives a message it copies it into the socket's rx
// queue and posts one delivery per burst to the scheduler, which resumes the
// reader. Writes go straight to the runtime's send queue from the VM
// goroutine: a cosocket writer parks while the queue is over its high-water
// mark and resumes on the runtime's drain callback; any other writer (a page,
// a timer, a thread job) gets nil, queuedBytes past sock:queuelen() instead,
// as in BAS.
//
// # Goroutines
//
// Everything that touches Lua runs on the scheduler goroutine. The runtime
// calls Socket's Handler methods on event loops; they only lock the rx queue
// and post. Connects, DNS lookups and TLS handshakes run on a short-lived
// goroutine per call (the caller's task parks); a listen socket has one
// accept goroutine. req2sock performs the 101 hand-off on the scheduler
// goroutine: a short write to a fresh socket and an enrolment.
//
// # What it is not
//
// No UDP (udpcon, sendto), no sock2req/http2sock (use ba.socket.wsconnect
// for WebSocket clients), no partial-frame reads: read returns whole
// WebSocket messages up to the reactor's MaxMessage. It does not know about
// HTTP requests: the lsp package supplies Lib.Requests.
//
// # Files
//
//	lib_socket.go  Lib, Config, Open; the ba.socket module and socket methods
//	socket.go      Socket: the rx queue, waiters, close and state
//	connect.go     connect, wsconnect, bind/accept
package cosocket
