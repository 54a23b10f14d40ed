package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	goruntime "runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tarponrt/tarpon/broker/client"
	"github.com/tarponrt/tarpon/test/hostile"
)

func main() { os.Exit(run()) }

type counts struct {
	wsConns, wsMsgs, smqConns, smqMsgs, pages, errors atomic.Uint64
}

type snapshot struct {
	goroutines int
	fds        int
	heap       uint64
}

func snap() snapshot {
	goruntime.GC()
	goruntime.GC()
	var ms goruntime.MemStats
	goruntime.ReadMemStats(&ms)
	fds, _ := os.ReadDir("/proc/self/fd")
	return snapshot{goroutines: goruntime.NumGoroutine(), fds: len(fds), heap: ms.HeapInuse}
}

func run() int {
	duration := flag.Duration("duration", 10*time.Minute, "how long the load runs")
	results := flag.String("results", "", "append the results (markdown) to this file")
	workers := flag.Int("workers", 4, "simulated clients of each kind at once")
	pause := flag.Duration("pause", 50*time.Millisecond, "pause of each simulated client between rounds")
	flag.Parse()

	s, err := hostile.Start(hostile.Config{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		return 1
	}
	defer s.Close()
	var c counts
	// Warm up once with each kind so lazily created state is in the baseline.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	wsRound(ctx, s, &c, 5)
	smqRound(ctx, s, &c, false, 5)
	smqRound(ctx, s, &c, true, 5)
	pageRound(s, &c)
	cancel()
	settle(s)
	before := snap()

	fmt.Printf("soak: %v of mixed load, %d workers per kind, on %s\n", *duration, *workers, s.Addr)
	start := time.Now()
	ctx, cancel = context.WithTimeout(context.Background(), *duration)
	var wg sync.WaitGroup
	var peakGoroutines atomic.Int64
	for i := 0; i < *workers; i++ {
		wg.Add(4)
		go func() { defer wg.Done(); loop(ctx, *pause, func() { wsRound(ctx, s, &c, 20) }) }()
		go func() { defer wg.Done(); loop(ctx, *pause, func() { smqRound(ctx, s, &c, false, 20) }) }()
		go func() { defer wg.Done(); loop(ctx, *pause, func() { smqRound(ctx, s, &c, true, 20) }) }()
		go func() { defer wg.Done(); loop(ctx, *pause, func() { pageRound(s, &c) }) }()
	}
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if g := int64(goruntime.NumGoroutine()); g > peakGoroutines.Load() {
					peakGoroutines.Store(g)
				}
				if el := time.Since(start); el.Round(time.Second)%(30*time.Second) == 0 {
					fmt.Printf("soak: %v: ws %d conns, smq %d conns %d msgs, pages %d, errors %d\n", el.Round(time.Second),
						c.wsConns.Load(), c.smqConns.Load(), c.smqMsgs.Load(), c.pages.Load(), c.errors.Load())
				}
			}
		}
	}()
	wg.Wait()
	cancel()
	ran := time.Since(start)
	settle(s)
	after := snap()

	ok := after.goroutines <= before.goroutines+5 &&
		after.fds <= before.fds+5 &&
		after.heap <= before.heap+16<<20 &&
		c.errors.Load() <= (c.wsConns.Load()+c.smqConns.Load()+c.pages.Load())/1000
	verdict := "pass"
	if !ok {
		verdict = "FAIL"
	}
	report := fmt.Sprintf(`
## Soak

%s, %s/%s, %d CPUs. `+"`go run ./cmd/soak --duration %v --workers %d --pause %v`"+`: the whole stack
in-process (test/hostile.Stack) under mixed load for %v: WebSocket echo clients through a
Lua cosocket (/ws/echo.lsp), SMQ clients over WebSocket and raw TCP (/smq.lsp) that connect,
subscribe, publish to themselves and leave, and Lua page requests; %d of each at once.

| figure | before | after | bound |
| --- | ---: | ---: | --- |
| goroutines | %d | %d | +5 (peak during load %d) |
| open fds | %d | %d | +5 |
| heap in use (after GC) | %.1f MiB | %.1f MiB | +16 MiB |

| load | count |
| --- | ---: |
| WebSocket connections / echoed messages | %d / %d |
| SMQ connections / messages received | %d / %d |
| Lua page requests | %d |
| client-side errors | %d |

Verdict: **%s**.
`, time.Now().UTC().Format("2006-01-02 15:04 UTC"), goruntime.GOOS, goruntime.GOARCH, goruntime.NumCPU(), *duration, *workers, *pause, ran.Round(time.Second), *workers,
		before.goroutines, after.goroutines, peakGoroutines.Load(), before.fds, after.fds,
		float64(before.heap)/(1<<20), float64(after.heap)/(1<<20),
		c.wsConns.Load(), c.wsMsgs.Load(), c.smqConns.Load(), c.smqMsgs.Load(), c.pages.Load(), c.errors.Load(), verdict)
	fmt.Print(report)
	if *results != "" {
		f, err := os.OpenFile(*results, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err == nil {
			_, err = f.WriteString(report)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "soak: results:", err)
			return 1
		}
	}
	if !ok {
		return 1
	}
	return 0
}

// loop runs round until ctx ends, pausing between rounds: a soak is a
// long steady load (a few hundred connections a second in all, under the
// reactor's default upgrade rate of 1,000 per second per address), not a
// stress test.
func loop(ctx context.Context, pause time.Duration, round func()) {
	for ctx.Err() == nil {
		round()
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
	}
}

// settle waits until the server holds no connection (at most 30 s).
func settle(s *hostile.Stack) {
	deadline := time.Now().Add(30 * time.Second)
	for s.Reactor.Stats().Open > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	http.DefaultClient.CloseIdleConnections()
	time.Sleep(200 * time.Millisecond) // let closed HTTP goroutines exit before counting
}

// wsRound opens an echo WebSocket, sends n messages, reads them back, closes.
func wsRound(ctx context.Context, s *hostile.Stack, c *counts, n int) {
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	conn, _, err := d.DialContext(ctx, s.WSURL("/ws/echo.lsp"), nil)
	if err != nil {
		countErr(ctx, c, err)
		return
	}
	defer conn.Close()
	c.wsConns.Add(1)
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for i := 0; i < n; i++ {
		if err := conn.WriteMessage(websocket.TextMessage, []byte("soak echo")); err != nil {
			countErr(ctx, c, err)
			return
		}
		if _, _, err := conn.ReadMessage(); err != nil {
			countErr(ctx, c, err)
			return
		}
		c.wsMsgs.Add(1)
	}
	_ = conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
}

// smqRound connects an SMQ client, subscribes, publishes n messages to the
// topic and waits for them, then leaves.
func smqRound(ctx context.Context, s *hostile.Stack, c *counts, raw bool, n int) {
	got := make(chan struct{}, n)
	cl, err := client.Dial(ctx, s.URL("/smq.lsp"), &client.Options{Raw: raw, OnMsg: func(client.Message) { got <- struct{}{} }})
	if err != nil {
		countErr(ctx, c, err)
		return
	}
	defer cl.Close()
	c.smqConns.Add(1)
	// A fixed set of topic names: names live as long as the broker, so a
	// fresh name per connection would grow it by design (see the report).
	topic := fmt.Sprintf("soak/%d", cl.Etid()%16)
	if _, _, err := cl.SubscribeWait(ctx, topic, &client.SubscribeOptions{OnMsg: func(client.Message) {}}); err != nil {
		countErr(ctx, c, err)
		return
	}
	for i := 0; i < n; i++ {
		// To its own ETID (what the OnMsg above counts), and to the topic
		// it shares with other clients.
		if err := cl.PublishTo([]byte("soak message"), cl.Etid(), 0); err != nil {
			countErr(ctx, c, err)
			return
		}
		if err := cl.Publish([]byte("soak message"), topic, ""); err != nil {
			countErr(ctx, c, err)
			return
		}
	}
	for i := 0; i < n; i++ {
		select {
		case <-got:
			c.smqMsgs.Add(1)
		case <-time.After(10 * time.Second):
			countErr(ctx, c, errors.New("smq message lost"))
			return
		case <-ctx.Done():
			return
		}
	}
}

// pageRound requests two Lua pages.
func pageRound(s *hostile.Stack, c *counts) {
	for _, p := range []string{"/", "/smq/devices.lsp"} {
		resp, err := http.Get(s.URL(p))
		if err != nil {
			c.errors.Add(1)
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			c.errors.Add(1)
			continue
		}
		c.pages.Add(1)
	}
}

// countErr counts a client error unless the run is ending.
func countErr(ctx context.Context, c *counts, err error) {
	// The clients' socket deadlines are the run's end: an i/o timeout can
	// beat ctx's own timer to it by a moment.
	if dl, ok := ctx.Deadline(); ctx.Err() == nil && (!ok || time.Now().Before(dl)) {
		c.errors.Add(1)
		fmt.Fprintln(os.Stderr, "soak: client error:", err)
	}
}
