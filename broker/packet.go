package broker

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// MsgType is the first byte of every SMQ message (SMQ spec §1.4).
type MsgType byte

// Message types, spelled as in the spec (style §4.4). Codes 0, 10 and 20–255
// are invalid/reserved.
const (
	msgInit         MsgType = 1
	msgConnect      MsgType = 2
	msgConnack      MsgType = 3
	msgSubscribe    MsgType = 4
	msgSuback       MsgType = 5
	msgCreate       MsgType = 6
	msgCreateAck    MsgType = 7
	msgPublish      MsgType = 8
	msgUnsubscribe  MsgType = 9
	msgDisconnect   MsgType = 11
	msgPing         MsgType = 12
	msgPong         MsgType = 13
	msgObserve      MsgType = 14
	msgUnobserve    MsgType = 15
	msgChange       MsgType = 16
	msgCreateSub    MsgType = 17
	msgCreateSubAck MsgType = 18
	msgPubFrag      MsgType = 19
)

// Exported names of the message types, for broker/client and tests that
// speak the wire directly. They equal the msgXxx constants.
const (
	MsgInit         = msgInit
	MsgConnect      = msgConnect
	MsgConnack      = msgConnack
	MsgSubscribe    = msgSubscribe
	MsgSuback       = msgSuback
	MsgCreate       = msgCreate
	MsgCreateAck    = msgCreateAck
	MsgPublish      = msgPublish
	MsgUnsubscribe  = msgUnsubscribe
	MsgDisconnect   = msgDisconnect
	MsgPing         = msgPing
	MsgPong         = msgPong
	MsgObserve      = msgObserve
	MsgUnobserve    = msgUnobserve
	MsgChange       = msgChange
	MsgCreateSub    = msgCreateSub
	MsgCreateSubAck = msgCreateSubAck
	MsgPubFrag      = msgPubFrag
)

var msgNames = [...]string{
	msgInit: "Init", msgConnect: "Connect", msgConnack: "Connack", msgSubscribe: "Subscribe",
	msgSuback: "Suback", msgCreate: "Create", msgCreateAck: "CreateAck", msgPublish: "Publish",
	msgUnsubscribe: "Unsubscribe", msgDisconnect: "Disconnect", msgPing: "Ping", msgPong: "Pong",
	msgObserve: "Observe", msgUnobserve: "Unobserve", msgChange: "Change", msgCreateSub: "CreateSub",
	msgCreateSubAck: "CreateSubAck", msgPubFrag: "PubFrag",
}

// String returns the spec name of t, or "type(N)" for invalid codes.
func (t MsgType) String() string {
	if int(t) < len(msgNames) && msgNames[t] != "" {
		return msgNames[t]
	}
	return fmt.Sprintf("type(%d)", byte(t))
}

// ConnackCode is the return code of a Connack (SMQ spec §1.5).
type ConnackCode byte

// Connack return codes. Codes 3–6 come only from the Authenticate hook.
const (
	ConnackAccepted        ConnackCode = 0x00
	ConnackBadVersion      ConnackCode = 0x01 // also: malformed Connect, UID shorter than 6 bytes
	ConnackUnavailable     ConnackCode = 0x02 // no/invalid Connect within the read timeout
	ConnackBadCredentials  ConnackCode = 0x03
	ConnackCertRequired    ConnackCode = 0x04
	ConnackCertNotAccepted ConnackCode = 0x05
	ConnackAccessDenied    ConnackCode = 0x06
	connackMax             ConnackCode = 0x06
)

// Size limits (SMQ spec §1.3, §1.5).
const (
	// ProtocolVersion is the Init version byte and the Connect version of v1 clients.
	ProtocolVersion = 1
	// MaxPayload is the largest publish payload that fits a raw frame.
	MaxPayload = 0xFFF0
	// MaxRawMessage is the largest SMQ message a raw (Len16) frame can carry.
	MaxRawMessage = 0xFFFF - 2
	// publishHeaderLen is type + tid + ptid + subtid.
	publishHeaderLen = 13
	// minUIDLen is the shortest UID the broker accepts.
	minUIDLen = 6
)

var connackNames = [...]string{"accepted", "unacceptable protocol version", "server unavailable",
	"incorrect credentials", "client certificate required", "client certificate not accepted", "access denied"}

// String describes c as in the spec's code table.
func (c ConnackCode) String() string {
	if c <= connackMax {
		return connackNames[c]
	}
	return fmt.Sprintf("connack(%d)", byte(c))
}

// Decoding errors. Decode wraps them with the message type and sizes.
var (
	ErrEmpty       = errors.New("broker: empty message")
	ErrTruncated   = errors.New("broker: truncated message")
	ErrUnknownType = errors.New("broker: unknown message type")
	ErrBadVersion  = errors.New("broker: unsupported protocol version")
	ErrFrameLength = errors.New("broker: raw frame length below 3")
	ErrTooLong     = errors.New("broker: field longer than 255 bytes")
)

// Packet is one decoded SMQ message. Only the fields of its Type are set;
// byte-slice fields alias the decoded buffer (copy what you keep).
type Packet struct {
	Type MsgType

	// Init: Version, Seed, Text (client IP). Connect: Version (1 or 2),
	// MaxSize (v2 only), UID, Credentials, Text (info).
	Version     byte
	Seed        uint32
	MaxSize     uint16
	UID         []byte
	Credentials []byte

	// Connack: Code, ID (etid), Text (reason).
	Code ConnackCode

	// Suback/CreateAck/CreateSubAck: Status (0 ok, 1 denied), ID, Text (name).
	Status byte

	// ID is the etid (Connack), tid/subtid (acks), or the target of
	// Unsubscribe/Observe/Unobserve/Change.
	ID uint32
	// Count is Change's subscriber count.
	Count uint32

	// Publish and PubFrag header and payload.
	Tid, Ptid, Subtid uint32
	Payload           []byte

	// Text is the trailing string field: Init IP, Connect info, Connack
	// reason, the name of Subscribe/Create/CreateSub and their acks, the
	// Disconnect reason.
	Text []byte
}

func truncated(t MsgType, need, got int) error {
	return fmt.Errorf("%w: %v needs %d bytes, got %d", ErrTruncated, t, need, got)
}

// Decode parses one SMQ message as carried by WebSocket (type byte at offset
// 0, no length prefix; for a raw stream strip the prefix first, e.g. with
// SplitLen16). It never panics; the returned Packet aliases msg.
// Decode is strict only about what the spec requires: minimum sizes, Init
// version 1, Connect version 1/2 and length-prefixed fields fitting. Extra trailing bytes of
// fixed-size messages are ignored, as BAS does.
func Decode(msg []byte) (Packet, error) {
	var p Packet
	if len(msg) == 0 {
		return p, ErrEmpty
	}
	p.Type = MsgType(msg[0])
	body := msg[1:]
	need := func(n int) error {
		if len(msg) < n {
			return truncated(p.Type, n, len(msg))
		}
		return nil
	}
	switch p.Type {
	case msgInit:
		if err := need(6); err != nil {
			return p, err
		}
		p.Version = body[0]
		if p.Version != ProtocolVersion {
			return p, fmt.Errorf("%w: Init version %d", ErrBadVersion, p.Version)
		}
		p.Seed = binary.BigEndian.Uint32(body[1:])
		p.Text = body[5:]
	case msgConnect:
		return decodeConnect(msg)
	case msgConnack:
		if err := need(6); err != nil {
			return p, err
		}
		p.Code = ConnackCode(body[0])
		p.ID = binary.BigEndian.Uint32(body[1:])
		p.Text = body[5:]
	case msgSubscribe, msgCreate, msgCreateSub:
		p.Text = body
	case msgSuback, msgCreateAck, msgCreateSubAck:
		if err := need(6); err != nil {
			return p, err
		}
		p.Status = body[0]
		p.ID = binary.BigEndian.Uint32(body[1:])
		p.Text = body[5:]
	case msgPublish, msgPubFrag:
		if err := need(publishHeaderLen); err != nil {
			return p, err
		}
		p.Tid = binary.BigEndian.Uint32(body)
		p.Ptid = binary.BigEndian.Uint32(body[4:])
		p.Subtid = binary.BigEndian.Uint32(body[8:])
		p.Payload = body[12:]
	case msgUnsubscribe, msgObserve, msgUnobserve:
		if err := need(5); err != nil {
			return p, err
		}
		p.ID = binary.BigEndian.Uint32(body)
	case msgChange:
		if err := need(9); err != nil {
			return p, err
		}
		p.ID = binary.BigEndian.Uint32(body)
		p.Count = binary.BigEndian.Uint32(body[4:])
	case msgDisconnect:
		p.Text = body
	case msgPing, msgPong:
	default:
		return p, fmt.Errorf("%w %d", ErrUnknownType, msg[0])
	}
	return p, nil
}

// decodeConnect parses Connect v1/v2 (SMQ spec §1.5). A message that ends
// right after the UID has empty credentials.
func decodeConnect(msg []byte) (Packet, error) {
	p := Packet{Type: msgConnect}
	if len(msg) < 2 {
		return p, truncated(msgConnect, 3, len(msg))
	}
	p.Version = msg[1]
	off := 2
	switch p.Version {
	case 1:
	case 2:
		if len(msg) < 4 {
			return p, truncated(msgConnect, 5, len(msg))
		}
		p.MaxSize = binary.BigEndian.Uint16(msg[2:])
		off = 4
	default:
		return p, fmt.Errorf("%w: Connect version %d", ErrBadVersion, p.Version)
	}
	if len(msg) < off+1 {
		return p, truncated(msgConnect, off+1, len(msg))
	}
	l := int(msg[off])
	off++
	if len(msg) < off+l {
		return p, truncated(msgConnect, off+l, len(msg))
	}
	p.UID = msg[off : off+l]
	off += l
	if off == len(msg) {
		p.Credentials = msg[off:off]
		p.Text = msg[off:]
		return p, nil
	}
	c := int(msg[off])
	off++
	if len(msg) < off+c {
		return p, truncated(msgConnect, off+c, len(msg))
	}
	p.Credentials = msg[off : off+c]
	p.Text = msg[off+c:]
	return p, nil
}

// AppendPacket encodes p (the fields its Type uses) and appends it to dst.
// It is the generic form of the AppendXxx functions, used by tests and
// tools; hot paths call the specific encoders.
func AppendPacket(dst []byte, p *Packet) ([]byte, error) {
	switch p.Type {
	case msgInit:
		return appendText(AppendInit(dst, p.Seed, ""), p.Text), nil
	case msgConnect:
		return AppendConnect(dst, p.Version, p.MaxSize, p.UID, p.Credentials, p.Text)
	case msgConnack:
		return appendText(AppendConnack(dst, p.Code, p.ID, ""), p.Text), nil
	case msgSubscribe, msgCreate, msgCreateSub, msgDisconnect:
		return appendText(append(dst, byte(p.Type)), p.Text), nil
	case msgSuback, msgCreateAck, msgCreateSubAck:
		return appendText(AppendAck(dst, p.Type, p.Status, p.ID, ""), p.Text), nil
	case msgPublish:
		return AppendPublish(dst, p.Tid, p.Ptid, p.Subtid, p.Payload), nil
	case msgPubFrag:
		return AppendPubFrag(dst, p.Tid, p.Ptid, p.Subtid, p.Payload), nil
	case msgUnsubscribe, msgObserve, msgUnobserve:
		return appendID(dst, p.Type, p.ID), nil
	case msgChange:
		return AppendChange(dst, p.ID, p.Count), nil
	case msgPing, msgPong:
		return append(dst, byte(p.Type)), nil
	}
	return dst, fmt.Errorf("%w %d", ErrUnknownType, byte(p.Type))
}

func appendText(dst, text []byte) []byte { return append(dst, text...) }
