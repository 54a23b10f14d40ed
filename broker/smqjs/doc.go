// Package smqjs embeds and serves smq.js, Tarpon's browser client for SMQ.
//
// smq.js is a plain script that defines the global SMQ with the SMQ.Client
// API of the SMQ specification (docs/smq-protocol.md §3.1), written from that
// specification (nothing is copied from Real Time Logic's client). Pages load
// it from /rtl/smq.js, the path BAS/Mako use. In Node it also works, with the
// `ws` package as WebSocket (see the header of smq.js).
//
// What it is not: this package does not speak SMQ itself; the broker lives in
// package broker and the Go client in broker/client.
//
// # Goroutines
//
// Handler is stateless and safe for concurrent use from any number of
// net/http goroutines; Source must be treated as read-only.
//
// # Files
//
//	smq.js                 the browser client (served as is)
//	smqjs.go               Source (go:embed) and Handler
//	smqjs_test.go          Handler test, plus pure-JS checks run by node
//	smqjs_node_test.go     end-to-end: a real broker on loopback driven by
//	                       node test/js/<script>.js <url> (needs node and
//	                       node_modules/ws; fails when CI is set and they are
//	                       missing, skips otherwise)
package smqjs
