package loadgen

import (
	"bytes"
	"testing"
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
		bad             bool
	}{
		{name: "plain", url: "ws://127.0.0.1:8080/echo", path: "/echo", port: 8080},
		{name: "query kept", url: "ws://127.0.0.1:9/bcast?pub=1", path: "/bcast?pub=1", port: 9},
		{name: "wss refused", url: "wss://127.0.0.1:9/x", bad: true},
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
			if err != nil || tg.Path != tc.path || tg.Port != tc.port || tg.Addr != [4]byte{127, 0, 0, 1} {
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
	})
}
