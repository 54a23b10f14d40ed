package client

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gobwas/ws"
)

// transport is one connection to the broker, WebSocket or raw (SMQ spec
// §1.2). The read side (br, rbuf, hdr) belongs to the goroutine that runs
// the handshake and then the client's read loop; the write side (wbuf, mask,
// dead) is guarded by wmu, so any goroutine may send.
type transport struct {
	conn   net.Conn
	br     *bufio.Reader
	raw    bool
	etid   uint32 // assigned by Connack; set before the transport is shared
	maxMsg int

	rbuf []byte    // reusable message buffer: a read message aliases it
	hdr  [8]byte   // scratch for frame headers (fields, so reads do not allocate)
	ctl  [125]byte // control frame payload

	wmu      sync.Mutex
	wbuf     []byte // guarded by wmu
	wtimeout time.Duration
	dead     bool // guarded by wmu: a write failed or close was called
}

// errWSClosed reports a WebSocket close frame from the broker.
type errWSClosed struct{ code uint16 }

func (e errWSClosed) Error() string {
	return fmt.Sprintf("smq client: websocket closed by broker (code %d)", e.code)
}

// dialTransport opens the connection and does the HTTP bootstrap for the
// chosen transport. It does not read Init.
func dialTransport(ctx context.Context, rawURL string, o *Options) (*transport, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("smq client: bad url: %w", err)
	}
	secure := false
	switch strings.ToLower(u.Scheme) {
	case "ws", "http":
	case "wss", "https":
		secure = true
	default:
		return nil, fmt.Errorf("smq client: unsupported url scheme %q", u.Scheme)
	}
	t := &transport{raw: o.Raw, maxMsg: o.MaxMessage, wtimeout: o.WriteTimeout}
	if o.Raw {
		if err := t.dialRaw(ctx, u, secure, o); err != nil {
			return nil, err
		}
		return t, nil
	}
	wsu := *u
	wsu.Scheme = "ws"
	if secure {
		wsu.Scheme = "wss"
	}
	d := ws.Dialer{TLSConfig: o.TLSConfig}
	if len(o.Header) > 0 {
		d.Header = ws.HandshakeHeaderHTTP(o.Header)
	}
	conn, br, _, err := d.Dial(ctx, wsu.String())
	if err != nil {
		return nil, fmt.Errorf("smq client: websocket dial: %w", err)
	}
	t.conn = conn
	var r io.Reader = conn
	if br != nil && br.Buffered() > 0 {
		// Bytes that arrived with the 101 response (usually Init).
		r = io.MultiReader(br, conn)
	}
	t.br = bufio.NewReaderSize(r, o.ReadBufferSize)
	return t, nil
}

// dialRaw connects and sends the raw bootstrap request (SMQ spec §1.2):
// SimpleMQ: 1, and SendSmqHttpResponse: true when o.SendHTTPResponse is set,
// in which case the broker's HTTP 200 header block is read and checked.
func (t *transport) dialRaw(ctx context.Context, u *url.URL, secure bool, o *Options) error {
	host := u.Host
	if u.Port() == "" {
		if secure {
			host = net.JoinHostPort(u.Hostname(), "443")
		} else {
			host = net.JoinHostPort(u.Hostname(), "80")
		}
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return fmt.Errorf("smq client: dial: %w", err)
	}
	if secure {
		cfg := o.TLSConfig.Clone()
		if cfg == nil {
			cfg = &tls.Config{}
		}
		if cfg.ServerName == "" {
			cfg.ServerName = u.Hostname()
		}
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return fmt.Errorf("smq client: tls: %w", err)
		}
		conn = tc
	}
	t.conn = conn
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	path := u.RequestURI()
	var b strings.Builder
	if o.SendHTTPResponse {
		fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nSimpleMQ: 1\r\nSendSmqHttpResponse: true\r\n", path, u.Host)
	} else {
		// The C client's minimal request: the broker answers with no HTTP
		// response at all and the stream starts with Init.
		fmt.Fprintf(&b, "GET %s HTTP/1.0\r\nHost: %s\r\nSimpleMQ: 1\r\n", path, u.Host)
	}
	b.WriteString("User-Agent: SimpleMQ/1\r\n")
	for k, vs := range o.Header {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		conn.Close()
		return fmt.Errorf("smq client: bootstrap: %w", err)
	}
	// Large messages bypass the buffer (io.ReadFull into rbuf), so a small
	// one keeps many-client benchmarks cheap.
	t.br = bufio.NewReaderSize(conn, o.ReadBufferSize)
	if o.SendHTTPResponse {
		resp, err := http.ReadResponse(t.br, nil)
		if err != nil {
			conn.Close()
			return fmt.Errorf("smq client: bootstrap response: %w", err)
		}
		if resp.StatusCode != http.StatusOK {
			conn.Close()
			return fmt.Errorf("smq client: bootstrap: broker answered %s", resp.Status)
		}
		// The SMQ stream follows the blank line; the body is never read.
	}
	return nil
}

// readMsg returns the next SMQ message (type byte first). The slice aliases
// t.rbuf and is valid until the next call. Read-side goroutine only.
func (t *transport) readMsg() ([]byte, error) {
	if t.raw {
		return t.readRaw()
	}
	return t.readWS()
}

func (t *transport) readRaw() ([]byte, error) {
	if _, err := io.ReadFull(t.br, t.hdr[:2]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(t.hdr[:2]))
	if n < 3 {
		return nil, fmt.Errorf("smq client: raw frame length %d < 3: %w", n, ErrProtocol)
	}
	n -= 2
	if cap(t.rbuf) < n {
		t.rbuf = make([]byte, n, max(n, 512))
	}
	m := t.rbuf[:n]
	if _, err := io.ReadFull(t.br, m); err != nil {
		return nil, err
	}
	return m, nil
}

// readWS reads one complete WebSocket data message, answering pings and
// close frames on the way (RFC 6455 §5). Frames from the broker are
// unmasked; masked ones are accepted and unmasked.
func (t *transport) readWS() ([]byte, error) {
	msg := t.rbuf[:0]
	started := false
	for {
		b0, err := t.br.ReadByte()
		if err != nil {
			return nil, err
		}
		b1, err := t.br.ReadByte()
		if err != nil {
			return nil, err
		}
		fin, op := b0&0x80 != 0, ws.OpCode(b0&0x0F)
		if b0&0x70 != 0 {
			return nil, fmt.Errorf("smq client: websocket RSV bits set: %w", ErrProtocol)
		}
		masked := b1&0x80 != 0
		n := uint64(b1 & 0x7F)
		switch n {
		case 126:
			if _, err := io.ReadFull(t.br, t.hdr[:2]); err != nil {
				return nil, err
			}
			n = uint64(binary.BigEndian.Uint16(t.hdr[:2]))
		case 127:
			if _, err := io.ReadFull(t.br, t.hdr[:8]); err != nil {
				return nil, err
			}
			n = binary.BigEndian.Uint64(t.hdr[:8])
		}
		var mask [4]byte
		if masked {
			if _, err := io.ReadFull(t.br, t.hdr[:4]); err != nil {
				return nil, err
			}
			mask = [4]byte(t.hdr[:4])
		}
		if op.IsControl() {
			if n > 125 || !fin {
				return nil, fmt.Errorf("smq client: bad websocket control frame: %w", ErrProtocol)
			}
			p := t.ctl[:n]
			if _, err := io.ReadFull(t.br, p); err != nil {
				return nil, err
			}
			if masked {
				ws.Cipher(p, mask, 0)
			}
			switch op {
			case ws.OpPing:
				if err := t.writeControl(ws.OpPong, p); err != nil {
					return nil, err
				}
			case ws.OpClose:
				code := uint16(1005)
				if len(p) >= 2 {
					code = binary.BigEndian.Uint16(p)
				}
				_ = t.writeControl(ws.OpClose, p[:min(len(p), 2)])
				return nil, errWSClosed{code}
			}
			continue
		}
		if (op == ws.OpContinuation) != started {
			return nil, fmt.Errorf("smq client: unexpected websocket opcode %d: %w", op, ErrProtocol)
		}
		started = true
		if n > uint64(t.maxMsg-len(msg)) {
			return nil, fmt.Errorf("smq client: websocket message larger than %d bytes: %w", t.maxMsg, ErrProtocol)
		}
		off := len(msg)
		end := off + int(n)
		if cap(msg) < end {
			nm := make([]byte, off, max(end, 2*cap(msg), 512))
			copy(nm, msg)
			msg = nm
		}
		msg = msg[:end]
		if _, err := io.ReadFull(t.br, msg[off:end]); err != nil {
			return nil, err
		}
		if masked {
			ws.Cipher(msg[off:end], mask, 0)
		}
		if fin {
			t.rbuf = msg
			if len(msg) == 0 {
				return nil, fmt.Errorf("smq client: empty websocket message: %w", ErrProtocol)
			}
			return msg, nil
		}
	}
}

// frameHead appends the transport framing for an SMQ message of n bytes and
// returns the buffer; the message bytes follow. For WebSocket it also picks
// the mask key, which frameTail applies. Caller holds wmu.
func (t *transport) frameHead(b []byte, n int) ([]byte, [4]byte) {
	var mask [4]byte
	if t.raw {
		return binary.BigEndian.AppendUint16(b, uint16(n+2)), mask
	}
	b = append(b, 0x80|byte(ws.OpBinary))
	switch {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n <= 0xFFFF:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	binary.BigEndian.PutUint32(mask[:], rand.Uint32())
	return append(b, mask[:]...), mask
}

// frameTail masks the message that starts at b[start:] (WebSocket only).
func (t *transport) frameTail(b []byte, start int, mask [4]byte) {
	if !t.raw {
		ws.Cipher(b[start:], mask, 0)
	}
}

// write sends b in one call. Caller holds wmu.
func (t *transport) write(b []byte) error {
	if t.dead {
		return ErrNotConnected
	}
	if t.wtimeout > 0 {
		_ = t.conn.SetWriteDeadline(time.Now().Add(t.wtimeout))
	}
	if _, err := t.conn.Write(b); err != nil {
		t.dead = true
		_ = t.conn.Close() // the read loop sees the error and ends
		return fmt.Errorf("smq client: write: %w", err)
	}
	return nil
}

// send frames and writes one SMQ message built by the caller. Safe for
// concurrent use.
func (t *transport) send(msg []byte) error {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	b, mask := t.frameHead(t.wbuf[:0], len(msg))
	start := len(b)
	b = append(b, msg...)
	t.frameTail(b, start, mask)
	t.wbuf = b
	return t.write(b)
}

// sendName sends [typ][name] (Subscribe, Create, CreateSub).
func (t *transport) sendName(typ byte, name string) error {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	b, mask := t.frameHead(t.wbuf[:0], 1+len(name))
	start := len(b)
	b = append(b, typ)
	b = append(b, name...)
	t.frameTail(b, start, mask)
	t.wbuf = b
	return t.write(b)
}

// sendID sends [typ][u32 id] (Unsubscribe, Observe, Unobserve).
func (t *transport) sendID(typ byte, id uint32) error {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	b, mask := t.frameHead(t.wbuf[:0], 5)
	start := len(b)
	b = append(b, typ)
	b = binary.BigEndian.AppendUint32(b, id)
	t.frameTail(b, start, mask)
	t.wbuf = b
	return t.write(b)
}

// maxFragmented is the largest payload a broker assembles from PubFrag
// fragments: BAS counts the 13 header bytes against 0xFFF0 and drops larger
// ones. Anything bigger (up to MaxPayload) still fits one raw Publish.
const maxFragmented = MaxPayload - 13

// publish sends a Publish, or on a raw transport a run of PubFrag messages
// when frag > 0 and the payload is larger than frag but at most
// maxFragmented (SMQ spec §1.5 PubFrag: intermediate fragments carry tid 0,
// the last one the real header). All
// fragments go out in one write under wmu, so no other PubFrag can
// interleave. Safe for concurrent use; no allocation in steady state.
func (t *transport) publish(data []byte, tid, subtid uint32, frag int) error {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	b := t.wbuf[:0]
	if t.raw && frag > 0 && len(data) > frag && len(data) <= maxFragmented {
		for len(data) > frag {
			b, _ = t.frameHead(b, 13+frag)
			b = appendPubHeader(b, msgPubFrag, 0, t.etid, 0)
			b = append(b, data[:frag]...)
			data = data[frag:]
		}
		b, _ = t.frameHead(b, 13+len(data))
		b = appendPubHeader(b, msgPubFrag, tid, t.etid, subtid)
		b = append(b, data...)
	} else {
		var mask [4]byte
		b, mask = t.frameHead(b, 13+len(data))
		start := len(b)
		b = appendPubHeader(b, msgPublish, tid, t.etid, subtid)
		b = append(b, data...)
		t.frameTail(b, start, mask)
	}
	t.wbuf = b
	return t.write(b)
}

// writeControl sends a WebSocket control frame (masked, client role).
func (t *transport) writeControl(op ws.OpCode, payload []byte) error {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	var mask [4]byte
	binary.BigEndian.PutUint32(mask[:], rand.Uint32())
	b := append(t.wbuf[:0], 0x80|byte(op), 0x80|byte(len(payload)))
	b = append(b, mask[:]...)
	start := len(b)
	b = append(b, payload...)
	ws.Cipher(b[start:], mask, 0)
	t.wbuf = b
	return t.write(b)
}

// close marks the transport dead and closes the socket. Idempotent.
func (t *transport) close() {
	t.wmu.Lock()
	t.dead = true
	t.wmu.Unlock()
	_ = t.conn.Close()
}
