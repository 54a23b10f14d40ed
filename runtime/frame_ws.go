package runtime

import (
	"encoding/binary"
	"math/rand/v2"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// WebSocket close codes used by the runtime (RFC 6455 §7.4.1).
const (
	CloseNormal          uint16 = 1000
	CloseGoingAway       uint16 = 1001
	CloseProtocolError   uint16 = 1002
	CloseUnsupportedData uint16 = 1003
	CloseNoStatus        uint16 = 1005 // never sent; reported when a close frame had no code
	CloseAbnormal        uint16 = 1006 // never sent; reported when TCP closed without a close frame
	CloseInvalidPayload  uint16 = 1007
	ClosePolicyViolation uint16 = 1008
	CloseMessageTooBig   uint16 = 1009
	CloseInternalError   uint16 = 1011
)

// maxControlPayload is the largest payload a control frame may carry (RFC 6455 §5.5).
const maxControlPayload = 125

// wsReader is the incremental WebSocket frame parser of one connection. It is
// owned by the connection's event loop. It keeps no copy of partial frames:
// what cannot be parsed yet stays in gnet's inbound buffer and is offered
// again with the next read. Only fragmented messages are copied (into frag).
type wsReader struct {
	server     bool // frames from the peer must be masked (we are the server)
	maxMessage int

	fragging bool
	fragText bool
	frag     []byte

	// need is set by parse when it stops at an incomplete frame: the
	// unconsumed input must grow to at least need bytes before parse can
	// make progress. The caller skips parsing until then, so a large frame
	// arriving over many reads is not re-examined (and re-copied by gnet's
	// Peek) on every read. It is a lower bound: 0 means "parse again".
	need int
}

// frameSink receives what the parser completes; it returns false to stop
// parsing (the connection is closing). An interface, not a func, so that
// passing a *Conn allocates nothing.
type frameSink interface{ onFrame(wsEvent) bool }

// wsEvent is what the parser hands to its caller for each complete unit.
type wsEvent struct {
	op      ws.OpCode // OpText/OpBinary for a whole message; control opcodes as is
	payload []byte    // valid until the caller returns; unmasked in place
}

// parse consumes as many whole frames from buf as it can, calling emit for each
// complete message or control frame. It returns the number of bytes consumed.
// A protocol violation returns a non-nil *CloseError with the code to send;
// the caller then closes the connection and ignores further input.
// buf is unmasked in place. When it stops at an incomplete frame it sets
// p.need (see wsReader).
func (p *wsReader) parse(buf []byte, sink frameSink) (int, *CloseError) {
	p.need = 0
	consumed := 0
	for {
		b := buf[consumed:]
		if len(b) < 2 {
			p.need = 2
			return consumed, nil
		}
		fin := b[0]&0x80 != 0
		rsv := b[0] & 0x70
		op := ws.OpCode(b[0] & 0x0f)
		masked := b[1]&0x80 != 0
		length := uint64(b[1] & 0x7f)
		hdr := 2
		switch length {
		case 126:
			if len(b) < 4 {
				p.need = 4
				return consumed, nil
			}
			length = uint64(binary.BigEndian.Uint16(b[2:]))
			hdr = 4
		case 127:
			if len(b) < 10 {
				p.need = 10
				return consumed, nil
			}
			length = binary.BigEndian.Uint64(b[2:])
			if length>>63 != 0 {
				return consumed, &CloseError{Code: CloseProtocolError, Reason: "frame length has its high bit set"}
			}
			hdr = 10
		}
		if rsv != 0 {
			return consumed, &CloseError{Code: CloseProtocolError, Reason: "reserved bits set without a negotiated extension"}
		}
		if op.IsReserved() {
			return consumed, &CloseError{Code: CloseProtocolError, Reason: "reserved opcode"}
		}
		if masked != p.server {
			if p.server {
				return consumed, &CloseError{Code: CloseProtocolError, Reason: "client frame not masked"}
			}
			return consumed, &CloseError{Code: CloseProtocolError, Reason: "server frame masked"}
		}
		if op.IsControl() {
			if !fin {
				return consumed, &CloseError{Code: CloseProtocolError, Reason: "fragmented control frame"}
			}
			if length > maxControlPayload {
				return consumed, &CloseError{Code: CloseProtocolError, Reason: "control frame payload over 125 bytes"}
			}
		} else if length > uint64(p.maxMessage) || (op == ws.OpContinuation && uint64(len(p.frag))+length > uint64(p.maxMessage)) {
			return consumed, &CloseError{Code: CloseMessageTooBig, Reason: "message too big"}
		}
		var mask [4]byte
		if masked {
			if len(b) < hdr+4 {
				p.need = hdr + 4
				return consumed, nil
			}
			copy(mask[:], b[hdr:hdr+4])
			hdr += 4
		}
		if uint64(len(b)-hdr) < length {
			p.need = hdr + int(length)
			return consumed, nil
		}
		payload := b[hdr : hdr+int(length)]
		if masked {
			ws.Cipher(payload, mask, 0)
		}
		consumed += hdr + int(length)

		if cerr := p.frame(fin, op, payload, sink); cerr != nil {
			return consumed, cerr
		}
		if op == ws.OpClose {
			return consumed, nil // nothing after a close frame is read
		}
	}
}

// errStop is returned by frame when emit asked to stop parsing.
var errStop = &CloseError{Code: 0, Reason: "stop"}

func (p *wsReader) frame(fin bool, op ws.OpCode, payload []byte, sink frameSink) *CloseError {
	switch op {
	case ws.OpText, ws.OpBinary:
		if p.fragging {
			return &CloseError{Code: CloseProtocolError, Reason: "new data frame inside a fragmented message"}
		}
		if fin {
			if op == ws.OpText && !utf8.Valid(payload) {
				return &CloseError{Code: CloseInvalidPayload, Reason: "invalid UTF-8 in text message"}
			}
			if !sink.onFrame(wsEvent{op: op, payload: payload}) {
				return errStop
			}
			return nil
		}
		p.fragging, p.fragText = true, op == ws.OpText
		p.frag = append(p.frag[:0], payload...)
		return nil
	case ws.OpContinuation:
		if !p.fragging {
			return &CloseError{Code: CloseProtocolError, Reason: "continuation frame without a message"}
		}
		p.frag = append(p.frag, payload...)
		if !fin {
			return nil
		}
		p.fragging = false
		msg := p.frag
		// Keep a small buffer for the next fragmented message; let a large
		// one go so an idle connection does not hold it.
		if cap(p.frag) > 64<<10 {
			p.frag = nil
		} else {
			p.frag = p.frag[:0]
		}
		op := ws.OpBinary
		if p.fragText {
			op = ws.OpText
			if !utf8.Valid(msg) {
				return &CloseError{Code: CloseInvalidPayload, Reason: "invalid UTF-8 in text message"}
			}
		}
		if !sink.onFrame(wsEvent{op: op, payload: msg}) {
			return errStop
		}
		return nil
	case ws.OpClose:
		if len(payload) == 1 {
			return &CloseError{Code: CloseProtocolError, Reason: "close frame with a 1-byte payload"}
		}
		if len(payload) >= 2 {
			code := binary.BigEndian.Uint16(payload)
			if !validCloseCode(code) {
				return &CloseError{Code: CloseProtocolError, Reason: "invalid close code"}
			}
			if !utf8.Valid(payload[2:]) {
				return &CloseError{Code: CloseInvalidPayload, Reason: "invalid UTF-8 in close reason"}
			}
		}
		sink.onFrame(wsEvent{op: op, payload: payload})
		return nil
	default: // ping, pong
		if !sink.onFrame(wsEvent{op: op, payload: payload}) {
			return errStop
		}
		return nil
	}
}

// validCloseCode reports whether a peer may send code (RFC 6455 §7.4 and the
// IANA registry: 1012–1014 were registered after the RFC).
func validCloseCode(code uint16) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// AppendServerFrame appends one unmasked WebSocket frame (server to client)
// carrying payload as a whole text or binary message. The result is the same
// for every recipient, so a broadcast encodes it once and shares it through
// Conn.SendEncoded.
func AppendServerFrame(dst []byte, text bool, payload []byte) []byte {
	op := ws.OpBinary
	if text {
		op = ws.OpText
	}
	return appendFrame(dst, op, payload, false)
}

// appendFrame appends a final frame of type op. With masked it picks a fresh
// random key and masks the copied payload (client role).
func appendFrame(dst []byte, op ws.OpCode, payload []byte, masked bool) []byte {
	n := len(payload)
	b0 := 0x80 | byte(op)
	var mbit byte
	if masked {
		mbit = 0x80
	}
	switch {
	case n <= 125:
		dst = append(dst, b0, mbit|byte(n))
	case n <= 0xffff:
		dst = append(dst, b0, mbit|126, byte(n>>8), byte(n))
	default:
		dst = append(dst, b0, mbit|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	if !masked {
		return append(dst, payload...)
	}
	var mask [4]byte
	binary.LittleEndian.PutUint32(mask[:], rand.Uint32())
	dst = append(dst, mask[:]...)
	start := len(dst)
	dst = append(dst, payload...)
	ws.Cipher(dst[start:], mask, 0)
	return dst
}

// closePayload builds the body of a close frame.
func closePayload(code uint16, reason string) []byte {
	if code == 0 || code == CloseNoStatus || code == CloseAbnormal {
		return nil
	}
	if len(reason) > maxControlPayload-2 {
		reason = reason[:maxControlPayload-2]
		for !utf8.ValidString(reason) {
			reason = reason[:len(reason)-1]
		}
	}
	b := make([]byte, 2, 2+len(reason))
	binary.BigEndian.PutUint16(b, code)
	return append(b, reason...)
}
