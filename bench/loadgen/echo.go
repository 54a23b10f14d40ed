package loadgen

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"golang.org/x/sys/unix"
)

// EchoConfig describes one echo run over already-open connections.
type EchoConfig struct {
	Size  int     // payload bytes per message
	Batch int     // frames per write system call; < 1 means 1
	Rate  float64 // total messages per second over all connections; 0 = closed loop
	Text  bool    // send text frames instead of binary
	// Warmup runs before the measured window; Duration is the window;
	// Drain bounds the wait for in-flight echoes afterwards (default 2 s).
	Warmup, Duration, Drain time.Duration
	// Loops is the number of generator goroutines, each with its own epoll
	// set (default 1, leaving the other core to the server on 2 cores).
	Loops int
	// OnWindow, if set, is called on RunEcho's goroutine right after the
	// measured window opens (start=true) and right after it closes.
	OnWindow func(start bool)
	// Progress, when set, receives live counts while the run goes on.
	Progress *Progress
	// Payloads, when set, gives each connection its own message
	// (Payloads[i] for conns[i], sent as a binary message) instead of Size
	// filler bytes: request/response protocols such as SMQ rpc, where each
	// reply is one inbound message.
	Payloads [][]byte
}

// EchoResult is what a run measured inside its window.
type EchoResult struct {
	Conns      int
	Sent       int64         // messages written during the window
	Received   int64         // echoes received during the window
	Window     time.Duration // measured window length
	Hist       *hdrhistogram.Histogram
	Lost       int    // connections that died during the run
	Unexpected int64  // messages with no matching send (server misbehaved)
	FirstError string // first connection error, if any
	Backlogged int64  // fixed rate: sends queued behind a full socket
}

// Latencies are recorded in nanoseconds, from 1 ns to 60 s, 3 significant
// digits (0.1% resolution at any magnitude).
const (
	histMin    = 1
	histMax    = 60_000_000_000
	histDigits = 3
)

// NewHist returns an empty histogram with the run's range.
func NewHist() *hdrhistogram.Histogram { return hdrhistogram.New(histMin, histMax, histDigits) }

// phases of a run, read by every loop on each wake-up.
const (
	phaseWarmup = iota
	phaseMeasure
	phaseDrain
	phaseStop
)

// measureWindow runs a run's clock on the caller's goroutine: it sleeps
// through the warm-up, opens the measured window (phaseMeasure, then
// onWindow(true)), sleeps for its length, closes it (phaseDrain, then
// onWindow(false)) and returns how long it was open.
func measureWindow(phase *atomic.Int32, warmup, duration time.Duration, onWindow func(start bool)) time.Duration {
	time.Sleep(warmup)
	phase.Store(phaseMeasure)
	t0 := time.Now()
	if onWindow != nil {
		onWindow(true)
	}
	time.Sleep(duration - time.Since(t0))
	phase.Store(phaseDrain)
	window := time.Since(t0)
	if onWindow != nil {
		onWindow(false)
	}
	return window
}

// waitDrained waits up to drain for the loops counted in wg to end by
// themselves (their answers in), then tells them to stop and waits.
func waitDrained(phase *atomic.Int32, wg *sync.WaitGroup, drain time.Duration) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(drain):
		phase.Store(phaseStop)
		<-done
	}
}

// maxBacklog is how many unsent bytes a connection may accumulate in fixed
// rate mode before the generator gives the connection up: an open-loop
// generator must not grow without bound when the server stalls.
const maxBacklog = 8 << 20

// RunEcho drives conns (WebSocket clients from Dial, raw byte streams
// whose echo is counted in messages of Size bytes, or SMQ clients on
// either transport for request/response Payloads). It does not close
// them. It returns when the window and drain are over.
func RunEcho(conns []Conn, cfg EchoConfig) (*EchoResult, error) {
	if len(conns) == 0 {
		return nil, errors.New("loadgen: no connections")
	}
	if cfg.Batch < 1 {
		cfg.Batch = 1
	}
	if cfg.Size < 0 {
		return nil, errors.New("loadgen: negative size")
	}
	if cfg.Loops < 1 {
		cfg.Loops = 1
	}
	if cfg.Loops > len(conns) {
		cfg.Loops = len(conns)
	}
	if cfg.Drain <= 0 {
		cfg.Drain = 2 * time.Second
	}
	if cfg.Duration <= 0 {
		return nil, errors.New("loadgen: duration must be positive")
	}
	if cfg.Payloads != nil && len(cfg.Payloads) < len(conns) {
		return nil, errors.New("loadgen: fewer payloads than connections")
	}
	for i := range conns {
		if conns[i].Framing == FramingStream && cfg.Size < 1 && cfg.Payloads == nil {
			return nil, errors.New("loadgen: a raw stream echo needs a message size of at least 1 byte")
		}
	}
	op := byte(opBin)
	if cfg.Text {
		op = opText
	}
	payload := make([]byte, cfg.Size)
	for i := range payload {
		payload[i] = 'a' + byte(i%26) // valid UTF-8 for text frames
	}
	var phase atomic.Int32
	base := time.Now()
	loops := make([]*echoLoop, cfg.Loops)
	for i := range loops {
		l, err := newEchoLoop(&phase, base, cfg)
		if err != nil {
			for _, p := range loops[:i] {
				p.closeFDs()
			}
			return nil, err
		}
		loops[i] = l
	}
	for i := range conns {
		l := loops[i%len(loops)]
		c := &echoConn{pend: conns[i].Extra, mask: [4]byte{byte(i), byte(i >> 8), 0x5a, 0xa5}}
		conns[i].attach(&c.wside, int32(len(l.conns)), l.epfd)
		p, fop := payload, op
		if cfg.Payloads != nil {
			p, fop = cfg.Payloads[i], opBin
		}
		c.fixed = len(p) // a byte stream echoes in messages of this size
		c.frame = make([]byte, 0, cfg.Batch*(len(p)+14))
		for k := 0; k < cfg.Batch; k++ {
			c.frame = c.appendFrame(c.frame, fop, p, c.mask)
		}
		l.conns = append(l.conns, c)
	}
	for _, l := range loops {
		if err := l.register(); err != nil {
			for _, p := range loops {
				p.closeFDs()
			}
			return nil, err
		}
	}
	if cfg.Rate > 0 {
		for _, l := range loops {
			share := cfg.Rate * float64(len(l.conns)) / float64(len(conns))
			l.interval = int64(float64(cfg.Batch) / share * 1e9)
			if l.interval < 1 {
				l.interval = 1
			}
		}
	}
	var wg sync.WaitGroup
	for _, l := range loops {
		wg.Add(1)
		go func() { defer wg.Done(); l.run() }()
	}
	window := measureWindow(&phase, cfg.Warmup, cfg.Duration, cfg.OnWindow)
	waitDrained(&phase, &wg, cfg.Drain)
	res := &EchoResult{Conns: len(conns), Window: window, Hist: NewHist()}
	for _, l := range loops {
		res.Hist.Merge(l.hist)
		res.Sent += l.sent
		res.Received += l.received
		res.Lost += l.lost
		res.Unexpected += l.unexpected
		res.Backlogged += l.backlogged
		if res.FirstError == "" {
			res.FirstError = l.firstErr
		}
		l.closeFDs()
	}
	return res, nil
}

// echoConn is one connection, owned by exactly one echoLoop goroutine.
type echoConn struct {
	wside
	frame  []byte  // Batch pre-encoded frames, written as one unit
	pend   []byte  // partial inbound frame
	stamps []int64 // FIFO of intended send times (ns since base)
	head   int     // index of the oldest stamp
	mask   [4]byte
}

func (c *echoConn) inflight() int { return len(c.stamps) - c.head }

func (c *echoConn) pop() (int64, bool) {
	if c.head >= len(c.stamps) {
		return 0, false
	}
	v := c.stamps[c.head]
	c.head++
	if c.head == len(c.stamps) {
		c.stamps, c.head = c.stamps[:0], 0
	} else if c.head > 4096 && c.head*2 > len(c.stamps) {
		n := copy(c.stamps, c.stamps[c.head:])
		c.stamps, c.head = c.stamps[:n], 0
	}
	return v, true
}

// echoLoop is one generator goroutine: an epoll set, a timerfd for fixed
// rate sends, and its connections. Nothing in it is shared; totals are read
// by RunEcho after the goroutine has ended.
type echoLoop struct {
	phase    *atomic.Int32
	base     time.Time
	cfg      EchoConfig
	epfd     int
	tfd      int // timerfd, fixed rate only; -1 otherwise
	conns    []*echoConn
	buf      []byte
	hist     *hdrhistogram.Histogram
	interval int64 // ns between batch sends in fixed rate mode
	nextDue  int64
	rr       int

	sent, received, unexpected, backlogged int64
	failures
	live progressOut
}

// tfdTag marks the timerfd in epoll events (connection events carry the
// connection's index).
const tfdTag = -1

func newEchoLoop(phase *atomic.Int32, base time.Time, cfg EchoConfig) (*echoLoop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("loadgen: epoll_create: %w", err)
	}
	l := &echoLoop{phase: phase, base: base, cfg: cfg, epfd: epfd, tfd: -1,
		buf: make([]byte, 256<<10), hist: NewHist(), live: progressOut{p: cfg.Progress}}
	if cfg.Rate > 0 {
		tfd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
		if err != nil {
			_ = unix.Close(epfd)
			return nil, fmt.Errorf("loadgen: timerfd_create: %w", err)
		}
		l.tfd = tfd
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: tfdTag}
		if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, tfd, &ev); err != nil {
			l.closeFDs()
			return nil, fmt.Errorf("loadgen: epoll_ctl timerfd: %w", err)
		}
	}
	return l, nil
}

func (l *echoLoop) register() error {
	for _, c := range l.conns {
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: c.idx}
		if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, c.fd, &ev); err != nil {
			return fmt.Errorf("loadgen: epoll_ctl: %w", err)
		}
	}
	return nil
}

// closeFDs closes the loop's own descriptors, not the connections'.
func (l *echoLoop) closeFDs() {
	if l.tfd >= 0 {
		_ = unix.Close(l.tfd)
		l.tfd = -1
	}
	if l.epfd >= 0 {
		_ = unix.Close(l.epfd)
		l.epfd = -1
	}
}

func (l *echoLoop) now() int64 { return int64(time.Since(l.base)) }

func (l *echoLoop) run() {
	events := make([]unix.EpollEvent, 256)
	now := l.now()
	// Bytes that came with the handshake are parsed first.
	for _, c := range l.conns {
		if len(c.pend) > 0 {
			p := c.pend
			c.pend = nil
			l.consume(c, p, now)
		}
	}
	if l.interval > 0 {
		l.nextDue = now
		l.fire(now)
	} else {
		for _, c := range l.conns {
			l.send(c, now)
		}
	}
	for {
		ph := l.phase.Load()
		if ph == phaseStop {
			return
		}
		if ph == phaseDrain && l.inflight() == 0 {
			return
		}
		l.live.publish(l.lost)
		n, err := unix.EpollWait(l.epfd, events, 20)
		if err != nil && err != unix.EINTR {
			l.fail(nil, fmt.Errorf("epoll_wait: %w", err))
			return
		}
		if n <= 0 {
			continue
		}
		now := l.now()
		for _, ev := range events[:n] {
			if ev.Fd == tfdTag {
				var tmp [8]byte
				_, _ = unix.Read(l.tfd, tmp[:])
				l.fire(now)
				continue
			}
			c := l.conns[ev.Fd]
			if c.dead {
				continue
			}
			if ev.Events&unix.EPOLLOUT != 0 {
				l.flush(c)
			}
			if ev.Events&(unix.EPOLLIN|unix.EPOLLERR|unix.EPOLLHUP|unix.EPOLLRDHUP) != 0 {
				l.readConn(c, now)
			}
		}
	}
}

func (l *echoLoop) inflight() int {
	n := 0
	for _, c := range l.conns {
		if !c.dead {
			n += c.inflight()
		}
	}
	return n
}

// fire sends every batch whose intended time has come (fixed rate), round
// robin over the loop's connections, then re-arms the timer. Stamps are the
// intended times, so a stalled server shows up as latency (no coordinated
// omission).
func (l *echoLoop) fire(now int64) {
	if l.phase.Load() >= phaseDrain {
		return
	}
	for l.nextDue <= now {
		for tries := 0; tries < len(l.conns); tries++ {
			c := l.conns[l.rr%len(l.conns)]
			l.rr++
			if !c.dead {
				l.send(c, l.nextDue)
				break
			}
		}
		l.nextDue += l.interval
	}
	wait := l.nextDue - now
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(wait)}
	_ = unix.TimerfdSettime(l.tfd, 0, &spec, nil)
}

// send writes one batch to c, stamping each message with stamp.
func (l *echoLoop) send(c *echoConn, stamp int64) {
	if l.phase.Load() >= phaseDrain || c.dead {
		return
	}
	for k := 0; k < l.cfg.Batch; k++ {
		c.stamps = append(c.stamps, stamp)
	}
	if l.phase.Load() == phaseMeasure {
		l.sent += int64(l.cfg.Batch)
	}
	if len(c.out) > 0 {
		l.backlogged++
		if len(c.out)+len(c.frame) > maxBacklog {
			l.fail(&c.wside, errors.New("generator backlog overflow: server not reading"))
			return
		}
	}
	if err := c.send(c.frame); err != nil {
		l.fail(&c.wside, err)
	}
}

// flush writes queued bytes after EPOLLOUT.
func (l *echoLoop) flush(c *echoConn) {
	if err := c.flush(); err != nil {
		l.fail(&c.wside, err)
	}
}

// readConn reads and consumes what c has.
func (l *echoLoop) readConn(c *echoConn, now int64) {
	err := c.readAll(l.buf, func(b []byte) bool {
		l.consume(c, b, now)
		return !c.dead
	})
	if err != nil {
		l.fail(&c.wside, err)
	}
}

// consume parses inbound bytes: each complete data message pops one stamp.
func (l *echoLoop) consume(c *echoConn, data []byte, now int64) {
	if len(c.pend) > 0 {
		c.pend = append(c.pend, data...)
		data = c.pend
	}
	measuring := l.phase.Load() == phaseMeasure
	for len(data) > 0 {
		f, ok, err := c.parse(data)
		if err != nil {
			l.fail(&c.wside, err)
			return
		}
		if !ok {
			break
		}
		data = data[f.size:]
		switch f.op {
		case opText, opBin, opCont:
			if !f.fin {
				continue
			}
			stamp, ok := c.pop()
			if !ok {
				l.unexpected++
				continue
			}
			l.live.received++
			if measuring {
				l.received++
				lat := now - stamp
				if lat < histMin {
					lat = histMin
				}
				_ = l.hist.RecordValue(lat)
			}
			if l.interval == 0 && c.inflight() == 0 {
				l.send(c, now) // closed loop: next batch once the last echo is in
			}
		case opPing:
			if err := c.send(AppendClientFrame(nil, opPong, f.payload, c.mask)); err != nil {
				l.fail(&c.wside, err)
			}
		case opClose:
			l.fail(&c.wside, errors.New("server sent a close frame"))
			return
		}
		if c.dead {
			return
		}
	}
	// Keep the partial frame; data may alias c.pend, so copy down.
	if len(data) == 0 {
		c.pend = c.pend[:0]
	} else {
		c.pend = append(c.pend[:0:0], data...)
	}
}
