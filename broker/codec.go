package broker

import (
	"encoding/binary"
	"fmt"
)

// The AppendXxx encoders append one SMQ message (WebSocket form: type byte
// first, no length prefix) to dst and return the extended slice. They do not
// allocate when dst has enough capacity. Layouts: SMQ spec §1.5.

// AppendInit encodes Init(version 1, seed, client IP text).
func AppendInit(dst []byte, seed uint32, ip string) []byte {
	dst = append(dst, byte(msgInit), ProtocolVersion)
	dst = binary.BigEndian.AppendUint32(dst, seed)
	return append(dst, ip...)
}

// AppendConnect encodes Connect. version 1 omits maxSize; version 2 inserts
// it after the version byte. uid and credentials are limited to 255 bytes.
func AppendConnect(dst []byte, version byte, maxSize uint16, uid, credentials, info []byte) ([]byte, error) {
	if len(uid) > 255 || len(credentials) > 255 {
		return dst, ErrTooLong
	}
	switch version {
	case 1:
		dst = append(dst, byte(msgConnect), 1)
	case 2:
		dst = append(dst, byte(msgConnect), 2)
		dst = binary.BigEndian.AppendUint16(dst, maxSize)
	default:
		return dst, fmt.Errorf("%w: Connect version %d", ErrBadVersion, version)
	}
	dst = append(dst, byte(len(uid)))
	dst = append(dst, uid...)
	dst = append(dst, byte(len(credentials)))
	dst = append(dst, credentials...)
	return append(dst, info...), nil
}

// AppendConnack encodes Connack. The reason is only sent with a refusal
// (code != 0): an accepted Connack is exactly 6 bytes.
func AppendConnack(dst []byte, code ConnackCode, etid uint32, reason string) []byte {
	dst = append(dst, byte(msgConnack), byte(code))
	dst = binary.BigEndian.AppendUint32(dst, etid)
	if code != ConnackAccepted {
		dst = append(dst, reason...)
	}
	return dst
}

// AppendSubscribe encodes Subscribe(name).
func AppendSubscribe(dst []byte, name string) []byte { return appendName(dst, msgSubscribe, name) }

// AppendCreate encodes Create(name).
func AppendCreate(dst []byte, name string) []byte { return appendName(dst, msgCreate, name) }

// AppendCreateSub encodes CreateSub(name).
func AppendCreateSub(dst []byte, name string) []byte { return appendName(dst, msgCreateSub, name) }

func appendName(dst []byte, t MsgType, name string) []byte {
	return append(append(dst, byte(t)), name...)
}

// AppendAck encodes Suback, CreateAck or CreateSubAck (t selects which):
// status 0 accepted / 1 denied, the id (0 when denied) and the name echoed
// byte-exact from the request.
func AppendAck(dst []byte, t MsgType, status byte, id uint32, name string) []byte {
	dst = append(dst, byte(t), status)
	dst = binary.BigEndian.AppendUint32(dst, id)
	return append(dst, name...)
}

// AppendPublish encodes Publish(tid, ptid, subtid, payload). The caller keeps
// payloads within MaxPayload where a raw peer may receive them.
func AppendPublish(dst []byte, tid, ptid, subtid uint32, payload []byte) []byte {
	return appendPub(dst, msgPublish, tid, ptid, subtid, payload)
}

// AppendPubFrag encodes one PubFrag: tid 0 for an intermediate fragment, the
// real tid on the last one.
func AppendPubFrag(dst []byte, tid, ptid, subtid uint32, payload []byte) []byte {
	return appendPub(dst, msgPubFrag, tid, ptid, subtid, payload)
}

func appendPub(dst []byte, t MsgType, tid, ptid, subtid uint32, payload []byte) []byte {
	dst = append(dst, byte(t))
	dst = binary.BigEndian.AppendUint32(dst, tid)
	dst = binary.BigEndian.AppendUint32(dst, ptid)
	dst = binary.BigEndian.AppendUint32(dst, subtid)
	return append(dst, payload...)
}

// AppendUnsubscribe encodes Unsubscribe(tid).
func AppendUnsubscribe(dst []byte, tid uint32) []byte { return appendID(dst, msgUnsubscribe, tid) }

// AppendObserve encodes Observe(tid or etid).
func AppendObserve(dst []byte, id uint32) []byte { return appendID(dst, msgObserve, id) }

// AppendUnobserve encodes Unobserve(tid or etid).
func AppendUnobserve(dst []byte, id uint32) []byte { return appendID(dst, msgUnobserve, id) }

func appendID(dst []byte, t MsgType, id uint32) []byte {
	return binary.BigEndian.AppendUint32(append(dst, byte(t)), id)
}

// AppendChange encodes Change(tid or etid, subscriber count): always 9 bytes.
func AppendChange(dst []byte, id, count uint32) []byte {
	dst = appendID(dst, msgChange, id)
	return binary.BigEndian.AppendUint32(dst, count)
}

// AppendDisconnect encodes Disconnect with an optional reason ("" = bare byte).
func AppendDisconnect(dst []byte, reason string) []byte {
	return append(append(dst, byte(msgDisconnect)), reason...)
}

// AppendPing encodes Ping (1 byte).
func AppendPing(dst []byte) []byte { return append(dst, byte(msgPing)) }

// AppendPong encodes Pong (1 byte).
func AppendPong(dst []byte) []byte { return append(dst, byte(msgPong)) }

// AppendLen16 appends msg as one raw-transport frame: a big-endian u16 total
// length that counts its own two bytes, then msg (SMQ spec §1.2). msg must
// not exceed MaxRawMessage bytes. Byte-identical to runtime.AppendLen16.
func AppendLen16(dst, msg []byte) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(msg)+2))
	return append(dst, msg...)
}

// SplitLen16 is a bufio.SplitFunc for a raw SMQ stream: each token is one
// message without its 2-byte length prefix. A frame length below 3 is an
// error (ErrFrameLength). The runtime's FramingLen16 does the same inside
// the reactor; this one serves clients on net.Conn and the split fuzzers.
func SplitLen16(data []byte, atEOF bool) (advance int, token []byte, err error) {
	if len(data) < 2 {
		if atEOF && len(data) > 0 {
			return 0, nil, fmt.Errorf("%w: %d stray byte(s) at end of stream", ErrTruncated, len(data))
		}
		return 0, nil, nil
	}
	n := int(binary.BigEndian.Uint16(data))
	if n < 3 {
		return 0, nil, fmt.Errorf("%w: %d", ErrFrameLength, n)
	}
	if len(data) < n {
		if atEOF {
			return 0, nil, fmt.Errorf("%w: frame of %d bytes cut at %d", ErrTruncated, n, len(data))
		}
		return 0, nil, nil
	}
	return n, data[2:n], nil
}
