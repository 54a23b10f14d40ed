package loadgen

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"golang.org/x/sys/unix"
)

// FanoutProtocol adapts the fan-out scenario to a pub/sub protocol carried
// in WebSocket messages (the driver does the WebSocket framing). The
// broadcast peers need no protocol at all (Bcast); an SMQ adapter (init,
// subscribe, publish to a topic id) plugs in here.
type FanoutProtocol interface {
	// NewConn returns the state of one connection; subscriber is false for
	// publishers. Called before the run, on RunFanout's goroutine.
	NewConn(subscriber bool) FanoutConn
}

// FanoutConn is one connection's protocol state. Its methods run on the
// goroutine of the loop owning the connection only.
type FanoutConn interface {
	// Hello returns the messages to send right after the handshake.
	Hello() [][]byte
	// Inbound interprets one inbound message: body is the published body
	// when msg is a delivery (else nil); replies are messages to send back.
	Inbound(msg []byte) (body []byte, replies [][]byte, err error)
	// Ready reports that setup is complete (e.g. the subscription is
	// acknowledged); publishing starts once every connection is ready.
	Ready() bool
	// AppendPublish appends the message that publishes body.
	AppendPublish(dst, body []byte) []byte
}

// Bcast is the protocol of the *-bcast peers: every message a client sends
// is written to every subscriber as is.
type Bcast struct{}

// NewConn implements FanoutProtocol.
func (Bcast) NewConn(bool) FanoutConn { return bcastConn{} }

type bcastConn struct{}

func (bcastConn) Hello() [][]byte                              { return nil }
func (bcastConn) Inbound(msg []byte) ([]byte, [][]byte, error) { return msg, nil, nil }
func (bcastConn) Ready() bool                                  { return true }
func (bcastConn) AppendPublish(dst, body []byte) []byte        { return append(dst, body...) }

// FanoutConfig describes one fan-out run.
type FanoutConfig struct {
	Proto FanoutProtocol
	Size  int     // body bytes (at least 8: the first 8 carry the send time)
	Rate  float64 // publishes per second over all publishers
	// Setup bounds the wait for every connection to be Ready.
	Setup, Warmup, Duration, Drain time.Duration
	Loops                          int
	OnWindow                       func(start bool)
}

// FanoutResult is what a fan-out run measured inside its window.
type FanoutResult struct {
	Subscribers, Publishers int
	Published               int64 // publishes written during the window
	Delivered               int64 // deliveries received during the window
	Window                  time.Duration
	Hist                    *hdrhistogram.Histogram // publish (intended) to delivery, ns
	Lost                    int
	FirstError              string
	Backlogged              int64
}

// Conn is an open client connection: a non-blocking fd from DialWS and the
// bytes that came with its handshake.
type Conn struct {
	FD    int
	Extra []byte
}

// RunFanout drives subscribers and publishers (fds are not closed). The
// publish schedule is fixed rate and stamps carry intended send times, so a
// slow server shows as latency, not as a lower offered load.
func RunFanout(subs, pubs []Conn, cfg FanoutConfig) (*FanoutResult, error) {
	if cfg.Proto == nil {
		cfg.Proto = Bcast{}
	}
	if len(subs) == 0 || len(pubs) == 0 {
		return nil, errors.New("loadgen: fanout needs subscribers and publishers")
	}
	if cfg.Rate <= 0 || cfg.Duration <= 0 {
		return nil, errors.New("loadgen: fanout needs a rate and a duration")
	}
	if cfg.Size < 8 {
		cfg.Size = 8
	}
	if cfg.Loops < 1 {
		cfg.Loops = 1
	}
	if cfg.Setup <= 0 {
		cfg.Setup = 10 * time.Second
	}
	if cfg.Drain <= 0 {
		cfg.Drain = 2 * time.Second
	}
	var phase atomic.Int32
	phase.Store(phaseSetup)
	base := time.Now()
	loops := make([]*fanLoop, cfg.Loops)
	for i := range loops {
		epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			for _, l := range loops[:i] {
				l.close()
			}
			return nil, fmt.Errorf("loadgen: epoll_create: %w", err)
		}
		loops[i] = &fanLoop{phase: &phase, base: base, cfg: cfg, epfd: epfd, tfd: -1,
			buf: make([]byte, 256<<10), hist: NewHist()}
	}
	var ready atomic.Int64
	add := func(c Conn, sub bool, i int) {
		l := loops[i%len(loops)]
		fc := &fanConn{fd: c.FD, pend: c.Extra, sub: sub, proto: cfg.Proto.NewConn(sub),
			mask: [4]byte{byte(i), byte(i >> 8), 0x3c, 0xc3}, idx: int32(len(l.conns))}
		l.conns = append(l.conns, fc)
		if !sub {
			l.pubs = append(l.pubs, fc)
		}
	}
	for i, c := range subs {
		add(c, true, i)
	}
	for i, c := range pubs {
		add(c, false, i)
	}
	for _, l := range loops {
		l.ready = &ready
		if err := l.setup(len(pubs)); err != nil {
			for _, x := range loops {
				x.close()
			}
			return nil, err
		}
	}
	var wg sync.WaitGroup
	for _, l := range loops {
		wg.Add(1)
		go func() { defer wg.Done(); l.run() }()
	}
	total := int64(len(subs) + len(pubs))
	deadline := time.Now().Add(cfg.Setup)
	for ready.Load() < total && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	var setupErr error
	if ready.Load() < total {
		setupErr = fmt.Errorf("loadgen: only %d of %d connections ready after %v", ready.Load(), total, cfg.Setup)
		phase.Store(phaseStop)
		wg.Wait()
		for _, l := range loops {
			l.close()
		}
		return nil, setupErr
	}
	phase.Store(phaseWarmup)
	time.Sleep(cfg.Warmup)
	phase.Store(phaseMeasure)
	t0 := time.Now()
	if cfg.OnWindow != nil {
		cfg.OnWindow(true)
	}
	time.Sleep(cfg.Duration - time.Since(t0))
	phase.Store(phaseDrain)
	window := time.Since(t0)
	if cfg.OnWindow != nil {
		cfg.OnWindow(false)
	}
	// Deliveries still in flight arrive during the drain; they are not
	// counted (outside the window), but waiting lets the server finish.
	time.Sleep(min(cfg.Drain, 200*time.Millisecond))
	phase.Store(phaseStop)
	wg.Wait()
	res := &FanoutResult{Subscribers: len(subs), Publishers: len(pubs), Window: window, Hist: NewHist()}
	for _, l := range loops {
		res.Hist.Merge(l.hist)
		res.Published += l.published
		res.Delivered += l.delivered
		res.Lost += l.lost
		res.Backlogged += l.backlogged
		if res.FirstError == "" {
			res.FirstError = l.firstErr
		}
		l.close()
	}
	return res, nil
}

// phaseSetup precedes phaseWarmup in a fan-out run: connections exchange
// their Hello messages, nobody publishes.
const phaseSetup = -1

// fanConn is one connection, owned by one fanLoop.
type fanConn struct {
	fd      int
	sub     bool
	proto   FanoutConn
	out     []byte
	pend    []byte
	mask    [4]byte
	idx     int32
	dead    bool
	outArm  bool
	counted bool // already counted as ready
}

// fanLoop is one generator goroutine of a fan-out run.
type fanLoop struct {
	phase    *atomic.Int32
	ready    *atomic.Int64
	base     time.Time
	cfg      FanoutConfig
	epfd     int
	tfd      int
	conns    []*fanConn
	pubs     []*fanConn
	buf      []byte
	wbuf     []byte // scratch for one outbound frame
	body     []byte
	msg      []byte
	hist     *hdrhistogram.Histogram
	interval int64
	nextDue  int64
	rr       int

	published, delivered, backlogged int64
	lost                             int
	firstErr                         string
}

func (l *fanLoop) setup(totalPubs int) error {
	for _, c := range l.conns {
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: c.idx}
		if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, c.fd, &ev); err != nil {
			return fmt.Errorf("loadgen: epoll_ctl: %w", err)
		}
	}
	if len(l.pubs) > 0 {
		tfd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
		if err != nil {
			return fmt.Errorf("loadgen: timerfd_create: %w", err)
		}
		l.tfd = tfd
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: tfdTag}
		if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, tfd, &ev); err != nil {
			return fmt.Errorf("loadgen: epoll_ctl timerfd: %w", err)
		}
		share := l.cfg.Rate * float64(len(l.pubs)) / float64(totalPubs)
		l.interval = max(1, int64(1e9/share))
	}
	l.body = make([]byte, l.cfg.Size)
	for i := 8; i < len(l.body); i++ {
		l.body[i] = 'a' + byte(i%26)
	}
	return nil
}

func (l *fanLoop) close() {
	if l.tfd >= 0 {
		_ = unix.Close(l.tfd)
		l.tfd = -1
	}
	if l.epfd >= 0 {
		_ = unix.Close(l.epfd)
		l.epfd = -1
	}
}

func (l *fanLoop) now() int64 { return int64(time.Since(l.base)) }

func (l *fanLoop) run() {
	events := make([]unix.EpollEvent, 256)
	for _, c := range l.conns {
		for _, m := range c.proto.Hello() {
			l.write(c, m)
		}
		l.checkReady(c)
		if len(c.pend) > 0 {
			p := c.pend
			c.pend = nil
			l.consume(c, p, l.now())
		}
	}
	armed := false
	for {
		ph := l.phase.Load()
		if ph == phaseStop {
			return
		}
		if !armed && ph >= phaseWarmup && l.tfd >= 0 {
			armed = true
			l.nextDue = l.now()
			l.fire(l.nextDue)
		}
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

func (l *fanLoop) checkReady(c *fanConn) {
	if !c.counted && c.proto.Ready() {
		c.counted = true
		l.ready.Add(1)
	}
}

// fire publishes everything due, round robin over the loop's publishers.
func (l *fanLoop) fire(now int64) {
	ph := l.phase.Load()
	if ph >= phaseDrain || ph < phaseWarmup {
		return
	}
	for l.nextDue <= now {
		for tries := 0; tries < len(l.pubs); tries++ {
			c := l.pubs[l.rr%len(l.pubs)]
			l.rr++
			if !c.dead {
				binary.BigEndian.PutUint64(l.body, uint64(l.nextDue))
				l.msg = c.proto.AppendPublish(l.msg[:0], l.body)
				l.write(c, l.msg)
				if ph == phaseMeasure {
					l.published++
				}
				break
			}
		}
		l.nextDue += l.interval
	}
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(l.nextDue - now)}
	_ = unix.TimerfdSettime(l.tfd, 0, &spec, nil)
}

// write frames msg as one masked binary message and writes or queues it.
func (l *fanLoop) write(c *fanConn, msg []byte) {
	if c.dead {
		return
	}
	if len(c.out) > 0 {
		l.backlogged++
		if len(c.out) > maxBacklog {
			l.fail(c, errors.New("generator backlog overflow: server not reading"))
			return
		}
		c.out = AppendClientFrame(c.out, opBin, msg, c.mask)
		return
	}
	l.wbuf = AppendClientFrame(l.wbuf[:0], opBin, msg, c.mask)
	frame := l.wbuf
	n, err := unix.Write(c.fd, frame)
	if err != nil {
		if err != unix.EAGAIN && err != unix.EINTR {
			l.fail(c, fmt.Errorf("write: %w", err))
			return
		}
		n = 0
	}
	if n < len(frame) {
		c.out = append(c.out[:0], frame[n:]...)
		l.armOut(c, true)
	}
}

func (l *fanLoop) armOut(c *fanConn, on bool) {
	if c.outArm == on {
		return
	}
	c.outArm = on
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: c.idx}
	if on {
		ev.Events |= unix.EPOLLOUT
	}
	_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, c.fd, &ev)
}

func (l *fanLoop) flush(c *fanConn) {
	for len(c.out) > 0 {
		n, err := unix.Write(c.fd, c.out)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			return
		}
		if err != nil {
			l.fail(c, fmt.Errorf("write: %w", err))
			return
		}
		c.out = c.out[:copy(c.out, c.out[n:])]
	}
	l.armOut(c, false)
}

func (l *fanLoop) readConn(c *fanConn, now int64) {
	n, err := unix.Read(c.fd, l.buf)
	if err == unix.EAGAIN || err == unix.EINTR {
		return
	}
	if err != nil {
		l.fail(c, fmt.Errorf("read: %w", err))
		return
	}
	if n == 0 {
		l.fail(c, errors.New("server closed the connection"))
		return
	}
	l.consume(c, l.buf[:n], now)
}

// consume parses inbound frames and hands messages to the protocol.
// Fragmented messages are not reassembled: pub/sub messages here are small.
func (l *fanLoop) consume(c *fanConn, data []byte, now int64) {
	if len(c.pend) > 0 {
		c.pend = append(c.pend, data...)
		data = c.pend
	}
	measuring := l.phase.Load() == phaseMeasure
	for len(data) > 0 && !c.dead {
		f, ok, err := parseFrame(data)
		if err != nil {
			l.fail(c, err)
			return
		}
		if !ok {
			break
		}
		data = data[f.size:]
		switch f.op {
		case opText, opBin:
			body, replies, err := c.proto.Inbound(f.payload)
			if err != nil {
				l.fail(c, err)
				return
			}
			for _, r := range replies {
				l.write(c, r)
			}
			l.checkReady(c)
			if body != nil && c.sub && measuring && len(body) >= 8 {
				l.delivered++
				lat := now - int64(binary.BigEndian.Uint64(body))
				_ = l.hist.RecordValue(max(lat, histMin))
			}
		case opPing:
			c.out = AppendClientFrame(c.out, opPong, f.payload, c.mask)
			l.flush(c)
		case opClose:
			l.fail(c, errors.New("server sent a close frame"))
			return
		}
	}
	if len(data) == 0 {
		c.pend = c.pend[:0]
	} else {
		c.pend = append(c.pend[:0:0], data...)
	}
}

func (l *fanLoop) fail(c *fanConn, err error) {
	if l.firstErr == "" {
		l.firstErr = err.Error()
	}
	if c == nil || c.dead {
		return
	}
	c.dead = true
	l.lost++
	_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
}
