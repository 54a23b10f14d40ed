package bench

import (
	"encoding/json"
	"fmt"
	"html"
	"math"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"time"
)

// Report is everything one `tarpon bench` invocation measured.
type Report struct {
	Started  time.Time       `json:"started"`
	Finished time.Time       `json:"finished"`
	Command  string          `json:"command"`
	Machine  Machine         `json:"machine"`
	Idle     []IdleResult    `json:"idle,omitempty"`
	Echo     []EchoSummary   `json:"echo,omitempty"`
	Fanout   []FanoutSummary `json:"fanout,omitempty"`
	RPC      []EchoSummary   `json:"rpc,omitempty"`
	HTTP     []EchoSummary   `json:"http,omitempty"`
	Timers   []TimerResult   `json:"timers,omitempty"`
	Failures []PeerFailure   `json:"failures,omitempty"`
}

// PeerFailure records a peer that failed to start or to stop cleanly.
type PeerFailure struct {
	Peer  string `json:"peer"`
	Stage string `json:"stage"`
	Err   string `json:"error"`
}

// Machine describes where the figures were taken.
type Machine struct {
	NProc     int    `json:"nproc"`
	CPUModel  string `json:"cpu_model"`
	MemTotal  string `json:"mem_total"`
	Kernel    string `json:"kernel"`
	GoVersion string `json:"go_version"`
	// LoadAvg is /proc/loadavg when the run started: the machine may be
	// shared, and a busy one skews every figure.
	LoadAvg string `json:"loadavg"`
}

func readMachine() Machine {
	m := Machine{NProc: goruntime.NumCPU(), GoVersion: goruntime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
				m.MemTotal = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			m.LoadAvg = strings.Join(f[:3], " ")
		}
	}
	return m
}

// Failed reports whether any run or peer failed.
func (r *Report) Failed() bool {
	if len(r.Failures) > 0 {
		return true
	}
	for _, x := range r.Idle {
		if x.Err != "" {
			return true
		}
	}
	for _, x := range r.Echo {
		if x.Err != "" {
			return true
		}
	}
	for _, x := range r.Fanout {
		if x.Err != "" {
			return true
		}
	}
	for _, x := range append(append([]EchoSummary(nil), r.RPC...), r.HTTP...) {
		if x.Err != "" {
			return true
		}
	}
	return false
}

const kib = 1024.0

// line is a one-line progress summary.
func (x IdleResult) line() string {
	if x.Err != "" {
		return "FAILED: " + x.Err
	}
	s := fmt.Sprintf("opened %d/%d, RSS/conn %s KiB, goroutines/conn %s, %.0f conn/s",
		x.Opened, x.Target, orNA(x.RSSPerConn/kib, "%.2f"), orNA(x.GoroutinesPerConn, "%.2f"), x.ConnectRate)
	if x.Capped != "" {
		s += ", capped by " + x.Capped
	}
	return s
}

func (x EchoSummary) line() string {
	if x.Err != "" {
		return "FAILED: " + x.Err
	}
	return fmt.Sprintf("%.0f msg/s, p50 %.0f µs, p99 %.0f µs, server %.2f µs/msg, client %.2f µs/msg, GCs %d",
		x.MsgsPerSec, x.P50, x.P99, x.ServerCPUPerMsg, x.ClientCPUPerMsg, x.ServerGCs)
}

func (x FanoutSummary) line() string {
	if x.Err != "" {
		return "FAILED: " + x.Err
	}
	s := fmt.Sprintf("%.0f deliveries/s (ratio %.4f), p50 %.0f µs, p99 %.0f µs, server %.2f µs/delivery",
		x.DeliveriesS, x.Ratio, x.P50, x.P99, x.ServerCPUPerDelivery)
	if x.InFlight > 0 {
		s += fmt.Sprintf(", last delivery p50 %.0f µs p99 %.0f µs", x.LastP50, x.LastP99)
	}
	if x.Stalled > 0 {
		s += fmt.Sprintf(", %d stalled", x.Stalled)
	}
	return s
}

// load describes a fan-out run's offered load.
func (x FanoutSummary) load() string {
	if x.InFlight > 0 {
		return fmt.Sprintf("%d in flight", x.InFlight)
	}
	return fmt.Sprintf("%g/s", x.Rate)
}

// cell escapes a table cell.
func cell(s string) string {
	s = strings.ReplaceAll(s, "|", "\\|")
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 160 {
		s = s[:157] + "..."
	}
	return s
}

func orNA(v float64, format string) string {
	if v < 0 || math.IsNaN(v) {
		return "n/a"
	}
	return fmt.Sprintf(format, v)
}

// Markdown renders the tables.
func (r *Report) Markdown() string {
	var b strings.Builder
	if len(r.Idle) > 0 {
		b.WriteString("### Idle connections\n\n")
		b.WriteString("RSS/conn = (server RSS with N connections open − RSS before) / N, after a GC and once RSS is steady.\n\n")
		b.WriteString("Transport smq/ws and smq/raw: SMQ clients held past Connack, over WebSocket or SMQ's raw transport.\n\n")
		b.WriteString("| peer | transport | conns | opened | RSS/conn KiB | heap/conn KiB | goroutines/conn | connect/s | procs × sources | notes |\n")
		b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|---|---|\n")
		for _, x := range r.Idle {
			if x.Err != "" && x.Opened == 0 {
				fmt.Fprintf(&b, "| %s | %s | %d | – | – | – | – | – | – | FAILED: %s |\n", x.Peer, transportCell(x.Transport, x.SMQ), x.Target, cell(x.Err))
				continue
			}
			notes := []string{}
			if x.Capped != "" {
				notes = append(notes, "capped by "+x.Capped)
			}
			if x.Note != "" {
				notes = append(notes, x.Note)
			}
			if x.Failed > 0 {
				notes = append(notes, fmt.Sprintf("%d dials failed: %s", x.Failed, x.FirstError))
			}
			if x.Err != "" {
				notes = append(notes, "error: "+x.Err)
			}
			if x.ServerConns >= 0 && x.ServerConns != int64(x.Opened) {
				notes = append(notes, fmt.Sprintf("server counted %d", x.ServerConns))
			}
			fmt.Fprintf(&b, "| %s | %s | %d | %d | %s | %s | %s | %.0f | %d × %d | %s |\n",
				x.Peer, transportCell(x.Transport, x.SMQ), x.Target, x.Opened, orNA(x.RSSPerConn/kib, "%.2f"), orNA(x.HeapPerConn/kib, "%.2f"),
				orNA(x.GoroutinesPerConn, "%.3f"),
				x.ConnectRate, x.Procs, x.Sources, cell(strings.Join(notes, "; ")))
		}
		b.WriteString("\n")
	}
	if len(r.Echo) > 0 {
		b.WriteString("### Echo\n\n")
		b.WriteString("Latency from (intended) send to echo receipt, HDR histogram; CPU = process utime+stime over the window / messages.\n\n")
		b.WriteString("| peer | transport | mode | conns | size | batch | msgs/s | p50 µs | p90 µs | p99 µs | p99.9 µs | max µs | server µs/msg | client µs/msg | server cores | server GCs | notes |\n")
		b.WriteString("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
		for _, x := range r.Echo {
			mode := x.Mode
			if x.Mode == "rate" {
				mode = fmt.Sprintf("rate %g/s", x.Rate)
			}
			if x.Err != "" && x.Messages == 0 {
				fmt.Fprintf(&b, "| %s | %s | %s | %d | %d | %d | – | – | – | – | – | – | – | – | – | – | FAILED: %s |\n",
					x.Peer, transportCell(x.Transport, false), mode, x.Conns, x.Size, x.Batch, cell(x.Err))
				continue
			}
			notes := []string{}
			if x.Lost > 0 {
				notes = append(notes, fmt.Sprintf("%d conns lost", x.Lost))
			}
			if x.FirstError != "" {
				notes = append(notes, x.FirstError)
			}
			if x.Err != "" {
				notes = append(notes, "error: "+x.Err)
			}
			gcs := "n/a"
			if x.ServerGCs >= 0 {
				gcs = fmt.Sprint(x.ServerGCs)
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %d | %d | %d | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %s | %.2f | %s | %s | %s |\n",
				x.Peer, transportCell(x.Transport, false), mode, x.Opened, x.Size, x.Batch, x.MsgsPerSec, x.P50, x.P90, x.P99, x.P999, x.Max,
				orNA(x.ServerCPUPerMsg, "%.2f"), x.ClientCPUPerMsg, orNA(x.ServerCores, "%.2f"), gcs, cell(strings.Join(notes, "; ")))
		}
		b.WriteString("\n")
	}
	if len(r.Fanout) > 0 {
		b.WriteString("### Fan-out\n\n")
		b.WriteString("Subscribers and publishers on WebSocket unless the proto says raw (SMQ's raw transport); every subscriber of a topic should receive every publish to it (64-byte messages unless said). " +
			"Closed loop (\"K in flight\"): each publisher keeps K publishes outstanding and sends the next when one has reached every subscriber; " +
			"open loop (\"R/s\"): fixed publish rate. Latency from (intended) publish to each delivery, and to the last delivery of a publish (closed loop). " +
			"Delivered ratio = deliveries in the window ÷ deliveries owed by the publishes sent in it (it drifts from 1 when latency is a sizeable part of the window). " +
			"A closed-loop publish not fully delivered after 2 s is counted as stalled and replaced. One generator goroutine (--loops) drives every connection. " +
			"Protocols: smq = SMQ broker (Init/Connect/Subscribe, Publish), bcast = every message to every receiver, nats = NATS protocol over WebSocket.\n\n")
		b.WriteString("| peer | proto | subs | topics | load | deliveries/s | publishes/s | delivered ratio | p50 µs | p99 µs | last p50 µs | last p99 µs | server µs/delivery | client µs/delivery | server GCs | notes |\n")
		b.WriteString("|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
		for _, x := range r.Fanout {
			if x.Err != "" && x.Delivered == 0 {
				fmt.Fprintf(&b, "| %s | %s | %d | %d | %s | – | – | – | – | – | – | – | – | – | – | FAILED: %s |\n",
					x.Peer, x.protoCell(), x.Subs, x.Topics, x.load(), cell(x.Err))
				continue
			}
			notes := []string{}
			if x.Size != 64 {
				notes = append(notes, fmt.Sprintf("%d-byte messages", x.Size))
			}
			if x.Pubs != 1 {
				notes = append(notes, fmt.Sprintf("%d publishers", x.Pubs))
			}
			if x.Lost > 0 {
				notes = append(notes, fmt.Sprintf("%d conns lost", x.Lost))
			}
			if x.Stalled > 0 {
				notes = append(notes, fmt.Sprintf("%d publishes stalled (not fully delivered in 2 s)", x.Stalled))
			}
			if x.FirstError != "" {
				notes = append(notes, x.FirstError)
			}
			gcs := "n/a"
			if x.ServerGCs >= 0 {
				gcs = fmt.Sprint(x.ServerGCs)
			}
			last50, last99 := "–", "–"
			if x.InFlight > 0 {
				last50, last99 = fmt.Sprintf("%.0f", x.LastP50), fmt.Sprintf("%.0f", x.LastP99)
			}
			fmt.Fprintf(&b, "| %s | %s | %d | %d | %s | %.0f | %.0f | %.4f | %.0f | %.0f | %s | %s | %s | %.2f | %s | %s |\n",
				x.Peer, x.protoCell(), x.Subs, x.Topics, x.load(), x.DeliveriesS, x.PubsPerSec, x.Ratio, x.P50, x.P99, last50, last99,
				orNA(x.ServerCPUPerDelivery, "%.3f"), x.ClientCPUPerDelivery, gcs, cell(strings.Join(notes, "; ")))
		}
		b.WriteString("\n")
	}
	if len(r.RPC) > 0 {
		b.WriteString("### SMQ rpc\n\n")
		b.WriteString("Each SMQ client (WebSocket, or SMQ's raw transport: transport raw) publishes a request to the server-side client's ETID 1 and waits for the reply published back to its own ETID " +
			"(closed loop, one request outstanding per client; the server side answers in Go). Latency is the round trip; CPU per round trip.\n\n")
		r.roundTrips(&b, r.RPC, "clients", "round trips/s")
	}
	if len(r.HTTP) > 0 {
		b.WriteString("### HTTP\n\n")
		b.WriteString("Plain GET of an LSP page over keep-alive connections, one request outstanding per connection (closed loop); latency is request to complete response.\n\n")
		r.roundTrips(&b, r.HTTP, "conns", "req/s")
	}
	if len(r.Timers) > 0 {
		b.WriteString("### Lua timers\n\n")
		b.WriteString("ba.timer objects armed from one Lua task on a scheduler like the server's (in the harness's process), each with its own closure; " +
			"their deadlines are spread evenly over a window that starts once arming is over. Heap is live bytes after a GC per armed timer; " +
			"lateness is each firing against its deadline, on the VM goroutine.\n\n")
		b.WriteString("| timers | due from s | over s | fired | heap bytes per timer | arm µs per timer | late p50 ms | late p99 ms | late max ms | notes |\n" +
			"|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
		for _, x := range r.Timers {
			fmt.Fprintf(&b, "| %d | %.1f | %.1f | %d | %.0f | %.2f | %.2f | %.2f | %.2f | %s |\n",
				x.Timers, x.FirstDue, x.Spread, x.Fired, x.BytesPerTimer, x.ArmMicros, x.LateP50, x.LateP99, x.LateMax, cell(x.Err))
		}
		b.WriteString("\n")
	}
	if t := r.targets(); t != "" {
		b.WriteString(t)
	}
	if len(r.Failures) > 0 {
		b.WriteString("### Peer failures\n\n| peer | stage | error |\n|---|---|---|\n")
		for _, f := range r.Failures {
			fmt.Fprintf(&b, "| %s | %s | %s |\n", f.Peer, f.Stage, cell(f.Err))
		}
		b.WriteString("\n")
	}
	return b.String()
}

// transportCell names a row's transport; rows from before transports were
// recorded were WebSocket.
func transportCell(tr string, smq bool) string {
	if tr == "" {
		tr = "ws"
	}
	if smq {
		return "smq/" + tr
	}
	return tr
}

// protoCell is the fan-out protocol, with the transport when it is not
// plain WebSocket.
func (x FanoutSummary) protoCell() string {
	if x.Transport == "" || x.Transport == "ws" {
		return x.Proto
	}
	return x.Proto + " (" + x.Transport + ")"
}

// roundTrips renders rpc and http runs (EchoSummary rows).
func (r *Report) roundTrips(b *strings.Builder, rows []EchoSummary, connsLabel, rateLabel string) {
	fmt.Fprintf(b, "| peer | transport | path | %s | %s | p50 µs | p90 µs | p99 µs | p99.9 µs | max µs | server µs/op | client µs/op | server cores | server GCs | notes |\n", connsLabel, rateLabel)
	b.WriteString("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, x := range rows {
		tr := transportCell(x.Transport, false)
		if x.Err != "" && x.Messages == 0 {
			fmt.Fprintf(b, "| %s | %s | %s | %d | – | – | – | – | – | – | – | – | – | – | FAILED: %s |\n", x.Peer, tr, x.Path, x.Conns, cell(x.Err))
			continue
		}
		notes := []string{}
		if x.Opened != x.Conns {
			notes = append(notes, fmt.Sprintf("%d of %d connected", x.Opened, x.Conns))
		}
		if x.Lost > 0 {
			notes = append(notes, fmt.Sprintf("%d conns lost", x.Lost))
		}
		if x.Unexpected > 0 {
			notes = append(notes, fmt.Sprintf("%d unexpected answers", x.Unexpected))
		}
		if x.FirstError != "" {
			notes = append(notes, x.FirstError)
		}
		gcs := "n/a"
		if x.ServerGCs >= 0 {
			gcs = fmt.Sprint(x.ServerGCs)
		}
		fmt.Fprintf(b, "| %s | %s | %s | %d | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %s | %.2f | %s | %s | %s |\n",
			x.Peer, tr, x.Path, x.Opened, x.MsgsPerSec, x.P50, x.P90, x.P99, x.P999, x.Max,
			orNA(x.ServerCPUPerMsg, "%.2f"), x.ClientCPUPerMsg, orNA(x.ServerCores, "%.2f"), gcs, cell(strings.Join(notes, "; ")))
	}
	b.WriteString("\n")
}

// header is the machine/date/command preamble of report.md and RESULTS.md.
func (r *Report) header(title string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n", title)
	fmt.Fprintf(&b, "- Machine: %d CPUs (nproc), %s, memory %s, Linux %s, %s\n",
		r.Machine.NProc, r.Machine.CPUModel, r.Machine.MemTotal, r.Machine.Kernel, r.Machine.GoVersion)
	if r.Machine.LoadAvg != "" {
		fmt.Fprintf(&b, "- Load average when the run started: %s (1, 5, 15 min; anything well above 0 means other work shared the cores)\n", r.Machine.LoadAvg)
	}
	fmt.Fprintf(&b, "- Date: %s (took %s)\n", r.Started.UTC().Format("2006-01-02 15:04 MST"),
		r.Finished.Sub(r.Started).Round(time.Second))
	fmt.Fprintf(&b, "- Command: `%s`\n", r.Command)
	b.WriteString("- Server and load generator share the machine's cores on loopback; every peer runs in its own process, measured from /proc.\n\n")
	return b.String()
}

// WriteResults writes the results file (bench/RESULTS.md for `make bench`).
func (r *Report) WriteResults(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(r.header("Benchmark results")+r.Markdown()), 0o644)
}

// WriteDir writes report.md, results.json, latency.svg, rss.svg and
// fanout.svg to dir.
func (r *Report) WriteDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	md := r.header("Tarpon benchmark report") + r.Markdown()
	if len(r.Echo) > 0 {
		md += "![echo latency percentiles](latency.svg)\n\n"
	}
	if len(r.Idle) > 0 {
		md += "![RSS per idle connection](rss.svg)\n\n"
	}
	if len(r.Fanout) > 0 {
		md += "![fan-out deliveries per second](fanout.svg)\n\n"
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	files := map[string][]byte{
		"report.md":    []byte(md),
		"results.json": js,
		"latency.svg":  []byte(r.latencySVG()),
		"rss.svg":      []byte(r.rssSVG()),
		"fanout.svg":   []byte(r.fanoutSVG()),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// series is one bar group in a chart.
type series struct {
	label  string
	values []float64
}

var palette = []string{"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948"}

// barChart renders grouped bars by hand: one group per series, one bar per
// value name. Values <= 0 draw nothing (failed runs).
func barChart(title, unit string, names []string, groups []series, logScale bool) string {
	const (
		w, h     = 900, 420
		left     = 70
		bottom   = 110
		top      = 40
		plotH    = h - top - bottom
		rightPad = 20
	)
	maxV, minV := 0.0, math.Inf(1)
	for _, g := range groups {
		for _, v := range g.values {
			maxV = math.Max(maxV, v)
			if v > 0 {
				minV = math.Min(minV, v)
			}
		}
	}
	if maxV <= 0 {
		maxV, minV = 1, 1
	}
	maxV = niceCeil(maxV)
	// scale maps a value to a height fraction: linear from 0, or log10
	// between the decades around the smallest and largest values.
	lo, hi := math.Floor(math.Log10(minV)), math.Ceil(math.Log10(maxV))
	if hi <= lo {
		hi = lo + 1
	}
	scale := func(v float64) float64 { return v / maxV }
	tick := func(i int) float64 { return maxV * float64(i) / 4 }
	ticks := 4
	if logScale {
		scale = func(v float64) float64 { return (math.Log10(v) - lo + 0.3) / (hi - lo + 0.3) }
		ticks = int(hi - lo)
		tick = func(i int) float64 { return math.Pow(10, lo+float64(i)) }
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">`+"\n", w, h)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", w, h)
	fmt.Fprintf(&b, `<text x="%d" y="20" font-size="14" font-weight="bold">%s</text>`+"\n", left, html.EscapeString(title))
	for i := 0; i <= ticks; i++ {
		v := tick(i)
		y := float64(top+plotH) - float64(plotH)*scale(v)
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", left, y, w-rightPad, y)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", left-5, y+4, fmtNum(v))
	}
	fmt.Fprintf(&b, `<text x="15" y="%d" transform="rotate(-90 15 %d)" text-anchor="middle">%s</text>`+"\n",
		top+plotH/2, top+plotH/2, html.EscapeString(unit))
	if len(groups) > 0 {
		gw := float64(w-left-rightPad) / float64(len(groups))
		bw := gw * 0.8 / float64(max(1, len(names)))
		for gi, g := range groups {
			x0 := float64(left) + gw*float64(gi) + gw*0.1
			for vi, v := range g.values {
				if v <= 0 {
					continue
				}
				bh := math.Max(1, float64(plotH)*scale(v))
				x := x0 + bw*float64(vi)
				fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s: %s %s</title></rect>`+"\n",
					x, float64(top+plotH)-bh, bw*0.95, bh, palette[vi%len(palette)],
					html.EscapeString(g.label), html.EscapeString(names[vi]), fmtNum(v), html.EscapeString(unit))
				if len(names) == 1 { // room for a value label on single bars
					fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n",
						x+bw*0.47, float64(top+plotH)-bh-4, fmtNum(v))
				}
			}
			cx := x0 + gw*0.4
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="end" transform="rotate(-30 %.1f %d)">%s</text>`+"\n",
				cx, top+plotH+15, cx, top+plotH+15, html.EscapeString(g.label))
		}
	}
	if len(names) > 1 {
		for i, n := range names {
			x := w - rightPad - 90*(len(names)-i)
			fmt.Fprintf(&b, `<rect x="%d" y="10" width="10" height="10" fill="%s"/><text x="%d" y="19">%s</text>`+"\n",
				x, palette[i%len(palette)], x+14, html.EscapeString(n))
		}
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func fmtNum(v float64) string {
	if v >= 100 || v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2g", v)
}

func (r *Report) latencySVG() string {
	var groups []series
	for _, x := range r.Echo {
		label := fmt.Sprintf("%s b%d", x.Peer, x.Batch)
		if x.Err != "" && x.Messages == 0 {
			label += " (failed)"
		}
		groups = append(groups, series{label, []float64{x.P50, x.P90, x.P99, x.P999}})
	}
	return barChart("Echo latency percentiles (log scale)", "µs", []string{"p50", "p90", "p99", "p99.9"}, groups, true)
}

func (r *Report) rssSVG() string {
	var groups []series
	for _, x := range r.Idle {
		label := fmt.Sprintf("%s %d", x.Peer, x.Target)
		if x.Err != "" && x.Opened == 0 {
			label += " (failed)"
		}
		groups = append(groups, series{label, []float64{x.RSSPerConn / kib}})
	}
	return barChart("Server RSS per idle connection", "KiB", []string{"RSS/conn"}, groups, false)
}

// fanoutSVG charts deliveries/s per fan-out configuration (subscribers,
// load), one bar per peer, log scale.
func (r *Report) fanoutSVG() string {
	var peers, configs []string
	seenP, seenC := map[string]bool{}, map[string]bool{}
	val := map[[2]string]float64{}
	for _, x := range r.Fanout {
		cfg := fmt.Sprintf("%d subs, %s", x.Subs, x.load())
		if x.Topics > 1 {
			cfg += fmt.Sprintf(", %d topics", x.Topics)
		}
		if !seenP[x.Peer] {
			seenP[x.Peer] = true
			peers = append(peers, x.Peer)
		}
		if !seenC[cfg] {
			seenC[cfg] = true
			configs = append(configs, cfg)
		}
		if x.Err == "" || x.Delivered > 0 {
			val[[2]string{cfg, x.Peer}] = x.DeliveriesS
		}
	}
	groups := make([]series, 0, len(configs))
	for _, c := range configs {
		g := series{label: c}
		for _, p := range peers {
			g.values = append(g.values, val[[2]string{c, p}])
		}
		groups = append(groups, g)
	}
	return barChart("Fan-out deliveries per second (log scale)", "deliveries/s", peers, groups, true)
}
