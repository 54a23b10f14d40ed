package loadgen

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// NATS is the fan-out adapter for nats-server's WebSocket listener: the
// NATS client protocol (text commands, length-delimited payloads) carried
// as a byte stream in WebSocket messages, so a command may span messages.
// Hello sends CONNECT (verbose off), the subscriber's SUB and a PING; the
// PONG that answers it says the server processed everything before it, so
// the connection is ready. Server PINGs get a PONG. Deliveries are MSG
// payloads.
type NATS struct{}

// NewConn implements FanoutProtocol.
func (NATS) NewConn(sub bool, topic, topics int) FanoutConn {
	return &natsConn{sub: sub, topic: topic}
}

// MaxTopics implements FanoutProtocol: no limit.
func (NATS) MaxTopics() int { return 0 }

// natsConnect is the CONNECT every generator connection sends.
const natsConnect = `CONNECT {"verbose":false,"pedantic":false,"lang":"go","version":"tarpon-bench","protocol":1,"echo":false}` + "\r\n"

type natsConn struct {
	sub   bool
	topic int
	ready bool
	buf   []byte // unparsed stream bytes
}

func natsSubject(i int) string { return "bench.t" + strconv.Itoa(i) }

func (c *natsConn) Hello() [][]byte {
	m := natsConnect
	if c.sub {
		m += "SUB " + natsSubject(c.topic) + " 1\r\n"
	}
	return [][]byte{[]byte(m + "PING\r\n")}
}

func (c *natsConn) Ready() bool { return c.ready }

func (c *natsConn) AppendPublish(dst []byte, topic int, body []byte) []byte {
	dst = append(dst, "PUB "...)
	dst = append(dst, natsSubject(topic)...)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(len(body)), 10)
	dst = append(dst, "\r\n"...)
	dst = append(dst, body...)
	return append(dst, "\r\n"...)
}

// natsMaxLine bounds a control line; anything longer is a protocol error.
const natsMaxLine = 64 << 10

var crlf = []byte("\r\n")

// Inbound parses the stream: complete commands are handled, a partial one
// waits in buf for the next message.
func (c *natsConn) Inbound(msg []byte, emit func([]byte)) ([][]byte, error) {
	data := msg
	if len(c.buf) > 0 {
		c.buf = append(c.buf, msg...)
		data = c.buf
	}
	var replies [][]byte
parse:
	for len(data) > 0 {
		i := bytes.Index(data, crlf)
		if i < 0 {
			if len(data) > natsMaxLine {
				return nil, errors.New("loadgen: nats: control line too long")
			}
			break
		}
		line := data[:i]
		op, rest, _ := bytes.Cut(line, []byte{' '})
		switch string(bytes.ToUpper(op)) {
		case "MSG":
			f := bytes.Fields(rest)
			if len(f) < 3 || len(f) > 4 {
				return nil, fmt.Errorf("loadgen: nats: bad MSG line %q", line)
			}
			n, err := strconv.Atoi(string(f[len(f)-1]))
			if err != nil || n < 0 {
				return nil, fmt.Errorf("loadgen: nats: bad MSG size in %q", line)
			}
			end := i + 2 + n + 2
			if len(data) < end {
				break parse // the payload is still coming
			}
			emit(data[i+2 : i+2+n])
			data = data[end:]
			continue
		case "PING":
			replies = append(replies, []byte("PONG\r\n"))
		case "PONG":
			c.ready = true
		case "INFO", "+OK":
		case "-ERR":
			return nil, fmt.Errorf("loadgen: nats: server error: %s", rest)
		default:
			return nil, fmt.Errorf("loadgen: nats: unexpected %q", line)
		}
		data = data[i+2:]
	}
	if len(data) == 0 {
		c.buf = c.buf[:0]
	} else {
		c.buf = append(c.buf[:0:0], data...)
	}
	return replies, nil
}
