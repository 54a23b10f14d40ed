package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tarponrt/tarpon/broker"
	"github.com/tarponrt/tarpon/runtime"
)

// syncBuffer is the device's output, written by its goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDeviceAgainstBroker runs the device against the project's broker on
// loopback, over both transports: the server side sees its readings, and a
// command published by the server reaches it.
func TestDeviceAgainstBroker(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	r, err := runtime.New(runtime.Config{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	hub := broker.New(r, &broker.Options{Logger: logger})
	srv := httptest.NewServer(hub)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Close()
		_ = r.Shutdown(ctx)
	})

	var mu sync.Mutex
	var got []reading
	hub.Subscribe("device/readings", &broker.SubscribeOptions{OnMsg: func(m broker.Message) {
		var rd reading
		if json.Unmarshal(m.Data, &rd) == nil {
			mu.Lock()
			got = append(got, rd)
			mu.Unlock()
		}
	}})
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(got) }

	for _, tc := range []struct{ name, url string }{
		{"raw", srv.URL + "/smq.lsp"},
		{"websocket", "ws" + strings.TrimPrefix(srv.URL, "http") + "/smq.lsp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			subs := func() int { n, _ := hub.Subscribers(hub.Create("device/cmd", 0)); return n }
			waitFor(t, func() bool { return subs() == 0 }) // the previous device has left
			mu.Lock()
			got = nil
			mu.Unlock()
			out := &syncBuffer{}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			done := make(chan error, 1)
			go func() {
				done <- run(ctx, config{url: tc.url, uid: "device-test-" + tc.name, topic: "device/readings",
					cmdTopic: "device/cmd", interval: 200 * time.Millisecond, count: 3}, out)
			}()
			// Once the device has subscribed, send it a command.
			waitFor(t, func() bool { return subs() == 1 })
			if _, err := hub.PublishTopic([]byte(`{"cmd":"blink"}`), "device/cmd", ""); err != nil {
				t.Fatal(err)
			}
			if err := <-done; err != nil {
				t.Fatalf("run: %v\n%s", err, out)
			}
			waitFor(t, func() bool { return count() == 3 })
			mu.Lock()
			for i, rd := range got {
				if rd.UID != "device-test-"+tc.name || rd.Seq != i+1 {
					t.Errorf("reading %d = %+v", i, rd)
				}
			}
			mu.Unlock()
			if !strings.Contains(out.String(), `command from ETID 1: {"cmd":"blink"}`) {
				t.Errorf("command not seen; output:\n%s", out)
			}
		})
	}
}

func TestShortUID(t *testing.T) {
	if err := run(context.Background(), config{uid: "abc"}, io.Discard); err == nil {
		t.Fatal("a UID shorter than 6 bytes must be refused before dialing")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
