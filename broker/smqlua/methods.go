package smqlua

import (
	"slices"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/tarponrt/tarpon/scheduler"

	"github.com/tarponrt/tarpon/broker"
)

// brokerMethods are the broker object's methods (SMQ spec §2.4), all
// called as broker:method(...) on the VM goroutine. None of them parks.
var brokerMethods = map[string]lua.LGFunction{
	"connect":      func(L *lua.LState) int { return checkBroker(L).connect(L) },
	"create":       bCreate,
	"createsub":    bCreateSub,
	"publish":      bPublish,
	"subscribe":    bSubscribe,
	"unsubscribe":  bUnsubscribe,
	"observe":      bObserve,
	"unobserve":    bUnobserve,
	"onmsg":        bOnMsg,
	"gettid":       func(L *lua.LState) int { L.Push(lua.LNumber(checkBroker(L).hub.ServerEtid())); return 1 },
	"etid2peer":    bEtid2Peer,
	"sock2peer":    bSock2Peer,
	"peers":        bPeers,
	"topics":       func(L *lua.LState) int { return pushIter(L, checkBroker(L).hub.Topics()) },
	"subtopics":    func(L *lua.LState) int { return pushIter(L, checkBroker(L).hub.Subtopics()) },
	"topic2tid":    bTopic2Tid,
	"tid2topic":    bTid2Topic,
	"subtopic2tid": bSubtopic2Tid,
	"tid2subtopic": bTid2Subtopic,
	"queuesize":    bQueueSize,
	"setkeepalive": bSetKeepAlive,
	"pubon":        bPubOn,
	"shutdown":     bShutdown,
}

// checkID reads argument n as a 32-bit ID.
func checkID(L *lua.LState, n int) uint32 {
	v := L.CheckNumber(n)
	if v < 0 || v > 0xFFFFFFFF || v != lua.LNumber(uint32(v)) {
		L.ArgError(n, "32-bit unsigned id expected")
	}
	return uint32(v)
}

// optID reads an optional ID argument (nil → 0).
func optID(L *lua.LState, n int) uint32 {
	if L.Get(n) == lua.LNil {
		return 0
	}
	return checkID(L, n)
}

// pushErr returns nil, err's text to Lua (the BAS convention for a
// runtime failure such as broker.ErrTopicLimit).
func pushErr(L *lua.LState, err error) int {
	L.Push(lua.LNil)
	L.Push(lua.LString(err.Error()))
	return 2
}

// bCreate: broker:create(topic [, tid]) → tid (no authorisation, §1.7),
// or nil, err when the hub holds its maximum of names (maxhubtopics).
func bCreate(L *lua.LState) int {
	b := checkBroker(L)
	tid, err := b.hub.CreateTopic(L.CheckString(2), optID(L, 3))
	if err != nil {
		return pushErr(L, err)
	}
	L.Push(lua.LNumber(tid))
	return 1
}

// bCreateSub: broker:createsub(subtopic [, id]) → subtid; nil name → 0;
// nil, err when the hub holds its maximum of names (maxhubtopics).
func bCreateSub(L *lua.LState) int {
	b := checkBroker(L)
	if L.Get(2) == lua.LNil {
		L.Push(lua.LNumber(0))
		return 1
	}
	id, err := b.hub.CreateSubtopic(L.CheckString(2), optID(L, 3))
	if err != nil {
		return pushErr(L, err)
	}
	L.Push(lua.LNumber(id))
	return 1
}

// topicArg resolves a topic argument: "self" → the server ETID, a name →
// its TID (created when create is set, else 0 if unknown), a number → as
// is. A name that cannot be created gives broker.ErrTopicLimit.
func (b *lbroker) topicArg(L *lua.LState, n int, create bool) (uint32, error) {
	switch v := L.Get(n).(type) {
	case lua.LString:
		if v == "self" {
			return b.hub.ServerEtid(), nil
		}
		if create {
			return b.hub.CreateTopic(string(v), 0)
		}
		tid, _ := b.hub.Topic2Tid(string(v))
		return tid, nil
	case lua.LNumber:
		return checkID(L, n), nil
	}
	L.ArgError(n, "topic name or number expected")
	return 0, nil
}

// subtopicArg resolves an optional sub-topic: a name (created on demand;
// broker.ErrTopicLimit if it cannot be), a number, or nil (0).
func (b *lbroker) subtopicArg(L *lua.LState, v lua.LValue, n int) (uint32, error) {
	switch v := v.(type) {
	case *lua.LNilType:
		return 0, nil
	case lua.LString:
		return b.hub.CreateSubtopic(string(v), 0)
	case lua.LNumber:
		if v < 0 || v > 0xFFFFFFFF || v != lua.LNumber(uint32(v)) {
			L.ArgError(n, "32-bit unsigned sub-topic id expected")
		}
		return uint32(v), nil
	}
	L.ArgError(n, "sub-topic name or number expected")
	return 0, nil
}

// payload reads a publish payload: a string, or a table encoded as JSON.
func payload(L *lua.LState, n int) []byte {
	switch v := L.Get(n).(type) {
	case lua.LString:
		return []byte(v)
	case lua.LNumber:
		return []byte(v.String())
	case *lua.LTable:
		b, err := scheduler.EncodeJSON(v)
		if err != nil {
			L.ArgError(n, err.Error())
		}
		return b
	}
	L.ArgError(n, "string or table expected")
	return nil
}

// bPublish: broker:publish(data, topic [, subtopic]) → recipients. The
// message is routed at once (ptid = the server ETID); more than 0xFFF0
// bytes raises an error. A topic or sub-topic name that cannot be created
// (maxhubtopics) returns nil, err and sends nothing.
func bPublish(L *lua.LState) int {
	b := checkBroker(L)
	data := payload(L, 2)
	tid, err := b.topicArg(L, 3, true)
	if err != nil {
		return pushErr(L, err)
	}
	subtid, err := b.subtopicArg(L, L.Get(4), 4)
	if err != nil {
		return pushErr(L, err)
	}
	n, err := b.hub.Publish(data, tid, subtid)
	if err != nil {
		L.RaiseError("publish: %v", err)
	}
	L.Push(lua.LNumber(n))
	return 1
}

// bSubscribe: broker:subscribe(topic [, op]) → tid, or nil, err (an
// unknown TID; a new name past maxhubtopics). op.onmsg(data, ptid, tid,
// subtid) runs as a task per message; op.subtopic narrows it to one
// sub-topic; op.json decodes the payload (failures go to the default
// onmsg).
func bSubscribe(L *lua.LState) int {
	b := checkBroker(L)
	op := L.OptTable(3, nil)
	so := &broker.SubscribeOptions{}
	if op != nil {
		so.JSON = lua.LVAsBool(op.RawGetString("json"))
		switch st := op.RawGetString("subtopic").(type) {
		case lua.LString:
			so.Subtopic = string(st)
		case lua.LNumber:
			so.SubtopicID, _ = b.subtopicArg(L, st, 3) // a number creates nothing
		}
		if fn := optFunc(L, op, "onmsg"); fn != nil {
			so.OnMsg = b.msgCallback(fn)
		}
	}
	switch v := L.Get(2).(type) {
	case lua.LString:
		tid, err := b.hub.SubscribeTopic(string(v), so)
		if err != nil {
			return pushErr(L, err)
		}
		L.Push(lua.LNumber(tid))
		return 1
	case lua.LNumber:
		tid := checkID(L, 2)
		if err := b.hub.SubscribeTid(tid, so); err != nil {
			return pushErr(L, err)
		}
		L.Push(lua.LNumber(tid))
		return 1
	}
	L.ArgError(2, "topic name or number expected")
	return 0
}

// msgCallback adapts a Lua onmsg to the hub's callback: the hub calls it on
// the routing goroutine; it copies the message and posts a task.
func (b *lbroker) msgCallback(fn *lua.LFunction) func(broker.Message) {
	return func(m broker.Message) {
		data := string(m.Data)
		js := m.JSON // decoded for this delivery only; not shared
		b.post(func(L *lua.LState) {
			var v lua.LValue = lua.LString(data)
			if js != nil {
				v = goToLua(L, js)
			}
			b.spawn("onmsg", fn, v, lua.LNumber(m.Ptid), lua.LNumber(m.Tid), lua.LNumber(m.Subtid))
		})
	}
}

// bUnsubscribe: broker:unsubscribe(topic).
func bUnsubscribe(L *lua.LState) int {
	b := checkBroker(L)
	switch v := L.Get(2).(type) {
	case lua.LString:
		b.hub.Unsubscribe(string(v))
	default:
		b.hub.UnsubscribeTid(checkID(L, 2))
	}
	return 0
}

// bObserve: broker:observe(topic, func) → true. func(subscribers, topic)
// runs as a task: now (for a topic), on every change, and with 0 when an
// observed client leaves. topic is passed back as given (name or number).
// A topic name that cannot be created (maxhubtopics) returns nil, err.
func bObserve(L *lua.LState) int {
	b := checkBroker(L)
	key := L.Get(2)
	fn := L.CheckFunction(3)
	tid, err := b.topicArg(L, 2, true)
	if err != nil {
		return pushErr(L, err)
	}
	ok := b.hub.Observe(tid, func(count int, _ uint32) {
		b.post(func(L *lua.LState) {
			b.spawn("observe", fn, lua.LNumber(count), key)
		})
	})
	L.Push(lua.LBool(ok))
	return 1
}

// bUnobserve: broker:unobserve(topic).
func bUnobserve(L *lua.LState) int {
	b := checkBroker(L)
	if tid, _ := b.topicArg(L, 2, false); tid != 0 { // never creates
		b.hub.Unobserve(tid)
	}
	return 0
}

// bOnMsg: broker:onmsg(func) replaces the default server callback.
func bOnMsg(L *lua.LState) int {
	b := checkBroker(L)
	if L.Get(2) == lua.LNil {
		b.onmsg = nil
		return 0
	}
	b.onmsg = L.CheckFunction(2)
	return 0
}

// bEtid2Peer: broker:etid2peer(etid) → peer table or nil.
func bEtid2Peer(L *lua.LState) int {
	b := checkBroker(L)
	p := b.hub.Etid2Peer(checkID(L, 2))
	if p == nil {
		L.Push(lua.LNil)
		return 1
	}
	L.Push(b.peerTable(L, p))
	return 1
}

// bSock2Peer: peers have no Lua socket object here (the hub owns the
// connection in the reactor), so no socket maps to a peer: always nil.
func bSock2Peer(L *lua.LState) int {
	checkBroker(L)
	L.Push(lua.LNil)
	return 1
}

// bPeers: broker:peers() → iterator of etid, peer (BAS yields sock, peer;
// there is no socket object here). The server pseudo peer comes first.
func bPeers(L *lua.LState) int {
	b := checkBroker(L)
	ps := slices.Collect(b.hub.Peers())
	i := 0
	L.Push(L.NewFunction(func(L *lua.LState) int {
		for i < len(ps) {
			p := ps[i]
			i++
			if p.Etid() == 0 && !p.IsServer() {
				continue
			}
			L.Push(lua.LNumber(p.Etid()))
			L.Push(b.peerTable(L, p))
			return 2
		}
		L.Push(lua.LNil)
		return 1
	}))
	return 1
}

// pushIter pushes an iterator over a snapshot of id → name.
func pushIter(L *lua.LState, seq func(func(uint32, string) bool)) int {
	type kv struct {
		id   uint32
		name string
	}
	var all []kv
	seq(func(id uint32, name string) bool { all = append(all, kv{id, name}); return true })
	i := 0
	L.Push(L.NewFunction(func(L *lua.LState) int {
		if i >= len(all) {
			L.Push(lua.LNil)
			return 1
		}
		e := all[i]
		i++
		L.Push(lua.LNumber(e.id))
		L.Push(lua.LString(e.name))
		return 2
	}))
	return 1
}

func pushID(L *lua.LState, id uint32, ok bool) int {
	if !ok {
		L.Push(lua.LNil)
		return 1
	}
	L.Push(lua.LNumber(id))
	return 1
}

func pushName(L *lua.LState, name string, ok bool) int {
	if !ok {
		L.Push(lua.LNil)
		return 1
	}
	L.Push(lua.LString(name))
	return 1
}

func bTopic2Tid(L *lua.LState) int {
	b := checkBroker(L)
	id, ok := b.hub.Topic2Tid(L.CheckString(2))
	return pushID(L, id, ok)
}

func bTid2Topic(L *lua.LState) int {
	b := checkBroker(L)
	name, ok := b.hub.Tid2Topic(checkID(L, 2))
	return pushName(L, name, ok)
}

func bSubtopic2Tid(L *lua.LState) int {
	b := checkBroker(L)
	id, ok := b.hub.Subtopic2Tid(L.CheckString(2))
	return pushID(L, id, ok)
}

func bTid2Subtopic(L *lua.LState) int {
	b := checkBroker(L)
	name, ok := b.hub.Tid2Subtopic(checkID(L, 2))
	return pushName(L, name, ok)
}

// bQueueSize: broker:queuesize() → free, used.
func bQueueSize(L *lua.LState) int {
	b := checkBroker(L)
	free, used := b.hub.QueueSize()
	L.Push(lua.LNumber(free))
	L.Push(lua.LNumber(used))
	return 2
}

// bSetKeepAlive: broker:setkeepalive(idle [, intv]), in seconds.
func bSetKeepAlive(L *lua.LState) int {
	b := checkBroker(L)
	idle := float64(L.CheckNumber(2))
	intv := float64(L.OptNumber(3, 0))
	if idle <= 0 || intv < 0 {
		L.ArgError(2, "positive seconds expected")
	}
	b.hub.SetKeepAlive(time.Duration(idle*float64(time.Second)), time.Duration(intv*float64(time.Second)))
	return 0
}

// bPubOn: broker:pubon(data, totid, fromtid, subtid) → bool.
func bPubOn(L *lua.LState) int {
	b := checkBroker(L)
	data := payload(L, 2)
	L.Push(lua.LBool(b.hub.PubOn(data, checkID(L, 3), checkID(L, 4), optID(L, 5))))
	return 1
}

// bShutdown: broker:shutdown([msg [, etid]]).
func bShutdown(L *lua.LState) int {
	b := checkBroker(L)
	b.hub.Shutdown(L.OptString(2, ""), optID(L, 3))
	return 0
}
