package rabbitmq

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/kairoshq/kairos/internal/defaults"
	"github.com/kairoshq/kairos/signals"
)

// Defaults of Config.
const (
	DefaultURL                 = "amqp://guest:guest@127.0.0.1:5672/"
	DefaultPrefix              = "kairos"
	DefaultReplica             = "0"
	DefaultPrefetch            = 256
	DefaultMaxBatchEvents      = 2048
	DefaultMaxMessageEvents    = 500
	DefaultLinger              = 2 * time.Millisecond
	DefaultPublishChannels     = 4
	DefaultPublishFlights      = 1
	DefaultRetryMin            = 100 * time.Millisecond
	DefaultRetryMax            = 10 * time.Second
	DefaultReconnectMin        = 100 * time.Millisecond
	DefaultReconnectMax        = 5 * time.Second
	DefaultDeadLetterMaxLength = 100_000
	DefaultDialTimeout         = 10 * time.Second
	DefaultCallTimeout         = 10 * time.Second
)

// Config configures a Bus. Defaults fills the zero fields; Validate
// reports every problem at once. Dial does both.
type Config struct {
	// URL of the broker, amqp:// or amqps:// (default DefaultURL), or a
	// comma-separated list of the URLs of a cluster's nodes: each
	// connection goes to the first that answers, and after a loss to the
	// next one first (round robin), with jittered back-off once every one
	// has failed.
	URL string
	// Prefix of every exchange and queue name (default "kairos"): the
	// exchanges are <prefix>.events, <prefix>.events.partitioned,
	// <prefix>.events.dead and <prefix>.updates (etc.), the queues
	// <prefix>.engine.<replica> and <prefix>.events.dead. Letters, digits,
	// '.', '-' and '_'.
	Prefix string
	// Replica names this engine replica; its queue is
	// <prefix>.engine.<replica> (default "0"). Keep it stable across
	// restarts (e.g. the StatefulSet ordinal): a new name is a new queue.
	Replica string
	// Partitions is the number of partition queues <prefix>.p.0 …
	// <prefix>.p.<Partitions-1>, fixed and independent of the number of
	// replicas (kairos serve: 16). Each replica consumes the partitions
	// Assigner gives it. 0 selects the mode of earlier releases: one queue
	// per replica, <prefix>.engine.<Replica>. See the package
	// documentation, "Partitions". Changing the number of an existing
	// installation moves visitors between partitions (drain first).
	Partitions int
	// Assigner says which partitions this replica consumes (with
	// Partitions > 0); nil means all of them (a single replica).
	Assigner Assigner
	// Router gives the routing key of the events Publish sends; nil routes
	// by visitor id. kairos serve routes by resolved identity
	// (engine.Router), so that all devices of a user go to one partition.
	Router Router
	// QueueType is the type of the queues Kairos declares, the event
	// queues and the dead-letter queue: QueueQuorum (default; replicated
	// over the cluster's nodes, falling back to classic with a warning on
	// a broker older than 3.8) or QueueClassic (one node). RabbitMQ cannot
	// change the type of an existing queue: see the package documentation,
	// "Migrating to quorum queues".
	QueueType string
	// Prefetch bounds the unacknowledged deliveries (messages) of each
	// queue this replica consumes (default 256); a handler batch may hold
	// the messages of several queues, up to MaxBatchEvents events.
	Prefetch int
	// MaxBatchEvents bounds the events of one handler batch (default
	// 2048, and at least Limits.MaxBatch). A batch holds whole messages:
	// it ends before a message whose events would exceed the bound, so
	// Limits.MaxBatch (the most events one message may hold) must not be
	// larger.
	MaxBatchEvents int
	// MaxMessageEvents is the most events Publish packs into one message
	// (default 500, and at most Limits.MaxBatch, which consumers enforce).
	// 1 publishes one event per message, as a bare JSON object: the format
	// of releases before messages held arrays, which their consumers
	// require (see the package documentation, "Upgrading").
	MaxMessageEvents int
	// Linger is how long the consumer waits for a batch to fill after its
	// first event (default 2 ms; negative means no wait).
	Linger time.Duration
	// PublishChannels is the number of confirm-mode channels concurrent
	// publishers share (default 4).
	PublishChannels int
	// PublishFlights bounds the partition-addressed flights in the air at
	// once (with Partitions; see "Partitioning" in the package
	// documentation; default 1, at most PublishChannels-1). Concurrent
	// Publish calls wait for a flight and share it: one flight packs the
	// fullest messages, which costs the broker least; more flights lower
	// the wait of a call under load and raise the messages per event.
	// Forward calls have as many flights of their own; a flight waits for
	// a free publish channel when all are taken.
	// Measured with kairos bench ingest, 64 publishers of one event each,
	// on one broker and one Redis: 1 flight 6,700–7,200 events/s,
	// publish-to-applied lag p50 39–45 ms; 2–3 flights 8,200–8,700
	// events/s published, more than the engine applied (lag p50
	// 178–345 ms).
	PublishFlights int
	// RetryMin and RetryMax bound the back-off before a batch whose
	// handler failed is returned to the queue; it doubles per consecutive
	// failure (defaults 100 ms and 10 s).
	RetryMin, RetryMax time.Duration
	// ReconnectMin and ReconnectMax bound the back-off between connection
	// attempts (defaults 100 ms and 5 s).
	ReconnectMin, ReconnectMax time.Duration
	// DeadLetterMaxLength bounds the dead-letter queue (x-max-length; the
	// oldest are dropped; default 100,000). Changing it for an existing
	// queue makes the declaration fail: delete the queue first.
	DeadLetterMaxLength int
	// DialTimeout bounds each TCP connect and AMQP handshake (default 10 s).
	DialTimeout time.Duration
	// CallTimeout bounds every other broker call (default 10 s): a
	// Publish or Broadcast whose context has no earlier deadline (until
	// every confirm), declarations, the set-up of consumers and
	// subscribers, opening and closing channels and connections. A broker that blocks the connection (resource alarm)
	// holds back answers: Publish then returns at once, see Publish.
	CallTimeout time.Duration
	// Limits bound what Publish accepts and what the consumer lets through
	// (zero fields mean the defaults, see signals.Limits). MaxBatch and
	// MaxBatchBytes bound a message body of several events, MaxEventBytes
	// every event. Publishers and consumers should use the same limits: a
	// message over the consumer's limits is dead-lettered whole.
	Limits signals.Limits
	// RetryDelay, when > 0, declares the retry queue <prefix>.events.retry
	// (message TTL RetryDelay, dead-lettered to <prefix>.events): Retry
	// sends events back through it, to return to their partition's tail
	// after the delay. 0: no retry queue. Changing it for an existing
	// queue makes the declaration fail: delete the queue first.
	RetryDelay time.Duration
	// Logger receives connection and dead-letter events; nil discards.
	Logger *slog.Logger
	// Stream configures the history stream (off by default).
	Stream StreamConfig

	// hashType overrides the exchange type of the partitioned exchange,
	// so that tests can exercise the fallback with the plugin enabled.
	hashType string
}

// Defaults returns a copy of c with every zero field set to its default.
func (c Config) Defaults() Config {
	defaults.Set(&c.URL, DefaultURL)
	defaults.Set(&c.Prefix, DefaultPrefix)
	defaults.Set(&c.Replica, DefaultReplica)
	defaults.Set(&c.QueueType, QueueQuorum)
	defaults.Set(&c.Prefetch, DefaultPrefetch)
	defaults.Set(&c.Linger, DefaultLinger)
	defaults.Set(&c.PublishChannels, DefaultPublishChannels)
	defaults.Set(&c.PublishFlights, DefaultPublishFlights)
	defaults.Set(&c.RetryMin, DefaultRetryMin)
	defaults.Set(&c.RetryMax, max(DefaultRetryMax, c.RetryMin))
	defaults.Set(&c.ReconnectMin, DefaultReconnectMin)
	defaults.Set(&c.ReconnectMax, max(DefaultReconnectMax, c.ReconnectMin))
	defaults.Set(&c.DeadLetterMaxLength, DefaultDeadLetterMaxLength)
	defaults.Set(&c.DialTimeout, DefaultDialTimeout)
	defaults.Set(&c.CallTimeout, DefaultCallTimeout)
	c.Limits = c.Limits.Defaults()
	c.Stream = c.Stream.Defaults()
	defaults.Set(&c.MaxBatchEvents, max(DefaultMaxBatchEvents, c.Limits.MaxBatch))
	defaults.Set(&c.MaxMessageEvents, min(DefaultMaxMessageEvents, c.Limits.MaxBatch))
	return c
}

// Validate reports every problem of c at once (after Defaults, zero
// fields are problems too).
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("rabbitmq config: "+format, args...)) }
	errs = append(errs, checkURLs("rabbitmq config", splitURLs(c.URL))...)
	if !validName(c.Prefix) {
		bad("Prefix %q: want 1-100 letters, digits, '.', '-' or '_'", c.Prefix)
	}
	if !validName(c.Replica) {
		bad("Replica %q: want 1-100 letters, digits, '.', '-' or '_'", c.Replica)
	}
	if c.QueueType != QueueQuorum && c.QueueType != QueueClassic {
		bad("QueueType %q: want %q or %q", c.QueueType, QueueQuorum, QueueClassic)
	}
	if c.Partitions < 0 || c.Partitions > MaxPartitions {
		bad("Partitions %d: want 0..%d", c.Partitions, MaxPartitions)
	}
	if c.PublishFlights < 1 || c.PublishFlights > max(1, c.PublishChannels-1) {
		bad("PublishFlights %d: want 1..PublishChannels-1 (%d)", c.PublishFlights, max(1, c.PublishChannels-1))
	}
	if c.Prefetch < 1 || c.Prefetch > 65535 {
		bad("Prefetch %d: want 1..65535", c.Prefetch)
	}
	if c.MaxBatchEvents < c.Limits.MaxBatch {
		bad("MaxBatchEvents %d: want >= Limits.MaxBatch (%d), the most events of one message", c.MaxBatchEvents, c.Limits.MaxBatch)
	}
	if c.MaxMessageEvents < 1 || c.MaxMessageEvents > c.Limits.MaxBatch {
		bad("MaxMessageEvents %d: want 1..Limits.MaxBatch (%d)", c.MaxMessageEvents, c.Limits.MaxBatch)
	}
	if c.Linger > time.Second {
		bad("Linger %v: want at most 1s", c.Linger)
	}
	if c.PublishChannels < 1 || c.PublishChannels > 256 {
		bad("PublishChannels %d: want 1..256", c.PublishChannels)
	}
	if c.RetryMin <= 0 || c.RetryMax < c.RetryMin {
		bad("RetryMin %v, RetryMax %v: want 0 < RetryMin <= RetryMax", c.RetryMin, c.RetryMax)
	}
	if c.ReconnectMin <= 0 || c.ReconnectMax < c.ReconnectMin {
		bad("ReconnectMin %v, ReconnectMax %v: want 0 < ReconnectMin <= ReconnectMax", c.ReconnectMin, c.ReconnectMax)
	}
	if c.DeadLetterMaxLength < 1 {
		bad("DeadLetterMaxLength %d: want >= 1", c.DeadLetterMaxLength)
	}
	if c.DialTimeout <= 0 {
		bad("DialTimeout %v: want > 0", c.DialTimeout)
	}
	if c.RetryDelay < 0 || c.RetryDelay > 24*time.Hour {
		bad("RetryDelay %v: want 0..24h", c.RetryDelay)
	}
	if c.CallTimeout <= 0 {
		bad("CallTimeout %v: want > 0", c.CallTimeout)
	}
	if err := c.Limits.Validate(); err != nil {
		bad("%v", err)
	}
	if err := c.Stream.Validate(); err != nil {
		bad("%v", err)
	}
	return errors.Join(errs...)
}

func validName(s string) bool {
	if s == "" || len(s) > 100 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
