package cosocket

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/tarponrt/tarpon/runtime"
	"github.com/tarponrt/tarpon/scheduler"
)

// Outbound connects and listeners. The blocking parts (TCP connect, TLS and
// WebSocket handshakes, accept) run on a short-lived goroutine (one per
// connect) or one goroutine per listen socket; the calling task parks and is
// resumed through the scheduler's inbox. Established connections live in the
// reactor like every other.

// connectTarget picks the socket a connect attaches to: the caller's own
// unconnected cosocket (BAS: one cosocket = one coroutine + at most one
// connection), or a new socket object.
func (lib *Lib) connectTarget(L *lua.LState, t *scheduler.Task) (*Socket, bool) {
	if s := cosocketOf(t); s != nil && s.owner == t {
		if s.conn != nil && !s.dead {
			return nil, false
		}
		if s.conn == nil && s.ln == nil {
			return s, true
		}
	}
	return lib.newSocket(L), true
}

// options reads the fields of an op table that connect and wsconnect share.
func (lib *Lib) dialOptions(L *lua.LState, op *lua.LTable) (timeout time.Duration, tlsCfg *tls.Config, header http.Header) {
	timeout = lib.cfg.ConnectTimeout
	if op == nil {
		return
	}
	if ms, ok := op.RawGetString("timeout").(lua.LNumber); ok && ms > 0 {
		timeout = time.Duration(float64(ms) * float64(time.Millisecond))
	}
	tlsOpt := op.RawGetString("tls")
	if tlsOpt == lua.LNil {
		tlsOpt = op.RawGetString("shark")
	}
	if tlsOpt != lua.LNil && tlsOpt != lua.LFalse {
		tlsCfg = &tls.Config{}
		if t, ok := tlsOpt.(*lua.LTable); ok {
			tlsCfg.InsecureSkipVerify = lua.LVAsBool(t.RawGetString("insecure"))
			if sn, ok := t.RawGetString("servername").(lua.LString); ok {
				tlsCfg.ServerName = string(sn)
			}
		}
		if alpn, ok := op.RawGetString("alpn").(lua.LString); ok {
			tlsCfg.NextProtos = []string{string(alpn)}
		}
	}
	if h, ok := op.RawGetString("header").(*lua.LTable); ok {
		header = http.Header{}
		h.ForEach(func(k, v lua.LValue) { header.Add(k.String(), v.String()) })
	}
	return
}

// connect implements ba.socket.connect(host, port [, op]) → sock | nil, err, detail.
func (lib *Lib) connect(L *lua.LState) int {
	host := L.CheckString(1)
	port := L.CheckInt(2)
	op := L.OptTable(3, nil)
	t := currentTask(L, "connect")
	s, ok := lib.connectTarget(L, t)
	if !ok {
		return pushResults(L, lua.LNil, lua.LString("incorrectuse"))
	}
	timeout, tlsCfg, _ := lib.dialOptions(L, op)
	opts := lib.connOptions(s)
	opts.TLSConfig = tlsCfg
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	return lib.dial(L, t, s, timeout, func(ctx context.Context) (*runtime.Conn, error) {
		return lib.r.Dial(ctx, "tcp", addr, s, opts)
	})
}

// wsconnect implements ba.socket.wsconnect(url [, op]) → sock | nil, err, detail:
// a WebSocket client socket (ws:// or wss://).
func (lib *Lib) wsconnect(L *lua.LState) int {
	url := L.CheckString(1)
	op := L.OptTable(2, nil)
	t := currentTask(L, "wsconnect")
	s, ok := lib.connectTarget(L, t)
	if !ok {
		return pushResults(L, lua.LNil, lua.LString("incorrectuse"))
	}
	timeout, tlsCfg, header := lib.dialOptions(L, op)
	opts := lib.connOptions(s)
	opts.TLSConfig, opts.Header = tlsCfg, header
	return lib.dial(L, t, s, timeout, func(ctx context.Context) (*runtime.Conn, error) {
		return lib.r.DialWebSocket(ctx, url, s, opts)
	})
}

// dial parks t while dialFn runs on its own goroutine, then resumes t with
// the connected socket or nil, "cannotconnect", detail.
func (lib *Lib) dial(L *lua.LState, t *scheduler.Task, s *Socket, timeout time.Duration, dialFn func(context.Context) (*runtime.Conn, error)) int {
	s.state = "connect"
	w := park(t)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		conn, err := dialFn(ctx)
		posted := lib.loop.Post(func(*lua.LState) {
			if err != nil {
				s.state = "notcon"
				if s.owner == nil {
					s.markDead()
				}
				if w.live() {
					lib.loop.Resume(t, lua.LNil, lua.LString("cannotconnect"), lua.LString(err.Error()))
				}
				return
			}
			s.conn = conn
			s.state = "exec"
			if w.live() {
				lib.loop.Resume(t, s.ud)
			} else if s.owner == nil {
				s.close() // nobody is waiting for it any more
			}
		})
		if !posted && conn != nil {
			_ = conn.Close(runtime.CloseGoingAway, "shutting down")
		}
	}()
	return t.Park(L)
}

// listener is a listen socket's Go side: one goroutine accepts and moves each
// connection into the reactor; accept() takes them in order.
type listener struct {
	ln      net.Listener
	mu      sync.Mutex
	pending []*Socket // accepted, waiting for accept(); VM-only once posted
	closed  bool
}

func (l *listener) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	_ = l.ln.Close()
}

// bind implements ba.socket.bind(port [, op]) → listen socket | nil, "bind", detail.
// op.intf chooses the address (default: all interfaces).
func (lib *Lib) bind(L *lua.LState) int {
	port := L.CheckInt(1)
	op := L.OptTable(2, nil)
	host := ""
	if op != nil {
		if intf, ok := op.RawGetString("intf").(lua.LString); ok {
			host = string(intf)
		}
	}
	nl, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return pushResults(L, lua.LNil, lua.LString("bind"), lua.LString(err.Error()))
	}
	s := lib.newSocket(L)
	s.ln = &listener{ln: nl}
	s.state = "exec"
	go lib.acceptLoop(s)
	L.Push(s.ud)
	return 1
}

// acceptLoop runs on the listen socket's goroutine.
func (lib *Lib) acceptLoop(ls *Socket) {
	backoff := 5 * time.Millisecond
	for {
		nc, err := ls.ln.ln.Accept()
		if err != nil {
			ls.ln.mu.Lock()
			closed := ls.ln.closed
			ls.ln.mu.Unlock()
			if closed {
				lib.loop.Post(func(*lua.LState) { ls.markDead() })
				return
			}
			// EMFILE and friends: back off instead of spinning.
			lib.log.Warn("cosocket: accept failed", "err", err)
			time.Sleep(backoff)
			backoff = min(backoff*2, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		s := &Socket{lib: lib, state: "exec", queueLen: lib.cfg.QueueLen, maxSize: 8192}
		s.deliver, s.drained, s.handOver = s.deliverVM, s.drainedVM, s.deliverDirect
		conn, err := lib.r.Adopt(nc, s, lib.connOptions(s))
		if err != nil {
			lib.log.Warn("cosocket: cannot enroll accepted connection", "err", err)
			continue
		}
		s.conn = conn
		if !lib.loop.Post(func(L *lua.LState) { lib.accepted(L, ls, s) }) {
			_ = conn.Close(0, "")
			return
		}
	}
}

// accepted hands a new connection to a parked accept() or queues it. VM.
func (lib *Lib) accepted(L *lua.LState, ls *Socket, s *Socket) {
	s.ud = L.NewUserData()
	s.ud.Value = s
	L.SetMetatable(s.ud, L.GetTypeMetatable(socketType))
	lib.total.Add(1)
	lib.active.Add(1)
	if ls.dead {
		s.close()
		return
	}
	if ls.reader.live() {
		ls.wake(s.ud)
		return
	}
	ls.ln.pending = append(ls.ln.pending, s)
}

// sockAccept implements listen:accept() → sock | nil, "socketclosed".
func (lib *Lib) sockAccept(L *lua.LState) int {
	ls := checkSocket(L, 1)
	if ls.ln == nil {
		L.RaiseError("Invalid op: accept on a socket that is not listening")
	}
	t := currentTask(L, "accept")
	if ls.owner != nil && !ls.owner.Done() && ls.owner != t {
		L.RaiseError("Invalid op: accept belongs to the listen socket's coroutine")
	}
	if len(ls.ln.pending) > 0 {
		s := ls.ln.pending[0]
		ls.ln.pending = ls.ln.pending[1:]
		L.Push(s.ud)
		return 1
	}
	if ls.dead {
		return pushResults(L, lua.LNil, lua.LString("socketclosed"))
	}
	if ls.reader.live() {
		L.RaiseError("Invalid op: socket busy")
	}
	ls.reader = park(t)
	ls.state = "accept"
	return t.Park(L)
}
