package hostile

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tarponrt/tarpon/broker"
	"github.com/tarponrt/tarpon/broker/client"
	"github.com/tarponrt/tarpon/runtime"
)

// smqTemplate builds one client message; etid is the connection's own ETID
// (0 before Connect).
type smqTemplate struct {
	name    string
	connect bool // replaces the Connect (sent before any handshake)
	build   func(etid uint32) []byte
}

func smqTemplates() []smqTemplate {
	connect := func(v byte) func(uint32) []byte {
		return func(uint32) []byte {
			m, _ := broker.AppendConnect(nil, v, 1000, []byte("hostile-uid-x"), []byte("cred"), []byte("info"))
			return m
		}
	}
	fixed := func(m []byte) func(uint32) []byte { return func(uint32) []byte { return m } }
	return []smqTemplate{
		{"Connect-v1", true, connect(1)},
		{"Connect-v2", true, connect(2)},
		{"Subscribe", false, fixed(broker.AppendSubscribe(nil, "topic/a"))},
		{"Create", false, fixed(broker.AppendCreate(nil, "topic/b"))},
		{"CreateSub", false, fixed(broker.AppendCreateSub(nil, "sub/c"))},
		{"Publish", false, func(e uint32) []byte { return broker.AppendPublish(nil, e, e, 0, []byte("hello")) }},
		{"PubFrag-mid", false, func(e uint32) []byte { return broker.AppendPubFrag(nil, 0, e, 0, []byte("frag")) }},
		{"PubFrag-end", false, func(e uint32) []byte { return broker.AppendPubFrag(nil, e, e, 0, []byte("frag")) }},
		{"Unsubscribe", false, fixed(broker.AppendUnsubscribe(nil, 1))},
		{"Observe", false, func(e uint32) []byte { return broker.AppendObserve(nil, e) }},
		{"Unobserve", false, func(e uint32) []byte { return broker.AppendUnobserve(nil, e) }},
		{"Disconnect", false, fixed(broker.AppendDisconnect(nil, "bye"))},
		{"Ping", false, fixed(broker.AppendPing(nil))},
		{"Pong", false, fixed(broker.AppendPong(nil))},
		// Server-to-client types a client must never send, and invalid codes.
		{"Init", false, fixed(broker.AppendInit(nil, 42, "127.0.0.1"))},
		{"Connack", false, fixed(broker.AppendConnack(nil, 0, 7, ""))},
		{"Suback", false, fixed(broker.AppendAck(nil, broker.MsgSuback, 0, 7, "t"))},
		{"CreateAck", false, fixed(broker.AppendAck(nil, broker.MsgCreateAck, 0, 7, "t"))},
		{"CreateSubAck", false, fixed(broker.AppendAck(nil, broker.MsgCreateSubAck, 0, 7, "t"))},
		{"Change", false, fixed(broker.AppendChange(nil, 7, 1))},
		{"type-0", false, fixed([]byte{0, 1, 2})},
		{"type-10", false, fixed([]byte{10, 1, 2})},
		{"type-255", false, fixed([]byte{255})},
	}
}

// TestSMQMessagesCutAndCorrupted sends every SMQ message type to the
// example app's broker (/smq.lsp, the Lua broker with async hooks) and to
// a Go broker without hooks (/gosmq, the synchronous path), over both
// transports: truncated at every length (framing consistent), the
// frame cut at every byte (then EOF), and every byte of the frame
// corrupted. Each case is its own connection, followed by a Ping and a
// half-close; the server must close the connection, then still serve a
// normal client with its memory back near the baseline.
func TestSMQMessagesCutAndCorrupted(t *testing.T) {
	s := startStack(t, Config{})
	b := settle(t, s)
	var total atomic.Int64
	defer func() { t.Logf("%d hostile SMQ connections", total.Load()) }()
	for _, target := range []struct {
		path string
		raw  bool
	}{{"/smq.lsp", false}, {"/smq.lsp", true}, {"/gosmq", false}, {"/gosmq", true}} {
		raw, path := target.raw, target.path
		transport := map[bool]string{false: "ws", true: "raw"}[raw]
		for _, tpl := range smqTemplates() {
			t.Run(path+"/"+transport+"/"+tpl.name, func(t *testing.T) {
				// kinds: 0 = message truncated to i bytes, 1 = frame cut at i, 2 = frame byte i flipped.
				probe, err := dialSMQ(s.Addr, path, raw)
				if err != nil {
					t.Fatal(err)
				}
				msgLen := len(tpl.build(1))
				frameLen := len(probe.frame(tpl.build(1)))
				probe.Close()
				type mut struct{ kind, i int }
				var muts []mut
				for i := 0; i < msgLen; i++ {
					muts = append(muts, mut{0, i})
				}
				for i := 1; i < frameLen; i++ {
					muts = append(muts, mut{1, i})
				}
				for i := 0; i < frameLen; i++ {
					muts = append(muts, mut{2, i})
				}
				total.Add(int64(len(muts)))
				parallel(len(muts), 16, func(k int) {
					m := muts[k]
					what := fmt.Sprintf("%s kind %d at %d", tpl.name, m.kind, m.i)
					c, err := dialSMQ(s.Addr, path, raw)
					if err != nil {
						t.Errorf("%s: dial: %v", what, err)
						return
					}
					defer c.Close()
					if !tpl.connect {
						if err := c.connect(nextUID()); err != nil {
							t.Errorf("%s: connect: %v", what, err)
							return
						}
					}
					msg := tpl.build(c.etid)
					frame := c.frame(msg)
					switch m.kind {
					case 0:
						frame = c.frame(msg[:m.i])
					case 1:
						frame = frame[:m.i]
					case 2:
						frame = bytes.Clone(frame)
						frame[m.i] ^= 0xff
					}
					_, _ = c.nc.Write(frame)
					if m.kind != 1 {
						_, _ = c.nc.Write(c.frame(broker.AppendPing(nil)))
					}
					drainToEOF(t, c.nc, c.br, 10*time.Second, what)
				})
			})
		}
	}
	recovered(t, s, b)
}

// TestSMQAbuse covers the broker-level attacks: PTID spoofing, PubFrag
// abuse, oversize payloads for raw peers, floods of Create and Subscribe,
// a peer that never sends Connect, and silent peers.
func TestSMQAbuse(t *testing.T) {
	s := startStack(t, Config{Broker: broker.Options{MaxTopicsPerPeer: 100, MaxSubscriptionsPerPeer: 100, ReadTimeout: 300 * time.Millisecond, MaxMessage: 1 << 20}})
	b := settle(t, s)
	for _, path := range []string{"/smq.lsp", "/gosmq"} {
		for _, raw := range []bool{false, true} {
			name := fmt.Sprintf("%s raw=%v", path, raw)
			t.Run("PTID spoof "+name, func(t *testing.T) {
				c, err := dialSMQ(s.Addr, path, raw)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				if err := c.connect(nextUID()); err != nil {
					t.Fatal(err)
				}
				_ = c.send(broker.AppendPublish(nil, c.etid, c.etid+1, 0, []byte("spoofed")))
				m, err := c.waitFor(broker.MsgDisconnect, 5*time.Second)
				if err != nil {
					t.Fatalf("no Disconnect after a spoofed PTID: %v", err)
				}
				t.Logf("disconnected: %q", m[1:])
				drainToEOF(t, c.nc, c.br, 5*time.Second, "spoofed PTID")
			})
			t.Run("PubFrag "+name, func(t *testing.T) {
				c, err := dialSMQ(s.Addr, path, raw)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				if err := c.connect(nextUID()); err != nil {
					t.Fatal(err)
				}
				// Fragments past 0xFFF0 in total: over WebSocket the first one
				// is already a violation.
				chunk := make([]byte, 8000)
				for i := 0; i < 10; i++ {
					if err := c.send(broker.AppendPubFrag(nil, 0, c.etid, 0, chunk)); err != nil {
						break
					}
				}
				drainToEOF(t, c.nc, c.br, 5*time.Second, "PubFrag overflow")
			})
			t.Run("Create and Subscribe flood "+name, func(t *testing.T) {
				c, err := dialSMQ(s.Addr, path, raw)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				if err := c.connect(nextUID()); err != nil {
					t.Fatal(err)
				}
				const n = 3000
				go func() {
					var batch []byte
					for i := 0; i < n; i++ {
						var m []byte
						if i%2 == 0 {
							m = broker.AppendCreate(nil, fmt.Sprintf("flood/%s/%d", c.nc.LocalAddr(), i))
						} else {
							m = broker.AppendSubscribe(nil, fmt.Sprintf("flood/%s/%d", c.nc.LocalAddr(), i))
						}
						batch = append(batch, c.frame(m)...)
						if len(batch) > 32<<10 {
							if _, err := c.nc.Write(batch); err != nil {
								return
							}
							batch = batch[:0]
						}
					}
					_, _ = c.nc.Write(batch)
				}()
				denied, acked := 0, 0
				for acked+denied < n {
					m, err := c.read(10 * time.Second)
					if err != nil {
						t.Fatalf("after %d acks: %v", acked+denied, err)
					}
					if len(m) >= 2 && (m[0] == byte(broker.MsgCreateAck) || m[0] == byte(broker.MsgSuback)) {
						if m[1] == 0 {
							acked++
						} else {
							denied++
						}
					}
				}
				t.Logf("%d accepted, %d denied", acked, denied)
				if denied == 0 {
					t.Errorf("a flood of %d new names was accepted in full", n)
				}
			})
			t.Run("no Connect "+name, func(t *testing.T) {
				if path == "/smq.lsp" {
					t.Parallel() // the app's broker keeps BAS's 4 s readtmo
				}
				c, err := dialSMQ(s.Addr, path, raw)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				m, err := c.waitFor(broker.MsgConnack, 6*time.Second)
				if err != nil {
					t.Fatalf("no Connack after the read timeout: %v", err)
				}
				if m[1] != byte(broker.ConnackUnavailable) {
					t.Errorf("Connack code %d, want 2", m[1])
				}
				drainToEOF(t, c.nc, c.br, 5*time.Second, "no Connect")
			})
		}
	}
	t.Run("oversize payload for a raw subscriber", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		got := make(chan int, 10)
		sub, err := client.Dial(ctx, s.URL("/gosmq"), &client.Options{Raw: true})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		if _, _, err := sub.SubscribeWait(ctx, "big", &client.SubscribeOptions{OnMsg: func(m client.Message) { got <- len(m.Data) }}); err != nil {
			t.Fatal(err)
		}
		before := s.Hub.Stats().Oversize
		pub, err := dialSMQ(s.Addr, "/gosmq", false)
		if err != nil {
			t.Fatal(err)
		}
		defer pub.Close()
		if err := pub.connect(nextUID()); err != nil {
			t.Fatal(err)
		}
		_ = pub.send(broker.AppendCreate(nil, "big"))
		ack, err := pub.waitFor(broker.MsgCreateAck, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		tid := binary.BigEndian.Uint32(ack[2:])
		_ = pub.send(broker.AppendPublish(nil, tid, pub.etid, 0, make([]byte, 0xfff0+100)))
		_ = pub.send(broker.AppendPublish(nil, tid, pub.etid, 0, []byte("small")))
		select {
		case n := <-got:
			if n != 5 {
				t.Fatalf("raw subscriber got %d bytes first, want the small message", n)
			}
		case <-ctx.Done():
			t.Fatal("the small message never arrived")
		}
		if s.Hub.Stats().Oversize == before {
			t.Error("oversize drop not counted")
		}
	})
	recovered(t, s, b)
}

// TestSilentPeers: with PingInterval and IdleTimeout set, a WebSocket peer
// that answers no ping and a raw SMQ peer that sends nothing (a half-open
// connection looks the same from the server) are reaped; a live SMQ client
// that answers pings is kept.
func TestSilentPeers(t *testing.T) {
	s := startStack(t, Config{Runtime: runtime.Config{PingInterval: 200 * time.Millisecond, IdleTimeout: 600 * time.Millisecond}})
	b := settle(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	live, err := client.Dial(ctx, s.URL("/smq.lsp"), nil)
	if err != nil {
		t.Fatal(err)
	}
	var silent []*smqConn
	for _, raw := range []bool{false, true} {
		for i := 0; i < 5; i++ {
			c, err := dialSMQ(s.Addr, "/smq.lsp", raw)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.connect(nextUID()); err != nil {
				t.Fatal(err)
			}
			silent = append(silent, c)
		}
	}
	start := time.Now()
	for _, c := range silent {
		_ = c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 4096)
		for {
			if _, err := c.nc.Read(buf); err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					t.Fatalf("silent peer (raw %v) not reaped after %v", c.raw, time.Since(start))
				}
				break
			}
		}
		c.Close()
	}
	t.Logf("silent peers reaped within %v", time.Since(start).Round(time.Millisecond))
	select {
	case <-live.Done():
		t.Fatalf("the live client was closed too: %v", live.Err())
	default:
	}
	live.Close()
	recovered(t, s, b)
}
