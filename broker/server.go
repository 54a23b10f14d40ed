package broker

import (
	"encoding/json"
	"iter"
	"maps"
	"slices"
	"sync"
	"time"
)

// The server-side client (SMQ spec §2.4): Go code publishing, subscribing and
// observing inside the hub. Its ETID is ServerEtid() (1 unless RndTid).
// Every method here is safe for concurrent use. Callbacks (SubscribeOptions.
// OnMsg, Options.OnMsg, Observe's func) run on the goroutine that routed the
// message: an event loop for client publishes, the caller's goroutine for
// server publishes. They must not block; they may call Hub methods
// (publishing from a callback is allowed, nesting is bounded at 20).

// srvKey selects a server subscription callback: (tid, subtid), subtid 0 for
// the topic-wide callback.
type srvKey struct{ tid, subtid uint32 }

type srvSub struct {
	fn   func(Message)
	json bool
}

// SubscribeOptions configures a server-side subscription. Nil means: no
// callback (messages go to the default OnMsg).
type SubscribeOptions struct {
	// OnMsg receives the messages. m.Data is only valid during the call.
	OnMsg func(m Message)
	// Subtopic restricts OnMsg to one sub-topic name (created on demand);
	// SubtopicID does the same by number. Empty/0: topic-wide.
	Subtopic   string
	SubtopicID uint32
	// JSON decodes m.Data into m.JSON; on a decode failure the message goes
	// to the default OnMsg instead.
	JSON bool
}

// decodeJSON fills m.JSON; false if Data is not valid JSON.
func decodeJSON(m *Message) bool {
	var v any
	if err := json.Unmarshal(m.Data, &v); err != nil {
		return false
	}
	m.JSON = v
	return true
}

// ServerEtid returns the server-side client's ETID (BAS gettid).
func (h *Hub) ServerEtid() uint32 { return h.server.Etid() }

// ServerPeer returns the server-side pseudo client.
func (h *Hub) ServerPeer() *Peer { return h.server }

// CreateTopic resolves a topic name to its TID, creating it if unknown (no
// authorisation). A non-zero tid is used for a new name if free (SMQ spec
// §1.7); the C++ examples pre-assign small TIDs. An unknown name when the
// hub already holds Options.MaxTopics names gives 0, ErrTopicLimit.
func (h *Hub) CreateTopic(name string, tid uint32) (uint32, error) {
	h.mu.Lock()
	t := h.topicLocked(name, tid)
	h.mu.Unlock()
	if t == nil {
		h.topicRefused(h.server, "topic", name)
		return 0, ErrTopicLimit
	}
	return t.tid, nil
}

// Create is CreateTopic without the error: 0 means the hub is full
// (Options.MaxTopics); 0 is never a valid TID.
func (h *Hub) Create(name string, tid uint32) uint32 {
	id, _ := h.CreateTopic(name, tid)
	return id
}

// CreateSubtopic resolves a sub-topic name to its ID, creating it if
// unknown (optionally with a pre-assigned id). The empty name is 0 (no
// sub-topic). An unknown name when the hub already holds Options.MaxTopics
// names gives 0, ErrTopicLimit.
func (h *Hub) CreateSubtopic(name string, id uint32) (uint32, error) {
	if name == "" {
		return 0, nil
	}
	h.mu.Lock()
	id = h.subtopicLocked(name, id)
	h.mu.Unlock()
	if id == 0 {
		h.topicRefused(h.server, "subtopic", name)
		return 0, ErrTopicLimit
	}
	return id, nil
}

// CreateSub is CreateSubtopic without the error: 0 for "" and when the hub
// is full (Options.MaxTopics).
func (h *Hub) CreateSub(name string, id uint32) uint32 {
	id, _ = h.CreateSubtopic(name, id)
	return id
}

// Publish sends data from the server client (ptid = ServerEtid) to tid (a
// topic TID, a client ETID, or ServerEtid itself) with sub-topic subtid. It
// returns how many recipients got it; 0 with a nil error means nobody (the
// message is dropped, as in BAS). Payloads over MaxPayload are refused.
func (h *Hub) Publish(data []byte, tid, subtid uint32) (int, error) {
	if len(data) > MaxPayload {
		return 0, ErrPayloadTooBig
	}
	buf := publishBufs.Get().(*[]byte)
	msg := AppendPublish((*buf)[:0], tid, h.ServerEtid(), subtid, data)
	n := h.route(msg, tid, nil)
	if cap(msg) <= 64<<10 {
		*buf = msg[:0]
		publishBufs.Put(buf)
	}
	return n, nil
}

// publishBufs recycles Publish's message buffers: route keeps no reference
// to msg (a fan-out encodes its own copy, one recipient's connection frames
// a copy, server callbacks may use Message.Data only during the call).
var publishBufs = sync.Pool{New: func() any { return new([]byte) }}

// PublishTopic is Publish by names: topic and subtopic are created on
// demand ("" subtopic = none). topic "self" means the server's own ETID.
// A name that cannot be created (Options.MaxTopics) gives ErrTopicLimit and
// nothing is sent.
func (h *Hub) PublishTopic(data []byte, topic, subtopic string) (int, error) {
	if len(data) > MaxPayload {
		return 0, ErrPayloadTooBig
	}
	tid := h.ServerEtid()
	if topic != "self" {
		var err error
		if tid, err = h.CreateTopic(topic, 0); err != nil {
			return 0, err
		}
	}
	subtid, err := h.CreateSubtopic(subtopic, 0)
	if err != nil {
		return 0, err
	}
	return h.Publish(data, tid, subtid)
}

// PubOn delivers data to client toEtid as if client fromEtid had published
// it to toEtid with subtid (BAS pubon). Both must be connected client peers.
func (h *Hub) PubOn(data []byte, toEtid, fromEtid, subtid uint32) bool {
	if len(data) > MaxPayload {
		return false
	}
	_, to := h.lookupID(toEtid)
	_, from := h.lookupID(fromEtid)
	if to == nil || from == nil || to.server || from.server {
		return false
	}
	msg := AppendPublish(make([]byte, 0, publishHeaderLen+len(data)), toEtid, fromEtid, subtid, data)
	f := getFrames(nil)
	ok := h.sendOne(to, msg, f)
	f.done()
	if ok {
		h.deliveries.Add(1)
	}
	return ok
}

// SubscribeTopic subscribes the server client to topic (created on demand;
// it then counts as a subscriber for observers). topic "self" registers the
// callback for messages sent to ServerEtid, with no protocol effect. It
// returns the TID (or ServerEtid for "self"), or 0, ErrTopicLimit when
// topic or opts.Subtopic is a new name and the hub holds Options.MaxTopics
// names (nothing is subscribed then).
func (h *Hub) SubscribeTopic(topic string, opts *SubscribeOptions) (uint32, error) {
	tid := h.ServerEtid()
	if topic != "self" {
		var err error
		if tid, err = h.CreateTopic(topic, 0); err != nil {
			return 0, err
		}
	}
	if err := h.SubscribeTid(tid, opts); err != nil {
		return 0, err
	}
	return tid, nil
}

// Subscribe is SubscribeTopic without the error: 0 means nothing was
// subscribed (the hub is full, Options.MaxTopics).
func (h *Hub) Subscribe(topic string, opts *SubscribeOptions) uint32 {
	tid, _ := h.SubscribeTopic(topic, opts)
	return tid
}

// SubscribeTid is Subscribe by number: tid must be a known topic or
// ServerEtid, else ErrUnknownTid. A new opts.Subtopic name past
// Options.MaxTopics gives ErrTopicLimit (nothing is subscribed).
func (h *Hub) SubscribeTid(tid uint32, opts *SubscribeOptions) error {
	var o SubscribeOptions
	if opts != nil {
		o = *opts
	}
	subtid := o.SubtopicID
	if o.Subtopic != "" {
		var err error
		if subtid, err = h.CreateSubtopic(o.Subtopic, 0); err != nil {
			return err
		}
	}
	var later []func()
	h.mu.Lock()
	t, d := h.lookupID(tid)
	switch {
	case d == h.server:
	case t != nil:
		if h.server.topics[tid] == nil {
			h.addSubLocked(t, h.server, &later)
		}
	default:
		h.mu.Unlock()
		return ErrUnknownTid
	}
	if o.OnMsg != nil {
		h.srvCB[srvKey{tid, subtid}] = srvSub{fn: o.OnMsg, json: o.JSON}
		h.publishCBLocked()
	}
	h.mu.Unlock()
	for _, f := range later {
		f()
	}
	return nil
}

func (h *Hub) publishCBLocked() {
	snap := maps.Clone(h.srvCB)
	h.srvCBSnap.Store(&snap)
}

// Unsubscribe removes the server client's subscription to topic ("self":
// its ETID callbacks) and every callback registered for it.
func (h *Hub) Unsubscribe(topic string) {
	tid := h.ServerEtid()
	if topic != "self" {
		var ok bool
		if tid, ok = h.Topic2Tid(topic); !ok {
			return
		}
	}
	h.UnsubscribeTid(tid)
}

// UnsubscribeTid is Unsubscribe by number.
func (h *Hub) UnsubscribeTid(tid uint32) {
	var later []func()
	h.mu.Lock()
	if t := h.server.topics[tid]; t != nil {
		h.removeSubLocked(t, h.server, &later)
	}
	for k := range h.srvCB {
		if k.tid == tid {
			delete(h.srvCB, k)
		}
	}
	h.publishCBLocked()
	h.mu.Unlock()
	for _, f := range later {
		f()
	}
}

// OnMsg replaces the default server callback (nil: drop).
func (h *Hub) OnMsg(fn func(Message)) {
	if fn == nil {
		h.onMsg.Store(nil)
		return
	}
	h.onMsg.Store(&fn)
}

// Observe makes the server observe a topic TID or a client ETID (SMQ spec
// §1.9): fn(count, tid) runs now with the current count for a topic, on
// every change, and with 0 when an observed client leaves (the observation
// then ends). An unknown id gets fn(0, id) at once and nothing is
// registered. Observing ServerEtid is refused (false).
func (h *Hub) Observe(tid uint32, fn func(count int, tid uint32)) bool {
	if tid == h.ServerEtid() || fn == nil {
		return false
	}
	h.mu.Lock()
	n := h.observeLocked(h.server, tid)
	if _, registered := h.server.x().observing[tid]; registered {
		h.srvObs[tid] = fn
	}
	h.mu.Unlock()
	if n >= 0 {
		fn(n, tid)
	}
	return true
}

// Unobserve ends the server's observation of tid.
func (h *Hub) Unobserve(tid uint32) {
	h.mu.Lock()
	h.unobserveLocked(h.server, tid)
	delete(h.srvObs, tid)
	h.mu.Unlock()
}

// Shutdown closes peers (SMQ spec §1.11): etid 0 = every peer, including
// those still in the handshake; otherwise only that client. A non-empty msg
// is sent as Disconnect(msg) first; "" closes silently. OnClose gets
// ErrShutdown. The hub stays usable.
func (h *Hub) Shutdown(msg string, etid uint32) {
	var victims []*Peer
	h.mu.Lock()
	if etid == 0 {
		victims = slices.Collect(maps.Keys(h.conns)) // in the handshake
		for _, p := range h.uids {
			victims = append(victims, p)
		}
	} else if _, p := h.lookupID(etid); p != nil && !p.server {
		victims = []*Peer{p}
	}
	h.mu.Unlock()
	for _, p := range victims {
		h.disconnect(p, msg, ErrShutdown)
	}
}

// Topic2Tid returns the TID of a topic name.
func (h *Hub) Topic2Tid(name string) (uint32, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if t := h.names[name]; t != nil {
		return t.tid, true
	}
	return 0, false
}

// Tid2Topic returns the name of a topic TID.
func (h *Hub) Tid2Topic(tid uint32) (string, bool) {
	if t, _ := h.lookupID(tid); t != nil {
		return t.name, true
	}
	return "", false
}

// Subtopic2Tid returns the ID of a sub-topic name.
func (h *Hub) Subtopic2Tid(name string) (uint32, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	id, ok := h.subNames[name]
	return id, ok
}

// Tid2Subtopic returns the name of a sub-topic ID.
func (h *Hub) Tid2Subtopic(id uint32) (string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	name, ok := h.subIDs[id]
	return name, ok
}

// Etid2Peer returns the connected client (or the server client) with that
// ETID, or nil.
func (h *Hub) Etid2Peer(etid uint32) *Peer {
	_, p := h.lookupID(etid)
	return p
}

// Subscribers returns the current subscriber count of a topic TID (the
// server client included), and false for an unknown TID.
func (h *Hub) Subscribers(tid uint32) (int, bool) {
	t, _ := h.lookupID(tid)
	if t == nil {
		return 0, false
	}
	return len(*t.subs.Load()), true
}

// Peers iterates over a snapshot of the connected peers, the server pseudo
// client first (as BAS peers() includes it).
func (h *Hub) Peers() iter.Seq[*Peer] {
	return func(yield func(*Peer) bool) {
		h.mu.Lock()
		ps := make([]*Peer, 0, len(h.uids)+1)
		ps = append(ps, h.server)
		for _, p := range h.uids {
			ps = append(ps, p)
		}
		h.mu.Unlock()
		for _, p := range ps {
			if !yield(p) {
				return
			}
		}
	}
}

// Topics iterates over a snapshot of tid → topic name.
func (h *Hub) Topics() iter.Seq2[uint32, string] {
	return h.snapshot(func() map[uint32]string {
		m := make(map[uint32]string, len(h.names))
		for name, t := range h.names {
			m[t.tid] = name
		}
		return m
	})
}

// Subtopics iterates over a snapshot of id → sub-topic name.
func (h *Hub) Subtopics() iter.Seq2[uint32, string] {
	return h.snapshot(func() map[uint32]string { return maps.Clone(h.subIDs) })
}

func (h *Hub) snapshot(take func() map[uint32]string) iter.Seq2[uint32, string] {
	return func(yield func(uint32, string) bool) {
		h.mu.Lock()
		m := take()
		h.mu.Unlock()
		for id, name := range m {
			if !yield(id, name) {
				return
			}
		}
	}
}

// QueueSize reports BAS's server publish queue as (free, used). Server
// publishes are routed synchronously, so used is always 0.
func (h *Hub) QueueSize() (free, used int) { return h.opts.QueueSize, 0 }

// SetKeepAlive changes the TCP keepalive settings applied to later peers
// (BAS setkeepalive); intv 0 means idle/10 (at least 3 s).
func (h *Hub) SetKeepAlive(idle, intv time.Duration) {
	if intv <= 0 {
		intv = max(idle/10, 3*time.Second)
	}
	h.keep.Store(&[2]time.Duration{idle, intv})
}

// KeepAlive returns the keepalive settings applied to new peers.
func (h *Hub) KeepAlive() (idle, intv time.Duration) {
	k := h.keep.Load()
	return k[0], k[1]
}
