package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"
)

// startServer runs tarpon on the embedded examples app on a free port.
func startServer(t testing.TB, extra ...string) *server {
	t.Helper()
	s, err := parseSettings(append([]string{"--addr", "127.0.0.1:0"}, extra...), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := start(s, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.stop(log) })
	return srv
}

func TestVersion(t *testing.T) {
	var out strings.Builder
	if code := run([]string{"version"}, &out, io.Discard); code != 0 || !strings.HasPrefix(out.String(), "tarpon ") {
		t.Fatalf("code %d, output %q", code, out.String())
	}
}

func TestServesExamplesAndSMQClient(t *testing.T) {
	srv := startServer(t)
	for _, tc := range []struct {
		name, path string
		status     int
		contains   string
	}{
		{"index", "/", http.StatusOK, "<html"},
		{"hello page", "/ws/hello.lsp", http.StatusOK, "new WebSocket"},
		{"browser SMQ client", "/rtl/smq.js", http.StatusOK, "SMQ"},
		{"hidden preload", "/.preload", http.StatusNotFound, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.Get("http://" + srv.addr + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status || !strings.Contains(string(body), tc.contains) {
				t.Fatalf("status %d, body %.200q", resp.StatusCode, body)
			}
		})
	}
}

// TestHelloBlockingHoldsNoWorker: while 1,000 clients hold the blocking-style
// hello page open (it sleeps in the page between writes), other pages still
// answer within 50 ms.
func TestHelloBlockingHoldsNoWorker(t *testing.T) {
	srv := startServer(t)
	const clients = 1000
	conns := make([]*websocket.Conn, 0, clients)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range clients {
		c, _, err := websocket.DefaultDialer.Dial("ws://"+srv.addr+"/ws/hello-blocking.lsp", nil)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	// Every client got its first message: all 1,000 pages are running.
	for i, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, msg, err := c.ReadMessage(); err != nil || !strings.Contains(string(msg), "Hello number 1") {
			t.Fatalf("client %d: %q %v", i, msg, err)
		}
	}
	var worst time.Duration
	for range 20 {
		t0 := time.Now()
		resp, err := http.Get("http://" + srv.addr + "/ws/hello.lsp")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		worst = max(worst, time.Since(t0))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	if worst > 50*time.Millisecond {
		t.Fatalf("a page took %v while 1000 blocking pages were open (want <= 50ms)", worst)
	}
	t.Logf("slowest of 20 page loads with %d blocking pages open: %v", clients, worst)
}

// chromium returns the browser's path; under CI a missing browser fails the test.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium not found: the browser tests need Debian's chromium (make test installs it as root)")
	}
	t.Skip("chromium not found (set CI=1 to make this a failure)")
	return ""
}

// browser starts a headless Chromium driven by chromedp.
func browser(t *testing.T) context.Context {
	path := chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelC(); cancelA() })
	return ctx
}

// TestHelloPageInBrowser: the tutorial's 8.1 page in a real browser shows
// five messages about a second apart.
func TestHelloPageInBrowser(t *testing.T) {
	srv := startServer(t)
	ctx := browser(t)
	if err := chromedp.Do(ctx, chromedp.Navigate("http://"+srv.addr+"/ws/hello.lsp")); err != nil {
		t.Fatal(err)
	}
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, chromedp.WaitVisible(`#messages li:nth-child(5)`)); err != nil {
		t.Fatal(err)
	}
	stamps, err := chromedp.Run(tctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('#messages li')).map(li => li.dataset.ms)`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(tctx, chromedp.Poll[bool](`document.getElementById('status').textContent === 'closed'`, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Fatalf("the socket did not close after five messages: %v", err)
	}
	if len(stamps) != 5 {
		t.Fatalf("got %d messages", len(stamps))
	}
	var ms []int
	for _, s := range stamps {
		v, _ := strconv.Atoi(s)
		ms = append(ms, v)
	}
	for i := 1; i < len(ms); i++ {
		if gap := ms[i] - ms[i-1]; gap < 800 || gap > 1600 {
			t.Fatalf("messages at %v ms: gap %d ms is not about a second", ms, gap)
		}
	}
	t.Logf("messages at %v ms", ms)
}
