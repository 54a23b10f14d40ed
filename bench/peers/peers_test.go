package peers

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// nbio peers are exercised out of process by package bench: under the race
// detector nbio's epoll hand-off of accepted connections reports races
// inside nbio itself.

func waitFor(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func start(t *testing.T, name string) Server {
	t.Helper()
	s, err := Start(name, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return s
}

func dial(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	return c
}

func TestEchoPeers(t *testing.T) {
	for _, name := range []string{"gorilla-echo", "tarpon-echo"} {
		t.Run(name, func(t *testing.T) {
			s := start(t, name)
			c := dial(t, "ws://"+s.Addr()+"/echo")
			cases := []struct {
				name string
				mt   int
				msg  string
			}{
				{name: "text stays text", mt: websocket.TextMessage, msg: "héllo"},
				{name: "binary stays binary", mt: websocket.BinaryMessage, msg: "\x00\x01\x02"},
				{name: "large", mt: websocket.BinaryMessage, msg: strings.Repeat("z", 100000)},
			}
			for _, tc := range cases {
				if err := c.WriteMessage(tc.mt, []byte(tc.msg)); err != nil {
					t.Fatal(err)
				}
				mt, got, err := c.ReadMessage()
				if err != nil || mt != tc.mt || string(got) != tc.msg {
					t.Fatalf("%s: got type %d, %d bytes, %v", tc.name, mt, len(got), err)
				}
			}
			waitFor(t, 5*time.Second, func() bool { return s.Conns() == 1 })
			c.Close()
			waitFor(t, 5*time.Second, func() bool { return s.Conns() == 0 })
		})
	}
}

func TestBroadcastPeers(t *testing.T) {
	for _, name := range []string{"gorilla-bcast", "tarpon-bcast"} {
		t.Run(name, func(t *testing.T) {
			s := start(t, name)
			url := "ws://" + s.Addr() + "/bcast"
			a, b := dial(t, url), dial(t, url)
			pub := dial(t, url+"?pub=1")
			waitFor(t, 5*time.Second, func() bool { return s.Conns() == 3 })
			if err := pub.WriteMessage(websocket.BinaryMessage, []byte("news")); err != nil {
				t.Fatal(err)
			}
			for i, c := range []*websocket.Conn{a, b} {
				mt, got, err := c.ReadMessage()
				if err != nil || mt != websocket.BinaryMessage || string(got) != "news" {
					t.Fatalf("subscriber %d: %d %q %v", i, mt, got, err)
				}
			}
			// A subscriber's own message reaches every subscriber, itself too;
			// the publisher-only connection never receives.
			if err := a.WriteMessage(websocket.TextMessage, []byte("hi")); err != nil {
				t.Fatal(err)
			}
			for i, c := range []*websocket.Conn{a, b} {
				mt, got, err := c.ReadMessage()
				if err != nil || mt != websocket.TextMessage || string(got) != "hi" {
					t.Fatalf("subscriber %d: %d %q %v", i, mt, got, err)
				}
			}
			_ = pub.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			if _, _, err := pub.ReadMessage(); err == nil {
				t.Fatal("publisher-only connection received a broadcast")
			}
		})
	}
}

func TestTarponRawEcho(t *testing.T) {
	s := start(t, "tarpon-echo")
	nc, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(nc, "GET /raw HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("raw response: %v %v", resp, err)
	}
	if _, err := io.WriteString(nc, "ping-bytes"); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len("ping-bytes"))
	if _, err := io.ReadFull(br, got); err != nil || string(got) != "ping-bytes" {
		t.Fatalf("raw echo %q %v", got, err)
	}
}

func TestAdminHandler(t *testing.T) {
	s := start(t, "gorilla-echo")
	hs, ln, err := ServeAdmin("127.0.0.1:0", "gorilla-echo", s)
	if err != nil {
		t.Fatal(err)
	}
	defer hs.Close()
	dial(t, "ws://"+s.Addr()+"/echo")
	waitFor(t, 5*time.Second, func() bool { return s.Conns() == 1 })
	for _, path := range []string{"/stats", "/gc"} {
		resp, err := http.Get("http://" + ln.Addr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		var st Stats
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if err != nil || st.Peer != "gorilla-echo" || st.Conns != 1 || st.PID == 0 || st.Goroutines == 0 || st.HeapInuse == 0 {
			t.Fatalf("%s: %+v %v", path, st, err)
		}
	}
}

func TestStartErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cases := []struct{ name, peer, addr, want string }{
		{name: "unknown", peer: "nope", addr: "127.0.0.1:0", want: "unknown peer"},
		{name: "busy gorilla", peer: "gorilla-echo", addr: busy.Addr().String(), want: "address already in use"},
		{name: "busy tarpon", peer: "tarpon-echo", addr: busy.Addr().String(), want: "address already in use"},
		{name: "bad address", peer: "gorilla-echo", addr: "no-port", want: "listen"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Start(tc.peer, tc.addr)
			if err == nil {
				_ = s.Shutdown(context.Background())
				t.Fatal("started")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v does not say %q", err, tc.want)
			}
		})
	}
}
