package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tarponrt/tarpon/bench/loadgen"
	"github.com/tarponrt/tarpon/bench/peers"
)

// Sub-commands the harness re-executes its own binary with. cmd/tarpon
// maps them to PeerMain and WorkerMain.
const (
	PeerCommand   = "bench-peer"
	WorkerCommand = "bench-worker"
)

// readyPrefix starts the one line a peer prints on stdout once it serves.
const readyPrefix = "TARPON-BENCH-PEER READY"

// selfExe is the binary re-executed for peers and workers. Tests point it
// at the test binary (whose TestMain dispatches the sub-commands).
var selfExe = os.Executable

// peerEnv, when set (tests only), returns extra environment for a peer
// child process.
var peerEnv func(name string) []string

// PeerMain implements `tarpon bench-peer NAME [--addr ADDR] [--admin ADDR]`:
// it starts one comparison server in this process, prints
// "TARPON-BENCH-PEER READY addr=A admin=B pid=P" on stdout, and serves until
// SIGTERM or SIGINT, then shuts down (5 s deadline). Returns the exit code.
func PeerMain(args []string) int {
	name := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet(PeerCommand, flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address of the server")
	admin := fs.String("admin", "127.0.0.1:0", "listen address of the admin JSON endpoint (GET /stats, /gc)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if name == "" && fs.NArg() > 0 {
		name = fs.Arg(0)
	}
	if name == "" {
		fmt.Fprintf(os.Stderr, "usage: tarpon %s NAME [--addr ADDR] [--admin ADDR]; peers: %s\n",
			PeerCommand, strings.Join(peers.Names(), ", "))
		return 2
	}
	if _, err := loadgen.RaiseFDLimit(); err != nil {
		fmt.Fprintf(os.Stderr, "bench-peer: raising fd limit: %v\n", err)
	}
	srv, err := peers.Start(name, *addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench-peer %s: %v\n", name, err)
		return 1
	}
	adminSrv, adminLn, err := peers.ServeAdmin(*admin, name, srv)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench-peer %s: %v\n", name, err)
		shutdown(srv)
		return 1
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	fmt.Printf("%s addr=%s admin=%s pid=%d\n", readyPrefix, srv.Addr(), adminLn.Addr(), os.Getpid())
	<-sig
	signal.Stop(sig)
	code := 0
	if err := shutdown(srv); err != nil {
		fmt.Fprintf(os.Stderr, "bench-peer %s: shutdown: %v\n", name, err)
		code = 1
	}
	_ = adminSrv.Close()
	return code
}

func shutdown(s peers.Server) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.Shutdown(ctx)
}

// PeerProc is a peer server running as a child process of the harness.
type PeerProc struct {
	Name  string
	PID   int
	Addr  string // server address host:port
	Admin string // admin address host:port

	cmd    *exec.Cmd
	stderr *tailBuffer
	exited chan struct{}
	err    error // Wait's result, valid after exited is closed
}

// URL is the peer's WebSocket URL for path (e.g. "/echo").
func (p *PeerProc) URL(path string) string {
	if isTLSPeer(p.Name) {
		return "wss://" + p.Addr + path
	}
	return "ws://" + p.Addr + path
}

// HTTPURL is the peer's http:// (https:// for a TLS peer) URL for path:
// plain requests, and SMQ's raw transport.
func (p *PeerProc) HTTPURL(path string) string {
	if isTLSPeer(p.Name) {
		return "https://" + p.Addr + path
	}
	return "http://" + p.Addr + path
}

// isTLSPeer reports whether peer name serves TLS with a self-signed
// certificate (the *-tls peers).
func isTLSPeer(name string) bool { return strings.HasSuffix(name, "-tls") }

// StartPeer starts `self bench-peer name` on 127.0.0.1:0 and waits up to
// timeout for its ready line. A peer that exits or stays silent is killed
// and reported with the tail of its stderr.
func StartPeer(name string, timeout time.Duration) (*PeerProc, error) {
	return StartPeerAt(name, "127.0.0.1:0", timeout)
}

// StartPeerAt is StartPeer with the server's listen address.
func StartPeerAt(name, addr string, timeout time.Duration) (*PeerProc, error) {
	exe, err := selfExe()
	if err != nil {
		return nil, fmt.Errorf("bench: own executable: %w", err)
	}
	p := &PeerProc{Name: name, stderr: &tailBuffer{max: 4096}, exited: make(chan struct{})}
	p.cmd = exec.Command(exe, PeerCommand, name, "--addr", addr, "--admin", "127.0.0.1:0")
	p.cmd.Stderr = p.stderr
	if peerEnv != nil {
		p.cmd.Env = append(os.Environ(), peerEnv(name)...)
	}
	// A harness that dies without stopping its peer takes the peer along.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: start peer %s: %w", name, err)
	}
	p.PID = p.cmd.Process.Pid
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), readyPrefix) {
				lines <- sc.Text()
				break
			}
		}
		_, _ = io.Copy(io.Discard, out) // keep draining so the peer never blocks on stdout
	}()
	go func() { p.err = p.cmd.Wait(); close(p.exited) }()
	select {
	case line := <-lines:
		for _, kv := range strings.Fields(strings.TrimPrefix(line, readyPrefix)) {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "addr":
				p.Addr = v
			case "admin":
				p.Admin = v
			}
		}
		if p.Addr == "" {
			p.kill()
			return nil, fmt.Errorf("bench: peer %s: malformed ready line %q", name, line)
		}
		return p, nil
	case <-p.exited:
		return nil, fmt.Errorf("bench: peer %s exited before ready (%v): %s", name, p.err, p.stderr.String())
	case <-time.After(timeout):
		p.kill()
		return nil, fmt.Errorf("bench: peer %s not ready after %v: %s", name, timeout, p.stderr.String())
	}
}

func (p *PeerProc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// Stop sends SIGTERM and waits up to timeout for a clean exit (status 0);
// past it the peer is killed and Stop reports that it did not stop cleanly.
func (p *PeerProc) Stop(timeout time.Duration) error {
	select {
	case <-p.exited:
		return fmt.Errorf("bench: peer %s had already exited (%v): %s", p.Name, p.err, p.stderr.String())
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		if p.err != nil {
			return fmt.Errorf("bench: peer %s exit: %v: %s", p.Name, p.err, p.stderr.String())
		}
		return nil
	case <-time.After(timeout):
		p.kill()
		return fmt.Errorf("bench: peer %s ignored SIGTERM for %v; killed", p.Name, timeout)
	}
}

// Exited reports whether the peer process has ended.
func (p *PeerProc) Exited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// adminClient is shared by every admin request; loopback only.
var adminClient = &http.Client{Timeout: 10 * time.Second}

// fetchStats GETs http://admin/stats, or /gc when gc is true.
func fetchStats(admin string, gc bool) (peers.Stats, error) {
	var st peers.Stats
	if admin == "" {
		return st, errors.New("bench: no admin address")
	}
	path := "/stats"
	if gc {
		path = "/gc"
	}
	resp, err := adminClient.Get("http://" + admin + path)
	if err != nil {
		return st, fmt.Errorf("bench: admin: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("bench: admin %s: %s", path, resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&st); err != nil {
		return st, fmt.Errorf("bench: admin: %w", err)
	}
	return st, nil
}

// tailBuffer keeps the last max bytes written (a child's stderr).
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (t *tailBuffer) Write(b []byte) (int, error) {
	t.mu.Lock()
	t.buf = append(t.buf, b...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	t.mu.Unlock()
	return len(b), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.buf))
}
