package cosocket

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"
)

const upgradeRequest = "GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"

// dialUpgrade sends a WebSocket upgrade request for path; with wait it also
// reads the 101 answer.
func dialUpgrade(t *testing.T, e *env, path string, wait bool) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, strings.Replace(upgradeRequest, "%s", path, 1)); err != nil {
		t.Fatal(err)
	}
	if wait {
		expect101(t, c)
	}
	return c
}

func expect101(t *testing.T, c net.Conn) {
	t.Helper()
	buf := make([]byte, 4096)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(buf); err != nil || !strings.Contains(string(buf[:n]), " 101 ") {
		t.Fatalf("handshake: %q %v", buf[:n], err)
	}
	_ = c.SetReadDeadline(time.Time{})
}

// writeText sends one masked (zero mask) text frame.
func writeText(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	frame := append([]byte{0x81, 0x80 | byte(len(msg)), 0, 0, 0, 0}, msg...)
	if _, err := c.Write(frame); err != nil {
		t.Fatal(err)
	}
}

// TestReq2sockFromEventLoopTurn: a cosocket resumed by its event loop (a
// scheduler.Runner turn) that calls req2sock must not hand the connection to
// that same loop and wait for it (a deadlock with one loop): req2sock moves
// to the VM goroutine and the task gets its socket.
func TestReq2sockFromEventLoopTurn(t *testing.T) {
	e := newEnvLoops(t, Config{}, 1)
	e.loop.Do(func(L *lua.LState) {
		err := L.DoString(`
			serve("/hold", function(request)
				held = request
				waitfor(function() return released end, 10000)
			end)
			serve("/ws", function(request)
				local s = ba.socket.req2sock(request)
				s:event(function(s)
					local d = s:read()
					local s2, err = ba.socket.req2sock(held)
					released = true
					report(s2 and "ok" or tostring(err))
				end, "s")
			end)`)
		if err != nil {
			t.Fatal(err)
		}
	})
	held := dialUpgrade(t, e, "/hold", false)
	waitFor(t, "the /hold page to park", func() bool {
		var ok bool
		e.loop.Do(func(L *lua.LState) { ok = L.GetGlobal("held") != lua.LNil })
		return ok
	})
	ws := dialUpgrade(t, e, "/ws", true)
	waitFor(t, "the cosocket to park", func() bool { return e.loop.Stats().TasksParked >= 2 })
	writeText(t, ws, "take")
	select {
	case got := <-e.reports:
		if got != "ok" {
			t.Fatalf("req2sock from the cosocket: %s", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("req2sock from an event-loop turn hung")
	}
	expect101(t, held)
}

// waitFor polls cond every millisecond until it holds or 5 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestEchoBurstsInOrder: bursts of messages written in one TCP write come
// back complete and in order, whether the event loop answers them itself
// (the VM free) or they queue (the VM busy with other sockets), with one
// loop and with several.
func TestEchoBurstsInOrder(t *testing.T) {
	for _, loops := range []int{1, 2} {
		t.Run(fmt.Sprintf("%d loops", loops), func(t *testing.T) {
			e := newEnvLoops(t, Config{}, loops)
			e.loop.Do(func(L *lua.LState) {
				if err := L.DoString(`
					serve("/echo", function(request)
						local s = ba.socket.req2sock(request)
						s:event(function(s)
							while true do
								local d, text = s:read()
								if not d then break end
								s:write(d, text)
							end
						end, "s")
					end)`); err != nil {
					t.Fatal(err)
				}
			})
			const conns, bursts, burst = 8, 20, 16
			var wg sync.WaitGroup
			errs := make(chan error, conns)
			for i := 0; i < conns; i++ {
				c := dialUpgrade(t, e, "/echo", true)
				wg.Add(1)
				go func(i int, c net.Conn) {
					defer wg.Done()
					errs <- echoBursts(c, i, bursts, burst)
				}(i, c)
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// echoBursts sends bursts of masked text frames, each burst in one write,
// and checks every echo comes back in order.
func echoBursts(c net.Conn, id, bursts, burst int) error {
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	rd := bufio.NewReader(c)
	for b := 0; b < bursts; b++ {
		var out []byte
		for k := 0; k < burst; k++ {
			msg := fmt.Sprintf("c%d b%d m%d", id, b, k)
			out = append(out, 0x81, 0x80|byte(len(msg)), 0, 0, 0, 0)
			out = append(out, msg...)
		}
		if _, err := c.Write(out); err != nil {
			return err
		}
		for k := 0; k < burst; k++ {
			var hdr [2]byte
			if _, err := io.ReadFull(rd, hdr[:]); err != nil {
				return fmt.Errorf("conn %d burst %d message %d: %w", id, b, k, err)
			}
			payload := make([]byte, hdr[1]&0x7f)
			if _, err := io.ReadFull(rd, payload); err != nil {
				return err
			}
			if want := fmt.Sprintf("c%d b%d m%d", id, b, k); hdr[0] != 0x81 || string(payload) != want {
				return fmt.Errorf("got %#x %q, want a text frame %q", hdr[0], payload, want)
			}
		}
	}
	return nil
}

// TestQueuedThenCloseInOrder: messages that arrive while the reader is not
// parked in read queue, come out of the next reads in order, and the close
// that came after them is reported only once they are read.
func TestQueuedThenCloseInOrder(t *testing.T) {
	for _, loops := range []int{1, 2} {
		t.Run(fmt.Sprintf("%d loops", loops), func(t *testing.T) {
			e := newEnvLoops(t, Config{}, loops)
			e.loop.Do(func(L *lua.LState) {
				if err := L.DoString(`
					serve("/q", function(request)
						local s = ba.socket.req2sock(request)
						s:event(function(s)
							local got = {(s:read())}
							held = true
							waitfor(function() return go end, 5000)
							while true do
								local d, err = s:read()
								if not d then got[#got+1] = err break end
								got[#got+1] = d
							end
							report(table.concat(got, ","))
						end, "s")
					end)`); err != nil {
					t.Fatal(err)
				}
			})
			c := dialUpgrade(t, e, "/q", true)
			writeText(t, c, "m0")
			// Wait until the reader holds m0 and waits for go, then send the
			// rest and the close: they all queue behind the busy reader.
			waitFor(t, "the reader to take m0", func() bool {
				held := false
				e.loop.Do(func(L *lua.LState) { held = L.GetGlobal("held") == lua.LTrue })
				return held
			})
			for i := 1; i <= 5; i++ {
				writeText(t, c, fmt.Sprintf("m%d", i))
			}
			if _, err := c.Write([]byte{0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8}); err != nil {
				t.Fatal(err)
			}
			// Let the queued input reach the socket's rx queue first.
			waitFor(t, "the close to be queued", func() bool { return e.r.Stats().Open == 0 })
			e.loop.Do(func(L *lua.LState) { L.SetGlobal("go", lua.LTrue) })
			select {
			case got := <-e.reports:
				if want := "m0,m1,m2,m3,m4,m5,socketclosed"; got != want {
					t.Fatalf("got %q, want %q", got, want)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no report")
			}
		})
	}
}
