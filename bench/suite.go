package bench

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// peerStartTimeout bounds how long a peer may take to print its ready line.
const peerStartTimeout = 15 * time.Second

// peerStopTimeout bounds a peer's graceful shutdown after SIGTERM.
const peerStopTimeout = 10 * time.Second

// runSuite runs, for each peer in turn and each on a fresh process: idle at
// every --idle-conns size, echo closed loop (--echo-conns, --size, batch 1)
// and echo batched (--echo-batch) for --peer-list; fan-out for every
// --fanout-peers × --fanout-subs × --fanout-in-flight; rpc for
// --rpc-peers; http for --http-peers. A peer that fails to start gets rows
// saying so. Progress goes to log.
func runSuite(c *config, log io.Writer) *Report {
	rep := &Report{Started: time.Now(), Machine: readMachine(), Command: c.command()}
	sizes, err := parseInts(c.idleConns)
	if err != nil {
		rep.Failures = append(rep.Failures, PeerFailure{Stage: "flags", Err: err.Error()})
		return rep
	}
	names := splitList(c.peerList)
	echoVariants := []int{1}
	if c.echoBatch > 1 {
		echoVariants = append(echoVariants, c.echoBatch)
	}
	// with runs fn against a fresh peer; on a start failure it returns the
	// error text for the caller's row.
	with := func(name, stage string, fn func(pp *PeerProc)) string {
		pp, err := StartPeer(name, peerStartTimeout)
		if err != nil {
			rep.Failures = append(rep.Failures, PeerFailure{Peer: name, Stage: stage + ": start", Err: err.Error()})
			return "peer failed to start: " + err.Error()
		}
		fn(pp)
		if err := pp.Stop(peerStopTimeout); err != nil {
			rep.Failures = append(rep.Failures, PeerFailure{Peer: name, Stage: stage + ": stop", Err: err.Error()})
		}
		return ""
	}
	idle := func(name string, n int, smq bool) {
		what := "idle"
		if smq {
			what = "idle SMQ clients"
		}
		fmt.Fprintf(log, "bench: %s %s %d ...\n", name, what, n)
		var r IdleResult
		if msg := with(name, fmt.Sprintf("%s %d", what, n), func(pp *PeerProc) {
			r = RunIdle(IdleOptions{URL: pp.URL(peerPath(name)), Conns: n, Procs: c.procs, SMQ: smq,
				DialOptions: c.dialOptions(name), Settle: c.settle,
				Server: Server{PID: pp.PID, Admin: pp.Admin}})
		}); msg != "" {
			r = IdleResult{Target: n, SMQ: smq, ServerConns: -1, Err: msg}
		}
		r.Peer = name
		rep.Idle = append(rep.Idle, r)
		fmt.Fprintf(log, "bench:   %s\n", r.line())
	}
	// echo runs the closed-loop echo variants; raw: over the peer's /raw
	// byte stream instead of WebSocket.
	echo := func(name string, raw bool) {
		over := ""
		if raw {
			over = " over a raw stream"
		}
		for _, batch := range echoVariants {
			fmt.Fprintf(log, "bench: %s echo%s %d conns batch %d ...\n", name, over, c.echoConns, batch)
			var r EchoSummary
			if msg := with(name, fmt.Sprintf("echo%s batch %d", over, batch), func(pp *PeerProc) {
				url := pp.URL(peerPath(name))
				if raw {
					url = pp.HTTPURL("/raw")
				}
				r = RunEcho(EchoOptions{URL: url, Conns: c.echoConns, Size: c.size,
					Batch: batch, Rate: c.rate, Text: c.text, Warmup: c.warmup, Duration: c.duration,
					Loops: c.loops, Live: c.live, DialOptions: c.dialOptions(name),
					Server: Server{PID: pp.PID, Admin: pp.Admin}})
			}); msg != "" {
				r = EchoSummary{Conns: c.echoConns, Size: c.size, Batch: batch, Mode: "closed", Err: msg,
					ServerCPUPerMsg: -1, ServerGCs: -1}
			}
			r.Peer = name
			rep.Echo = append(rep.Echo, r)
			fmt.Fprintf(log, "bench:   %s\n", r.line())
		}
	}
	for _, name := range names {
		for _, n := range sizes {
			idle(name, n, false)
		}
		echo(name, false)
	}
	for _, name := range splitList(c.tlsPeers) {
		echo(name, false) // over wss://: the peer serves TLS
	}
	for _, name := range splitList(c.rawPeers) {
		echo(name, true)
	}
	if smqSizes, err := parseInts(c.smqIdleConns); err != nil {
		rep.Failures = append(rep.Failures, PeerFailure{Stage: "flags", Err: err.Error()})
	} else {
		for _, n := range smqSizes {
			idle(fanoutTarponPeer, n, true)
		}
	}
	fanSubs, err := parseInts(c.fanoutSubs)
	if err != nil {
		rep.Failures = append(rep.Failures, PeerFailure{Stage: "flags", Err: err.Error()})
		fanSubs = nil
	}
	inFlight, err := parseCounts(c.fanoutInFlight)
	if err != nil {
		rep.Failures = append(rep.Failures, PeerFailure{Stage: "flags", Err: err.Error()})
		inFlight = nil
	}
	for _, name := range splitList(c.fanoutPeers) {
		for _, subs := range fanSubs {
			for _, k := range inFlight {
				opt := c.fanoutOptions("", "", Server{})
				opt.Proto, opt.Subs, opt.InFlight, opt.Duration = protoFor(name), subs, k, c.fanoutDuration
				if k > 0 {
					opt.Rate = 0
				}
				load := fmt.Sprintf("%d in flight", k)
				if k == 0 {
					load = fmt.Sprintf("%g/s", c.pubRate)
				}
				fmt.Fprintf(log, "bench: %s fanout %d subs, %s ...\n", name, subs, load)
				var r FanoutSummary
				if msg := with(name, fmt.Sprintf("fanout %d subs %s", subs, load), func(pp *PeerProc) {
					opt.URL, opt.Server = pp.URL(peerPath(name)), Server{PID: pp.PID, Admin: pp.Admin}
					r = RunFanout(opt)
				}); msg != "" {
					r = FanoutSummary{Proto: opt.Proto, Subs: subs, Pubs: c.pubs, Topics: max(c.topics, 1), InFlight: k,
						Rate: opt.Rate, Size: c.size, Err: msg, ServerCPUPerDelivery: -1, ServerGCs: -1}
				}
				r.Peer = name
				rep.Fanout = append(rep.Fanout, r)
				fmt.Fprintf(log, "bench:   %s\n", r.line())
			}
		}
	}
	for _, name := range splitList(c.rpcPeers) {
		for _, tr := range splitList(c.rpcTransports) {
			fmt.Fprintf(log, "bench: %s rpc %d clients over %s ...\n", name, c.rpcClients, tr)
			var r EchoSummary
			if msg := with(name, "rpc over "+tr, func(pp *PeerProc) {
				url := pp.URL(peerPath(name))
				if tr == "raw" {
					url = pp.HTTPURL(peerPath(name)) // SMQ's raw transport starts as an HTTP request
				}
				r = RunRPC(c.rpcOptions(url, c.rpcClients, Server{PID: pp.PID, Admin: pp.Admin}))
			}); msg != "" {
				r = EchoSummary{Mode: "rpc", Transport: tr, Conns: c.rpcClients, Size: c.size, Batch: 1, Err: msg, ServerCPUPerMsg: -1, ServerGCs: -1}
			}
			r.Peer = name
			rep.RPC = append(rep.RPC, r)
			fmt.Fprintf(log, "bench:   %s\n", r.line())
		}
	}
	for _, name := range splitList(c.httpPeers) {
		fmt.Fprintf(log, "bench: %s http GET %s, %d conns ...\n", name, c.path, c.httpConns)
		var r EchoSummary
		if msg := with(name, "http", func(pp *PeerProc) {
			r = RunHTTP(c.httpOptions("http://"+pp.Addr+c.path, c.httpConns, Server{PID: pp.PID, Admin: pp.Admin}))
		}); msg != "" {
			r = EchoSummary{Mode: "http", Path: c.path, Conns: c.httpConns, Batch: 1, Err: msg, ServerCPUPerMsg: -1, ServerGCs: -1}
		}
		r.Peer = name
		rep.HTTP = append(rep.HTTP, r)
		fmt.Fprintf(log, "bench:   %s\n", r.line())
	}
	if c.timers > 0 {
		fmt.Fprintf(log, "bench: %d Lua timers ...\n", c.timers)
		first, spread := timerSchedule(c.timers)
		r := RunTimers(c.timers, first, spread)
		rep.Timers = append(rep.Timers, r)
		fmt.Fprintf(log, "bench:   %d fired, %.0f B/timer, late p99 %.2f ms %s\n", r.Fired, r.BytesPerTimer, r.LateP99, r.Err)
	}
	rep.Finished = time.Now()
	return rep
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, n := range strings.Split(s, ",") {
		if n = strings.TrimSpace(n); n != "" {
			out = append(out, n)
		}
	}
	return out
}

// command reconstructs the suite's command line for the results file.
func (c *config) command() string {
	first := "tarpon bench --peers"
	if c.large {
		first += " --large"
	}
	parts := []string{first,
		"--peer-list " + c.peerList,
		"--idle-conns " + c.idleConns,
		"--smq-idle-conns " + c.smqIdleConns,
		"--tls-peers " + c.tlsPeers,
		"--raw-peers " + c.rawPeers,
		fmt.Sprintf("--echo-conns %d --echo-batch %d --size %d", c.echoConns, c.echoBatch, c.size),
		fmt.Sprintf("--duration %v --warmup %v --loops %d", c.duration, c.warmup, c.loops),
	}
	if c.rate > 0 {
		parts = append(parts, fmt.Sprintf("--rate %g", c.rate))
	}
	if c.reportDir != "" {
		parts = append(parts, "--report "+c.reportDir)
	}
	if c.fanoutPeers != "" {
		parts = append(parts, fmt.Sprintf("--fanout-peers %s --fanout-subs %s --fanout-in-flight %s --fanout-duration %v --pubs %d",
			c.fanoutPeers, c.fanoutSubs, c.fanoutInFlight, c.fanoutDuration, c.pubs))
		if strings.Contains(","+c.fanoutInFlight+",", ",0,") {
			parts = append(parts, fmt.Sprintf("--pub-rate %g", c.pubRate))
		}
		if c.topics > 1 {
			parts = append(parts, fmt.Sprintf("--topics %d", c.topics))
		}
	}
	if c.rpcPeers != "" {
		parts = append(parts, fmt.Sprintf("--rpc-peers %s --rpc-clients %d --rpc-transports %s", c.rpcPeers, c.rpcClients, c.rpcTransports))
	}
	if c.httpPeers != "" {
		parts = append(parts, fmt.Sprintf("--http-peers %s --http-conns %d --path %s", c.httpPeers, c.httpConns, c.path))
	}
	if c.timers > 0 {
		parts = append(parts, fmt.Sprintf("--timers %d", c.timers))
	}
	if c.resultsFile != "" {
		parts = append(parts, "--results "+c.resultsFile)
	}
	return strings.Join(parts, " ")
}
