package hostile

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tarponrt/tarpon/broker"
	"github.com/tarponrt/tarpon/broker/client"
)

// TestSlowConsumer: one subscriber stops reading while a publisher floods
// its topic. The server's memory stays bounded (the slow peer's queue is
// capped), the other subscribers get every message, and the policy's
// counter moves: drops (the default, on the app's Lua broker and the Go
// broker) or a disconnect.
func TestSlowConsumer(t *testing.T) {
	for _, tc := range []struct {
		name   string
		path   string
		policy broker.SlowConsumerPolicy
	}{
		{"drop, app broker", "/smq.lsp", broker.SlowConsumerDrop},
		{"drop, Go broker", "/gosmq", broker.SlowConsumerDrop},
		{"disconnect, Go broker", "/gosmq", broker.SlowConsumerDisconnect},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startStack(t, Config{Broker: broker.Options{SlowConsumer: tc.policy}})
			b := settle(t, s)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			drops := func() float64 {
				if tc.path == "/gosmq" {
					st := s.Hub.Stats()
					return float64(st.Drops + st.SlowCloses)
				}
				return s.Metric("tarpon_smq_drops_total")
			}
			before := drops()

			const fast, n, size = 3, 6000, 1024
			var got [fast]atomic.Int64
			var clients []*client.Client
			for i := range fast {
				c, err := client.Dial(ctx, s.URL(tc.path), &client.Options{Raw: i%2 == 1})
				if err != nil {
					t.Fatal(err)
				}
				clients = append(clients, c)
				if _, _, err := c.SubscribeWait(ctx, "flood", &client.SubscribeOptions{OnMsg: func(client.Message) { got[i].Add(1) }}); err != nil {
					t.Fatal(err)
				}
			}
			pub, err := client.Dial(ctx, s.URL(tc.path), nil)
			if err != nil {
				t.Fatal(err)
			}
			clients = append(clients, pub)
			defer func() {
				for _, c := range clients {
					c.Close()
				}
			}()

			var peak atomic.Uint64
			stop := make(chan struct{})
			sampled := make(chan struct{})
			go func() { // sample the heap during the flood
				defer close(sampled)
				for {
					select {
					case <-stop:
						return
					case <-time.After(50 * time.Millisecond):
						if h := heapInuse(); h > peak.Load() {
							peak.Store(h)
						}
					}
				}
			}()
			payload := make([]byte, size)
			minGot := func() int64 {
				m := got[0].Load()
				for i := range fast {
					m = min(m, got[i].Load())
				}
				return m
			}
			// flood publishes count messages, paced by the fast subscribers
			// (at most 32 in flight, under their 64 KiB high-water mark, so
			// any drop or disconnect is the slow one's), waits until each
			// fast subscriber has them all, and returns the time taken.
			sent := int64(0)
			flood := func(count int) time.Duration {
				start := time.Now()
				for range count {
					for sent-minGot() > 32 {
						if ctx.Err() != nil {
							var state []string
							for i, c := range clients {
								select {
								case <-c.Done():
									state = append(state, fmt.Sprintf("client %d closed: %v", i, c.Err()))
								default:
									state = append(state, fmt.Sprintf("client %d open", i))
								}
							}
							t.Fatalf("fast subscribers stalled at %d of %d: got %d %d %d; hub %+v; reactor %+v; %v",
								minGot(), sent, got[0].Load(), got[1].Load(), got[2].Load(), s.Hub.Stats(), s.Reactor.Stats(), state)
						}
						time.Sleep(100 * time.Microsecond)
					}
					if err := pub.Publish(payload, "flood", ""); err != nil {
						t.Fatalf("publish %d: %v", sent, err)
					}
					sent++
				}
				deadline := time.Now().Add(10 * time.Second)
				for minGot() < sent {
					if time.Now().After(deadline) {
						out, _ := exec.Command("ss", "-tn", "sport", "= :"+strings.Split(s.Addr, ":")[1]).CombinedOutput()
						t.Fatalf("fast subscribers got %d %d %d of %d; hub %+v; reactor %+v\nsockets (Recv-Q Send-Q):\n%s",
							got[0].Load(), got[1].Load(), got[2].Load(), sent, s.Hub.Stats(), s.Reactor.Stats(), out)
					}
					time.Sleep(time.Millisecond)
				}
				return time.Since(start)
			}
			reference := flood(n / 2) // no slow subscriber yet

			// The slow one: subscribes, then never reads again.
			slow, err := dialSMQ(s.Addr, tc.path, true)
			if err != nil {
				t.Fatal(err)
			}
			defer slow.Close()
			_ = slow.nc.(*net.TCPConn).SetReadBuffer(4096)
			if err := slow.connect(nextUID()); err != nil {
				t.Fatal(err)
			}
			_ = slow.send(broker.AppendSubscribe(nil, "flood"))
			if _, err := slow.waitFor(broker.MsgSuback, 5*time.Second); err != nil {
				t.Fatal(err)
			}
			took := flood(n)
			refRate, rate := float64(n/2)/reference.Seconds(), float64(n)/took.Seconds()
			t.Logf("fast subscribers' rate: %.0f msg/s alone, %.0f msg/s with the slow one", refRate, rate)
			// Generous: the two phases are short and the race detector noisy.
			if rate < refRate/3 {
				t.Errorf("the slow subscriber cut the others' rate: %.0f → %.0f msg/s", refRate, rate)
			}
			close(stop)
			<-sampled
			t.Logf("%d × %d B to %d fast subscribers in %v (%.0f msg/s each); heap peak %.1f MiB over a %.1f MiB baseline; policy counter +%v",
				n, size, fast, took.Round(time.Millisecond), float64(n)/took.Seconds(), float64(peak.Load())/(1<<20), float64(b.heap)/(1<<20), drops()-before)
			if drops() == before {
				t.Error("the slow-consumer policy's counter did not move")
			}
			// The slow peer's queue is capped (MaxQueue, 4 MiB); the flood is 6 MiB
			// per subscriber. Allow the cap, gnet's buffers and garbage.
			if peak.Load() > b.heap+64<<20 {
				t.Errorf("heap peaked at %.1f MiB during the flood", float64(peak.Load())/(1<<20))
			}
			if tc.policy == broker.SlowConsumerDisconnect {
				waitFor(t, 10*time.Second, "the slow consumer disconnected", func() bool { return s.Hub.Stats().SlowCloses > 0 })
			}
			slow.Close()
			for _, c := range clients {
				c.Close()
			}
			cancel()
			recovered(t, s, b)
		})
	}
}
