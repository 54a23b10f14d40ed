package smqlua

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/tarponrt/tarpon/broker"
	"github.com/tarponrt/tarpon/cosocket"
	"github.com/tarponrt/tarpon/runtime"
	"github.com/tarponrt/tarpon/scheduler"
)

const brokerType = "smq.hub.broker"

// Module is the smq.hub Lua module bound to one scheduler VM and reactor.
// Brokers created from Lua live in that reactor; their Lua callbacks run as
// tasks of that scheduler.
type Module struct {
	loop    *scheduler.Loop
	sockets *cosocket.Lib
	r       *runtime.Reactor
	log     *slog.Logger

	// VM goroutine only.
	wrapper *lua.LFunction // function(fn, done, ...) done(fn(...)) end

	mu   sync.Mutex
	hubs []*broker.Hub // every broker created from Lua, for WriteMetrics
}

// WriteMetrics writes the counters of every broker created through this
// module, summed, in Prometheus text format. Any goroutine.
func (m *Module) WriteMetrics(w io.Writer) {
	m.mu.Lock()
	hubs := slices.Clone(m.hubs)
	m.mu.Unlock()
	var t broker.Stats
	for _, h := range hubs {
		s := h.Stats()
		t.Peers += s.Peers
		t.Handshaking += s.Handshaking
		t.Topics += s.Topics
		t.Subtopics += s.Subtopics
		t.TopicsRefused += s.TopicsRefused
		t.Publishes += s.Publishes
		t.Deliveries += s.Deliveries
		t.Drops += s.Drops
		t.Undelivered += s.Undelivered
	}
	metric := func(name, typ, help string, v any) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n%s %v\n", name, help, name, typ, name, v)
	}
	metric("tarpon_smq_brokers", "gauge", "SMQ brokers created from Lua (smq.hub).", len(hubs))
	metric("tarpon_smq_peers", "gauge", "Connected SMQ clients.", t.Peers)
	metric("tarpon_smq_handshaking", "gauge", "SMQ connections between Init and Connack.", t.Handshaking)
	metric("tarpon_smq_topics", "gauge", "SMQ topic names.", t.Topics)
	metric("tarpon_smq_subtopics", "gauge", "SMQ sub-topic names.", t.Subtopics)
	metric("tarpon_smq_topics_refused_total", "counter", "New SMQ topic and sub-topic names refused by the broker-wide limit (maxhubtopics).", t.TopicsRefused)
	metric("tarpon_smq_publishes_total", "counter", "SMQ publishes routed.", t.Publishes)
	metric("tarpon_smq_deliveries_total", "counter", "SMQ messages handed to a recipient.", t.Deliveries)
	metric("tarpon_smq_drops_total", "counter", "SMQ messages dropped for a recipient.", t.Drops)
	metric("tarpon_smq_undelivered_total", "counter", "SMQ publishes that reached nobody.", t.Undelivered)
}

// Open creates the module. sockets supplies the HTTP exchange behind a Lua
// request object (cosocket.Lib.Requests) for broker:connect; it may be nil,
// in which case connect raises an error. logger nil means slog.Default().
// Any goroutine; it touches no Lua state. Register m.Loader as "smq.hub".
func Open(loop *scheduler.Loop, sockets *cosocket.Lib, r *runtime.Reactor, logger *slog.Logger) *Module {
	if logger == nil {
		logger = slog.Default()
	}
	return &Module{loop: loop, sockets: sockets, r: r, log: logger}
}

// Loader is a gopher-lua module loader returning the smq.hub table
// (create, isSMQ). Register it with L.PreloadModule("smq.hub", m.Loader) or
// lsp Server.Preload("smq.hub", m.Loader). It runs on the VM goroutine of
// the loop given to Open.
func (m *Module) Loader(L *lua.LState) int {
	if m.wrapper == nil {
		fn, err := m.loop.LoadString("return function(fn, done, ...) return done(fn(...)) end", "=smq.hub")
		if err != nil {
			L.RaiseError("smq.hub: %v", err)
			return 0
		}
		// The chunk returns the wrapper; run it once, unprotected.
		L.Push(fn)
		L.Call(0, 1)
		m.wrapper = L.Get(-1).(*lua.LFunction)
		L.Pop(1)
	}
	if _, ok := L.GetTypeMetatable(brokerType).(*lua.LTable); !ok {
		mt := L.NewTypeMetatable(brokerType)
		L.SetField(mt, "__index", L.SetFuncs(L.NewTable(), brokerMethods))
		L.SetField(mt, "__tostring", L.NewFunction(func(L *lua.LState) int {
			b := checkBroker(L)
			L.Push(lua.LString(fmt.Sprintf("smq.hub broker (server etid %d)", b.hub.ServerEtid())))
			return 1
		}))
	}
	mod := L.NewTable()
	L.SetField(mod, "create", L.NewFunction(m.create))
	L.SetField(mod, "isSMQ", L.NewFunction(m.isSMQ))
	L.Push(mod)
	return 1
}

// isSMQ implements hub.isSMQ(request).
func (m *Module) isSMQ(L *lua.LState) int {
	ex := m.exchange(L, 1)
	_, r := ex.HTTP()
	L.Push(lua.LBool(broker.IsSMQ(r)))
	return 1
}

func (m *Module) exchange(L *lua.LState, n int) cosocket.Exchange {
	if m.sockets == nil || m.sockets.Requests == nil {
		L.RaiseError("smq.hub: no HTTP request in this context")
		return nil
	}
	ex, ok := m.sockets.Requests(L, L.Get(n))
	if !ok {
		L.ArgError(n, "request expected")
		return nil
	}
	return ex
}

// lbroker is one broker created from Lua: a Hub plus its Lua hooks.
type lbroker struct {
	m   *Module
	hub *broker.Hub
	ud  *lua.LUserData

	// Hooks and callbacks; VM goroutine only (set in create, onmsg).
	authenticate, permittop, permitsubtop, onpublish *lua.LFunction
	ondrop, onconnect, onclose, onmsg, logfn         *lua.LFunction
}

// connArg is what connect passes to Hub.Connect as arg: the Lua values of
// the info table that only the Lua request can give. VM goroutine only.
type connArg struct {
	arg, uname, session lua.LValue
}

// peerData is the Lua side of a broker.Peer, kept in its user data: the
// peer table (§2.3) and the info table given to authenticate and onconnect.
// VM goroutine only.
type peerData struct {
	tbl, info *lua.LTable
}

func optFunc(L *lua.LState, op *lua.LTable, name string) *lua.LFunction {
	switch v := op.RawGetString(name).(type) {
	case *lua.LFunction:
		return v
	case *lua.LNilType:
		return nil
	default:
		L.RaiseError("smq.hub.create: option %s must be a function, got %s", name, v.Type())
		return nil
	}
}

func optNumber(op *lua.LTable, name string) (float64, bool) {
	if n, ok := op.RawGetString(name).(lua.LNumber); ok {
		return float64(n), true
	}
	return 0, false
}

// Defaults of the per-peer limits of brokers created from Lua (options
// maxtopics and maxsubscriptions; 0 there means unlimited). Topic names
// live for the broker's lifetime, so without a cap one client could grow
// the broker's memory with a flood of Create requests.
const (
	DefaultMaxTopicsPerPeer        = 1000
	DefaultMaxSubscriptionsPerPeer = 1000
)

// create implements hub.create([op]).
func (m *Module) create(L *lua.LState) int {
	op := L.OptTable(1, L.NewTable())
	b := &lbroker{m: m}
	b.authenticate = optFunc(L, op, "authenticate")
	b.permittop = optFunc(L, op, "permittop")
	b.permitsubtop = optFunc(L, op, "permitsubtop")
	b.onpublish = optFunc(L, op, "onpublish")
	b.ondrop = optFunc(L, op, "ondrop")
	b.onconnect = optFunc(L, op, "onconnect")
	b.onclose = optFunc(L, op, "onclose")
	b.onmsg = optFunc(L, op, "onmsg")
	b.logfn = optFunc(L, op, "log")

	opts := &broker.Options{Logger: m.log}
	if v, ok := optNumber(op, "readtmo"); ok && v > 0 {
		opts.ReadTimeout = time.Duration(v * float64(time.Millisecond))
	}
	if v, ok := optNumber(op, "keepidle"); ok && v > 0 {
		opts.KeepIdle = time.Duration(v * float64(time.Second))
	}
	if v, ok := optNumber(op, "keepintv"); ok && v > 0 {
		opts.KeepIntv = time.Duration(v * float64(time.Second))
	}
	if v, ok := optNumber(op, "queuesize"); ok && v > 0 {
		opts.QueueSize = int(v)
	}
	opts.RndTid = lua.LVAsBool(op.RawGetString("rndtid"))
	// Limits (Tarpon extensions): absent means the default, 0 unlimited.
	opts.MaxTopicsPerPeer, opts.MaxSubscriptionsPerPeer = DefaultMaxTopicsPerPeer, DefaultMaxSubscriptionsPerPeer
	if v, ok := optNumber(op, "maxtopics"); ok && v >= 0 {
		opts.MaxTopicsPerPeer = int(v)
	}
	if v, ok := optNumber(op, "maxsubscriptions"); ok && v >= 0 {
		opts.MaxSubscriptionsPerPeer = int(v)
	}
	// Broker-wide name limit: absent, 0 or negative means
	// broker.DefaultMaxTopics, math.huge means none.
	if v, ok := optNumber(op, "maxhubtopics"); ok && v > 0 {
		opts.MaxTopics = broker.NoTopicLimit
		if v < float64(broker.NoTopicLimit) {
			opts.MaxTopics = int(v)
		}
	}
	if v, ok := optNumber(op, "highwater"); ok && v > 0 {
		opts.HighWater = int(v)
	}
	if v, ok := optNumber(op, "maxmessage"); ok && v > 0 {
		opts.MaxMessage = int(v)
	}
	switch sc := op.RawGetString("slowconsumer"); sc {
	case lua.LNil, lua.LString("drop"):
	case lua.LString("disconnect"):
		opts.SlowConsumer = broker.SlowConsumerDisconnect
	default:
		L.ArgError(1, "slowconsumer must be \"drop\" or \"disconnect\"")
	}
	if b.logfn != nil {
		opts.Logger = slog.New(&luaLogHandler{b: b, level: slog.LevelDebug})
	}
	opts.OnMsg = b.defaultMsg
	h := &opts.Hooks
	if b.authenticate != nil {
		h.AuthenticateAsync = b.hookAuthenticate
	}
	if b.permittop != nil {
		h.PermitTopicAsync = b.hookPermitTopic
	}
	if b.permitsubtop != nil {
		h.PermitSubtopicAsync = b.hookPermitSubtopic
	}
	if b.onpublish != nil {
		h.OnPublishAsync = b.hookOnPublish
	}
	if b.ondrop != nil {
		h.OnDrop = b.hookOnDrop
	}
	if b.onconnect != nil {
		h.OnConnect = b.hookOnConnect
	}
	// OnClose is always set: it also forgets the peer's Lua tables.
	h.OnClose = b.hookOnClose
	b.hub = broker.New(m.r, opts)
	m.mu.Lock()
	m.hubs = append(m.hubs, b.hub)
	m.mu.Unlock()

	b.ud = L.NewUserData()
	b.ud.Value = b
	L.SetMetatable(b.ud, L.GetTypeMetatable(brokerType))
	L.Push(b.ud)
	return 1
}

// Hub returns the broker.Hub behind a broker object created by
// hub.create, so Go code can share it (publish, Connect from net/http).
// VM goroutine only.
func Hub(v lua.LValue) (*broker.Hub, bool) {
	if ud, ok := v.(*lua.LUserData); ok {
		if b, ok := ud.Value.(*lbroker); ok {
			return b.hub, true
		}
	}
	return nil, false
}

func checkBroker(L *lua.LState) *lbroker {
	if ud, ok := L.Get(1).(*lua.LUserData); ok {
		if b, ok := ud.Value.(*lbroker); ok {
			return b
		}
	}
	L.ArgError(1, "smq broker expected (use broker:method(...))")
	return nil
}

// ---- running Lua from broker goroutines ----

// post runs fn on the VM goroutine. Any goroutine; never blocks. It
// returns false when the loop is stopped (fn will not run).
func (b *lbroker) post(fn func(L *lua.LState)) bool { return b.m.loop.Post(fn) }

// spawn runs fn(args...) as a task whose errors the scheduler logs. VM
// goroutine only.
func (b *lbroker) spawn(what string, fn *lua.LFunction, args ...lua.LValue) {
	if _, err := b.m.loop.Spawn(fn, args...); err != nil {
		b.m.log.Error("smq.hub: cannot run callback", "callback", what, "err", err)
	}
}

// decide runs fn(args...) as a task and calls done once with its return
// values, or with err if it failed (error, killed, not startable). The Lua
// hook may park (ba.sleep, socket I/O): the broker holds the peer's input
// meanwhile. VM goroutine only.
func (b *lbroker) decide(what string, fn *lua.LFunction, args []lua.LValue, done func(rets []lua.LValue, err error)) {
	L := b.m.loop.L()
	called := false
	doneFn := L.NewFunction(func(L *lua.LState) int {
		if !called {
			called = true
			rets := make([]lua.LValue, L.GetTop())
			for i := range rets {
				rets[i] = L.Get(i + 1)
			}
			done(rets, nil)
		}
		return 0
	})
	all := append([]lua.LValue{fn, doneFn}, args...)
	_, err := b.m.loop.SpawnWith(func(t *scheduler.Task) {
		t.OnExit(func(err error) {
			if !called {
				called = true
				if err == nil {
					err = errors.New("hook ended without an answer")
				}
				b.m.log.Error("smq.hub: hook failed", "hook", what, "err", err)
				done(nil, err)
			}
		})
	}, b.m.wrapper, all...)
	if err != nil && !called {
		called = true
		b.m.log.Error("smq.hub: cannot run hook", "hook", what, "err", err)
		done(nil, err)
	}
}

// ---- hooks (called by the hub on event-loop goroutines) ----

func (b *lbroker) hookAuthenticate(p *broker.Peer, credentials []byte, done func(broker.ConnackCode, string)) {
	cred := string(credentials)
	ci := p.ConnectInfo() // the peer keeps it only through its handshake
	if !b.post(func(L *lua.LState) {
		args := []lua.LValue{lua.LString(cred), b.infoTable(L, p, ci)}
		if b.onconnect == nil {
			b.data(p).info = nil // no second hook will want it
		}
		b.decide("authenticate", b.authenticate, args, func(rets []lua.LValue, err error) {
			if err != nil {
				done(broker.ConnackUnavailable, "")
				return
			}
			done(authAnswer(rets))
		})
	}) {
		done(broker.ConnackUnavailable, "")
	}
}

// authAnswer maps authenticate's results to a Connack (§2.2): a number 0–6
// (0 accepts), an optional reason; nil (or anything else) is 6.
func authAnswer(rets []lua.LValue) (broker.ConnackCode, string) {
	code := broker.ConnackCode(6)
	if len(rets) > 0 {
		if n, ok := rets[0].(lua.LNumber); ok && n >= 0 && n <= 6 && n == lua.LNumber(int(n)) {
			code = broker.ConnackCode(int(n))
		}
	}
	reason := ""
	if len(rets) > 1 {
		if s, ok := rets[1].(lua.LString); ok {
			reason = string(s)
		}
	}
	return code, reason
}

func truthy(rets []lua.LValue, err error) bool {
	return err == nil && len(rets) > 0 && lua.LVAsBool(rets[0])
}

func (b *lbroker) hookPermitTopic(p *broker.Peer, topic string, subscribe bool, done func(bool)) {
	if !b.post(func(L *lua.LState) {
		args := []lua.LValue{lua.LString(topic), lua.LBool(subscribe), b.peerTable(L, p)}
		b.decide("permittop", b.permittop, args, func(rets []lua.LValue, err error) { done(truthy(rets, err)) })
	}) {
		done(false)
	}
}

func (b *lbroker) hookPermitSubtopic(p *broker.Peer, subtopic string, done func(bool)) {
	if !b.post(func(L *lua.LState) {
		args := []lua.LValue{lua.LString(subtopic), b.peerTable(L, p)}
		b.decide("permitsubtop", b.permitsubtop, args, func(rets []lua.LValue, err error) { done(truthy(rets, err)) })
	}) {
		done(false)
	}
}

// hookOnPublish gets its own copy of m.Data (broker.Hooks.OnPublishAsync).
func (b *lbroker) hookOnPublish(p *broker.Peer, msg broker.Message, done func(bool)) {
	if !b.post(func(L *lua.LState) {
		args := []lua.LValue{lua.LString(msg.Data), lua.LNumber(msg.Ptid), lua.LNumber(msg.Tid), lua.LNumber(msg.Subtid), b.peerTable(L, p)}
		b.decide("onpublish", b.onpublish, args, func(rets []lua.LValue, err error) { done(truthy(rets, err)) })
	}) {
		done(false)
	}
}

func (b *lbroker) hookOnDrop(p *broker.Peer, msg broker.Message) {
	data := string(msg.Data) // Data is only valid during this call
	b.post(func(L *lua.LState) {
		b.spawn("ondrop", b.ondrop, lua.LString(data), lua.LNumber(msg.Ptid), lua.LNumber(msg.Tid), lua.LNumber(msg.Subtid), b.peerTable(L, p))
	})
}

func (b *lbroker) hookOnConnect(p *broker.Peer) {
	ci := p.ConnectInfo() // the peer keeps it only through its handshake
	b.post(func(L *lua.LState) {
		b.spawn("onconnect", b.onconnect, lua.LNumber(p.Etid()), b.infoTable(L, p, ci), b.peerTable(L, p))
		b.data(p).info = nil // both hooks have it; an idle peer need not keep it
	})
}

func (b *lbroker) hookOnClose(p *broker.Peer, err error) {
	b.post(func(L *lua.LState) {
		if b.onclose != nil {
			b.spawn("onclose", b.onclose, lua.LNumber(p.Etid()), lua.LNil, b.peerTable(L, p), closeReason(err))
		}
		p.SetUserData(nil) // the Lua tables go with the peer
	})
}

// closeReason is onclose's err argument: 0 for a normal close (client
// Disconnect, EOF), else a short BAS-like string.
func closeReason(err error) lua.LValue {
	switch {
	case err == nil:
		return lua.LNumber(0)
	case errors.Is(err, broker.ErrReconnect):
		return lua.LString("reconnect")
	case errors.Is(err, broker.ErrShutdown):
		return lua.LString("sysshutdown")
	case errors.Is(err, broker.ErrCorruptFrame):
		return lua.LString("corrupt frame")
	case errors.Is(err, broker.ErrProtocol):
		return lua.LString("protocol error")
	case errors.Is(err, broker.ErrSlowConsumer):
		return lua.LString("slow consumer")
	case errors.Is(err, broker.ErrFragment):
		return lua.LString("bad fragment")
	case errors.Is(err, broker.ErrBacklog):
		return lua.LString("backlog")
	}
	return lua.LString(err.Error())
}

// defaultMsg is the hub's OnMsg: messages to the server client with no
// more specific callback go to the Lua onmsg, if any. Routing goroutine.
func (b *lbroker) defaultMsg(msg broker.Message) {
	data := string(msg.Data)
	b.post(func(L *lua.LState) {
		if b.onmsg == nil {
			b.m.log.Debug("smq.hub: dropping message to the server client (no onmsg)", "tid", msg.Tid, "ptid", msg.Ptid)
			return
		}
		b.spawn("onmsg", b.onmsg, lua.LString(data), lua.LNumber(msg.Ptid), lua.LNumber(msg.Tid), lua.LNumber(msg.Subtid))
	})
}

// ---- Lua tables for peers ----

func (b *lbroker) data(p *broker.Peer) *peerData {
	if d, ok := p.UserData().(*peerData); ok {
		return d
	}
	d := &peerData{}
	p.SetUserData(d)
	return d
}

// peerTable returns p's peer table (§2.3), refreshing tid and topics. The
// same table is returned for the peer's whole life, so server code may add
// its own fields. VM goroutine only.
func (b *lbroker) peerTable(L *lua.LState, p *broker.Peer) *lua.LTable {
	if p == nil {
		return nil
	}
	d := b.data(p)
	if d.tbl == nil {
		d.tbl = L.CreateTable(0, 6)
		if !p.IsServer() {
			d.tbl.RawSetString("uid", lua.LString(p.UID()))
			d.tbl.RawSetString("info", lua.LString(p.Info()))
		}
	}
	d.tbl.RawSetString("tid", lua.LNumber(p.Etid()))
	topics := L.NewTable()
	for _, tid := range p.Topics() {
		setIDKey(topics, tid, lua.LNumber(tid))
	}
	d.tbl.RawSetString("topics", topics)
	return d.tbl
}

// setIDKey sets t[id] = v without letting gopher-lua grow t's array part
// up to id: t[n] = v with 1 ≤ n < lua.MaxArrayIndex (2^26) appends n-1
// nils first, and random 32-bit IDs land there one time in 64 (up to 1 GiB
// for one assignment). Small IDs (< 2^16) use the array part as usual; the
// others go to the hash part, where pairs() sees them but, for ids below
// 2^26, plain indexing t[id] does not (a gopher-lua limitation).
func setIDKey(t *lua.LTable, id uint32, v lua.LValue) {
	if id < 1<<16 || float64(id) >= float64(lua.MaxArrayIndex) {
		t.RawSet(lua.LNumber(id), v)
		return
	}
	t.RawSetH(lua.LNumber(id), v)
}

// infoTable returns the info table of authenticate and onconnect (§2.2):
// arg, seed, url, uid, info, data, header, and uname/session when the
// request had them. The same table is passed to both hooks. ci is the
// peer's ConnectInfo taken when the hook was called. VM goroutine.
func (b *lbroker) infoTable(L *lua.LState, p *broker.Peer, ci *broker.ConnectInfo) *lua.LTable {
	d := b.data(p)
	if d.info != nil {
		return d.info
	}
	t := L.CreateTable(0, 10)
	t.RawSetString("seed", lua.LNumber(p.Seed()))
	t.RawSetString("uid", lua.LString(p.UID()))
	t.RawSetString("info", lua.LString(p.Info()))
	if ci != nil {
		t.RawSetString("url", lua.LString(ci.URL))
		if a, ok := ci.Arg.(*connArg); ok {
			t.RawSetString("arg", a.arg)
			t.RawSetString("uname", a.uname)
			t.RawSetString("session", a.session)
		}
		hdr := L.CreateTable(0, len(ci.Header))
		for k, v := range ci.Header {
			hdr.RawSetString(k, lua.LString(strings.Join(v, ", ")))
		}
		t.RawSetString("header", hdr)
		q := L.CreateTable(0, len(ci.Query))
		for k, v := range ci.Query {
			if len(v) > 0 {
				q.RawSetString(k, lua.LString(v[0]))
			}
		}
		t.RawSetString("data", q)
		if ci.RemoteAddr != "" {
			t.RawSetString("peername", lua.LString(ci.RemoteAddr))
		}
	}
	d.info = t
	return t
}

// ---- connect ----

// callMethod calls obj:name() protected and returns its first result, or
// nil when obj has no such method or it fails.
func callMethod(L *lua.LState, obj lua.LValue, name string) lua.LValue {
	var fn lua.LValue = lua.LNil
	if err := L.CallByParam(lua.P{Fn: L.NewFunction(func(L *lua.LState) int {
		L.Push(L.GetField(L.Get(1), name))
		return 1
	}), NRet: 1, Protect: true}, obj); err == nil {
		fn = L.Get(-1)
		L.Pop(1)
	}
	f, ok := fn.(*lua.LFunction)
	if !ok {
		return lua.LNil
	}
	if err := L.CallByParam(lua.P{Fn: f, NRet: 1, Protect: true}, obj); err != nil {
		return lua.LNil
	}
	v := L.Get(-1)
	L.Pop(1)
	return v
}

// connect implements broker:connect(request [, arg]): the SMQ bootstrap
// (§1.2, §1.6) on the request's connection. A request without SMQ headers
// gets 404. Returns true, or nil and an error message. The request is
// consumed either way: the page must not answer it otherwise.
func (b *lbroker) connect(L *lua.LState) int {
	ex := b.m.exchange(L, 2)
	a := &connArg{arg: L.Get(3), uname: lua.LNil, session: lua.LNil}
	w, r := ex.HTTP()
	if broker.IsSMQ(r) {
		a.uname = callMethod(L, L.Get(2), "user")
		a.session = callMethod(L, L.Get(2), "session")
	}
	err := b.hub.Connect(w, r, a)
	ex.Hijacked()
	switch {
	case errors.Is(err, broker.ErrNotSMQ):
		L.Push(lua.LNil)
		L.Push(lua.LString("not an SMQ request"))
		return 2
	case err != nil:
		L.Push(lua.LNil)
		L.Push(lua.LString(err.Error()))
		return 2
	}
	L.Push(lua.LTrue)
	return 1
}

// ---- log option ----

// luaLogHandler forwards the hub's diagnostics to the Lua log(sock, msg)
// option. Handle runs on any goroutine and only posts.
type luaLogHandler struct {
	b     *lbroker
	level slog.Level
	attrs []slog.Attr
}

func (h *luaLogHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *luaLogHandler) Handle(_ context.Context, rec slog.Record) error {
	var sb strings.Builder
	sb.WriteString(rec.Message)
	write := func(a slog.Attr) bool {
		fmt.Fprintf(&sb, " %s=%v", a.Key, a.Value)
		return true
	}
	for _, a := range h.attrs {
		write(a)
	}
	rec.Attrs(write)
	msg := sb.String()
	h.b.post(func(L *lua.LState) {
		if err := L.CallByParam(lua.P{Fn: h.b.logfn, Protect: true}, lua.LNil, lua.LString(msg)); err != nil {
			h.b.m.log.Error("smq.hub: log callback failed", "err", err)
		}
	})
	return nil
}

func (h *luaLogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	n := *h
	n.attrs = append(append([]slog.Attr(nil), h.attrs...), as...)
	return &n
}

func (h *luaLogHandler) WithGroup(string) slog.Handler { return h }
