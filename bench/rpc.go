package bench

import (
	"fmt"
	"sync"
	"time"

	"github.com/tarponrt/tarpon/bench/loadgen"
)

// RPCOptions configures the rpc scenario: Clients SMQ clients on URL
// (WebSocket), each publishing Size-byte requests to the server-side
// client's ETID 1 and waiting for the reply to its own ETID (closed loop,
// one request outstanding per client).
type RPCOptions struct {
	URL      string
	Clients  int
	Size     int
	Warmup   time.Duration
	Duration time.Duration
	Loops    int
	Sources  int
	Parallel int
	Timeout  time.Duration
	Server   Server
}

// smqServerETID is the server-side client's ETID (SMQ spec §1.1).
const smqServerETID = 1

// RunRPC runs the rpc scenario against an SMQ broker whose server side
// answers publishes to ETID 1 by publishing the payload back to the
// sender (the tarpon-smq peer does). The result is an EchoSummary with
// Mode "rpc": messages are round trips. It never panics.
func RunRPC(opt RPCOptions) EchoSummary {
	if opt.Sources <= 0 {
		opt.Sources = 4
	}
	if opt.Parallel <= 0 {
		opt.Parallel = 32
	}
	if opt.Timeout <= 0 {
		opt.Timeout = 5 * time.Second
	}
	sum := EchoSummary{Mode: "rpc", Conns: opt.Clients, Size: opt.Size, Batch: 1,
		ServerCPUPerMsg: -1, ServerGCs: -1, ServerCores: -1}
	t, err := loadgen.ParseURL(opt.URL)
	if err != nil {
		sum.Err = err.Error()
		return sum
	}
	sum.Path = t.Path
	if opt.Clients <= 0 || opt.Duration <= 0 {
		sum.Err = "bench: rpc needs --conns > 0 and --duration > 0"
		return sum
	}
	if _, err := loadgen.RaiseFDLimit(); err != nil {
		sum.Err = err.Error()
		return sum
	}
	srv := resolveServer(opt.Server)
	dr := loadgen.DialMany(t, opt.Clients, loadgen.SourceAddrs(opt.Sources), opt.Parallel, opt.Timeout)
	defer loadgen.CloseAll(dr.FDs)
	if dr.Failed > 0 {
		sum.FirstError = fmt.Sprintf("%d of %d dials failed: %s", dr.Failed, opt.Clients, dr.FirstError)
	}
	// The SMQ handshake (Init, Connect, Connack) per connection, in
	// parallel; each client's request is a Publish to ETID 1 from its ETID.
	body := make([]byte, max(opt.Size, 0))
	for i := range body {
		body[i] = 'a' + byte(i%26)
	}
	fds := make([]int, 0, len(dr.FDs))
	extra := make([][]byte, 0, len(dr.FDs))
	payloads := make([][]byte, 0, len(dr.FDs))
	var (
		mu   sync.Mutex
		next int
		wg   sync.WaitGroup
		bad  int
	)
	for w := 0; w < opt.Parallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= len(dr.FDs) {
					return
				}
				etid, rest, err := loadgen.SMQHandshake(dr.FDs[i], dr.Extra[i], opt.Timeout)
				mu.Lock()
				if err != nil {
					bad++
					if sum.FirstError == "" {
						sum.FirstError = err.Error()
					}
				} else {
					fds = append(fds, dr.FDs[i])
					extra = append(extra, rest)
					payloads = append(payloads, loadgen.AppendSMQPublish(nil, smqServerETID, etid, body))
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	sum.Opened = len(fds)
	if bad > 0 {
		sum.FirstError = fmt.Sprintf("%d SMQ handshakes failed: %s", bad, sum.FirstError)
	}
	if len(fds) == 0 {
		sum.Err = "bench: rpc: no SMQ client connected: " + sum.FirstError
		return sum
	}
	var w window
	res, err := loadgen.RunEcho(fds, extra, loadgen.EchoConfig{Payloads: payloads,
		Warmup: opt.Warmup, Duration: opt.Duration, Loops: opt.Loops,
		OnWindow: func(start bool) { w.sample(srv, start) }})
	if err != nil {
		sum.Err = err.Error()
		return sum
	}
	sum.fill(res, &w)
	return sum
}
