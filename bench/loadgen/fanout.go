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
// in WebSocket messages or SMQ raw frames (the driver does the framing): Bcast for
// the *-bcast peers, SMQ for the broker, NATS for nats-server.
type FanoutProtocol interface {
	// NewConn returns the state of one connection; subscriber is false for
	// publishers. A subscriber listens on topic (0 <= topic < topics); a
	// publisher may publish to any of the topics. Called before the run,
	// on RunFanout's goroutine.
	NewConn(subscriber bool, topic, topics int) FanoutConn
	// MaxTopics is the largest topics value the protocol supports (Bcast
	// has exactly one; 0 means no limit).
	MaxTopics() int
}

// FanoutConn is one connection's protocol state. Its methods run on the
// goroutine of the loop owning the connection only.
type FanoutConn interface {
	// Hello returns the messages to send right after the handshake.
	Hello() [][]byte
	// Inbound interprets one inbound WebSocket message: it calls emit with
	// the published body of every delivery the message carries (the body
	// is only valid during the call), and returns messages to send back.
	Inbound(msg []byte, emit func(body []byte)) (replies [][]byte, err error)
	// Ready reports that setup is complete (e.g. the subscription is
	// acknowledged); publishing starts once every connection is ready.
	Ready() bool
	// AppendPublish appends the message that publishes body to topic.
	AppendPublish(dst []byte, topic int, body []byte) []byte
}

// Bcast is the protocol of the *-bcast peers: every message a client sends
// is written to every subscriber as is. It has one implicit topic.
type Bcast struct{}

// NewConn implements FanoutProtocol.
func (Bcast) NewConn(bool, int, int) FanoutConn { return bcastConn{} }

// MaxTopics implements FanoutProtocol: a broadcast server has one audience.
func (Bcast) MaxTopics() int { return 1 }

type bcastConn struct{}

func (bcastConn) Hello() [][]byte { return nil }
func (bcastConn) Inbound(msg []byte, emit func([]byte)) ([][]byte, error) {
	emit(msg)
	return nil, nil
}
func (bcastConn) Ready() bool                                      { return true }
func (bcastConn) AppendPublish(dst []byte, _ int, b []byte) []byte { return append(dst, b...) }

// Body layout of every publish: bytes 0..8 the send time (ns since the
// run's base), 8..12 the closed-loop slot, 12..16 the slot's generation.
const (
	bodyStamp = 0
	bodySlot  = 8
	bodyGen   = 12
	minBody   = 16
)

// FanoutConfig describes one fan-out run.
type FanoutConfig struct {
	Proto FanoutProtocol
	Size  int // body bytes (at least 16: send time, slot, generation)
	// Rate is publishes per second over all publishers (open loop; the
	// stamps are intended send times). Ignored when InFlight > 0.
	Rate float64
	// InFlight > 0 runs closed loop: each publisher keeps InFlight
	// publishes outstanding and sends the next one when a previous one has
	// reached every subscriber of its topic (or after StallTimeout).
	InFlight int
	// Topics spreads subscribers over this many topics (subscriber i on
	// topic i mod Topics); publishes go to the topics round robin.
	Topics int
	// StallTimeout gives up waiting for a closed-loop publish's last
	// delivery (default 2 s); such publishes are counted in Stalled.
	StallTimeout time.Duration
	// Setup bounds the wait for every connection to be Ready.
	Setup, Warmup, Duration, Drain time.Duration
	Loops                          int
	OnWindow                       func(start bool)
	Progress                       *Progress // live counts, when set
}

// FanoutResult is what a fan-out run measured inside its window.
type FanoutResult struct {
	Subscribers, Publishers int
	Published               int64 // publishes written during the window
	Expected                int64 // deliveries those publishes should cause
	Delivered               int64 // deliveries received during the window
	Completed               int64 // closed loop: publishes that reached all their subscribers in the window
	Stalled                 int64 // closed loop: publishes given up after StallTimeout
	Window                  time.Duration
	Hist                    *hdrhistogram.Histogram // publish (intended) to each delivery, ns
	LastHist                *hdrhistogram.Histogram // closed loop: publish to its last delivery, ns
	Lost                    int
	FirstError              string
	Backlogged              int64
}

// slot is one closed-loop outstanding publish. remaining and gen are shared
// by every loop (deliveries may land on any); the rest belongs to the
// owning loop.
type slot struct {
	remaining atomic.Int32
	gen       atomic.Uint32
	owner     *fanLoop
	pub       *fanConn
	topic     int
	sentAt    int64 // owner only
}

// RunFanout drives subscribers and publishers (fds are not closed). Open
// loop (Rate): the publish schedule is fixed and stamps carry intended send
// times, so a slow server shows as latency, not as a lower offered load.
// Closed loop (InFlight): throughput is what the server sustains with that
// many publishes outstanding.
func RunFanout(subs, pubs []Conn, cfg FanoutConfig) (*FanoutResult, error) {
	if cfg.Proto == nil {
		cfg.Proto = Bcast{}
	}
	if len(subs) == 0 || len(pubs) == 0 {
		return nil, errors.New("loadgen: fanout needs subscribers and publishers")
	}
	if (cfg.Rate <= 0 && cfg.InFlight <= 0) || cfg.Duration <= 0 {
		return nil, errors.New("loadgen: fanout needs a rate or publishes in flight, and a duration")
	}
	if cfg.Topics < 1 {
		cfg.Topics = 1
	}
	if m := cfg.Proto.MaxTopics(); m > 0 && cfg.Topics > m {
		return nil, fmt.Errorf("loadgen: this protocol supports at most %d topic(s)", m)
	}
	if cfg.Topics > len(subs) {
		return nil, errors.New("loadgen: more topics than subscribers")
	}
	if cfg.Size < minBody {
		cfg.Size = minBody
	}
	if cfg.Loops < 1 {
		cfg.Loops = 1
	}
	if cfg.Setup <= 0 {
		cfg.Setup = 20 * time.Second
	}
	if cfg.Drain <= 0 {
		cfg.Drain = 2 * time.Second
	}
	if cfg.StallTimeout <= 0 {
		cfg.StallTimeout = 2 * time.Second
	}
	var phase atomic.Int32
	phase.Store(phaseSetup)
	base := time.Now()
	expected := make([]int32, cfg.Topics)
	for i := range subs {
		expected[i%cfg.Topics]++
	}
	loops := make([]*fanLoop, cfg.Loops)
	closeAll := func() {
		for _, l := range loops {
			if l != nil {
				l.close()
			}
		}
	}
	for i := range loops {
		l := &fanLoop{phase: &phase, base: base, cfg: cfg, epfd: -1, tfd: -1, efd: -1,
			buf: make([]byte, 256<<10), hist: NewHist(), lastHist: NewHist(), expected: expected,
			live: progressOut{p: cfg.Progress}}
		loops[i] = l
		epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("loadgen: epoll_create: %w", err)
		}
		l.epfd = epfd
		l.emit = l.onDelivery
	}
	var ready atomic.Int64
	add := func(c Conn, sub bool, i int) *fanConn {
		l := loops[i%len(loops)]
		topic := 0
		if sub {
			topic = i % cfg.Topics
		}
		fc := &fanConn{pend: c.Extra, sub: sub,
			proto: cfg.Proto.NewConn(sub, topic, cfg.Topics), mask: [4]byte{byte(i), byte(i >> 8), 0x3c, 0xc3}}
		c.attach(&fc.wside, int32(len(l.conns)), l.epfd)
		l.conns = append(l.conns, fc)
		if !sub {
			l.pubs = append(l.pubs, fc)
		}
		return fc
	}
	for i, c := range subs {
		add(c, true, i)
	}
	var slots []*slot
	for i, c := range pubs {
		fc := add(c, false, i)
		for k := 0; k < cfg.InFlight; k++ {
			s := &slot{owner: loops[i%len(loops)], pub: fc, topic: len(slots) % cfg.Topics}
			slots = append(slots, s)
			s.owner.slots = append(s.owner.slots, int32(len(slots)-1))
		}
	}
	for _, l := range loops {
		l.ready = &ready
		l.all = slots
		if err := l.setup(len(pubs)); err != nil {
			closeAll()
			return nil, err
		}
	}
	var wg sync.WaitGroup
	for _, l := range loops {
		wg.Add(1)
		go func() { defer wg.Done(); l.run() }()
	}
	stop := func() {
		phase.Store(phaseStop)
		for _, l := range loops {
			l.wake()
		}
		wg.Wait()
	}
	total := int64(len(subs) + len(pubs))
	deadline := time.Now().Add(cfg.Setup)
	for ready.Load() < total && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := ready.Load(); n < total {
		stop()
		first := ""
		for _, l := range loops {
			if first == "" {
				first = l.firstErr
			}
		}
		closeAll()
		if first != "" {
			first = " (first error: " + first + ")"
		}
		return nil, fmt.Errorf("loadgen: only %d of %d connections ready after %v%s", n, total, cfg.Setup, first)
	}
	phase.Store(phaseWarmup)
	for _, l := range loops {
		l.wake()
	}
	window := measureWindow(&phase, cfg.Warmup, cfg.Duration, cfg.OnWindow)
	// Deliveries still in flight arrive during the drain; they are not
	// counted (outside the window), but waiting lets the server finish.
	time.Sleep(min(cfg.Drain, 200*time.Millisecond))
	stop()
	res := &FanoutResult{Subscribers: len(subs), Publishers: len(pubs), Window: window,
		Hist: NewHist(), LastHist: NewHist()}
	for _, l := range loops {
		res.Hist.Merge(l.hist)
		res.LastHist.Merge(l.lastHist)
		res.Published += l.published
		res.Expected += l.expectedN
		res.Delivered += l.delivered
		res.Completed += l.completed
		res.Stalled += l.stalled
		res.Lost += l.lost
		res.Backlogged += l.backlogged
		if res.FirstError == "" {
			res.FirstError = l.firstErr
		}
	}
	closeAll()
	return res, nil
}

// phaseSetup precedes phaseWarmup in a fan-out run: connections exchange
// their Hello messages, nobody publishes.
const phaseSetup = -1

// efdTag marks the eventfd that wakes a loop for cross-loop completions.
const efdTag = -2

// fanConn is one connection, owned by one fanLoop.
type fanConn struct {
	wside
	sub     bool
	proto   FanoutConn
	pend    []byte
	mask    [4]byte
	counted bool // already counted as ready
	rr      int  // publisher: next topic (open loop)
}

// fanLoop is one generator goroutine of a fan-out run.
type fanLoop struct {
	phase    *atomic.Int32
	ready    *atomic.Int64
	base     time.Time
	cfg      FanoutConfig
	epfd     int
	tfd      int
	efd      int // eventfd: other loops completed one of our slots
	conns    []*fanConn
	pubs     []*fanConn
	buf      []byte
	wbuf     []byte // scratch for one outbound frame
	body     []byte
	msg      []byte
	hist     *hdrhistogram.Histogram
	lastHist *hdrhistogram.Histogram
	interval int64
	nextDue  int64
	rr       int
	now      int64 // time of the current wake-up
	emit     func([]byte)
	cur      *fanConn // connection whose input is being parsed
	expected []int32  // subscribers per topic

	all      []*slot // every slot of the run (read-only after setup)
	slots    []int32 // indexes of this loop's slots
	doneMu   sync.Mutex
	doneIn   []int32 // completions posted by other loops
	doneHere []int32 // completions found by this loop
	lastScan int64

	published, expectedN, delivered, completed, stalled, backlogged int64
	failures
	live progressOut
}

func (l *fanLoop) setup(totalPubs int) error {
	for _, c := range l.conns {
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: c.idx}
		if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, c.fd, &ev); err != nil {
			return fmt.Errorf("loadgen: epoll_ctl: %w", err)
		}
	}
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return fmt.Errorf("loadgen: eventfd: %w", err)
	}
	l.efd = efd
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: efdTag}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, efd, &ev); err != nil {
		return fmt.Errorf("loadgen: epoll_ctl eventfd: %w", err)
	}
	if len(l.pubs) > 0 && l.cfg.InFlight <= 0 {
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
	for i := minBody; i < len(l.body); i++ {
		l.body[i] = 'a' + byte(i%26)
	}
	return nil
}

func (l *fanLoop) close() {
	for _, fd := range []*int{&l.tfd, &l.efd, &l.epfd} {
		if *fd >= 0 {
			_ = unix.Close(*fd)
			*fd = -1
		}
	}
}

// wake interrupts the loop's epoll_wait (any goroutine).
func (l *fanLoop) wake() {
	if l.efd >= 0 {
		var one [8]byte
		binary.LittleEndian.PutUint64(one[:], 1)
		_, _ = unix.Write(l.efd, one[:])
	}
}

func (l *fanLoop) clock() int64 { return int64(time.Since(l.base)) }

func (l *fanLoop) run() {
	events := make([]unix.EpollEvent, 256)
	l.now = l.clock()
	for _, c := range l.conns {
		for _, m := range c.proto.Hello() {
			l.write(c, m)
		}
		l.checkReady(c)
		if len(c.pend) > 0 {
			p := c.pend
			c.pend = nil
			l.consume(c, p)
		}
	}
	armed := false
	for {
		ph := l.phase.Load()
		if ph == phaseStop {
			return
		}
		if !armed && ph >= phaseWarmup {
			armed = true
			l.now = l.clock()
			if l.tfd >= 0 {
				l.nextDue = l.now
				l.fire(l.nextDue)
			}
			for _, s := range l.slots {
				l.publishSlot(s)
			}
		}
		l.live.publish(l.lost)
		n, err := unix.EpollWait(l.epfd, events, 20)
		if err != nil && err != unix.EINTR {
			l.fail(nil, fmt.Errorf("epoll_wait: %w", err))
			return
		}
		l.now = l.clock()
		for _, ev := range events[:max(n, 0)] {
			switch ev.Fd {
			case tfdTag:
				var tmp [8]byte
				_, _ = unix.Read(l.tfd, tmp[:])
				l.fire(l.now)
				continue
			case efdTag:
				var tmp [8]byte
				_, _ = unix.Read(l.efd, tmp[:])
				l.doneMu.Lock()
				l.doneHere = append(l.doneHere, l.doneIn...)
				l.doneIn = l.doneIn[:0]
				l.doneMu.Unlock()
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
				l.readConn(c)
			}
		}
		if armed && len(l.slots) > 0 {
			l.closedLoop()
		}
	}
}

// closedLoop re-publishes completed slots and gives up on stalled ones.
func (l *fanLoop) closedLoop() {
	for len(l.doneHere) > 0 {
		done := l.doneHere
		l.doneHere = nil
		for _, s := range done {
			l.publishSlot(s)
		}
	}
	if l.now-l.lastScan < int64(50*time.Millisecond) {
		return
	}
	l.lastScan = l.now
	limit := int64(l.cfg.StallTimeout)
	for _, i := range l.slots {
		s := l.all[i]
		if s.sentAt > 0 && l.now-s.sentAt > limit && s.remaining.Load() > 0 {
			if l.phase.Load() == phaseMeasure {
				l.stalled++
			}
			l.publishSlot(i)
		}
	}
}

// publishSlot (owner loop) sends slot i's next publish: new generation,
// full subscriber count outstanding.
func (l *fanLoop) publishSlot(i int32) {
	ph := l.phase.Load()
	if ph >= phaseDrain || ph < phaseWarmup {
		return
	}
	s := l.all[i]
	if s.pub.dead {
		return
	}
	gen := s.gen.Add(1)
	s.remaining.Store(l.expected[s.topic])
	s.sentAt = l.now
	binary.BigEndian.PutUint64(l.body[bodyStamp:], uint64(l.now))
	binary.BigEndian.PutUint32(l.body[bodySlot:], uint32(i)+1)
	binary.BigEndian.PutUint32(l.body[bodyGen:], gen)
	l.msg = s.pub.proto.AppendPublish(l.msg[:0], s.topic, l.body)
	l.write(s.pub, l.msg)
	if ph == phaseMeasure {
		l.published++
		l.expectedN += int64(l.expected[s.topic])
	}
}

func (l *fanLoop) checkReady(c *fanConn) {
	if !c.counted && c.proto.Ready() {
		c.counted = true
		l.ready.Add(1)
	}
}

// fire publishes everything due (open loop), round robin over the loop's
// publishers and each publisher's topics.
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
				topic := c.rr % l.cfg.Topics
				c.rr++
				binary.BigEndian.PutUint64(l.body[bodyStamp:], uint64(l.nextDue))
				binary.BigEndian.PutUint32(l.body[bodySlot:], 0)
				l.msg = c.proto.AppendPublish(l.msg[:0], topic, l.body)
				l.write(c, l.msg)
				if ph == phaseMeasure {
					l.published++
					l.expectedN += int64(l.expected[topic])
				}
				break
			}
		}
		l.nextDue += l.interval
	}
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(l.nextDue - now)}
	_ = unix.TimerfdSettime(l.tfd, 0, &spec, nil)
}

// onDelivery is the emit callback: one published body reached l.cur.
func (l *fanLoop) onDelivery(body []byte) {
	c := l.cur
	if c == nil || !c.sub || len(body) < minBody {
		return
	}
	stamp := int64(binary.BigEndian.Uint64(body[bodyStamp:]))
	l.live.received++
	if l.phase.Load() == phaseMeasure {
		l.delivered++
		_ = l.hist.RecordValue(max(l.now-stamp, histMin))
	}
	si := binary.BigEndian.Uint32(body[bodySlot:])
	if si == 0 || int(si) > len(l.all) {
		return
	}
	s := l.all[si-1]
	if s.gen.Load() != binary.BigEndian.Uint32(body[bodyGen:]) {
		return // a late delivery of a publish given up on
	}
	if s.remaining.Add(-1) != 0 {
		return
	}
	if l.phase.Load() == phaseMeasure {
		l.completed++
		_ = l.lastHist.RecordValue(max(l.now-stamp, histMin))
	}
	if s.owner == l {
		l.doneHere = append(l.doneHere, int32(si-1))
		return
	}
	s.owner.doneMu.Lock()
	s.owner.doneIn = append(s.owner.doneIn, int32(si-1))
	s.owner.doneMu.Unlock()
	s.owner.wake()
}

// write frames msg as one binary message (masked WebSocket frame, or
// length-prefixed on SMQ's raw transport) and writes or queues it.
func (l *fanLoop) write(c *fanConn, msg []byte) {
	if c.dead {
		return
	}
	if len(c.out) > 0 {
		l.backlogged++
		if len(c.out) > maxBacklog {
			l.fail(&c.wside, errors.New("generator backlog overflow: server not reading"))
			return
		}
	}
	l.wbuf = c.appendFrame(l.wbuf[:0], opBin, msg, c.mask)
	if err := c.send(l.wbuf); err != nil {
		l.fail(&c.wside, err)
	}
}

func (l *fanLoop) flush(c *fanConn) {
	if err := c.flush(); err != nil {
		l.fail(&c.wside, err)
	}
}

// readConn reads and consumes what c has.
func (l *fanLoop) readConn(c *fanConn) {
	err := c.readAll(l.buf, func(b []byte) bool {
		l.consume(c, b)
		return !c.dead
	})
	if err != nil {
		l.fail(&c.wside, err)
	}
}

// consume parses inbound frames and hands messages to the protocol.
// Fragmented messages are not reassembled: pub/sub messages here are small.
func (l *fanLoop) consume(c *fanConn, data []byte) {
	if len(c.pend) > 0 {
		c.pend = append(c.pend, data...)
		data = c.pend
	}
	for len(data) > 0 && !c.dead {
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
		case opText, opBin:
			l.cur = c
			replies, err := c.proto.Inbound(f.payload, l.emit)
			l.cur = nil
			if err != nil {
				l.fail(&c.wside, err)
				return
			}
			for _, r := range replies {
				l.write(c, r)
			}
			l.checkReady(c)
		case opPing:
			if err := c.send(AppendClientFrame(nil, opPong, f.payload, c.mask)); err != nil {
				l.fail(&c.wside, err)
			}
		case opClose:
			l.fail(&c.wside, errors.New("server sent a close frame"))
			return
		}
	}
	if len(data) == 0 {
		c.pend = c.pend[:0]
	} else {
		c.pend = append(c.pend[:0:0], data...)
	}
}
