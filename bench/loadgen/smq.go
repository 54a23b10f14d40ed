package loadgen

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// SMQ message types (docs/smq-protocol.md §1.4). The load generator keeps
// its own few encoders so that it depends on no project package.
const (
	smqInit        = 1
	smqConnect     = 2
	smqConnack     = 3
	smqSubscribe   = 4
	smqSuback      = 5
	smqCreate      = 6
	smqCreateAck   = 7
	smqPublish     = 8
	smqDisconnect  = 11
	smqPing        = 12
	smqPong        = 13
	smqChange      = 16
	smqPublishHdr  = 13 // type + tid + ptid + subtid
	smqServerETID  = 1
	smqTopicPrefix = "bench/t"
)

// uidPrefix makes UIDs unique across generator processes: the broker
// treats a second connection with the same UID as a reconnect (§1.6).
var (
	uidPrefix  string
	uidCounter atomic.Uint64
)

func init() {
	var b [4]byte
	_, _ = rand.Read(b[:])
	uidPrefix = hex.EncodeToString(b[:])
}

// NewSMQUID returns a fresh client UID (at least 6 bytes, unique per run).
func NewSMQUID() []byte {
	return []byte(uidPrefix + "-" + strconv.FormatUint(uidCounter.Add(1), 10))
}

// AppendSMQConnect appends a Connect v1 with uid, no credentials, no info.
func AppendSMQConnect(dst, uid []byte) []byte {
	dst = append(dst, smqConnect, 1, byte(len(uid)))
	dst = append(dst, uid...)
	return append(dst, 0)
}

// AppendSMQPublish appends a Publish to tid from ptid, sub-topic 0.
func AppendSMQPublish(dst []byte, tid, ptid uint32, body []byte) []byte {
	dst = append(dst, smqPublish)
	dst = binary.BigEndian.AppendUint32(dst, tid)
	dst = binary.BigEndian.AppendUint32(dst, ptid)
	dst = binary.BigEndian.AppendUint32(dst, 0)
	return append(dst, body...)
}

// SMQ is the fan-out adapter for the SMQ broker (over WebSocket or the raw
// transport; the driver does the framing): each
// connection answers Init with Connect; a subscriber then subscribes to
// topic "bench/tN" and is ready on its Suback; a publisher creates every
// topic and is ready once all CreateAcks are in. Deliveries are the Publish
// messages received (payload from offset 13).
type SMQ struct{}

// NewConn implements FanoutProtocol.
func (SMQ) NewConn(sub bool, topic, topics int) FanoutConn {
	return &smqConn{sub: sub, topic: topic, tids: make([]uint32, topics)}
}

// MaxTopics implements FanoutProtocol: no limit.
func (SMQ) MaxTopics() int { return 0 }

type smqConn struct {
	sub   bool
	topic int
	etid  uint32
	tids  []uint32
	acks  int
	ready bool
}

func smqTopic(i int) string { return smqTopicPrefix + strconv.Itoa(i) }

func (c *smqConn) Hello() [][]byte { return nil } // the broker speaks first (Init)
func (c *smqConn) Ready() bool     { return c.ready }

func (c *smqConn) AppendPublish(dst []byte, topic int, body []byte) []byte {
	return AppendSMQPublish(dst, c.tids[topic], c.etid, body)
}

var errSMQShort = errors.New("loadgen: smq: short message")

func (c *smqConn) Inbound(msg []byte, emit func([]byte)) ([][]byte, error) {
	if len(msg) == 0 {
		return nil, errSMQShort
	}
	switch msg[0] {
	case smqPublish:
		if len(msg) < smqPublishHdr {
			return nil, errSMQShort
		}
		emit(msg[smqPublishHdr:])
		return nil, nil
	case smqInit:
		return [][]byte{AppendSMQConnect(nil, NewSMQUID())}, nil
	case smqConnack:
		if len(msg) < 6 {
			return nil, errSMQShort
		}
		if msg[1] != 0 {
			return nil, fmt.Errorf("loadgen: smq: connect refused, code %d %q", msg[1], msg[6:])
		}
		c.etid = binary.BigEndian.Uint32(msg[2:6])
		if c.sub {
			return [][]byte{append([]byte{smqSubscribe}, smqTopic(c.topic)...)}, nil
		}
		out := make([][]byte, len(c.tids))
		for i := range c.tids {
			out[i] = append([]byte{smqCreate}, smqTopic(i)...)
		}
		return out, nil
	case smqSuback, smqCreateAck:
		if len(msg) < 6 {
			return nil, errSMQShort
		}
		if msg[1] != 0 {
			return nil, fmt.Errorf("loadgen: smq: %q denied", msg[6:])
		}
		n, err := strconv.Atoi(strings.TrimPrefix(string(msg[6:]), smqTopicPrefix))
		if err != nil || n < 0 || n >= len(c.tids) {
			return nil, fmt.Errorf("loadgen: smq: ack for unexpected topic %q", msg[6:])
		}
		c.tids[n] = binary.BigEndian.Uint32(msg[2:6])
		c.acks++
		c.ready = c.sub || c.acks == len(c.tids)
		return nil, nil
	case smqPing:
		return [][]byte{{smqPong}}, nil
	case smqPong, smqChange:
		return nil, nil
	case smqDisconnect:
		return nil, fmt.Errorf("loadgen: smq: broker disconnected: %q", msg[1:])
	}
	return nil, fmt.Errorf("loadgen: smq: unexpected message type %d", msg[0])
}

// smqDisconnectFrame is SMQ's Disconnect on the raw transport: how a raw
// client says goodbye (a WebSocket client sends a close frame instead).
var smqDisconnectFrame = AppendLen16(nil, []byte{smqDisconnect})

// smqHandshake completes the SMQ handshake on a freshly dialed connection
// (WebSocket or raw, c.Extra its leftover bytes): it waits for Init, sends
// Connect with a fresh UID, and waits for an accepting Connack. It returns
// the client's ETID and any bytes received after the Connack, blocking in
// poll(2) until deadline.
func smqHandshake(c *Conn, deadline time.Time) (etid uint32, rest []byte, err error) {
	w := wside{framing: c.Framing}
	buf := append([]byte(nil), c.Extra...)
	next := func() ([]byte, error) {
		var tmp [1024]byte
		for {
			if f, ok, err := w.parse(buf); err != nil {
				return nil, err
			} else if ok {
				msg := append([]byte(nil), f.payload...)
				buf = buf[f.size:]
				if f.op == opText || f.op == opBin {
					return msg, nil
				}
				if f.op == opClose {
					return nil, errors.New("loadgen: smq: server closed during the handshake")
				}
				continue
			}
			n, err := c.readBlocking(tmp[:], deadline)
			if err == io.EOF {
				return nil, errors.New("loadgen: smq: server closed during the handshake")
			}
			if err != nil {
				return nil, fmt.Errorf("loadgen: smq handshake: %w", err)
			}
			buf = append(buf, tmp[:n]...)
		}
	}
	msg, err := next()
	if err != nil {
		return 0, nil, err
	}
	if msg[0] != smqInit {
		return 0, nil, fmt.Errorf("loadgen: smq: expected Init, got type %d", msg[0])
	}
	frame := w.appendFrame(nil, opBin, AppendSMQConnect(nil, NewSMQUID()), [4]byte{7, 1, 3, 9})
	if err := c.writeBlocking(frame, deadline); err != nil {
		return 0, nil, fmt.Errorf("loadgen: smq handshake: %w", err)
	}
	if msg, err = next(); err != nil {
		return 0, nil, err
	}
	if msg[0] != smqConnack || len(msg) < 6 {
		return 0, nil, fmt.Errorf("loadgen: smq: expected Connack, got type %d", msg[0])
	}
	if msg[1] != 0 {
		return 0, nil, fmt.Errorf("loadgen: smq: connect refused, code %d %q", msg[1], msg[6:])
	}
	if len(buf) > 0 {
		rest = append([]byte(nil), buf...)
	}
	return binary.BigEndian.Uint32(msg[2:6]), rest, nil
}
