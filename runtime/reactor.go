package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	goruntime "runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// Config configures a Reactor. The zero value is ready to use.
type Config struct {
	// Loops is the number of event loops. Zero means one per CPU core.
	Loops int
	// MaxMessage caps one inbound WebSocket message (reassembled) in bytes;
	// past it the connection is closed with 1009. Zero means 16 MiB.
	MaxMessage int
	// HighWater is the per-connection send-queue size in bytes past which
	// Congested reports true and writers should hold back. Zero means 64 KiB.
	HighWater int
	// MaxQueue is the hard cap of a send queue in bytes; Send past it fails
	// with ErrQueueFull and the drop is counted. Zero means 4 MiB.
	MaxQueue int
	// PingInterval, when non-zero, sends a WebSocket ping to a connection
	// that has been silent that long.
	PingInterval time.Duration
	// IdleTimeout, when non-zero, closes a connection (1001 on WebSocket)
	// that has received nothing for that long. With PingInterval set, a
	// live peer's pongs keep it open.
	IdleTimeout time.Duration
	// CloseTimeout bounds how long a closing connection may take to flush
	// its queue before it is cut. Zero means 5 s.
	CloseTimeout time.Duration
	// Origin is the policy for browser origins on WebSocket upgrades. The
	// zero value allows same-origin and Origin-less requests only.
	Origin OriginPolicy
	// MaxConns caps the upgraded and morphed connections held at once; past
	// it Upgrade and Morph answer 503. Zero means 100,000.
	MaxConns int
	// MaxConnsPerIP caps them per source address. Zero means 10,000.
	MaxConnsPerIP int
	// UpgradeRate limits new connections per source address per second
	// (a token bucket holding UpgradeBurst); past it the answer is 429.
	// Zero means 1,000 per second, with a burst of 10,000.
	UpgradeRate  float64
	UpgradeBurst float64
	// Logger receives the reactor's diagnostics. Nil means slog.Default().
	Logger *slog.Logger
}

func (c *Config) fill() {
	if c.Loops <= 0 {
		c.Loops = goruntime.NumCPU()
	}
	if c.MaxMessage <= 0 {
		c.MaxMessage = 16 << 20
	}
	if c.HighWater <= 0 {
		c.HighWater = 64 << 10
	}
	if c.MaxQueue <= 0 {
		c.MaxQueue = 4 << 20
	}
	if c.MaxQueue < c.HighWater {
		c.MaxQueue = c.HighWater
	}
	if c.CloseTimeout <= 0 {
		c.CloseTimeout = 5 * time.Second
	}
	if c.MaxConns <= 0 {
		c.MaxConns = 100_000
	}
	if c.MaxConnsPerIP <= 0 {
		c.MaxConnsPerIP = 10_000
	}
	if c.UpgradeRate <= 0 {
		c.UpgradeRate = 1000
	}
	if c.UpgradeBurst < 1 {
		c.UpgradeBurst = max(10*c.UpgradeRate, 1)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Errors returned by the runtime.
var (
	ErrClosed       = errors.New("runtime: connection closed")
	ErrQueueFull    = errors.New("runtime: send queue full")
	ErrShuttingDown = errors.New("runtime: reactor shutting down")
	ErrNotWebSocket = errors.New("runtime: not a WebSocket connection")
)

// Reactor owns the gnet event loops and every connection handed to them.
type Reactor struct {
	cfg    Config
	log    *slog.Logger
	client *gnet.Client

	loopsMu sync.Mutex
	loops   map[gnet.EventLoop]*loop
	byIndex []*loop

	shutting atomic.Bool
	handoffs atomic.Int64 // connections between beginHandoff and enrolment
	stopTick chan struct{}
	tickDone chan struct{}
	now      atomic.Int64 // coarse clock (unix nanoseconds), refreshed by the ticker

	stats counters
	gate  gate
	ips   ipTable // shared IPs of connection addresses (addr.go)
}

// New starts a reactor with cfg's event loops.
func New(cfg Config) (*Reactor, error) {
	cfg.fill()
	r := &Reactor{
		cfg:      cfg,
		log:      cfg.Logger,
		loops:    make(map[gnet.EventLoop]*loop),
		stopTick: make(chan struct{}),
		tickDone: make(chan struct{}),
	}
	r.gate.perIP = make(map[string]*ipState)
	growFDTable(cfg.MaxConns + 1024) // see fdtable.go: no thread burst when connections pour in
	r.now.Store(time.Now().UnixNano())
	cli, err := gnet.NewClient(&engine{r: r},
		gnet.WithNumEventLoop(cfg.Loops),
		gnet.WithLockOSThread(true),
		gnet.WithLogger(gnetLogger{r.log}),
		gnet.WithTCPNoDelay(gnet.TCPNoDelay),
	)
	if err != nil {
		return nil, fmt.Errorf("runtime: %w", err)
	}
	if err := cli.Start(); err != nil {
		return nil, fmt.Errorf("runtime: start event loops: %w", err)
	}
	r.client = cli
	go r.tick()
	return r, nil
}

// Config returns the reactor's configuration with defaults filled in.
func (r *Reactor) Config() Config { return r.cfg }

// loopFor returns the runtime state of gnet event loop el, creating it on first use.
func (r *Reactor) loopFor(el gnet.EventLoop) *loop {
	r.loopsMu.Lock()
	defer r.loopsMu.Unlock()
	lp := r.loops[el]
	if lp == nil {
		lp = &loop{r: r, el: el, idx: len(r.byIndex)}
		lp.flushTask = gnet.RunnableFunc(func(context.Context) error { lp.flush(); return nil })
		lp.batchTask = gnet.RunnableFunc(func(context.Context) error { lp.flushBatch(); return nil })
		r.loops[el] = lp
		r.byIndex = append(r.byIndex, lp)
	}
	return lp
}

func (r *Reactor) loopList() []*loop {
	r.loopsMu.Lock()
	defer r.loopsMu.Unlock()
	return append([]*loop(nil), r.byIndex...)
}

// ExecuteOn runs fn on event loop index loop (see Conn.Loop). Safe for
// concurrent use. Use it to group work per loop, e.g. one task delivering a
// broadcast to all recipients of that loop.
func (r *Reactor) ExecuteOn(loop int, fn func()) error {
	r.loopsMu.Lock()
	if loop < 0 || loop >= len(r.byIndex) {
		r.loopsMu.Unlock()
		return fmt.Errorf("runtime: no event loop %d", loop)
	}
	lp := r.byIndex[loop]
	r.loopsMu.Unlock()
	return lp.execute(fn)
}

// sweepEvery is how often each loop sweeps its connections (pings, idle
// closes, trimming the buffers of quiet ones) unless PingInterval or
// IdleTimeout ask for more.
const sweepEvery = time.Second

// tick drives the coarse clock, drain checks of congested connections and
// the ping/idle sweep. It is the reactor's only goroutine besides gnet's loops.
func (r *Reactor) tick() {
	defer close(r.tickDone)
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	lastSweep, lastGate := time.Now(), time.Now()
	fast := false // ticking every millisecond for congested queues
	// Sweep often enough that PingInterval and IdleTimeout keep their
	// meaning when they are short: at most sweepEvery, at least a tick.
	every := sweepEvery
	for _, d := range []time.Duration{r.cfg.PingInterval / 2, r.cfg.IdleTimeout / 4} {
		if d > 0 && d < every {
			every = max(d, 5*time.Millisecond)
		}
	}
	for {
		select {
		case <-r.stopTick:
			return
		case now := <-t.C:
			r.now.Store(now.UnixNano())
			sweep := now.Sub(lastSweep) >= every
			if sweep {
				lastSweep = now
			}
			if now.Sub(lastGate) >= time.Second {
				lastGate = now
				r.sweepGate()
			}
			watching := false
			for _, lp := range r.loopList() {
				if lp.watching.Load() > 0 {
					watching = true
					_ = lp.execute(lp.checkCongested)
				}
				if sweep {
					_ = lp.execute(lp.sweep)
				}
			}
			// A writer waiting for a queue to drain learns of it from this
			// poll (gnet has no drained callback): poll every millisecond
			// while any queue is congested, every 5 ms otherwise.
			if watching != fast {
				fast = watching
				period := 5 * time.Millisecond
				if fast {
					period = time.Millisecond
				}
				t.Reset(period)
			}
		}
	}
}

// Shutdown closes every connection (WebSocket ones with 1001 "going away"),
// waits until their queues are flushed and they are gone or ctx ends, then
// stops the event loops. Upgrades after Shutdown began fail with
// ErrShuttingDown. http.Server.Shutdown does not see hijacked connections,
// so call both.
func (r *Reactor) Shutdown(ctx context.Context) error {
	if !r.shutting.CompareAndSwap(false, true) {
		return ErrShuttingDown
	}
	for _, lp := range r.loopList() {
		_ = lp.execute(func() {
			for i := len(lp.conns) - 1; i >= 0; i-- {
				_ = lp.conns[i].Close(CloseGoingAway, "going away")
			}
		})
	}
	var err error
	t := time.NewTicker(5 * time.Millisecond)
	for r.stats.open.Load() > 0 || r.handoffs.Load() > 0 {
		select {
		case <-ctx.Done():
			err = fmt.Errorf("runtime: shutdown: %d connections still open: %w", r.stats.open.Load(), ctx.Err())
		case <-t.C:
			continue
		}
		break
	}
	t.Stop()
	close(r.stopTick)
	<-r.tickDone
	if stopErr := r.client.Stop(); stopErr != nil && err == nil {
		err = fmt.Errorf("runtime: stop event loops: %w", stopErr)
	}
	return err
}

// engine adapts gnet's callbacks to Conns. Every method runs on an event loop.
type engine struct {
	gnet.BuiltinEventEngine
	r *Reactor
}

func (e *engine) OnOpen(gc gnet.Conn) (out []byte, action gnet.Action) {
	c, ok := gc.Context().(*Conn)
	if p, held := gc.Context().(*pendingOpen); held {
		// The upgrade's 101 (heldResponse) goes out before anything else.
		c, ok = p.c, true
		gc.SetContext(c)
		if _, err := gc.Write(p.resp); err != nil {
			// gnet has closed the socket (OnClose found the Conn not yet
			// open); the enrolling goroutine reports the error.
			p.err = err
			return nil, gnet.None
		}
	}
	if !ok {
		return nil, gnet.Close
	}
	defer e.recoverHandler(c, "OnOpen", &action)
	c.opened(gc, e.r.loopFor(gc.EventLoop()))
	return nil, gnet.None
}

func (e *engine) OnTraffic(gc gnet.Conn) (action gnet.Action) {
	c, ok := gc.Context().(*Conn)
	if !ok {
		return gnet.Close
	}
	defer e.recoverHandler(c, "OnMessage", &action)
	return c.traffic()
}

func (e *engine) OnClose(gc gnet.Conn, err error) (action gnet.Action) {
	if c, ok := gc.Context().(*Conn); ok {
		defer e.recoverHandler(c, "OnClose", &action)
		c.closed(err)
	}
	return gnet.None
}

// recoverHandler turns a panic in a Handler callback (or in the runtime
// under it) into closing that one connection, so one bad handler cannot
// take the event loop and every other connection down. The panic is
// logged with its stack and counted. Deferred by the engine callbacks.
func (e *engine) recoverHandler(c *Conn, where string, action *gnet.Action) {
	v := recover()
	if v == nil {
		return
	}
	e.r.stats.handlerPanics.Add(1)
	e.r.log.Error("runtime: handler panicked; closing its connection", "callback", where, "remote", c.remoteAddr(), "panic", v, "stack", string(debug.Stack()))
	c.closingFlag.Store(true) // no more input
	c.mu.Lock()
	if c.inTraffic && c.lp != nil {
		c.lp.stage = c.lp.stage[:0] // the connection is closing: drop what it staged
	}
	c.inTraffic = false // the callback did not reach endCallback
	c.mu.Unlock()
	if c.lp != nil {
		c.lp.scheduleBatch() // what the callback routed to others still goes out
	}
	*action = gnet.Close // gnet closes the socket and calls OnClose (closed() is idempotent)
}

// gnetLogger routes gnet's log lines to slog; gnet's info chatter goes to debug.
type gnetLogger struct{ l *slog.Logger }

func (g gnetLogger) Debugf(f string, a ...any) { g.l.Debug("gnet: " + fmt.Sprintf(f, a...)) }
func (g gnetLogger) Infof(f string, a ...any)  { g.l.Debug("gnet: " + fmt.Sprintf(f, a...)) }
func (g gnetLogger) Warnf(f string, a ...any)  { g.l.Warn("gnet: " + fmt.Sprintf(f, a...)) }
func (g gnetLogger) Errorf(f string, a ...any) { g.l.Error("gnet: " + fmt.Sprintf(f, a...)) }
func (g gnetLogger) Fatalf(f string, a ...any) { g.l.Error("gnet: fatal: " + fmt.Sprintf(f, a...)) }
