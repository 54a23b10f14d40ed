package loadgen

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"golang.org/x/sys/unix"
)

// HTTPConfig describes one http run: keep-alive connections from
// DialMany with KindHTTP (plain or TLS), each with one GET outstanding
// (closed loop).
type HTTPConfig struct {
	Path, Host string
	// Warmup runs before the measured window; Duration is the window;
	// Drain bounds the wait for in-flight responses (default 2 s).
	Warmup, Duration, Drain time.Duration
	Loops                   int
	OnWindow                func(start bool)
	Progress                *Progress // live counts, when set
}

// RunHTTP drives conns with GET requests, one outstanding per connection,
// and measures request to complete response. The result's Received is
// the number of responses in the window; Unexpected counts non-2xx ones.
// It does not close the connections.
func RunHTTP(conns []Conn, cfg HTTPConfig) (*EchoResult, error) {
	if len(conns) == 0 {
		return nil, errors.New("loadgen: no connections")
	}
	if cfg.Duration <= 0 {
		return nil, errors.New("loadgen: duration must be positive")
	}
	if cfg.Path == "" {
		cfg.Path = "/"
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
	req := []byte("GET " + cfg.Path + " HTTP/1.1\r\nHost: " + cfg.Host + "\r\nUser-Agent: tarpon-bench\r\n\r\n")
	var phase atomic.Int32
	base := time.Now()
	loops := make([]*httpLoop, cfg.Loops)
	closeAll := func() {
		for _, l := range loops {
			if l != nil && l.epfd >= 0 {
				_ = unix.Close(l.epfd)
				l.epfd = -1
			}
		}
	}
	for i := range loops {
		epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("loadgen: epoll_create: %w", err)
		}
		loops[i] = &httpLoop{phase: &phase, base: base, epfd: epfd, req: req, buf: make([]byte, 64<<10), hist: NewHist(),
			live: progressOut{p: cfg.Progress}}
	}
	for i := range conns {
		l := loops[i%len(loops)]
		c := &httpConn{}
		conns[i].attach(&c.wside, int32(len(l.conns)), l.epfd)
		l.conns = append(l.conns, c)
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: c.idx}
		if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, c.fd, &ev); err != nil {
			closeAll()
			return nil, fmt.Errorf("loadgen: epoll_ctl: %w", err)
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
		res.Unexpected += l.bad
		if res.FirstError == "" {
			res.FirstError = l.firstErr
		}
	}
	closeAll()
	return res, nil
}

type httpConn struct {
	wside
	in     []byte
	sentAt int64
	busy   bool // a request is outstanding
}

type httpLoop struct {
	phase *atomic.Int32
	base  time.Time
	epfd  int
	req   []byte
	buf   []byte
	conns []*httpConn
	hist  *hdrhistogram.Histogram

	sent, received, bad int64
	failures
	live progressOut
}

func (l *httpLoop) now() int64 { return int64(time.Since(l.base)) }

func (l *httpLoop) run() {
	events := make([]unix.EpollEvent, 256)
	for _, c := range l.conns {
		l.send(c, l.now())
	}
	for {
		ph := l.phase.Load()
		if ph == phaseStop {
			return
		}
		if ph == phaseDrain && l.outstanding() == 0 {
			return
		}
		l.live.publish(l.lost)
		n, err := unix.EpollWait(l.epfd, events, 20)
		if err != nil && err != unix.EINTR {
			l.fail(nil, fmt.Errorf("epoll_wait: %w", err))
			return
		}
		now := l.now()
		for _, ev := range events[:max(n, 0)] {
			c := l.conns[ev.Fd]
			if c.dead {
				continue
			}
			if ev.Events&unix.EPOLLOUT != 0 {
				l.flush(c)
			}
			if ev.Events&(unix.EPOLLIN|unix.EPOLLERR|unix.EPOLLHUP|unix.EPOLLRDHUP) != 0 {
				l.read(c, now)
			}
		}
	}
}

func (l *httpLoop) outstanding() int {
	n := 0
	for _, c := range l.conns {
		if c.busy && !c.dead {
			n++
		}
	}
	return n
}

func (l *httpLoop) send(c *httpConn, now int64) {
	if l.phase.Load() >= phaseDrain || c.dead {
		return
	}
	c.busy, c.sentAt = true, now
	if l.phase.Load() == phaseMeasure {
		l.sent++
	}
	if err := c.send(l.req); err != nil {
		l.fail(&c.wside, err)
	}
}

func (l *httpLoop) flush(c *httpConn) {
	if err := c.flush(); err != nil {
		l.fail(&c.wside, err)
	}
}

// read reads what c has and handles every complete response.
func (l *httpLoop) read(c *httpConn, now int64) {
	err := c.readAll(l.buf, func(b []byte) bool {
		c.in = append(c.in, b...)
		l.responses(c, now)
		return !c.dead
	})
	if err != nil {
		l.fail(&c.wside, err)
	}
}

// responses handles the complete responses at the start of c.in.
func (l *httpLoop) responses(c *httpConn, now int64) {
	for len(c.in) > 0 {
		size, status, ok, err := ParseHTTPResponse(c.in)
		if err != nil {
			l.fail(&c.wside, err)
			return
		}
		if !ok {
			return
		}
		c.in = c.in[:copy(c.in, c.in[size:])]
		if !c.busy {
			l.fail(&c.wside, errors.New("response without a request"))
			return
		}
		c.busy = false
		l.live.received++
		if l.phase.Load() == phaseMeasure {
			l.received++
			if status < 200 || status > 299 {
				l.bad++
			}
			_ = l.hist.RecordValue(max(now-c.sentAt, histMin))
		}
		l.send(c, now)
	}
}

// maxHTTPHeader bounds a response header block.
const maxHTTPHeader = 64 << 10

// ParseHTTPResponse parses one HTTP/1.1 response at the start of b. ok is
// false while it is incomplete; size is its length in bytes. Bodies are
// delimited by Content-Length or chunked encoding; a response with
// neither (read until close) is refused, since the connection must stay
// usable.
func ParseHTTPResponse(b []byte) (size, status int, ok bool, err error) {
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		if len(b) > maxHTTPHeader {
			return 0, 0, false, errors.New("loadgen: http: header too long")
		}
		return 0, 0, false, nil
	}
	head := b[:end]
	line, rest, _ := bytes.Cut(head, []byte("\r\n"))
	f := bytes.Fields(line)
	if len(f) < 2 || !bytes.HasPrefix(f[0], []byte("HTTP/1.")) {
		return 0, 0, false, fmt.Errorf("loadgen: http: bad status line %q", line)
	}
	status, err = strconv.Atoi(string(f[1]))
	if err != nil {
		return 0, 0, false, fmt.Errorf("loadgen: http: bad status %q", f[1])
	}
	length, chunked := -1, false
	for _, h := range bytes.Split(rest, []byte("\r\n")) {
		k, v, found := bytes.Cut(h, []byte(":"))
		if !found {
			continue
		}
		k, v = bytes.TrimSpace(k), bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			length, err = strconv.Atoi(string(v))
			if err != nil || length < 0 {
				return 0, 0, false, fmt.Errorf("loadgen: http: bad Content-Length %q", v)
			}
		case bytes.EqualFold(k, []byte("Transfer-Encoding")):
			chunked = bytes.Contains(bytes.ToLower(v), []byte("chunked"))
		}
	}
	pos := end + 4
	switch {
	case status == 204 || status == 304 || (status >= 100 && status < 200):
		return pos, status, true, nil
	case chunked:
		for {
			i := bytes.Index(b[pos:], []byte("\r\n"))
			if i < 0 {
				return 0, 0, false, nil
			}
			szText, _, _ := bytes.Cut(b[pos:pos+i], []byte(";"))
			sz, err := strconv.ParseInt(string(bytes.TrimSpace(szText)), 16, 32)
			if err != nil || sz < 0 {
				return 0, 0, false, fmt.Errorf("loadgen: http: bad chunk size %q", szText)
			}
			pos += i + 2
			if sz == 0 {
				// Trailers, then an empty line.
				for {
					j := bytes.Index(b[pos:], []byte("\r\n"))
					if j < 0 {
						return 0, 0, false, nil
					}
					pos += j + 2
					if j == 0 {
						return pos, status, true, nil
					}
				}
			}
			if len(b) < pos+int(sz)+2 {
				return 0, 0, false, nil
			}
			pos += int(sz) + 2
		}
	case length >= 0:
		if len(b) < pos+length {
			return 0, 0, false, nil
		}
		return pos + length, status, true, nil
	}
	return 0, 0, false, errors.New("loadgen: http: response without Content-Length or chunked encoding")
}
