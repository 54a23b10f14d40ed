package client

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// fakeConn records writes; reads are served from the transport's bufio
// reader, never from the conn.
type fakeConn struct {
	mu  sync.Mutex
	out bytes.Buffer
}

func (f *fakeConn) Read([]byte) (int, error) { return 0, net.ErrClosed }
func (f *fakeConn) Write(b []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.out.Write(b)
}
func (f *fakeConn) Close() error                     { return nil }
func (f *fakeConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (f *fakeConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (f *fakeConn) SetDeadline(time.Time) error      { return nil }
func (f *fakeConn) SetReadDeadline(time.Time) error  { return nil }
func (f *fakeConn) SetWriteDeadline(time.Time) error { return nil }

func unhex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func newTestTransport(raw bool, in []byte) (*transport, *fakeConn) {
	fc := &fakeConn{}
	return &transport{conn: fc, br: bufio.NewReader(bytes.NewReader(in)), raw: raw, maxMsg: 1 << 16}, fc
}

// serverFrame builds an unmasked WebSocket frame (server role).
func serverFrame(fin bool, op ws.OpCode, p []byte) []byte {
	var b bytes.Buffer
	f := ws.NewFrame(op, fin, p)
	if err := ws.WriteFrame(&b, f); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// readFrame decodes one client frame written by the transport.
func readFrame(b []byte) (ws.Frame, error) {
	r := bytes.NewReader(b)
	h, err := ws.ReadHeader(r)
	if err != nil {
		return ws.Frame{}, err
	}
	p := make([]byte, h.Length)
	_, err = io.ReadFull(r, p)
	return ws.Frame{Header: h, Payload: p}, err
}

func TestReadWS(t *testing.T) {
	pub := unhex(t, "08 11 22 33 44 A1 B2 C3 D4 00 00 00 00 68 69")
	big := append([]byte{msgPublish}, bytes.Repeat([]byte{7}, 70000)...)
	maskedFrame := func() []byte {
		var b bytes.Buffer
		p := bytes.Clone(pub)
		f := ws.NewFrame(ws.OpBinary, true, p)
		f = ws.MaskFrameInPlaceWith(f, [4]byte{1, 2, 3, 4})
		_ = ws.WriteFrame(&b, f)
		return b.Bytes()
	}()
	tests := []struct {
		name    string
		in      []byte
		want    [][]byte
		wantErr error // checked with errors.Is after the wanted messages
		pong    bool  // a pong must have been written
	}{
		{name: "one binary message", in: serverFrame(true, ws.OpBinary, pub), want: [][]byte{pub}},
		{name: "text frame accepted", in: serverFrame(true, ws.OpText, pub), want: [][]byte{pub}},
		{name: "masked frame from server", in: maskedFrame, want: [][]byte{pub}},
		{name: "fragmented with ping between", in: bytes.Join([][]byte{
			serverFrame(false, ws.OpBinary, pub[:5]),
			serverFrame(true, ws.OpPing, []byte("hb")),
			serverFrame(false, ws.OpContinuation, pub[5:9]),
			serverFrame(true, ws.OpContinuation, pub[9:]),
		}, nil), want: [][]byte{pub}, pong: true},
		{name: "two messages back to back", in: append(serverFrame(true, ws.OpBinary, pub), serverFrame(true, ws.OpBinary, []byte{msgPing})...),
			want: [][]byte{pub, {msgPing}}},
		{name: "64-bit length", in: serverFrame(true, ws.OpBinary, big), want: nil, wantErr: ErrProtocol},
		{name: "continuation without start", in: serverFrame(true, ws.OpContinuation, pub), wantErr: ErrProtocol},
		{name: "empty message", in: serverFrame(true, ws.OpBinary, nil), wantErr: ErrProtocol},
		{name: "rsv bits", in: func() []byte { b := serverFrame(true, ws.OpBinary, pub); b[0] |= 0x40; return b }(), wantErr: ErrProtocol},
		{name: "long control frame", in: serverFrame(true, ws.OpPing, make([]byte, 126)), wantErr: ErrProtocol},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, fc := newTestTransport(false, tc.in)
			for i, w := range tc.want {
				m, err := tr.readMsg()
				if err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
				if !bytes.Equal(m, w) {
					t.Fatalf("message %d = % x, want % x", i, m, w)
				}
			}
			_, err := tr.readMsg()
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if err == nil {
				t.Fatal("expected an error at the end of input")
			}
			if tc.pong {
				f, err := readFrame(fc.out.Bytes())
				if err != nil {
					t.Fatal(err)
				}
				if !f.Header.Masked || f.Header.OpCode != ws.OpPong {
					t.Fatalf("pong header %+v", f.Header)
				}
				ws.Cipher(f.Payload, f.Header.Mask, 0)
				if string(f.Payload) != "hb" {
					t.Fatalf("pong payload %q", f.Payload)
				}
			}
		})
	}
}

func TestReadWSClose(t *testing.T) {
	tr, fc := newTestTransport(false, serverFrame(true, ws.OpClose, []byte{0x03, 0xE9, 'x'}))
	_, err := tr.readMsg()
	var ce errWSClosed
	if !errors.As(err, &ce) || ce.code != 1001 {
		t.Fatalf("err = %v", err)
	}
	f, err := readFrame(fc.out.Bytes())
	if err != nil || f.Header.OpCode != ws.OpClose || !f.Header.Masked {
		t.Fatalf("close reply %+v %v", f.Header, err)
	}
}

func TestReadRaw(t *testing.T) {
	stream := unhex(t, "00 03 0C  00 0B 10 11 22 33 44 00 00 00 02")
	tr, _ := newTestTransport(true, stream)
	m, err := tr.readMsg()
	if err != nil || !bytes.Equal(m, []byte{msgPing}) {
		t.Fatalf("first = % x, %v", m, err)
	}
	m, err = tr.readMsg()
	if err != nil || !bytes.Equal(m, unhex(t, "10 11 22 33 44 00 00 00 02")) {
		t.Fatalf("second = % x, %v", m, err)
	}
	tr, _ = newTestTransport(true, unhex(t, "00 02"))
	if _, err := tr.readMsg(); !errors.Is(err, ErrProtocol) {
		t.Fatalf("short frame: %v", err)
	}
}

func TestCodecGolden(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		// SMQ spec §1.5 examples.
		{name: "connect v1", got: appendConnect(nil, false, []byte("abcdef"), nil, "hi"), want: "02 01 06 61 62 63 64 65 66 00 68 69"},
		{name: "connect v2 raw", got: func() []byte {
			tr, fc := newTestTransport(true, nil)
			_ = tr.send(appendConnect(nil, true, []byte("abcdef"), nil, ""))
			return fc.out.Bytes()
		}(), want: "00 0E 02 02 00 00 06 61 62 63 64 65 66 00"},
		{name: "publish raw", got: func() []byte {
			tr, fc := newTestTransport(true, nil)
			tr.etid = 0xA1B2C3D4
			_ = tr.publish([]byte("hi"), 0x11223344, 0, 0)
			return fc.out.Bytes()
		}(), want: "00 11 08 11 22 33 44 A1 B2 C3 D4 00 00 00 00 68 69"},
		{name: "pubfrag raw", got: func() []byte {
			tr, fc := newTestTransport(true, nil)
			tr.etid = 5
			_ = tr.publish([]byte("abcde"), 9, 7, 2)
			return fc.out.Bytes()
		}(), want: "00 11 13 00000000 00000005 00000000 6162" +
			"00 11 13 00000000 00000005 00000000 6364" +
			"00 10 13 00000009 00000005 00000007 65"},
		{name: "subscribe raw", got: func() []byte {
			tr, fc := newTestTransport(true, nil)
			_ = tr.sendName(msgSubscribe, "chat")
			return fc.out.Bytes()
		}(), want: "00 07 04 63 68 61 74"},
		{name: "observe raw", got: func() []byte {
			tr, fc := newTestTransport(true, nil)
			_ = tr.sendID(msgObserve, 0x01020304)
			return fc.out.Bytes()
		}(), want: "00 07 0E 01 02 03 04"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if want := unhex(t, tc.want); !bytes.Equal(tc.got, want) {
				t.Fatalf("got  % x\nwant % x", tc.got, want)
			}
		})
	}
}

// TestWSWriteFraming checks client frames: masked, binary, lengths of all
// three header sizes, and that unmasking gives the SMQ message back.
func TestWSWriteFraming(t *testing.T) {
	for _, n := range []int{0, 100, 200, 70000} {
		tr, fc := newTestTransport(false, nil)
		tr.etid = 3
		data := bytes.Repeat([]byte{0x5A}, n)
		if err := tr.publish(data, 1, 2, 0); err != nil {
			t.Fatal(err)
		}
		f, err := readFrame(fc.out.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		if !f.Header.Masked || !f.Header.Fin || f.Header.OpCode != ws.OpBinary {
			t.Fatalf("n=%d header %+v", n, f.Header)
		}
		ws.Cipher(f.Payload, f.Header.Mask, 0)
		want := appendPubHeader(nil, msgPublish, 1, 3, 2)
		want = append(want, data...)
		if !bytes.Equal(f.Payload, want) {
			t.Fatalf("n=%d payload mismatch", n)
		}
	}
}

func TestParseHandshake(t *testing.T) {
	seed, ip, err := parseInit(unhex(t, "01 01 01 02 03 04 31 32 37 2E 30 2E 30 2E 31"))
	if err != nil || seed != 0x01020304 || ip != "127.0.0.1" {
		t.Fatalf("init: %x %q %v", seed, ip, err)
	}
	if _, _, err := parseInit(unhex(t, "01 02 01 02 03 04")); !errors.Is(err, ErrProtocol) {
		t.Fatalf("version 2 init: %v", err)
	}
	etid, err := parseConnack(unhex(t, "03 00 A1 B2 C3 D4"))
	if err != nil || etid != 0xA1B2C3D4 {
		t.Fatalf("connack: %x %v", etid, err)
	}
	_, err = parseConnack(unhex(t, "03 03 00 00 00 00 62 61 64"))
	var ce *ConnackError
	if !errors.As(err, &ce) || ce.Code != 3 || ce.Reason != "bad" {
		t.Fatalf("refused connack: %v", err)
	}
}

// FuzzReadMsg feeds arbitrary bytes to both framers: they must return
// messages or an error, never panic, and a raw message is never empty.
func FuzzReadMsg(f *testing.F) {
	f.Add(serverFrame(true, ws.OpBinary, []byte{8, 0, 0, 0, 1}), false)
	f.Add(serverFrame(false, ws.OpBinary, []byte{8}), false)
	f.Add([]byte{0, 3, 12, 0, 5, 1, 2, 3}, true)
	f.Add([]byte{0x82, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}, false)
	f.Fuzz(func(t *testing.T, in []byte, raw bool) {
		tr, _ := newTestTransport(raw, in)
		for range 100 {
			m, err := tr.readMsg()
			if err != nil {
				return
			}
			if len(m) == 0 {
				t.Fatal("empty message without error")
			}
		}
	})
}
