// Package rabbitmq is the RabbitMQ implementation of signals.Bus
// (github.com/rabbitmq/amqp091-go), used when KAIROS_AMQP_URL is set.
//
//	bus, err := rabbitmq.Dial(ctx, rabbitmq.Config{URL: url, Replica: "0", Logger: log})
//	...
//	defer bus.Close()
//	go bus.Consume(ctx, apply) // apply(ctx, batch) gets this replica's share of the stream
//	err = bus.Publish(ctx, events) // nil: every event is stored by the broker
//
// # Topology
//
// Dial declares everything below (idempotently) before it returns, and
// again after every reconnection, so a publish can never go to an exchange
// without a queue. Names start with Config.Prefix (default "kairos").
//
//	kairos.events                 durable topic exchange; producers publish here
//	  │ "#"
//	  ▼
//	kairos.events.partitioned     durable x-consistent-hash exchange (plugin)
//	  │ weight "100" each
//	  ▼
//	kairos.engine.<replica>       durable queue per engine replica
//	                              (x-single-active-consumer: true)
//
//	kairos.events.dead            durable fanout exchange and durable queue of
//	                              poison messages (x-max-length 100,000, drop-head)
//	kairos.updates, kairos.models, kairos.promotions
//	                              durable fanout exchanges (signals.Topic), one
//	                              exclusive auto-delete server-named queue per
//	                              subscriber
//
// # Messages
//
// A message body on kairos.events is one event object or an array of
// events of the same visitor, in order; both are JSON with the schema of
// signals.Event:
//
//	{"id":"e1","type":"view","visitor":"v-17","item":"sku-42","ts":"2026-11-23T10:15:00.250Z"}
//	[{"id":"e1","type":"view","visitor":"v-17",...},{"id":"e2","type":"dwell","visitor":"v-17",...}]
//
// Properties: routing key = the visitor id, content-type
// application/json, delivery mode persistent (2), timestamp = publish
// time, message-id = the (first) event's id, header kairos-count = the
// number of events (int32), and on a single-event message header
// kairos-type = the event type. Publish packs the events of each visitor
// into messages of at most Config.MaxMessageEvents (500) events and
// Limits.MaxBatchBytes (1 MiB) bytes, and sends a single event as a bare
// object. The message-id is not unique per message (a retry may pack the
// same events differently): de-duplication uses the event ids.
//
// Server-side applications may publish either form directly. The
// consumer reads only the body (signals.DecodeMessage) and validates every
// event like the HTTP collector does; it does not rely on the headers, and
// an event whose visitor differs from the routing key is accepted (it is
// routed, and so ordered, by the routing key). An array may hold at most
// Limits.MaxBatch (500) events and Limits.MaxBatchBytes bytes, every event
// at most Limits.MaxEventBytes (64 KiB); a repeated id within a message is
// passed on (the engine de-duplicates).
//
// Packing matters for throughput: the broker's cost is per message, so
// the 20 events of a tracker request cost it one message instead of 20.
//
// # Partitioning
//
// The consistent-hash exchange hashes the routing key, so all events of a
// visitor go to one replica's queue, and the single active consumer of
// that queue sees them in publish order. Every replica queue is bound with
// weight "100" (its number of buckets), so replicas get equal shares. It
// needs the plugin:
//
//	rabbitmq-plugins enable rabbitmq_consistent_hash_exchange
//
// Without it (declaring the exchange fails with 503 COMMAND_INVALID,
// probed on a separate connection because that error closes the
// connection), the replica queue is bound directly to kairos.events with
// "#" and a warning is logged once: one replica works, but every further
// replica would receive every event, so scaling out needs the plugin. When
// a replica later starts with the plugin available, it removes that direct
// binding. Replica names must be stable: a replica's queue keeps receiving
// its share while the replica is down (nothing is lost), so to retire a
// replica for good, delete its queue (rabbitmqctl delete_queue
// kairos.engine.<replica>); its share moves to the others. Unconsumed
// events in it are lost then: drain it first.
//
// # Guarantees
//
// Publish: publisher confirms on a small pool of confirm-mode channels
// (Config.PublishChannels), so concurrent requests publish concurrently. A
// call publishes all its events, then waits for all confirms; nil means the
// broker has stored every one. Messages are mandatory: if no queue is bound
// the broker returns them and Publish fails. A nack, an unroutable message,
// a channel or connection failure, or a publish while the connection is
// down (Publish fails fast rather than waiting) yields an error matching
// signals.ErrUnavailable (HTTP 503: the client retries; the engine
// de-duplicates by id). After an error the outcome is unknown: some of
// the events may be stored.
//
// Resource alarms: a broker low on memory or disk blocks the connections
// that publish (connection.blocked) and reads nothing more from them
// until the alarm ends; confirms, channel closes and even the connection
// close handshake wait. The Bus watches the notifications: while the
// publish connection is blocked, Publish and Broadcast fail at once
// (signals.ErrUnavailable naming the alarm), the calls in flight when it
// is blocked return at once, and Ready reports it ("the broker blocks the
// publish connection (resource alarm: low on memory)"). Every other broker
// call is bounded by Config.CallTimeout (10 s): a Publish whose context
// has no earlier deadline, declarations, the set-up of consumers and
// subscribers, opening and closing channels and connections (past it, the
// connection is closed and re-established); a call the client library cannot interrupt (a socket write
// to a broker that stopped reading) is abandoned by its caller and ends by
// itself when the connection unblocks or closes. Consuming is not
// affected: the consume connection never publishes (dead letters go out on
// the publish connection), so the broker never blocks it.
//
// Consume: manual acknowledgements, prefetch Config.Prefetch (default 256
// messages); batches of the events of up to prefetch messages and at most
// Config.MaxBatchEvents (2048) events, waiting at most Config.Linger (2 ms)
// after the first message for more; basic.ack with multiple=true after the
// handler returns nil. After a handler error the consumer waits a back-off
// (Config.RetryMin doubling to RetryMax) and returns the batch and every
// later delivery it holds to the queue by closing the channel (so nothing
// overtakes the failed batch; a nack with requeue would put the batch at
// the tail of a quorum queue). Redelivered messages are
// passed on like any other.
//
// Dead letters: an invalid event never reaches the handler. It is
// published on its own to kairos.events.dead, with the event's JSON as the
// body, message-id = its id (or the original message-id when unreadable)
// and headers kairos-reason (field and reason), kairos-original-routing-key,
// kairos-original-exchange, kairos-original-message-id and
// kairos-event-index (its position in the array), plus the original
// headers except kairos-count; the valid events of the same message go to
// the handler. A message whose body cannot be read as a whole (not JSON,
// bad framing, an empty array, over the limits), or a single-object body
// that is invalid, is dead-lettered whole: the original body and
// properties plus kairos-reason, kairos-original-routing-key and
// kairos-original-exchange. Dead letters are published (on the publish
// connection) after the handler accepted the batch, confirmed, and only
// then are the messages acknowledged, so poison neither blocks the stream
// nor gets lost; while they cannot be published (an outage, an alarm) the
// batch is redelivered later. Like
// events, dead letters are at least once: a connection loss between their
// confirm and the ack repeats them.
//
// Reconnection: one connection publishes, another consumes and subscribes.
// Each is re-established with back-off (Config.ReconnectMin to
// ReconnectMax, jittered) after any loss, for example a broker restart;
// consumers and subscribers resume by themselves (a subscriber misses what
// was broadcast meanwhile), unacknowledged deliveries are redelivered, and
// Ready reports signals.ErrUnavailable until both connections are back.
//
// # Upgrading
//
// Consumers of releases before this format read one event per message and
// dead-letter an array body. Upgrade the engine replicas (consumers)
// first, or let the collectors publish with Config.MaxMessageEvents = 1
// (one event per message, the old format) until every replica runs this
// release.
//
// Releases before bound replica queues with weight "10". At start-up a
// replica removes that binding and then binds "100" (in this order: on
// RabbitMQ 3.10 the plugin keeps one set of buckets per queue, ignores a
// second binding of the same queue, and drops all of the queue's buckets
// when any one of its bindings is removed, so removing the old binding
// after adding the new one would leave the queue with no share). When the
// queue is already bound with "100" only, nothing changes. Migrating a
// queue moves its buckets on the ring: most visitors change replica once,
// and for those whose earlier events still wait in the old replica's queue
// the order across the move is not guaranteed (as when a replica is
// added); until every replica is migrated, migrated queues take a larger
// share (100 against 10 buckets). Do not run an older release against a
// migrated queue (for example in a rollback; every process that dials
// with the queue's Replica name, a collector too, declares and binds the
// queue): it adds a "10" binding the ring ignores, and the next start of this release removes it together
// with all of the queue's buckets, so the replica receives nothing (and a
// lone replica makes every publish unroutable). To repair, delete both
// bindings of the queue to <prefix>.events.partitioned (management UI or
// rabbitmqadmin) and restart the replica.
package rabbitmq
