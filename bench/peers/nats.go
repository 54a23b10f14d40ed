package peers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
)

func init() {
	Register("nats", startNATS)
}

// natsServer is nats-server embedded in the peer process, with its
// WebSocket listener on the peer's address (no TLS); its NATS TCP
// listener (random port) is not used. Clients speak the NATS text protocol (CONNECT, SUB, PUB, MSG,
// PING/PONG) inside WebSocket messages, at any path.
type natsServer struct {
	s    *natsserver.Server
	addr string
}

func startNATS(addr string) (Server, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("peers: nats: address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("peers: nats: address %q: bad port", addr)
	}
	if port == 0 {
		port = natsserver.RANDOM_PORT
	}
	// nats-server's own listener error path logs fatally (exits); probing
	// the address first gives the same clean error as the other peers.
	if port > 0 {
		ln, err := listen(addr)
		if err != nil {
			return nil, err
		}
		_ = ln.Close()
	}
	opts := &natsserver.Options{
		ServerName: "tarpon-bench",
		Host:       host,
		Port:       natsserver.RANDOM_PORT, // the NATS TCP listener, unused here
		NoLog:      true,
		NoSigs:     true,
		MaxConn:    1 << 20,
		Websocket: natsserver.WebsocketOpts{
			Host:  host,
			Port:  port,
			NoTLS: true,
		},
	}
	s, err := natsserver.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("peers: nats: %w", err)
	}
	go s.Start()
	ports := s.PortsInfo(10 * time.Second)
	if ports == nil || len(ports.WebSocket) == 0 {
		s.Shutdown()
		return nil, errors.New("peers: nats: WebSocket listener not ready after 10s")
	}
	u := ports.WebSocket[0] // ws://host:port
	hp := u
	if i := len("ws://"); len(u) > i && u[:i] == "ws://" {
		hp = u[i:]
	}
	return &natsServer{s: s, addr: hp}, nil
}

func (n *natsServer) Addr() string { return n.addr }

// Conns counts client connections (the WebSocket ones here).
func (n *natsServer) Conns() int64 { return int64(n.s.NumClients()) }

// Messages is the number of messages the server delivered to clients.
func (n *natsServer) Messages() int64 {
	v, err := n.s.Varz(nil)
	if err != nil {
		return 0
	}
	return v.OutMsgs
}

// Shutdown closes every client and waits for the server's goroutines.
func (n *natsServer) Shutdown(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		n.s.Shutdown()
		n.s.WaitForShutdown()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
