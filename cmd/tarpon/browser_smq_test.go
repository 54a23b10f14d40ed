package main

// Browser tests of SMQ: headless Chromium runs the real browser client
// (/rtl/smq.js) against the examples app's broker (/smq.lsp) and, for the
// reconnect test, also a minimal app in testdata/smqrestart; the whole
// server runs in-process (start(settings)). They use the chromium(t) and
// browser(t) helpers of main_test.go, so a missing browser fails under CI
// and skips otherwise.
//
// Synchronisation: every wait is a chromedp.Poll in the page with a
// deadline (interval polling, not the default requestAnimationFrame one,
// which browsers throttle in tabs that are not in front), or a Go-side poll
// with a deadline; nothing sleeps to let time pass.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// smqTestText mixes 2-, 3- and 4-byte UTF-8 sequences (Æ, —, 日, 🐟).
const smqTestText = "Ærlig Øyvind — 日本語 🐟 ÆØÅ"

// startServerAt starts tarpon at addr (on the embedded examples app unless
// extra mounts apps) and returns it with an idempotent stop, also run at
// cleanup. Unlike startServer, the test may stop the server itself.
func startServerAt(t *testing.T, addr string, extra ...string) (*server, func()) {
	t.Helper()
	s, err := parseSettings(append([]string{"--addr", addr}, extra...), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := start(s, log)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() { once.Do(func() { srv.stop(log) }) }
	t.Cleanup(stop)
	return srv, stop
}

// waitListenable polls until addr can be bound again (the old listener is
// closed; a server-side listener is not held by TIME_WAIT, but give the
// kernel a moment if it is). start() itself must not be retried: a failed
// start leaves its reactor and Lua loop running.
func waitListenable(t *testing.T, addr string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			ln.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("cannot listen on %s again after %v: %v", addr, d, err)
		}
		time.Sleep(20 * time.Millisecond) // poll interval, not synchronisation
	}
}

// jsString quotes s as a JavaScript string literal (JSON is valid JS).
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// eval runs a JavaScript expression in the tab and decodes its value;
// promises are awaited.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	v, err := chromedp.Run(tctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %.80q: %v", expr, err)
	}
	return v
}

// pollJS waits until the expression is truthy in the tab and returns its
// value; on timeout it fails with what and the page's test state.
func pollJS[T any](t *testing.T, ctx context.Context, what, expr string, d time.Duration) T {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, d+5*time.Second)
	defer cancel()
	v, err := chromedp.Run(tctx, chromedp.Poll[T](expr,
		chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(d)))
	if err != nil {
		state, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify(window.smqTest || null, (k, v) => k === "client" ? undefined : v)`))
		t.Fatalf("%s: %v (page state: %.600s)", what, err, state)
	}
	return v
}

// openSMQPage opens the app's front page (plain HTML, no scripts) in the
// tab and loads the browser client from /rtl/smq.js into it, so that
// SMQ.wsURL resolves against the server's origin.
func openSMQPage(t *testing.T, ctx context.Context, base string) {
	t.Helper()
	startTab(t, ctx)
	tctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, chromedp.Navigate(base+"/")); err != nil {
		t.Fatal(err)
	}
	got := eval[string](t, ctx, `new Promise((resolve, reject) => {
		const s = document.createElement("script");
		s.src = "/rtl/smq.js";
		s.onload = () => resolve(typeof SMQ.Client);
		s.onerror = () => reject(new Error("cannot load /rtl/smq.js"));
		document.head.appendChild(s);
	})`)
	if got != "function" {
		t.Fatalf("after loading /rtl/smq.js, typeof SMQ.Client = %q", got)
	}
}

// smqClientScript creates window.smqTest: an SMQ.Client on the app's
// broker (/smq.lsp) that subscribes to topic (raw bytes, so the test sees exactly what
// arrived) and records connects, reconnects, closes and messages. retryMs > 0
// makes onclose ask for a reconnect after that many milliseconds.
func smqClientScript(topic string, retryMs int) string {
	return fmt.Sprintf(`(() => {
	const st = window.smqTest = {etid: 0, acked: false, reconnects: 0, closes: [], got: []};
	const c = st.client = SMQ.Client(SMQ.wsURL("/smq.lsp"));
	c.onconnect = (etid) => { st.etid = etid; };
	c.onreconnect = (etid) => { st.etid = etid; st.reconnects++; };
	c.onclose = (message, canreconnect) => {
		st.closes.push({message, canreconnect});
		if (%[2]d > 0) return %[2]d;
	};
	c.subscribe(%[1]s, {
		onack: (ok) => { st.acked = ok; },
		onmsg: (data, ptid) => { st.got.push({ptid, bytes: Array.from(data)}); }
	});
	return true;
})()`, jsString(topic), retryMs)
}

// smqMessage is one message recorded by smqClientScript.
type smqMessage struct {
	Ptid  uint32 `json:"ptid"`
	Bytes []byte `json:"-"`
	Raw   []int  `json:"bytes"` // JSON numbers, not base64
}

// messagesFrom returns the messages the tab has received from ptid.
func messagesFrom(t *testing.T, ctx context.Context, ptid uint32) []smqMessage {
	t.Helper()
	all := eval[[]smqMessage](t, ctx, `window.smqTest.got`)
	var out []smqMessage
	for _, m := range all {
		if m.Ptid != ptid {
			continue
		}
		m.Bytes = make([]byte, len(m.Raw))
		for i, b := range m.Raw {
			if b < 0 || b > 255 {
				t.Fatalf("byte %d out of range in %v", b, m.Raw)
			}
			m.Bytes[i] = byte(b)
		}
		out = append(out, m)
	}
	return out
}

// startTab makes sure the browser and the tab of ctx exist. The first Run on
// a chromedp context binds the browser's life to that call's context, so it
// must not be a context with a timeout.
func startTab(t *testing.T, ctx context.Context) {
	t.Helper()
	if err := chromedp.Do(ctx); err != nil {
		t.Fatal(err)
	}
}

// newTab opens a second tab in the browser of ctx: a chromedp context that
// shares the first one's browser (and so its allocator).
func newTab(t *testing.T, ctx context.Context) context.Context {
	t.Helper()
	startTab(t, ctx)
	tab, cancel := chromedp.NewContext(ctx)
	t.Cleanup(cancel)
	startTab(t, tab)
	return tab
}

func randomTopic(prefix string) string {
	return fmt.Sprintf("%s/%08x", prefix, rand.Uint32())
}

// TestSMQTwoTabsInBrowser: two tabs of one browser connect to the example
// broker with smq.js, subscribe to one topic and talk to each other; a
// non-ASCII message arrives byte-exact in the other tab, from the sender's
// ETID, both ways.
func TestSMQTwoTabsInBrowser(t *testing.T) {
	srv := startServer(t)
	base := "http://" + srv.addr
	a := browser(t)
	b := newTab(t, a)
	topic := randomTopic("browser-test/chat")

	for _, tab := range []context.Context{a, b} {
		openSMQPage(t, tab, base)
		eval[bool](t, tab, smqClientScript(topic, 0))
	}
	var etid [2]uint32
	for i, tab := range []context.Context{a, b} {
		pollJS[bool](t, tab, "subscribe acknowledged", `window.smqTest.acked && window.smqTest.etid > 0`, 10*time.Second)
		etid[i] = eval[uint32](t, tab, `window.smqTest.etid`)
	}
	if etid[0] == etid[1] {
		t.Fatalf("both tabs got ETID %d", etid[0])
	}

	for _, tc := range []struct {
		name     string
		from, to context.Context
		fromEtid uint32
		text     string
	}{
		{"first tab to second", a, b, etid[0], smqTestText},
		{"second tab to first", b, a, etid[1], smqTestText + " (svar)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eval[bool](t, tc.from, fmt.Sprintf(`(window.smqTest.client.publish(%s, %s), true)`, jsString(tc.text), jsString(topic)))
			pollJS[bool](t, tc.to, "the message to arrive in the other tab",
				fmt.Sprintf(`window.smqTest.got.some(m => m.ptid === %d)`, tc.fromEtid), 10*time.Second)
			got := messagesFrom(t, tc.to, tc.fromEtid)
			if len(got) != 1 {
				t.Fatalf("got %d messages from ETID %d, want 1", len(got), tc.fromEtid)
			}
			if want := []byte(tc.text); string(got[0].Bytes) != string(want) {
				t.Fatalf("bytes differ:\n got % x\nwant % x", got[0].Bytes, want)
			}
			// The page decodes the same bytes back to the same text.
			text := eval[string](t, tc.to, fmt.Sprintf(
				`new TextDecoder("utf-8", {fatal: true}).decode(new Uint8Array(window.smqTest.got.find(m => m.ptid === %d).bytes))`, tc.fromEtid))
			if text != tc.text || !utf8.ValidString(text) {
				t.Fatalf("decoded %q, want %q", text, tc.text)
			}
		})
	}
}

// TestSMQHelloPageInBrowser: the tutorial's 8.3 page /smq/hello.lsp shows
// the five greetings that server-side Lua (.preload) sends to the page's
// ETID from ETID 1, about a second apart. The page's DOM has no timestamps,
// so a script installed before the page's own scripts stamps each list item
// as it is added.
func TestSMQHelloPageInBrowser(t *testing.T) {
	srv := startServer(t)
	ctx := browser(t)
	stamp := chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: `
			window.helloStamps = [];
			new MutationObserver(records => {
				for (const r of records) for (const n of r.addedNodes)
					if (n.nodeName === "LI" && r.target.id === "messages")
						window.helloStamps.push({at: performance.now(), text: n.textContent});
			}).observe(document, {childList: true, subtree: true});`})
		return err
	})
	startTab(t, ctx)
	tctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, stamp, chromedp.Navigate("http://"+srv.addr+"/smq/hello.lsp")); err != nil {
		t.Fatal(err)
	}
	pollJS[bool](t, ctx, "five greetings", `document.querySelectorAll("#messages li").length >= 5`, 15*time.Second)

	type item struct {
		At   float64 `json:"at"`
		Text string  `json:"text"`
	}
	items := eval[[]item](t, ctx, `window.helloStamps`)
	shown := eval[[]string](t, ctx, `Array.from(document.querySelectorAll("#messages li")).map(li => li.textContent)`)
	status := eval[string](t, ctx, `document.getElementById("status").textContent`)
	if len(items) != 5 || len(shown) != 5 {
		t.Fatalf("stamped %d and shown %d items, want 5: %q", len(items), len(shown), shown)
	}
	if !strings.HasPrefix(status, "connected, our ETID is ") {
		t.Fatalf("status %q", status)
	}
	var ms []int
	for i, it := range items {
		want := fmt.Sprintf("Hello %d of 5 (you said: Hello from the browser ✓)  (from ETID 1)", i+1)
		if it.Text != want || shown[i] != want {
			t.Fatalf("item %d: stamped %q, shown %q, want %q", i+1, it.Text, shown[i], want)
		}
		ms = append(ms, int(it.At-items[0].At))
	}
	for i := 1; i < len(ms); i++ {
		if gap := ms[i] - ms[i-1]; gap < 800 || gap > 1600 {
			t.Fatalf("greetings at %v ms: gap %d ms is not about a second", ms, gap)
		}
	}
	t.Logf("greetings at %v ms", ms)
}

// TestSMQBrowserReconnects: a page whose onclose asks for a reconnect
// every second survives losing its broker: its onreconnect fires, its
// subscription is restored on the new broker, and a message published
// afterwards by a fresh tab arrives. Two ways to lose the broker: a full
// server restart on the same address (srv.stop, then start), and an app
// reload (what SIGHUP and --reload do: onunload, then a new .preload and a
// new broker, same listener). Both need the app's onunload to close its
// SMQ clients silently: a broker Disconnect tells smq.js not to reconnect.
// The examples app is what users run; testdata/smqrestart is a minimal app
// that keeps the mechanism tested whatever the examples app does.
func TestSMQBrowserReconnects(t *testing.T) {
	app, err := filepath.Abs(filepath.Join("testdata", "smqrestart"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, how string
		extra     []string
	}{
		{"examples app restart", "restart", nil},
		{"examples app reload", "reload", nil},
		{"minimal app restart", "restart", []string{"-l", "::" + app}},
	} {
		t.Run(tc.name, func(t *testing.T) { testReconnect(t, tc.how, tc.extra...) })
	}
}

// testReconnect runs the reconnect scenario; how is "restart" or "reload",
// and extra mounts the app (the examples app without extra).
func testReconnect(t *testing.T, how string, extra ...string) {
	srv, stop := startServerAt(t, "127.0.0.1:0", extra...)
	addr := srv.addr
	base := "http://" + addr
	ctx := browser(t)
	// Close the browser before any server stops (cleanups run last first),
	// so that a stop does not wait for the browser's idle sockets.
	// chromedp.Cancel panics when called twice, hence the once.
	closeBrowser := sync.OnceFunc(func() { _ = chromedp.Cancel(ctx) })
	t.Cleanup(closeBrowser)
	topic := randomTopic("browser-test/" + how)

	openSMQPage(t, ctx, base)
	eval[bool](t, ctx, smqClientScript(topic, 1000))
	pollJS[bool](t, ctx, "first connect", `window.smqTest.acked && window.smqTest.etid > 0`, 10*time.Second)
	etid1 := eval[uint32](t, ctx, `window.smqTest.etid`)

	t0 := time.Now()
	switch how {
	case "restart":
		// stop can take ~5 s: http.Server.Shutdown waits that long for a
		// connection that the browser opened speculatively and never used.
		stop()
	case "reload":
		if err := srv.lsp.Reload(); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("unknown scenario %q", how)
	}
	lost := time.Since(t0)
	type closeEvent struct {
		Message      string `json:"message"`
		CanReconnect bool   `json:"canreconnect"`
	}
	pollJS[bool](t, ctx, "onclose after the "+how, `window.smqTest.closes.length > 0`, 10*time.Second)
	first := eval[[]closeEvent](t, ctx, `window.smqTest.closes`)[0]
	if !first.CanReconnect {
		t.Fatalf("the %s closed the page with %q and no reconnect allowed (a broker Disconnect): smq.js will not come back", how, first.Message)
	}

	t1 := time.Now()
	if how == "restart" {
		waitListenable(t, addr, 5*time.Second)
		srv2, _ := startServerAt(t, addr, extra...)
		t.Cleanup(closeBrowser)
		if srv2.addr != addr {
			t.Fatalf("restarted on %s, want %s", srv2.addr, addr)
		}
	}
	pollJS[bool](t, ctx, "onreconnect", `window.smqTest.reconnects > 0`, 15*time.Second)
	etid2 := eval[uint32](t, ctx, `window.smqTest.etid`)
	t.Logf("%s took %v; reconnected %v later (close: %q; ETID %d, then %d)",
		how, lost.Round(time.Millisecond), time.Since(t1).Round(time.Millisecond), first.Message, etid1, etid2)

	// A fresh tab, connected only to the new broker, publishes to the topic
	// the page subscribed to before the broker went away.
	pub := newTab(t, ctx)
	openSMQPage(t, pub, base)
	eval[bool](t, pub, smqClientScript(randomTopic("browser-test/other"), 0))
	pollJS[bool](t, pub, "publisher connected", `window.smqTest.acked && window.smqTest.etid > 0`, 10*time.Second)
	pubEtid := eval[uint32](t, pub, `window.smqTest.etid`)
	eval[bool](t, pub, fmt.Sprintf(`(window.smqTest.client.publish(%s, %s), true)`, jsString(smqTestText), jsString(topic)))
	pollJS[bool](t, ctx, "the message published after the "+how,
		fmt.Sprintf(`window.smqTest.got.some(m => m.ptid === %d)`, pubEtid), 10*time.Second)
	got := messagesFrom(t, ctx, pubEtid)
	if len(got) != 1 || string(got[0].Bytes) != smqTestText {
		t.Fatalf("got %d messages, first % x; want one: % x", len(got), firstBytes(got), []byte(smqTestText))
	}
}

func firstBytes(ms []smqMessage) []byte {
	if len(ms) == 0 {
		return nil
	}
	return ms[0].Bytes
}
