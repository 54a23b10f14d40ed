package broker

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestHandshake(t *testing.T) {
	h := newFakeHub(t, nil)
	c := connectFake(t, h, false, "abcdef")
	if c.etid == 1 {
		t.Fatal("client got the server ETID")
	}
	if p := h.Etid2Peer(c.etid); p != c.p || string(p.UID()) != "abcdef" || string(p.Info()) != "info" {
		t.Fatalf("Etid2Peer = %v", p)
	}
	v2 := openFake(t, h, true)
	v2.send(unhex(t, "02 02 00 00 06 61 62 63 64 65 67 00"))
	if a := v2.expect(msgConnack); a.Code != 0 || a.ID == 0 || a.ID == c.etid {
		t.Fatalf("v2 Connack %+v", a)
	}
	if s := h.Stats(); s.Peers != 2 || s.Handshaking != 0 {
		t.Fatalf("Stats %+v", s)
	}
}

func TestConnectRefused(t *testing.T) {
	tests := []struct {
		name   string
		hook   func(p *Peer, cred []byte) (ConnackCode, string)
		msg    string
		want   string // the exact Connack
		closed bool
	}{
		{name: "uid 5 bytes", msg: "02 01 05 61 62 63 64 65 00", want: "03 01 00 00 00 00"},
		{name: "version 3", msg: "02 03 06 61 62 63 64 65 66 00", want: "03 01 00 00 00 00"},
		{name: "not a connect", msg: "04 63 68 61 74", want: "03 01 00 00 00 00"},
		{name: "truncated connect", msg: "02 01 09 61 62", want: "03 01 00 00 00 00"},
		{name: "empty message", msg: "", want: "03 01 00 00 00 00"},
		{name: "hook bad credentials", msg: "02 01 06 61 62 63 64 65 66 03 78 79 7A",
			hook: func(p *Peer, cred []byte) (ConnackCode, string) {
				if string(cred) != "xyz" {
					return ConnackAccepted, ""
				}
				return ConnackBadCredentials, "bad"
			},
			want: "03 03 00 00 00 00 62 61 64"},
		{name: "hook access denied", msg: "02 01 06 61 62 63 64 65 66 00",
			hook: func(*Peer, []byte) (ConnackCode, string) { return ConnackAccessDenied, "" },
			want: "03 06 00 00 00 00"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newFakeHub(t, &Options{Hooks: Hooks{Authenticate: tc.hook}})
			c := openFake(t, h, false)
			c.send(unhex(t, tc.msg))
			if got := c.expectRaw(); !bytes.Equal(got, unhex(t, tc.want)) {
				t.Fatalf("Connack % X; want %s", got, tc.want)
			}
			c.expectClosed()
			if s := h.Stats(); s.Peers != 0 || s.Handshaking != 0 {
				t.Fatalf("Stats %+v", s)
			}
		})
	}
}

func TestConnectTimeout(t *testing.T) {
	h := newFakeHub(t, &Options{ReadTimeout: 20 * time.Millisecond})
	c := openFake(t, h, true)
	waitFor(t, 2*time.Second, "close after readtmo", c.c.isClosed)
	if got := c.expectRaw(); !bytes.Equal(got, unhex(t, "03 02 00 00 00 00")) {
		t.Fatalf("Connack % X; want 03 02 ...", got)
	}
	// A late Connect changes nothing.
	msg, _ := AppendConnect(nil, 1, 0, []byte("abcdef"), nil, nil)
	c.send(msg)
	c.expectNothing()
}

func TestSubscribePublish(t *testing.T) {
	h := newFakeHub(t, nil)
	a := connectFake(t, h, false, "client-a")
	b := connectFake(t, h, true, "client-b")
	tid := a.subscribe("chat")
	if tb := b.subscribe("chat"); tb != tid {
		t.Fatalf("same name, different tids %#x %#x", tid, tb)
	}
	b.publish(tid, 0, "hi")
	a.expectPublish(tid, b.etid, 0, "hi")
	b.expectPublish(tid, b.etid, 0, "hi") // no "no-local"
	// Direct message to an ETID, with a sub-topic; and to oneself.
	a.publish(b.etid, 77, "direct")
	b.expectPublish(b.etid, a.etid, 77, "direct")
	a.expectNothing()
	a.publish(a.etid, 0, "me")
	a.expectPublish(a.etid, a.etid, 0, "me")
	// Unknown destination: nobody.
	a.publish(0xDEAD, 0, "void")
	a.expectNothing()
	b.expectNothing()
	// Unsubscribe: a no longer receives.
	a.send(AppendUnsubscribe(nil, tid))
	b.publish(tid, 0, "again")
	a.expectNothing()
	b.expectPublish(tid, b.etid, 0, "again")
	if s := h.Stats(); s.Publishes != 5 || s.Deliveries != 5 || s.Undelivered != 1 {
		t.Fatalf("Stats %+v", s)
	}
}

func TestAcksInRequestOrder(t *testing.T) {
	h := newFakeHub(t, nil)
	c := connectFake(t, h, false, "abcdef")
	names := []string{"x", "", "é/ü", "x", "sub"}
	c.send(AppendCreate(nil, names[0]))
	c.send(AppendSubscribe(nil, names[1]))
	c.send(AppendCreateSub(nil, names[2]))
	c.send(AppendSubscribe(nil, names[3]))
	c.send(AppendCreateSub(nil, names[4]))
	types := []MsgType{msgCreateAck, msgSuback, msgCreateSubAck, msgSuback, msgCreateSubAck}
	var ids []uint32
	for i, typ := range types {
		a := c.expect(typ)
		if a.Status != 0 || string(a.Text) != names[i] || a.ID == 0 {
			t.Fatalf("ack %d: %+v", i, a)
		}
		ids = append(ids, a.ID)
	}
	if ids[0] != ids[3] {
		t.Fatal("Create and Subscribe of the same name gave different tids")
	}
	if got, _ := h.Tid2Topic(ids[0]); got != "x" {
		t.Fatalf("Tid2Topic = %q", got)
	}
	if got, _ := h.Tid2Subtopic(ids[2]); got != "é/ü" {
		t.Fatalf("Tid2Subtopic = %q", got)
	}
}

func TestDuplicateSubscribe(t *testing.T) {
	calls := 0
	h := newFakeHub(t, &Options{Hooks: Hooks{PermitTopic: func(*Peer, string, bool) bool { calls++; return true }}})
	obs := connectFake(t, h, false, "observer")
	c := connectFake(t, h, false, "abcdef")
	tid := c.subscribe("t")
	obs.send(AppendObserve(nil, tid))
	obs.expectChange(tid, 1)
	if again := c.subscribe("t"); again != tid || calls != 1 {
		t.Fatalf("duplicate subscribe: tid %#x, hook calls %d", again, calls)
	}
	obs.expectNothing()
}

func TestPtidSpoof(t *testing.T) {
	var closeErr error
	h := newFakeHub(t, &Options{Hooks: Hooks{OnClose: func(p *Peer, err error) { closeErr = err }}})
	a := connectFake(t, h, false, "abcdef")
	b := connectFake(t, h, false, "bbbbbb")
	a.send(AppendPublish(nil, b.etid, b.etid, 0, []byte("spoof")))
	if d := a.expect(msgDisconnect); string(d.Text) != "corrupt frame" {
		t.Fatalf("Disconnect %q", d.Text)
	}
	a.expectClosed()
	b.expectNothing()
	if !errors.Is(closeErr, ErrCorruptFrame) {
		t.Fatalf("OnClose err %v", closeErr)
	}
	b.expectOpen()
}

func TestServerRequestResponse(t *testing.T) {
	h := newFakeHub(t, nil)
	if h.ServerEtid() != 1 {
		t.Fatalf("server etid %d", h.ServerEtid())
	}
	sub := h.CreateSub("getStatus", 0)
	var got []Message
	h.Subscribe("self", &SubscribeOptions{Subtopic: "getStatus", OnMsg: func(m Message) {
		got = append(got, m)
		if _, err := h.Publish([]byte("status:"+string(m.Data)), m.Ptid, m.Subtid); err != nil {
			t.Error(err)
		}
	}})
	var dflt []string
	h.OnMsg(func(m Message) { dflt = append(dflt, string(m.Data)) })
	c := connectFake(t, h, true, "abcdef")
	c.publish(1, sub, "q")
	c.expectPublish(c.etid, 1, sub, "status:q")
	c.publish(1, 0, "other")
	c.expectNothing()
	if len(got) != 1 || len(dflt) != 1 || dflt[0] != "other" {
		t.Fatalf("callbacks: %d specific, default %q", len(got), dflt)
	}
}

func TestServerSubscribeTopicJSON(t *testing.T) {
	h := newFakeHub(t, nil)
	var vals []any
	var dflt int
	h.OnMsg(func(Message) { dflt++ })
	tid := h.Subscribe("json", &SubscribeOptions{JSON: true, OnMsg: func(m Message) { vals = append(vals, m.JSON) }})
	c := connectFake(t, h, false, "abcdef")
	c.publish(tid, 0, `{"a":1}`)
	c.publish(tid, 0, `not json`)
	if len(vals) != 1 || dflt != 1 {
		t.Fatalf("json values %v, default %d", vals, dflt)
	}
	if n, _ := h.Subscribers(tid); n != 1 {
		t.Fatalf("server subscription not counted: %d", n)
	}
	h.Unsubscribe("json")
	if n, _ := h.Subscribers(tid); n != 0 {
		t.Fatalf("after Unsubscribe: %d", n)
	}
}

func TestServerPublishAPI(t *testing.T) {
	h := newFakeHub(t, nil)
	if tid := h.Create("pre", 2); tid != 2 {
		t.Fatalf("preassigned tid %d", tid)
	}
	if tid := h.Create("pre2", 2); tid == 2 || tid == 0 {
		t.Fatalf("taken preassigned tid reused: %d", tid)
	}
	if id := h.CreateSub("s", 5); id != 5 {
		t.Fatalf("preassigned subtid %d", id)
	}
	if h.CreateSub("", 0) != 0 {
		t.Fatal("empty subtopic is not 0")
	}
	a := connectFake(t, h, false, "abcdef")
	b := connectFake(t, h, true, "bbbbbb")
	a.subscribe("news")
	if n, err := h.PublishTopic([]byte("x"), "news", "s"); n != 1 || err != nil {
		t.Fatalf("PublishTopic = %d, %v", n, err)
	}
	tid, _ := h.Topic2Tid("news")
	a.expectPublish(tid, 1, 5, "x")
	if _, err := h.Publish(make([]byte, MaxPayload+1), tid, 0); !errors.Is(err, ErrPayloadTooBig) {
		t.Fatalf("oversize publish: %v", err)
	}
	if !h.PubOn([]byte("as-a"), b.etid, a.etid, 9) {
		t.Fatal("PubOn failed")
	}
	b.expectPublish(b.etid, a.etid, 9, "as-a")
	if h.PubOn(nil, b.etid, 1, 0) || h.PubOn(nil, 0x1234, a.etid, 0) {
		t.Fatal("PubOn with the server or an unknown etid succeeded")
	}
	var peers int
	for range h.Peers() {
		peers++
	}
	topics := map[string]bool{}
	for _, name := range h.Topics() {
		topics[name] = true
	}
	if peers != 3 || !topics["news"] || !topics["pre"] {
		t.Fatalf("Peers %d, Topics %v", peers, topics)
	}
}

func TestObserve(t *testing.T) {
	h := newFakeHub(t, nil)
	o := connectFake(t, h, false, "observer")
	a := connectFake(t, h, true, "abcdef")
	tid := a.subscribe("t")
	// Topic: initial count, then on subscribe/unsubscribe/close.
	o.send(AppendObserve(nil, tid))
	o.expectChange(tid, 1)
	b := connectFake(t, h, false, "bbbbbb")
	b.subscribe("t")
	o.expectChange(tid, 2)
	b.send(AppendUnsubscribe(nil, tid))
	o.expectChange(tid, 1)
	// ETID: no initial Change; Change(etid, 0) when it leaves.
	o.send(AppendObserve(nil, b.etid))
	o.expectNothing()
	b.send(AppendDisconnect(nil, ""))
	b.expectClosed()
	o.expectChange(b.etid, 0)
	// Unknown id and own ETID.
	o.send(AppendObserve(nil, 0xABCDEF))
	o.expectChange(0xABCDEF, 0)
	o.send(AppendObserve(nil, o.etid))
	o.expectNothing()
	// Server-side observer alongside.
	var srv []int
	h.Observe(tid, func(n int, id uint32) { srv = append(srv, n) })
	a.send(AppendDisconnect(nil, ""))
	o.expectChange(tid, 0)
	if fmt.Sprint(srv) != "[1 0]" {
		t.Fatalf("server observer saw %v", srv)
	}
	// Unobserve: no more Change; the topic's subscribers are untouched (BAS bug §1.14).
	c := connectFake(t, h, false, "cccccc")
	c.subscribe("t")
	o.expectChange(tid, 1)
	o.send(AppendUnobserve(nil, tid))
	c.send(AppendUnsubscribe(nil, tid))
	o.expectNothing()
	c.subscribe("t")
	c.publish(tid, 0, "still")
	c.expectPublish(tid, c.etid, 0, "still")
}

func TestObserverClosingIsRemoved(t *testing.T) {
	h := newFakeHub(t, nil)
	o := connectFake(t, h, false, "observer")
	a := connectFake(t, h, false, "abcdef")
	tid := a.subscribe("t")
	o.send(AppendObserve(nil, tid))
	o.send(AppendObserve(nil, a.etid))
	o.expectChange(tid, 1)
	o.send(AppendDisconnect(nil, ""))
	h.mu.Lock()
	defer h.mu.Unlock()
	if t2, am := h.names["t"], a.p.more.Load(); len(t2.obs) != 0 || am == nil || len(am.obs) != 0 {
		t.Fatalf("closed observer left behind: topic %d, etid %v", len(t2.obs), am)
	}
}

func TestSameUIDTakeover(t *testing.T) {
	var closes []error
	var mu sync.Mutex
	h := newFakeHub(t, &Options{Hooks: Hooks{OnClose: func(p *Peer, err error) {
		mu.Lock()
		closes = append(closes, err)
		mu.Unlock()
	}}})
	o := connectFake(t, h, false, "observer")
	old := connectFake(t, h, false, "same-uid")
	tid := old.subscribe("t")
	o.send(AppendObserve(nil, old.etid))
	o.send(AppendObserve(nil, tid))
	o.expectChange(tid, 1)
	nw := connectFake(t, h, true, "same-uid")
	if nw.etid != old.etid {
		t.Fatalf("takeover etid %#x, want %#x", nw.etid, old.etid)
	}
	if d := old.expect(msgDisconnect); string(d.Text) != "reconnect" {
		t.Fatalf("old peer Disconnect %q", d.Text)
	}
	old.expectClosed()
	o.expectChange(tid, 0)
	o.expectChange(old.etid, 0)
	if len(closes) != 1 || !errors.Is(closes[0], ErrReconnect) {
		t.Fatalf("OnClose errors %v", closes)
	}
	// The new connection is reachable at the inherited ETID.
	o.publish(nw.etid, 0, "hello")
	nw.expectPublish(nw.etid, o.etid, 0, "hello")
	if s := h.Stats(); s.Peers != 2 {
		t.Fatalf("Stats %+v", s)
	}
}

// clientTypesTruncated lists, per client→broker message, the lengths below
// which it is malformed and must close the peer.
var minLen = map[MsgType]int{msgPublish: 13, msgPubFrag: 13, msgUnsubscribe: 5, msgObserve: 5, msgUnobserve: 5}

func TestTruncatedMessagesCloseOnlyThatPeer(t *testing.T) {
	h := newFakeHub(t, nil)
	watcher := connectFake(t, h, false, "watcher")
	wtid := watcher.subscribe("alive")
	n := 0
	for _, g := range goldenPackets(t) {
		full := g.wire(t)
		for cut := 0; cut < len(full); cut++ {
			name := fmt.Sprintf("%s cut %d", g.Name, cut)
			n++
			c := connectFake(t, h, true, fmt.Sprintf("peer-%06d", n))
			msg := bytes.Clone(full[:cut])
			if len(msg) >= 9 && (MsgType(msg[0]) == msgPublish || MsgType(msg[0]) == msgPubFrag) {
				copy(msg[5:9], AppendPublish(nil, 0, c.etid, 0, nil)[5:9]) // a valid PTID
			}
			c.send(msg)
			typ := MsgType(0)
			if cut > 0 {
				typ = MsgType(full[0])
			}
			mustClose := cut == 0 || cut < minLen[typ]
			switch typ {
			case msgSubscribe, msgCreate, msgCreateSub, msgPing, msgPong, msgPublish, msgPubFrag,
				msgUnsubscribe, msgObserve, msgUnobserve:
			default: // not accepted from a connected client at all
				mustClose = true
			}
			if typ == msgDisconnect {
				mustClose = true
			}
			if c.c.isClosed() != mustClose {
				t.Fatalf("%s: closed=%v, want %v", name, c.c.isClosed(), mustClose)
			}
			if mustClose && typ != msgDisconnect {
				if out := c.c.take(); len(out) != 0 {
					t.Fatalf("%s: closing peer was sent % X", name, out[0])
				}
			}
			watcher.publish(wtid, 0, "ping")
			watcher.expectPublish(wtid, watcher.etid, 0, "ping")
			c.send(AppendDisconnect(nil, ""))
		}
	}
	if s := h.Stats(); s.Peers != 1 {
		t.Fatalf("peers left behind: %+v", s)
	}
}

func TestUnexpectedTypesCloseSilently(t *testing.T) {
	h := newFakeHub(t, nil)
	types := []int{0, 1, 3, 5, 7, 10, 16, 18}
	for x := 20; x < 256; x++ {
		types = append(types, x)
	}
	for _, typ := range types {
		c := connectFake(t, h, false, fmt.Sprintf("type-%03d", typ))
		c.send(append([]byte{byte(typ)}, make([]byte, 20)...))
		c.expectClosed()
		c.expectNothing()
	}
	c := connectFake(t, h, false, "second")
	msg, _ := AppendConnect(nil, 1, 0, []byte("second"), nil, nil)
	c.send(msg)
	c.expectClosed()
	c.expectNothing()
}

func TestPingDisconnect(t *testing.T) {
	var closeErr = errors.New("not called")
	h := newFakeHub(t, &Options{Hooks: Hooks{OnClose: func(p *Peer, err error) { closeErr = err }}})
	c := connectFake(t, h, true, "abcdef")
	c.send(AppendPing(nil))
	c.expect(msgPong)
	c.send(AppendPong(nil))
	c.expectNothing()
	c.send(AppendDisconnect(nil, ""))
	c.expectClosed()
	if closeErr != nil {
		t.Fatalf("OnClose err %v, want nil", closeErr)
	}
}

func TestPubFrag(t *testing.T) {
	h := newFakeHub(t, nil)
	sub := connectFake(t, h, false, "subscriber")
	tid := sub.subscribe("big")
	c := connectFake(t, h, true, "fragger")
	c.send(AppendPubFrag(nil, 0, c.etid, 0, []byte("ab")))
	c.send(AppendPublish(nil, tid, c.etid, 0, []byte("between"))) // plain Publish in between is fine
	c.send(AppendPubFrag(nil, 0, c.etid, 0, []byte("cd")))
	c.send(AppendPubFrag(nil, tid, c.etid, 3, []byte("ef")))
	sub.expectPublish(tid, c.etid, 0, "between")
	sub.expectPublish(tid, c.etid, 3, "abcdef")
	// The buffer starts afresh.
	c.send(AppendPubFrag(nil, tid, c.etid, 0, []byte("x")))
	sub.expectPublish(tid, c.etid, 0, "x")
	// Assembled message over 0xFFF0 incl. header: dropped, connection kept.
	c.send(AppendPubFrag(nil, 0, c.etid, 0, make([]byte, MaxPayload-10)))
	c.send(AppendPubFrag(nil, tid, c.etid, 0, make([]byte, 5)))
	sub.expectNothing()
	c.expectOpen()
	// Accumulated payload over 0xFFF0: closed.
	c.send(AppendPubFrag(nil, 0, c.etid, 0, make([]byte, 40000)))
	c.send(AppendPubFrag(nil, 0, c.etid, 0, make([]byte, 40000)))
	c.expectClosed()
	// Over WebSocket: closed.
	w := connectFake(t, h, false, "wsfragger")
	w.send(AppendPubFrag(nil, tid, w.etid, 0, []byte("x")))
	w.expectClosed()
	sub.expectNothing()
	// A PTID spoof in the last fragment is caught.
	s := connectFake(t, h, true, "spoofer")
	s.send(AppendPubFrag(nil, tid, sub.etid, 0, []byte("x")))
	s.expect(msgDisconnect)
	s.expectClosed()
}

func TestHooks(t *testing.T) {
	var drops []Message
	var connects []uint32
	h := newFakeHub(t, &Options{Hooks: Hooks{
		PermitTopic:    func(p *Peer, topic string, sub bool) bool { return !strings.HasPrefix(topic, "secret") },
		PermitSubtopic: func(p *Peer, s string) bool { return s != "nope" },
		OnPublish:      func(p *Peer, m Message) bool { return string(m.Data) != "censored" },
		OnDrop:         func(p *Peer, m Message) { drops = append(drops, Message{Tid: m.Tid, Data: bytes.Clone(m.Data)}) },
		OnConnect:      func(p *Peer) { connects = append(connects, p.Etid()) },
	}})
	c := connectFake(t, h, false, "abcdef")
	if len(connects) != 1 || connects[0] != c.etid {
		t.Fatalf("OnConnect %v", connects)
	}
	for _, tc := range []struct {
		msg  []byte
		typ  MsgType
		name string
	}{
		{AppendSubscribe(nil, "secret-a"), msgSuback, "secret-a"},
		{AppendCreate(nil, "secret-b"), msgCreateAck, "secret-b"},
		{AppendCreateSub(nil, "nope"), msgCreateSubAck, "nope"},
	} {
		c.send(tc.msg)
		a := c.expect(tc.typ)
		if a.Status != 1 || a.ID != 0 || string(a.Text) != tc.name {
			t.Fatalf("denied ack %+v", a)
		}
	}
	if _, ok := h.Topic2Tid("secret-a"); ok {
		t.Fatal("a denied name was created")
	}
	tid := c.subscribe("open")
	c.publish(tid, 0, "censored")
	c.expectNothing()
	c.publish(0x12345, 0, "nobody")
	if len(drops) != 1 || drops[0].Tid != 0x12345 || string(drops[0].Data) != "nobody" {
		t.Fatalf("OnDrop %v", drops)
	}
}

func TestLimits(t *testing.T) {
	h := newFakeHub(t, &Options{MaxSubscriptionsPerPeer: 2, MaxTopicsPerPeer: 3})
	c := connectFake(t, h, false, "abcdef")
	c.subscribe("a")
	c.subscribe("b")
	c.send(AppendSubscribe(nil, "c"))
	if a := c.expect(msgSuback); a.Status != 1 {
		t.Fatalf("third subscription accepted: %+v", a)
	}
	c.send(AppendCreate(nil, "c"))
	c.expect(msgCreateAck)
	c.send(AppendCreate(nil, "d"))
	if a := c.expect(msgCreateAck); a.Status != 1 {
		t.Fatalf("fourth name accepted: %+v", a)
	}
	c.send(AppendCreate(nil, "a")) // existing names are fine
	if a := c.expect(msgCreateAck); a.Status != 0 {
		t.Fatalf("existing name denied: %+v", a)
	}
}

func TestSlowConsumer(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy SlowConsumerPolicy
	}{{"drop", SlowConsumerDrop}, {"disconnect", SlowConsumerDisconnect}} {
		t.Run(tc.name, func(t *testing.T) {
			var closeErr error
			h := newFakeHub(t, &Options{SlowConsumer: tc.policy, Hooks: Hooks{OnClose: func(p *Peer, err error) { closeErr = err }}})
			slow := connectFake(t, h, false, "slowpoke")
			fast := connectFake(t, h, true, "speedy")
			tid := slow.subscribe("t")
			fast.subscribe("t")
			slow.c.congested.Store(true)
			fast.publish(tid, 0, "m")
			fast.expectPublish(tid, fast.etid, 0, "m")
			slow.expectNothing()
			s := h.Stats()
			if tc.policy == SlowConsumerDrop {
				slow.expectOpen()
				if s.Drops != 1 || slow.p.Drops() != 1 {
					t.Fatalf("Stats %+v", s)
				}
			} else {
				slow.expectClosed()
				if s.SlowCloses != 1 || !errors.Is(closeErr, ErrSlowConsumer) {
					t.Fatalf("Stats %+v, OnClose %v", s, closeErr)
				}
			}
		})
	}
}

func TestOversizeNotForwardedToRaw(t *testing.T) {
	h := newFakeHub(t, &Options{})
	ws := connectFake(t, h, false, "ws-peer")
	raw := connectFake(t, h, true, "rawpeer")
	tid := ws.subscribe("t")
	raw.subscribe("t")
	big := strings.Repeat("x", MaxPayload+1)
	ws.publish(tid, 0, big)
	ws.expectPublish(tid, ws.etid, 0, big)
	raw.expectNothing()
	if s := h.Stats(); s.Oversize != 1 {
		t.Fatalf("Stats %+v", s)
	}
}

func TestShutdown(t *testing.T) {
	h := newFakeHub(t, nil)
	a := connectFake(t, h, false, "abcdef")
	b := connectFake(t, h, true, "bbbbbb")
	pending := openFake(t, h, true)
	h.Shutdown("", b.etid)
	b.expectClosed()
	b.expectNothing()
	a.expectOpen()
	h.Shutdown("bye", 0)
	if d := a.expect(msgDisconnect); string(d.Text) != "bye" {
		t.Fatalf("Disconnect %q", d.Text)
	}
	a.expectClosed()
	pending.expectClosed()
	if s := h.Stats(); s.Peers != 0 || s.Handshaking != 0 {
		t.Fatalf("Stats %+v", s)
	}
	connectFake(t, h, false, "after-shutdown")
}

func TestRndTid(t *testing.T) {
	h := newFakeHub(t, &Options{RndTid: true})
	if e := h.ServerEtid(); e == 1 || e == 0 || h.Etid2Peer(e) != h.ServerPeer() {
		t.Fatalf("server etid %#x", e)
	}
}

// TestConcurrentPublishSubscribe exercises the lock-free publish path against
// subscription churn and takeovers under -race.
func TestConcurrentPublishSubscribe(t *testing.T) {
	h := newFakeHub(t, nil)
	pub := connectFake(t, h, false, "publisher")
	tid := pub.subscribe("t")
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				h.message(pub.p, AppendPublish(nil, tid, pub.etid, 0, []byte("x")))
			}
		}
	}()
	for i := range 200 {
		c := connectFake(t, h, i%2 == 0, fmt.Sprintf("churn-%d", i%7))
		h.message(c.p, AppendSubscribe(nil, "t"))
		h.message(c.p, AppendObserve(nil, tid))
		if i%3 == 0 {
			h.message(c.p, AppendDisconnect(nil, ""))
		}
	}
	close(stop)
	wg.Wait()
	h.Shutdown("", 0)
	if n, _ := h.Subscribers(tid); n != 0 {
		t.Fatalf("subscribers left: %d", n)
	}
}

func TestServerCallbackRecursionBounded(t *testing.T) {
	h := newFakeHub(t, nil)
	calls := 0
	var tid uint32
	tid = h.Subscribe("loop", &SubscribeOptions{OnMsg: func(m Message) {
		calls++
		h.Publish(m.Data, tid, 0) // republish to itself: bounded, not infinite
	}})
	c := connectFake(t, h, false, "abcdef")
	c.publish(tid, 0, "x")
	if calls != maxServerDepth {
		t.Fatalf("callback ran %d times, want %d", calls, maxServerDepth)
	}
}
