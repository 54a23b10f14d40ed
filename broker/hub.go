package broker

import (
	"encoding/binary"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tarponrt/tarpon/runtime"
)

// conn is what a peer needs from its connection. *runtime.Conn satisfies
// it; tests use a fake. Every method is safe for concurrent use.
type conn interface {
	Send(msg []byte) error          // frames msg for the transport; copies it
	SendEncoded(frame []byte) error // already framed; shared, not copied
	// TrySendEncoded queues an already framed message unless the queue is
	// over its high-water mark (false); b defers the write to b.Flush.
	TrySendEncoded(frame []byte, b *runtime.Batch) (bool, error)
	// TrySend is TrySendEncoded for one recipient: msg is framed (copied)
	// by the connection.
	TrySend(msg []byte, b *runtime.Batch) (bool, error)
	// CallbackBatch is the batch of the event loop's callback in progress
	// (nil: none), flushed when the callback ends. Only from OnMessage.
	CallbackBatch() *runtime.Batch
	Congested() bool
	Close(code uint16, reason string) error // idempotent
	RemoteAddr() net.Addr
	Execute(fn func()) error // run fn on the connection's event loop
}

// encoders frame one SMQ message for a transport. A broadcast encodes once
// per transport and shares the bytes with every recipient.
type encoders struct {
	ws  func(dst []byte, text bool, payload []byte) []byte
	raw func(dst, payload []byte) []byte
}

// Hub is one SMQ broker instance (SMQ spec §1.1): its topic table, peers,
// subscriptions and observers, and the server-side client. Create it with
// New; serve it with ServeHTTP or Connect. All methods are safe for
// concurrent use.
type Hub struct {
	opts  Options
	hooks Hooks
	log   *slog.Logger
	enc   encoders
	srv   serveState // transport side (serve.go)

	// TIDs and ETIDs share one number space (§1.7): an ID is live when
	// either table has it. Written under mu; read lock-free by the publish
	// path.
	topicIDs idTable[topic]
	peerIDs  idTable[Peer]

	mu        sync.Mutex         // guards the fields below and Peer/topic fields marked "mu"
	names     map[string]*topic  // topic name → topic, for the hub's lifetime
	subNames  map[string]uint32  // sub-topic name → id
	subIDs    map[uint32]string  // sub-topic id → name
	uids      map[string]*Peer   // UID → connected peer
	conns     map[*Peer]struct{} // open peers in their handshake (connected ones are in uids)
	srvObs    map[uint32]obsFunc // server-side observers by observed id
	srvCB     map[srvKey]srvSub  // server-side subscription callbacks (master copy)
	srvCBSnap atomic.Pointer[map[srvKey]srvSub]
	server    *Peer // the server-side pseudo client (never in conns)

	onMsg atomic.Pointer[func(Message)]
	depth atomic.Int32 // server callback nesting (see deliverServer)
	keep  atomic.Pointer[[2]time.Duration]

	publishes, deliveries, drops, undelivered, slowCloses, oversize atomic.Uint64

	topicsRefused atomic.Uint64 // new names refused by Options.MaxTopics
	limitLogAt    atomic.Int64  // UnixNano of the last topic-limit warning (0: none yet)
}

type obsFunc func(count int, tid uint32)

// newHub builds a hub without a transport; New (serve.go) adds the reactor.
func newHub(opts *Options, enc encoders) *Hub {
	h := &Hub{enc: enc}
	if opts != nil {
		h.opts = *opts
	}
	h.opts.fill()
	h.hooks = h.opts.Hooks
	h.log = h.opts.Logger
	h.names = map[string]*topic{}
	h.subNames = map[string]uint32{}
	h.subIDs = map[uint32]string{}
	h.uids = map[string]*Peer{}
	h.conns = map[*Peer]struct{}{}
	h.srvObs = map[uint32]obsFunc{}
	h.srvCB = map[srvKey]srvSub{}
	h.srvCBSnap.Store(&map[srvKey]srvSub{})
	if h.opts.OnMsg != nil {
		f := h.opts.OnMsg
		h.onMsg.Store(&f)
	}
	h.keep.Store(&[2]time.Duration{h.opts.KeepIdle, h.opts.KeepIntv})
	h.server = &Peer{h: h, server: true}
	h.server.state.Store(stConnected)
	etid := uint32(1)
	if h.opts.RndTid {
		etid = h.allocIDLocked()
	}
	h.server.etid.Store(etid)
	h.peerIDs.store(etid, h.server)
	return h
}

// allocIDLocked returns a random non-zero u32 not used by any TID or ETID.
// Caller holds mu (or owns h exclusively).
func (h *Hub) allocIDLocked() uint32 {
	for {
		id := randomID()
		if id == 0 {
			continue
		}
		if !h.idUsed(id) {
			return id
		}
	}
}

// idUsed reports whether id is a live TID or ETID. Lock-free.
func (h *Hub) idUsed(id uint32) bool {
	return h.topicIDs.load(id) != nil || h.peerIDs.load(id) != nil
}

// lookupID returns the *topic or *Peer registered under id. Lock-free.
func (h *Hub) lookupID(id uint32) (*topic, *Peer) {
	if t := h.topicIDs.load(id); t != nil {
		return t, nil
	}
	return nil, h.peerIDs.load(id)
}

// Stats is a snapshot of a hub's counters, for metrics.
type Stats struct {
	Peers         int    // connected client peers (not counting the server client)
	Handshaking   int    // peers between Init and Connack
	Topics        int    // topic names (they live for the hub's lifetime)
	Subtopics     int    // sub-topic names; Topics+Subtopics ≤ Options.MaxTopics
	Publishes     uint64 // publishes routed (client and server)
	Deliveries    uint64 // messages handed to a recipient (server client included)
	Drops         uint64 // per-recipient drops: congested or full send queue, payload too big for a raw peer
	Oversize      uint64 // of Drops: messages over 0xFFF0 payload not forwarded to raw peers
	Undelivered   uint64 // publishes that reached nobody
	SlowCloses    uint64 // recipients closed by SlowConsumerDisconnect
	TopicsRefused uint64 // new names refused by Options.MaxTopics (denied acks, ErrTopicLimit); not MaxTopicsPerPeer or hook refusals
}

// Stats returns the hub's counters. Any goroutine.
func (h *Hub) Stats() Stats {
	h.mu.Lock()
	s := Stats{Peers: len(h.uids), Handshaking: len(h.conns), Topics: len(h.names), Subtopics: len(h.subNames)}
	h.mu.Unlock()
	s.Publishes = h.publishes.Load()
	s.Deliveries = h.deliveries.Load()
	s.Drops = h.drops.Load()
	s.Oversize = h.oversize.Load()
	s.Undelivered = h.undelivered.Load()
	s.SlowCloses = h.slowCloses.Load()
	s.TopicsRefused = h.topicsRefused.Load()
	return s
}

// clientIP is the Init address text: the peer's IP with an IPv4-mapped
// IPv6 prefix ("::ffff:") stripped (SMQ spec §1.5).
func clientIP(a net.Addr) string {
	if a == nil {
		return ""
	}
	if ta, ok := a.(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(ta.IP); ok {
			return ip.Unmap().String()
		}
	}
	s := a.String()
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().String()
	}
	if host, _, err := net.SplitHostPort(s); err == nil {
		s = host
	}
	return strings.TrimPrefix(s, "::ffff:")
}

// route delivers a Publish message (WS form, msg[0] = 8, header intact) to
// destination tid: an ETID, the server client, or every subscriber of a
// topic. It returns the number of recipients. Runs on the caller's goroutine
// (an event loop for client publishes) and takes no lock: topic subscriber
// sets are copy-on-write snapshots.
//
// b, when not nil, is the publisher's callback batch (the writes wait for
// the end of the callback, so all the publishes of one read leave in one
// write per subscriber); otherwise route writes before it returns.
func (h *Hub) route(msg []byte, tid uint32, b *runtime.Batch) int {
	h.publishes.Add(1)
	t, d := h.lookupID(tid)
	n := 0
	switch {
	case d != nil && d.server:
		h.deliverServer(msg)
		n = 1
	case d != nil:
		f := getFrames(b)
		if h.sendOne(d, msg, f) {
			n = 1
		}
		f.done()
	case t != nil:
		// One write per recipient for the whole fan-out, from this
		// goroutine, once every recipient's queue has the frame.
		f := getFrames(b)
		for _, s := range *t.subs.Load() {
			if s.server {
				h.deliverServer(msg)
				n++
			} else if h.sendTo(s, msg, f) {
				n++
			}
		}
		f.done()
	}
	if n == 0 {
		h.undelivered.Add(1)
	} else {
		h.deliveries.Add(uint64(n))
	}
	return n
}

// frames holds a message encoded once per transport, filled lazily, and the
// batch its sends go through: a callback's (b) or its own.
type frames struct {
	ws, raw []byte
	b       *runtime.Batch
	own     runtime.Batch
}

func (f *frames) batch() *runtime.Batch {
	if f.b != nil {
		return f.b
	}
	return &f.own
}

// framesPool recycles frames: a route's frames escape to the heap (the
// batch goes through the conn interface), and a publish must not cost an
// allocation for them. The own batch keeps its lists' capacity.
var framesPool = sync.Pool{New: func() any { return new(frames) }}

// getFrames returns empty frames whose sends go through b (nil: their own
// batch). Release them with done.
func getFrames(b *runtime.Batch) *frames {
	f := framesPool.Get().(*frames)
	f.b = b
	return f
}

// done writes what went through the frames' own batch (a callback's batch
// is flushed by the loop once it has handled its wake-up's events) and
// returns the frames to the pool. The encodings are left to the recipients'
// queues, which may still hold them.
func (f *frames) done() {
	f.own.Flush()
	f.ws, f.raw, f.b = nil, nil, nil
	framesPool.Put(f)
}

// sendTo queues msg to client peer s, applying the slow-consumer policy.
// The caller must call f.done() when done: until then the write to s
// (and any other send to s) waits.
func (h *Hub) sendTo(s *Peer, msg []byte, f *frames) bool {
	if !h.deliverable(s, msg) {
		return false
	}
	var frame []byte
	if s.raw {
		if f.raw == nil {
			f.raw = h.enc.raw(make([]byte, 0, len(msg)+2), msg)
		}
		frame = f.raw
	} else {
		if f.ws == nil {
			f.ws = h.enc.ws(make([]byte, 0, len(msg)+10), false, msg)
		}
		frame = f.ws
	}
	sent, err := s.c.TrySendEncoded(frame, f.batch())
	return h.sent(s, sent, err)
}

// sendOne is sendTo for a message routed to s alone: the connection frames
// a copy, so no encoding is allocated for it.
func (h *Hub) sendOne(s *Peer, msg []byte, f *frames) bool {
	if !h.deliverable(s, msg) {
		return false
	}
	sent, err := s.c.TrySend(msg, f.batch())
	return h.sent(s, sent, err)
}

// deliverable reports whether msg may go to s: s is connected and msg fits
// its transport (counted as a drop when it does not).
func (h *Hub) deliverable(s *Peer, msg []byte) bool {
	if s.state.Load() != stConnected {
		return false
	}
	if s.raw && len(msg) > MaxRawMessage {
		h.oversize.Add(1)
		h.drops.Add(1)
		return false
	}
	return true
}

// sent applies the outcome of a send to s: an error is a drop, a refusal
// (over the high-water mark) the slow-consumer policy. It reports whether
// the message was queued.
func (h *Hub) sent(s *Peer, sent bool, err error) bool {
	switch {
	case err != nil:
		s.drops.Add(1)
		h.drops.Add(1)
		return false
	case !sent: // over its high-water mark: a slow consumer
		if h.opts.SlowConsumer == SlowConsumerDisconnect {
			h.slowCloses.Add(1)
			h.terminate(s, ErrSlowConsumer)
		} else {
			s.drops.Add(1)
			h.drops.Add(1)
		}
		return false
	}
	return true
}

// maxServerDepth bounds nested server-side deliveries (a callback that
// publishes to a topic it is subscribed to), as BAS limits recursion to 20.
const maxServerDepth = 20

// deliverServer dispatches a Publish to the server-side client's callbacks:
// (tid, subtid) → (tid, 0) → the default OnMsg (SMQ spec §2.4). It runs on
// the publisher's goroutine. The depth counter is hub-wide, so it also
// counts concurrent deliveries on other loops; callbacks are short, so the
// bound is only reached by runaway recursion.
func (h *Hub) deliverServer(msg []byte) {
	if h.depth.Add(1) > maxServerDepth {
		h.depth.Add(-1)
		h.drops.Add(1)
		h.log.Warn("smq: server callback recursion too deep; message dropped")
		return
	}
	defer h.depth.Add(-1)
	m := Message{
		Tid:    binary.BigEndian.Uint32(msg[1:]),
		Ptid:   binary.BigEndian.Uint32(msg[5:]),
		Subtid: binary.BigEndian.Uint32(msg[9:]),
		Data:   msg[publishHeaderLen:],
	}
	cbs := *h.srvCBSnap.Load()
	sub, ok := cbs[srvKey{m.Tid, m.Subtid}]
	if !ok && m.Subtid != 0 {
		sub, ok = cbs[srvKey{m.Tid, 0}]
	}
	if ok && sub.fn != nil {
		if !sub.json || decodeJSON(&m) {
			sub.fn(m)
			return
		}
	}
	if f := h.onMsg.Load(); f != nil {
		(*f)(m)
	}
}

// randSeed returns an Init seed. math/rand/v2's global source is a
// per-process randomly seeded ChaCha8, unpredictable enough for a
// challenge/response nonce.
func randSeed() uint32 { return rand.Uint32() }

// minRandomID keeps random IDs out of [1, 2^26): gopher-lua stores a table
// key below 2^26 in the table's array part and fills it with nils up to the
// key, so Lua code doing peers[etid] = x would allocate up to a gigabyte.
// Pre-assigned IDs may still be small.
const minRandomID = 1 << 26

// randomID returns a random ID in [minRandomID, 2^32).
func randomID() uint32 {
	return minRandomID + rand.Uint32N(1<<32-minRandomID)
}
