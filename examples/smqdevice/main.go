package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/tarponrt/tarpon/broker/client"
)

type config struct {
	url      string
	uid      string
	topic    string // where readings go
	cmdTopic string // where commands come from
	interval time.Duration
	count    int // readings to send; 0 = until stopped
}

// reading is what the device publishes (JSON).
type reading struct {
	UID  string  `json:"uid"`
	Seq  int     `json:"seq"`
	Temp float64 `json:"temp"`
}

func main() {
	host, _ := os.Hostname()
	cfg := config{}
	flag.StringVar(&cfg.url, "url", "http://127.0.0.1:8080/smq.lsp", "broker URL: http(s):// for the raw transport, ws(s):// for WebSocket")
	flag.StringVar(&cfg.uid, "uid", fmt.Sprintf("device-%s-%d", host, os.Getpid()), "device UID (at least 6 bytes; a second connection with the same UID replaces the first)")
	flag.StringVar(&cfg.topic, "topic", "device/readings", "topic to publish readings to")
	flag.StringVar(&cfg.cmdTopic, "cmd", "device/cmd", "topic to receive commands from")
	flag.DurationVar(&cfg.interval, "interval", time.Second, "time between readings")
	flag.IntVar(&cfg.count, "count", 0, "number of readings to send, 0 = until interrupted")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, os.Stdout); err != nil && !errors.Is(err, context.Canceled) {
		log.Fatal(err)
	}
}

// run connects, subscribes to the command topic and publishes readings
// until ctx ends or count readings were sent. Progress goes to out.
func run(ctx context.Context, cfg config, out io.Writer) error {
	if len(cfg.uid) < 6 {
		return errors.New("uid must be at least 6 bytes (SMQ rule)")
	}
	raw := !strings.HasPrefix(cfg.url, "ws://") && !strings.HasPrefix(cfg.url, "wss://")
	c, err := client.Dial(ctx, cfg.url, &client.Options{
		UID:              cfg.uid,
		Info:             "tarpon smqdevice example",
		Raw:              raw,
		SendHTTPResponse: raw, // ask for the HTTP 200 first (Python/Java style)
		Reconnect:        2 * time.Second,
		OnClose: func(err error, reconnecting bool) {
			fmt.Fprintf(out, "connection lost: %v (reconnecting: %v)\n", err, reconnecting)
		},
		OnReconnect: func(etid uint32) { fmt.Fprintf(out, "reconnected, ETID %d\n", etid) },
	})
	if err != nil {
		return fmt.Errorf("connect %s: %w", cfg.url, err)
	}
	defer c.Close()
	fmt.Fprintf(out, "connected to %s as %q, ETID %d\n", cfg.url, cfg.uid, c.Etid())

	// Commands: any JSON object on the command topic, e.g. {"cmd":"blink"}.
	// Callbacks run on the client's read goroutine; Data is only valid
	// during the call.
	_, _, err = c.SubscribeWait(ctx, cfg.cmdTopic, &client.SubscribeOptions{
		OnMsg: func(m client.Message) {
			fmt.Fprintf(out, "command from ETID %d: %s\n", m.PTID, m.Data)
		},
	})
	if err != nil {
		return fmt.Errorf("subscribe %q: %w", cfg.cmdTopic, err)
	}

	// Resolve the readings topic once; the client keeps the name → TID
	// mapping (and re-resolves it after a reconnect).
	if _, err := c.Create(ctx, cfg.topic); err != nil {
		return fmt.Errorf("create %q: %w", cfg.topic, err)
	}

	tick := time.NewTicker(cfg.interval)
	defer tick.Stop()
	for seq := 1; cfg.count == 0 || seq <= cfg.count; seq++ {
		r := reading{UID: cfg.uid, Seq: seq, Temp: math.Round((21+2*math.Sin(float64(seq)/10))*10) / 10}
		data, _ := json.Marshal(r)
		// PublishTo writes synchronously: when it returns, the message is on
		// the socket. Publish by name would wait for a CreateAck first if the
		// name were unknown (e.g. right after a reconnect).
		var err error
		if tid, ok := c.TopicID(cfg.topic); ok {
			err = c.PublishTo(data, tid, 0)
		} else {
			err = c.Publish(data, cfg.topic, "")
		}
		if err != nil {
			fmt.Fprintf(out, "publish: %v\n", err) // e.g. not connected while reconnecting
		} else {
			fmt.Fprintf(out, "published %s\n", data)
		}
		if cfg.count != 0 && seq == cfg.count {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}
