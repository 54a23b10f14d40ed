// Package smqlua is the Lua binding of Tarpon's SMQ broker: BAS's
// require"smq.hub" (shared/docs/smq-protocol.md §2; § numbers below refer
// to it) on top of package broker, for Lua code run by package scheduler.
//
// # Use
//
//	sockets := cosocket.Open(loop, reactor, cosocket.Config{})
//	sockets.Requests = ...                 // the lsp package resolves request objects
//	smq := smqlua.Open(loop, sockets, reactor, logger)
//	lspServer.Preload("smq.hub", smq.Loader) // or L.PreloadModule("smq.hub", smq.Loader)
//
// and in Lua (typically an app's .preload and one .lsp page):
//
//	smq = require"smq.hub".create{ authenticate = ..., onconnect = ... }
//	app.smq:connect(request)               -- in the broker's page
//
// The module has create(op) and isSMQ(request). create takes the §2.2
// options (authenticate, permittop, permitsubtop, onpublish, ondrop,
// onconnect, onclose, onmsg, readtmo (ms), keepidle/keepintv (s),
// queuesize, rndtid, log; and Tarpon's limits: maxtopics and
// maxsubscriptions per peer (default 1000 each, 0 = unlimited; past them
// requests get a denied ack), maxhubtopics for the whole broker (topic
// plus sub-topic names; absent or ≤ 0 means broker.DefaultMaxTopics,
// 100,000, math.huge means no limit; past it clients get denied acks and
// the methods that would create a name, create, createsub, subscribe,
// publish and observe by name, return nil, "broker: topic limit
// reached"), slowconsumer ("drop", the default, or
// "disconnect"), highwater (send queue bytes) and maxmessage (inbound
// WebSocket message bytes)) and returns a broker object with the §2.4
// methods: connect, create, createsub, publish, subscribe, unsubscribe,
// observe, unobserve, onmsg, gettid, etid2peer, sock2peer, peers, topics,
// subtopics, topic2tid, tid2topic, subtopic2tid, tid2subtopic, queuesize,
// setkeepalive, pubon, shutdown. Go code can reach the broker.Hub behind a
// broker object with Hub(v).
//
// # Goroutines
//
// The hub runs its hooks and server callbacks on event-loop goroutines;
// Lua runs only on the scheduler goroutine. Nothing here ever blocks an
// event loop on the scheduler:
//
//   - authenticate, permittop, permitsubtop and onpublish use the hub's Async
//     hook forms: the event loop posts the question to the scheduler and
//     returns; the Lua hook runs as a task (it may ba.sleep or do socket
//     I/O) and its answer goes back through the hub's done function, while
//     the hub buffers that peer's later input so acks stay in order. A hook
//     that fails answers "refuse" (Connack 2, denied ack, dropped publish).
//   - onconnect, onclose, ondrop, onmsg, subscribe's op.onmsg and observe's
//     callback are posted (payload copied) and run as tasks, in the order
//     the hub produced them; they may park, publish, subscribe...
//   - Broker methods run on the scheduler goroutine (Lua), call the hub
//     directly and never park; publish routes at once (the hub has no
//     server queue: queuesize() reports the configured size, 0 used).
//
// WriteMetrics sums every broker's broker.Stats: tarpon_smq_brokers,
// _peers, _handshaking, _topics, _subtopics (gauges), _publishes_total,
// _deliveries_total, _drops_total, _undelivered_total and
// _topics_refused_total (names refused by maxhubtopics) (counters).
//
// Open, Module.WriteMetrics and Hub may be called from any goroutine;
// Loader and everything Lua-facing on the scheduler goroutine only.
//
// # Differences from BAS
//
// Peers have no Lua socket: peer.sock and info.sock are absent, onclose's
// sock argument is nil, sock2peer always returns nil, and peers() yields
// etid, peer instead of sock, peer. peer.topics is always a table
// (TID → TID). onclose's err is 0 for a client Disconnect or EOF, else
// "reconnect", "sysshutdown" (broker:shutdown), "corrupt frame",
// "protocol error", "slow consumer", "bad fragment", "backlog" or the
// transport's error text. The info table has arg, seed, url, uid, info,
// data (query string, first value per name), header (canonical names),
// peername, and uname/session when the request object has user() and
// session() methods that return them. publish also accepts a number as
// data (sent as its text).
//
// Beware: in gopher-lua, t[n] = v with an integer 1 ≤ n < 2^26 grows the
// array part up to n. ETIDs and TIDs are random 32-bit numbers, so using
// one as a table key can allocate up to 1 GiB. Key Lua tables by
// tostring(etid), not etid. (peer.topics uses the hash part for such IDs:
// pairs() sees them; plain indexing does only for IDs < 2^16 or ≥ 2^26.)
//
// # What it is not
//
// Not the hub (package broker), not an SMQ client (broker/client, smq.js),
// no smq.cluster, no deprecated smq.broker wrapper. It does not set up the
// VM: whoever does registers Loader.
//
// # Files
//
//	doc.go      this overview
//	module.go   Module, Open, Loader, WriteMetrics, Hub; create and its options; hooks; peer and info tables; connect; the log option
//	methods.go  the broker object's methods (§2.4)
//	json.go     decoded JSON → Lua for subscribe{json=true} (tables are encoded with scheduler.EncodeJSON)
//
// Tests: smqlua_test.go runs every Test* function of testdata/*.lua as a
// subtest, with a Go SMQ client (broker/client) exposed to Lua as smqc
// over loopback (WebSocket, raw with and without the HTTP 200, Connect v2):
// testdata/hub.lua covers the module, testdata/example_app.lua runs the
// example app's .preload (examples/www) the way its pages and the Go
// device use it. smqlua_test.go also tests the log option and
// WriteMetrics; json_test.go the JSON conversions (FuzzJSONRoundTrip).
package smqlua
