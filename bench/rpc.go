package bench

import (
	"io"
	"time"

	"github.com/tarponrt/tarpon/bench/loadgen"
)

// RPCOptions configures the rpc scenario: Clients SMQ clients on URL
// (ws:// or wss:// for WebSocket, http:// or https:// for SMQ's raw
// transport), each publishing Size-byte requests to the server-side
// client's ETID 1 and waiting for the reply to its own ETID (closed loop,
// one request outstanding per client).
type RPCOptions struct {
	URL      string
	Clients  int
	Size     int
	Warmup   time.Duration
	Duration time.Duration
	Loops    int
	Live     io.Writer // progress line while it runs (nil: none)
	DialOptions
	Server Server
}

// smqServerETID is the server-side client's ETID (SMQ spec §1.1).
const smqServerETID = 1

// RunRPC runs the rpc scenario against an SMQ broker whose server side
// answers publishes to ETID 1 by publishing the payload back to the
// sender (the tarpon-smq peer does). The result is an EchoSummary with
// Mode "rpc": messages are round trips. It never panics.
func RunRPC(opt RPCOptions) EchoSummary {
	opt.setDefaults()
	sum := EchoSummary{Mode: "rpc", Conns: opt.Clients, Size: opt.Size, Batch: 1,
		ServerCPUPerMsg: -1, ServerGCs: -1, ServerCores: -1}
	t, err := loadgen.ParseURL(opt.URL)
	if err != nil {
		sum.Err = err.Error()
		return sum
	}
	sum.Path, sum.Transport = t.Path, transport(t, true)
	if opt.Clients <= 0 || opt.Duration <= 0 {
		sum.Err = "bench: rpc needs --conns > 0 and --duration > 0"
		return sum
	}
	// Each dial ends past Connack; a client's request is a Publish to
	// ETID 1 from its own ETID.
	dr, ok := sum.dialFor(opt.DialOptions, t, loadgen.KindSMQ, opt.Clients, "SMQ clients failed to connect", "bench: rpc: no SMQ client connected")
	defer loadgen.CloseAll(dr.Conns)
	if !ok {
		return sum
	}
	body := make([]byte, max(opt.Size, 0))
	for i := range body {
		body[i] = 'a' + byte(i%26)
	}
	payloads := make([][]byte, len(dr.Conns))
	for i, c := range dr.Conns {
		payloads[i] = loadgen.AppendSMQPublish(nil, smqServerETID, c.ETID, body)
	}
	sum.drive(opt.Live, "rpc", dr.Conns, opt.Server, func(p *loadgen.Progress, onWindow func(bool)) (*loadgen.EchoResult, error) {
		return loadgen.RunEcho(dr.Conns, loadgen.EchoConfig{Payloads: payloads, Progress: p, OnWindow: onWindow,
			Warmup: opt.Warmup, Duration: opt.Duration, Loops: opt.Loops})
	})
	return sum
}
