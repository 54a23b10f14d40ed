package smqjs

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tarponrt/tarpon/broker"
	"github.com/tarponrt/tarpon/broker/client"
	"github.com/tarponrt/tarpon/runtime"
)

// These tests run the Node scripts in test/js against a real broker: the
// runtime reactor plus broker.Hub behind an httptest server on loopback.
// They need node and node_modules/ws (npm install --no-audit --no-fund in
// the repository root). When either is missing the tests fail if the CI
// environment variable is set, and are skipped otherwise.

// repoRoot is the module root (this package is broker/smqjs).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// nodeOrSkip returns the node binary, or fails (CI set) / skips the test.
func nodeOrSkip(t *testing.T) string {
	t.Helper()
	var missing string
	node, err := exec.LookPath("node")
	if err != nil {
		missing = "node is not installed (not found in PATH)"
	} else if _, err := os.Stat(filepath.Join(repoRoot(t), "node_modules", "ws", "package.json")); err != nil {
		missing = "node_modules/ws is missing: run `npm install --no-audit --no-fund` in " + repoRoot(t)
	}
	if missing != "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI is set and the Node tests cannot run: %s", missing)
		}
		t.Skipf("skipping Node tests (set CI to make this a failure): %s", missing)
	}
	return node
}

// runNode runs node test/js/<script> args..., calling onLine (on the test
// goroutine) for every stdout line, and fails the test unless it exits 0.
func runNode(t *testing.T, script string, onLine func(line string), args ...string) {
	t.Helper()
	node := nodeOrSkip(t)
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	root := repoRoot(t)
	cmd := exec.CommandContext(ctx, node, append([]string{filepath.Join(root, "test", "js", script)}, args...)...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "SMQ_TEST_TIMEOUT_MS=30000")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		out.WriteString(line + "\n")
		if onLine != nil {
			onLine(line)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("node %s %s: %v\nstdout:\n%s\nstderr:\n%s", script, strings.Join(args, " "), err, out.String(), stderr.String())
	}
	if !strings.Contains(out.String(), "PASS") {
		t.Fatalf("node %s exited 0 without PASS\nstdout:\n%s\nstderr:\n%s", script, out.String(), stderr.String())
	}
}

type testBroker struct {
	r    *runtime.Reactor
	hub  *broker.Hub
	srv  *httptest.Server
	addr string
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startBroker starts a broker on addr ("127.0.0.1:0", or a stopped
// broker's address to restart there), stopped at cleanup.
func startBroker(t *testing.T, addr string) *testBroker {
	t.Helper()
	r, err := runtime.New(runtime.Config{Loops: 2, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	hub := broker.New(r, &broker.Options{Logger: quietLogger()})
	var ln net.Listener
	end := time.Now().Add(5 * time.Second)
	for {
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("listen %s: %v", addr, err)
		}
		time.Sleep(5 * time.Millisecond) // polling for the port to be free
	}
	srv := httptest.NewUnstartedServer(hub)
	srv.Listener = ln
	srv.Start()
	b := &testBroker{r: r, hub: hub, srv: srv, addr: ln.Addr().String()}
	t.Cleanup(b.stop)
	return b
}

func (b *testBroker) stop() {
	if b.srv == nil {
		return
	}
	b.srv.Close()
	b.srv = nil
	b.hub.Shutdown("", 0)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = b.r.Shutdown(ctx)
}

func (b *testBroker) url() string { return "ws://" + b.addr + "/smq" }

// TestNodeUTF8 runs the pure-JS checks (SMQ.utf8, SMQ.wsURL, SMQ.websocket).
func TestNodeUTF8(t *testing.T) {
	runNode(t, "utf8.js", nil, "-")
}

// TestNodeProtocol checks smq.js byte for byte against a scripted fake
// broker inside the Node process (handshake, framing, protocol errors,
// refusals, server Disconnect).
func TestNodeProtocol(t *testing.T) {
	runNode(t, "protocol.js", nil, "-")
}

// TestNodePubSub: queued calls before connect, text/JSON/binary, non-ASCII
// UTF-8, direct ETID messages with sub-topics, observe, disconnect.
func TestNodePubSub(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	runNode(t, "pubsub.js", nil, b.url())
}

// TestNodeRPC: request/response with the server-side client at ETID 1, and a
// server Disconnect ending the client without reconnect.
func TestNodeRPC(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	hub := b.hub
	hub.Subscribe("self", &broker.SubscribeOptions{Subtopic: "echo", OnMsg: func(m broker.Message) {
		_, _ = hub.Publish(append([]byte("echo:"), m.Data...), m.Ptid, m.Subtid)
	}})
	hub.Subscribe("self", &broker.SubscribeOptions{Subtopic: "add", JSON: true, OnMsg: func(m broker.Message) {
		req, _ := m.JSON.(map[string]any)
		a, _ := req["a"].(float64)
		c, _ := req["b"].(float64)
		resp, _ := json.Marshal(map[string]any{"sum": a + c})
		_, _ = hub.Publish(resp, m.Ptid, m.Subtid)
	}})
	hub.Subscribe("self", &broker.SubscribeOptions{Subtopic: "news", OnMsg: func(broker.Message) {
		_, _ = hub.PublishTopic([]byte("news from server"), "srv-news", "")
	}})
	shutdowns := 0
	runNode(t, "rpc.js", func(line string) {
		if etid, ok := strings.CutPrefix(line, "SHUTDOWN "); ok {
			n, err := strconv.ParseUint(etid, 10, 32)
			if err != nil {
				t.Errorf("bad SHUTDOWN line %q", line)
				return
			}
			shutdowns++
			hub.Shutdown("bye", uint32(n))
		}
	}, b.url())
	if shutdowns != 1 {
		t.Fatalf("script asked for %d shutdowns, want 1", shutdowns)
	}
}

// TestNodeReconnect restarts the broker on the same port while the client
// runs, with and without cleanstart.
func TestNodeReconnect(t *testing.T) {
	for _, mode := range []string{"keep", "clean"} {
		t.Run(mode, func(t *testing.T) {
			b := startBroker(t, "127.0.0.1:0")
			restarted := false
			runNode(t, "reconnect.js", func(line string) {
				if line == "READY" && !restarted {
					restarted = true
					addr := b.addr
					b.stop()
					b = startBroker(t, addr)
				}
			}, b.url(), mode)
			if !restarted {
				t.Fatal("script never signalled READY")
			}
		})
	}
}

// TestNodeInterop: smq.js (WebSocket) and the Go client (raw transport,
// Connect v2) talk through the broker both ways.
func TestNodeInterop(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	gc, err := client.Dial(ctx, "http://"+b.addr+"/smq", &client.Options{Raw: true, ConnectV2: true})
	if err != nil {
		t.Fatal(err)
	}
	defer gc.Close()
	replies := make(chan string, 1)
	if _, _, err := gc.SubscribeWait(ctx, "self", &client.SubscribeOptions{
		Subtopic: "reply",
		OnMsg:    func(m client.Message) { replies <- string(m.Data) },
	}); err != nil {
		t.Fatal(err)
	}
	ready := false
	runNode(t, "interop.js", func(line string) {
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != "READY" {
			return
		}
		ready = true
		etid, _ := strconv.ParseUint(f[1], 10, 32)
		if err := gc.Publish([]byte("from go ✓"), "interop", ""); err != nil {
			t.Errorf("publish: %v", err)
			return
		}
		ask, err := gc.CreateSub(ctx, "ask")
		if err != nil {
			t.Errorf("createsub: %v", err)
			return
		}
		if err := gc.PublishTo([]byte("question"), uint32(etid), ask); err != nil {
			t.Errorf("publish to etid: %v", err)
			return
		}
		select {
		case r := <-replies:
			if r != "answer:question" {
				t.Errorf("reply %q", r)
			}
		case <-ctx.Done():
			t.Error("no reply from the Node client")
		}
		if err := gc.Publish([]byte("done"), "interop", ""); err != nil {
			t.Errorf("publish done: %v", err)
		}
	}, b.url())
	if !ready {
		t.Fatal("script never signalled READY")
	}
}
