package broker

import (
	"errors"
	"log/slog"
	"math"
	"time"
)

// Message is one publish as seen by hooks and server-side callbacks. Data
// aliases the received buffer: it is valid only during the call that got it;
// copy it to keep it (a Lua binding posting to its scheduler must copy).
type Message struct {
	Data   []byte
	Tid    uint32 // destination: topic TID or an ETID
	Ptid   uint32 // publisher's ETID (reply address)
	Subtid uint32 // sub-topic ID, 0 = none
	// JSON is the decoded Data for server subscriptions made with
	// SubscribeOptions.JSON; nil otherwise.
	JSON any
}

// Hooks are the application's decision points (SMQ spec §2.2). A nil field
// allows. Every hook runs on the event-loop goroutine of the peer concerned
// (OnClose may run on another peer's loop or on the goroutine that called
// Shutdown), never under the hub's lock: hooks may call Hub methods but must
// not block.
type Hooks struct {
	// Authenticate decides on a Connect: return ConnackAccepted, or a code
	// 1–6 and an optional reason sent in the Connack. The peer's UID, info
	// and ConnectInfo are set; p.Etid() is still 0.
	Authenticate func(p *Peer, credentials []byte) (ConnackCode, string)
	// PermitTopic authorises Create (subscribe=false; asked every time) and
	// Subscribe (subscribe=true; not asked for a duplicate subscribe).
	// false answers the request with a denied ack.
	PermitTopic func(p *Peer, topic string, subscribe bool) bool
	// PermitSubtopic authorises creating a new sub-topic name.
	PermitSubtopic func(p *Peer, subtopic string) bool
	// OnPublish sees every client publish (after the PTID check) before
	// routing; false drops it silently.
	OnPublish func(p *Peer, m Message) bool
	// OnDrop is called when a client publish reached nobody.
	OnDrop func(p *Peer, m Message)
	// OnConnect runs after the Connack was queued and the peer registered.
	OnConnect func(p *Peer)

	// The Async forms serve bindings whose decisions run elsewhere (a Lua
	// scheduler): the hook starts the decision and returns at once; done
	// (callable once, from any goroutine) delivers the answer. Meanwhile
	// the peer's later messages are buffered (up to 1024 messages / 1 MiB,
	// past that it is closed with ErrBacklog) and processed in order
	// afterwards, so acks stay in request order. An Async hook takes
	// precedence over its synchronous twin. done must eventually be called
	// unless the peer closed.
	AuthenticateAsync   func(p *Peer, credentials []byte, done func(code ConnackCode, reason string))
	PermitTopicAsync    func(p *Peer, topic string, subscribe bool, done func(ok bool))
	PermitSubtopicAsync func(p *Peer, subtopic string, done func(ok bool))
	// OnPublishAsync gets m.Data as its own copy (it may keep it).
	OnPublishAsync func(p *Peer, m Message, done func(ok bool))

	// OnClose runs once when a connected peer terminates, after it left
	// every table. err is nil for a client Disconnect or EOF, or one of
	// ErrReconnect, ErrShutdown, ErrCorruptFrame, ErrProtocol,
	// ErrSlowConsumer, ErrFragment, or the transport's error.
	OnClose func(p *Peer, err error)
}

// SlowConsumerPolicy says what a publish does for a recipient whose send
// queue is over its high-water mark (runtime Conn.Congested).
type SlowConsumerPolicy uint8

const (
	// SlowConsumerDrop skips the message for that recipient and counts it
	// (BAS's behaviour: "send queue full" drops for that subscriber only).
	SlowConsumerDrop SlowConsumerPolicy = iota
	// SlowConsumerDisconnect closes the congested recipient (OnClose gets
	// ErrSlowConsumer) and counts it.
	SlowConsumerDisconnect
)

// Options configures a Hub. The zero value is ready to use; New fills in the
// defaults documented on each field.
type Options struct {
	// ReadTimeout is how long a peer may take to send Connect after Init
	// (BAS readtmo). Zero means 4 s. On expiry it gets Connack 0x02.
	ReadTimeout time.Duration
	// KeepIdle and KeepIntv are BAS's TCP keepalive settings (230 s and
	// KeepIdle/10, at least 3 s), applied to each peer after its Connack
	// (runtime Conn.SetKeepAlive). Hub.SetKeepAlive changes them for later
	// peers.
	KeepIdle, KeepIntv time.Duration
	// QueueSize is BAS's server publish queue. Server publishes are routed
	// synchronously here, so nothing is ever queued; the value is only
	// reported by QueueSize. Zero means 200.
	QueueSize int
	// RndTid gives the server-side client a random ETID instead of 1.
	RndTid bool
	// SlowConsumer is the policy for congested recipients (default Drop).
	SlowConsumer SlowConsumerPolicy
	// MaxTopicsPerPeer caps the topic and sub-topic names one peer may
	// create (names live for the hub's lifetime). Zero means unlimited.
	// Past it, requests for new names get a denied ack. It does not bound
	// the hub: peers that leave and come back start again; MaxTopics does.
	MaxTopicsPerPeer int
	// MaxTopics caps the topic plus sub-topic names the whole hub holds.
	// Names are never freed (SMQ spec §1.7: a name keeps its TID for the
	// hub's lifetime, so reconnecting clients see stable TIDs), so without
	// it a stream of peers, each creating up to MaxTopicsPerPeer names and
	// leaving, grows the tables without bound. Zero or negative means
	// DefaultMaxTopics; NoTopicLimit disables the cap. Past it, a client's
	// request for a new name (Create, Subscribe to an unknown name,
	// CreateSub) gets a denied ack (status 1, ID 0) and the peer stays
	// connected; the server-side API (CreateTopic, CreateSubtopic,
	// SubscribeTopic, SubscribeTid, PublishTopic) returns ErrTopicLimit.
	// Known names keep working. Refusals are counted (Stats.TopicsRefused)
	// and logged at most once per topicLimitLogEvery.
	MaxTopics int
	// MaxSubscriptionsPerPeer caps one peer's subscriptions. Zero means
	// unlimited. Past it, Subscribe gets a denied ack.
	MaxSubscriptionsPerPeer int
	// HighWater overrides the reactor's per-connection high-water mark
	// (bytes) for SMQ peers. Zero keeps the reactor default.
	HighWater int
	// MaxMessage caps one inbound WebSocket message. Zero means
	// MaxRawMessage (65533 bytes, what a raw peer can carry too).
	MaxMessage int
	// OnMsg is the default callback for messages delivered to the
	// server-side client without a more specific subscription callback
	// (see Hub.OnMsg). Nil drops them (counted as delivered, as BAS does).
	OnMsg func(Message)
	// Hooks are the application's decision points.
	Hooks Hooks
	// Logger receives diagnostics. Nil means slog.Default().
	Logger *slog.Logger
}

func (o *Options) fill() {
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = 4 * time.Second
	}
	if o.KeepIdle <= 0 {
		o.KeepIdle = 230 * time.Second
	}
	if o.KeepIntv <= 0 {
		o.KeepIntv = max(o.KeepIdle/10, 3*time.Second)
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 200
	}
	if o.MaxTopics <= 0 {
		o.MaxTopics = DefaultMaxTopics
	}
	if o.MaxMessage <= 0 {
		o.MaxMessage = MaxRawMessage
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Hub-wide name limit (Options.MaxTopics).
const (
	// DefaultMaxTopics is the default Options.MaxTopics: 100,000 names
	// (topics and sub-topics together), a few tens of MB at most.
	DefaultMaxTopics = 100_000
	// NoTopicLimit as Options.MaxTopics lets the hub hold any number of
	// names.
	NoTopicLimit = math.MaxInt
)

// ErrTopicLimit is returned by the server-side API when a new topic or
// sub-topic name would take the hub past Options.MaxTopics.
var ErrTopicLimit = errors.New("broker: topic limit reached")

// Reasons a peer was closed, passed to Hooks.OnClose.
var (
	ErrReconnect     = errors.New("broker: reconnect") // same UID connected again
	ErrShutdown      = errors.New("broker: shutdown")  // Hub.Shutdown
	ErrCorruptFrame  = errors.New("broker: corrupt frame")
	ErrProtocol      = errors.New("broker: protocol error") // unexpected type, truncated message, second Connect
	ErrSlowConsumer  = errors.New("broker: slow consumer")
	ErrFragment      = errors.New("broker: bad PubFrag") // over WebSocket, or overflow
	ErrRefused       = errors.New("broker: connect refused")
	ErrConnectTmo    = errors.New("broker: no Connect within read timeout")
	ErrPayloadTooBig = errors.New("broker: payload larger than 0xFFF0 bytes")
	ErrUnknownTid    = errors.New("broker: unknown tid")
	ErrBacklog       = errors.New("broker: too much input while a hook was pending")
)
