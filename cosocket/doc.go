// Package cosocket implements BAS's ba.socket Lua API over the runtime's
// connections: Lua coroutines drive sockets as cosockets.
//
// A socket object is Lua userdata whose Go side is a Socket. Its connection
// lives in the reactor (package runtime) and holds no goroutine; the
// coroutine that owns it is a scheduler task. sock:read() parks the task.
// When the event loop receives a message and the VM is free, the loop itself
// resumes the reader with it (a scheduler.Runner turn): Lua answers, and the
// answer is queued on the connection, whose callback is still running, so
// the loop writes it when the callback ends: read, Lua and write on one
// thread, as in BAS's single dispatcher. When the VM is busy the message
// goes into the socket's rx queue and one delivery per burst is queued for
// the VM's holder. Writes from elsewhere go straight to the runtime's send
// queue (small ones written at once, see runtime.Conn.SendBatched): a
// cosocket writer parks while the queue is over its high-water mark and
// resumes on the runtime's drain callback; any other writer (a page, a
// timer, a thread job) gets nil, queuedBytes past sock:queuelen() instead,
// as in BAS.
//
// # Goroutines
//
// Everything that touches Lua runs on the VM's current owner: the scheduler
// goroutine, or an event loop through its Runner (Lib keeps one per loop,
// created by the loop on its first message). The runtime calls Socket's
// Handler methods on event loops; they lock the rx queue and run or queue a
// delivery, never wait. Connects, DNS lookups and TLS handshakes run on a
// short-lived goroutine per call (the caller's task parks); a listen socket
// has one accept goroutine. req2sock performs the 101 hand-off (a short
// write to a fresh socket and an enrolment that waits for an event loop) on
// the scheduler goroutine: called in a Runner turn, it parks the task and
// finishes there.
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
