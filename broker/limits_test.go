package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"unsafe"
)

// countHandler is a slog.Handler that counts the hub's topic-limit
// warnings (and keeps the last one) instead of printing them. Any
// goroutine.
type countHandler struct {
	limitWarns atomic.Int32
	mu         sync.Mutex
	last       string
}

func (c *countHandler) Enabled(context.Context, slog.Level) bool { return true }

func (c *countHandler) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "topic limit") {
		c.limitWarns.Add(1)
		var sb strings.Builder
		sb.WriteString(r.Message)
		r.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&sb, " %s=%v", a.Key, a.Value); return true })
		c.mu.Lock()
		c.last = sb.String()
		c.mu.Unlock()
	}
	return nil
}

func (c *countHandler) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *countHandler) WithGroup(string) slog.Handler      { return c }

// expectAck reads an ack of type typ and checks status, name, and for an
// accepted ack the ID (want 0: any non-zero ID). It returns the ID.
func (w *wire) expectAck(typ MsgType, status uint8, name string, want uint32) uint32 {
	w.t.Helper()
	a := w.expect(typ)
	switch {
	case a.Status != status || string(a.Text) != name:
		w.t.Fatalf("%v %+v; want status %d for %q", typ, a, status, name)
	case status != 0 && a.ID != 0:
		w.t.Fatalf("denied %v carries ID %#x; want 0", typ, a.ID)
	case status == 0 && (a.ID == 0 || want != 0 && a.ID != want):
		w.t.Fatalf("%v %+v; want ID %#x", typ, a, want)
	}
	return a.ID
}

// TestServeHubTopicLimit fills a hub to Options.MaxTopics over real
// loopback connections (raw and WebSocket), then checks that every way a
// new name enters the table is refused the protocol way (denied ack, ID 0,
// peer still connected) or with ErrTopicLimit (server-side API), that
// known names keep working, that refusals are counted, and that the flood
// of refusals is logged once.
func TestServeHubTopicLimit(t *testing.T) {
	logs := &countHandler{}
	h, srv := newTestServer(t, &Options{MaxTopics: 3, Logger: slog.New(logs)})

	raw := dialRaw(t, srv, false)
	raw.connect(2, "raw-limit")
	raw.send(AppendCreate(nil, "t1"))
	t1 := raw.expectAck(msgCreateAck, 0, "t1", 0)
	t2 := raw.subscribe("t2")
	raw.send(AppendCreateSub(nil, "s1"))
	s1 := raw.expectAck(msgCreateSubAck, 0, "s1", 0)
	if s := h.Stats(); s.Topics != 2 || s.Subtopics != 1 || s.TopicsRefused != 0 {
		t.Fatalf("stats when full: %+v", s)
	}

	ws := dialWS(t, srv)
	ws.connect(2, "ws-limit")

	// Every client request for a new name, on both transports.
	for _, c := range []struct {
		name string
		w    *wire
	}{{"raw", raw}, {"ws", ws}} {
		t.Run("client "+c.name, func(t *testing.T) {
			w := c.w
			w.t = t
			defer func() { w.t = nil }()
			w.send(AppendCreate(nil, "new-"+c.name))
			w.expectAck(msgCreateAck, 1, "new-"+c.name, 0)
			w.send(AppendSubscribe(nil, "newsub-"+c.name))
			w.expectAck(msgSuback, 1, "newsub-"+c.name, 0)
			w.send(AppendCreateSub(nil, "newst-"+c.name))
			w.expectAck(msgCreateSubAck, 1, "newst-"+c.name, 0)
			// Still connected, and known names still resolve to their IDs.
			w.send(AppendPing(nil))
			w.expect(msgPong)
			w.send(AppendCreate(nil, "t1"))
			w.expectAck(msgCreateAck, 0, "t1", t1)
			w.send(AppendCreateSub(nil, "s1"))
			w.expectAck(msgCreateSubAck, 0, "s1", s1)
		})
	}
	raw.t, ws.t = t, t
	// Subscribing to a known topic still works, and so does routing.
	if got := ws.subscribe("t1"); got != t1 {
		t.Fatalf("subscribe t1 = %#x, want %#x", got, t1)
	}
	raw.send(AppendPublish(nil, t1, raw.etid, s1, []byte("still works")))
	ws.expectPublish(t1, raw.etid, s1, []byte("still works"))

	// The server-side Go API.
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"CreateTopic", func() error { _, err := h.CreateTopic("g1", 0); return err }},
		{"CreateTopic preassigned", func() error { _, err := h.CreateTopic("g2", 7); return err }},
		{"CreateSubtopic", func() error { _, err := h.CreateSubtopic("gs", 0); return err }},
		{"SubscribeTopic", func() error { _, err := h.SubscribeTopic("g3", nil); return err }},
		{"SubscribeTopic self new subtopic", func() error {
			_, err := h.SubscribeTopic("self", &SubscribeOptions{Subtopic: "gs2", OnMsg: func(Message) {}})
			return err
		}},
		{"SubscribeTid new subtopic", func() error {
			return h.SubscribeTid(t2, &SubscribeOptions{Subtopic: "gs3", OnMsg: func(Message) {}})
		}},
		{"PublishTopic new topic", func() error { _, err := h.PublishTopic([]byte("x"), "g4", ""); return err }},
		{"PublishTopic new subtopic", func() error { _, err := h.PublishTopic([]byte("x"), "t1", "gs4"); return err }},
	} {
		t.Run("server "+tc.name, func(t *testing.T) {
			if err := tc.call(); !errors.Is(err, ErrTopicLimit) {
				t.Fatalf("err %v, want ErrTopicLimit", err)
			}
		})
	}
	if h.Create("g5", 0) != 0 || h.CreateSub("gs5", 0) != 0 || h.Subscribe("g6", nil) != 0 {
		t.Fatal("the error-less forms did not return 0 when full")
	}
	if n, _ := h.Subscribers(t2); n != 1 {
		t.Fatalf("a refused SubscribeTid subscribed the server: %d subscribers", n)
	}
	// Known names and "self" are not affected.
	if tid, err := h.CreateTopic("t1", 0); err != nil || tid != t1 {
		t.Fatalf("CreateTopic(t1) = %#x, %v", tid, err)
	}
	if id, err := h.CreateSubtopic("s1", 0); err != nil || id != s1 {
		t.Fatalf("CreateSubtopic(s1) = %#x, %v", id, err)
	}
	if tid, err := h.SubscribeTopic("t1", &SubscribeOptions{Subtopic: "s1"}); err != nil || tid != t1 {
		t.Fatalf("SubscribeTopic(t1) = %#x, %v", tid, err)
	}
	if tid, err := h.SubscribeTopic("self", nil); err != nil || tid != h.ServerEtid() {
		t.Fatalf("SubscribeTopic(self) = %#x, %v", tid, err)
	}
	if n, err := h.PublishTopic([]byte("from server"), "t1", "s1"); err != nil || n != 2 {
		t.Fatalf("PublishTopic(t1) = %d, %v; want the ws client and the server", n, err)
	}
	ws.expectPublish(t1, h.ServerEtid(), s1, []byte("from server"))

	s := h.Stats()
	const refused = 2*3 + 8 + 3 // client requests, server calls with errors, error-less calls
	if s.Topics != 2 || s.Subtopics != 1 || s.TopicsRefused != refused {
		t.Fatalf("stats %+v; want 2 topics, 1 sub-topic, %d refused", s, refused)
	}
	if n := logs.limitWarns.Load(); n != 1 {
		t.Fatalf("%d topic-limit warnings for %d refusals; want 1 per interval", n, refused)
	}
	logs.mu.Lock()
	last := logs.last
	logs.mu.Unlock()
	if !strings.Contains(last, "limit=3") || !strings.Contains(last, "name=new-raw") {
		t.Fatalf("warning %q lacks the limit or the first refused name", last)
	}
	if h.Etid2Peer(raw.etid) == nil || h.Etid2Peer(ws.etid) == nil {
		t.Fatal("a refused peer was disconnected")
	}
}

// TestServeTopicChurnBounded is issue 8's scenario: peers that each create
// up to MaxTopicsPerPeer names and leave. The names stay (SMQ §1.7), but
// the table stops at MaxTopics; per-peer refusals are not counted as
// hub-wide ones.
func TestServeTopicChurnBounded(t *testing.T) {
	h, srv := newTestServer(t, &Options{MaxTopicsPerPeer: 3, MaxTopics: 10, Logger: slog.New(&countHandler{})})
	const peers = 6
	accepted := 0
	for i := range peers {
		w := dialRaw(t, srv, i%2 == 0)
		w.connect(2, fmt.Sprintf("churn-%d", i))
		for j := range 4 { // one more than the per-peer cap
			name := fmt.Sprintf("p%d-n%d", i, j)
			if j%2 == 0 {
				w.send(AppendCreate(nil, name))
			} else {
				w.send(AppendCreateSub(nil, name))
			}
			typ := map[bool]MsgType{true: msgCreateAck, false: msgCreateSubAck}[j%2 == 0]
			a := w.expect(typ)
			if a.Status == 0 {
				accepted++
			}
			if j == 3 && a.Status != 1 {
				t.Fatalf("peer %d: name past MaxTopicsPerPeer accepted", i)
			}
		}
		w.send(AppendDisconnect(nil, ""))
		w.expectClosed()
	}
	waitFor(t, ioTimeout, "every churn peer gone", func() bool { return h.Stats().Peers == 0 })
	s := h.Stats()
	if accepted != 10 || s.Topics+s.Subtopics != 10 {
		t.Fatalf("accepted %d, stats %+v; want the table stopped at 10 names", accepted, s)
	}
	// Peers 0–2: 3 accepted, the 4th refused by the per-peer cap (not
	// counted). Peer 3: 1 accepted, then 3 refused by the hub (its per-peer
	// count stays at 1). Peers 4 and 5: 4 refused each.
	if s.TopicsRefused != 3+4+4 {
		t.Fatalf("TopicsRefused %d, want 11", s.TopicsRefused)
	}
}

// TestTopicLimitConcurrent races server-side creators (and a client) for
// the last free names: the table never exceeds MaxTopics and every call
// is either accepted or counted.
func TestTopicLimitConcurrent(t *testing.T) {
	h, srv := newTestServer(t, &Options{MaxTopics: 50, Logger: slog.New(&countHandler{})})
	w := dialWS(t, srv)
	w.connect(2, "racer-1")
	var wg sync.WaitGroup
	var ok atomic.Int32
	for g := range 8 {
		wg.Go(func() {
			for i := range 20 {
				var err error
				if i%2 == 0 {
					_, err = h.CreateTopic(fmt.Sprintf("g%d-%d", g, i), 0)
				} else {
					_, err = h.CreateSubtopic(fmt.Sprintf("g%d-%d", g, i), 0)
				}
				if err == nil {
					ok.Add(1)
				} else if !errors.Is(err, ErrTopicLimit) {
					t.Errorf("unexpected error %v", err)
				}
			}
		})
	}
	for i := range 20 {
		w.send(AppendCreate(nil, fmt.Sprintf("c-%d", i)))
	}
	for range 20 {
		if a := w.expect(msgCreateAck); a.Status == 0 {
			ok.Add(1)
		}
	}
	wg.Wait()
	s := h.Stats()
	if s.Topics+s.Subtopics != 50 || ok.Load() != 50 || s.TopicsRefused != 8*20+20-50 {
		t.Fatalf("stats %+v, %d accepted; want exactly 50 names and the rest refused", s, ok.Load())
	}
}

func TestMaxTopicsDefaults(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  int
		want int
	}{
		{"zero means the default", 0, DefaultMaxTopics},
		{"negative means the default", -5, DefaultMaxTopics},
		{"explicit", 42, 42},
		{"no limit", NoTopicLimit, NoTopicLimit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := Options{MaxTopics: tc.set}
			o.fill()
			if o.MaxTopics != tc.want {
				t.Fatalf("MaxTopics %d after fill, want %d", o.MaxTopics, tc.want)
			}
		})
	}
}

// TestPeerFitsItsSizeClass guards the memory per idle client: a Peer is one
// 112-byte allocation. A field that not every connected client needs
// belongs in peerMore.
func TestPeerFitsItsSizeClass(t *testing.T) {
	if n := unsafe.Sizeof(Peer{}); n > 112 {
		t.Fatalf("Peer is %d bytes, over the 112-byte size class", n)
	}
}
