package bench

import (
	"fmt"
	"strings"
)

// Targets of the broker and Lua work (issue "broker benchmark targets"),
// checked against figures of the same run.
const (
	fanoutGainTarget   = 5.0  // Tarpon deliveries/s ÷ best peer's, many in flight
	fanoutCPUTarget    = 1.5  // server CPU µs per delivery, many in flight
	fanoutSingleTarget = 0.95 // Tarpon deliveries/s ÷ best peer's, 1 in flight
	luaEchoCPUTarget   = 0.85 // tarpon-lua server CPU per message ÷ gorilla-echo's
	luaIdleKiBTarget   = 6.0  // tarpon-lua RSS per idle cosocket, KiB
	smqIdleKiBTarget   = 1.5  // tarpon-smq RSS per idle SMQ client past Connack, KiB
	fanoutTarponPeer   = "tarpon-smq"
	luaPeer            = "tarpon-lua"
	luaBaselinePeer    = "gorilla-echo"

	// The runtime's targets: the Go echo and idle connections.
	idleRatioTarget = 0.75 // tarpon-echo RSS per idle connection ÷ nbio-echo's
	echoCPUTarget   = 0.85 // tarpon-echo server CPU per message ÷ gorilla-echo's
	echoGCTarget    = 0.25 // tarpon-echo GC cycles ÷ gorilla-echo's
	goEchoPeer      = "tarpon-echo"
	idleBaseline    = "nbio-echo"
)

// overWS reports whether an echo row ran over plain WebSocket, the
// transport the targets are set for (the raw and wss rows are context).
func overWS(x EchoSummary) bool { return x.Transport == "" || x.Transport == "ws" }

// targets renders the target comparison lines; empty when the run holds
// none of the figures they need.
func (r *Report) targets() string {
	var rows []string
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "**missed**"
	}
	// Fan-out: per (subscribers, in flight), tarpon-smq against the best
	// other peer.
	type key struct{ subs, inFlight, topics int }
	var order []key
	best := map[key]FanoutSummary{}
	tarpon := map[key]FanoutSummary{}
	for _, x := range r.Fanout {
		if x.InFlight <= 0 {
			continue
		}
		k := key{x.Subs, x.InFlight, x.Topics}
		ok := x.Err == "" || x.Delivered > 0
		if x.Peer == fanoutTarponPeer {
			if ok {
				tarpon[k] = x
			}
			order = append(order, k)
			continue
		}
		if strings.HasPrefix(x.Peer, "tarpon-") {
			continue // Tarpon's other servers (tarpon-bcast) are context, not the bar
		}
		if ok && x.DeliveriesS > best[k].DeliveriesS {
			best[k] = x
		}
	}
	for _, k := range order {
		t, okT := tarpon[k]
		b, okB := best[k]
		what := fmt.Sprintf("fan-out %d subs, %d in flight", k.subs, k.inFlight)
		if k.topics > 1 {
			what += fmt.Sprintf(", %d topics", k.topics)
		}
		goal := fanoutSingleTarget
		if k.inFlight > 1 {
			goal = fanoutGainTarget
		}
		switch {
		case !okT:
			rows = append(rows, fmt.Sprintf("| %s: %s deliveries/s ÷ best peer | no %s figure | ≥ %.2f× | n/a |", what, fanoutTarponPeer, fanoutTarponPeer, goal))
		case !okB:
			rows = append(rows, fmt.Sprintf("| %s: %s deliveries/s ÷ best peer | no peer figure | ≥ %.2f× | n/a |", what, fanoutTarponPeer, goal))
		default:
			ratio := t.DeliveriesS / b.DeliveriesS
			rows = append(rows, fmt.Sprintf("| %s: %s deliveries/s ÷ best peer (%s) | %.0f ÷ %.0f = %.2f× | ≥ %.2f× | %s |",
				what, fanoutTarponPeer, b.Peer, t.DeliveriesS, b.DeliveriesS, ratio, goal, verdict(ratio >= goal)))
		}
		if okT && k.inFlight > 1 && t.ServerCPUPerDelivery >= 0 {
			rows = append(rows, fmt.Sprintf("| %s: %s server CPU per delivery | %.3f µs | ≤ %.1f µs | %s |",
				what, fanoutTarponPeer, t.ServerCPUPerDelivery, fanoutCPUTarget, verdict(t.ServerCPUPerDelivery <= fanoutCPUTarget)))
		}
	}
	// The runtime: memory per idle connection against nbio, same size.
	for _, t := range r.Idle {
		if t.Peer != goEchoPeer || t.Opened == 0 || t.RSSPerConn <= 0 {
			continue
		}
		for _, n := range r.Idle {
			if n.Peer == idleBaseline && n.Target == t.Target && n.RSSPerConn > 0 {
				ratio := t.RSSPerConn / n.RSSPerConn
				rows = append(rows, fmt.Sprintf("| idle %d conns: %s RSS per connection ÷ %s's (goroutines per connection: %.3f) | %.2f ÷ %.2f KiB = %.2f× | ≤ %.2f× and 0 goroutines | %s |",
					t.Target, goEchoPeer, idleBaseline, t.GoroutinesPerConn, t.RSSPerConn/kib, n.RSSPerConn/kib, ratio, idleRatioTarget,
					verdict(ratio <= idleRatioTarget && t.GoroutinesPerConn < 0.01)))
			}
		}
	}
	// The runtime: the Go echo against gorilla's, batch 1 (CPU, p99, GCs).
	for _, t := range r.Echo {
		if t.Peer != goEchoPeer || !overWS(t) || t.Mode != "closed" || t.Batch != 1 || t.ServerCPUPerMsg <= 0 {
			continue
		}
		for _, g := range r.Echo {
			if g.Peer != luaBaselinePeer || !overWS(g) || g.Mode != t.Mode || g.Batch != t.Batch || g.Conns != t.Conns || g.ServerCPUPerMsg <= 0 {
				continue
			}
			ratio := t.ServerCPUPerMsg / g.ServerCPUPerMsg
			rows = append(rows, fmt.Sprintf("| echo %d conns, batch 1: %s server CPU per message ÷ %s's | %.2f ÷ %.2f µs = %.2f× | ≤ %.2f× | %s |",
				t.Conns, goEchoPeer, luaBaselinePeer, t.ServerCPUPerMsg, g.ServerCPUPerMsg, ratio, echoCPUTarget, verdict(ratio <= echoCPUTarget)))
			rows = append(rows, fmt.Sprintf("| echo %d conns, batch 1: %s p99 against %s's | %.0f vs %.0f µs | no worse | %s |",
				t.Conns, goEchoPeer, luaBaselinePeer, t.P99, g.P99, verdict(t.P99 <= g.P99)))
			if t.ServerGCs >= 0 && g.ServerGCs > 0 {
				gr := float64(t.ServerGCs) / float64(g.ServerGCs)
				rows = append(rows, fmt.Sprintf("| echo %d conns, batch 1: %s GC cycles ÷ %s's | %d ÷ %d = %.2f | ≤ %.2f | %s |",
					t.Conns, goEchoPeer, luaBaselinePeer, t.ServerGCs, g.ServerGCs, gr, echoGCTarget, verdict(gr <= echoGCTarget)))
			}
		}
	}
	// Lua cosocket echo against the Go (gorilla) echo, same batch.
	for _, l := range r.Echo {
		if l.Peer != luaPeer || !overWS(l) || l.Mode != "closed" || l.ServerCPUPerMsg <= 0 {
			continue
		}
		for _, g := range r.Echo {
			if g.Peer == luaBaselinePeer && overWS(g) && g.Mode == l.Mode && g.Batch == l.Batch && g.Conns == l.Conns && g.ServerCPUPerMsg > 0 {
				ratio := l.ServerCPUPerMsg / g.ServerCPUPerMsg
				rows = append(rows, fmt.Sprintf("| lua-echo %d conns, batch %d: server CPU per message ÷ %s's | %.2f ÷ %.2f µs = %.2f× | ≤ %.2f× | %s |",
					l.Conns, l.Batch, luaBaselinePeer, l.ServerCPUPerMsg, g.ServerCPUPerMsg, ratio, luaEchoCPUTarget, verdict(ratio <= luaEchoCPUTarget)))
			}
		}
	}
	// Memory per idle cosocket parked in read.
	for _, x := range r.Idle {
		if x.Peer != luaPeer || x.Opened == 0 || x.RSSPerConn < 0 {
			continue
		}
		v := x.RSSPerConn / kib
		rows = append(rows, fmt.Sprintf("| lua idle %d conns (a Lua coroutine parked in read per connection): RSS per connection | %.2f KiB | ≤ %.0f KiB | %s |",
			x.Opened, v, luaIdleKiBTarget, verdict(v <= luaIdleKiBTarget)))
	}
	// Memory per idle SMQ client (the broker's peer state included).
	for _, x := range r.Idle {
		if x.Peer != fanoutTarponPeer || !x.SMQ || x.Opened == 0 || x.RSSPerConn < 0 {
			continue
		}
		v := x.RSSPerConn / kib
		rows = append(rows, fmt.Sprintf("| idle SMQ %d clients over %s (past Connack): %s RSS per connection | %.2f KiB | ≤ %.1f KiB | %s |",
			x.Opened, transportCell(x.Transport, false), fanoutTarponPeer, v, smqIdleKiBTarget, verdict(v <= smqIdleKiBTarget)))
	}
	// Timer resolution with 100k armed (issue 4: ≤ 10 ms).
	for _, x := range r.Timers {
		if x.Fired == 0 {
			continue
		}
		rows = append(rows, fmt.Sprintf("| %d Lua timers armed: p99 firing lateness (all %d fired: %s) | %.2f ms | ≤ %.0f ms | %s |",
			x.Timers, x.Timers, yesNo(x.Fired == x.Timers), x.LateP99, timerLateTarget, verdict(x.Fired == x.Timers && x.LateP99 <= timerLateTarget)))
	}
	if len(rows) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("### Targets\n\n")
	b.WriteString("Issue targets computed from the figures above (same run, same machine). Deliveries/s compare the closed-loop fan-out rows; " +
		"\"best peer\" is the fastest non-Tarpon peer of the same row set.\n\n")
	b.WriteString("| target | measured | goal | verdict |\n|---|---|---|---|\n")
	for _, row := range rows {
		b.WriteString(row + "\n")
	}
	b.WriteString("\n")
	return b.String()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
