// Package client is Tarpon's Go SMQ client, written from the SMQ
// specification (docs/smq-protocol.md §1 wire format, §3 client APIs).
//
// It speaks both transports: WebSocket (one SMQ message per binary message,
// client-masked frames; handshake by github.com/gobwas/ws) and the raw
// socket (HTTP bootstrap with "SimpleMQ: 1", optionally
// "SendSmqHttpResponse: true" and an HTTP 200 first; then u16 length-prefixed
// messages), with Connect v1 (smq.js, Lua, Python) or v2 (C client). Large
// raw publishes can be split into PubFrag fragments. The API follows smq.js
// in Go terms: Dial, Subscribe / SubscribeWait (topics, "self", sub-topics),
// Create / CreateSub, Publish (names) / PublishTo (IDs), Unsubscribe,
// Observe / Unobserve, Etid, Close, plus reconnect with or without clean
// start.
//
// What it is not: not a broker (see package broker), not the browser client
// (broker/smqjs), and it keeps no state across a process restart. It has its
// own tiny codec (codec.go) so that it does not depend on the broker package.
//
// # Goroutines
//
// Each Client owns one read goroutine (started by Dial, ended by Close, a
// broker Disconnect, or a lost connection without Options.Reconnect). It
// reads and dispatches every message, runs every callback in arrival order,
// and performs reconnects. All exported methods are safe for concurrent use;
// the blocking ones (Create, CreateSub, SubscribeWait, Close) must not be
// called from a callback, since only the read goroutine can deliver what
// they wait for (use Subscribe, Publish, PublishTo and CloseAsync there).
//
// Writes are synchronous: the calling goroutine frames the message into the
// connection's buffer under its write lock and writes it in one call.
// PublishTo allocates nothing in steady state, and a received Message.Data
// aliases the read buffer (valid only during the callback), so the read path
// allocates nothing either.
//
// # Locks
//
// Client.mu (IDs, callbacks, pending acks) may be held while taking a
// transport's wmu, never the reverse; callbacks run with neither held.
//
// # Files
//
//	client.go     Options, Client, Dial, the API, dispatch, reconnect/restore
//	transport.go  dialing (WebSocket / raw bootstrap), framing, read loop I/O
//	codec.go      message types, encoders/decoders, errors
package client
