package broker

import (
	"errors"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to Decode: it must never panic, every
// error must wrap one of the package sentinels, and a successful decode must
// re-encode to a message that decodes to the same packet.
func FuzzDecode(f *testing.F) {
	for _, g := range goldenPackets(f) {
		f.Add(g.wire(f))
	}
	for typ := 0; typ < 256; typ += 17 {
		f.Add([]byte{byte(typ), 1, 2})
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		p, err := Decode(msg)
		if err != nil {
			if !errors.Is(err, ErrEmpty) && !errors.Is(err, ErrTruncated) &&
				!errors.Is(err, ErrUnknownType) && !errors.Is(err, ErrBadVersion) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		enc, err := AppendPacket(nil, &p)
		if err != nil {
			t.Fatalf("re-encode %+v: %v", p, err)
		}
		q, err := Decode(enc)
		if err != nil || !samePacket(p, q) {
			t.Fatalf("round trip:\n in % X\n p %+v\n q %+v (%v)", msg, p, q, err)
		}
	})
}

// decoded is one step of a stream decode: a packet or an error.
type decoded struct {
	p   Packet
	err error
}

// len16Stream is an incremental raw-stream reader, as a reactor sees it: bytes
// arrive in chunks, complete frames are cut out with SplitLen16.
type len16Stream struct {
	buf []byte
	out []decoded
	err error
}

func (s *len16Stream) write(chunk []byte, atEOF bool) {
	if s.err != nil {
		return
	}
	s.buf = append(s.buf, chunk...)
	for {
		adv, tok, err := SplitLen16(s.buf, atEOF)
		if err != nil {
			s.err = err
			return
		}
		if adv == 0 {
			return
		}
		p, derr := Decode(tok)
		// Decoded fields alias s.buf; copy the packet by re-encoding.
		if derr == nil {
			enc, _ := AppendPacket(nil, &p)
			p, _ = Decode(enc)
		}
		s.out = append(s.out, decoded{p, derr})
		s.buf = s.buf[adv:]
	}
}

func decodeStream(stream []byte) ([]decoded, error) {
	var s len16Stream
	s.write(stream, true)
	return s.out, s.err
}

func decodeStreamIn2(stream []byte, cut int) ([]decoded, error) {
	var s len16Stream
	s.write(stream[:cut], false)
	s.write(stream[cut:], true)
	return s.out, s.err
}

func sameDecoded(a, b []decoded) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if (a[i].err == nil) != (b[i].err == nil) || !samePacket(a[i].p, b[i].p) {
			return false
		}
	}
	return true
}

// FuzzDecodeSplit cuts a raw Len16 stream at a fuzzer-chosen point: the
// messages decoded from the two halves must equal the whole-buffer decode.
func FuzzDecodeSplit(f *testing.F) {
	var all []byte
	for _, g := range goldenPackets(f) {
		raw := AppendLen16(nil, g.wire(f))
		all = append(all, raw...)
		f.Add(raw, uint16(1))
	}
	f.Add(all, uint16(7))
	f.Add(all, uint16(len(all)/2))
	f.Add([]byte{0, 2, 0, 3, 12}, uint16(1))
	f.Fuzz(func(t *testing.T, stream []byte, cut uint16) {
		c := int(cut) % (len(stream) + 1)
		whole, errWhole := decodeStream(stream)
		split, errSplit := decodeStreamIn2(stream, c)
		if !sameDecoded(whole, split) || (errWhole == nil) != (errSplit == nil) {
			t.Fatalf("cut %d: whole=%v/%v split=%v/%v", c, whole, errWhole, split, errSplit)
		}
	})
}
