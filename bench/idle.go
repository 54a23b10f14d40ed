package bench

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/tarponrt/tarpon/bench/loadgen"
)

// Server identifies the server under test: its pid for /proc readings and
// its admin address for goroutines and GC counts. Either may be unknown.
type Server struct {
	PID   int
	Admin string
}

// IdleOptions configures the idle scenario.
type IdleOptions struct {
	URL   string
	Conns int
	// Procs is the number of worker processes holding connections; 0 picks
	// ceil(Conns/ConnsPerProc); -1 dials inside this process (tests).
	Procs int
	// SMQ holds SMQ clients (past Connack) instead of bare WebSocket
	// connections; an http:// or https:// URL uses SMQ's raw transport.
	SMQ bool
	DialOptions
	Settle time.Duration // max wait for the server's RSS to settle (default 10 s)
	Server Server
}

// ConnsPerProc is how many connections one worker holds by default: well
// under the 20,000 descriptors a process may have here.
const ConnsPerProc = 10000

// IdleResult is one idle run.
type IdleResult struct {
	Peer        string  `json:"peer,omitempty"`
	Transport   string  `json:"transport,omitempty"` // ws, wss; SMQ also raw, raw+tls
	SMQ         bool    `json:"smq,omitempty"`       // SMQ clients past Connack
	Target      int     `json:"target"`
	Opened      int     `json:"opened"`
	Failed      int     `json:"failed"`
	ServerConns int64   `json:"server_conns"` // as counted by the server (-1 unknown)
	Procs       int     `json:"procs"`
	Sources     int     `json:"sources"`
	ConnectSecs float64 `json:"connect_secs"`
	ConnectRate float64 `json:"connect_rate"` // connections per second

	RSSBaseline       uint64  `json:"rss_baseline"`
	RSSLoaded         uint64  `json:"rss_loaded"`
	RSSPerConn        float64 `json:"rss_per_conn"` // bytes
	HeapPerConn       float64 `json:"heap_inuse_per_conn"`
	GoroutinesBase    int     `json:"goroutines_baseline"`
	GoroutinesLoaded  int     `json:"goroutines_loaded"`
	GoroutinesPerConn float64 `json:"goroutines_per_conn"`
	ServerFDs         int     `json:"server_fds"`
	ServerFDLimit     uint64  `json:"server_fd_limit"`

	Capped     string `json:"capped,omitempty"` // a machine limit, not the server, stopped the run
	Note       string `json:"note,omitempty"`
	FirstError string `json:"first_error,omitempty"`
	Err        string `json:"error,omitempty"`

	pid int // the server pid /proc was read from (0 unknown)
}

// workerReport is the JSON line an idle worker prints once it has dialed.
type workerReport struct {
	Opened        int    `json:"opened"`
	Failed        int    `json:"failed"`
	FirstError    string `json:"first_error,omitempty"`
	ClientFDLimit bool   `json:"client_fd_limit,omitempty"`
	PortLimit     bool   `json:"port_limit,omitempty"`
	FDLimit       uint64 `json:"fd_limit"`
	StartNS       int64  `json:"start_ns"`
	EndNS         int64  `json:"end_ns"`
}

// WorkerMain implements `tarpon bench-worker idle --url U --conns N
// [--sources K] [--parallel P] [--timeout D] [--smq] [--insecure]`: it opens N connections,
// prints one JSON line (workerReport) on stdout, holds the connections until
// its stdin closes or SIGTERM/SIGINT, then closes them. Returns the exit code.
func WorkerMain(args []string) int {
	if len(args) == 0 || args[0] != "idle" {
		fmt.Fprintln(os.Stderr, "usage: tarpon bench-worker idle --url URL --conns N [--sources K] [--parallel P] [--timeout D] [--smq] [--insecure]")
		return 2
	}
	fs := flag.NewFlagSet(WorkerCommand, flag.ContinueOnError)
	url := fs.String("url", "", "ws:// or wss:// URL (http:// or https:// with --smq: SMQ's raw transport)")
	conns := fs.Int("conns", 1, "connections to open")
	sources := fs.Int("sources", 4, "source addresses 127.0.0.1..N")
	parallel := fs.Int("parallel", 32, "concurrent dialers")
	timeout := fs.Duration("timeout", 5*time.Second, "dial + handshake timeout")
	smq := fs.Bool("smq", false, "hold SMQ clients (handshake through Connack)")
	insecure := fs.Bool("insecure", false, "accept any server certificate")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	t, err := loadgen.ParseURL(*url)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	lim, _ := loadgen.RaiseFDLimit()
	// Catch signals before dialing so an early SIGTERM still closes cleanly.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	d := DialOptions{Sources: *sources, Parallel: *parallel, Timeout: *timeout, Insecure: *insecure}
	dr := d.dial(t, idleKind(*smq), *conns)
	rep := workerReport{
		Opened: len(dr.Conns), Failed: dr.Failed, FirstError: dr.FirstError,
		ClientFDLimit: dr.ClientFDLimit, PortLimit: dr.PortLimit, FDLimit: lim,
		StartNS: dr.Start.UnixNano(), EndNS: dr.End.UnixNano(),
	}
	b, _ := json.Marshal(rep)
	fmt.Println(string(b))
	eof := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); close(eof) }()
	select {
	case <-eof:
	case <-sig:
	}
	loadgen.CloseAll(dr.Conns)
	return 0
}

func idleKind(smq bool) loadgen.Kind {
	if smq {
		return loadgen.KindSMQ
	}
	return loadgen.KindWebSocket
}

// idleWorker is a running worker process.
type idleWorker struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	rep   chan workerReport
	errc  chan error
	stder *tailBuffer
}

func startIdleWorker(url string, conns int, smq bool, d DialOptions) (*idleWorker, error) {
	exe, err := selfExe()
	if err != nil {
		return nil, err
	}
	w := &idleWorker{rep: make(chan workerReport, 1), errc: make(chan error, 1), stder: &tailBuffer{max: 2048}}
	args := []string{WorkerCommand, "idle", "--url", url, "--conns", fmt.Sprint(conns),
		"--sources", fmt.Sprint(d.Sources), "--parallel", fmt.Sprint(d.Parallel), "--timeout", d.Timeout.String(),
		"--smq=" + fmt.Sprint(smq), "--insecure=" + fmt.Sprint(d.Insecure)}
	w.cmd = exec.Command(exe, args...)
	w.cmd.Stderr = w.stder
	w.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if w.stdin, err = w.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	out, err := w.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := w.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var r workerReport
			if json.Unmarshal(sc.Bytes(), &r) == nil {
				w.rep <- r
				_, _ = io.Copy(io.Discard, out)
				return
			}
		}
		w.errc <- fmt.Errorf("bench: idle worker ended without a report: %s", w.stder.String())
	}()
	return w, nil
}

// stop closes the worker's stdin (it then closes its connections and
// exits) and waits; a worker that does not exit in 10 s is killed.
func (w *idleWorker) stop() {
	_ = w.stdin.Close()
	done := make(chan struct{})
	go func() { _ = w.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = w.cmd.Process.Kill()
		<-done
	}
}

// RunIdle runs the idle scenario: baseline, open and hold Conns, let the
// server settle, read it, release. It never panics; problems land in Err,
// FirstError and Capped.
func RunIdle(opt IdleOptions) IdleResult {
	opt.setDefaults()
	if opt.Settle <= 0 {
		opt.Settle = 10 * time.Second
	}
	// -1 marks a figure that could not be measured (no pid, no admin).
	res := IdleResult{Target: opt.Conns, Sources: opt.Sources, SMQ: opt.SMQ, ServerConns: -1,
		RSSPerConn: -1, HeapPerConn: -1, GoroutinesPerConn: -1}
	t, err := loadgen.ParseURL(opt.URL)
	if err != nil {
		res.Err = err.Error()
		return res
	}
	res.Transport = transport(t, opt.SMQ)
	if opt.Conns <= 0 {
		res.Err = "bench: idle needs --conns > 0"
		return res
	}
	srv := resolveServer(opt.Server)
	res.pid = srv.PID

	// Baseline: collect garbage, let RSS settle, read.
	if srv.Admin != "" {
		if st, err := fetchStats(srv.Admin, true); err == nil {
			res.GoroutinesBase = st.Goroutines
		}
	}
	baseHeap := uint64(0)
	if ps, err := settle(srv.PID, opt.Settle/2); err == nil {
		res.RSSBaseline = ps.RSS
	}
	if srv.Admin != "" {
		if st, err := fetchStats(srv.Admin, false); err == nil {
			baseHeap = st.HeapInuse
			res.GoroutinesBase = st.Goroutines
		}
	}

	var (
		workers []*idleWorker
		reports []workerReport
		local   *loadgen.DialResult
	)
	procs := opt.Procs
	if procs == 0 {
		procs = (opt.Conns + ConnsPerProc - 1) / ConnsPerProc
	}
	defer func() {
		for _, w := range workers {
			w.stop()
		}
		if local != nil {
			loadgen.CloseAll(local.Conns)
		}
	}()
	if procs < 0 {
		res.Procs = 0
		local = opt.dial(t, idleKind(opt.SMQ), opt.Conns)
		lim, _ := loadgen.RaiseFDLimit()
		reports = append(reports, workerReport{Opened: len(local.Conns), Failed: local.Failed,
			FirstError: local.FirstError, ClientFDLimit: local.ClientFDLimit, PortLimit: local.PortLimit,
			FDLimit: lim, StartNS: local.Start.UnixNano(), EndNS: local.End.UnixNano()})
	} else {
		res.Procs = procs
		for i := 0; i < procs; i++ {
			n := opt.Conns / procs
			if i < opt.Conns%procs {
				n++
			}
			w, err := startIdleWorker(opt.URL, n, opt.SMQ, opt.DialOptions)
			if err != nil {
				res.Err = fmt.Sprintf("bench: start idle worker: %v", err)
				return res
			}
			workers = append(workers, w)
		}
		deadline := time.After(time.Minute + time.Duration(opt.Conns)*time.Millisecond)
		for _, w := range workers {
			select {
			case r := <-w.rep:
				reports = append(reports, r)
			case err := <-w.errc:
				res.Err = err.Error()
				return res
			case <-deadline:
				res.Err = "bench: idle workers did not report in time"
				return res
			}
		}
	}
	var start, end int64
	clientFD, ports := false, false
	var clientLim uint64
	for i, r := range reports {
		res.Opened += r.Opened
		res.Failed += r.Failed
		if res.FirstError == "" {
			res.FirstError = r.FirstError
		}
		clientFD = clientFD || r.ClientFDLimit
		ports = ports || r.PortLimit
		clientLim = r.FDLimit
		if i == 0 || r.StartNS < start {
			start = r.StartNS
		}
		if r.EndNS > end {
			end = r.EndNS
		}
	}
	res.ConnectSecs = float64(end-start) / 1e9
	if res.ConnectSecs > 0 {
		res.ConnectRate = float64(res.Opened) / res.ConnectSecs
	}

	// Wait until the server has registered every connection we hold.
	if srv.Admin != "" {
		waitUntil(5*time.Second, func() bool {
			st, err := fetchStats(srv.Admin, false)
			return err == nil && st.Conns >= int64(res.Opened)
		})
		_, _ = fetchStats(srv.Admin, true) // collect handshake garbage
	}
	if ps, err := settle(srv.PID, opt.Settle); err == nil {
		res.RSSLoaded = ps.RSS
		res.ServerFDs = ps.FDs
		res.ServerFDLimit = ps.FDLimit
		res.RSSPerConn = perConn(float64(res.RSSLoaded), float64(res.RSSBaseline), res.Opened)
	} else if srv.PID > 0 {
		res.Err = err.Error()
	}
	if srv.Admin != "" {
		if st, err := fetchStats(srv.Admin, false); err == nil {
			res.ServerConns = st.Conns
			res.GoroutinesLoaded = st.Goroutines
			res.GoroutinesPerConn = perConn(float64(st.Goroutines), float64(res.GoroutinesBase), res.Opened)
			res.HeapPerConn = perConn(float64(st.HeapInuse), float64(baseHeap), res.Opened)
		}
	}
	var caps []string
	if clientFD {
		caps = append(caps, fmt.Sprintf("client fd limit (RLIMIT_NOFILE %d per process; raise --procs)", clientLim))
	}
	if ports {
		caps = append(caps, "client ephemeral ports (raise --sources)")
	}
	atServerLimit := res.ServerFDLimit > 0 && uint64(res.ServerFDs)+16 >= res.ServerFDLimit
	if atServerLimit && res.Opened < res.Target {
		caps = append(caps, fmt.Sprintf("server fd limit (RLIMIT_NOFILE %d, hard limit here)", res.ServerFDLimit))
	}
	res.Capped = strings.Join(caps, "; ")
	if atServerLimit && res.Opened >= res.Target {
		res.Note = fmt.Sprintf("server within 16 descriptors of its fd limit (%d/%d)", res.ServerFDs, res.ServerFDLimit)
	}
	return res
}

// resolveServer fills a missing pid from the admin endpoint (every peer
// reports its pid), so /proc can be read for servers the harness did not
// start, as long as they run on this machine.
func resolveServer(s Server) Server {
	if s.PID == 0 && s.Admin != "" {
		if st, err := fetchStats(s.Admin, false); err == nil {
			s.PID = st.PID
		}
	}
	return s
}

// settle polls pid's RSS every 200 ms until five readings in a row lie
// within 0.5% of each other, or maxWait has passed; it returns the last reading.
func settle(pid int, maxWait time.Duration) (ProcSample, error) {
	deadline := time.Now().Add(maxWait)
	var hist []uint64
	for {
		ps, err := ReadProc(pid)
		if err != nil {
			return ps, err
		}
		hist = append(hist, ps.RSS)
		if len(hist) >= 5 {
			w := hist[len(hist)-5:]
			lo, hi := w[0], w[0]
			for _, v := range w {
				lo, hi = min(lo, v), max(hi, v)
			}
			if float64(hi-lo) <= 0.005*float64(hi) {
				return ps, nil
			}
		}
		if time.Now().After(deadline) {
			return ps, nil
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitUntil polls cond every 50 ms until it holds or d has passed.
func waitUntil(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}
