package broker

import (
	"fmt"
	"net"
	"sync/atomic"
	"testing"

	"github.com/tarponrt/tarpon/runtime"
)

// benchConn counts what it is given. Send copies and frames like
// runtime.Conn.Send (the write-per-subscriber baseline); SendEncoded only
// takes a reference like runtime.Conn.SendEncoded.
type benchConn struct {
	raw   bool
	sent  atomic.Int64
	bytes atomic.Int64
}

func (c *benchConn) Send(msg []byte) error {
	var f []byte
	if c.raw {
		f = runtime.AppendLen16(make([]byte, 0, len(msg)+2), msg)
	} else {
		f = runtime.AppendServerFrame(make([]byte, 0, len(msg)+10), false, msg)
	}
	c.sent.Add(1)
	c.bytes.Add(int64(len(f)))
	return nil
}

func (c *benchConn) SendEncoded(frame []byte) error {
	c.sent.Add(1)
	c.bytes.Add(int64(len(frame)))
	return nil
}

func (c *benchConn) CallbackBatch() *runtime.Batch { return nil }

func (c *benchConn) TrySend(msg []byte, _ *runtime.Batch) (bool, error) { return true, c.Send(msg) }

func (c *benchConn) TrySendEncoded(frame []byte, _ *runtime.Batch) (bool, error) {
	return true, c.SendEncoded(frame)
}

func (c *benchConn) Congested() bool            { return false }
func (c *benchConn) Close(uint16, string) error { return nil }
func (c *benchConn) RemoteAddr() net.Addr       { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }
func (c *benchConn) Execute(fn func()) error    { fn(); return nil }

// benchHub builds a hub with n connected subscribers of topic "t" (half
// WebSocket, half raw) and returns the hub, the tid and the subscribers.
func benchHub(b *testing.B, n int) (*Hub, uint32, []*Peer) {
	h := newHub(nil, encoders{ws: runtime.AppendServerFrame, raw: runtime.AppendLen16})
	tid := h.Create("t", 0)
	t := h.names["t"]
	peers := make([]*Peer, n)
	for i := range peers {
		p := &Peer{h: h, raw: i%2 == 1}
		p.c = &benchConn{raw: p.raw}
		p.state.Store(stConnected)
		p.etid.Store(uint32(1000 + i))
		h.mu.Lock()
		h.addSubLocked(t, p, new([]func()))
		h.mu.Unlock()
		peers[i] = p
	}
	return h, tid, peers
}

// BenchmarkFanout measures routing one publish to n subscribers in process:
// "shared" is the hub's path (encode once per transport, SendEncoded to
// everyone); "per-subscriber" is the baseline a write-per-subscriber server
// does (frame and copy for each recipient). deliveries/s is the figure to
// compare; end-to-end socket throughput is bench/'s job.
func BenchmarkFanout(b *testing.B) {
	payload := make([]byte, 128)
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("shared/subs=%d", n), func(b *testing.B) {
			h, tid, _ := benchHub(b, n)
			msg := AppendPublish(nil, tid, 1, 0, payload)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				h.route(msg, tid, nil)
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
		})
		b.Run(fmt.Sprintf("per-subscriber/subs=%d", n), func(b *testing.B) {
			h, tid, _ := benchHub(b, n)
			msg := AppendPublish(nil, tid, 1, 0, payload)
			t := h.names["t"]
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				for _, p := range *t.subs.Load() {
					_ = p.c.Send(msg)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}

// BenchmarkDecodePublish measures decoding a Publish.
func BenchmarkDecodePublish(b *testing.B) {
	msg := AppendPublish(nil, 1, 2, 3, make([]byte, 128))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(msg); err != nil {
			b.Fatal(err)
		}
	}
}
