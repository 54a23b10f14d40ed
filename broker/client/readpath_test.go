package client

import (
	"bufio"
	"bytes"
	"testing"

	"github.com/gobwas/ws"
)

// cycleReader repeats data forever.
type cycleReader struct {
	data []byte
	off  int
}

func (r *cycleReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.data[r.off:])
		n += c
		r.off = (r.off + c) % len(r.data)
	}
	return n, nil
}

// newDispatchClient is a Client with no connection, for read-path tests.
func newDispatchClient() *Client {
	c := &Client{closing: make(chan struct{}), done: make(chan struct{})}
	c.resetState()
	return c
}

// TestReadPathAllocs: reading a Publish and dispatching it to a
// subscription callback allocates nothing, on both transports.
func TestReadPathAllocs(t *testing.T) {
	msg := appendPubHeader(nil, msgPublish, 7, 9, 3)
	msg = append(msg, bytes.Repeat([]byte("x"), 200)...)
	frames := map[string][]byte{
		"websocket": serverFrame(true, ws.OpBinary, msg),
		"raw":       append([]byte{byte((len(msg) + 2) >> 8), byte(len(msg) + 2)}, msg...),
	}
	for name, frame := range frames {
		t.Run(name, func(t *testing.T) {
			c := newDispatchClient()
			got := 0
			c.handlers[7] = &handlers{sub: map[uint32]func(Message){3: func(m Message) { got += len(m.Data) }}}
			tr := &transport{conn: &fakeConn{}, raw: name == "raw", maxMsg: 1 << 16,
				br: bufio.NewReaderSize(&cycleReader{data: frame}, 4096)}
			step := func() {
				m, err := tr.readMsg()
				if err != nil {
					t.Fatal(err)
				}
				if err := c.dispatch(tr, m); err != nil {
					t.Fatal(err)
				}
			}
			step()
			if n := testing.AllocsPerRun(500, step); n > 0 {
				t.Fatalf("read+dispatch allocates %.1f times per message", n)
			}
			if got == 0 {
				t.Fatal("callback not called")
			}
		})
	}
}

// FuzzDispatch: any message after the handshake is handled or rejected
// with an error, never a panic.
func FuzzDispatch(f *testing.F) {
	f.Add([]byte{msgPublish, 0, 0, 0, 7, 0, 0, 0, 9, 0, 0, 0, 3, 'x'})
	f.Add([]byte{msgSuback, 0, 0, 0, 0, 7, 'a'})
	f.Add([]byte{msgCreateSubAck, 1, 0, 0, 0, 0})
	f.Add([]byte{msgChange, 0, 0, 0, 7, 0, 0, 0, 0})
	f.Add([]byte{msgDisconnect, 'b', 'y', 'e'})
	f.Add([]byte{msgPing})
	f.Add([]byte{msgConnack, 0})
	f.Fuzz(func(t *testing.T, m []byte) {
		if len(m) == 0 {
			return // the framers never return an empty message
		}
		c := newDispatchClient()
		c.handlers[7] = &handlers{all: func(Message) {}, sub: map[uint32]func(Message){}}
		c.observers[7] = &observer{fn: func(uint32) {}}
		c.pending[msgSuback]["a"] = []ackFunc{func(uint32, error) {}}
		tr, _ := newTestTransport(true, nil)
		_ = c.dispatch(tr, m)
	})
}
