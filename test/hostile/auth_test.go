package hostile

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tarponrt/tarpon/broker/client"
)

// TestAuthExample drives the login example (examples/www/auth) without a
// browser: an HTTP client with a cookie jar logs in, then opens SMQ over
// both transports with the session cookie. Logged in, the broker admits it
// and permittop applies the per-user rules; without a login (or after
// logout) pages redirect to the login page and the broker refuses.
func TestAuthExample(t *testing.T) {
	s := startStack(t, Config{})
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string) (*http.Response, string) {
		resp, err := hc.Get(s.URL(path))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(body)
	}
	login := func(user, password string) *http.Response {
		resp, err := hc.PostForm(s.URL("/auth/login.lsp"), url.Values{"user": {user}, "password": {password}})
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	cookieHeader := func() http.Header {
		u, _ := url.Parse(s.URL("/"))
		h := http.Header{}
		for _, c := range jar.Cookies(u) {
			h.Add("Cookie", c.Name+"="+c.Value)
		}
		return h
	}
	dial := func(raw bool) (*client.Client, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return client.Dial(ctx, s.URL("/auth/smq.lsp"), &client.Options{Raw: raw, Header: cookieHeader()})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Not logged in.
	if resp, _ := get("/auth/index.lsp"); resp.StatusCode != http.StatusFound || !strings.HasSuffix(resp.Header.Get("Location"), "/auth/login.lsp") {
		t.Fatalf("protected page without login: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, raw := range []bool{false, true} {
		c, err := dial(raw)
		var ce *client.ConnackError
		if !errors.As(err, &ce) {
			if c != nil {
				c.Close()
			}
			t.Fatalf("SMQ without login (raw %v): %v, want a refused Connack", raw, err)
		}
	}
	if resp := login("bob", "wrong"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("wrong password: %d", resp.StatusCode)
	}
	if _, err := dial(false); err == nil {
		t.Fatal("SMQ admitted after a failed login")
	}

	// A session planted before login must not survive it (fixation).
	if _, err := hc.Get(s.URL("/auth/login.lsp")); err != nil {
		t.Fatal(err)
	}
	before := cookieHeader().Get("Cookie")
	if resp := login("bob", "builder"); resp.StatusCode != http.StatusFound {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	if after := cookieHeader().Get("Cookie"); after == "" || after == before {
		t.Fatalf("session cookie after login %q (before %q)", after, before)
	}
	if resp, body := get("/auth/index.lsp"); resp.StatusCode != 200 || !strings.Contains(body, "Hello, bob") {
		t.Fatalf("protected page after login: %d %.100q", resp.StatusCode, body)
	}

	// Logged in: both transports are admitted; permittop's rules apply.
	var clients []*client.Client
	for _, raw := range []bool{false, true} {
		c, err := dial(raw)
		if err != nil {
			t.Fatalf("SMQ after login (raw %v): %v", raw, err)
		}
		clients = append(clients, c)
		got := make(chan string, 1)
		if _, _, err := c.SubscribeWait(ctx, "auth/chat", &client.SubscribeOptions{OnMsg: func(m client.Message) { got <- string(m.Data) }}); err != nil {
			t.Fatalf("subscribe auth/chat: %v", err)
		}
		if _, _, err := c.SubscribeWait(ctx, "auth/user/bob", nil); err != nil {
			t.Fatalf("subscribe auth/user/bob: %v", err)
		}
		for _, topic := range []string{"auth/admin", "auth/user/alice", "anything/else"} {
			if _, _, err := c.SubscribeWait(ctx, topic, nil); !errors.Is(err, client.ErrDenied) {
				t.Fatalf("subscribe %s as bob: %v, want denied", topic, err)
			}
			if _, err := c.Create(ctx, topic); !errors.Is(err, client.ErrDenied) {
				t.Fatalf("create %s as bob: %v, want denied", topic, err)
			}
		}
		if err := c.Publish([]byte("hi from bob"), "auth/chat", ""); err != nil {
			t.Fatal(err)
		}
		select {
		case m := <-got:
			if m != "hi from bob" {
				t.Fatalf("got %q", m)
			}
		case <-ctx.Done():
			t.Fatal("no message on auth/chat")
		}
	}

	// The public broker stays public; the login broker does not leak into it.
	smqRoundTrip(t, s.URL("/smq.lsp"), false)

	// Logout: the open connection is refused any further topic, a new one is refused.
	if err := clients[0].Unsubscribe("auth/user/bob"); err != nil {
		t.Fatal(err)
	}
	if resp, _ := get("/auth/logout.lsp"); resp.StatusCode != http.StatusFound {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	if _, _, err := clients[0].SubscribeWait(ctx, "auth/user/bob", nil); !errors.Is(err, client.ErrDenied) {
		t.Fatalf("subscribe to an allowed topic after logout: %v, want denied", err)
	}
	if c, err := dial(false); err == nil {
		c.Close()
		t.Fatal("SMQ admitted after logout")
	}
	if resp, _ := get("/auth/index.lsp"); resp.StatusCode != http.StatusFound {
		t.Fatalf("protected page after logout: %d", resp.StatusCode)
	}
	for _, c := range clients {
		c.Close()
	}

	// An admin gets the admin topic.
	if resp := login("alice", "wonderland"); resp.StatusCode != http.StatusFound {
		t.Fatalf("login alice: %d", resp.StatusCode)
	}
	c, err := dial(false)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, _, err := c.SubscribeWait(ctx, "auth/admin", nil); err != nil {
		t.Fatalf("alice subscribe auth/admin: %v", err)
	}
}
