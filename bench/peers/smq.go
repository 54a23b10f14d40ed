package peers

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/tarponrt/tarpon/broker"
	"github.com/tarponrt/tarpon/runtime"
)

func init() {
	Register("tarpon-smq", startSMQ)
}

// smqServer is the project's SMQ broker (package broker) on the runtime
// reactor at /smq, WebSocket and raw transports both (the hub tells them
// apart by their headers). The server-side client answers every message
// published to its ETID (1) by publishing the payload back to the sender's
// ETID (PTID) with the same sub-topic: the rpc scenario's responder, the
// Go equivalent of a Lua smq:subscribe("self", {onmsg=...}) reply.
type smqServer struct {
	r    *runtime.Reactor
	hub  *broker.Hub
	hs   *http.Server
	addr string
}

// SMQPath is where tarpon-smq serves its broker.
const SMQPath = "/smq"

func startSMQ(addr string) (Server, error) {
	r, err := runtime.New(runtime.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return nil, err
	}
	hub := broker.New(r, &broker.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	// Runs on the publisher's event loop; Publish only queues, never blocks.
	hub.Subscribe("self", &broker.SubscribeOptions{OnMsg: func(m broker.Message) {
		_, _ = hub.Publish(m.Data, m.Ptid, m.Subtid)
	}})
	mux := http.NewServeMux()
	mux.Handle(SMQPath, hub)
	ln, err := listen(addr)
	if err != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = r.Shutdown(ctx)
		return nil, err
	}
	s := &smqServer{r: r, hub: hub, addr: ln.Addr().String(),
		hs: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}}
	go func() { _ = s.hs.Serve(ln) }()
	return s, nil
}

func (s *smqServer) Addr() string { return s.addr }

// Conns counts connected SMQ clients plus those still in the handshake.
func (s *smqServer) Conns() int64 {
	st := s.hub.Stats()
	return int64(st.Peers + st.Handshaking)
}

// Messages is the hub's delivery count (every copy handed to a recipient).
func (s *smqServer) Messages() int64 { return int64(s.hub.Stats().Deliveries) }

// Shutdown stops accepting, then closes every connection (the reactor
// sends 1001 and flushes).
func (s *smqServer) Shutdown(ctx context.Context) error {
	err := s.hs.Shutdown(ctx)
	return errors.Join(err, s.r.Shutdown(ctx))
}
