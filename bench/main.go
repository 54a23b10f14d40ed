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
  tarpon bench idle --url ws://HOST:PORT/echo [--conns N] [--procs P] [--admin ADDR | --pid PID]
  tarpon bench echo --url ws://HOST:PORT/echo [--conns N] [--size B] [--batch K] [--rate R] [--duration D]
  tarpon bench fanout --url ws://HOST:PORT/bcast [--subs N] [--pubs P] [--pub-rate R] [--size B] [--proto bcast]
  tarpon bench idle|echo|fanout --peer NAME ...   (starts peer NAME itself, measures it, stops it)
  tarpon bench --peers [--report DIR] [--results FILE] [--peer-list a,b] [--idle-conns 10000,19000]
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

	subs    int
	pubs    int
	pubRate float64
	proto   string
	pubURL  string

	fanoutPeers string
	large       bool
	peers       bool
	peerList    string
	idleConns   string
	echoConns   int
	echoBatch   int
	reportDir   string
	resultsFile string
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
	fs.StringVar(&c.url, "url", "", "ws:// URL of the server under test")
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
	fs.StringVar(&c.proto, "proto", "bcast", "fanout: protocol adapter")
	fs.StringVar(&c.pubURL, "pub-url", "", "fanout: publishers' URL (default --url with ?pub=1)")
	fs.StringVar(&c.fanoutPeers, "fanout-peers", "", "suite: broadcast peers for a fan-out comparison (e.g. tarpon-bcast,gorilla-bcast,nbio-bcast); empty skips it")
	fs.BoolVar(&c.jsonOut, "json", false, "print results as JSON")
	fs.BoolVar(&c.peers, "peers", false, "run the side-by-side suite against every peer")
	fs.BoolVar(&c.large, "large", false, "suite: as far as this machine allows (idle up to the server's fd limit, 5000 echo conns, 20 s windows, fan-out to 10000 subscribers); explicit flags still win")
	fs.StringVar(&c.peerList, "peer-list", "tarpon-echo,gorilla-echo,nbio-echo", "suite: peers, comma separated")
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
	if !c.peers && c.scenario != "idle" && c.scenario != "echo" && c.scenario != "fanout" {
		fs.Usage()
		return nil, fmt.Errorf("bench: unknown scenario %q", c.scenario)
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
	}
	if url == "" {
		fmt.Fprintln(stderr, "bench: --url or --peer is required")
		return 2
	}
	switch c.scenario {
	case "idle":
		r := RunIdle(IdleOptions{URL: url, Conns: c.conns, Procs: c.procs, Sources: c.sources,
			Parallel: c.parallel, Timeout: c.timeout, Settle: c.settle, Server: srv})
		r.Peer = name
		rep.Idle = append(rep.Idle, r)
	case "echo":
		r := RunEcho(EchoOptions{URL: url, Conns: c.conns, Size: c.size, Batch: c.batch, Rate: c.rate,
			Text: c.text, Warmup: c.warmup, Duration: c.duration, Loops: c.loops, Sources: c.sources,
			Parallel: c.parallel, Timeout: c.timeout, Server: srv})
		r.Peer = name
		rep.Echo = append(rep.Echo, r)
	case "fanout":
		r := RunFanout(c.fanoutOptions(url, c.pubURL, srv))
		r.Peer = name
		rep.Fanout = append(rep.Fanout, r)
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
	"idle-conns":   "10000,19000,19990",
	"echo-conns":   "5000",
	"duration":     "20s",
	"warmup":       "3s",
	"fanout-peers": "tarpon-bcast,gorilla-bcast,nbio-bcast",
	"subs":         "10000",
	"pub-rate":     "20",
}

// fanoutOptions builds the fan-out run from the flags.
func (c *config) fanoutOptions(url, pubURL string, srv Server) FanoutOptions {
	return FanoutOptions{URL: url, PubURL: pubURL, Proto: c.proto, Subs: c.subs, Pubs: c.pubs, Rate: c.pubRate,
		Size: c.size, Warmup: c.warmup, Duration: c.duration, Loops: c.loops, Sources: c.sources,
		Parallel: c.parallel, Timeout: c.timeout, Server: srv}
}

// peerPath is the WebSocket path a peer serves its scenario on.
func peerPath(name string) string {
	if strings.HasSuffix(name, "-bcast") {
		return "/bcast"
	}
	return "/echo"
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
