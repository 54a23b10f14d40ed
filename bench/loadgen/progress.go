package loadgen

import "sync/atomic"

// Progress is a run's live figures for a progress line: the drivers' loops
// add to it once per wake-up (a few atomic adds, not one per message), and
// any goroutine may read it while the run goes on.
type Progress struct {
	Received atomic.Int64 // messages received (echoes, deliveries, responses), warm-up included
	Lost     atomic.Int64 // connections that failed
}

// progressOut is one loop's side of a Progress: counts kept locally,
// published after each wake-up.
type progressOut struct {
	p                    *Progress
	received             int64 // messages received, window or not
	pubReceived, pubLost int64 // what has been published
}

// publish adds what changed since the last call to the shared Progress;
// lost is the loop's count of failed connections.
func (o *progressOut) publish(lost int) {
	if o.p == nil {
		return
	}
	if d := o.received - o.pubReceived; d != 0 {
		o.p.Received.Add(d)
		o.pubReceived = o.received
	}
	if d := int64(lost) - o.pubLost; d != 0 {
		o.p.Lost.Add(d)
		o.pubLost = int64(lost)
	}
}
