package loadgen

import (
	"encoding/binary"
	"errors"
)

// WebSocket opcodes (RFC 6455 §5.2).
const (
	opCont  = 0x0
	opText  = 0x1
	opBin   = 0x2
	opClose = 0x8
	opPing  = 0x9
	opPong  = 0xA
)

// AppendClientFrame appends one masked client frame (RFC 6455 §5.3) with
// FIN set. The mask is fixed per call site: the server must unmask, which is
// the cost we want it to pay; the key's randomness is irrelevant here.
func AppendClientFrame(dst []byte, op byte, payload []byte, mask [4]byte) []byte {
	dst = append(dst, 0x80|op)
	n := len(payload)
	switch {
	case n < 126:
		dst = append(dst, 0x80|byte(n))
	case n <= 0xFFFF:
		dst = append(dst, 0x80|126, byte(n>>8), byte(n))
	default:
		dst = append(dst, 0x80|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	dst = append(dst, mask[:]...)
	for i, b := range payload {
		dst = append(dst, b^mask[i&3])
	}
	return dst
}

// frameInfo is one parsed inbound frame.
type frameInfo struct {
	op      byte
	fin     bool
	payload []byte // unmasked in place when the frame was masked
	size    int    // header + payload bytes consumed
}

var errFrameTooBig = errors.New("loadgen: inbound frame larger than 64 MiB")

// parseFrame parses one frame from b. ok is false when b holds only part of
// a frame (the caller keeps the bytes and waits for more).
func parseFrame(b []byte) (f frameInfo, ok bool, err error) {
	if len(b) < 2 {
		return f, false, nil
	}
	f.fin = b[0]&0x80 != 0
	f.op = b[0] & 0x0F
	masked := b[1]&0x80 != 0
	n := uint64(b[1] & 0x7F)
	h := 2
	switch n {
	case 126:
		if len(b) < 4 {
			return f, false, nil
		}
		n = uint64(binary.BigEndian.Uint16(b[2:4]))
		h = 4
	case 127:
		if len(b) < 10 {
			return f, false, nil
		}
		n = binary.BigEndian.Uint64(b[2:10])
		h = 10
	}
	if n > 64<<20 {
		return f, false, errFrameTooBig
	}
	var mask [4]byte
	if masked {
		if len(b) < h+4 {
			return f, false, nil
		}
		copy(mask[:], b[h:h+4])
		h += 4
	}
	total := h + int(n)
	if len(b) < total {
		return f, false, nil
	}
	f.payload = b[h:total]
	if masked {
		for i := range f.payload {
			f.payload[i] ^= mask[i&3]
		}
	}
	f.size = total
	return f, true, nil
}

// AppendLen16 appends msg with SMQ's raw-transport prefix: a big-endian u16
// total length that counts the two length bytes (smq-protocol.md §1.2).
func AppendLen16(dst, msg []byte) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(msg)+2))
	return append(dst, msg...)
}

var errLen16 = errors.New("loadgen: smq raw frame length below 3")

// parseLen16 parses one length-prefixed SMQ message from b, as a final
// binary frame so the drivers treat both framings alike.
func parseLen16(b []byte) (f frameInfo, ok bool, err error) {
	if len(b) < 2 {
		return f, false, nil
	}
	n := int(binary.BigEndian.Uint16(b))
	if n < 3 {
		return f, false, errLen16
	}
	if len(b) < n {
		return f, false, nil
	}
	return frameInfo{op: opBin, fin: true, payload: b[2:n], size: n}, true, nil
}
