package broker

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
)

// golden is one vector of testdata/packets.json: the WebSocket-form bytes,
// optionally the raw (Len16) form, and the decoded fields.
type golden struct {
	Name   string `json:"name"`
	Wire   string `json:"wire"`
	Raw    string `json:"raw"`
	Packet struct {
		Type    byte   `json:"type"`
		Version byte   `json:"version"`
		Seed    uint32 `json:"seed"`
		MaxSize uint16 `json:"max_size"`
		UID     string `json:"uid"`
		Cred    string `json:"cred"`
		Code    byte   `json:"code"`
		Status  byte   `json:"status"`
		ID      uint32 `json:"id"`
		Count   uint32 `json:"count"`
		Tid     uint32 `json:"tid"`
		Ptid    uint32 `json:"ptid"`
		Subtid  uint32 `json:"subtid"`
		Payload string `json:"payload"`
		Text    string `json:"text"`
	} `json:"packet"`
}

func unhex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		tb.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func (g *golden) wire(tb testing.TB) []byte { return unhex(tb, g.Wire) }

func (g *golden) packet(tb testing.TB) Packet {
	f := g.Packet
	return Packet{Type: MsgType(f.Type), Version: f.Version, Seed: f.Seed, MaxSize: f.MaxSize,
		UID: unhex(tb, f.UID), Credentials: unhex(tb, f.Cred), Code: ConnackCode(f.Code), Status: f.Status,
		ID: f.ID, Count: f.Count, Tid: f.Tid, Ptid: f.Ptid, Subtid: f.Subtid,
		Payload: unhex(tb, f.Payload), Text: unhex(tb, f.Text)}
}

func goldenPackets(tb testing.TB) []golden {
	tb.Helper()
	b, err := os.ReadFile("testdata/packets.json")
	if err != nil {
		tb.Fatal(err)
	}
	var gs []golden
	if err := json.Unmarshal(b, &gs); err != nil {
		tb.Fatal(err)
	}
	return gs
}

func samePacket(a, b Packet) bool {
	return a.Type == b.Type && a.Version == b.Version && a.Seed == b.Seed && a.MaxSize == b.MaxSize &&
		bytes.Equal(a.UID, b.UID) && bytes.Equal(a.Credentials, b.Credentials) && a.Code == b.Code &&
		a.Status == b.Status && a.ID == b.ID && a.Count == b.Count && a.Tid == b.Tid && a.Ptid == b.Ptid &&
		a.Subtid == b.Subtid && bytes.Equal(a.Payload, b.Payload) && bytes.Equal(a.Text, b.Text)
}

func TestGoldenDecode(t *testing.T) {
	for _, g := range goldenPackets(t) {
		t.Run(g.Name, func(t *testing.T) {
			got, err := Decode(g.wire(t))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if want := g.packet(t); !samePacket(got, want) {
				t.Fatalf("Decode:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestGoldenEncode(t *testing.T) {
	seen := map[MsgType]bool{}
	for _, g := range goldenPackets(t) {
		t.Run(g.Name, func(t *testing.T) {
			p := g.packet(t)
			seen[p.Type] = true
			want := g.wire(t)
			got, err := AppendPacket(nil, &p)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("AppendPacket = % X, %v; want % X", got, err, want)
			}
			if spec := encodeSpecific(t, &p); !bytes.Equal(spec, want) {
				t.Fatalf("specific encoder = % X; want % X", spec, want)
			}
			if g.Raw != "" {
				if raw := AppendLen16(nil, want); !bytes.Equal(raw, unhex(t, g.Raw)) {
					t.Fatalf("AppendLen16 = % X; want %s", raw, g.Raw)
				}
			}
		})
	}
	for typ := msgInit; typ <= msgPubFrag; typ++ {
		if typ != 10 && !seen[typ] {
			t.Errorf("no golden vector for %v", typ)
		}
	}
}

// encodeSpecific encodes p with the per-type encoder the hub and clients use.
func encodeSpecific(t *testing.T, p *Packet) []byte {
	text := string(p.Text)
	switch p.Type {
	case msgInit:
		return AppendInit(nil, p.Seed, text)
	case msgConnect:
		b, err := AppendConnect(nil, p.Version, p.MaxSize, p.UID, p.Credentials, p.Text)
		if err != nil {
			t.Fatal(err)
		}
		return b
	case msgConnack:
		return AppendConnack(nil, p.Code, p.ID, text)
	case msgSubscribe:
		return AppendSubscribe(nil, text)
	case msgCreate:
		return AppendCreate(nil, text)
	case msgCreateSub:
		return AppendCreateSub(nil, text)
	case msgSuback, msgCreateAck, msgCreateSubAck:
		return AppendAck(nil, p.Type, p.Status, p.ID, text)
	case msgPublish:
		return AppendPublish(nil, p.Tid, p.Ptid, p.Subtid, p.Payload)
	case msgPubFrag:
		return AppendPubFrag(nil, p.Tid, p.Ptid, p.Subtid, p.Payload)
	case msgUnsubscribe:
		return AppendUnsubscribe(nil, p.ID)
	case msgObserve:
		return AppendObserve(nil, p.ID)
	case msgUnobserve:
		return AppendUnobserve(nil, p.ID)
	case msgChange:
		return AppendChange(nil, p.ID, p.Count)
	case msgDisconnect:
		return AppendDisconnect(nil, text)
	case msgPing:
		return AppendPing(nil)
	case msgPong:
		return AppendPong(nil)
	}
	t.Fatalf("no encoder for %v", p.Type)
	return nil
}

func TestEncodersDoNotAllocate(t *testing.T) {
	buf := make([]byte, 0, 256)
	payload := []byte("hello")
	allocs := testing.AllocsPerRun(100, func() {
		b := AppendPublish(buf[:0], 1, 2, 3, payload)
		b = AppendChange(b, 1, 2)
		b = AppendAck(b, msgSuback, 0, 7, "chat")
		b = AppendConnack(b, ConnackAccepted, 9, "")
		b = AppendInit(b, 1, "127.0.0.1")
		_ = AppendLen16(b[len(b):], payload)
	})
	if allocs != 0 {
		t.Fatalf("encoders allocated %v times per run", allocs)
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		msg  string
		want error
	}{
		{"empty", "", ErrEmpty},
		{"type 0", "00", ErrUnknownType},
		{"type 10 reserved", "0A 00 00", ErrUnknownType},
		{"type 20", "14", ErrUnknownType},
		{"type 255", "FF", ErrUnknownType},
		{"init short", "01 01 00 00", ErrTruncated},
		{"connect no version", "02", ErrTruncated},
		{"connect version 3", "02 03 06 61 62 63 64 65 66", ErrBadVersion},
		{"connect uid overruns", "02 01 07 61 62 63 64 65 66", ErrTruncated},
		{"connect v2 cut in max size", "02 02 00", ErrTruncated},
		{"connect credentials overrun", "02 01 01 61 05 61", ErrTruncated},
		{"connack short", "03 00 00 00 01", ErrTruncated},
		{"suback short", "05 00", ErrTruncated},
		{"publish 12 bytes", "08 00 00 00 01 00 00 00 02 00 00 00", ErrTruncated},
		{"pubfrag 1 byte", "13", ErrTruncated},
		{"unsubscribe 4 bytes", "09 00 00 00", ErrTruncated},
		{"observe 1 byte", "0E", ErrTruncated},
		{"unobserve 2 bytes", "0F 01", ErrTruncated},
		{"change 8 bytes", "10 00 00 00 01 00 00 00", ErrTruncated},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(unhex(t, tc.msg))
			if !errors.Is(err, tc.want) {
				t.Fatalf("Decode(%s) error = %v; want %v", tc.msg, err, tc.want)
			}
		})
	}
}

func TestAppendConnectLimits(t *testing.T) {
	long := bytes.Repeat([]byte("x"), 256)
	if _, err := AppendConnect(nil, 1, 0, long, nil, nil); !errors.Is(err, ErrTooLong) {
		t.Fatalf("256-byte uid: %v", err)
	}
	if _, err := AppendConnect(nil, 1, 0, []byte("abcdef"), long, nil); !errors.Is(err, ErrTooLong) {
		t.Fatalf("256-byte credentials: %v", err)
	}
	if _, err := AppendConnect(nil, 3, 0, []byte("abcdef"), nil, nil); !errors.Is(err, ErrBadVersion) {
		t.Fatalf("version 3: %v", err)
	}
}

func TestSplitLen16(t *testing.T) {
	tests := []struct {
		name    string
		stream  string
		atEOF   bool
		advance int
		token   string
		err     error
	}{
		{"ping", "00 03 0C", false, 3, "0C", nil},
		{"need more", "00 05 0C", false, 0, "", nil},
		{"one byte", "00", false, 0, "", nil},
		{"length 2", "00 02", false, 0, "", ErrFrameLength},
		{"length 0", "00 00 01", false, 0, "", ErrFrameLength},
		{"cut at eof", "00 05 0C", true, 0, "", ErrTruncated},
		{"stray byte at eof", "00", true, 0, "", ErrTruncated},
		{"coalesced", "00 03 0C 00 03 0D", false, 3, "0C", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			adv, tok, err := SplitLen16(unhex(t, tc.stream), tc.atEOF)
			if !errors.Is(err, tc.err) || adv != tc.advance || !bytes.Equal(tok, unhex(t, tc.token)) {
				t.Fatalf("SplitLen16 = %d, % X, %v; want %d, %s, %v", adv, tok, err, tc.advance, tc.token, tc.err)
			}
		})
	}
}
