package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tarponrt/tarpon/broker"
)

const testTimeout = 5 * time.Second

type transportCase struct {
	name string
	opts Options
	raw  bool
}

// transports are the four ways a client can connect (SMQ spec §5 items 1–3).
var transports = []transportCase{
	{name: "websocket"},
	{name: "raw", opts: Options{Raw: true}, raw: true},
	{name: "raw http response", opts: Options{Raw: true, SendHTTPResponse: true}, raw: true},
	{name: "raw connect v2", opts: Options{Raw: true, ConnectV2: true}, raw: true},
}

func (tc transportCase) url(b *testBroker) string {
	if tc.raw {
		return b.httpURL()
	}
	return b.wsURL()
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// dial connects with tc's transport plus extra options and closes the
// client at cleanup.
func dial(t *testing.T, b *testBroker, tc transportCase, extra func(*Options)) *Client {
	t.Helper()
	o := tc.opts
	if extra != nil {
		extra(&o)
	}
	c, err := Dial(ctxT(t), tc.url(b), &o)
	if err != nil {
		t.Fatalf("dial %s: %v", tc.name, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// inbox collects copies of received messages.
type inbox chan Message

func newInbox() inbox { return make(inbox, 256) }

func (in inbox) onMsg(m Message) {
	m.Data = bytes.Clone(m.Data)
	in <- m
}

func (in inbox) next(t *testing.T, what string) Message {
	t.Helper()
	select {
	case m := <-in:
		return m
	case <-time.After(testTimeout):
		t.Fatalf("timed out waiting for %s", what)
		return Message{}
	}
}

// TestPubSub publishes over every transport to a subscriber on every
// transport, so the broker's re-framing between WebSocket and raw is
// exercised both ways.
func TestPubSub(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0", nil)
	for _, st := range transports {
		for _, pt := range transports {
			t.Run(st.name+" <- "+pt.name, func(t *testing.T) {
				sub := dial(t, b, st, nil)
				pub := dial(t, b, pt, nil)
				topic := "pubsub/" + st.name + "/" + pt.name
				in := newInbox()
				tid, _, err := sub.SubscribeWait(ctxT(t), topic, &SubscribeOptions{OnMsg: in.onMsg})
				if err != nil {
					t.Fatal(err)
				}
				payload := []byte("héllo ✓ " + topic)
				if err := pub.Publish(payload, topic, ""); err != nil {
					t.Fatal(err)
				}
				m := in.next(t, "publish")
				if m.TID != tid || m.PTID != pub.Etid() || m.SubTID != 0 || !bytes.Equal(m.Data, payload) {
					t.Fatalf("got %+v (tid %d, pub etid %d)", m, tid, pub.Etid())
				}
				// With a sub-topic: the catch-all gets it with the shared ID.
				if err := pub.Publish([]byte{0, 1, 2, 255}, topic, "detail"); err != nil {
					t.Fatal(err)
				}
				m = in.next(t, "publish with sub-topic")
				want, err := sub.CreateSub(ctxT(t), "detail")
				if err != nil {
					t.Fatal(err)
				}
				if m.SubTID != want || !bytes.Equal(m.Data, []byte{0, 1, 2, 255}) {
					t.Fatalf("got %+v, want subtid %d", m, want)
				}
				// The publisher's own lookups are filled in.
				if id, ok := pub.TopicID(topic); !ok || id != tid {
					t.Fatalf("publisher TopicID = %d %v", id, ok)
				}
				if n, ok := pub.SubtopicName(want); !ok || n != "detail" {
					t.Fatalf("SubtopicName = %q %v", n, ok)
				}
			})
		}
	}
}

func TestDirectMessagesWithSubtopics(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0", nil)
	for _, tc := range transports[:2] {
		t.Run(tc.name, func(t *testing.T) {
			a := dial(t, b, tc, nil)
			c := dial(t, b, transports[1-indexOf(tc)], nil)
			replyID, err := a.CreateSub(ctxT(t), "statusReply")
			if err != nil {
				t.Fatal(err)
			}
			// A answers requests on its ETID, sub-topic getStatus, from the
			// callback (PublishTo is safe there).
			_, getStatus, err := a.SubscribeWait(ctxT(t), "self", &SubscribeOptions{
				Subtopic: "getStatus",
				OnMsg: func(m Message) {
					_ = a.PublishTo(append([]byte("status:"), m.Data...), m.PTID, replyID)
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			replies, other := newInbox(), newInbox()
			etid, subtid, err := c.SubscribeWait(ctxT(t), "self", &SubscribeOptions{Subtopic: "statusReply", OnMsg: replies.onMsg})
			if err != nil {
				t.Fatal(err)
			}
			if etid != c.Etid() || subtid != replyID {
				t.Fatalf("self subscribe gave %d/%d, want %d/%d", etid, subtid, c.Etid(), replyID)
			}
			if err := c.Publish([]byte("q1"), "unused-topic", ""); err != nil { // resolves a name on the way
				t.Fatal(err)
			}
			if err := c.PublishTo([]byte("q1"), a.Etid(), getStatus); err != nil {
				t.Fatal(err)
			}
			m := replies.next(t, "reply")
			if string(m.Data) != "status:q1" || m.PTID != a.Etid() || m.TID != c.Etid() || m.SubTID != replyID {
				t.Fatalf("reply %+v", m)
			}
			// A direct message with no matching callback goes to OnMsg.
			d := dial(t, b, tc, func(o *Options) { o.OnMsg = other.onMsg })
			if err := c.PublishTo([]byte("stray"), d.Etid(), 0); err != nil {
				t.Fatal(err)
			}
			if m := other.next(t, "default OnMsg"); string(m.Data) != "stray" || m.TID != d.Etid() {
				t.Fatalf("stray %+v", m)
			}
		})
	}
}

func indexOf(tc transportCase) int {
	for i, x := range transports {
		if x.name == tc.name {
			return i
		}
	}
	return -1
}

func TestCreateSharesIDs(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0", nil)
	a := dial(t, b, transports[0], nil)
	c := dial(t, b, transports[1], nil)
	ta, err := a.Create(ctxT(t), "shared")
	if err != nil {
		t.Fatal(err)
	}
	tc, err := c.Create(ctxT(t), "shared")
	if err != nil || ta != tc || ta == 0 {
		t.Fatalf("Create: %d vs %d (%v)", ta, tc, err)
	}
	if htid, ok := b.hub.Topic2Tid("shared"); !ok || htid != ta {
		t.Fatalf("hub says %d", htid)
	}
	sa, _ := a.CreateSub(ctxT(t), "sub")
	sc, _ := c.CreateSub(ctxT(t), "sub")
	if sa != sc || sa == 0 {
		t.Fatalf("CreateSub: %d vs %d", sa, sc)
	}
	// Concurrent Creates of one name share one request and one answer.
	var wg sync.WaitGroup
	ids := make([]uint32, 8)
	for i := range ids {
		wg.Go(func() { ids[i], _ = a.Create(ctxT(t), "burst") })
	}
	wg.Wait()
	for _, id := range ids {
		if id == 0 || id != ids[0] {
			t.Fatalf("burst ids %v", ids)
		}
	}
	if _, err := a.Create(ctxT(t), ""); err == nil {
		t.Fatal("empty name accepted")
	}
}

func TestDenied(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0", &broker.Options{Hooks: broker.Hooks{
		PermitTopic:    func(_ *broker.Peer, topic string, _ bool) bool { return !strings.HasPrefix(topic, "secret") },
		PermitSubtopic: func(_ *broker.Peer, s string) bool { return s != "nope" },
	}})
	c := dial(t, b, transports[0], nil)
	if _, err := c.Create(ctxT(t), "secret/x"); !errors.Is(err, ErrDenied) {
		t.Fatalf("create: %v", err)
	}
	if _, _, err := c.SubscribeWait(ctxT(t), "secret/y", nil); !errors.Is(err, ErrDenied) {
		t.Fatalf("subscribe: %v", err)
	}
	if _, err := c.CreateSub(ctxT(t), "nope"); !errors.Is(err, ErrDenied) {
		t.Fatalf("createsub: %v", err)
	}
}

func TestObserve(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0", nil)
	for _, tc := range transports[:2] {
		t.Run(tc.name, func(t *testing.T) {
			a := dial(t, b, tc, nil)
			c := dial(t, b, tc, nil)
			topic := "watched/" + tc.name
			tid, err := a.Create(ctxT(t), topic)
			if err != nil {
				t.Fatal(err)
			}
			counts := make(chan uint32, 16)
			if err := a.Observe(tid, func(n uint32) { counts <- n }); err != nil {
				t.Fatal(err)
			}
			expect := func(want uint32, what string) {
				t.Helper()
				select {
				case n := <-counts:
					if n != want {
						t.Fatalf("%s: count %d, want %d", what, n, want)
					}
				case <-time.After(testTimeout):
					t.Fatalf("%s: no Change", what)
				}
			}
			expect(0, "initial")
			if _, _, err := c.SubscribeWait(ctxT(t), topic, nil); err != nil {
				t.Fatal(err)
			}
			expect(1, "subscribe")
			if err := c.Unsubscribe(topic); err != nil {
				t.Fatal(err)
			}
			expect(0, "unsubscribe")
			if err := a.Unobserve(tid); err != nil {
				t.Fatal(err)
			}

			// ETID observation: Change(etid, 0) when the client leaves.
			gone := make(chan uint32, 4)
			if err := a.Observe(c.Etid(), func(n uint32) { gone <- n }); err != nil {
				t.Fatal(err)
			}
			if _, err := a.Create(ctxT(t), "barrier"); err != nil { // Observe processed
				t.Fatal(err)
			}
			_ = c.Close()
			select {
			case n := <-gone:
				if n != 0 {
					t.Fatalf("etid change %d", n)
				}
			case <-time.After(testTimeout):
				t.Fatal("no Change for the departed ETID")
			}
			a.mu.RLock()
			_, still := a.observers[c.Etid()]
			a.mu.RUnlock()
			if still {
				t.Fatal("ETID observer not dropped after Change 0")
			}
		})
	}
}

func TestServerSideClient(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0", nil)
	hub := b.hub
	hub.Subscribe("self", &broker.SubscribeOptions{Subtopic: "echo", OnMsg: func(m broker.Message) {
		_, _ = hub.Publish(append([]byte("echo:"), m.Data...), m.Ptid, m.Subtid)
	}})
	hub.Subscribe("self", &broker.SubscribeOptions{Subtopic: "news", OnMsg: func(broker.Message) {
		_, _ = hub.PublishTopic([]byte("from server"), "srv-news", "")
	}})
	for _, tc := range transports {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, b, tc, nil)
			in, news := newInbox(), newInbox()
			if _, _, err := c.SubscribeWait(ctxT(t), "self", &SubscribeOptions{Subtopic: "echo", OnMsg: in.onMsg}); err != nil {
				t.Fatal(err)
			}
			if err := c.Publish([]byte("ping ✓"), "x-unused", ""); err != nil {
				t.Fatal(err)
			}
			echo, _ := c.SubtopicID("echo")
			if err := c.PublishTo([]byte("ping ✓"), ServerETID, echo); err != nil {
				t.Fatal(err)
			}
			m := in.next(t, "echo")
			if string(m.Data) != "echo:ping ✓" || m.PTID != ServerETID || m.SubTID != echo {
				t.Fatalf("echo %+v", m)
			}
			tid, _, err := c.SubscribeWait(ctxT(t), "srv-news", &SubscribeOptions{OnMsg: news.onMsg})
			if err != nil {
				t.Fatal(err)
			}
			newsID, err := c.CreateSub(ctxT(t), "news")
			if err != nil {
				t.Fatal(err)
			}
			if err := c.PublishTo(nil, ServerETID, newsID); err != nil {
				t.Fatal(err)
			}
			m = news.next(t, "server publish")
			if string(m.Data) != "from server" || m.TID != tid || m.PTID != ServerETID {
				t.Fatalf("news %+v", m)
			}
		})
	}
}

func TestPubFrag(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0", nil)
	sub := dial(t, b, transports[0], nil)
	in := newInbox()
	if _, _, err := sub.SubscribeWait(ctxT(t), "frag", &SubscribeOptions{OnMsg: in.onMsg}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []transportCase{transports[1], transports[3]} {
		t.Run(tc.name, func(t *testing.T) {
			pub := dial(t, b, tc, func(o *Options) { o.FragmentSize = 1000 })
			tid, err := pub.Create(ctxT(t), "frag")
			if err != nil {
				t.Fatal(err)
			}
			// MaxPayload-13 is the largest payload the broker assembles
			// from fragments (it counts the 13 header bytes, as BAS does);
			// MaxPayload itself goes out as one Publish.
			for _, n := range []int{999, 1000, 1001, 2500, MaxPayload - 13, MaxPayload} {
				data := make([]byte, n)
				for i := range data {
					data[i] = byte(i*31 + n)
				}
				if err := pub.PublishTo(data, tid, 0); err != nil {
					t.Fatal(err)
				}
				m := in.next(t, fmt.Sprintf("%d-byte message", n))
				if !bytes.Equal(m.Data, data) || m.PTID != pub.Etid() {
					t.Fatalf("n=%d: got %d bytes from %d", n, len(m.Data), m.PTID)
				}
			}
			if err := pub.PublishTo(make([]byte, MaxPayload+1), tid, 0); !errors.Is(err, ErrTooLarge) {
				t.Fatalf("oversize: %v", err)
			}
		})
	}
}

func TestCredentialsAndRefusal(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0", &broker.Options{Hooks: broker.Hooks{
		Authenticate: func(p *broker.Peer, cred []byte) (broker.ConnackCode, string) {
			if string(cred) == fmt.Sprint("key-", p.Seed()) {
				return 0, ""
			}
			return 3, "bad credentials"
		},
	}})
	for _, tc := range transports {
		t.Run(tc.name, func(t *testing.T) {
			good := func(seed uint32, ip string) []byte {
				if ip == "" {
					t.Error("empty ip in Init")
				}
				return []byte(fmt.Sprint("key-", seed))
			}
			dial(t, b, tc, func(o *Options) { o.Credentials = good })
			o := tc.opts
			o.Credentials = func(uint32, string) []byte { return []byte("wrong") }
			_, err := Dial(ctxT(t), tc.url(b), &o)
			var ce *ConnackError
			if !errors.As(err, &ce) || ce.Code != 3 || ce.Reason != "bad credentials" {
				t.Fatalf("wrong credentials: %v", err)
			}
			o = tc.opts
			o.UID = "short"
			o.Credentials = good
			_, err = Dial(ctxT(t), tc.url(b), &o)
			if !errors.As(err, &ce) || ce.Code != 1 {
				t.Fatalf("5-byte UID: %v", err)
			}
		})
	}
}

func TestSameUIDTakeover(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0", nil)
	closed := make(chan error, 1)
	first := dial(t, b, transports[0], func(o *Options) {
		o.UID = "takeover-uid"
		o.Reconnect = 20 * time.Millisecond // must not be used after Disconnect
		o.OnClose = func(err error, again bool) {
			if again {
				t.Error("reconnecting after a broker Disconnect")
			}
			closed <- err
		}
	})
	second := dial(t, b, transports[1], func(o *Options) { o.UID = "takeover-uid" })
	select {
	case err := <-closed:
		var de *DisconnectError
		if !errors.As(err, &de) || de.Reason != "reconnect" {
			t.Fatalf("first closed with %v", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("first client not disconnected")
	}
	<-first.Done()
	if second.Etid() != first.Etid() {
		t.Fatalf("etid %d, want the old %d", second.Etid(), first.Etid())
	}
	if err := first.PublishTo([]byte("x"), 1, 0); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("publish after disconnect: %v", err)
	}
}

func TestClose(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0", nil)
	for _, tc := range transports[:2] {
		t.Run(tc.name, func(t *testing.T) {
			var got atomic.Value
			c := dial(t, b, tc, func(o *Options) {
				o.Reconnect = 10 * time.Millisecond
				o.OnClose = func(err error, again bool) { got.Store(fmt.Sprint(err, again)) }
			})
			etid := c.Etid()
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			if g := got.Load(); g != fmt.Sprint(ErrClosed, false) {
				t.Fatalf("OnClose got %v", g)
			}
			if !errors.Is(c.Err(), ErrClosed) {
				t.Fatalf("Err = %v", c.Err())
			}
			if err := c.Publish([]byte("x"), "t", ""); !errors.Is(err, ErrNotConnected) {
				t.Fatalf("publish after close: %v", err)
			}
			_ = c.Close() // idempotent
			waitFor(t, testTimeout, "broker to drop the peer", func() bool { return b.hub.Etid2Peer(etid) == nil })
		})
	}
}

func TestReconnect(t *testing.T) {
	for _, clean := range []bool{false, true} {
		for _, tc := range transports[:2] {
			name := fmt.Sprintf("%s clean=%v", tc.name, clean)
			t.Run(name, func(t *testing.T) {
				b := startBroker(t, "127.0.0.1:0", nil)
				addr := b.addr
				closes := make(chan bool, 4)
				reconnected := make(chan uint32, 4)
				c := dial(t, b, tc, func(o *Options) {
					o.UID = "reconnect-" + name
					o.Reconnect = 20 * time.Millisecond
					o.CleanStart = clean
					o.OnClose = func(_ error, again bool) { closes <- again }
					o.OnReconnect = func(etid uint32) { reconnected <- etid }
				})
				news, direct := newInbox(), newInbox()
				if _, _, err := c.SubscribeWait(ctxT(t), "news", &SubscribeOptions{OnMsg: news.onMsg}); err != nil {
					t.Fatal(err)
				}
				if _, _, err := c.SubscribeWait(ctxT(t), "self", &SubscribeOptions{Subtopic: "direct", OnMsg: direct.onMsg}); err != nil {
					t.Fatal(err)
				}
				oldTid, _ := c.TopicID("news")
				counts := make(chan uint32, 8)
				if err := c.Observe(oldTid, func(n uint32) { counts <- n }); err != nil {
					t.Fatal(err)
				}
				if n := <-counts; n != 1 {
					t.Fatalf("initial count %d", n)
				}

				b.stop()
				select {
				case again := <-closes:
					if !again {
						t.Fatal("OnClose says no reconnect")
					}
				case <-time.After(testTimeout):
					t.Fatal("no OnClose")
				}
				// Drop the Change(news, 0) the old broker may have sent while
				// shutting down (our own subscription went away).
				for len(counts) > 0 {
					<-counts
				}
				startBroker(t, addr, nil)
				var etid uint32
				select {
				case etid = <-reconnected:
				case <-time.After(testTimeout):
					t.Fatal("no reconnect")
				}
				if etid != c.Etid() || !c.Connected() {
					t.Fatalf("etid %d vs %d", etid, c.Etid())
				}
				if clean {
					if _, ok := c.TopicID("news"); ok {
						t.Fatal("clean start kept topics")
					}
					if _, _, err := c.SubscribeWait(ctxT(t), "news", &SubscribeOptions{OnMsg: news.onMsg}); err != nil {
						t.Fatal(err)
					}
				} else {
					// Subscriptions were restored before OnReconnect.
					select {
					case n := <-counts:
						if n != 1 {
							t.Fatalf("re-observed count %d", n)
						}
					case <-time.After(testTimeout):
						t.Fatal("named topic not re-observed")
					}
				}
				if err := c.Publish([]byte("after"), "news", ""); err != nil {
					t.Fatal(err)
				}
				if m := news.next(t, "news after reconnect"); string(m.Data) != "after" {
					t.Fatalf("news %q", m.Data)
				}
				if !clean {
					sid, _ := c.SubtopicID("direct")
					if err := c.PublishTo([]byte("me"), c.Etid(), sid); err != nil {
						t.Fatal(err)
					}
					if m := direct.next(t, "direct after reconnect"); string(m.Data) != "me" || m.TID != c.Etid() {
						t.Fatalf("direct %+v", m)
					}
				}
			})
		}
	}
}

// TestPublishToAllocs guards the hot path: no allocation per publish.
func TestPublishToAllocs(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0", nil)
	for _, tc := range transports[:2] {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, b, tc, nil)
			tid, err := c.Create(ctxT(t), "allocs")
			if err != nil {
				t.Fatal(err)
			}
			data := make([]byte, 256)
			_ = c.PublishTo(data, tid, 0)
			// AllocsPerRun counts the whole process, and the broker in it
			// reads what the client sends meanwhile: the best of three
			// runs is the client's own cost.
			best := math.Inf(1)
			for range 3 {
				best = min(best, testing.AllocsPerRun(200, func() { _ = c.PublishTo(data, tid, 0) }))
			}
			if best > 0 {
				t.Fatalf("PublishTo allocates %.1f times per call", best)
			}
		})
	}
}

// BenchmarkRoundTrip measures publish → broker → subscriber on one client.
func BenchmarkRoundTrip(b *testing.B) {
	for _, tc := range transports[:2] {
		b.Run(tc.name, func(b *testing.B) {
			br := startBroker(b, "127.0.0.1:0", nil)
			o := tc.opts
			url := br.wsURL()
			if tc.raw {
				url = br.httpURL()
			}
			got := make(chan struct{}, 1)
			c, err := Dial(context.Background(), url, &o)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			tid, _, err := c.SubscribeWait(context.Background(), "rt", &SubscribeOptions{OnMsg: func(Message) { got <- struct{}{} }})
			if err != nil {
				b.Fatal(err)
			}
			data := make([]byte, 64)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				_ = c.PublishTo(data, tid, 0)
				<-got
			}
		})
	}
}

// TestConcurrentPublishAndClose: many goroutines publish (by name and by
// ID) on one client while it is closed; every message sent before Close
// arrives intact and nothing races or panics.
func TestConcurrentPublishAndClose(t *testing.T) {
	// A deep send queue: the broker would otherwise (rightly) drop for the
	// subscriber while it falls behind the burst (SMQ spec §1.8 rule 5).
	b := startBroker(t, "127.0.0.1:0", &broker.Options{HighWater: 8 << 20})
	for _, tc := range transports[:2] {
		t.Run(tc.name, func(t *testing.T) {
			sub := dial(t, b, transports[0], nil)
			var got atomic.Int64
			tid, _, err := sub.SubscribeWait(ctxT(t), "conc", &SubscribeOptions{OnMsg: func(m Message) {
				if len(m.Data) != 100 || m.Data[0] != m.Data[99] {
					t.Errorf("torn message % x", m.Data[:4])
				}
				got.Add(1)
			}})
			if err != nil {
				t.Fatal(err)
			}
			pub := dial(t, b, tc, nil)
			var sent atomic.Int64
			var wg sync.WaitGroup
			for g := range 8 {
				wg.Go(func() {
					data := bytes.Repeat([]byte{byte(g)}, 100)
					for i := 0; i < 200; i++ {
						var err error
						if i%2 == 0 {
							err = pub.PublishTo(data, tid, 0)
						} else {
							err = pub.Publish(data, "conc", "")
						}
						if err != nil {
							return
						}
						sent.Add(1)
					}
				})
			}
			wg.Wait()
			waitFor(t, testTimeout, "all messages", func() bool { return got.Load() == sent.Load() })
			// Now publish while closing.
			for g := range 4 {
				wg.Go(func() {
					data := bytes.Repeat([]byte{byte(g)}, 100)
					for pub.PublishTo(data, tid, 0) == nil {
					}
				})
			}
			_ = pub.Close()
			wg.Wait()
		})
	}
}
