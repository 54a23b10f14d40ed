package lsp

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	lua "github.com/yuin/gopher-lua"

	"github.com/tarponrt/tarpon/cosocket"
	"github.com/tarponrt/tarpon/runtime"
	"github.com/tarponrt/tarpon/scheduler"
)

// *Request is what ba.socket.req2sock needs, without an adapter.
var _ cosocket.Exchange = (*Request)(nil)

// TestWebSocketPages runs the real hand-off: a page calls
// ba.socket.req2sock(request), the connection moves to the reactor, and the
// HTTP goroutine returns while Lua keeps the socket.
func TestWebSocketPages(t *testing.T) {
	r, err := runtime.New(runtime.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var lib *cosocket.Lib
	e := newEnv(t, Options{}, scheduler.Config{})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = r.Shutdown(ctx)
	})
	e.vm(func(*lua.LState) { // Open must run on the VM goroutine once the loop runs
		lib = cosocket.Open(e.loop, r, cosocket.Config{})
		lib.Requests = func(L *lua.LState, v lua.LValue) (cosocket.Exchange, bool) {
			q, ok := RequestFrom(L, v)
			return q, ok
		}
	})
	e.mount("/", map[string]string{
		"echo.lsp": `<?lsp
if request:header"Sec-WebSocket-Key" then
  local s = ba.socket.req2sock(request)
  if s then
    s:event(function(s)
      while true do
        local data, isText = s:read()
        if not data then break end
        s:write(data, isText)
      end
    end, "s")
  end
  return
end
response:senderror(404)
?>`,
		"blocking.lsp": `<?lsp
local s = ba.socket.req2sock(request)
for i = 1, 3 do
  s:write("n" .. i, true)
  ba.sleep(20)
end
s:close()
?>`,
	})
	wsURL := "ws" + strings.TrimPrefix(e.http.URL, "http")

	t.Run("cosocket echo", func(t *testing.T) {
		c, resp, err := websocket.DefaultDialer.Dial(wsURL+"/echo.lsp", nil)
		if err != nil {
			t.Fatalf("dial: %v (%v)", err, resp)
		}
		defer c.Close()
		waitFor(t, 5*time.Second, "HTTP goroutine released", func() bool { return e.srv.serving.Load() == 0 })
		for _, msg := range []string{"one", "two"} {
			if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
				t.Fatal(err)
			}
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			typ, got, err := c.ReadMessage()
			if err != nil || typ != websocket.TextMessage || string(got) != msg {
				t.Fatalf("echo %q: %d %q %v", msg, typ, got, err)
			}
		}
	})
	t.Run("blocking page keeps the socket, not the HTTP goroutine", func(t *testing.T) {
		c, _, err := websocket.DefaultDialer.Dial(wsURL+"/blocking.lsp", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		waitFor(t, 5*time.Second, "HTTP goroutine released", func() bool { return e.srv.serving.Load() == 0 })
		for i := 1; i <= 3; i++ {
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, got, err := c.ReadMessage()
			if err != nil || string(got) != "n"+string(rune('0'+i)) {
				t.Fatalf("message %d: %q %v", i, got, err)
			}
		}
	})
	t.Run("plain GET of the websocket page", func(t *testing.T) {
		if res := e.get("/echo.lsp"); res.status != http.StatusNotFound {
			t.Fatalf("status %d", res.status)
		}
	})
}
