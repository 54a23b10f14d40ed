package loadgen

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
)

func TestNATSInbound(t *testing.T) {
	stream := "INFO {\"server_id\":\"x\"}\r\nPING\r\nPONG\r\nMSG bench.t0 1 5\r\nhello\r\nMSG bench.t0 1 _INBOX.r 4\r\na\r\nb\r\n+OK\r\nMSG bench.t1 2 0\r\n\r\n"
	want := []string{"hello", "a\r\nb", ""}
	cases := []struct {
		name string
		cut  int // split the stream into messages of this size
	}{
		{name: "one message", cut: len(stream)},
		{name: "byte by byte", cut: 1},
		{name: "7-byte pieces", cut: 7},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := NATS{}.NewConn(true, 0, 1).(*natsConn)
			var got []string
			var pongs int
			for i := 0; i < len(stream); i += tc.cut {
				m := []byte(stream[i:min(i+tc.cut, len(stream))])
				replies, err := c.Inbound(m, func(b []byte) { got = append(got, string(b)) })
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range replies {
					if string(r) == "PONG\r\n" {
						pongs++
					}
				}
			}
			if strings.Join(got, "|") != strings.Join(want, "|") || pongs != 1 || !c.Ready() {
				t.Fatalf("deliveries %q, pongs %d, ready %v", got, pongs, c.Ready())
			}
		})
	}
	bad := []string{"-ERR 'Authorization Violation'\r\n", "MSG x 1 notanumber\r\n", "BOGUS\r\n", strings.Repeat("x", natsMaxLine+1)}
	for _, in := range bad {
		if _, err := (NATS{}).NewConn(true, 0, 1).Inbound([]byte(in), func([]byte) {}); err == nil {
			t.Errorf("%.20q accepted", in)
		}
	}
	pub := (NATS{}).NewConn(false, 0, 2).AppendPublish(nil, 1, []byte("xyz"))
	if string(pub) != "PUB bench.t1 3\r\nxyz\r\n" {
		t.Fatalf("publish %q", pub)
	}
}

func TestSMQInbound(t *testing.T) {
	u32 := func(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	pub := SMQ{}.NewConn(false, 0, 2)
	noEmit := func([]byte) { t.Fatal("unexpected delivery") }
	steps := []struct {
		name    string
		in      []byte
		replies []string
		ready   bool
	}{
		{name: "init gets connect", in: cat([]byte{smqInit, 1}, u32(9), []byte("127.0.0.1")), replies: []string{"\x02\x01"}},
		{name: "connack gets creates", in: cat([]byte{smqConnack, 0}, u32(0xabcd)), replies: []string{"\x06bench/t0", "\x06bench/t1"}},
		{name: "first ack", in: cat([]byte{smqCreateAck, 0}, u32(77), []byte("bench/t1"))},
		{name: "second ack makes it ready", in: cat([]byte{smqCreateAck, 0}, u32(55), []byte("bench/t0")), ready: true},
		{name: "ping gets pong", in: []byte{smqPing}, replies: []string{"\x0d"}, ready: true},
	}
	for _, st := range steps {
		replies, err := pub.Inbound(st.in, noEmit)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if len(replies) != len(st.replies) {
			t.Fatalf("%s: replies %q", st.name, replies)
		}
		for i, r := range replies {
			if !strings.HasPrefix(string(r), st.replies[i]) {
				t.Fatalf("%s: reply %q, want prefix %q", st.name, r, st.replies[i])
			}
		}
		if pub.Ready() != st.ready {
			t.Fatalf("%s: ready %v", st.name, pub.Ready())
		}
	}
	if got := pub.AppendPublish(nil, 1, []byte("hi")); !bytes.Equal(got, cat([]byte{smqPublish}, u32(77), u32(0xabcd), u32(0), []byte("hi"))) {
		t.Fatalf("publish % x", got)
	}
	var body []byte
	sub := SMQ{}.NewConn(true, 3, 4)
	if _, err := sub.Inbound(cat([]byte{smqPublish}, u32(77), u32(5), u32(0), []byte("payload")), func(b []byte) { body = b }); err != nil || string(body) != "payload" {
		t.Fatalf("delivery %q %v", body, err)
	}
	for _, in := range [][]byte{{}, {smqPublish, 1}, cat([]byte{smqConnack, 3}, u32(0), []byte("bad")), {smqDisconnect}, {42},
		cat([]byte{smqSuback, 0}, u32(1), []byte("other"))} {
		if _, err := (SMQ{}).NewConn(true, 0, 1).Inbound(in, func([]byte) {}); err == nil {
			t.Errorf("% x accepted", in)
		}
	}
}

func TestParseHTTPResponse(t *testing.T) {
	cases := []struct {
		name   string
		in     string
		size   int
		status int
		bad    bool
	}{
		{name: "content length", in: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloNEXT", size: 43, status: 200},
		{name: "chunked with trailer", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nX-T: 1\r\n\r\nNEXT", size: 79, status: 200},
		{name: "404 empty", in: "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n", size: 45, status: 404},
		{name: "304 no body", in: "HTTP/1.1 304 Not Modified\r\n\r\n", size: 29, status: 304},
		{name: "no length", in: "HTTP/1.1 200 OK\r\n\r\nbody", bad: true},
		{name: "garbage", in: "SSH-2.0\r\n\r\n", bad: true},
		{name: "bad chunk", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", bad: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			size, status, ok, err := ParseHTTPResponse([]byte(tc.in))
			if tc.bad {
				if err == nil {
					t.Fatalf("accepted: %d %d %v", size, status, ok)
				}
				return
			}
			if err != nil || !ok || size != tc.size || status != tc.status {
				t.Fatalf("size %d status %d ok %v err %v", size, status, ok, err)
			}
			// Every proper prefix is incomplete, never an error.
			for cut := 0; cut < tc.size; cut++ {
				if _, _, ok, err := ParseHTTPResponse([]byte(tc.in[:cut])); ok || err != nil {
					t.Fatalf("prefix %d: ok %v err %v", cut, ok, err)
				}
			}
		})
	}
}

// FuzzParseHTTPResponse: never panics; a complete response never claims
// more bytes than it was given.
func FuzzParseHTTPResponse(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		size, _, ok, err := ParseHTTPResponse(b)
		if ok && (err != nil || size > len(b) || size <= 0) {
			t.Fatalf("size %d of %d, err %v", size, len(b), err)
		}
	})
}

// FuzzNATSInbound: any byte stream, split anywhere, never panics, and the
// deliveries do not depend on where the stream was split.
func FuzzNATSInbound(f *testing.F) {
	f.Add([]byte("MSG a 1 2\r\nhi\r\nPING\r\n"), 3)
	f.Add([]byte("PONG\r\nMSG a 1 r 0\r\n\r\n"), 1)
	f.Fuzz(func(t *testing.T, b []byte, cut int) {
		run := func(step int) (string, bool) {
			c := NATS{}.NewConn(true, 0, 1)
			var got []string
			for i := 0; i < len(b); i += step {
				if _, err := c.Inbound(append([]byte(nil), b[i:min(i+step, len(b))]...), func(x []byte) { got = append(got, string(x)) }); err != nil {
					return strings.Join(got, "\x00"), false
				}
			}
			return strings.Join(got, "\x00"), true
		}
		if cut < 1 {
			cut = 1 - cut%1000
		}
		whole, okW := run(max(len(b), 1))
		split, okS := run(cut)
		if okW && okS && whole != split {
			t.Fatalf("whole %q, split %q", whole, split)
		}
	})
}
