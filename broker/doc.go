// Package broker is Tarpon's SMQ broker ("hub"), wire-compatible with Real
// Time Logic's BAS/Mako SMQ hub and its official clients
// (shared/docs/smq-protocol.md is the contract; § numbers below refer to it).
//
// It contains the wire codec (Decode, AppendXxx, SplitLen16), the hub
// (topic↔TID and ETID↔peer tables, subscriptions, observers, routing,
// hooks), the HTTP bootstrap onto the runtime reactor (WebSocket and raw
// length-prefixed transports), and the server-side client in Go.
//
// It is not: a Lua binding (broker/smqlua), a Go SMQ client (broker/client),
// a cluster (smq.cluster/mtl are not implemented), or a persistence layer
// (SMQ keeps no session state, §1.6). It imports the project's runtime only,
// and only in serve.go.
//
// # Goroutines
//
// Peers hold no goroutine. Each peer's messages are handled on its
// connection's event-loop goroutine (runtime.Handler callbacks), strictly in
// arrival order (§1.12). A publish is routed on the publisher's loop: it
// looks the destination up in an idTable (lock-free reads), loads the
// topic's copy-on-write subscriber slice, encodes the message once per
// transport (runtime.AppendServerFrame / runtime.AppendLen16) and queues the
// same bytes to every recipient (Conn.TrySendEncoded) through the
// publisher's callback batch (runtime.Conn.CallbackBatch): once the loop has
// handled the events of its wake-up it writes every recipient's queue
// itself, one write per recipient for all the publishes of that pass, and
// wakes no other loop. Server-side publishes use a batch of their own,
// written before Publish returns. Sends never block; a congested recipient
// gets the SlowConsumer policy.
//
// # Memory per idle client
//
// A connected client costs its runtime.Conn, a 112-byte Peer (rarely
// needed state is in peerMore), its UID string (shared with the UID
// table's key) and one slot in each of the UID table and an idTable.
// ConnectInfo goes once OnConnect has returned.
//
// Hooks run on the loop of the peer concerned, outside the hub lock.
// Server-side callbacks run on whichever goroutine routed the message (a
// loop for client publishes, the caller of Hub.Publish otherwise). Neither
// may block. The Async hook forms return at once; their done may be
// called from any goroutine and brings the answer back to the peer's loop
// with Conn.Execute, while the peer's later input waits in a bounded
// backlog. The Connect read timeout runs on a time.AfterFunc goroutine.
// A peer can be terminated from another goroutine (same-UID takeover on the
// new peer's loop, slow consumer on a publisher's loop, Shutdown's caller);
// terminate is idempotent and the transport's OnClose only finishes it.
//
// # Locks
//
// Hub.mu guards the name tables, UID table, observer sets, subscriber-set
// replacement and per-peer subscription/observer maps. It is never held
// while calling a hook, a server callback, or Conn.Close (the runtime may
// call OnClose, which takes Hub.mu). Conn.Send/SendEncoded are called under
// it (they only queue). peerMore.umu guards user data only and nests
// inside nothing. The publish path takes no lock: Hub.topicIDs and
// Hub.peerIDs (idTable), topic.subs (atomic.Pointer to an immutable slice)
// and the server callback snapshot (atomic.Pointer to an immutable map)
// are read lock-free.
//
// # Files
//
//	doc.go      this overview
//	packet.go   MsgType, ConnackCode, Packet, Decode, AppendPacket (§1.4, §1.5)
//	codec.go    AppendXxx encoders, AppendLen16, SplitLen16 (§1.2, §1.5)
//	hooks.go    Hooks, Options, SlowConsumerPolicy, Message, close reasons
//	hub.go      Hub, ID allocation, Stats, route (publish fan-out), server delivery
//	peer.go     Peer, handshake (§1.6), per-message handling, PubFrag, terminate
//	idtable.go  idTable: ID → topic or peer, lock-free reads, for the publish path
//	topics.go   topic, copy-on-write subscriber sets, observers and Change (§1.9)
//	server.go   the server-side client API (§2.4): Publish, Subscribe, Observe, lookups
//	serve.go    New, IsSMQ, ServeHTTP/Connect: HTTP bootstrap onto the reactor (§1.2)
//
// Tests: packet_test.go and packet_fuzz_test.go (golden vectors in
// testdata/packets.json, FuzzDecode, FuzzDecodeSplit), hub_test.go and
// async_test.go (hub logic over fake connections, fake_test.go),
// hub_fuzz_test.go (FuzzPeerInput), idtable_test.go (against a map, and
// readers racing the writer), serve_test.go (real loopback sockets:
// WebSocket via gorilla, raw over net.Conn), limits_test.go (Options.MaxTopics
// over loopback: denied acks, ErrTopicLimit, the counter, one log line,
// churning peers, racing creators), bench_test.go (BenchmarkFanout).
//
// # Limits
//
// Topic and sub-topic names are never freed (§1.7: a name keeps its TID for
// the hub's lifetime, so clients that reconnect see the same TIDs, even for
// a topic nobody subscribes to, observes or references any more). The
// tables are bounded instead: MaxTopicsPerPeer per peer, and MaxTopics
// (default DefaultMaxTopics, 100,000) for the whole hub, checked where every
// new name enters them (newTopicLocked, subtopicLocked). A refused client
// request gets a denied ack and the peer stays connected; the server-side
// API returns ErrTopicLimit; Stats.TopicsRefused counts it and the log gets
// at most one line per 10 s.
//
// Differences from BAS, by design (§1.14): Unobserve removes only the
// observer; a closing peer leaves every observer list; payloads over 0xFFF0
// are not forwarded to raw peers (counted in Stats.Oversize). The Connect
// v2 max-size is recorded (Peer.MaxSize) but not enforced. Server publishes are routed synchronously, so BAS's
// publish queue (QueueSize) is never used.
package broker
