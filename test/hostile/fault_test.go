package hostile

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tarponrt/tarpon/runtime"
)

// panicky echoes messages and panics on "boom".
type panicky struct{}

func (panicky) OnOpen(*runtime.Conn) {}
func (panicky) OnMessage(c *runtime.Conn, msg []byte, text bool) {
	if string(msg) == "boom" {
		panic("handler bug")
	}
	_ = c.Send(msg)
}
func (panicky) OnDrain(*runtime.Conn)        {}
func (panicky) OnClose(*runtime.Conn, error) {}

// TestPanickingHandler: a Go handler that panics closes its own
// connection only; the event loop and the other connections carry on, and
// the panic is counted.
func TestPanickingHandler(t *testing.T) {
	r, err := runtime.New(runtime.Config{Loops: 1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Shutdown(context.Background())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = r.Upgrade(w, req, panicky{}, nil)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	addr := ln.Addr().String()
	good, err := dialWS(addr, "/", nil)
	if err != nil || good.status != 101 {
		t.Fatal(err)
	}
	defer good.Close()
	bad, err := dialWS(addr, "/", nil)
	if err != nil || bad.status != 101 {
		t.Fatal(err)
	}
	_, _ = bad.Write(wsFrame(0x82, []byte("boom"), true))
	_ = bad.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, bad.br); err != nil {
		t.Fatalf("the panicking connection was not closed: %v", err)
	}
	for i := 0; i < 3; i++ { // same loop (Loops: 1): still served
		_, _ = good.Write(wsFrame(0x82, []byte("fine"), true))
		op, p, err := good.readFrame(5 * time.Second)
		if err != nil || op != 2 || string(p) != "fine" {
			t.Fatalf("other connection: op %d %q %v", op, p, err)
		}
	}
	if n := r.Stats().HandlerPanics; n != 1 {
		t.Errorf("HandlerPanics = %d, want 1", n)
	}
	waitFor(t, 5*time.Second, "the panicked connection released", func() bool { return r.Stats().Open == 1 })
}

// TestAcceptBackoffEMFILE runs the stack in a child process whose
// RLIMIT_NOFILE is low, opens connections until Accept fails with EMFILE,
// then releases them: the server must have counted the failed accepts,
// stayed up, and serve again once descriptors are free (net/http backs
// off and retries temporary Accept errors).
func TestAcceptBackoffEMFILE(t *testing.T) {
	if os.Getenv("HOSTILE_EMFILE_CHILD") == "1" {
		emfileChild(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestAcceptBackoffEMFILE$", "-test.v")
	cmd.Env = append(os.Environ(), "HOSTILE_EMFILE_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("EMFILE-OK")) {
		t.Fatalf("child: %v\n%s", err, out)
	}
	for _, line := range bytes.Split(out, []byte("\n")) {
		if bytes.Contains(line, []byte("EMFILE-OK")) {
			t.Log(string(bytes.TrimSpace(line)))
		}
	}
}

func emfileChild(t *testing.T) {
	s := startStack(t, Config{})
	healthy(t, s)
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	fds, _ := os.ReadDir("/proc/self/fd")
	lim.Cur = uint64(len(fds) + 40)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	// Each connection costs two descriptors here (both ends are in this
	// process): dial until the server's Accept has failed.
	deadline := time.Now().Add(20 * time.Second)
	for s.AcceptErrors.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("Accept never failed")
		}
		c, err := net.DialTimeout("tcp", s.Addr, time.Second)
		if err != nil {
			if !errors.Is(err, syscall.EMFILE) {
				t.Logf("dial: %v", err)
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		held = append(held, c)
	}
	time.Sleep(50 * time.Millisecond) // let the server retry a few times while starved
	failed := s.AcceptErrors.Load()
	for _, c := range held {
		c.Close()
	}
	held = nil
	healthy(t, s)
	t.Logf("EMFILE-OK: %d failed accepts while starved, served again afterwards", failed)
}

// fullDisk is a log destination whose every write fails as on a full disk.
type fullDisk struct{ writes *atomic.Uint64 }

func (d fullDisk) Write([]byte) (int, error) {
	d.writes.Add(1)
	return 0, syscall.ENOSPC
}

// TestFullDiskForLogs: every component logs to a writer that fails with
// ENOSPC, at debug level so every path logs; the server keeps serving
// pages, WebSockets and SMQ, Lua errors and protocol errors included.
func TestFullDiskForLogs(t *testing.T) {
	var writes atomic.Uint64
	log := slog.New(slog.NewTextHandler(fullDisk{&writes}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := startStack(t, Config{Logger: log, Apps: map[string]fs.FS{"/abuse/": abusePages}})
	b := settle(t, s)
	for i := 0; i < 3; i++ {
		resp, err := http.Get(s.URL("/abuse/recursion.lsp")) // a Lua error: logged
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		wc, err := dialWS(s.Addr, "/ws/echo.lsp", nil)
		if err != nil || wc.status != 101 {
			t.Fatal(err)
		}
		_, _ = wc.Write(wsFrame(0x81, []byte{0xff}, true)) // a protocol error: logged
		_, _ = wc.readUntilClose(5 * time.Second)
		wc.Close()
	}
	if writes.Load() == 0 {
		t.Fatal("nothing was logged: the test proves nothing")
	}
	recovered(t, s, b)
	t.Logf("%d failed log writes", writes.Load())
}
