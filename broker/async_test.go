package broker

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// deferred collects async hook decisions; the test goroutine answers them
// (it stands in for the event loop, as fakeConn.Execute runs inline).
type deferred struct{ fns []func() }

func (d *deferred) run(t *testing.T) {
	t.Helper()
	if len(d.fns) == 0 {
		t.Fatal("no pending decision")
	}
	f := d.fns[0]
	d.fns = d.fns[1:]
	f()
}

func TestAsyncAuthenticateBuffersInput(t *testing.T) {
	var d deferred
	h := newFakeHub(t, &Options{Hooks: Hooks{
		AuthenticateAsync: func(p *Peer, cred []byte, done func(ConnackCode, string)) {
			ok := string(cred) == "good"
			d.fns = append(d.fns, func() {
				if ok {
					done(ConnackAccepted, "")
				} else {
					done(ConnackBadCredentials, "nope")
				}
			})
		},
	}})
	c := openFake(t, h, true)
	msg, _ := AppendConnect(nil, 1, 0, []byte("abcdef"), []byte("good"), nil)
	c.send(msg)
	c.send(AppendSubscribe(nil, "early")) // pipelined before the Connack
	c.send(AppendPing(nil))
	c.expectNothing()
	d.run(t)
	c.etid = c.expect(msgConnack).ID
	if a := c.expect(msgSuback); a.Status != 0 || string(a.Text) != "early" {
		t.Fatalf("Suback %+v", a)
	}
	c.expect(msgPong)

	bad := openFake(t, h, false)
	msg, _ = AppendConnect(nil, 1, 0, []byte("bbbbbb"), []byte("bad"), nil)
	bad.send(msg)
	bad.send(AppendSubscribe(nil, "never"))
	d.run(t)
	if a := bad.expect(msgConnack); a.Code != ConnackBadCredentials || string(a.Text) != "nope" {
		t.Fatalf("Connack %+v", a)
	}
	bad.expectNothing()
	bad.expectClosed()
}

func TestAsyncPermitKeepsAckOrder(t *testing.T) {
	var d deferred
	h := newFakeHub(t, &Options{Hooks: Hooks{
		PermitTopicAsync: func(p *Peer, topic string, sub bool, done func(bool)) {
			d.fns = append(d.fns, func() { done(topic != "deny") })
		},
		PermitSubtopicAsync: func(p *Peer, s string, done func(bool)) {
			d.fns = append(d.fns, func() { done(true) })
		},
	}})
	c := connectFake(t, h, false, "abcdef")
	c.send(AppendSubscribe(nil, "a"))
	c.send(AppendCreate(nil, "deny"))
	c.send(AppendCreateSub(nil, "s"))
	c.send(AppendPing(nil))
	c.expectNothing()
	for range 3 {
		if len(d.fns) != 1 {
			t.Fatalf("%d decisions pending; want exactly 1 (requests are handled one at a time)", len(d.fns))
		}
		d.run(t)
	}
	if a := c.expect(msgSuback); a.Status != 0 || string(a.Text) != "a" {
		t.Fatalf("Suback %+v", a)
	}
	if a := c.expect(msgCreateAck); a.Status != 1 || string(a.Text) != "deny" {
		t.Fatalf("CreateAck %+v", a)
	}
	if a := c.expect(msgCreateSubAck); a.Status != 0 || string(a.Text) != "s" {
		t.Fatalf("CreateSubAck %+v", a)
	}
	c.expect(msgPong)
	c.expectNothing()
}

func TestAsyncOnPublish(t *testing.T) {
	var d deferred
	h := newFakeHub(t, &Options{Hooks: Hooks{
		OnPublishAsync: func(p *Peer, m Message, done func(bool)) {
			keep := string(m.Data) // m.Data is ours
			d.fns = append(d.fns, func() { done(keep != "drop") })
		},
	}})
	c := connectFake(t, h, false, "abcdef")
	tid := c.subscribe("t")
	c.publish(tid, 0, "drop")
	c.publish(tid, 0, "keep")
	d.run(t)
	c.expectNothing()
	d.run(t)
	c.expectPublish(tid, c.etid, 0, "keep")
}

func TestAsyncBacklogOverflow(t *testing.T) {
	h := newFakeHub(t, &Options{Hooks: Hooks{
		PermitTopicAsync: func(*Peer, string, bool, func(bool)) {}, // never answers
	}})
	var closeErr error
	h.hooks.OnClose = func(p *Peer, err error) { closeErr = err }
	c := connectFake(t, h, false, "abcdef")
	c.send(AppendSubscribe(nil, "stuck"))
	for i := 0; i <= maxBacklog && !c.c.isClosed(); i++ {
		c.send(AppendPing(nil))
	}
	c.expectClosed()
	if !errors.Is(closeErr, ErrBacklog) {
		t.Fatalf("OnClose %v", closeErr)
	}
}

// TestServeAsyncAuthenticate answers from another goroutine over real
// sockets: the runtime's Execute brings the answer back to the loop.
func TestServeAsyncAuthenticate(t *testing.T) {
	_, srv := newTestServer(t, &Options{Hooks: Hooks{
		AuthenticateAsync: func(p *Peer, cred []byte, done func(ConnackCode, string)) {
			time.AfterFunc(20*time.Millisecond, func() { done(ConnackAccepted, "") })
		},
	}})
	for i, c := range []*wire{dialWS(t, srv), dialRaw(t, srv, false)} {
		msg, _ := AppendConnect(nil, 1, 0, []byte(fmt.Sprintf("async-%d", i)), nil, nil)
		c.send(msg)
		c.send(AppendSubscribe(nil, "pipelined"))
		c.send(AppendPing(nil))
		if a := c.expect(msgConnack); a.Code != 0 {
			t.Fatalf("Connack %+v", a)
		}
		if a := c.expect(msgSuback); string(a.Text) != "pipelined" {
			t.Fatalf("Suback %+v", a)
		}
		c.expect(msgPong)
	}
}
