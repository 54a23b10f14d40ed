package cosocket

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
	"unsafe"

	lua "github.com/yuin/gopher-lua"

	"github.com/tarponrt/tarpon/runtime"
	"github.com/tarponrt/tarpon/scheduler"
)

const socketType = "ba.socket"

// Config sets the cosocket limits. The zero value is ready to use.
type Config struct {
	// QueueLen is how many queued bytes a non-cosocket writer (a page, a
	// timer, a thread job) may leave on a socket before write returns
	// nil, queuedBytes (BAS's sock:queuelen). Zero means 16 KiB.
	QueueLen int
	// HighWater is the queue size past which a cosocket writer is suspended
	// until the queue drains to half of it. Zero means 16 KiB.
	HighWater int
	// MaxInbox caps the bytes received but not yet read by Lua; past it the
	// connection is closed (1008 on WebSocket), logged and counted. Zero means 1 MiB.
	MaxInbox int
	// ConnectTimeout bounds ba.socket.connect and wsconnect when op.timeout
	// is absent. Zero means 5 s.
	ConnectTimeout time.Duration
	// Logger receives cosocket errors. Nil means slog.Default().
	Logger *slog.Logger
}

// Exchange is the HTTP request behind a Lua request object: what req2sock
// needs to take the connection over. The lsp package provides it.
type Exchange interface {
	// HTTP returns the exchange's writer and request.
	HTTP() (http.ResponseWriter, *http.Request)
	// Hijacked tells the HTTP side that the connection was taken over: it
	// must not write a response and its goroutine may return.
	Hijacked()
}

// Lib is ba.socket installed in one scheduler's VM.
type Lib struct {
	loop *scheduler.Loop
	r    *runtime.Reactor
	cfg  Config
	log  *slog.Logger

	// Requests resolves a Lua request object to its HTTP exchange. The lsp
	// package sets it; without it req2sock raises an error. VM goroutine.
	Requests func(L *lua.LState, v lua.LValue) (Exchange, bool)

	total      atomic.Int64
	active     atomic.Int64
	inboxDrops atomic.Uint64

	// batch defers the writes made on the VM goroutine that could not go
	// out at once to the end of the scheduler's turn, when it writes each
	// socket's queue once itself. VM goroutine only.
	batch runtime.Batch

	// runners holds each event loop's scheduler.Runner, by loop index,
	// created by the loop itself on its first message: a message then
	// resumes its reader on the loop that read it when the VM is idle.
	runners [maxRunners]atomic.Pointer[scheduler.Runner]
}

// maxRunners bounds the event loops that run Lua themselves; the others post.
const maxRunners = 64

// runner returns the scheduler.Runner of c's event loop, nil if it has
// none. Event loop only: loop i creates and stores its own.
func (lib *Lib) runner(c *runtime.Conn) *scheduler.Runner {
	i := c.Loop()
	if i < 0 || i >= maxRunners {
		return nil
	}
	r := lib.runners[i].Load()
	if r == nil {
		r = lib.loop.NewRunner()
		lib.runners[i].Store(r)
	}
	return r
}

// deliverFrom hands fn (a delivery for a socket of c) to the VM from c's
// event loop: run at once on that loop when the VM is idle, else queued.
// Event loop only.
func (lib *Lib) deliverFrom(c *runtime.Conn, fn func(*lua.LState)) {
	if r := lib.runner(c); r != nil {
		r.Run(fn)
		return
	}
	lib.loop.Post(fn)
}

// deliverNow runs fn at once on c's event loop if the VM is free, and
// reports whether it did. Event loop only.
func (lib *Lib) deliverNow(c *runtime.Conn, fn func(*lua.LState)) bool {
	r := lib.runner(c)
	return r != nil && r.TryRun(fn)
}

// Open installs ba.socket and the socket type into loop's VM. Call it on the
// VM goroutine (loop.Do) or before loop.Start.
func Open(loop *scheduler.Loop, r *runtime.Reactor, cfg Config) *Lib {
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = 16 << 10
	}
	if cfg.HighWater <= 0 {
		cfg.HighWater = 16 << 10
	}
	if cfg.MaxInbox <= 0 {
		cfg.MaxInbox = 1 << 20
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	lib := &Lib{loop: loop, r: r, cfg: cfg, log: cfg.Logger}
	loop.OnTurnEnd(lib.batch.Flush)
	L := loop.L()
	mt := L.NewTypeMetatable(socketType)
	methods := L.SetFuncs(L.NewTable(), map[string]lua.LGFunction{
		"read": lib.sockRead, "write": lib.sockWrite, "event": lib.sockEvent,
		"disable": lib.sockDisable, "enable": lib.sockEnable, "accept": lib.sockAccept,
		"close": lib.sockClose, "state": lib.sockState, "owner": lib.sockOwner,
		"queuelen": lib.sockQueueLen, "maxsize": lib.sockMaxSize, "ping": lib.sockPing,
		"websocket": lib.sockWebSocket, "setoption": lib.sockSetOption,
		"peername": lib.sockPeerName, "sockname": lib.sockSockName,
	})
	L.SetField(mt, "__index", methods)
	L.SetField(mt, "__tostring", L.NewFunction(func(L *lua.LState) int {
		L.Push(lua.LString(checkSocket(L, 1).String()))
		return 1
	}))
	mod := L.SetFuncs(L.NewTable(), map[string]lua.LGFunction{
		"req2sock": lib.req2sock, "event": lib.event, "connect": lib.connect,
		"wsconnect": lib.wsconnect, "bind": lib.bind, "getsock": lib.getsock,
		"stat": lib.stat, "toip": lib.toip,
	})
	L.SetField(loop.BA(), "socket", mod)
	return lib
}

// WriteMetrics writes the cosocket counters in Prometheus text format.
func (lib *Lib) WriteMetrics(w io.Writer) {
	fmt.Fprintf(w, "# HELP tarpon_cosockets_active Lua socket objects alive.\n# TYPE tarpon_cosockets_active gauge\ntarpon_cosockets_active %d\n", lib.active.Load())
	fmt.Fprintf(w, "# HELP tarpon_cosockets_total Lua socket objects created.\n# TYPE tarpon_cosockets_total counter\ntarpon_cosockets_total %d\n", lib.total.Load())
	fmt.Fprintf(w, "# HELP tarpon_cosocket_inbox_drops_total Connections closed because Lua did not read fast enough.\n# TYPE tarpon_cosocket_inbox_drops_total counter\ntarpon_cosocket_inbox_drops_total %d\n", lib.inboxDrops.Load())
}

func checkSocket(L *lua.LState, n int) *Socket {
	if ud, ok := L.Get(n).(*lua.LUserData); ok {
		if s, ok := ud.Value.(*Socket); ok {
			return s
		}
	}
	L.ArgError(n, "socket expected")
	return nil
}

// currentTask returns the running task or raises a Lua error.
func currentTask(L *lua.LState, what string) *scheduler.Task {
	t := scheduler.Current(L)
	if t == nil {
		L.RaiseError("%s: must be called from a task (a page, a cosocket, a timer or a thread job)", what)
	}
	return t
}

// cosocketOf returns the socket a task owns, if the task is a cosocket.
func cosocketOf(t *scheduler.Task) *Socket {
	if t == nil {
		return nil
	}
	s, _ := t.Data().(*Socket)
	return s
}

func (lib *Lib) connOptions(s *Socket) *runtime.ConnOptions {
	return &runtime.ConnOptions{HighWater: lib.cfg.HighWater, UserData: s}
}

func pushResults(L *lua.LState, vals ...lua.LValue) int {
	for _, v := range vals {
		L.Push(v)
	}
	return len(vals)
}

// sockRead implements sock:read([timeout_ms]) → data [, isText] | nil, err [, code].
func (lib *Lib) sockRead(L *lua.LState) int {
	s := checkSocket(L, 1)
	t := currentTask(L, "read")
	switch {
	case s.ln != nil:
		L.RaiseError("Invalid op: read on a listen socket (use accept)")
	case s.conn == nil:
		return pushResults(L, lua.LNil, lua.LString("incorrectuse"))
	case s.owner != nil && !s.owner.Done() && s.owner != t:
		L.RaiseError("Invalid op: when socket is in cosocket mode")
	case s.reader.live():
		L.RaiseError("Invalid op: socket busy (another coroutine is reading)")
	}
	if s.dead {
		s.readAfter++
		if s.readAfter > 1 {
			L.RaiseError("Invalid op: Socket closed")
		}
		s.mu.Lock()
		res := s.closedResult()
		s.mu.Unlock()
		return pushResults(L, res...)
	}
	if !s.paused {
		if vals, ok := s.take(); ok {
			if vals[0] == lua.LNil {
				s.readAfter++
				s.markDead()
			}
			return pushResults(L, vals...)
		}
	}
	w := park(t)
	s.reader = w
	s.state = "read"
	if ms := L.OptNumber(2, 0); ms > 0 {
		s.readTimer = lib.loop.AfterFunc(time.Duration(float64(ms)*float64(time.Millisecond)), func() {
			if s.reader == w {
				s.wake(lua.LNil, lua.LString("timeout"))
			}
		})
	}
	return t.Park(L)
}

// luaBytes returns the bytes of a Lua value without copying a string: the
// runtime copies what it queues, and Lua strings are immutable.
func luaBytes(L *lua.LState, v lua.LValue) []byte {
	var str string
	switch x := v.(type) {
	case lua.LString:
		str = string(x)
	case lua.LNumber:
		str = x.String()
	default:
		str = L.ToStringMeta(v).String()
	}
	return unsafe.Slice(unsafe.StringData(str), len(str))
}

// sockWrite implements sock:write(data [, i [, j [, isText]]]) and sock:write(data, isText).
func (lib *Lib) sockWrite(L *lua.LState) int {
	s := checkSocket(L, 1)
	data := luaBytes(L, L.CheckAny(2))
	text := false
	if b, ok := L.Get(3).(lua.LBool); ok {
		text = bool(b)
	} else if L.GetTop() >= 3 {
		n := len(data)
		i, j := L.OptInt(3, 1), L.OptInt(4, -1)
		if i < 0 {
			i = max(n+i+1, 1)
		} else if i == 0 {
			i = 1
		}
		if j < 0 {
			j = n + j + 1
		} else if j > n {
			j = n
		}
		if i > j {
			data = nil
		} else {
			data = data[i-1 : j]
		}
		text = lua.LVAsBool(L.Get(5))
	}
	if s.conn == nil {
		return pushResults(L, lua.LNil, lua.LString("incorrectuse"))
	}
	if s.dead {
		return pushResults(L, lua.LNil, lua.LString("socketclosed"))
	}
	t := scheduler.Current(L)
	cosocketWriter := cosocketOf(t) != nil
	if !cosocketWriter {
		if q := s.conn.Queued(); q >= s.queueLen {
			return pushResults(L, lua.LNil, lua.LNumber(q))
		}
	}
	var congested bool
	var err error
	if s.more && cosocketWriter && s.owner == t {
		// The reader is answering a burst it read in one go (the others
		// are queued behind the message it just read): queue without the
		// immediate write SendBatched may do, so the connection's loop
		// writes the whole burst at once instead of one write per answer.
		if text {
			err = s.conn.SendText(data)
		} else {
			err = s.conn.Send(data)
		}
		congested = err == nil && s.conn.Congested()
	} else {
		congested, err = s.conn.SendBatched(&lib.batch, data, text)
	}
	switch err {
	case nil:
	case runtime.ErrQueueFull:
		return pushResults(L, lua.LNil, lua.LNumber(s.conn.Queued()))
	case runtime.ErrClosed:
		return pushResults(L, lua.LNil, lua.LString("socketclosed"))
	default:
		return pushResults(L, lua.LNil, lua.LString(err.Error()))
	}
	if cosocketWriter && congested {
		// BAS: a cosocket writer is never refused; it waits for the drain.
		s.writers = append(s.writers, park(t))
		if s.owner == t {
			s.state = "write"
		}
		return t.Park(L)
	}
	L.Push(lua.LTrue)
	return 1
}

// sockEvent implements sock:event(func [, "r"|"s"] [, ...]).
func (lib *Lib) sockEvent(L *lua.LState) int {
	s := checkSocket(L, 1)
	fn := L.CheckFunction(2)
	mode := byte('r')
	first := 3
	if m, ok := L.Get(3).(lua.LString); ok && (m == "s" || m == "r") {
		mode = m[0]
		first = 4
	}
	cur := scheduler.Current(L)
	if s.owner != nil && !s.owner.Done() && s.owner != cur {
		L.RaiseError("Already in async/cosocket mode")
	}
	args := []lua.LValue{s.ud}
	for i := first; i <= L.GetTop(); i++ {
		args = append(args, L.Get(i))
	}
	t, err := lib.spawnOwner(s, mode, fn, args)
	if err != nil {
		L.RaiseError("event: %v", err)
	}
	if t.Done() {
		return pushResults(L, lua.LNil, lua.LString("failed"))
	}
	L.Push(lua.LTrue)
	return 1
}

// spawnOwner starts fn as the coroutine that owns s; it runs until its first yield. VM.
func (lib *Lib) spawnOwner(s *Socket, mode byte, fn *lua.LFunction, args []lua.LValue) (*scheduler.Task, error) {
	return lib.loop.SpawnWith(func(t *scheduler.Task) {
		t.SetData(s)
		s.owner, s.mode = t, mode
		if s.state == "notcon" && s.conn != nil {
			s.state = "exec"
		}
		t.OnExit(func(err error) { lib.ownerExited(s, t, err) })
	}, fn, args...)
}

// ownerExited closes the socket when its coroutine ends, as BAS does. VM.
func (lib *Lib) ownerExited(s *Socket, t *scheduler.Task, err error) {
	if err != nil {
		lib.log.Error("Cosocket", "socket", s.String(), "err", err)
	}
	if s.owner != t {
		return
	}
	if s.reader.t == t {
		s.reader = waiter{}
	}
	s.close()
}

// event implements ba.socket.event(func, ...): an unconnected cosocket.
func (lib *Lib) event(L *lua.LState) int {
	fn := L.CheckFunction(1)
	s := lib.newSocket(L)
	args := []lua.LValue{s.ud}
	for i := 2; i <= L.GetTop(); i++ {
		args = append(args, L.Get(i))
	}
	t, err := lib.spawnOwner(s, 's', fn, args)
	if err != nil {
		L.RaiseError("ba.socket.event: %v", err)
	}
	if t.Done() {
		L.Push(lua.LNil)
		return 1
	}
	L.Push(s.ud)
	return 1
}

// sockDisable implements sock:disable().
func (lib *Lib) sockDisable(L *lua.LState) int {
	s := checkSocket(L, 1)
	cur := scheduler.Current(L)
	switch {
	case cur != nil && s.owner == cur:
		s.disabled = park(cur)
		s.state = "disabled"
		return cur.Park(L)
	case s.reader.live() && s.reader.t == s.owner:
		s.paused = true
		L.Push(lua.LTrue)
		return 1
	}
	return pushResults(L, lua.LNil, lua.LString("incorrectuse"))
}

// sockEnable implements sock:enable(...): the owner parked in disable resumes
// at once, in the caller's context, with ... as disable's results.
func (lib *Lib) sockEnable(L *lua.LState) int {
	s := checkSocket(L, 1)
	if w := s.disabled; w.live() {
		s.disabled = waiter{}
		s.state = "exec"
		args := make([]lua.LValue, 0, L.GetTop()-1)
		for i := 2; i <= L.GetTop(); i++ {
			args = append(args, L.Get(i))
		}
		lib.loop.Resume(w.t, args...)
		L.Push(lua.LBool(!w.t.Done()))
		return 1
	}
	if s.paused {
		s.paused = false
		lib.loop.Post(s.deliver)
	}
	L.Push(lua.LTrue)
	return 1
}

// sockClose implements sock:close() → true | false when already closed.
func (lib *Lib) sockClose(L *lua.LState) int {
	L.Push(lua.LBool(checkSocket(L, 1).close()))
	return 1
}

// sockState implements sock:state() → stateName, isConnected.
func (lib *Lib) sockState(L *lua.LState) int {
	s := checkSocket(L, 1)
	return pushResults(L, lua.LString(s.state), lua.LBool(s.conn != nil && !s.dead))
}

// sockOwner implements sock:owner(): is the caller the socket's coroutine?
func (lib *Lib) sockOwner(L *lua.LState) int {
	s := checkSocket(L, 1)
	cur := scheduler.Current(L)
	L.Push(lua.LBool(cur != nil && s.owner == cur))
	return 1
}

// sockQueueLen implements sock:queuelen([max]).
func (lib *Lib) sockQueueLen(L *lua.LState) int {
	s := checkSocket(L, 1)
	if n := L.OptInt(2, 0); n > 0 {
		s.queueLen = n
	}
	L.Push(lua.LNumber(s.queueLen))
	return 1
}

// sockMaxSize implements sock:maxsize(n) (recorded; the runtime sizes writes itself).
func (lib *Lib) sockMaxSize(L *lua.LState) int {
	s := checkSocket(L, 1)
	if n := L.OptInt(2, 0); n > 0 {
		s.maxSize = min(max(n, 257), 8192)
	}
	L.Push(lua.LNumber(s.maxSize))
	return 1
}

// sockPing implements sock:ping([payload]).
func (lib *Lib) sockPing(L *lua.LState) int {
	s := checkSocket(L, 1)
	if s.conn == nil || s.conn.Framing() != runtime.FramingWebSocket {
		L.RaiseError("Not WS")
	}
	if err := s.conn.Ping([]byte(L.OptString(2, "BAS"))); err != nil {
		return pushResults(L, lua.LNil, lua.LString(err.Error()))
	}
	L.Push(lua.LTrue)
	return 1
}

// sockWebSocket implements sock:websocket().
func (lib *Lib) sockWebSocket(L *lua.LState) int {
	s := checkSocket(L, 1)
	L.Push(lua.LBool(s.conn != nil && s.conn.Framing() == runtime.FramingWebSocket))
	return 1
}

// sockSetOption implements sock:setoption(name, bool, ...).
func (lib *Lib) sockSetOption(L *lua.LState) int {
	s := checkSocket(L, 1)
	name := L.CheckString(2)
	on := L.ToBool(3)
	if s.conn == nil {
		return pushResults(L, lua.LNil, lua.LString("notconnected"))
	}
	var err error
	switch name {
	case "tcp-nodelay":
		err = s.conn.SetNoDelay(on)
	case "keepalive":
		idle := time.Duration(L.OptInt(4, 60)) * time.Second
		intv := time.Duration(L.OptInt(5, max(int(idle/time.Second)/10, 3))) * time.Second
		err = s.conn.SetKeepAlive(on, idle, intv)
	case "dontroute", "broadcast", "ip-membership":
		return pushResults(L, lua.LNil, lua.LString(name+" is not supported on TCP sockets here"))
	default:
		L.RaiseError("Unknown option %s", name)
	}
	if err != nil {
		return pushResults(L, lua.LNil, lua.LString(err.Error()))
	}
	L.Push(lua.LTrue)
	return 1
}

func pushAddr(L *lua.LState, a net.Addr) int {
	host, port, err := net.SplitHostPort(addrString(a))
	if err != nil {
		return pushResults(L, lua.LNil, lua.LString("notconnected"))
	}
	p, _ := strconv.Atoi(port)
	ip := net.ParseIP(host)
	return pushResults(L, lua.LString(host), lua.LNumber(p), lua.LBool(ip != nil && ip.To4() == nil))
}

// sockPeerName implements sock:peername() → ip, port, isIPv6.
func (lib *Lib) sockPeerName(L *lua.LState) int {
	s := checkSocket(L, 1)
	if s.conn == nil {
		return pushResults(L, lua.LNil, lua.LString("notconnected"))
	}
	return pushAddr(L, s.conn.RemoteAddr())
}

// sockSockName implements sock:sockname() → ip, port, isIPv6.
func (lib *Lib) sockSockName(L *lua.LState) int {
	s := checkSocket(L, 1)
	switch {
	case s.conn != nil:
		return pushAddr(L, s.conn.LocalAddr())
	case s.ln != nil:
		return pushAddr(L, s.ln.ln.Addr())
	}
	return pushResults(L, lua.LNil, lua.LString("notconnected"))
}

// getsock implements ba.socket.getsock(): the caller's cosocket or nil.
func (lib *Lib) getsock(L *lua.LState) int {
	if s := cosocketOf(scheduler.Current(L)); s != nil {
		L.Push(s.ud)
		return 1
	}
	L.Push(lua.LNil)
	return 1
}

// stat implements ba.socket.stat() → total, active.
func (lib *Lib) stat(L *lua.LState) int {
	return pushResults(L, lua.LNumber(lib.total.Load()), lua.LNumber(lib.active.Load()))
}

// toip implements ba.socket.toip(name) → address | nil, "cannotresolve".
// The lookup runs off the VM goroutine; the caller's task waits for it.
func (lib *Lib) toip(L *lua.LState) int {
	name := L.CheckString(1)
	t := currentTask(L, "toip")
	w := park(t)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), lib.cfg.ConnectTimeout)
		defer cancel()
		addrs, err := net.DefaultResolver.LookupHost(ctx, name)
		lib.loop.Post(func(*lua.LState) {
			switch {
			case !w.live():
			case err != nil || len(addrs) == 0:
				lib.loop.Resume(t, lua.LNil, lua.LString("cannotresolve"))
			default:
				lib.loop.Resume(t, lua.LString(addrs[0]))
			}
		})
	}()
	return t.Park(L)
}

// req2sock implements ba.socket.req2sock(request [, raw | subprotocol]).
func (lib *Lib) req2sock(L *lua.LState) int {
	if lib.Requests == nil {
		L.RaiseError("req2sock: no HTTP request in this context")
	}
	ex, ok := lib.Requests(L, L.Get(1))
	if !ok {
		L.ArgError(1, "request expected")
	}
	if lib.loop.OnRunner() {
		// The hand-off below waits for an event loop to register the
		// connection, possibly the very loop this turn runs on: finish on
		// the VM goroutine instead.
		t := currentTask(L, "req2sock")
		w, opt := park(t), L.Get(2)
		lib.loop.Post(func(L *lua.LState) {
			if w.live() {
				lib.loop.Resume(t, lib.takeOver(L, ex, opt)...)
			}
		})
		return t.Park(L)
	}
	return pushResults(L, lib.takeOver(L, ex, L.Get(2))...)
}

// takeOver upgrades or morphs ex's connection into a socket (req2sock's
// work, opt its second argument) and returns req2sock's results. VM
// goroutine, never a Runner.
func (lib *Lib) takeOver(L *lua.LState, ex Exchange, opt lua.LValue) []lua.LValue {
	w, r := ex.HTTP()
	raw := false
	var protocol string
	switch v := opt.(type) {
	case lua.LBool:
		raw = bool(v)
	case lua.LString:
		protocol = string(v)
	}
	s := lib.newSocket(L)
	opts := lib.connOptions(s)
	var conn *runtime.Conn
	var err error
	if raw || r.Header.Get("Sec-WebSocket-Key") == "" {
		conn, err = lib.r.Morph(w, r, s, opts)
	} else {
		if protocol != "" {
			opts.Protocol = func(p string) bool { return p == protocol }
		}
		conn, err = lib.r.Upgrade(w, r, s, opts)
	}
	ex.Hijacked()
	if err != nil {
		s.markDead()
		return []lua.LValue{lua.LNil, lua.LString(err.Error())}
	}
	s.conn = conn
	s.state = "exec"
	return []lua.LValue{s.ud}
}
