// Command smqdevice is an example SMQ "device" in Go: it connects to a
// Tarpon (or BAS/Mako) SMQ broker over the raw transport, subscribes to a
// command topic and publishes a JSON reading every second.
//
//	go run ./examples/smqdevice                       # broker at http://127.0.0.1:8080/smq.lsp
//	go run ./examples/smqdevice --uid kitchen --interval 500ms
//
// With the tarpon binary serving the examples app, open /smq/devices.lsp
// to see the readings and send a "blink" command back. An http(s):// URL
// uses the raw SMQ transport (SimpleMQ header, as the C and Python clients
// do); a ws(s):// URL uses WebSocket. The client reconnects on its own if
// the broker restarts, and stops on Ctrl-C.
//
// # Goroutines
//
// run runs on the main goroutine; the SMQ client (broker/client) owns
// one read goroutine that runs the command callback and reconnects. run
// publishes from the calling goroutine (client writes are synchronous).
//
// It is not a device driver or a simulator of anything real: the
// "temperature" is a sine wave.
//
// # Files
//
//	doc.go        this overview
//	main.go       flags, run (connect, subscribe to commands, publish readings)
//	main_test.go  the device against the project's broker on loopback (raw and WebSocket)
package main
