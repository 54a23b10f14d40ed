package runtime

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"testing"

	"github.com/gobwas/ws"
)

// The framers are fed the way gnet feeds them: each call sees the bytes not
// consumed by the previous call with the newly arrived chunk appended. However
// the stream is cut, the events and the error must be those of parsing it in
// one piece. Seeds (f.Add below and testdata/fuzz/) run in plain go test;
// `go test -fuzz=FuzzWSFrames ./runtime/` explores further.

// fuzzMaxMessage keeps 1009 reachable by small inputs.
const fuzzMaxMessage = 4096

// wsRecorder is a frameSink that copies what it is given (payloads are only
// valid during the call).
type wsRecorder struct {
	events []string
	closed bool // a close frame was delivered
}

func (r *wsRecorder) onFrame(ev wsEvent) bool {
	r.events = append(r.events, fmt.Sprintf("%v:%x", ev.op, ev.payload))
	r.closed = r.closed || ev.op == ws.OpClose
	return true
}

// feedWS runs a fresh parser over stream delivered in the given chunks, the
// gnet way. It stops at a close frame or an error, as Conn does (closingFlag).
// It returns the events, the error and the bytes consumed.
func feedWS(server bool, stream []byte, chunks []int) ([]string, *CloseError, int) {
	p := wsReader{server: server, maxMessage: fuzzMaxMessage}
	rec := &wsRecorder{}
	var inbound []byte // gnet's inbound buffer
	total := 0
	off := 0
	for _, n := range chunks {
		inbound = append(inbound, stream[off:off+n]...)
		off += n
		if len(inbound) < p.need {
			// As Conn does: no parse until the incomplete frame can be
			// complete. A need that is too high loses events, which the
			// comparison with a whole parse catches.
			continue
		}
		used, cerr := p.parse(inbound, rec)
		if used < 0 || used > len(inbound) {
			panic(fmt.Sprintf("parse consumed %d of %d bytes", used, len(inbound)))
		}
		total += used
		if cerr != nil {
			return rec.events, cerr, total
		}
		if rec.closed {
			return rec.events, nil, total
		}
		inbound = append(inbound[:0], inbound[used:]...)
		if p.need <= len(inbound) {
			panic(fmt.Sprintf("parse stopped with %d bytes left but asks for only %d", len(inbound), p.need))
		}
	}
	return rec.events, nil, total
}

func sameCloseError(a, b *CloseError) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func FuzzWSFrames(f *testing.F) {
	for _, tc := range autobahnCases() {
		for _, st := range tc.steps {
			b := bytes.Join(st.writes, nil)
			if len(b) > 8<<10 {
				continue // the big ones add nothing but time
			}
			f.Add(b, uint16(len(b)/2), true)
			f.Add(b, uint16(3), true)
		}
	}
	// Client role: server frames are unmasked.
	f.Add(AppendServerFrame(nil, true, []byte("hello")), uint16(1), false)
	f.Add(append(AppendServerFrame(nil, false, bytes.Repeat([]byte{1}, 300)), 0x89, 0x00), uint16(3), false)
	f.Add(clientFrame(finText, []byte("masked to a client")), uint16(2), false)
	// Lengths: 64-bit with the high bit set, over the limit, non-minimal.
	f.Add([]byte{0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}, uint16(5), true)
	f.Add(append([]byte{0x82, 0xff}, binary.BigEndian.AppendUint64(nil, fuzzMaxMessage+1)...), uint16(9), true)
	f.Add([]byte{0x82, 0xfe, 0x00, 0x05, 1, 2, 3, 4, 'h', 'e', 'l', 'l', 'o'}, uint16(4), true)
	// A fragmented message that grows past the limit.
	big := append(clientFrame(fragBin, bytes.Repeat([]byte{1}, fuzzMaxMessage-10)), clientFrame(finCont, bytes.Repeat([]byte{2}, 20))...)
	f.Add(big, uint16(fuzzMaxMessage), true)
	f.Add([]byte{}, uint16(0), true)

	f.Fuzz(func(t *testing.T, stream []byte, cut uint16, server bool) {
		whole := bytes.Clone(stream)
		wantEv, wantErr, wantUsed := feedWS(server, whole, []int{len(whole)})

		at := int(cut) % (len(stream) + 1)
		split := bytes.Clone(stream)
		ev, err, used := feedWS(server, split, []int{at, len(split) - at})
		if !slices.Equal(ev, wantEv) || !sameCloseError(err, wantErr) || used != wantUsed {
			t.Fatalf("cut at %d:\n split: %v %v used %d\n whole: %v %v used %d", at, ev, err, used, wantEv, wantErr, wantUsed)
		}

		if wantErr == nil {
			// An independent decoder (gobwas/ws) sees the same messages in
			// the bytes the parser consumed.
			if ref := gobwasEvents(stream[:wantUsed]); !slices.Equal(ref, wantEv) {
				t.Fatalf("gobwas/ws decodes %v, parser %v", ref, wantEv)
			}
		}

		if len(stream) <= 2048 {
			// One byte per read: every cut at once.
			ones := make([]int, len(stream))
			for i := range ones {
				ones[i] = 1
			}
			bytewise := bytes.Clone(stream)
			ev, err, used := feedWS(server, bytewise, ones)
			if !slices.Equal(ev, wantEv) || !sameCloseError(err, wantErr) || used != wantUsed {
				t.Fatalf("byte by byte:\n got:   %v %v used %d\n whole: %v %v used %d", ev, err, used, wantEv, wantErr, wantUsed)
			}
		}
	})
}

// gobwasEvents decodes complete frames with gobwas/ws and reassembles
// fragmented messages, listing them as wsRecorder does.
func gobwasEvents(b []byte) []string {
	r := bytes.NewReader(b)
	var events []string
	var msgOp ws.OpCode
	var msg []byte
	for r.Len() > 0 {
		h, err := ws.ReadHeader(r)
		if err != nil {
			return append(events, "header error: "+err.Error())
		}
		p := make([]byte, h.Length)
		if _, err := io.ReadFull(r, p); err != nil {
			return append(events, "payload error: "+err.Error())
		}
		if h.Masked {
			ws.Cipher(p, h.Mask, 0)
		}
		switch {
		case h.OpCode.IsControl():
			events = append(events, fmt.Sprintf("%v:%x", h.OpCode, p))
		case h.OpCode != ws.OpContinuation:
			msgOp, msg = h.OpCode, p
		default:
			msg = append(msg, p...)
		}
		if h.Fin && h.OpCode.IsData() {
			events = append(events, fmt.Sprintf("%v:%x", msgOp, msg))
		}
	}
	return events
}

// len16Recorder copies each message splitLen16 completes.
type len16Recorder struct{ msgs [][]byte }

func (r *len16Recorder) onLen16(msg []byte) bool {
	r.msgs = append(r.msgs, bytes.Clone(msg))
	return true
}

func feedLen16(stream []byte, chunks []int) ([][]byte, *CloseError, int) {
	rec := &len16Recorder{}
	var inbound []byte
	total, off := 0, 0
	for _, n := range chunks {
		inbound = append(inbound, stream[off:off+n]...)
		off += n
		used, cerr := splitLen16(inbound, rec)
		if used < 0 || used > len(inbound) {
			panic(fmt.Sprintf("splitLen16 consumed %d of %d bytes", used, len(inbound)))
		}
		total += used
		if cerr != nil {
			return rec.msgs, cerr, total
		}
		inbound = append(inbound[:0], inbound[used:]...)
	}
	return rec.msgs, nil, total
}

func FuzzLen16(f *testing.F) {
	two := AppendLen16(AppendLen16(nil, []byte("hello")), []byte("world"))
	f.Add(two, uint16(1))
	f.Add(two, uint16(7))
	f.Add(AppendLen16(nil, bytes.Repeat([]byte{0xab}, MaxLen16Payload)), uint16(30000))
	f.Add([]byte{0x00, 0x02}, uint16(1))                          // length below 3
	f.Add([]byte{0x00, 0x00, 0x00}, uint16(2))                    // length 0
	f.Add(append(AppendLen16(nil, []byte("x")), 0, 1), uint16(4)) // good then bad
	f.Add([]byte{0x00, 0x03}, uint16(0))                          // prefix of a 1-byte message
	f.Add([]byte{}, uint16(0))

	f.Fuzz(func(t *testing.T, stream []byte, cut uint16) {
		wantMsgs, wantErr, wantUsed := feedLen16(stream, []int{len(stream)})
		at := int(cut) % (len(stream) + 1)
		msgs, err, used := feedLen16(stream, []int{at, len(stream) - at})
		if !slices.EqualFunc(msgs, wantMsgs, bytes.Equal) || !sameCloseError(err, wantErr) || used != wantUsed {
			t.Fatalf("cut at %d: split %d msgs %v used %d, whole %d msgs %v used %d", at, len(msgs), err, used, len(wantMsgs), wantErr, wantUsed)
		}
		// What a whole parse delivers must re-encode to the bytes it consumed.
		var re []byte
		for _, m := range wantMsgs {
			re = AppendLen16(re, m)
		}
		if !bytes.Equal(re, stream[:wantUsed]) {
			t.Fatalf("messages do not re-encode to the consumed bytes")
		}
		if len(stream) <= 2048 {
			ones := make([]int, len(stream))
			for i := range ones {
				ones[i] = 1
			}
			msgs, err, used := feedLen16(stream, ones)
			if !slices.EqualFunc(msgs, wantMsgs, bytes.Equal) || !sameCloseError(err, wantErr) || used != wantUsed {
				t.Fatalf("byte by byte: %d msgs %v used %d, whole %d msgs %v used %d", len(msgs), err, used, len(wantMsgs), wantErr, wantUsed)
			}
		}
	})
}
