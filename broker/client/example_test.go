package client_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/tarponrt/tarpon/broker/client"
)

// ExampleDial shows a subscriber that answers direct requests, as an IoT
// device would. (No Output: it needs a running broker.)
func ExampleDial() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, "ws://127.0.0.1:9357/smq", &client.Options{
		UID:       "device-0001",
		Reconnect: 2 * time.Second, // restore subscriptions after a restart
		OnClose:   func(err error, again bool) { log.Printf("closed: %v (reconnect %v)", err, again) },
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	// Reply to requests sent to our ETID with sub-topic "getStatus".
	reply, err := c.CreateSub(ctx, "status")
	if err != nil {
		log.Fatal(err)
	}
	err = c.Subscribe("self", &client.SubscribeOptions{
		Subtopic: "getStatus",
		OnMsg: func(m client.Message) {
			_ = c.PublishTo([]byte(`{"on":true}`), m.PTID, reply) // safe from a callback
		},
	})
	if err != nil {
		log.Fatal(err)
	}

	// Topic traffic; Data is only valid during the callback.
	tid, _, err := c.SubscribeWait(ctx, "alerts", &client.SubscribeOptions{
		OnMsg: func(m client.Message) { fmt.Printf("alert from %d: %s\n", m.PTID, m.Data) },
	})
	if err != nil {
		log.Fatal(err)
	}
	_ = c.PublishTo([]byte("device-0001 online"), tid, 0)
}
