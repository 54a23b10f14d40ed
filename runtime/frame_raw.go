package runtime

import "encoding/binary"

// Framing says how a connection's byte stream is cut into messages.
type Framing uint8

const (
	// FramingWebSocket: one OnMessage per complete (reassembled) WebSocket message.
	FramingWebSocket Framing = iota + 1
	// FramingRaw: a plain byte stream; OnMessage gets whatever bytes arrived.
	FramingRaw
	// FramingLen16: SMQ's raw transport (smq-protocol.md §1.2): every message
	// starts with a big-endian u16 total length that counts the two length
	// bytes themselves. OnMessage gets the message without the prefix.
	FramingLen16
)

func (f Framing) String() string {
	switch f {
	case FramingWebSocket:
		return "websocket"
	case FramingRaw:
		return "raw"
	case FramingLen16:
		return "len16"
	}
	return "unknown"
}

// MaxLen16Payload is the largest message a FramingLen16 frame can carry.
const MaxLen16Payload = 0xffff - 2

// AppendLen16 appends payload with its 2-byte total-length prefix. The caller
// must keep len(payload) <= MaxLen16Payload.
func AppendLen16(dst, payload []byte) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(payload)+2))
	return append(dst, payload...)
}

// len16Sink receives each message splitLen16 completes; false stops it.
type len16Sink interface{ onLen16(msg []byte) bool }

// splitLen16 consumes whole length-prefixed messages from buf, calling emit
// for each. It returns the bytes consumed; a length below 3 (an empty or
// impossible message) is a protocol error.
func splitLen16(buf []byte, sink len16Sink) (int, *CloseError) {
	consumed := 0
	for len(buf)-consumed >= 2 {
		n := int(binary.BigEndian.Uint16(buf[consumed:]))
		if n < 3 {
			return consumed, &CloseError{Code: CloseProtocolError, Reason: "length prefix below 3"}
		}
		if len(buf)-consumed < n {
			break
		}
		msg := buf[consumed+2 : consumed+n]
		consumed += n
		if !sink.onLen16(msg) {
			return consumed, errStop
		}
	}
	return consumed, nil
}
