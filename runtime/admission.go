package runtime

import (
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Admission of inbound connections (Upgrade and Morph): the origin policy
// for WebSocket upgrades, the connection caps and the per-IP upgrade rate.
// Connections the server opens itself (Dial, Adopt) are not limited here.

// OriginPolicy decides which browser origins may open a WebSocket. The zero
// value allows same-origin requests and requests without an Origin header
// (non-browser clients), and refuses every other origin with 403.
type OriginPolicy struct {
	// Allow lists extra origins as glob patterns (path.Match syntax),
	// matched against the whole origin ("https://*.example.com") and
	// against its host[:port] ("*.example.com:8443").
	Allow []string
	// RequireOrigin refuses upgrades that carry no Origin header.
	RequireOrigin bool
	// AllowAll accepts any origin (development only).
	AllowAll bool
}

// Check reports whether r may upgrade, and why not.
func (p *OriginPolicy) Check(r *http.Request) (bool, string) {
	origin := r.Header.Get("Origin")
	if origin == "" {
		if p.RequireOrigin {
			return false, "missing Origin header"
		}
		return true, ""
	}
	if p.AllowAll {
		return true, ""
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false, "malformed Origin header"
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true, ""
	}
	for _, pat := range p.Allow {
		pat = strings.ToLower(pat)
		if ok, _ := path.Match(pat, strings.ToLower(origin)); ok {
			return true, ""
		}
		if ok, _ := path.Match(pat, strings.ToLower(u.Host)); ok {
			return true, ""
		}
	}
	return false, "origin " + origin + " not allowed"
}

// gate counts inbound connections per source IP and rate-limits upgrades.
type gate struct {
	mu    sync.Mutex
	total int
	perIP map[string]*ipState

	refusedOrigin atomic.Uint64
	refusedTotal  atomic.Uint64
	refusedPerIP  atomic.Uint64
	refusedRate   atomic.Uint64
}

type ipState struct {
	conns  int
	tokens float64
	last   int64 // unix nanoseconds of the last refill
}

// admit reserves a connection slot for req's source IP. It returns the HTTP
// status and reason of a refusal, or 0 and the key to release later.
func (r *Reactor) admit(req *http.Request, websocket bool) (status int, reason, key string) {
	if websocket {
		if ok, why := r.cfg.Origin.Check(req); !ok {
			r.gate.refusedOrigin.Add(1)
			return http.StatusForbidden, why, ""
		}
	}
	key, _, err := net.SplitHostPort(req.RemoteAddr)
	if err != nil {
		key = req.RemoteAddr
	}
	now := time.Now().UnixNano()
	g := &r.gate
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.total >= r.cfg.MaxConns {
		g.refusedTotal.Add(1)
		return http.StatusServiceUnavailable, "too many connections", ""
	}
	st := g.perIP[key]
	if st == nil {
		st = &ipState{tokens: r.cfg.UpgradeBurst, last: now}
		g.perIP[key] = st
	}
	if st.conns >= r.cfg.MaxConnsPerIP {
		g.refusedPerIP.Add(1)
		return http.StatusServiceUnavailable, "too many connections from this address", ""
	}
	st.tokens = min(r.cfg.UpgradeBurst, st.tokens+float64(now-st.last)/1e9*r.cfg.UpgradeRate)
	st.last = now
	if st.tokens < 1 {
		g.refusedRate.Add(1)
		return http.StatusTooManyRequests, "too many connection attempts from this address", ""
	}
	st.tokens--
	st.conns++
	g.total++
	return 0, "", key
}

// release returns the slot admit reserved. Any goroutine.
func (r *Reactor) release(key string) {
	g := &r.gate
	g.mu.Lock()
	defer g.mu.Unlock()
	g.total--
	if st := g.perIP[key]; st != nil {
		st.conns--
	}
}

// sweepGate forgets addresses with no connection and a full bucket, so the
// table does not grow with every address ever seen. Ticker goroutine.
func (r *Reactor) sweepGate() {
	now := time.Now().UnixNano()
	g := &r.gate
	g.mu.Lock()
	defer g.mu.Unlock()
	for k, st := range g.perIP {
		if st.conns == 0 && st.tokens+float64(now-st.last)/1e9*r.cfg.UpgradeRate >= r.cfg.UpgradeBurst {
			delete(g.perIP, k)
		}
	}
}
