package runtime

import (
	"fmt"
	"io"
	"sync/atomic"
)

// counters are the reactor's figures, updated with atomics from any goroutine.
type counters struct {
	open        atomic.Int64
	openByFrame [4]atomic.Int64
	accepted    atomic.Uint64
	closed      atomic.Uint64
	bytesIn     atomic.Uint64
	bytesOut    atomic.Uint64
	msgsIn      atomic.Uint64
	msgsOut     atomic.Uint64
	queueDrops  atomic.Uint64
	protoErrors atomic.Uint64
	// handlerPanics counts Handler callbacks that panicked (their connection was closed).
	handlerPanics atomic.Uint64
}

// Stats is a snapshot of a reactor's counters.
type Stats struct {
	Open           int64            // connections now in the reactor
	OpenByFraming  map[string]int64 // open connections per framing ("websocket", "raw", "len16")
	Accepted       uint64           // connections ever handed to the reactor
	Closed         uint64
	BytesIn        uint64
	BytesOut       uint64 // bytes handed to the kernel or gnet's buffer
	MessagesIn     uint64
	MessagesOut    uint64
	QueueDrops     uint64 // sends refused with ErrQueueFull
	ProtocolErrors uint64 // connections closed for bad input
	HandlerPanics  uint64 // handler callbacks that panicked (the connection was closed)
}

// Stats returns a snapshot of the counters. Safe for concurrent use.
func (r *Reactor) Stats() Stats {
	s := &r.stats
	st := Stats{
		Open:           s.open.Load(),
		OpenByFraming:  map[string]int64{},
		Accepted:       s.accepted.Load(),
		Closed:         s.closed.Load(),
		BytesIn:        s.bytesIn.Load(),
		BytesOut:       s.bytesOut.Load(),
		MessagesIn:     s.msgsIn.Load(),
		MessagesOut:    s.msgsOut.Load(),
		QueueDrops:     s.queueDrops.Load(),
		ProtocolErrors: s.protoErrors.Load(),
		HandlerPanics:  s.handlerPanics.Load(),
	}
	for f := FramingWebSocket; f <= FramingLen16; f++ {
		st.OpenByFraming[f.String()] = s.openByFrame[f].Load()
	}
	return st
}

// WriteMetrics writes the counters in the Prometheus text exposition format.
func (r *Reactor) WriteMetrics(w io.Writer) {
	st := r.Stats()
	fmt.Fprintf(w, "# HELP tarpon_connections_open Connections held by the reactor.\n# TYPE tarpon_connections_open gauge\n")
	for f := FramingWebSocket; f <= FramingLen16; f++ {
		fmt.Fprintf(w, "tarpon_connections_open{transport=%q} %d\n", f.String(), st.OpenByFraming[f.String()])
	}
	metric := func(name, help string, v uint64) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n%s %d\n", name, help, name, name, v)
	}
	metric("tarpon_connections_accepted_total", "Connections handed to the reactor.", st.Accepted)
	metric("tarpon_connections_closed_total", "Connections closed.", st.Closed)
	metric("tarpon_bytes_received_total", "Bytes read from connections.", st.BytesIn)
	metric("tarpon_bytes_sent_total", "Bytes written to connections.", st.BytesOut)
	metric("tarpon_messages_received_total", "Messages delivered to handlers.", st.MessagesIn)
	metric("tarpon_messages_sent_total", "Messages queued for sending.", st.MessagesOut)
	metric("tarpon_send_queue_drops_total", "Sends refused because a queue was full.", st.QueueDrops)
	metric("tarpon_protocol_errors_total", "Connections closed for bad input.", st.ProtocolErrors)
	metric("tarpon_handler_panics_total", "Handler callbacks that panicked; their connection was closed.", st.HandlerPanics)
	g := &r.gate
	fmt.Fprintf(w, "# HELP tarpon_connections_refused_total Upgrades refused, by reason.\n# TYPE tarpon_connections_refused_total counter\n")
	fmt.Fprintf(w, "tarpon_connections_refused_total{reason=\"origin\"} %d\n", g.refusedOrigin.Load())
	fmt.Fprintf(w, "tarpon_connections_refused_total{reason=\"max_conns\"} %d\n", g.refusedTotal.Load())
	fmt.Fprintf(w, "tarpon_connections_refused_total{reason=\"max_conns_per_ip\"} %d\n", g.refusedPerIP.Load())
	fmt.Fprintf(w, "tarpon_connections_refused_total{reason=\"rate\"} %d\n", g.refusedRate.Load())
}
