package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Options configures Dial. nil means all defaults; the struct is copied.
type Options struct {
	// UID identifies the client (≥ 6 bytes, ≤ 255, any bytes). Empty means
	// the broker-seen IP followed by the Init seed, as smq.js does, which
	// differs on every connection.
	UID string
	// Info is sent in Connect (the broker's info string).
	Info string
	// Credentials, if set, is called with the Init seed and IP address and
	// returns the credentials for Connect (≤ 255 bytes).
	Credentials func(seed uint32, ip string) []byte
	// Raw selects the raw-socket transport (HTTP bootstrap with SimpleMQ: 1,
	// 2-byte length framing) instead of WebSocket.
	Raw bool
	// SendHTTPResponse (raw only) adds SendSmqHttpResponse: true, so the
	// broker answers with HTTP 200 before the SMQ stream.
	SendHTTPResponse bool
	// ConnectV2 sends Connect version 2 (u16 max-size 0) like the C client.
	ConnectV2 bool
	// Reconnect > 0 makes the client redial at that interval after a lost
	// connection (not after a broker Disconnect or Close).
	Reconnect time.Duration
	// CleanStart: after a reconnect forget all topics, subscriptions and
	// observers (OnReconnect re-subscribes). Otherwise the client restores
	// them (SMQ spec §3.1).
	CleanStart bool
	// FragmentSize > 0 (raw only): payloads larger than this are sent as
	// PubFrag fragments of this size.
	FragmentSize int
	// Timeout bounds the handshake when ctx has no deadline and each
	// reconnect attempt. Zero means 5 s.
	Timeout time.Duration
	// WriteTimeout bounds each socket write; zero means 10 s, negative none.
	WriteTimeout time.Duration
	// MaxMessage caps one incoming WebSocket message. Zero means 1 MiB.
	MaxMessage int
	// ReadBufferSize is the socket read buffer per connection. Zero means
	// 4 KiB (larger messages are read straight into the message buffer).
	ReadBufferSize int
	// Header holds extra HTTP request headers for the bootstrap.
	Header http.Header
	// TLSConfig is used for wss:// and https:// URLs.
	TLSConfig *tls.Config

	// OnMsg receives messages no subscription callback matched.
	OnMsg func(Message)
	// OnClose is called on the read goroutine when a connection ends (err is
	// ErrClosed after Close); reconnecting says whether a redial follows.
	OnClose func(err error, reconnecting bool)
	// OnReconnect is called after a successful reconnect, once the restored
	// subscriptions are acknowledged (or at once with CleanStart).
	OnReconnect func(etid uint32)
}

// Message is one received Publish. Data aliases the client's read buffer:
// it is valid only during the callback; copy what you keep.
type Message struct {
	TID    uint32 // destination: topic TID or this client's ETID
	PTID   uint32 // publisher's ETID: reply there
	SubTID uint32 // sub-topic ID, 0 for none
	Data   []byte
}

// SubscribeOptions are the per-subscription settings (SMQ spec §3.1).
type SubscribeOptions struct {
	// Subtopic, if set, is resolved with CreateSub and OnMsg only gets
	// messages carrying that sub-topic ID.
	Subtopic string
	// OnMsg is called on the read goroutine for matching messages. nil
	// means the default Options.OnMsg.
	OnMsg func(Message)
	// OnAck reports the outcome (called on the read goroutine, or at once
	// for "self").
	OnAck func(accepted bool, tid, subtid uint32)
}

// handlers are the callbacks for one TID: per sub-topic, then catch-all.
type handlers struct {
	all func(Message)
	sub map[uint32]func(Message)
}

type observer struct {
	fn    func(count uint32)
	topic string // name if a topic was observed; "" for an ETID
}

// subscription is what a non-clean reconnect re-subscribes.
type subscription struct {
	topic, subtopic string
	onMsg           func(Message)
}

type ackFunc func(id uint32, err error)

// Client is a connected SMQ client. Methods are safe for concurrent use
// unless noted. Callbacks (OnMsg, OnAck, Observe functions, OnClose,
// OnReconnect) run on the client's single read goroutine, in arrival order;
// they must not block, and must not call Create, CreateSub or
// SubscribeWait (those wait for an ack that only that goroutine can read).
type Client struct {
	url  string
	opts Options

	t    atomic.Pointer[transport] // nil while disconnected
	etid atomic.Uint32

	mu        sync.RWMutex // guards everything below
	topic2tid map[string]uint32
	tid2topic map[uint32]string
	sub2id    map[string]uint32
	id2sub    map[uint32]string
	handlers  map[uint32]*handlers
	observers map[uint32]*observer
	pending   map[byte]map[string][]ackFunc // by ack type, then name
	subs      []*subscription
	seed      uint32
	ip        string

	closing   chan struct{} // closed by Close
	closeOnce sync.Once
	done      chan struct{} // closed when the read goroutine ends
	err       error         // final error, set before done is closed
}

// Dial connects to the broker at url (ws://, wss://, http:// or https://;
// the transport is chosen by opts.Raw), performs Init/Connect/Connack and
// starts the read goroutine. A refused connection returns *ConnackError.
func Dial(ctx context.Context, url string, opts *Options) (*Client, error) {
	c := &Client{
		url:     url,
		closing: make(chan struct{}),
		done:    make(chan struct{}),
	}
	if opts != nil {
		c.opts = *opts
	}
	if c.opts.Timeout <= 0 {
		c.opts.Timeout = 5 * time.Second
	}
	if c.opts.WriteTimeout == 0 {
		c.opts.WriteTimeout = 10 * time.Second
	}
	if c.opts.MaxMessage <= 0 {
		c.opts.MaxMessage = 1 << 20
	}
	if c.opts.ReadBufferSize <= 0 {
		c.opts.ReadBufferSize = 4 << 10
	}
	if len(c.opts.UID) > 255 {
		return nil, errors.New("smq client: UID longer than 255 bytes")
	}
	c.resetState()
	t, err := c.handshake(ctx)
	if err != nil {
		return nil, err
	}
	c.t.Store(t)
	go c.run(t)
	return c, nil
}

// resetState forgets every ID, callback and pending request. Caller holds
// mu or has exclusive access.
func (c *Client) resetState() {
	c.topic2tid = map[string]uint32{}
	c.tid2topic = map[uint32]string{}
	c.sub2id = map[string]uint32{}
	c.id2sub = map[uint32]string{}
	c.handlers = map[uint32]*handlers{}
	c.observers = map[uint32]*observer{}
	c.pending = map[byte]map[string][]ackFunc{
		msgSuback: {}, msgCreateAck: {}, msgCreateSubAck: {},
	}
	c.subs = nil
}

// handshake dials and runs Init → Connect → Connack (SMQ spec §1.5, §1.6).
func (c *Client) handshake(ctx context.Context) (*transport, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.Timeout)
		defer cancel()
	}
	t, err := dialTransport(ctx, c.url, &c.opts)
	if err != nil {
		return nil, err
	}
	if t.wtimeout < 0 {
		t.wtimeout = 0
	}
	dl, _ := ctx.Deadline()
	_ = t.conn.SetDeadline(dl)
	// Close the socket if ctx is cancelled mid-handshake.
	stop := context.AfterFunc(ctx, func() { _ = t.conn.Close() })
	defer stop()
	fail := func(err error) (*transport, error) {
		t.close()
		// The socket's deadline is ctx's: its i/o timeout can come a
		// moment before ctx reports the deadline.
		late := !dl.IsZero() && !time.Now().Before(dl)
		if (ctx.Err() != nil || late) && !errors.As(err, new(*ConnackError)) {
			cause := ctx.Err()
			if cause == nil {
				cause = context.DeadlineExceeded
			}
			return nil, fmt.Errorf("smq client: handshake: %w", cause)
		}
		return nil, err
	}
	m, err := t.readMsg()
	if err != nil {
		return fail(fmt.Errorf("smq client: reading Init: %w", err))
	}
	seed, ip, err := parseInit(m)
	if err != nil {
		return fail(err)
	}
	var cred []byte
	if c.opts.Credentials != nil {
		cred = c.opts.Credentials(seed, ip)
		if len(cred) > 255 {
			return fail(errors.New("smq client: credentials longer than 255 bytes"))
		}
	}
	uid := c.opts.UID
	if uid == "" {
		uid = ip + strconv.FormatUint(uint64(seed), 10)
	}
	if err := t.send(appendConnect(nil, c.opts.ConnectV2, []byte(uid[:min(len(uid), 255)]), cred, c.opts.Info)); err != nil {
		return fail(err)
	}
	m, err = t.readMsg()
	if err != nil {
		return fail(fmt.Errorf("smq client: reading Connack: %w", err))
	}
	etid, err := parseConnack(m)
	if err != nil {
		return fail(err)
	}
	if !stop() {
		return fail(ctx.Err())
	}
	_ = t.conn.SetDeadline(time.Time{})
	t.etid = etid
	c.etid.Store(etid)
	c.mu.Lock()
	c.seed, c.ip = seed, ip
	c.mu.Unlock()
	return t, nil
}

// run is the read goroutine: it reads and dispatches until the connection
// ends, then reconnects if allowed.
func (c *Client) run(t *transport) {
	defer close(c.done)
	for {
		err := c.readLoop(t)
		t.close()
		c.t.Store(nil)
		c.failPending()
		closing := c.isClosing()
		if closing {
			err = ErrClosed
		}
		var de *DisconnectError
		again := !closing && c.opts.Reconnect > 0 && !errors.As(err, &de)
		if c.opts.OnClose != nil {
			c.opts.OnClose(err, again)
		}
		if !again {
			c.err = err
			return
		}
		t = c.redial()
		if t == nil {
			c.err = ErrClosed
			return
		}
		c.t.Store(t)
		if c.isClosing() {
			// Close ran between the redial and the Store and saw no
			// transport to close.
			t.close()
		}
		c.restore(t)
	}
}

// redial retries the handshake every Options.Reconnect until it succeeds or
// Close is called (nil).
func (c *Client) redial() *transport {
	timer := time.NewTimer(c.opts.Reconnect)
	defer timer.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-c.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		select {
		case <-c.closing:
			return nil
		case <-timer.C:
		}
		t, err := c.handshake(ctx)
		if err == nil {
			return t
		}
		timer.Reset(c.opts.Reconnect)
	}
}

// restore runs after a reconnect (read goroutine, before reading).
// CleanStart forgets everything; otherwise topics and sub-topics are
// re-created, subscriptions re-made ("self" moves to the new ETID) and named
// topics re-observed. OnReconnect runs when all of that is acknowledged.
func (c *Client) restore(t *transport) {
	c.mu.Lock()
	topics := make([]string, 0, len(c.topic2tid))
	for n := range c.topic2tid {
		topics = append(topics, n)
	}
	subtopics := make([]string, 0, len(c.sub2id))
	for n := range c.sub2id {
		subtopics = append(subtopics, n)
	}
	subs, obs := c.subs, c.observers
	c.resetState()
	c.mu.Unlock()
	if c.opts.CleanStart {
		if c.opts.OnReconnect != nil {
			c.opts.OnReconnect(t.etid)
		}
		return
	}
	var left atomic.Int32
	left.Store(1)
	done := func(uint32, error) {
		if left.Add(-1) == 0 && c.opts.OnReconnect != nil {
			c.opts.OnReconnect(t.etid)
		}
	}
	for _, n := range topics {
		left.Add(1)
		c.resolve(msgCreate, n, done)
	}
	for _, n := range subtopics {
		left.Add(1)
		c.resolve(msgCreateSub, n, done)
	}
	for _, s := range subs {
		left.Add(1)
		c.subscribe(s.topic, s.subtopic, s.onMsg, func(_ bool, _, _ uint32) { done(0, nil) })
	}
	for _, o := range obs {
		if o.topic == "" {
			continue // ETID observers do not survive a reconnect
		}
		left.Add(1)
		c.resolve(msgCreate, o.topic, func(tid uint32, err error) {
			if err == nil {
				c.mu.Lock()
				c.observers[tid] = o
				c.mu.Unlock()
				_ = t.sendID(msgObserve, tid)
			}
			done(0, nil)
		})
	}
	done(0, nil)
}

func (c *Client) isClosing() bool {
	select {
	case <-c.closing:
		return true
	default:
		return false
	}
}

// readLoop reads and dispatches messages until an error.
func (c *Client) readLoop(t *transport) error {
	for {
		m, err := t.readMsg()
		if err != nil {
			return err
		}
		if err := c.dispatch(t, m); err != nil {
			return err
		}
	}
}

// dispatch handles one message after the handshake (SMQ spec §1.4).
func (c *Client) dispatch(t *transport, m []byte) error {
	switch m[0] {
	case msgPublish:
		if len(m) < 13 {
			break
		}
		msg := Message{
			TID:    binary.BigEndian.Uint32(m[1:5]),
			PTID:   binary.BigEndian.Uint32(m[5:9]),
			SubTID: binary.BigEndian.Uint32(m[9:13]),
			Data:   m[13:],
		}
		var fn func(Message)
		c.mu.RLock()
		if h := c.handlers[msg.TID]; h != nil {
			if msg.SubTID != 0 {
				fn = h.sub[msg.SubTID]
			}
			if fn == nil {
				fn = h.all
			}
		}
		c.mu.RUnlock()
		if fn == nil {
			fn = c.opts.OnMsg
		}
		if fn != nil {
			fn(msg)
		}
		return nil
	case msgSuback, msgCreateAck, msgCreateSubAck:
		if len(m) < 6 {
			break
		}
		c.onAck(m[0], m[1] == 0, binary.BigEndian.Uint32(m[2:6]), m[6:])
		return nil
	case msgChange:
		if len(m) < 9 {
			break
		}
		c.onChange(binary.BigEndian.Uint32(m[1:5]), binary.BigEndian.Uint32(m[5:9]))
		return nil
	case msgPing:
		return t.send([]byte{msgPong})
	case msgPong:
		return nil
	case msgDisconnect:
		return &DisconnectError{Reason: string(m[1:])}
	}
	return fmt.Errorf("smq client: unexpected message type %d (%d bytes): %w", m[0], len(m), ErrProtocol)
}

func (c *Client) onAck(typ byte, accepted bool, id uint32, name []byte) {
	var err error
	c.mu.Lock()
	if !accepted {
		err, id = ErrDenied, 0
	} else if typ == msgCreateSubAck {
		c.sub2id[string(name)] = id
		c.id2sub[id] = string(name)
	} else {
		c.topic2tid[string(name)] = id
		c.tid2topic[id] = string(name)
	}
	pend := c.pending[typ]
	list := pend[string(name)]
	delete(pend, string(name))
	c.mu.Unlock()
	for _, f := range list {
		f(id, err)
	}
}

func (c *Client) onChange(tid, count uint32) {
	c.mu.Lock()
	o := c.observers[tid]
	if o != nil && count == 0 {
		if _, isTopic := c.tid2topic[tid]; !isTopic {
			delete(c.observers, tid) // the observed client is gone
		}
	}
	c.mu.Unlock()
	if o != nil && o.fn != nil {
		o.fn(count)
	}
}

// failPending fails every request waiting for an ack (connection lost).
func (c *Client) failPending() {
	c.mu.Lock()
	var all [][]ackFunc
	for typ, pend := range c.pending {
		for _, l := range pend {
			all = append(all, l)
		}
		c.pending[typ] = map[string][]ackFunc{}
	}
	c.mu.Unlock()
	for _, l := range all {
		for _, f := range l {
			f(0, ErrNotConnected)
		}
	}
}

// resolve maps a name to its ID with Create (msgCreate) or CreateSub
// (msgCreateSub), or Subscribe (msgSubscribe, never cached-short-cut),
// calling cb with the result. A known name answers at once; a request for
// a name already in flight waits for the same ack (acks echo the name).
func (c *Client) resolve(req byte, name string, cb ackFunc) {
	var ack byte
	c.mu.Lock()
	switch req {
	case msgCreate:
		ack = msgCreateAck
		if tid, ok := c.topic2tid[name]; ok {
			c.mu.Unlock()
			cb(tid, nil)
			return
		}
	case msgCreateSub:
		ack = msgCreateSubAck
		if id, ok := c.sub2id[name]; ok {
			c.mu.Unlock()
			cb(id, nil)
			return
		}
	default:
		ack = msgSuback
	}
	pend := c.pending[ack]
	l, inflight := pend[name]
	pend[name] = append(l, cb)
	c.mu.Unlock()
	if inflight {
		return
	}
	t := c.t.Load()
	err := ErrNotConnected
	if t != nil {
		err = t.sendName(req, name)
	}
	if err != nil {
		c.mu.Lock()
		l := c.pending[ack][name]
		delete(c.pending[ack], name)
		c.mu.Unlock()
		for _, f := range l {
			f(0, err)
		}
	}
}

func (c *Client) waitAck(ctx context.Context, req byte, name string) (uint32, error) {
	type result struct {
		id  uint32
		err error
	}
	ch := make(chan result, 1)
	c.resolve(req, name, func(id uint32, err error) { ch <- result{id, err} })
	select {
	case r := <-ch:
		return r.id, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-c.done:
		return 0, ErrClosed
	}
}

// Create resolves a topic name to its TID (Create/CreateAck), waiting for
// the ack. Not from a callback.
func (c *Client) Create(ctx context.Context, topic string) (uint32, error) {
	if topic == "" {
		return 0, errors.New("smq client: empty topic name")
	}
	return c.waitAck(ctx, msgCreate, topic)
}

// CreateSub resolves a sub-topic name to its ID (CreateSub/CreateSubAck),
// waiting for the ack. Not from a callback.
func (c *Client) CreateSub(ctx context.Context, subtopic string) (uint32, error) {
	if subtopic == "" {
		return 0, errors.New("smq client: empty sub-topic name")
	}
	return c.waitAck(ctx, msgCreateSub, subtopic)
}

// Subscribe subscribes to topic, or registers for direct messages when topic
// is "self" (no packet). It returns once the request is sent; opts.OnAck
// reports the outcome. Safe from callbacks.
func (c *Client) Subscribe(topic string, opts *SubscribeOptions) error {
	var o SubscribeOptions
	if opts != nil {
		o = *opts
	}
	if topic == "" {
		return errors.New("smq client: empty topic name")
	}
	if c.t.Load() == nil {
		return ErrNotConnected
	}
	c.subscribe(topic, o.Subtopic, o.OnMsg, o.OnAck)
	return nil
}

// SubscribeWait is Subscribe that waits for the ack(s) and returns the TID
// (the ETID for "self") and sub-topic ID. Not from a callback.
func (c *Client) SubscribeWait(ctx context.Context, topic string, opts *SubscribeOptions) (tid, subtid uint32, err error) {
	type result struct {
		ok          bool
		tid, subtid uint32
	}
	ch := make(chan result, 1)
	var o SubscribeOptions
	if opts != nil {
		o = *opts
	}
	user := o.OnAck
	o.OnAck = func(ok bool, tid, subtid uint32) {
		if user != nil {
			user(ok, tid, subtid)
		}
		ch <- result{ok, tid, subtid}
	}
	if err := c.Subscribe(topic, &o); err != nil {
		return 0, 0, err
	}
	select {
	case r := <-ch:
		if !r.ok {
			if c.t.Load() == nil {
				return 0, 0, ErrNotConnected
			}
			return 0, 0, ErrDenied
		}
		return r.tid, r.subtid, nil
	case <-ctx.Done():
		return 0, 0, ctx.Err()
	case <-c.done:
		return 0, 0, ErrClosed
	}
}

// subscribe is the shared body of Subscribe and restore.
func (c *Client) subscribe(topic, subtopic string, onMsg func(Message), onAck func(bool, uint32, uint32)) {
	finish := func(tid, subtid uint32, err error) {
		if err == nil {
			c.mu.Lock()
			if onMsg != nil {
				h := c.handlers[tid]
				if h == nil {
					h = &handlers{sub: map[uint32]func(Message){}}
					c.handlers[tid] = h
				}
				if subtid != 0 {
					h.sub[subtid] = onMsg
				} else {
					h.all = onMsg
				}
			}
			c.subs = append(c.subs, &subscription{topic: topic, subtopic: subtopic, onMsg: onMsg})
			c.mu.Unlock()
		}
		if onAck != nil {
			onAck(err == nil, tid, subtid)
		}
	}
	withTID := func(tid uint32, err error) {
		if err != nil || subtopic == "" {
			finish(tid, 0, err)
			return
		}
		c.resolve(msgCreateSub, subtopic, func(subtid uint32, err error) { finish(tid, subtid, err) })
	}
	if topic == "self" {
		withTID(c.etid.Load(), nil)
		return
	}
	c.resolve(msgSubscribe, topic, withTID)
}

// Unsubscribe drops a subscription by name ("self" removes the direct-message
// callbacks; no packet). The name must be known.
func (c *Client) Unsubscribe(topic string) error {
	c.mu.Lock()
	var tid uint32
	if topic == "self" {
		tid = c.etid.Load()
	} else {
		var ok bool
		if tid, ok = c.topic2tid[topic]; !ok {
			c.mu.Unlock()
			return fmt.Errorf("%w: %q", ErrUnknownTopic, topic)
		}
	}
	delete(c.handlers, tid)
	kept := c.subs[:0]
	for _, s := range c.subs {
		if s.topic != topic {
			kept = append(kept, s)
		}
	}
	clear(c.subs[len(kept):])
	c.subs = kept
	c.mu.Unlock()
	if topic == "self" {
		return nil
	}
	return c.sendID(msgUnsubscribe, tid)
}

func (c *Client) sendID(typ byte, id uint32) error {
	t := c.t.Load()
	if t == nil {
		return ErrNotConnected
	}
	return t.sendID(typ, id)
}

// Publish sends data to a topic name, optionally with a sub-topic name.
// Unknown names are first resolved with Create/CreateSub without blocking:
// the publish goes out when the ack arrives (data is copied then), so it is
// safe from callbacks. Publishes to one unresolved name keep their order.
func (c *Client) Publish(data []byte, topic, subtopic string) error {
	if len(data) > MaxPayload {
		return ErrTooLarge
	}
	if topic == "" {
		return errors.New("smq client: empty topic name")
	}
	c.mu.RLock()
	tid, ok := c.topic2tid[topic]
	var subtid uint32
	if subtopic != "" {
		var ok2 bool
		subtid, ok2 = c.sub2id[subtopic]
		ok = ok && ok2
	}
	c.mu.RUnlock()
	if ok {
		return c.PublishTo(data, tid, subtid)
	}
	if c.t.Load() == nil {
		return ErrNotConnected
	}
	buf := bytes.Clone(data)
	c.resolve(msgCreate, topic, func(tid uint32, err error) {
		if err != nil {
			return
		}
		if subtopic == "" {
			_ = c.PublishTo(buf, tid, 0)
			return
		}
		c.resolve(msgCreateSub, subtopic, func(subtid uint32, err error) {
			if err == nil {
				_ = c.PublishTo(buf, tid, subtid)
			}
		})
	})
	return nil
}

// PublishTo sends data to a TID or ETID with a sub-topic ID (0 = none). It
// is the hot path: no allocation in steady state. On a raw transport with
// Options.FragmentSize set, large payloads go out as PubFrag.
func (c *Client) PublishTo(data []byte, tid, subtid uint32) error {
	if len(data) > MaxPayload {
		return ErrTooLarge
	}
	t := c.t.Load()
	if t == nil {
		return ErrNotConnected
	}
	return t.publish(data, tid, subtid, c.opts.FragmentSize)
}

// Observe asks the broker for subscriber-count changes of a topic TID, or
// for the departure (count 0) of a client ETID; fn runs on the read
// goroutine. An ETID observer is dropped after its count-0 Change.
func (c *Client) Observe(tid uint32, fn func(count uint32)) error {
	c.mu.Lock()
	c.observers[tid] = &observer{fn: fn, topic: c.tid2topic[tid]}
	c.mu.Unlock()
	return c.sendID(msgObserve, tid)
}

// Unobserve cancels Observe.
func (c *Client) Unobserve(tid uint32) error {
	c.mu.Lock()
	delete(c.observers, tid)
	c.mu.Unlock()
	return c.sendID(msgUnobserve, tid)
}

// Etid returns the client's ETID on the current (or last) connection.
func (c *Client) Etid() uint32 { return c.etid.Load() }

// Seed and IP return the last Init's seed and the IP the broker saw.
func (c *Client) Seed() uint32 { c.mu.RLock(); defer c.mu.RUnlock(); return c.seed }

// IP returns the client address as the broker reported it in Init.
func (c *Client) IP() string { c.mu.RLock(); defer c.mu.RUnlock(); return c.ip }

// TopicID returns the TID of a resolved topic name.
func (c *Client) TopicID(name string) (uint32, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	id, ok := c.topic2tid[name]
	return id, ok
}

// TopicName returns the name of a resolved TID.
func (c *Client) TopicName(tid uint32) (string, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	n, ok := c.tid2topic[tid]
	return n, ok
}

// SubtopicID returns the ID of a resolved sub-topic name.
func (c *Client) SubtopicID(name string) (uint32, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	id, ok := c.sub2id[name]
	return id, ok
}

// SubtopicName returns the name of a resolved sub-topic ID.
func (c *Client) SubtopicName(id uint32) (string, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	n, ok := c.id2sub[id]
	return n, ok
}

// Connected reports whether the client currently has a connection.
func (c *Client) Connected() bool { return c.t.Load() != nil }

// Done is closed when the client has stopped for good (Close, a broker
// Disconnect, or a lost connection without Reconnect); Err then says why.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err returns the final error once Done is closed, else nil.
func (c *Client) Err() error {
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}

// Close sends Disconnect, closes the connection, stops reconnecting and
// waits for the read goroutine. Idempotent; not from a callback (it would
// wait for itself) – from a callback, use CloseAsync.
func (c *Client) Close() error {
	c.CloseAsync()
	<-c.done
	return nil
}

// CloseAsync is Close without waiting; safe from callbacks.
func (c *Client) CloseAsync() {
	c.closeOnce.Do(func() {
		close(c.closing)
		if t := c.t.Load(); t != nil {
			_ = t.send([]byte{msgDisconnect})
			t.close()
		}
	})
}
