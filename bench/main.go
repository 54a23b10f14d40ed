package bench

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/tarponrt/tarpon/bench/peers"
)

const usage = `usage:
  tarpon bench idle --url ws://HOST:PORT/echo [--conns N] [--procs P] [--smq] [--admin ADDR | --pid PID]
  tarpon bench echo --url ws[s]://HOST:PORT/echo [--conns N] [--size B] [--batch K] [--rate R] [--duration D] [--insecure]
  tarpon bench echo --url http[s]://HOST:PORT/raw ...   (a raw byte stream after a 200, echoed in --size byte messages)
  tarpon bench lua-echo [--conns N] ...           (echo against tarpon-lua's /ws/echo.lsp)
  tarpon bench fanout --url ws://HOST:PORT/bcast [--subs N] [--pubs P] [--pub-rate R | --in-flight K] [--topics T] [--size B] [--proto bcast|smq|nats]
  tarpon bench rpc --url ws://HOST:PORT/smq [--conns N] [--size B]   (default --peer tarpon-smq)
  tarpon bench http --url http[s]://HOST:PORT/ [--conns N]           (default --peer tarpon-lua)
  tarpon bench idle|echo|fanout|rpc|http --peer NAME ...   (starts peer NAME itself, measures it, stops it)
  tarpon bench --peers [--report DIR] [--results FILE] [--peer-list a,b] [--idle-conns 10000,19000] [--fanout-peers a,b]
  URLs: ws:// wss:// for WebSocket; http:// https:// for http, and for SMQ's raw transport in SMQ
  scenarios (fanout --proto smq, rpc, idle --smq); --raw picks it with --peer.
  peers: %s
flags:
`

// config is every flag of `tarpon bench`.
type config struct {
	scenario string
	url      string
	peer     string
	admin    string
	pid      int
	conns    int
	duration time.Duration
	warmup   time.Duration
	size     int
	rate     float64
	batch    int
	text     bool
	loops    int
	procs    int
	sources  int
	parallel int
	timeout  time.Duration
	settle   time.Duration
	jsonOut  bool
	live     io.Writer // progress lines (stderr)
	insecure bool
	smq      bool
	raw      bool

	subs     int
	pubs     int
	pubRate  float64
	proto    string
	pubURL   string
	inFlight int
	topics   int

	fanoutPeers    string
	fanoutSubs     string
	fanoutInFlight string
	fanoutDuration time.Duration
	rpcPeers       string
	timers         int
	rpcClients     int
	rpcTransports  string
	smqIdleConns   string
	tlsPeers       string
	rawPeers       string
	httpPeers      string
	httpConns      int
	path           string
	large          bool
	peers          bool
	peerList       string
	idleConns      string
	echoConns      int
	echoBatch      int
	reportDir      string
	resultsFile    string
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		c.scenario, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("tarpon bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, usage, strings.Join(peers.Names(), ", "))
		fs.PrintDefaults()
	}
	fs.StringVar(&c.url, "url", "", "URL of the server under test: ws:// or wss://; http:// or https:// for http, and for SMQ's raw transport in SMQ scenarios")
	fs.BoolVar(&c.insecure, "insecure", false, "wss/https: accept any server certificate (self-signed servers)")
	fs.BoolVar(&c.smq, "smq", false, "idle: hold SMQ clients (through Connack) instead of bare WebSocket connections")
	fs.BoolVar(&c.raw, "raw", false, "SMQ scenarios with --peer: SMQ's raw transport (the C client's) instead of WebSocket")
	fs.StringVar(&c.peer, "peer", "", "start this peer (bench-peer NAME) and measure it instead of --url")
	fs.StringVar(&c.admin, "admin", "", "admin address (host:port) of a peer started elsewhere: goroutines, GC, pid")
	fs.IntVar(&c.pid, "pid", 0, "pid of the server (for /proc RSS and CPU) when not started by the harness")
	fs.IntVar(&c.conns, "conns", 0, "connections (idle default 10000, echo default 1000)")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "echo: measured window")
	fs.DurationVar(&c.warmup, "warmup", 2*time.Second, "echo: warm-up before the window")
	fs.IntVar(&c.size, "size", 64, "echo: message payload bytes")
	fs.Float64Var(&c.rate, "rate", 0, "echo: total messages/s (0 = closed loop)")
	fs.Float64Var(&c.pubRate, "pub-rate", 100, "fanout: publishes/s over all publishers")
	fs.IntVar(&c.batch, "batch", 1, "echo: frames per TCP write")
	fs.BoolVar(&c.text, "text", false, "echo: send text frames")
	fs.IntVar(&c.loops, "loops", 1, "echo: generator goroutines (epoll loops)")
	fs.IntVar(&c.procs, "procs", 0, "idle: worker processes holding connections (0 = one per 10000)")
	fs.IntVar(&c.sources, "sources", 4, "source addresses 127.0.0.1..N")
	fs.IntVar(&c.parallel, "parallel", 32, "concurrent dialers per process")
	fs.DurationVar(&c.timeout, "timeout", 5*time.Second, "dial + handshake timeout")
	fs.DurationVar(&c.settle, "settle", 10*time.Second, "idle: max wait for server RSS to settle")
	fs.IntVar(&c.subs, "subs", 1000, "fanout: subscribers")
	fs.IntVar(&c.pubs, "pubs", 1, "fanout: publishers")
	fs.StringVar(&c.proto, "proto", "", "fanout: protocol adapter: bcast, smq or nats (default: what --peer speaks, else bcast)")
	fs.IntVar(&c.inFlight, "in-flight", 0, "fanout: closed loop with this many publishes outstanding per publisher (0: open loop at --pub-rate)")
	fs.IntVar(&c.topics, "topics", 1, "fanout: spread subscribers over this many topics")
	fs.StringVar(&c.pubURL, "pub-url", "", "fanout: publishers' URL (default --url with ?pub=1)")
	fs.StringVar(&c.fanoutPeers, "fanout-peers", "tarpon-smq,tarpon-bcast,gorilla-bcast,nbio-bcast,nats", "suite: fan-out peers (each speaks its own protocol; tarpon-bcast is the runtime's raw broadcast, shown for context); empty skips fan-out")
	fs.StringVar(&c.fanoutSubs, "fanout-subs", "1000,10000", "suite: fan-out subscriber counts")
	fs.StringVar(&c.fanoutInFlight, "fanout-in-flight", "1,16", "suite: fan-out publishes in flight (closed loop); 0 = open loop at --pub-rate")
	fs.DurationVar(&c.fanoutDuration, "fanout-duration", 4*time.Second, "suite: fan-out measured window")
	fs.StringVar(&c.rpcPeers, "rpc-peers", "tarpon-smq", "suite: SMQ rpc peers; empty skips rpc")
	fs.IntVar(&c.rpcClients, "rpc-clients", 1000, "suite: SMQ rpc clients")
	fs.StringVar(&c.rpcTransports, "rpc-transports", "ws,raw", "suite: SMQ transports the rpc runs over (ws, raw)")
	fs.StringVar(&c.smqIdleConns, "smq-idle-conns", "10000,19000", "suite: idle SMQ clients held on tarpon-smq (past Connack), comma separated; empty skips")
	fs.StringVar(&c.rawPeers, "raw-peers", "tarpon-echo,gorilla-echo", "suite: echo over a raw byte stream (the peer's /raw: a GET answered with 200, then bytes) against these peers; empty skips")
	fs.StringVar(&c.tlsPeers, "tls-peers", "tarpon-echo-tls,gorilla-echo-tls", "suite: echo over wss:// against these peers (self-signed certificates); empty skips")
	fs.StringVar(&c.httpPeers, "http-peers", "tarpon-lua", "suite: http peers (GET --path); empty skips http")
	fs.IntVar(&c.httpConns, "http-conns", 50, "suite: http keep-alive connections")
	fs.IntVar(&c.timers, "timers", 100000, "suite: Lua timers armed at once (ba.timer); 0 skips")
	fs.StringVar(&c.path, "path", "/", "http: request path")
	fs.BoolVar(&c.jsonOut, "json", false, "print results as JSON")
	fs.BoolVar(&c.peers, "peers", false, "run the side-by-side suite against every peer")
	fs.BoolVar(&c.large, "large", false, "suite: as far as this machine allows (idle up to the server's fd limit, 5000 echo conns, 20 s windows, fan-out to 10000 subscribers); explicit flags still win")
	fs.StringVar(&c.peerList, "peer-list", "tarpon-echo,gorilla-echo,nbio-echo,tarpon-lua", "suite: idle and echo peers, comma separated (tarpon-lua: the Lua cosocket echo)")
	fs.StringVar(&c.idleConns, "idle-conns", "10000,19000", "suite: idle sizes, comma separated")
	fs.IntVar(&c.echoConns, "echo-conns", 1000, "suite: echo connections")
	fs.IntVar(&c.echoBatch, "echo-batch", 16, "suite: frames per write in the batched echo variant")
	fs.StringVar(&c.reportDir, "report", "", "write report.md, results.json and SVG charts to DIR")
	fs.StringVar(&c.resultsFile, "results", "", "write the results file (machine, date, command, table) here")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if c.scenario == "" && fs.NArg() > 0 {
		c.scenario = fs.Arg(0)
	}
	if c.large {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for name, v := range largeDefaults {
			if !set[name] {
				_ = fs.Set(name, v)
			}
		}
	}
	switch c.scenario {
	case "idle", "echo", "fanout", "rpc", "http":
	case "lua-echo":
		c.scenario = "echo"
		if c.url == "" && c.peer == "" {
			c.peer = luaPeer
		}
	default:
		if !c.peers {
			fs.Usage()
			return nil, fmt.Errorf("bench: unknown scenario %q", c.scenario)
		}
	}
	if c.url == "" && c.peer == "" {
		switch c.scenario {
		case "rpc":
			c.peer = fanoutTarponPeer
		case "http":
			c.peer = luaPeer
		}
	}
	if c.conns == 0 {
		c.conns = 1000
		if c.scenario == "idle" {
			c.conns = 10000
		}
	}
	return c, nil
}

// Main implements `tarpon bench ...` (see usage). Returns the exit code:
// 0 when every run produced figures, 1 when some run failed, 2 on usage.
func Main(args []string) int {
	return mainTo(args, os.Stdout, os.Stderr)
}

func mainTo(args []string, stdout, stderr io.Writer) int {
	c, err := parseFlags(args, stderr)
	if err != nil {
		if err != flag.ErrHelp {
			fmt.Fprintln(stderr, err)
		}
		return 2
	}
	c.live = stderr
	if c.peers {
		rep := runSuite(c, stderr)
		return finish(c, rep, stdout, stderr)
	}
	rep := &Report{Started: time.Now(), Command: "tarpon bench " + strings.Join(args, " ")}
	rep.Machine = readMachine()
	srv := Server{PID: c.pid, Admin: c.admin}
	url := c.url
	name := c.peer
	if name == "" {
		name = c.url // an outside server is named by its URL in the tables
	}
	var pp *PeerProc
	if c.peer != "" {
		pp, err = StartPeer(c.peer, 15*time.Second)
		if err != nil {
			fmt.Fprintln(stderr, err)
			rep.Failures = append(rep.Failures, PeerFailure{Peer: c.peer, Err: err.Error()})
			return finish(c, rep, stdout, stderr)
		}
		srv = Server{PID: pp.PID, Admin: pp.Admin}
		url = pp.URL(peerPath(c.peer))
		switch {
		case c.scenario == "http":
			url = pp.HTTPURL(c.path)
		case c.raw:
			url = pp.HTTPURL(peerPath(c.peer)) // SMQ's raw transport starts as an HTTP request
		}
	}
	if url == "" {
		fmt.Fprintln(stderr, "bench: --url or --peer is required")
		return 2
	}
	switch c.scenario {
	case "idle":
		r := RunIdle(IdleOptions{URL: url, Conns: c.conns, Procs: c.procs, SMQ: c.smq,
			DialOptions: c.dialOptions(c.peer), Settle: c.settle, Server: srv})
		r.Peer = name
		rep.Idle = append(rep.Idle, r)
	case "echo":
		r := RunEcho(EchoOptions{URL: url, Conns: c.conns, Size: c.size, Batch: c.batch, Rate: c.rate,
			Text: c.text, Warmup: c.warmup, Duration: c.duration, Loops: c.loops, Live: c.live,
			DialOptions: c.dialOptions(c.peer), Server: srv})
		r.Peer = name
		rep.Echo = append(rep.Echo, r)
	case "fanout":
		r := RunFanout(c.fanoutOptions(url, c.pubURL, srv))
		r.Peer = name
		rep.Fanout = append(rep.Fanout, r)
	case "rpc":
		r := RunRPC(c.rpcOptions(url, c.conns, srv))
		r.Peer = name
		rep.RPC = append(rep.RPC, r)
	case "http":
		r := RunHTTP(c.httpOptions(url, c.conns, srv))
		r.Peer = name
		rep.HTTP = append(rep.HTTP, r)
	}
	if pp != nil {
		if err := pp.Stop(10 * time.Second); err != nil {
			rep.Failures = append(rep.Failures, PeerFailure{Peer: c.peer, Err: "stop: " + err.Error()})
		}
	}
	rep.Finished = time.Now()
	return finish(c, rep, stdout, stderr)
}

// finish prints the report and writes the requested files.
func finish(c *config, rep *Report, stdout, stderr io.Writer) int {
	if c.jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else {
		fmt.Fprint(stdout, rep.Markdown())
	}
	code := 0
	if rep.Failed() {
		code = 1
	}
	if c.reportDir != "" {
		if err := rep.WriteDir(c.reportDir); err != nil {
			fmt.Fprintln(stderr, err)
			code = 1
		}
	}
	if c.resultsFile != "" {
		if err := rep.WriteResults(c.resultsFile); err != nil {
			fmt.Fprintln(stderr, err)
			code = 1
		}
	}
	return code
}

// largeDefaults are the suite settings of --large. 19990 idle connections
// reach the 20,000-descriptor hard limit of the server process (the run
// then says the limit capped it); fan-out at 10000 subscribers × 20/s is
// 200,000 deliveries a second, about what 2 shared cores can carry.
var largeDefaults = map[string]string{
	"idle-conns":       "10000,19000,19990",
	"echo-conns":       "5000",
	"duration":         "20s",
	"warmup":           "3s",
	"fanout-subs":      "1000,10000,19000",
	"fanout-in-flight": "1,16,64",
	"fanout-duration":  "10s",
	"http-conns":       "500",
}

// fanoutOptions builds the fan-out run from the flags.
func (c *config) fanoutOptions(url, pubURL string, srv Server) FanoutOptions {
	proto := c.proto
	if proto == "" {
		proto = protoFor(c.peer)
	}
	return FanoutOptions{URL: url, PubURL: pubURL, Proto: proto, Subs: c.subs, Pubs: c.pubs, Rate: c.pubRate,
		InFlight: c.inFlight, Topics: c.topics,
		Size: c.size, Warmup: c.warmup, Duration: c.duration, Loops: c.loops, Live: c.live,
		DialOptions: c.dialOptions(c.peer), Server: srv}
}

// rpcOptions builds an rpc run from the flags.
func (c *config) rpcOptions(url string, clients int, srv Server) RPCOptions {
	return RPCOptions{URL: url, Clients: clients, Size: c.size, Warmup: c.warmup, Duration: c.duration,
		Loops: c.loops, Live: c.live, DialOptions: c.dialOptions(c.peer), Server: srv}
}

// httpOptions builds an http run from the flags.
func (c *config) httpOptions(url string, conns int, srv Server) HTTPOptions {
	return HTTPOptions{URL: url, Conns: conns, Warmup: c.warmup, Duration: c.duration,
		Loops: c.loops, Live: c.live, DialOptions: c.dialOptions(c.peer), Server: srv}
}

// dialOptions is how every scenario dials, from the flags. A peer the
// harness starts with a self-signed certificate needs no --insecure.
func (c *config) dialOptions(peer string) DialOptions {
	return DialOptions{Sources: c.sources, Parallel: c.parallel, Timeout: c.timeout,
		Insecure: c.insecure || isTLSPeer(peer)}
}

// peerPath is the WebSocket path a peer serves its scenario on.
func peerPath(name string) string {
	switch {
	case strings.HasSuffix(name, "-bcast"):
		return "/bcast"
	case name == "tarpon-smq":
		return peers.SMQPath
	case name == "nats":
		return "/"
	case name == "tarpon-lua":
		return peers.LuaEchoPath
	}
	return "/echo"
}

// parseCounts parses "0,1,16": like parseInts, zero allowed.
func parseCounts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		v, err := strconv.Atoi(f)
		if err != nil || v < 0 {
			return nil, fmt.Errorf("bench: bad count %q", f)
		}
		out = append(out, v)
	}
	return out, nil
}

// parseInts parses "10000,19000".
func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		v, err := strconv.Atoi(f)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("bench: bad count %q", f)
		}
		out = append(out, v)
	}
	return out, nil
}
