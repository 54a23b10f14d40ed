package broker

import (
	"slices"
	"sync/atomic"
	"time"
)

// topic is one named topic (SMQ spec §1.7). Its name↔TID mapping lives for
// the hub's lifetime.
type topic struct {
	tid  uint32
	name string
	// subs is the subscriber set: replaced (never mutated) under h.mu, read
	// lock-free by the publish path. It contains h.server when the
	// server-side client subscribed.
	subs atomic.Pointer[[]*Peer]
	// obs are the peers observing this topic (h.server for a server-side
	// observer). Guarded by h.mu.
	obs map[*Peer]struct{}
}

// roomLocked reports whether the hub may take one more topic or sub-topic
// name (Options.MaxTopics). Caller holds h.mu.
func (h *Hub) roomLocked() bool {
	return len(h.names)+len(h.subNames) < h.opts.MaxTopics
}

// newTopicLocked adds topic name with tid (0: a random free one). It
// returns nil, creating nothing, when the hub is full (roomLocked); the
// caller reports that with topicRefused once it released h.mu. Every new
// topic name goes through here. Caller holds h.mu.
func (h *Hub) newTopicLocked(name string, tid uint32) *topic {
	if !h.roomLocked() {
		return nil
	}
	if tid == 0 {
		tid = h.allocIDLocked()
	}
	t := &topic{tid: tid, name: name}
	t.subs.Store(&[]*Peer{})
	h.names[name] = t
	h.topicIDs.store(tid, t)
	return t
}

// topicLocked resolves name, creating it with preassigned tid if it is
// non-zero and free (SMQ spec §1.7). nil: unknown and the hub is full.
// Caller holds h.mu.
func (h *Hub) topicLocked(name string, tid uint32) *topic {
	if t := h.names[name]; t != nil {
		return t
	}
	if tid != 0 {
		if h.idUsed(tid) {
			tid = 0
		}
	}
	return h.newTopicLocked(name, tid)
}

// subtopicLocked resolves a sub-topic name, creating it (preassigned id if
// non-zero and free). 0: unknown and the hub is full (see newTopicLocked).
// Every new sub-topic name goes through here. Caller holds h.mu.
func (h *Hub) subtopicLocked(name string, id uint32) uint32 {
	if v, ok := h.subNames[name]; ok {
		return v
	}
	if !h.roomLocked() {
		return 0
	}
	if id != 0 {
		if _, used := h.subIDs[id]; used {
			id = 0
		}
	}
	for id == 0 {
		c := randomID()
		if _, used := h.subIDs[c]; !used {
			id = c
		}
	}
	h.subNames[name] = id
	h.subIDs[id] = name
	return id
}

// addSubLocked adds p to t's subscribers and tells t's observers. Caller
// holds h.mu; p is not subscribed yet.
func (h *Hub) addSubLocked(t *topic, p *Peer, later *[]func()) {
	old := *t.subs.Load()
	next := make([]*Peer, len(old), len(old)+1)
	copy(next, old)
	next = append(next, p)
	t.subs.Store(&next)
	if p.topics == nil {
		p.topics = map[uint32]*topic{}
	}
	p.topics[t.tid] = t
	h.notifyTopicLocked(t, later)
}

// removeSubLocked removes p from t's subscribers and tells t's observers.
// Caller holds h.mu.
func (h *Hub) removeSubLocked(t *topic, p *Peer, later *[]func()) {
	old := *t.subs.Load()
	i := slices.Index(old, p)
	if i < 0 {
		return
	}
	next := make([]*Peer, 0, len(old)-1)
	next = append(next, old[:i]...)
	next = append(next, old[i+1:]...)
	t.subs.Store(&next)
	delete(p.topics, t.tid)
	h.notifyTopicLocked(t, later)
}

// notifyTopicLocked sends Change(tid, count) to t's observers (§1.9).
// Server-side observer callbacks are appended to later: the caller runs them
// after releasing h.mu.
func (h *Hub) notifyTopicLocked(t *topic, later *[]func()) {
	if len(t.obs) == 0 {
		return
	}
	n := len(*t.subs.Load())
	h.notifyLocked(t.obs, t.tid, n, later)
}

func (h *Hub) notifyLocked(obs map[*Peer]struct{}, id uint32, n int, later *[]func()) {
	var change []byte
	for o := range obs {
		if o.server {
			if fn := h.srvObs[id]; fn != nil {
				*later = append(*later, func() { fn(n, id) })
			}
			continue
		}
		if change == nil {
			change = AppendChange(make([]byte, 0, 9), id, uint32(n))
		}
		_ = o.c.Send(change)
	}
}

// observeLocked registers o as an observer of id (§1.9) and returns the
// initial count to report, or -1 for none (a live ETID). For an unknown id
// it registers nothing and returns 0. Caller holds h.mu.
func (h *Hub) observeLocked(o *Peer, id uint32) int {
	t, d := h.lookupID(id)
	switch {
	case t != nil:
		if t.obs == nil {
			t.obs = map[*Peer]struct{}{}
		}
		t.obs[o] = struct{}{}
		o.observe(id)
		return len(*t.subs.Load())
	case d != nil && d.state.Load() == stConnected:
		dm := d.x()
		if dm.obs == nil {
			dm.obs = map[*Peer]struct{}{}
		}
		dm.obs[o] = struct{}{}
		o.observe(id)
		return -1
	}
	return 0
}

// unobserveLocked removes o as an observer of id. Unlike BAS (§1.14) it
// touches only the observer registration. Caller holds h.mu.
func (h *Hub) unobserveLocked(o *Peer, id uint32) {
	t, d := h.lookupID(id)
	switch {
	case t != nil:
		delete(t.obs, o)
	case d != nil:
		if dm := d.more.Load(); dm != nil {
			delete(dm.obs, o)
		}
	}
	if om := o.more.Load(); om != nil {
		delete(om.observing, id)
	}
}

func (p *Peer) observe(id uint32) {
	m := p.x()
	if m.observing == nil {
		m.observing = map[uint32]struct{}{}
	}
	m.observing[id] = struct{}{}
}

// topicLimitLogEvery spaces the warnings about refused names: a flood of
// requests past Options.MaxTopics (from any number of peers) logs one line
// per interval, and the counter (Stats.TopicsRefused) has the total.
const topicLimitLogEvery = 10 * time.Second

// topicRefused counts a new name refused because the hub holds
// Options.MaxTopics names and logs it, rate-limited. p is the requesting
// peer (the server pseudo client for the server-side API); kind is "topic"
// or "subtopic". Any goroutine; the caller must not hold h.mu (the logger
// may do I/O).
func (h *Hub) topicRefused(p *Peer, kind, name string) {
	n := h.topicsRefused.Add(1)
	now := time.Now().UnixNano()
	last := h.limitLogAt.Load()
	if last != 0 && now-last < int64(topicLimitLogEvery) {
		return
	}
	if !h.limitLogAt.CompareAndSwap(last, now) {
		return // another goroutine logs this interval
	}
	const maxName = 64 // names can be 64 KiB; the log needs a hint only
	if len(name) > maxName {
		name = name[:maxName] + "…"
	}
	h.log.Warn("smq: hub topic limit reached; new names refused (logged once per interval)",
		"limit", h.opts.MaxTopics, "kind", kind, "name", name, "etid", p.Etid(),
		"server", p.server, "refused", n, "interval", topicLimitLogEvery)
}
