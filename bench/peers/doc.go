// Package peers holds the servers `tarpon bench` compares, each registered
// by name and started in its own process by `tarpon bench-peer NAME`:
//
//	tarpon-echo    the project's runtime: Reactor.Upgrade at /echo (text stays
//	               text), Reactor.Morph raw echo at /raw; no goroutine per conn
//	tarpon-bcast   runtime broadcast at /bcast: one shared frame (SendEncoded)
//	gorilla-echo   goroutine per connection, gorilla/websocket (its example
//	               echo: ReadMessage / WriteMessage) at /echo
//	gorilla-bcast  gorilla broadcast at /bcast: one writer goroutine and one
//	               WriteMessage per subscriber per message
//	nbio-echo      lesismal/nbio nbhttp engine + websocket upgrader at /echo
//	nbio-bcast     nbio broadcast at /bcast: one WriteMessage per subscriber
//	tarpon-smq     the SMQ broker (broker.New on the runtime) at /smq, both
//	               transports; its server-side client answers every publish
//	               to ETID 1 by publishing it back to the sender (rpc)
//	nats           nats-server v2 embedded, WebSocket listener on the peer's
//	               address (no TLS, any path), NATS text protocol
//	tarpon-lua     the real app server stack (runtime, scheduler, cosocket,
//	               smq.hub, lsp) serving the embedded examples app at /:
//	               /ws/echo.lsp is the Lua cosocket echo, / an LSP page
//
// Broadcast peers treat a connection opened with ?pub=1 as a publisher
// that receives nothing; every message any client sends is written to every
// other (receiving) connection. Every peer serves the same admin JSON
// (Stats) through AdminHandler: GET /stats, GET /gc.
//
// It is not a test fixture and not an example of how to write servers: each
// peer is the plain, idiomatic use of its library, so the comparison is fair.
//
// # Goroutines
//
// Each library owns its own: net/http's accept and (for gorilla) handler
// goroutines, nbio's pollers and handler pool, the runtime's event loops
// (tarpon-smq's server-side replies run on the publisher's loop), the
// nats-server's per-client goroutines, tarpon-lua's one Lua scheduler
// goroutine.
// Shared state (connection counts, broadcast subscriber lists) is atomic or
// copy-on-write behind a mutex, read lock-free on the message path.
//
// # Files
//
//	peers.go    Server, Register, Start, Stats, AdminHandler, ServeAdmin, connSet
//	gorilla.go  gorilla-echo, gorilla-bcast
//	nbio.go     nbio-echo, nbio-bcast
//	tarpon.go   tarpon-echo, tarpon-bcast (package runtime)
//	smq.go      tarpon-smq (package broker)
//	nats.go     nats (github.com/nats-io/nats-server/v2)
//	lua.go      tarpon-lua (runtime, scheduler, cosocket, smqlua, lsp, examples)
package peers
