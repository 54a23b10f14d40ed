package broker

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/tarponrt/tarpon/runtime"
)

// newTestServer starts a reactor, a hub and an httptest server on loopback.
func newTestServer(t *testing.T, opts *Options) (*Hub, *httptest.Server) {
	t.Helper()
	r, err := runtime.New(runtime.Config{Loops: 2})
	if err != nil {
		t.Fatal(err)
	}
	h := New(r, opts)
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = r.Shutdown(ctx)
	})
	return h, srv
}

// wire is a test client speaking SMQ directly over WebSocket or raw TCP.
type wire struct {
	t    *testing.T
	ws   *websocket.Conn
	nc   net.Conn
	br   *bufio.Reader
	etid uint32
	seed uint32
	ip   string
}

const ioTimeout = 5 * time.Second

func dialWS(t *testing.T, srv *httptest.Server) *wire {
	t.Helper()
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/smq"
	c, resp, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatalf("ws dial: %v", err)
	}
	if resp.Header.Get("SmqBroker") != "true" {
		t.Fatalf("101 without SmqBroker: true: %v", resp.Header)
	}
	t.Cleanup(func() { c.Close() })
	w := &wire{t: t, ws: c}
	w.readInit()
	return w
}

// dialRaw connects the raw transport. withResponse sends
// SendSmqHttpResponse: true and checks the 200; without it the first bytes
// must be the Init frame.
func dialRaw(t *testing.T, srv *httptest.Server, withResponse bool) *wire {
	t.Helper()
	nc, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	req := "GET /smq HTTP/1.0\r\nHost: x\r\nSimpleMQ: 1\r\nUser-Agent: SimpleMQ/1\r\n\r\n"
	if withResponse {
		req = "GET /smq HTTP/1.1\r\nHost: x\r\nSimpleMQ: 1\r\nSendSmqHttpResponse: true\r\n\r\n"
	}
	if _, err := nc.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	w := &wire{t: t, nc: nc, br: bufio.NewReader(nc)}
	nc.SetDeadline(time.Now().Add(ioTimeout))
	if withResponse {
		want := string(rawResponse)
		got := make([]byte, len(want))
		if _, err := io.ReadFull(w.br, got); err != nil || string(got) != want {
			t.Fatalf("bootstrap response %q (%v); want %q", got, err, want)
		}
	} else {
		head, err := w.br.Peek(4)
		if err != nil || head[2] != byte(msgInit) || head[3] != 1 {
			t.Fatalf("first bytes % X (%v); want a Len16 Init frame", head, err)
		}
	}
	w.readInit()
	return w
}

func (w *wire) readInit() {
	w.t.Helper()
	p := w.expect(msgInit)
	w.seed, w.ip = p.Seed, string(p.Text)
	if w.ip != "127.0.0.1" {
		w.t.Fatalf("Init IP %q", w.ip)
	}
}

func (w *wire) send(msg []byte) {
	w.t.Helper()
	var err error
	if w.ws != nil {
		err = w.ws.WriteMessage(websocket.BinaryMessage, msg)
	} else {
		_, err = w.nc.Write(AppendLen16(nil, msg))
	}
	if err != nil {
		w.t.Fatalf("send: %v", err)
	}
}

// sendBytes writes raw stream bytes (raw transport only).
func (w *wire) sendBytes(b []byte) {
	if _, err := w.nc.Write(b); err != nil {
		w.t.Fatalf("write: %v", err)
	}
}

// recv reads one SMQ message or returns the read error.
func (w *wire) recv() ([]byte, error) {
	if w.ws != nil {
		w.ws.SetReadDeadline(time.Now().Add(ioTimeout))
		typ, msg, err := w.ws.ReadMessage()
		if err == nil && typ != websocket.BinaryMessage {
			return nil, fmt.Errorf("non-binary ws message type %d", typ)
		}
		return msg, err
	}
	w.nc.SetReadDeadline(time.Now().Add(ioTimeout))
	var hdr [2]byte
	if _, err := io.ReadFull(w.br, hdr[:]); err != nil {
		return nil, err
	}
	n := int(hdr[0])<<8 | int(hdr[1])
	if n < 3 {
		return nil, fmt.Errorf("frame length %d", n)
	}
	msg := make([]byte, n-2)
	_, err := io.ReadFull(w.br, msg)
	return msg, err
}

func (w *wire) expect(typ MsgType) Packet {
	w.t.Helper()
	msg, err := w.recv()
	if err != nil {
		w.t.Fatalf("waiting for %v: %v", typ, err)
	}
	p, err := Decode(msg)
	if err != nil || p.Type != typ {
		w.t.Fatalf("expected %v, got % X (%v)", typ, msg, err)
	}
	return p
}

// expectClosed reads until the connection ends; no SMQ message may arrive.
func (w *wire) expectClosed() {
	w.t.Helper()
	msg, err := w.recv()
	if err == nil {
		w.t.Fatalf("expected close, got % X", msg)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		w.t.Fatalf("connection not closed: %v", err)
	}
}

func (w *wire) connect(version byte, uid string) {
	w.t.Helper()
	msg, err := AppendConnect(nil, version, 0, []byte(uid), nil, nil)
	if err != nil {
		w.t.Fatal(err)
	}
	w.send(msg)
	a := w.expect(msgConnack)
	if a.Code != 0 || a.ID == 0 {
		w.t.Fatalf("Connack %+v", a)
	}
	w.etid = a.ID
}

func (w *wire) subscribe(name string) uint32 {
	w.t.Helper()
	w.send(AppendSubscribe(nil, name))
	a := w.expect(msgSuback)
	if a.Status != 0 || string(a.Text) != name {
		w.t.Fatalf("Suback %+v", a)
	}
	return a.ID
}

func (w *wire) expectPublish(tid, ptid, subtid uint32, payload []byte) {
	w.t.Helper()
	m := w.expect(msgPublish)
	if m.Tid != tid || m.Ptid != ptid || m.Subtid != subtid || !bytes.Equal(m.Payload, payload) {
		w.t.Fatalf("Publish tid %#x ptid %#x subtid %d %d bytes; want %#x %#x %d %d bytes",
			m.Tid, m.Ptid, m.Subtid, len(m.Payload), tid, ptid, subtid, len(payload))
	}
}

func TestServeNotSMQ404(t *testing.T) {
	_, srv := newTestServer(t, nil)
	resp, err := http.Get(srv.URL + "/smq")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("status %d, want 404", resp.StatusCode)
	}
}

func TestServeTransports(t *testing.T) {
	h, srv := newTestServer(t, nil)
	ws := dialWS(t, srv)
	ws.connect(1, "ws-client")
	raw200 := dialRaw(t, srv, true)
	raw200.connect(1, "raw-200-client")
	raw := dialRaw(t, srv, false)
	raw.connect(2, "raw-bare-client")
	if h.Stats().Peers != 3 {
		t.Fatalf("Stats %+v", h.Stats())
	}
	tid := ws.subscribe("chat")
	raw200.subscribe("chat")
	raw.subscribe("chat")
	// Cross-transport both ways; UTF-8 and binary payloads.
	text := []byte("héllo wörld ✓")
	ws.send(AppendPublish(nil, tid, ws.etid, 0, text))
	for _, c := range []*wire{ws, raw200, raw} {
		c.expectPublish(tid, ws.etid, 0, text)
	}
	bin := []byte{0, 1, 2, 0xff, 0xfe}
	raw.send(AppendPublish(nil, tid, raw.etid, 5, bin))
	for _, c := range []*wire{ws, raw200, raw} {
		c.expectPublish(tid, raw.etid, 5, bin)
	}
	// Direct messages raw → WS and WS → raw.
	raw.send(AppendPublish(nil, ws.etid, raw.etid, 0, []byte("to ws")))
	ws.expectPublish(ws.etid, raw.etid, 0, []byte("to ws"))
	ws.send(AppendPublish(nil, raw.etid, ws.etid, 0, []byte("to raw")))
	raw.expectPublish(raw.etid, ws.etid, 0, []byte("to raw"))
	// Ping → Pong on both; a text frame is accepted like a binary one.
	if err := ws.ws.WriteMessage(websocket.TextMessage, AppendPing(nil)); err != nil {
		t.Fatal(err)
	}
	ws.expect(msgPong)
	raw.send(AppendPing(nil))
	raw.expect(msgPong)
	// Disconnect closes.
	raw200.send(AppendDisconnect(nil, ""))
	raw200.expectClosed()
	waitFor(t, 2*time.Second, "peer count 2", func() bool { return h.Stats().Peers == 2 })
}

func TestServeRawCoalescedAndSplit(t *testing.T) {
	_, srv := newTestServer(t, nil)
	c := dialRaw(t, srv, false)
	// Connect and three subscribes in one write.
	conn, _ := AppendConnect(nil, 2, 0, []byte("coalesce"), nil, nil)
	var stream []byte
	for _, m := range [][]byte{conn, AppendSubscribe(nil, "a"), AppendSubscribe(nil, "b"), AppendCreateSub(nil, "c")} {
		stream = AppendLen16(stream, m)
	}
	c.sendBytes(stream)
	c.etid = c.expect(msgConnack).ID
	for _, want := range []MsgType{msgSuback, msgSuback, msgCreateSubAck} {
		c.expect(want)
	}
	// A publish written byte by byte.
	tid := c.subscribe("split")
	frame := AppendLen16(nil, AppendPublish(nil, tid, c.etid, 0, []byte("slowly")))
	for i := range frame {
		c.sendBytes(frame[i : i+1])
	}
	c.expectPublish(tid, c.etid, 0, []byte("slowly"))
}

func TestServePubFragRawAndWS(t *testing.T) {
	_, srv := newTestServer(t, nil)
	sub := dialWS(t, srv)
	sub.connect(1, "ws-subscriber")
	tid := sub.subscribe("frag")
	c := dialRaw(t, srv, false)
	c.connect(2, "C-client")
	payload := bytes.Repeat([]byte("0123456789"), 5000) // 50000 bytes in 3 fragments
	c.send(AppendPubFrag(nil, 0, c.etid, 0, payload[:20000]))
	c.send(AppendPubFrag(nil, 0, c.etid, 0, payload[20000:40000]))
	c.send(AppendPubFrag(nil, tid, c.etid, 0, payload[40000:]))
	sub.expectPublish(tid, c.etid, 0, payload)
	// PubFrag over WebSocket closes that peer only.
	sub.send(AppendPubFrag(nil, tid, sub.etid, 0, []byte("x")))
	sub.expectClosed()
	c.send(AppendPing(nil))
	c.expect(msgPong)
}

func TestServeNegative(t *testing.T) {
	_, srv := newTestServer(t, nil)
	watcher := dialWS(t, srv)
	watcher.connect(1, "watcher")
	alive := watcher.subscribe("alive")
	check := func() {
		t.Helper()
		watcher.send(AppendPublish(nil, alive, watcher.etid, 0, []byte("ok")))
		watcher.expectPublish(alive, watcher.etid, 0, []byte("ok"))
	}
	t.Run("uid 5 bytes", func(t *testing.T) {
		c := dialRaw(t, srv, true)
		c.t = t
		c.send(unhex(t, "02 01 05 61 62 63 64 65 00"))
		if a := c.expect(msgConnack); a.Code != ConnackBadVersion || a.ID != 0 {
			t.Fatalf("Connack %+v", a)
		}
		c.expectClosed()
		check()
	})
	t.Run("ptid spoof", func(t *testing.T) {
		c := dialWS(t, srv)
		c.t = t
		c.connect(1, "spoofer")
		c.send(AppendPublish(nil, alive, watcher.etid, 0, []byte("spoof")))
		if d := c.expect(msgDisconnect); string(d.Text) != "corrupt frame" {
			t.Fatalf("Disconnect %q", d.Text)
		}
		c.expectClosed()
		check()
	})
	t.Run("truncated publish raw", func(t *testing.T) {
		c := dialRaw(t, srv, false)
		c.t = t
		c.connect(2, "truncator")
		c.send(AppendPublish(nil, alive, c.etid, 0, nil)[:12])
		c.expectClosed()
		check()
	})
	t.Run("frame length 2", func(t *testing.T) {
		c := dialRaw(t, srv, false)
		c.t = t
		c.connect(2, "badframe")
		c.sendBytes([]byte{0, 2})
		c.expectClosed()
		check()
	})
	t.Run("unknown type ws", func(t *testing.T) {
		c := dialWS(t, srv)
		c.t = t
		c.connect(1, "unknown")
		c.send([]byte{0x42})
		c.expectClosed()
		check()
	})
	t.Run("no connect within readtmo", func(t *testing.T) {
		_, fast := newTestServer(t, &Options{ReadTimeout: 50 * time.Millisecond})
		c := dialRaw(t, fast, false)
		c.t = t
		if a := c.expect(msgConnack); a.Code != ConnackUnavailable {
			t.Fatalf("Connack %+v", a)
		}
		c.expectClosed()
		check()
	})
}

func TestServeTakeoverAndObserve(t *testing.T) {
	var mu sync.Mutex
	var closes []error
	_, srv := newTestServer(t, &Options{Hooks: Hooks{OnClose: func(p *Peer, err error) {
		mu.Lock()
		closes = append(closes, err)
		mu.Unlock()
	}}})
	obs := dialWS(t, srv)
	obs.connect(1, "observer")
	old := dialRaw(t, srv, true)
	old.connect(1, "MAC-00-11")
	tid := old.subscribe("room")
	obs.send(AppendObserve(nil, tid))
	if ch := obs.expect(msgChange); ch.ID != tid || ch.Count != 1 {
		t.Fatalf("Change %+v", ch)
	}
	obs.send(AppendObserve(nil, old.etid))
	nw := dialRaw(t, srv, false)
	nw.connect(2, "MAC-00-11")
	if nw.etid != old.etid {
		t.Fatalf("takeover etid %#x, want %#x", nw.etid, old.etid)
	}
	if d := old.expect(msgDisconnect); string(d.Text) != "reconnect" {
		t.Fatalf("Disconnect %q", d.Text)
	}
	old.expectClosed()
	for _, want := range []uint32{tid, old.etid} {
		if ch := obs.expect(msgChange); ch.ID != want || ch.Count != 0 {
			t.Fatalf("Change %+v, want (%#x, 0)", ch, want)
		}
	}
	obs.send(AppendPublish(nil, nw.etid, obs.etid, 0, []byte("hi")))
	nw.expectPublish(nw.etid, obs.etid, 0, []byte("hi"))
	waitFor(t, 2*time.Second, "OnClose(reconnect)", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(closes) == 1
	})
	mu.Lock()
	defer mu.Unlock()
	if !errors.Is(closes[0], ErrReconnect) {
		t.Fatalf("OnClose %v", closes)
	}
}

func TestServeServerRequestResponse(t *testing.T) {
	h, srv := newTestServer(t, nil)
	h.Subscribe("self", &SubscribeOptions{Subtopic: "echo", OnMsg: func(m Message) {
		h.Publish(append([]byte("echo:"), m.Data...), m.Ptid, m.Subtid)
	}})
	sub := h.CreateSub("echo", 0)
	for _, c := range []*wire{dialWS(t, srv), dialRaw(t, srv, true)} {
		c.connect(1, fmt.Sprintf("rr-%p", c))
		c.send(AppendCreateSub(nil, "echo"))
		if a := c.expect(msgCreateSubAck); a.ID != sub {
			t.Fatalf("CreateSubAck %+v, want id %d", a, sub)
		}
		c.send(AppendPublish(nil, 1, c.etid, sub, []byte("q")))
		c.expectPublish(c.etid, 1, sub, []byte("echo:q"))
	}
}

// TestServeConnectInfoLifetime: the request details reach Authenticate
// and OnConnect and are let go once the handshake is over (an idle peer
// does not keep the request's headers).
func TestServeConnectInfoLifetime(t *testing.T) {
	type seen struct {
		auth, conn string
		peer       *Peer
	}
	got := make(chan seen, 1)
	var auth string
	h, srv := newTestServer(t, &Options{Hooks: Hooks{
		Authenticate: func(p *Peer, _ []byte) (ConnackCode, string) {
			auth = p.ConnectInfo().Header.Get("SimpleMQ")
			return ConnackAccepted, ""
		},
		OnConnect: func(p *Peer) {
			got <- seen{auth: auth, conn: p.ConnectInfo().RemoteAddr, peer: p}
		},
	}})
	c := dialRaw(t, srv, false)
	msg, _ := AppendConnect(nil, 1, 0, []byte("abcdef"), nil, nil)
	c.send(msg)
	if a := c.expect(msgConnack); a.Code != ConnackAccepted {
		t.Fatalf("Connack %+v", a)
	}
	s := <-got
	if s.auth != "1" || s.conn == "" {
		t.Fatalf("hooks saw SimpleMQ %q, remote %q", s.auth, s.conn)
	}
	waitFor(t, 5*time.Second, "ConnectInfo released after the handshake", func() bool { return s.peer.ConnectInfo() == nil })
	if h.Stats().Peers != 1 {
		t.Fatalf("stats %+v", h.Stats())
	}
}

func TestServeHooksRefusing(t *testing.T) {
	_, srv := newTestServer(t, &Options{Hooks: Hooks{
		Authenticate: func(p *Peer, cred []byte) (ConnackCode, string) {
			if string(cred) == "secret" && p.ConnectInfo().Header.Get("SimpleMQ") == "1" {
				return ConnackAccepted, ""
			}
			return ConnackBadCredentials, "wrong"
		},
		PermitTopic: func(p *Peer, topic string, sub bool) bool { return topic != "forbidden" },
	}})
	bad := dialRaw(t, srv, false)
	msg, _ := AppendConnect(nil, 2, 0, []byte("abcdef"), []byte("guess"), nil)
	bad.send(msg)
	if a := bad.expect(msgConnack); a.Code != ConnackBadCredentials || string(a.Text) != "wrong" {
		t.Fatalf("Connack %+v", a)
	}
	bad.expectClosed()
	good := dialRaw(t, srv, false)
	msg, _ = AppendConnect(nil, 2, 0, []byte("abcdef"), []byte("secret"), nil)
	good.send(msg)
	if a := good.expect(msgConnack); a.Code != ConnackAccepted {
		t.Fatalf("Connack %+v", a)
	}
	good.send(AppendSubscribe(nil, "forbidden"))
	if a := good.expect(msgSuback); a.Status != 1 || a.ID != 0 || string(a.Text) != "forbidden" {
		t.Fatalf("Suback %+v", a)
	}
}

// TestServeSlowConsumer floods a subscriber that never reads until its
// send queue passes the high-water mark; the policy then applies.
func TestServeSlowConsumer(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy SlowConsumerPolicy
		done   func(Stats) bool
	}{
		{"drop", SlowConsumerDrop, func(s Stats) bool { return s.Drops > 0 }},
		{"disconnect", SlowConsumerDisconnect, func(s Stats) bool { return s.SlowCloses == 1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, srv := newTestServer(t, &Options{SlowConsumer: tc.policy, HighWater: 64 << 10})
			slow := dialRaw(t, srv, false)
			slow.connect(2, "never-reads")
			tid := slow.subscribe("flood")
			pub := dialRaw(t, srv, false)
			pub.connect(2, "publisher")
			frame := AppendLen16(nil, AppendPublish(nil, tid, pub.etid, 0, make([]byte, 60000)))
			for i := 0; i < 2000 && !tc.done(h.Stats()); i++ {
				pub.nc.SetWriteDeadline(time.Now().Add(ioTimeout))
				pub.sendBytes(frame)
			}
			waitFor(t, 5*time.Second, "slow-consumer policy", func() bool { return tc.done(h.Stats()) })
			pub.send(AppendPing(nil))
			pub.expect(msgPong)
			if tc.policy == SlowConsumerDisconnect {
				waitFor(t, 2*time.Second, "slow peer gone", func() bool { return h.Etid2Peer(slow.etid) == nil })
			} else if h.Etid2Peer(slow.etid) == nil {
				t.Fatal("drop policy closed the slow peer")
			}
		})
	}
}
