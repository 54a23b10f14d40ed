package loadgen

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestParseFrame(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 70000)
	mid := bytes.Repeat([]byte("y"), 300)
	cases := []struct {
		name    string
		frame   []byte
		op      byte
		payload []byte
	}{
		{name: "small server binary", frame: serverFrame(opBin, []byte("hi")), op: opBin, payload: []byte("hi")},
		{name: "empty text", frame: serverFrame(opText, nil), op: opText, payload: []byte{}},
		{name: "16-bit length", frame: serverFrame(opBin, mid), op: opBin, payload: mid},
		{name: "64-bit length", frame: serverFrame(opBin, big), op: opBin, payload: big},
		{name: "masked client frame", frame: AppendClientFrame(nil, opText, []byte("hello"), [4]byte{1, 2, 3, 4}), op: opText, payload: []byte("hello")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Every proper prefix is incomplete, never an error.
			for cut := 0; cut < len(tc.frame); cut += 1 + len(tc.frame)/50 {
				if _, ok, err := parseFrame(append([]byte(nil), tc.frame[:cut]...)); ok || err != nil {
					t.Fatalf("prefix %d: ok=%v err=%v", cut, ok, err)
				}
			}
			f, ok, err := parseFrame(append([]byte(nil), tc.frame...))
			if !ok || err != nil {
				t.Fatalf("ok=%v err=%v", ok, err)
			}
			if f.op != tc.op || !f.fin || !bytes.Equal(f.payload, tc.payload) || f.size != len(tc.frame) {
				t.Fatalf("got op %d fin %v size %d payload %d bytes", f.op, f.fin, f.size, len(f.payload))
			}
		})
	}
	if _, _, err := parseFrame([]byte{0x82, 127, 0xff, 0, 0, 0, 0, 0, 0, 0}); err == nil {
		t.Fatal("absurd length accepted")
	}
}

// serverFrame builds an unmasked server frame independently of the parser.
func serverFrame(op byte, p []byte) []byte {
	b := []byte{0x80 | op}
	switch n := len(p); {
	case n < 126:
		b = append(b, byte(n))
	case n <= 0xffff:
		b = append(b, 126, byte(n>>8), byte(n))
	default:
		b = append(b, 127, 0, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, p...)
}

func TestParseURL(t *testing.T) {
	cases := []struct {
		name, url, path string
		port            int
		bad, tls, http  bool
	}{
		{name: "plain", url: "ws://127.0.0.1:8080/echo", path: "/echo", port: 8080},
		{name: "query kept", url: "ws://127.0.0.1:9/bcast?pub=1", path: "/bcast?pub=1", port: 9},
		{name: "wss", url: "wss://127.0.0.1:9/x", path: "/x", port: 9, tls: true},
		{name: "https default port", url: "https://127.0.0.1/smq.lsp", path: "/smq.lsp", port: 443, tls: true, http: true},
		{name: "http", url: "http://127.0.0.1:8/", path: "/", port: 8, http: true},
		{name: "other scheme refused", url: "ftp://127.0.0.1:9/x", bad: true},
		{name: "bad port", url: "ws://127.0.0.1:99999/x", bad: true},
		{name: "garbage", url: "::", bad: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tg, err := ParseURL(tc.url)
			if tc.bad {
				if err == nil {
					t.Fatal("accepted")
				}
				return
			}
			if err != nil || tg.Path != tc.path || tg.Port != tc.port || tg.Addr != [4]byte{127, 0, 0, 1} ||
				tg.TLS != tc.tls || tg.HTTP != tc.http {
				t.Fatalf("%+v %v", tg, err)
			}
		})
	}
}

// FuzzParseFrame: any input either parses, is incomplete, or errors; a
// parsed frame never claims more bytes than it was given, and parsing the
// same bytes split in two agrees with parsing them whole.
func FuzzParseFrame(f *testing.F) {
	f.Add(serverFrame(opBin, []byte("abc")), 2)
	f.Add(serverFrame(opText, bytes.Repeat([]byte("z"), 200)), 3)
	f.Add(AppendClientFrame(nil, opBin, []byte("m"), [4]byte{9, 8, 7, 6}), 5)
	f.Add([]byte{0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0}, 1)
	f.Fuzz(func(t *testing.T, b []byte, cut int) {
		whole, okW, errW := parseFrame(append([]byte(nil), b...))
		if okW && (whole.size > len(b) || whole.size < 2) {
			t.Fatalf("size %d of %d bytes", whole.size, len(b))
		}
		if cut < 0 {
			cut = -cut
		}
		cut %= len(b) + 1
		_, okP, errP := parseFrame(append([]byte(nil), b[:cut]...))
		if okP && okW && cut < whole.size {
			t.Fatalf("prefix %d parsed but whole frame needs %d", cut, whole.size)
		}
		if errW == nil && errP != nil {
			t.Fatalf("prefix errored (%v), whole did not", errP)
		}
		// The same for SMQ's length-prefixed framing.
		lw, okW, errW := parseLen16(b)
		if okW && (lw.size > len(b) || lw.size < 3 || len(lw.payload) != lw.size-2) {
			t.Fatalf("len16: size %d, payload %d of %d bytes", lw.size, len(lw.payload), len(b))
		}
		_, okP, errP = parseLen16(b[:cut])
		if okP && okW && cut < lw.size {
			t.Fatalf("len16: prefix %d parsed but whole message needs %d", cut, lw.size)
		}
		if errW == nil && errP != nil {
			t.Fatalf("len16: prefix errored (%v), whole did not", errP)
		}
	})
}

func TestParseLen16(t *testing.T) {
	ping := AppendLen16(nil, []byte{smqPing})
	if !bytes.Equal(ping, []byte{0, 3, smqPing}) {
		t.Fatalf("Ping encodes as % x, want 00 03 0c (smq-protocol.md §1.2)", ping)
	}
	two := append(AppendLen16(nil, []byte("first")), AppendLen16(nil, []byte("second"))...)
	f, ok, err := parseLen16(two)
	if !ok || err != nil || string(f.payload) != "first" || f.size != 7 || f.op != opBin || !f.fin {
		t.Fatalf("first: %+v %v %v", f, ok, err)
	}
	if f, ok, _ = parseLen16(two[f.size:]); !ok || string(f.payload) != "second" {
		t.Fatalf("second: %+v", f)
	}
	if _, ok, err := parseLen16(two[:6]); ok || err != nil {
		t.Fatal("a partial message must wait for more bytes")
	}
	if _, _, err := parseLen16([]byte{0, 2}); err == nil {
		t.Fatal("length 2 (no type byte) accepted")
	}
}

// TestHTTPS drives keep-alive GETs over TLS against net/http's TLS test
// server (a real socket on loopback): TLS records are read until the
// socket is dry, responses parse, certificate checks are on by default.
func TestHTTPS(t *testing.T) {
	body := bytes.Repeat([]byte("t"), 40_000) // spans several TLS records
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(body)
	}))
	defer srv.Close()
	tg, err := ParseURL(srv.URL + "/page")
	if err != nil {
		t.Fatal(err)
	}
	if dr := DialMany(tg, KindHTTP, 1, nil, 1, 2*time.Second); len(dr.Conns) != 0 || !strings.Contains(dr.FirstError, "certificate") {
		t.Fatalf("self-signed server accepted without Insecure: %+v", dr)
	}
	tg.Insecure = true
	dr := DialMany(tg, KindHTTP, 3, SourceAddrs(2), 2, 2*time.Second)
	if len(dr.Conns) != 3 {
		t.Fatalf("dial: %+v", dr)
	}
	defer CloseAll(dr.Conns)
	res, err := RunHTTP(dr.Conns, HTTPConfig{Path: tg.Path, Host: tg.HostPort, Duration: 300 * time.Millisecond})
	if err != nil || res.Received == 0 || res.Lost != 0 || res.Unexpected != 0 {
		t.Fatalf("https: %+v %v", res, err)
	}
}
