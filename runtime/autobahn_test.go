package runtime

// RFC 6455 conformance, modelled on the Autobahn TestSuite fuzzingclient
// cases (sections 1–7, 9 and 10; 12/13 are permessage-deflate, which the
// runtime does not negotiate). Autobahn itself needs Docker and Python, so
// the cases are rebuilt here as tables of hand-made client frames; the echo
// cases are driven a second time by an independent client implementation
// (coder/websocket). Case names carry the Autobahn case number they follow.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	goruntime "runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// First bytes of client frames: FIN bit plus opcode.
const (
	finText   = 0x81
	finBinary = 0x82
	finCont   = 0x80
	finClose  = 0x88
	finPing   = 0x89
	finPong   = 0x8a
	fragText  = 0x01 // text, FIN clear: a fragmented message begins
	fragBin   = 0x02
	fragCont  = 0x00
	rsv1      = 0x40
	rsv2      = 0x20
	rsv3      = 0x10
)

// wantFrame is one frame the client expects from the server next.
type wantFrame struct {
	op      byte   // opcode; the server must always set FIN and no RSV bit
	payload []byte // data and pong frames: the exact payload
	code    uint16 // close frames: the status code
}

func echoText(s string) wantFrame     { return wantFrame{op: 0x1, payload: []byte(s)} }
func echoBinary(b []byte) wantFrame   { return wantFrame{op: 0x2, payload: b} }
func pongOf(b []byte) wantFrame       { return wantFrame{op: 0xa, payload: b} }
func closeWant(code uint16) wantFrame { return wantFrame{op: 0x8, code: code} }

func (w wantFrame) String() string {
	if w.op == 0x8 {
		return fmt.Sprintf("close %d", w.code)
	}
	return fmt.Sprintf("op %#x with %d bytes", w.op, len(w.payload))
}

// abStep writes each of writes as its own TCP write, then reads want. A case
// made of several steps synchronises on the server's answers between them, so
// the server is certain to see the later bytes in a separate read.
type abStep struct {
	writes [][]byte
	want   []wantFrame
}

// abMsg is an echo case's message for the second client implementation.
type abMsg struct {
	text    bool
	payload []byte
	frag    int // >0: written in fragments of this size
}

// abCase is one conformance case. The expected behaviour is the want frames
// in order. A case whose last frame is not a close must leave the connection
// open and serving: a probe message is echoed as the very next frame (so
// anything the case should have ignored really was ignored). A close must be
// followed by the end of the TCP connection.
type abCase struct {
	name  string
	steps []abStep
	msg   *abMsg
}

// single is a one-step case.
func single(name string, writes [][]byte, want ...wantFrame) abCase {
	return abCase{name: name, steps: []abStep{{writes: writes, want: want}}}
}

// oneWrite concatenates frames into one TCP write.
func oneWrite(frames ...[]byte) [][]byte { return [][]byte{bytes.Join(frames, nil)} }

// chop cuts the concatenated frames into TCP writes of n bytes.
func chop(n int, frames ...[]byte) [][]byte {
	b := bytes.Join(frames, nil)
	var out [][]byte
	for len(b) > n {
		out = append(out, b[:n])
		b = b[n:]
	}
	return append(out, b)
}

// fragments encodes payload as a message of frames carrying size bytes each.
func fragments(text bool, payload []byte, size int) [][]byte {
	op := byte(0x2)
	if text {
		op = 0x1
	}
	var frames [][]byte
	for first := true; ; first = false {
		n := min(size, len(payload))
		b0 := byte(0)
		if first {
			b0 = op
		}
		if n == len(payload) {
			b0 |= 0x80
		}
		frames = append(frames, clientFrame(b0, payload[:n]))
		payload = payload[n:]
		if b0&0x80 != 0 {
			return frames
		}
	}
}

// echoCase is a message the server must echo, sent in chops of chopSize bytes
// (0: one write) and, with fragSize > 0, as fragments of that size.
func echoCase(name string, text bool, payload []byte, fragSize, chopSize int) abCase {
	var frames [][]byte
	if fragSize > 0 {
		frames = fragments(text, payload, fragSize)
	} else {
		b0 := byte(finBinary)
		if text {
			b0 = finText
		}
		frames = [][]byte{clientFrame(b0, payload)}
	}
	writes := oneWrite(frames...)
	if chopSize > 0 {
		writes = chop(chopSize, frames...)
	}
	want := echoBinary(payload)
	if text {
		want = echoText(string(payload))
	}
	tc := single(name, writes, want)
	tc.msg = &abMsg{text: text, payload: payload, frag: fragSize}
	return tc
}

// closeFrame builds a client close frame with code and reason.
func closeFrame(code uint16, reason string) []byte {
	return clientFrame(finClose, append(binary.BigEndian.AppendUint16(nil, code), reason...))
}

func autobahnCases() []abCase {
	var cases []abCase
	add := func(c ...abCase) { cases = append(cases, c...) }
	stars := func(n int) []byte { return bytes.Repeat([]byte("*"), n) }
	bin := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*7 + 3)
		}
		return b
	}

	// 1: framing.
	for _, n := range []int{0, 125, 126, 127, 128, 65535, 65536} {
		add(echoCase(fmt.Sprintf("1.1 text of %d bytes", n), true, stars(n), 0, 0))
		add(echoCase(fmt.Sprintf("1.2 binary of %d bytes", n), false, bin(n), 0, 0))
	}
	add(echoCase("1.1.8 text of 65536 bytes in 997-byte chops", true, stars(65536), 0, 997))
	add(echoCase("1.2.8 binary of 65536 bytes in 997-byte chops", false, bin(65536), 0, 997))
	add(echoCase("1.x text of 300 bytes one byte per write", true, stars(300), 0, 1))
	add(echoCase("1.x binary of 70000 bytes with header cut after 5 bytes", false, bin(70000), 0, 5))

	// 2: pings and pongs.
	pingBin := []byte{0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff}
	add(
		single("2.1 ping without payload", oneWrite(clientFrame(finPing, nil)), pongOf(nil)),
		single("2.2 ping with text payload", oneWrite(clientFrame(finPing, []byte("Hello, world!"))), pongOf([]byte("Hello, world!"))),
		single("2.3 ping with binary payload", oneWrite(clientFrame(finPing, pingBin)), pongOf(pingBin)),
		single("2.4 ping with 125-byte payload", oneWrite(clientFrame(finPing, stars(125))), pongOf(stars(125))),
		single("2.5 ping with 126-byte payload closes 1002", oneWrite(clientFrame(finPing, stars(126))), closeWant(CloseProtocolError)),
		single("2.6 ping with 125-byte payload one byte per write", chop(1, clientFrame(finPing, stars(125))), pongOf(stars(125))),
		single("2.7 unsolicited pong without payload is ignored", oneWrite(clientFrame(finPong, nil))),
		single("2.8 unsolicited pong with payload is ignored", oneWrite(clientFrame(finPong, []byte("unsolicited")))),
		single("2.9 unsolicited pong then ping answers the ping only",
			oneWrite(clientFrame(finPong, []byte("unsolicited")), clientFrame(finPing, []byte("solicited"))), pongOf([]byte("solicited"))),
	)
	var tenPings [][]byte
	var tenPongs []wantFrame
	for i := range 10 {
		p := []byte(fmt.Sprintf("ping %d", i))
		tenPings = append(tenPings, clientFrame(finPing, p))
		tenPongs = append(tenPongs, pongOf(p))
	}
	add(
		single("2.10 ten pings in one write", oneWrite(tenPings...), tenPongs...),
		single("2.11 ten pings in separate writes", tenPings, tenPongs...),
	)

	// 3: reserved bits without an extension.
	add(
		single("3.1 text with RSV1 closes 1002", oneWrite(clientFrame(finText|rsv1, []byte("Hello"))), closeWant(CloseProtocolError)),
		single("3.2 text, text with RSV2, ping: echo then 1002 and no pong",
			oneWrite(clientFrame(finText, []byte("Hello")), clientFrame(finText|rsv2, []byte("Hello")), clientFrame(finPing, nil)),
			echoText("Hello"), closeWant(CloseProtocolError)),
		abCase{name: "3.3 as 3.2 with RSV1|RSV2 in separate writes", steps: []abStep{
			{writes: [][]byte{clientFrame(finText, []byte("Hello"))}, want: []wantFrame{echoText("Hello")}},
			{writes: [][]byte{clientFrame(finText|rsv1|rsv2, []byte("Hello")), clientFrame(finPing, nil)}, want: []wantFrame{closeWant(CloseProtocolError)}},
		}},
		single("3.4 text with RSV3 one byte per write closes 1002",
			chop(1, clientFrame(finText, []byte("Hello")), clientFrame(finText|rsv3, []byte("Hello")), clientFrame(finPing, nil)),
			echoText("Hello"), closeWant(CloseProtocolError)),
		single("3.5 binary with RSV1|RSV3 closes 1002", oneWrite(clientFrame(finBinary|rsv1|rsv3, bin(8))), closeWant(CloseProtocolError)),
		single("3.6 ping with RSV2|RSV3 closes 1002", oneWrite(clientFrame(finPing|rsv2|rsv3, []byte("Hello"))), closeWant(CloseProtocolError)),
		single("3.7 close with all RSV bits closes 1002", oneWrite(clientFrame(finClose|rsv1|rsv2|rsv3, nil)), closeWant(CloseProtocolError)),
	)

	// 4: reserved opcodes.
	for _, op := range []byte{3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf} {
		add(
			single(fmt.Sprintf("4.x reserved opcode %#x closes 1002", op), oneWrite(clientFrame(0x80|op, nil)), closeWant(CloseProtocolError)),
			single(fmt.Sprintf("4.x text, reserved opcode %#x with payload, ping: echo then 1002", op),
				oneWrite(clientFrame(finText, []byte("Hello")), clientFrame(0x80|op, []byte("reserved")), clientFrame(finPing, nil)),
				echoText("Hello"), closeWant(CloseProtocolError)),
		)
	}

	// 5: fragmentation.
	add(
		single("5.1 fragmented ping closes 1002", oneWrite(clientFrame(0x09, []byte("frag1")), clientFrame(finCont, []byte("frag2"))), closeWant(CloseProtocolError)),
		single("5.2 fragmented pong closes 1002", oneWrite(clientFrame(0x0a, []byte("frag1")), clientFrame(finCont, []byte("frag2"))), closeWant(CloseProtocolError)),
		single("5.3 text in two fragments", oneWrite(clientFrame(fragText, []byte("frag1")), clientFrame(finCont, []byte("frag2"))), echoText("frag1frag2")),
		single("5.4 text in two fragments in separate writes", [][]byte{clientFrame(fragText, []byte("frag1")), clientFrame(finCont, []byte("frag2"))}, echoText("frag1frag2")),
		single("5.6 ping between fragments", oneWrite(clientFrame(fragText, []byte("frag1")), clientFrame(finPing, []byte("ping")), clientFrame(finCont, []byte("frag2"))),
			pongOf([]byte("ping")), echoText("frag1frag2")),
		abCase{name: "5.7 ping between fragments, server reads them separately", steps: []abStep{
			{writes: [][]byte{clientFrame(fragText, []byte("frag1")), clientFrame(finPing, []byte("ping"))}, want: []wantFrame{pongOf([]byte("ping"))}},
			{writes: [][]byte{clientFrame(finCont, []byte("frag2"))}, want: []wantFrame{echoText("frag1frag2")}},
		}},
		single("5.8 ping between fragments one byte per write",
			chop(1, clientFrame(fragText, []byte("frag1")), clientFrame(finPing, []byte("ping")), clientFrame(finCont, []byte("frag2"))),
			pongOf([]byte("ping")), echoText("frag1frag2")),
		single("5.9 continuation with FIN without a message closes 1002", oneWrite(clientFrame(finCont, []byte("non-continuation payload")), clientFrame(finText, []byte("Hello"))), closeWant(CloseProtocolError)),
		single("5.10 as 5.9 one byte per write", chop(1, clientFrame(finCont, []byte("non-continuation payload")), clientFrame(finText, []byte("Hello"))), closeWant(CloseProtocolError)),
		single("5.12 continuation without FIN without a message closes 1002", oneWrite(clientFrame(fragCont, []byte("non-continuation payload")), clientFrame(finText, []byte("Hello"))), closeWant(CloseProtocolError)),
		single("5.15 message, stray continuation: echo then 1002",
			oneWrite(clientFrame(fragText, []byte("fragment1")), clientFrame(finCont, []byte("fragment2")), clientFrame(fragCont, []byte("fragment3")), clientFrame(finText, []byte("fragment4"))),
			echoText("fragment1fragment2"), closeWant(CloseProtocolError)),
		single("5.17 new text frame inside a fragmented message closes 1002",
			oneWrite(clientFrame(fragText, []byte("fragment1")), clientFrame(finText, []byte("fragment2"))), closeWant(CloseProtocolError)),
		single("5.18 new binary start inside a fragmented text message closes 1002",
			oneWrite(clientFrame(fragText, []byte("fragment1")), clientFrame(fragBin, []byte("fragment2")), clientFrame(finCont, []byte("fragment3"))), closeWant(CloseProtocolError)),
		single("5.x fragmented close closes 1002", oneWrite(clientFrame(0x08, []byte{0x03, 0xe8}), clientFrame(finCont, nil)), closeWant(CloseProtocolError)),
		single("5.x binary in three fragments", oneWrite(clientFrame(fragBin, []byte{1, 2}), clientFrame(fragCont, []byte{3}), clientFrame(finCont, []byte{4, 5})), echoBinary([]byte{1, 2, 3, 4, 5})),
		abCase{name: "5.19 text in five fragments with pings, server reads them separately", steps: []abStep{
			{writes: [][]byte{clientFrame(fragText, []byte("f1")), clientFrame(fragCont, []byte("f2")), clientFrame(finPing, []byte("p1"))}, want: []wantFrame{pongOf([]byte("p1"))}},
			{writes: [][]byte{clientFrame(fragCont, []byte("f3")), clientFrame(fragCont, []byte("f4")), clientFrame(finPing, []byte("p2"))}, want: []wantFrame{pongOf([]byte("p2"))}},
			{writes: [][]byte{clientFrame(finCont, []byte("f5"))}, want: []wantFrame{echoText("f1f2f3f4f5")}},
		}},
		single("5.x data after a completed fragmented message is a new message",
			oneWrite(clientFrame(fragText, []byte("a")), clientFrame(finCont, []byte("b")), clientFrame(fragBin, []byte("c")), clientFrame(finCont, []byte("d"))),
			echoText("ab"), echoBinary([]byte("cd"))),
	)

	// 6: UTF-8.
	valid := []struct{ name, s string }{
		{"6.2.1 mixed Latin", "Hello-µ@ßöäüàá-UTF-8!!"},
		{"6.5.1 Greek kosme", "κόσμε"},
		{"6.6 U+0080 first 2-byte", "\u0080"},
		{"6.6 U+07FF last 2-byte", "\u07ff"},
		{"6.6 U+0800 first 3-byte", "\u0800"},
		{"6.6 U+D7FF before surrogates", "\ud7ff"},
		{"6.6 U+E000 after surrogates", "\ue000"},
		{"6.6 U+FFFF last 3-byte", "\uffff"},
		{"6.6 U+10000 first 4-byte", "\U00010000"},
		{"6.6 U+10FFFF last code point", "\U0010ffff"},
		{"6.6 BOM and replacement char", "\ufeff\ufffd"},
	}
	for _, v := range valid {
		add(echoCase("valid "+v.name, true, []byte(v.s), 0, 0))
		add(echoCase("valid "+v.name+" fragmented per byte", true, []byte(v.s), 1, 0))
	}
	add(
		single("6.1.1 empty text", oneWrite(clientFrame(finText, nil)), echoText("")),
		single("6.1.2 fragmented empty text", oneWrite(clientFrame(fragText, nil), clientFrame(fragCont, nil), clientFrame(finCont, nil)), echoText("")),
		single("6.1.3 text with empty first and last fragments", oneWrite(clientFrame(fragText, nil), clientFrame(fragCont, []byte("middle")), clientFrame(finCont, nil)), echoText("middle")),
		single("6.2.4 kosme fragmented inside code points, one byte per write", chop(1, fragments(true, []byte("κόσμε"), 3)...), echoText("κόσμε")),
	)
	invalid := []struct {
		name string
		b    []byte
	}{
		{"6.3.1 kosme with a surrogate", []byte("κόσμε\xed\xa0\x80edited")},
		{"6.x lone surrogate U+D800", []byte("\xed\xa0\x80")},
		{"6.x overlong slash 2-byte", []byte("\xc0\xaf")},
		{"6.x overlong slash 3-byte", []byte("\xe0\x80\xaf")},
		{"6.x overlong NUL 4-byte", []byte("\xf0\x80\x80\x80")},
		{"6.x beyond U+10FFFF", []byte("\xf4\x90\x80\x80")},
		{"6.x 5-byte sequence", []byte("\xf8\x88\x80\x80\x80")},
		{"6.x lone continuation byte", []byte("\x80")},
		{"6.x truncated 2-byte at end", []byte("abc\xce")},
		{"6.x truncated 4-byte at end", []byte("\xf0\x90\x80")},
		{"6.x byte 0xFE", []byte("\xfe")},
		{"6.x byte 0xFF", []byte("\xff")},
	}
	for _, v := range invalid {
		add(
			single("invalid "+v.name+" closes 1007", oneWrite(clientFrame(finText, v.b)), closeWant(CloseInvalidPayload)),
			single("invalid "+v.name+" fragmented per byte closes 1007", oneWrite(fragments(true, v.b, 1)...), closeWant(CloseInvalidPayload)),
		)
	}
	add(
		single("6.x message ends inside a code point across fragments closes 1007",
			oneWrite(clientFrame(fragText, []byte("κ")), clientFrame(finCont, []byte("ό")[:1])), closeWant(CloseInvalidPayload)),
		single("6.x invalid UTF-8 in a binary message is fine", oneWrite(clientFrame(finBinary, []byte("\xff\xfe"))), echoBinary([]byte("\xff\xfe"))),
		single("7.5.1 invalid UTF-8 in close reason closes 1007",
			oneWrite(closeFrame(CloseNormal, "κόσμε\xed\xa0\x80edited")), closeWant(CloseInvalidPayload)),
	)

	// 7: closing.
	add(
		single("7.1.1 echo then close", oneWrite(clientFrame(finText, []byte("Hello World!")), closeFrame(CloseNormal, "")), echoText("Hello World!"), closeWant(CloseNormal)),
		single("7.1.2 two closes get one reply", oneWrite(closeFrame(CloseNormal, ""), closeFrame(CloseNormal, "")), closeWant(CloseNormal)),
		single("7.1.3 ping after close is ignored", oneWrite(closeFrame(CloseNormal, ""), clientFrame(finPing, []byte("Hello"))), closeWant(CloseNormal)),
		single("7.1.4 text after close is ignored", oneWrite(closeFrame(CloseNormal, ""), clientFrame(finText, []byte("Hello"))), closeWant(CloseNormal)),
		single("7.1.5 close inside a fragmented message, continuation ignored",
			oneWrite(clientFrame(fragText, []byte("fragment1")), closeFrame(CloseNormal, ""), clientFrame(finCont, []byte("fragment2"))), closeWant(CloseNormal)),
		single("7.1.6 large message then close", oneWrite(clientFrame(finText, stars(256<<10)), closeFrame(CloseNormal, "")), echoText(string(stars(256<<10))), closeWant(CloseNormal)),
		single("7.3.1 empty close", oneWrite(clientFrame(finClose, nil)), closeWant(CloseNormal)),
		single("7.3.2 close with a 1-byte payload closes 1002", oneWrite(clientFrame(finClose, []byte{0x03})), closeWant(CloseProtocolError)),
		single("7.3.3 close with code only", oneWrite(closeFrame(CloseNormal, "")), closeWant(CloseNormal)),
		single("7.3.4 close with code and reason", oneWrite(closeFrame(CloseNormal, "Hello World!")), closeWant(CloseNormal)),
		single("7.3.5 close with 123-byte reason", oneWrite(closeFrame(CloseNormal, strings.Repeat("*", 123))), closeWant(CloseNormal)),
		single("7.3.6 close with 124-byte reason closes 1002", oneWrite(closeFrame(CloseNormal, strings.Repeat("*", 124))), closeWant(CloseProtocolError)),
	)
	for _, code := range []uint16{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999} {
		add(single(fmt.Sprintf("7.7 valid close code %d is echoed", code), oneWrite(closeFrame(code, "")), closeWant(code)))
	}
	for _, code := range []uint16{0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535} {
		add(single(fmt.Sprintf("7.9 invalid close code %d closes 1002", code), oneWrite(closeFrame(code, "")), closeWant(CloseProtocolError)))
	}

	// 9: limits and volume.
	add(
		echoCase("9.1 text of 1 MiB", true, stars(1<<20), 0, 0),
		echoCase("9.2 binary of 1 MiB", false, bin(1<<20), 0, 0),
		echoCase("9.3 text of 1 MiB in 64 KiB fragments", true, stars(1<<20), 64<<10, 0),
		echoCase("9.4 binary of 1 MiB in 4 KiB fragments", false, bin(1<<20), 4<<10, 0),
		echoCase("9.5 text of 256 KiB in 1000-byte chops", true, stars(256<<10), 0, 1000),
	)
	for _, m := range []struct {
		name string
		text bool
		size int
	}{{"9.7 1000 text messages of 16 bytes pipelined", true, 16}, {"9.8 1000 binary messages of 128 bytes pipelined", false, 128}} {
		var frames [][]byte
		var want []wantFrame
		for i := range 1000 {
			p := bytes.Repeat([]byte{byte('a' + i%26)}, m.size)
			if m.text {
				frames = append(frames, clientFrame(finText, p))
				want = append(want, echoText(string(p)))
			} else {
				frames = append(frames, clientFrame(finBinary, p))
				want = append(want, echoBinary(p))
			}
		}
		add(single(m.name, oneWrite(frames...), want...))
	}

	// 10: auto-fragmentation.
	add(
		echoCase("10.1.1 text of 65536 bytes in 1300-byte fragments", true, stars(65536), 1300, 0),
		echoCase("10.x binary of 65536 bytes in 1300-byte fragments, 997-byte chops", false, bin(65536), 1300, 997),
	)
	return cases
}

// TestAutobahnConformance runs every case on its own raw connection, then
// checks the server still answers on a long-lived coder/websocket connection.
func TestAutobahnConformance(t *testing.T) {
	ts := newTestServer(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	watcher := dialCoder(t, ctx, ts)
	names := map[string]bool{}
	for _, tc := range autobahnCases() {
		if names[tc.name] {
			t.Fatalf("duplicate case name %q", tc.name)
		}
		names[tc.name] = true
		t.Run(tc.name, func(t *testing.T) {
			runRawCase(t, ts, tc, false)
			// The server keeps serving.
			if err := watcher.Write(ctx, websocket.MessageText, []byte("still here")); err != nil {
				t.Fatalf("watcher write: %v", err)
			}
			if _, p, err := watcher.Read(ctx); err != nil || string(p) != "still here" {
				t.Fatalf("watcher read: %q %v", p, err)
			}
		})
	}
	if err := watcher.Close(websocket.StatusNormalClosure, "done"); err != nil {
		t.Fatalf("watcher close handshake: %v", err)
	}
}

// TestAutobahnBehindHandshake sends each case's first step in the same TCP
// write as the handshake request: net/http reads part of it ahead, and the
// hand-off must carry those bytes into the reactor and resume parsing there.
func TestAutobahnBehindHandshake(t *testing.T) {
	ts := newTestServer(t, Config{})
	for _, tc := range autobahnCases() {
		if len(bytes.Join(tc.steps[0].writes, nil)) > 64<<10 {
			continue
		}
		t.Run(tc.name, func(t *testing.T) { runRawCase(t, ts, tc, true) })
	}
}

func dialCoder(t testing.TB, ctx context.Context, ts *testServer) *websocket.Conn {
	t.Helper()
	return dialCoderURL(t, ctx, "ws://"+ts.addr+"/ws")
}

// dialCoderURL dials with coder/websocket, without its 32 KiB read limit.
func dialCoderURL(t testing.TB, ctx context.Context, url string) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadLimit(-1)
	t.Cleanup(func() { _ = c.CloseNow() })
	return c
}

// coderCloseStatus returns the close code and reason a coder/websocket error
// carries (-1 if it is not a close).
func coderCloseStatus(err error) (websocket.StatusCode, string) {
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Code, ce.Reason
	}
	return -1, ""
}

// runRawCase plays tc on a fresh connection; with behind, the first step's
// bytes go out in the handshake's own write.
func runRawCase(t *testing.T, ts *testServer, tc abCase, behind bool) {
	var c *rawWS
	if behind {
		c = ts.dialRaw(t, bytes.Join(tc.steps[0].writes, nil))
	} else {
		c = ts.dialRaw(t, nil)
	}
	closed := false
	for i, st := range tc.steps {
		expectClose := slices.ContainsFunc(st.want, func(w wantFrame) bool { return w.op == 0x8 })
		for _, w := range st.writes {
			if behind && i == 0 {
				break
			}
			if _, err := c.nc.Write(w); err != nil {
				// A server that has already closed for a protocol error
				// makes later chops fail (EPIPE, ECONNRESET); the close
				// frame is still there to read.
				if expectClose {
					break
				}
				t.Fatalf("step %d: write: %v", i, err)
			}
		}
		for j, want := range st.want {
			b0, p, err := c.readFrame()
			if err != nil {
				t.Fatalf("step %d frame %d: want %v, read error %v", i, j, want, err)
			}
			if b0&0x70 != 0 || b0&0x80 == 0 {
				t.Fatalf("step %d frame %d: first byte %#x: server frames must have FIN and no RSV", i, j, b0)
			}
			if op := b0 & 0x0f; op != want.op {
				t.Fatalf("step %d frame %d: got opcode %#x (%d bytes: %.40q), want %v", i, j, op, len(p), p, want)
			}
			if want.op == 0x8 {
				code := CloseNoStatus
				if len(p) >= 2 {
					code = binary.BigEndian.Uint16(p)
				}
				if code != want.code {
					t.Fatalf("step %d: close code %d (%q), want %d", i, code, p, want.code)
				}
				closed = true
				continue
			}
			if !bytes.Equal(p, want.payload) {
				t.Fatalf("step %d frame %d: got %d bytes %.40q, want %d bytes %.40q", i, j, len(p), p, len(want.payload), want.payload)
			}
		}
	}
	if closed {
		// After its close frame the server ends the TCP connection.
		_ = c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.br.ReadByte(); err == nil {
			t.Fatal("data after the close frame")
		} else if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatal("connection not closed after the close frame")
		}
		return
	}
	// Still open, and nothing else is queued: the probe's echo comes next.
	c.write(clientFrame(finText, []byte("probe")))
	b0, p, err := c.readFrame()
	if err != nil || b0 != finText || string(p) != "probe" {
		t.Fatalf("probe: got first byte %#x %.40q %v, want the probe's echo", b0, p, err)
	}
}

// TestAutobahnEchoCoderClient sends every echo case's message through
// coder/websocket, an independent client implementation, on one connection.
func TestAutobahnEchoCoderClient(t *testing.T) {
	ts := newTestServer(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := dialCoder(t, ctx, ts)
	n := 0
	for _, tc := range autobahnCases() {
		if tc.msg == nil {
			continue
		}
		n++
		t.Run(tc.name, func(t *testing.T) {
			m := tc.msg
			typ := websocket.MessageBinary
			if m.text {
				typ = websocket.MessageText
			}
			if m.frag == 0 {
				if err := c.Write(ctx, typ, m.payload); err != nil {
					t.Fatal(err)
				}
			} else {
				// coder/websocket writes one frame per Write and an empty final
				// continuation on Close.
				w, err := c.Writer(ctx, typ)
				if err != nil {
					t.Fatal(err)
				}
				for p := m.payload; len(p) > 0; p = p[min(m.frag, len(p)):] {
					if _, err := w.Write(p[:min(m.frag, len(p))]); err != nil {
						t.Fatal(err)
					}
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
			}
			gotTyp, got, err := c.Read(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if gotTyp != typ || !bytes.Equal(got, m.payload) {
				t.Fatalf("got %v with %d bytes, want %v with %d bytes", gotTyp, len(got), typ, len(m.payload))
			}
		})
	}
	if n < 30 {
		t.Fatalf("only %d echo cases", n)
	}
	t.Run("ping", func(t *testing.T) {
		// coder/websocket's Ping needs a concurrent reader to see the pong.
		rctx, rcancel := context.WithCancel(ctx)
		readDone := make(chan struct{})
		go func() {
			defer close(readDone)
			for {
				if _, _, err := c.Read(rctx); err != nil {
					return
				}
			}
		}()
		for range 3 {
			if err := c.Ping(ctx); err != nil {
				t.Fatal(err)
			}
		}
		rcancel()
		<-readDone
	})
	// Read was cancelled above, which makes coder/websocket close the
	// connection; a fresh one checks the close handshake.
	c2 := dialCoder(t, ctx, ts)
	if err := c2.Write(ctx, websocket.MessageText, []byte("bye")); err != nil {
		t.Fatal(err)
	}
	if _, p, err := c2.Read(ctx); err != nil || string(p) != "bye" {
		t.Fatalf("%q %v", p, err)
	}
	if err := c2.Close(websocket.StatusNormalClosure, "done"); err != nil {
		t.Fatalf("close handshake: %v", err)
	}
}

// TestMessageSizeLimit: Config.MaxMessage bounds a whole message, whether it
// comes in one frame or in fragments (Autobahn 9.x runs against a server
// limit; the runtime answers 1009).
func TestMessageSizeLimit(t *testing.T) {
	const limit = 1000
	ts := newTestServer(t, Config{MaxMessage: limit})
	stars := func(n int) []byte { return bytes.Repeat([]byte("*"), n) }
	cases := []abCase{
		echoCase("one frame at the limit", false, stars(limit), 0, 0),
		echoCase("fragments adding up to the limit", true, stars(limit), 100, 0),
		single("one frame one byte over closes 1009", oneWrite(clientFrame(finBinary, stars(limit+1))), closeWant(CloseMessageTooBig)),
		single("fragments one byte over closes 1009", oneWrite(fragments(true, stars(limit+1), 100)...), closeWant(CloseMessageTooBig)),
		single("header of a 2^62-byte frame closes 1009 before any payload", [][]byte{{0x82, 0xff, 0x40, 0, 0, 0, 0, 0, 0, 0}}, closeWant(CloseMessageTooBig)),
		single("64-bit length with the high bit set closes 1002", [][]byte{{0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1}}, closeWant(CloseProtocolError)),
		single("control frames do not count against a fragmented message",
			oneWrite(clientFrame(fragText, stars(limit-1)), clientFrame(finPing, stars(125)), clientFrame(finCont, stars(1))),
			pongOf(stars(125)), echoText(string(stars(limit)))),
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { runRawCase(t, ts, tc, false) })
	}
}

// TestAutobahnLargestMessages follows Autobahn 9.1.4 and 9.2.4: messages up
// to the default MaxMessage (16 MiB) are accepted, so an echo server must be
// able to send them back with the default configuration (MaxQueue 4 MiB).
// (9.x.5 and 9.x.6, 8 and 16 MiB, take many seconds under -race.)
func TestAutobahnLargestMessages(t *testing.T) {
	ts := newTestServer(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, m := range []struct {
		name string
		typ  websocket.MessageType
		size int
	}{
		{"9.1.4 text of 4 MiB", websocket.MessageText, 4 << 20},
		{"9.2.4 binary of 4 MiB", websocket.MessageBinary, 4 << 20},
	} {
		t.Run(m.name, func(t *testing.T) {
			c := dialCoder(t, ctx, ts)
			payload := bytes.Repeat([]byte("*"), m.size)
			drops := ts.r.Stats().QueueDrops
			if err := c.Write(ctx, m.typ, payload); err != nil {
				t.Fatal(err)
			}
			// Stop waiting as soon as the echo is refused.
			rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
			defer rcancel()
			go func() {
				for rctx.Err() == nil && ts.r.Stats().QueueDrops == drops {
					time.Sleep(2 * time.Millisecond)
				}
				rcancel()
			}()
			typ, got, err := c.Read(rctx)
			if err != nil {
				t.Fatalf("no echo (%d sends refused with ErrQueueFull): %v", ts.r.Stats().QueueDrops-drops, err)
			}
			if typ != m.typ || !bytes.Equal(got, payload) {
				t.Fatalf("got %v with %d bytes", typ, len(got))
			}
		})
	}
}

// TestLargeMessageReceiveCostIsLinear: a large frame arrives over many reads.
// Re-reading (copying) everything buffered so far on every read makes the
// server's work grow with the square of the message size; a 16 MiB message
// (the default MaxMessage) then costs gigabytes of copying, a cheap way for a
// client to burn server CPU. The bytes the process allocates while receiving
// one message must stay a small multiple of its size.
func TestLargeMessageReceiveCostIsLinear(t *testing.T) {
	const size = 4 << 20
	ts := newTestServer(t, Config{})
	got := make(chan int, 1)
	h := &funcHandler{onMessage: func(_ *Conn, msg []byte, _ bool) { got <- len(msg) }}
	addr, _ := serveHandler(t, ts.r, h, nil)
	nc, _, err := rawHandshake(&net.Dialer{}, addr, "/ws")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	frame := clientFrame(finBinary, make([]byte, size))

	var before, after goruntime.MemStats
	goruntime.ReadMemStats(&before)
	// Many small writes, as a slow client (or the network) delivers them.
	for b := frame; len(b) > 0; b = b[min(len(b), 16<<10):] {
		if _, err := nc.Write(b[:min(len(b), 16<<10)]); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case n := <-got:
		if n != size {
			t.Fatalf("message of %d bytes, want %d", n, size)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("message not delivered")
	}
	goruntime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("allocated %d MiB while receiving a %d MiB message", alloc>>20, size>>20)
	if alloc > 16*size {
		t.Fatalf("allocated %d MiB to receive %d MiB: the partial frame is copied on every read", alloc>>20, size>>20)
	}
}

// TestBytesInCountsEachByteOnce: Stats().BytesIn counts what arrived, not
// what was parsed: a frame that spans many reads is offered to the parser
// again with each read, and must not be counted again.
func TestBytesInCountsEachByteOnce(t *testing.T) {
	ts := newTestServer(t, Config{})
	got := make(chan int, 4)
	h := &funcHandler{onMessage: func(_ *Conn, msg []byte, _ bool) { got <- len(msg) }}
	addr, _ := serveHandler(t, ts.r, h, nil)
	nc, _, err := rawHandshake(&net.Dialer{}, addr, "/ws")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	stream := append(clientFrame(finBinary, make([]byte, 1<<20)), clientFrame(finText, []byte("end"))...)
	for b := stream; len(b) > 0; b = b[min(len(b), 4<<10):] {
		if _, err := nc.Write(b[:min(len(b), 4<<10)]); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []int{1 << 20, 3} {
		select {
		case n := <-got:
			if n != want {
				t.Fatalf("message of %d bytes, want %d", n, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("message not delivered")
		}
	}
	if in := ts.r.Stats().BytesIn; in != uint64(len(stream)) {
		t.Fatalf("Stats().BytesIn = %d, want the %d bytes sent", in, len(stream))
	}
}
