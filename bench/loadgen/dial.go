package loadgen

import (
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Target is a parsed URL: where to connect and what to ask for.
type Target struct {
	Addr     [4]byte // IPv4 address (loopback in practice)
	Port     int
	HostPort string // Host header
	Path     string // path and query
	TLS      bool   // wss:// or https://
	HTTP     bool   // http:// or https:// (no WebSocket upgrade)
	// Insecure skips verifying the server's certificate (self-signed test
	// servers); ServerName is the name verified otherwise.
	Insecure   bool
	ServerName string
}

// ParseURL parses ws://, wss://, http:// or https:// IPv4-host:port/path.
// Names are resolved once here.
func ParseURL(raw string) (Target, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Target{}, fmt.Errorf("loadgen: bad url %q: %w", raw, err)
	}
	var t Target
	defPort := "80"
	switch u.Scheme {
	case "ws":
	case "wss":
		t.TLS, defPort = true, "443"
	case "http":
		t.HTTP = true
	case "https":
		t.HTTP, t.TLS, defPort = true, true, "443"
	default:
		return Target{}, fmt.Errorf("loadgen: url %q: scheme must be ws, wss, http or https", raw)
	}
	host, portStr, err := net.SplitHostPort(u.Host)
	if err != nil {
		host, portStr = u.Host, defPort
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port <= 0 || port > 65535 {
		return Target{}, fmt.Errorf("loadgen: url %q: bad port", raw)
	}
	ips, err := net.LookupIP(host)
	if err != nil {
		return Target{}, fmt.Errorf("loadgen: url %q: %w", raw, err)
	}
	found := false
	for _, ip := range ips {
		if v4 := ip.To4(); v4 != nil {
			copy(t.Addr[:], v4)
			found = true
			break
		}
	}
	if !found {
		return Target{}, fmt.Errorf("loadgen: url %q: no IPv4 address", raw)
	}
	t.Port = port
	t.HostPort = u.Host
	t.Path = u.RequestURI()
	t.ServerName = host
	return t, nil
}

// tlsConfig is the client configuration for t: no session cache, so every
// connection pays a full handshake as distinct clients would.
func (t Target) tlsConfig() *tls.Config {
	return &tls.Config{ServerName: t.ServerName, InsecureSkipVerify: t.Insecure, MinVersion: tls.VersionTLS12}
}

// Framing is how a connection's messages are delimited.
type Framing uint8

const (
	FramingWebSocket Framing = iota // RFC 6455 frames (client frames masked)
	FramingLen16                    // SMQ's raw transport: u16 big-endian total length first
	FramingStream                   // a raw byte stream (no message boundaries)
)

// Kind is what a dialed connection speaks.
type Kind uint8

const (
	// KindWebSocket: ws:// or wss://, the RFC 6455 client handshake.
	KindWebSocket Kind = iota
	// KindHTTP: http:// or https://, a keep-alive connection, no handshake.
	KindHTTP
	// KindSMQ: an SMQ client past Connack; ws(s):// as WebSocket, http(s)://
	// as SMQ's raw transport (the C client's bootstrap: no HTTP response,
	// u16 length prefixes).
	KindSMQ
	// KindSMQRaw: SMQ's raw transport bootstrapped but no SMQ handshake yet
	// (the broker's Init is the first message the driver sees).
	KindSMQRaw
	// KindStream: http:// or https://, a GET the server answers with a
	// 200 header block and then turns into a raw byte stream (Tarpon's
	// runtime.Morph; the echo peers' /raw).
	KindStream
)

// Limit errors: a run that hits one of them was capped by the machine, not
// by the server, and the report says so.
var (
	ErrClientFDLimit = errors.New("loadgen: client process out of file descriptors (EMFILE)")
	ErrNoPorts       = errors.New("loadgen: no free local port for this source address (EADDRNOTAVAIL)")
)

// handshake material: one random key per process; the expected accept
// value is computed once.
var (
	wsKey    string
	wsAccept string
)

func init() {
	var b [16]byte
	_, _ = rand.Read(b[:])
	wsKey = base64.StdEncoding.EncodeToString(b[:])
	h := sha1.Sum([]byte(wsKey + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	wsAccept = base64.StdEncoding.EncodeToString(h[:])
}

// Dial opens one connection of kind to t from src (an IPv4 address, port
// chosen by the kernel at connect time; zero: any), with TLS when t asks
// for it, and does the kind's handshake. It blocks the calling goroutine
// in poll(2), bounded by timeout; callers run a few dialers in parallel.
// The connection belongs to the caller (CloseAll).
func Dial(t Target, kind Kind, src [4]byte, timeout time.Duration) (c Conn, err error) {
	switch {
	case kind == KindWebSocket && t.HTTP:
		return c, errors.New("loadgen: a WebSocket scenario needs a ws:// or wss:// URL")
	case kind == KindHTTP && !t.HTTP:
		return c, errors.New("loadgen: an HTTP scenario needs an http:// or https:// URL")
	case kind == KindSMQRaw && !t.HTTP:
		return c, errors.New("loadgen: SMQ's raw transport needs an http:// or https:// URL")
	case kind == KindStream && !t.HTTP:
		return c, errors.New("loadgen: a raw stream starts as an http:// or https:// request")
	}
	deadline := time.Now().Add(timeout)
	c.FD, err = DialTCP(t, src, deadline)
	if err != nil {
		return c, err
	}
	defer func() {
		if err != nil {
			_ = unix.Close(c.FD)
		}
	}()
	if t.TLS {
		if c.TLS, c.link, err = startTLS(c.FD, t.tlsConfig(), deadline); err != nil {
			return c, err
		}
	}
	switch {
	case kind == KindHTTP:
		c.Framing = FramingStream
		return c, nil
	case kind == KindStream:
		c.Framing = FramingStream
		c.Extra, err = streamHandshake(&c, t, deadline)
		return c, err
	case t.HTTP: // SMQ raw: the C client's request; the broker answers nothing, Init comes first
		c.Framing = FramingLen16
		req := "GET " + t.Path + " HTTP/1.0\r\nHost: " + t.HostPort + "\r\nSimpleMQ: 1\r\nUser-Agent: SimpleMQ/1\r\n\r\n"
		if err = c.writeBlocking([]byte(req), deadline); err != nil {
			return c, fmt.Errorf("loadgen: smq raw request: %w", err)
		}
	default:
		if c.Extra, err = wsHandshake(&c, t, deadline); err != nil {
			return c, err
		}
	}
	if kind == KindSMQ {
		c.ETID, c.Extra, err = smqHandshake(&c, deadline)
	}
	return c, err
}

// wsHandshake sends the WebSocket upgrade request and reads the 101; it
// returns the bytes that followed the response.
func wsHandshake(c *Conn, t Target, deadline time.Time) (extra []byte, err error) {
	req := "GET " + t.Path + " HTTP/1.1\r\nHost: " + t.HostPort +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + wsKey +
		"\r\nSec-WebSocket-Version: 13\r\n\r\n"
	return requestHead(c, req, checkResponse, deadline)
}

// streamHandshake asks for a raw stream: a GET answered by a 200 header
// block, after which both sides exchange bytes.
func streamHandshake(c *Conn, t Target, deadline time.Time) (extra []byte, err error) {
	req := "GET " + t.Path + " HTTP/1.1\r\nHost: " + t.HostPort + "\r\nUser-Agent: tarpon-bench\r\n\r\n"
	return requestHead(c, req, func(head []byte) error {
		if line, _, _ := bytes.Cut(head, []byte("\r\n")); !bytes.HasPrefix(line, []byte("HTTP/1.")) || !bytes.Contains(line, []byte(" 200")) {
			return fmt.Errorf("loadgen: raw stream refused: %q", line)
		}
		return nil
	}, deadline)
}

// requestHead writes req and reads the response header block, checked by
// check; it returns the bytes that followed the header.
func requestHead(c *Conn, req string, check func(head []byte) error, deadline time.Time) (extra []byte, err error) {
	if err := c.writeBlocking([]byte(req), deadline); err != nil {
		return nil, fmt.Errorf("loadgen: handshake write: %w", err)
	}
	buf := make([]byte, 0, 512)
	var tmp [512]byte
	for {
		n, err := c.readBlocking(tmp[:], deadline)
		if err == io.EOF {
			return nil, errors.New("loadgen: handshake: server closed the connection")
		}
		if err != nil {
			return nil, fmt.Errorf("loadgen: handshake read: %w", err)
		}
		buf = append(buf, tmp[:n]...)
		if i := bytes.Index(buf, []byte("\r\n\r\n")); i >= 0 {
			if err := check(buf[:i]); err != nil {
				return nil, err
			}
			if rest := buf[i+4:]; len(rest) > 0 {
				extra = append([]byte(nil), rest...)
			}
			return extra, nil
		}
		if len(buf) > 8192 {
			return nil, errors.New("loadgen: handshake: response header too long")
		}
	}
}

// DialTCP opens a non-blocking TCP connection from src (an IPv4 address,
// port chosen by the kernel at connect time; zero: any) to t, waiting in
// poll(2) until deadline. The fd belongs to the caller.
func DialTCP(t Target, src [4]byte, deadline time.Time) (fd int, err error) {
	sock, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.EMFILE) || errors.Is(err, unix.ENFILE) {
			return -1, ErrClientFDLimit
		}
		return -1, fmt.Errorf("loadgen: socket: %w", err)
	}
	fd = sock
	ok := false
	defer func() {
		if !ok {
			_ = unix.Close(sock) // not fd: the return statement has set it to -1
		}
	}()
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	if src != ([4]byte{}) {
		// Let connect pick the port per 4-tuple, not bind per address, so
		// each source address gives a full ephemeral range per server.
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
		if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: src}); err != nil {
			if errors.Is(err, unix.EADDRNOTAVAIL) || errors.Is(err, unix.EADDRINUSE) {
				return -1, ErrNoPorts
			}
			return -1, fmt.Errorf("loadgen: bind %v: %w", net.IP(src[:]), err)
		}
	}
	err = unix.Connect(fd, &unix.SockaddrInet4{Addr: t.Addr, Port: t.Port})
	if err == unix.EINPROGRESS || err == unix.EINTR {
		if err = waitFD(fd, unix.POLLOUT, deadline); err == nil {
			var soerr int
			soerr, err = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
			if err == nil && soerr != 0 {
				err = unix.Errno(soerr)
			}
		}
	}
	if err != nil {
		if errors.Is(err, unix.EADDRNOTAVAIL) {
			return -1, ErrNoPorts
		}
		return -1, fmt.Errorf("loadgen: connect: %w", err)
	}
	ok = true
	return fd, nil
}

// errTimeout is returned when a dial or handshake passes its deadline.
var errTimeout = errors.New("timed out")

// waitFD polls fd for events until deadline, retrying on EINTR (the Go
// runtime's preemption signals interrupt system calls).
func waitFD(fd int, events int16, deadline time.Time) error {
	for {
		ms := int(time.Until(deadline) / time.Millisecond)
		if ms <= 0 {
			return errTimeout
		}
		pfd := []unix.PollFd{{Fd: int32(fd), Events: events}}
		n, err := unix.Poll(pfd, ms)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
	}
}

// checkResponse verifies the status line is 101 and the accept key fits.
func checkResponse(head []byte) error {
	lines := strings.Split(string(head), "\r\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "HTTP/1.1 101") {
		first := ""
		if len(lines) > 0 {
			first = lines[0]
		}
		return fmt.Errorf("loadgen: handshake refused: %q", first)
	}
	for _, l := range lines[1:] {
		k, v, ok := strings.Cut(l, ":")
		if ok && strings.EqualFold(strings.TrimSpace(k), "Sec-WebSocket-Accept") {
			if strings.TrimSpace(v) != wsAccept {
				return errors.New("loadgen: handshake: wrong Sec-WebSocket-Accept")
			}
			return nil
		}
	}
	return errors.New("loadgen: handshake: no Sec-WebSocket-Accept")
}

// SourceAddrs returns n loopback source addresses 127.0.0.1 .. 127.0.0.n
// (all of 127/8 is local on Linux, no setup needed).
func SourceAddrs(n int) [][4]byte {
	if n < 1 {
		n = 1
	}
	if n > 250 {
		n = 250
	}
	out := make([][4]byte, n)
	for i := range out {
		out[i] = [4]byte{127, 0, 0, byte(i + 1)}
	}
	return out
}
