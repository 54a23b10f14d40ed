package broker

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tarponrt/tarpon/runtime"
)

// Peer states. A peer moves forward only.
const (
	stAwaitConnect int32 = iota // Init sent, waiting for Connect (readtmo timer armed)
	stHandshake                 // Connect being processed (authenticate, takeover)
	stConnected                 // Connack sent, registered
	stClosed                    // terminated; left every table
)

// ConnectInfo describes the HTTP request and handshake that created a peer:
// BAS's info table (SMQ spec §2.2) for Authenticate and OnConnect. It lives
// only through the handshake: once OnConnect has returned the peer lets it
// go, since the request headers would otherwise cost every idle connection
// about a kilobyte.
type ConnectInfo struct {
	Arg        any         // the arg passed to Hub.Connect (nil from ServeHTTP)
	Seed       uint32      // the Init seed (for challenge/response credentials)
	URL        string      // request URI
	Header     http.Header // request headers (a clone)
	Query      url.Values  // parsed query string
	RemoteAddr string      // as net/http saw it
}

// Peer is one SMQ client connection, or the hub's server-side pseudo client
// (IsServer). Hooks receive it; server code may read it (SMQ spec §2.3) and
// attach its own value with SetUserData. Methods are safe for concurrent use.
//
// A Peer is 112 bytes: what every connected client needs is here, what few
// need (observers, PubFrag assembly, paused input, user data, a Disconnect
// reason) is in peerMore, allocated by the first of them. Memory per idle
// client is a headline figure of the broker.
type Peer struct {
	h       *Hub
	c       conn // nil for the server pseudo client
	raw     bool // raw (Len16) transport; false: WebSocket
	server  bool
	maxSize uint16 // set in the handshake, read-only afterwards
	etid    atomic.Uint32
	state   atomic.Int32
	seed    uint32
	created int32                       // names this peer created (MaxTopicsPerPeer); guarded by h.mu
	ci      atomic.Pointer[ConnectInfo] // until OnConnect has returned
	timer   *time.Timer                 // readtmo until Connect; guarded by h.mu
	uid     string                      // set in the handshake, read-only afterwards; shared with Hub.uids' key
	topics  map[uint32]*topic           // subscriptions; guarded by h.mu
	drops   atomic.Uint64
	more    atomic.Pointer[peerMore]
}

// peerMore is the part of a Peer that few peers need. Each field keeps the
// guard it would have in Peer.
type peerMore struct {
	info string // the Connect's client info; set in the handshake, read-only afterwards

	// Loop goroutine only.
	frag         []byte   // PubFrag assembly buffer
	paused       bool     // an async hook is pending: buffer input
	backlog      [][]byte // messages received while paused, in order
	backlogBytes int

	// Guarded by h.mu.
	observing map[uint32]struct{} // ids this peer observes
	obs       map[*Peer]struct{}  // observers of this peer's ETID

	// why is the reason chosen by the hub for a Disconnect it sent; the
	// transport close that the peer's reaction triggers reports it instead
	// of a plain I/O error.
	why atomic.Pointer[error]

	umu      sync.Mutex
	userData any
}

// x returns p's peerMore, allocating it on first use. Any goroutine.
func (p *Peer) x() *peerMore {
	if m := p.more.Load(); m != nil {
		return m
	}
	p.more.CompareAndSwap(nil, &peerMore{})
	return p.more.Load()
}

// Etid returns the peer's ETID (0 before its Connack).
func (p *Peer) Etid() uint32 { return p.etid.Load() }

// UID returns the client-chosen UID ("" for the server client).
func (p *Peer) UID() string { return p.uid }

// Info returns the client info of its Connect.
func (p *Peer) Info() string {
	if m := p.more.Load(); m != nil {
		return m.info
	}
	return ""
}

// MaxSize returns the u16 max-size of a version 2 Connect (0 = none/v1).
func (p *Peer) MaxSize() uint16 { return p.maxSize }

// Seed returns the Init seed sent to the peer.
func (p *Peer) Seed() uint32 { return p.seed }

// ConnectInfo returns the request details while the peer is in its
// handshake: in Authenticate and OnConnect (a hook that answers later must
// take it when it is called). Nil afterwards, and for the server client.
func (p *Peer) ConnectInfo() *ConnectInfo { return p.ci.Load() }

// IsServer reports whether p is the hub's server-side pseudo client.
func (p *Peer) IsServer() bool { return p.server }

// Raw reports whether p uses the raw (length-prefixed) transport rather
// than WebSocket.
func (p *Peer) Raw() bool { return p.raw }

// RemoteAddr returns the client's address (nil for the server client).
func (p *Peer) RemoteAddr() net.Addr {
	if p.c == nil {
		return nil
	}
	return p.c.RemoteAddr()
}

// Drops returns how many messages to this peer were dropped (congested).
func (p *Peer) Drops() uint64 { return p.drops.Load() }

// Topics returns the TIDs the peer is subscribed to.
func (p *Peer) Topics() []uint32 {
	p.h.mu.Lock()
	defer p.h.mu.Unlock()
	ids := make([]uint32, 0, len(p.topics))
	for id := range p.topics {
		ids = append(ids, id)
	}
	return ids
}

// UserData returns the value set with SetUserData.
func (p *Peer) UserData() any {
	m := p.more.Load()
	if m == nil {
		return nil
	}
	m.umu.Lock()
	defer m.umu.Unlock()
	return m.userData
}

// SetUserData attaches an application value to the peer.
func (p *Peer) SetUserData(v any) {
	m := p.x()
	m.umu.Lock()
	m.userData = v
	m.umu.Unlock()
}

// send queues one control message (ack, Change, Connack…) to p.
func (p *Peer) send(msg []byte) {
	if p.c != nil {
		_ = p.c.Send(msg)
	}
}

// open starts a peer's handshake: Init(seed, client IP) then the readtmo
// timer (SMQ spec §1.6 steps 2–3). Runs on p's event loop (OnOpen).
func (h *Hub) open(p *Peer) {
	p.seed = randSeed()
	h.mu.Lock()
	h.conns[p] = struct{}{}
	h.mu.Unlock()
	p.send(AppendInit(make([]byte, 0, 64), p.seed, clientIP(p.c.RemoteAddr())))
	h.mu.Lock() // the timer may fire before AfterFunc returns; terminate reads p.timer under mu
	p.timer = time.AfterFunc(h.opts.ReadTimeout, func() {
		if p.state.CompareAndSwap(stAwaitConnect, stHandshake) {
			h.refuse(p, ConnackUnavailable, "", ErrConnectTmo)
		}
	})
	h.mu.Unlock()
}

// message handles one SMQ message from p, strictly in arrival order (§1.12).
// Runs on p's event loop (OnMessage); msg is only valid during the call.
func (h *Hub) message(p *Peer, msg []byte) {
	if m := p.more.Load(); m != nil && m.paused {
		h.buffer(p, msg)
		return
	}
	h.handle(p, msg)
}

// handle processes one message. Loop goroutine only.
func (h *Hub) handle(p *Peer, msg []byte) {
	switch p.state.Load() {
	case stAwaitConnect:
		h.handleConnect(p, msg)
		return
	case stConnected:
	default:
		return
	}
	if len(msg) == 0 {
		h.kill(p, ErrProtocol)
		return
	}
	switch MsgType(msg[0]) {
	case msgPublish:
		h.clientPublish(p, msg)
	case msgSubscribe:
		h.clientSubscribe(p, string(msg[1:]))
	case msgCreate:
		h.clientCreate(p, string(msg[1:]))
	case msgCreateSub:
		h.clientCreateSub(p, string(msg[1:]))
	case msgUnsubscribe, msgObserve, msgUnobserve:
		if len(msg) < 5 {
			h.kill(p, ErrProtocol)
			return
		}
		id := binary.BigEndian.Uint32(msg[1:])
		switch MsgType(msg[0]) {
		case msgUnsubscribe:
			h.clientUnsubscribe(p, id)
		case msgObserve:
			h.clientObserve(p, id)
		default:
			h.mu.Lock()
			h.unobserveLocked(p, id)
			h.mu.Unlock()
		}
	case msgPubFrag:
		h.clientPubFrag(p, msg)
	case msgPing:
		p.send([]byte{byte(msgPong)})
	case msgPong:
	case msgDisconnect:
		h.kill(p, nil)
	default: // 0, 1, 3, 5, 7, 10, 16, 18, 20–255, a second Connect
		h.kill(p, ErrProtocol)
	}
}

// kill terminates p because of something it sent (or a client Disconnect,
// err nil). Nothing is sent to it.
func (h *Hub) kill(p *Peer, err error) { h.terminate(p, err) }

// handleConnect processes the first message after Init (§1.5, §1.6).
func (h *Hub) handleConnect(p *Peer, msg []byte) {
	if !p.state.CompareAndSwap(stAwaitConnect, stHandshake) {
		return // the read timeout won
	}
	h.mu.Lock()
	timer := p.timer
	p.timer = nil // a stopped timer still costs an idle peer its allocation
	h.mu.Unlock()
	timer.Stop()
	if len(msg) == 0 || MsgType(msg[0]) != msgConnect {
		h.refuse(p, ConnackBadVersion, "", ErrProtocol)
		return
	}
	pk, err := Decode(msg)
	if err != nil || len(pk.UID) < minUIDLen {
		h.refuse(p, ConnackBadVersion, "", ErrProtocol)
		return
	}
	p.uid = string(pk.UID)
	if len(pk.Text) > 0 {
		p.x().info = string(pk.Text)
	}
	p.maxSize = pk.MaxSize
	switch {
	case h.hooks.AuthenticateAsync != nil:
		resume := h.pause(p)
		h.hooks.AuthenticateAsync(p, bytes.Clone(pk.Credentials), func(code ConnackCode, reason string) {
			resume(func() { h.finishConnect(p, code, reason) })
		})
	case h.hooks.Authenticate != nil:
		code, reason := h.hooks.Authenticate(p, pk.Credentials)
		h.finishConnect(p, code, reason)
	default:
		h.finishConnect(p, ConnackAccepted, "")
	}
}

// finishConnect applies the authentication outcome. Loop goroutine.
func (h *Hub) finishConnect(p *Peer, code ConnackCode, reason string) {
	if p.state.Load() != stHandshake {
		return
	}
	if code != ConnackAccepted {
		h.refuse(p, code, reason, ErrRefused)
		return
	}
	h.admit(p)
}

// refuse sends Connack(code, 0, reason) and closes p.
func (h *Hub) refuse(p *Peer, code ConnackCode, reason string, err error) {
	p.send(AppendConnack(nil, code, 0, reason))
	h.terminate(p, err)
}

// admit registers an authenticated peer: same-UID takeover keeps the old
// ETID (the old peer gets Disconnect "reconnect" and full cleanup), then
// Connack, then the tables, then OnConnect (§1.6 step 5).
func (h *Hub) admit(p *Peer) {
	uid := p.uid
	var want uint32 // ETID inherited from a taken-over peer
	for {
		h.mu.Lock()
		if p.state.Load() != stHandshake {
			h.mu.Unlock()
			return // closed meanwhile
		}
		old := h.uids[uid]
		if old == nil {
			break
		}
		want = old.Etid()
		h.mu.Unlock()
		h.disconnect(old, "reconnect", ErrReconnect)
	}
	etid := want
	if etid != 0 {
		if h.idUsed(etid) {
			etid = 0
		}
	}
	if etid == 0 {
		etid = h.allocIDLocked()
	}
	p.etid.Store(etid)
	// The Connack is queued before the peer becomes reachable: nothing
	// routed to it can overtake it.
	p.send(AppendConnack(make([]byte, 0, 6), ConnackAccepted, etid, ""))
	p.state.Store(stConnected)
	delete(h.conns, p) // Hub.conns holds the peers in their handshake
	h.uids[uid] = p
	h.peerIDs.store(etid, p)
	h.mu.Unlock()
	if ka, ok := p.c.(keepAliver); ok {
		idle, intv := h.KeepAlive()
		_ = ka.SetKeepAlive(true, idle, intv) // best effort, as BAS
	}
	if h.hooks.OnConnect != nil {
		h.hooks.OnConnect(p)
	}
	p.ci.Store(nil)
}

// keepAliver is the optional TCP keepalive knob of a connection
// (*runtime.Conn has it).
type keepAliver interface {
	SetKeepAlive(on bool, idle, interval time.Duration) error
}

// closed is the transport's OnClose. Runs on p's event loop.
func (h *Hub) closed(p *Peer, err error) { h.terminate(p, err) }

// disconnect sends Disconnect with reason (none when reason is "") and
// terminates p with err. err is recorded before anything is sent, so a close
// caused by the peer's reaction cannot report a mere I/O error instead.
func (h *Hub) disconnect(p *Peer, reason string, err error) {
	p.x().why.CompareAndSwap(nil, &err)
	if reason != "" {
		p.send(AppendDisconnect(nil, reason))
	}
	h.terminate(p, err)
}

// terminate removes p from every table exactly once (§1.6 step 7): UID and
// ETID entries, every subscription (Change to those topics' observers),
// Change(etid, 0) to its ETID observers, its own observer registrations; then
// OnClose (connected peers only) and closing the connection. Any goroutine:
// the peer's own loop, another peer's loop (takeover, slow consumer) or a
// Shutdown caller.
func (h *Hub) terminate(p *Peer, err error) {
	if p.server {
		return
	}
	m := p.more.Load()
	if m != nil {
		if why := m.why.Load(); why != nil {
			err = *why
		}
	}
	var later []func()
	h.mu.Lock()
	prev := p.state.Swap(stClosed)
	if prev == stClosed {
		h.mu.Unlock()
		return
	}
	delete(h.conns, p)
	connected := prev == stConnected
	if connected {
		etid := p.Etid()
		if h.uids[p.uid] == p {
			delete(h.uids, p.uid)
		}
		if h.peerIDs.load(etid) == p {
			h.peerIDs.delete(etid)
		}
		for _, t := range p.topics {
			h.removeSubLocked(t, p, &later)
		}
		if m != nil {
			h.notifyLocked(m.obs, etid, 0, &later)
			for o := range m.obs {
				delete(o.more.Load().observing, etid) // an observer has its peerMore
				if o.server {
					delete(h.srvObs, etid)
				}
			}
			m.obs = nil
			for id := range m.observing {
				h.unobserveLocked(p, id)
			}
		}
	}
	timer := p.timer
	h.mu.Unlock()
	if timer != nil {
		timer.Stop()
	}
	for _, f := range later {
		f()
	}
	if connected && h.hooks.OnClose != nil {
		h.hooks.OnClose(p, err)
	}
	code, reason := closeCode(err)
	_ = p.c.Close(code, reason)
}

// closeCode picks the WebSocket close code for a termination reason (raw
// connections ignore it).
func closeCode(err error) (uint16, string) {
	switch {
	case err == nil, errors.Is(err, ErrReconnect):
		return 1000, ""
	case errors.Is(err, ErrShutdown):
		return 1001, "shutdown"
	case errors.Is(err, ErrSlowConsumer):
		return 1008, "slow consumer"
	case errors.Is(err, ErrCorruptFrame):
		return 1008, "corrupt frame"
	case errors.Is(err, ErrRefused), errors.Is(err, ErrConnectTmo):
		return 1008, "refused"
	case errors.Is(err, ErrProtocol), errors.Is(err, ErrFragment):
		return 1002, "protocol error"
	}
	return 1000, ""
}

// clientPublish handles a Publish from p (§1.8).
func (h *Hub) clientPublish(p *Peer, msg []byte) {
	if len(msg) < publishHeaderLen {
		h.kill(p, ErrProtocol)
		return
	}
	tid := binary.BigEndian.Uint32(msg[1:])
	ptid := binary.BigEndian.Uint32(msg[5:])
	if ptid != p.Etid() {
		h.disconnect(p, "corrupt frame", ErrCorruptFrame)
		return
	}
	if h.hooks.OnPublish == nil && h.hooks.OnPublishAsync == nil && h.hooks.OnDrop == nil {
		h.route(msg, tid, p.c.CallbackBatch())
		return
	}
	m := Message{Data: msg[publishHeaderLen:], Tid: tid, Ptid: ptid, Subtid: binary.BigEndian.Uint32(msg[9:])}
	switch {
	case h.hooks.OnPublishAsync != nil:
		own := bytes.Clone(msg) // msg is only valid during OnMessage
		m.Data = own[publishHeaderLen:]
		resume := h.pause(p)
		h.hooks.OnPublishAsync(p, m, func(ok bool) {
			resume(func() {
				if ok && p.state.Load() == stConnected {
					h.finishPublish(p, own, m, nil) // on p's loop, outside a callback
				}
			})
		})
	case h.hooks.OnPublish != nil && !h.hooks.OnPublish(p, m):
	default:
		h.finishPublish(p, msg, m, p.c.CallbackBatch())
	}
}

func (h *Hub) finishPublish(p *Peer, msg []byte, m Message, b *runtime.Batch) {
	if h.route(msg, m.Tid, b) == 0 && h.hooks.OnDrop != nil {
		h.hooks.OnDrop(p, m)
	}
}

// clientPubFrag assembles PubFrag fragments (§1.5): tid 0 = intermediate;
// the first non-zero tid ends the message, whose header it supplies.
func (h *Hub) clientPubFrag(p *Peer, msg []byte) {
	if !p.raw {
		h.kill(p, ErrFragment)
		return
	}
	if len(msg) < publishHeaderLen {
		h.kill(p, ErrProtocol)
		return
	}
	m := p.x()
	if m.frag == nil {
		m.frag = make([]byte, publishHeaderLen, 1024)
	}
	m.frag = append(m.frag, msg[publishHeaderLen:]...)
	if len(m.frag)-publishHeaderLen > MaxPayload {
		m.frag = nil
		h.kill(p, ErrFragment)
		return
	}
	if binary.BigEndian.Uint32(msg[1:]) == 0 {
		return // intermediate fragment
	}
	whole := m.frag
	m.frag = m.frag[:publishHeaderLen]
	if len(whole) > MaxPayload { // BAS counts the 13 header bytes too
		h.drops.Add(1)
		h.log.Warn("smq: assembled PubFrag message too large; dropped", "etid", p.Etid(), "bytes", len(whole))
		return
	}
	copy(whole, msg[:publishHeaderLen])
	whole[0] = byte(msgPublish)
	h.clientPublish(p, whole)
}

// clientSubscribe handles Subscribe (§1.7): duplicate → ok without hook or
// Change; else PermitTopic, limits (MaxSubscriptionsPerPeer, and for a new
// name MaxTopicsPerPeer then MaxTopics), ack (before the peer is added, so
// the ack precedes any message on the topic), then Change to the observers.
// Every refusal is a denied ack (status 1, TID 0); the peer stays connected.
func (h *Hub) clientSubscribe(p *Peer, name string) {
	h.mu.Lock()
	if t := h.names[name]; t != nil && p.topics[t.tid] != nil {
		h.mu.Unlock()
		p.send(AppendAck(nil, msgSuback, 0, t.tid, name))
		return
	}
	h.mu.Unlock()
	h.decide(p, func() bool {
		return h.hooks.PermitTopic == nil || h.hooks.PermitTopic(p, name, true)
	}, h.hooks.PermitTopicAsync != nil, func(done func(bool)) {
		h.hooks.PermitTopicAsync(p, name, true, done)
	}, func(ok bool) { h.finishSubscribe(p, name, ok) })
}

// finishSubscribe completes a Subscribe once authorised (or denied).
func (h *Hub) finishSubscribe(p *Peer, name string, ok bool) {
	if !ok {
		p.send(AppendAck(nil, msgSuback, 1, 0, name))
		return
	}
	var later []func()
	full := false
	h.mu.Lock()
	t := h.names[name]
	switch {
	case p.state.Load() != stConnected:
	case t != nil && p.topics[t.tid] != nil:
		p.send(AppendAck(nil, msgSuback, 0, t.tid, name))
	case h.opts.MaxSubscriptionsPerPeer > 0 && len(p.topics) >= h.opts.MaxSubscriptionsPerPeer,
		t == nil && !h.mayCreateLocked(p):
		p.send(AppendAck(nil, msgSuback, 1, 0, name))
	case t == nil && !h.roomLocked(): // hub-wide MaxTopics
		full = true
		p.send(AppendAck(nil, msgSuback, 1, 0, name))
	default:
		if t == nil {
			t = h.newTopicLocked(name, 0) // non-nil: roomLocked held under the same lock
			p.created++
		}
		p.send(AppendAck(nil, msgSuback, 0, t.tid, name))
		h.addSubLocked(t, p, &later)
	}
	h.mu.Unlock()
	if full {
		h.topicRefused(p, "topic", name)
	}
	for _, f := range later {
		f()
	}
}

func (h *Hub) mayCreateLocked(p *Peer) bool {
	return h.opts.MaxTopicsPerPeer <= 0 || int(p.created) < h.opts.MaxTopicsPerPeer
}

// clientCreate handles Create: PermitTopic(name, false) every time (§1.7),
// then for a new name MaxTopicsPerPeer and MaxTopics (denied ack past them).
func (h *Hub) clientCreate(p *Peer, name string) {
	h.decide(p, func() bool {
		return h.hooks.PermitTopic == nil || h.hooks.PermitTopic(p, name, false)
	}, h.hooks.PermitTopicAsync != nil, func(done func(bool)) {
		h.hooks.PermitTopicAsync(p, name, false, done)
	}, func(ok bool) { h.finishCreate(p, name, ok) })
}

func (h *Hub) finishCreate(p *Peer, name string, ok bool) {
	if !ok {
		p.send(AppendAck(nil, msgCreateAck, 1, 0, name))
		return
	}
	full := false
	h.mu.Lock()
	t := h.names[name]
	if t == nil && h.mayCreateLocked(p) {
		if t = h.newTopicLocked(name, 0); t != nil {
			p.created++
		} else {
			full = true
		}
	}
	h.mu.Unlock()
	if t == nil {
		p.send(AppendAck(nil, msgCreateAck, 1, 0, name))
		if full {
			h.topicRefused(p, "topic", name)
		}
		return
	}
	p.send(AppendAck(nil, msgCreateAck, 0, t.tid, name))
}

// clientCreateSub handles CreateSub: PermitSubtopic only for a new name,
// then MaxTopicsPerPeer and MaxTopics (denied ack past them).
func (h *Hub) clientCreateSub(p *Peer, name string) {
	h.mu.Lock()
	id, known := h.subNames[name]
	h.mu.Unlock()
	if known {
		p.send(AppendAck(nil, msgCreateSubAck, 0, id, name))
		return
	}
	h.decide(p, func() bool {
		return h.hooks.PermitSubtopic == nil || h.hooks.PermitSubtopic(p, name)
	}, h.hooks.PermitSubtopicAsync != nil, func(done func(bool)) {
		h.hooks.PermitSubtopicAsync(p, name, done)
	}, func(ok bool) { h.finishCreateSub(p, name, ok) })
}

func (h *Hub) finishCreateSub(p *Peer, name string, ok bool) {
	var id uint32
	full := false
	if ok {
		h.mu.Lock()
		var known bool
		if id, known = h.subNames[name]; !known && h.mayCreateLocked(p) {
			if id = h.subtopicLocked(name, 0); id != 0 {
				p.created++
			} else {
				full = true
			}
		}
		h.mu.Unlock()
	}
	if id == 0 {
		p.send(AppendAck(nil, msgCreateSubAck, 1, 0, name))
		if full {
			h.topicRefused(p, "subtopic", name)
		}
		return
	}
	p.send(AppendAck(nil, msgCreateSubAck, 0, id, name))
}

// clientUnsubscribe handles Unsubscribe (no ack).
func (h *Hub) clientUnsubscribe(p *Peer, tid uint32) {
	var later []func()
	h.mu.Lock()
	if t := p.topics[tid]; t != nil {
		h.removeSubLocked(t, p, &later)
	}
	h.mu.Unlock()
	for _, f := range later {
		f()
	}
}

// clientObserve handles Observe (§1.9): own ETID ignored; topic → register
// and Change(tid, count) now; live ETID → register silently; unknown →
// Change(id, 0), nothing registered.
func (h *Hub) clientObserve(p *Peer, id uint32) {
	if id == p.Etid() {
		return
	}
	h.mu.Lock()
	n := h.observeLocked(p, id)
	if n >= 0 {
		p.send(AppendChange(nil, id, uint32(n)))
	}
	h.mu.Unlock()
}

// Limits on input buffered while an async hook is pending. Past them the
// peer is closed (ErrBacklog): a client may pipeline, but not unboundedly.
const (
	maxBacklog      = 1024
	maxBacklogBytes = 1 << 20
)

// buffer keeps a copy of msg while p is paused. Loop goroutine.
func (h *Hub) buffer(p *Peer, msg []byte) {
	if p.state.Load() == stClosed {
		return
	}
	m := p.x()
	if len(m.backlog) >= maxBacklog || m.backlogBytes+len(msg) > maxBacklogBytes {
		h.kill(p, ErrBacklog)
		return
	}
	m.backlog = append(m.backlog, bytes.Clone(msg))
	m.backlogBytes += len(msg)
}

// decide runs an authorisation hook: the async form pauses p until its done
// is called, the sync form (or none: allow) answers at once; then cont runs
// on p's loop with the answer.
func (h *Hub) decide(p *Peer, sync func() bool, async bool, start func(done func(bool)), cont func(bool)) {
	if !async {
		cont(sync())
		return
	}
	resume := h.pause(p)
	start(func(ok bool) { resume(func() { cont(ok) }) })
}

// pause stops p's input processing until the returned resume is called
// (once, from any goroutine). resume runs cont on p's loop, then replays the
// messages that arrived meanwhile, in order. Loop goroutine.
func (h *Hub) pause(p *Peer) (resume func(cont func())) {
	p.x().paused = true
	var once atomic.Bool
	return func(cont func()) {
		if !once.CompareAndSwap(false, true) {
			return
		}
		_ = p.c.Execute(func() { // ErrClosed: the peer is gone, nothing to resume
			cont()
			h.unpause(p)
		})
	}
}

// unpause replays the backlog until it is empty or a message pauses p
// again. Loop goroutine.
func (h *Hub) unpause(p *Peer) {
	m := p.x()
	m.paused = false
	for !m.paused && len(m.backlog) > 0 {
		msg := m.backlog[0]
		m.backlog[0] = nil
		m.backlog = m.backlog[1:]
		m.backlogBytes -= len(msg)
		if p.state.Load() == stClosed {
			continue
		}
		h.handle(p, msg)
	}
	if len(m.backlog) == 0 {
		m.backlog = nil
	}
}
