package peers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	goruntime "runtime"
	"runtime/debug"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Server is one running comparison server.
type Server interface {
	// Addr is the address the server listens on (host:port), useful when
	// it was started on port 0.
	Addr() string
	// Conns is the number of currently open upgraded connections.
	Conns() int64
	// Shutdown stops accepting, closes every connection and returns when
	// the server's goroutines are gone or ctx is done.
	Shutdown(ctx context.Context) error
}

// StartFunc starts a server listening on addr and returns at once; the
// server serves on its own goroutines.
type StartFunc func(addr string) (Server, error)

var (
	regMu    sync.Mutex
	registry = map[string]StartFunc{}
)

// Register adds a peer under name. It is called from init functions; a
// duplicate name panics because it is a programming error.
func Register(name string, start StartFunc) {
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := registry[name]; dup {
		panic("peers: duplicate peer " + name)
	}
	registry[name] = start
}

// Names lists the registered peers, sorted.
func Names() []string {
	regMu.Lock()
	defer regMu.Unlock()
	out := make([]string, 0, len(registry))
	for n := range registry {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// ErrUnknownPeer is returned by Start for a name nobody registered.
var ErrUnknownPeer = errors.New("peers: unknown peer")

// Start starts the peer registered under name on addr.
func Start(name, addr string) (Server, error) {
	regMu.Lock()
	start, ok := registry[name]
	regMu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%w %q (known: %v)", ErrUnknownPeer, name, Names())
	}
	return start(addr)
}

// Stats is the admin JSON every peer serves at GET /stats on its admin
// address. The harness reads it for goroutines, GC counts and, when the
// peer was not started by the harness, the pid to read /proc from.
type Stats struct {
	Peer       string `json:"peer"`
	PID        int    `json:"pid"`
	Conns      int64  `json:"conns"`
	Goroutines int    `json:"goroutines"`
	NumGC      uint32 `json:"num_gc"`
	HeapInuse  uint64 `json:"heap_inuse"`
	HeapAlloc  uint64 `json:"heap_alloc"`
	HeapSys    uint64 `json:"heap_sys"`
	StackInuse uint64 `json:"stack_inuse"`
	Sys        uint64 `json:"sys"`
	Messages   int64  `json:"messages"`
}

// Collect fills a Stats for this process. ReadMemStats stops the world
// briefly; it is called only on admin requests, never on the data path.
func Collect(name string, s Server) Stats {
	var ms goruntime.MemStats
	goruntime.ReadMemStats(&ms)
	st := Stats{
		Peer:       name,
		PID:        os.Getpid(),
		Goroutines: goruntime.NumGoroutine(),
		NumGC:      ms.NumGC,
		HeapInuse:  ms.HeapInuse,
		HeapAlloc:  ms.HeapAlloc,
		HeapSys:    ms.HeapSys,
		StackInuse: ms.StackInuse,
		Sys:        ms.Sys,
	}
	if s != nil {
		st.Conns = s.Conns()
		if m, ok := s.(interface{ Messages() int64 }); ok {
			st.Messages = m.Messages()
		}
	}
	return st
}

// AdminHandler serves GET /stats (Stats as JSON) and POST or GET /gc (runs
// debug.FreeOSMemory: a full collection that also returns freed memory to
// the OS, so RSS shows what the server keeps, not garbage it has not handed
// back yet; then answers like /stats), and /debug/pprof/ (heap, goroutine,
// profile, ...). Every peer gets the same treatment.
// It runs on net/http goroutines.
func AdminHandler(name string, s Server) http.Handler {
	mux := http.NewServeMux()
	writeStats := func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(Collect(name, s))
	}
	mux.HandleFunc("/stats", func(w http.ResponseWriter, _ *http.Request) { writeStats(w) })
	mux.HandleFunc("/gc", func(w http.ResponseWriter, _ *http.Request) {
		debug.FreeOSMemory()
		writeStats(w)
	})
	// Profiles for looking into a figure (go tool pprof http://ADMIN/debug/pprof/heap).
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	return mux
}

// ServeAdmin listens on addr and serves AdminHandler until Close.
func ServeAdmin(addr, name string, s Server) (*http.Server, net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("peers: admin listen %s: %w", addr, err)
	}
	hs := &http.Server{Handler: AdminHandler(name, s), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	return hs, ln, nil
}

// connSet tracks open connections of a goroutine-per-connection server so
// Shutdown can close them (http.Server.Shutdown ignores hijacked conns).
// Safe for concurrent use.
type connSet[T comparable] struct {
	mu    sync.Mutex
	m     map[T]struct{}
	n     atomic.Int64
	msgs  atomic.Int64
	close func(T)
}

func newConnSet[T comparable](closeFn func(T)) *connSet[T] {
	return &connSet[T]{m: map[T]struct{}{}, close: closeFn}
}

func (s *connSet[T]) add(c T) {
	s.mu.Lock()
	s.m[c] = struct{}{}
	s.mu.Unlock()
	s.n.Add(1)
}

func (s *connSet[T]) remove(c T) {
	s.mu.Lock()
	_, ok := s.m[c]
	delete(s.m, c)
	s.mu.Unlock()
	if ok {
		s.n.Add(-1)
	}
}

// snapshot copies the members; used by broadcast servers.
func (s *connSet[T]) snapshot(dst []T) []T {
	s.mu.Lock()
	for c := range s.m {
		dst = append(dst, c)
	}
	s.mu.Unlock()
	return dst
}

func (s *connSet[T]) closeAll() {
	for _, c := range s.snapshot(nil) {
		s.close(c)
	}
}

// listen opens a TCP listener; all peers use it so they behave alike.
func listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("peers: listen %s: %w", addr, err)
	}
	return ln, nil
}
