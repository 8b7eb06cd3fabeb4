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
//	  │ weight "10" each
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
// Messages on kairos.events: body = the event as JSON (the schema of
// signals.Event), routing key = the visitor id, content-type
// application/json, message-id = the event id, delivery mode persistent
// (2), header kairos-type = the event type, timestamp = publish time.
// Server-side applications may publish such messages directly; the
// consumer validates every message like the HTTP collector does.
//
// Partitioning. The consistent-hash exchange hashes the routing key, so all
// events of a visitor go to one replica's queue, and the single active
// consumer of that queue sees them in publish order. It needs the plugin:
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
// de-duplicates by id).
//
// Consume: manual acknowledgements, prefetch Config.Prefetch (default 256);
// batches of up to prefetch events, waiting at most Config.Linger (2 ms)
// after the first for more; basic.ack with multiple=true after the handler
// returns nil. After a handler error the consumer waits a back-off
// (Config.RetryMin doubling to RetryMax) and returns the batch and every
// later delivery it holds to the queue (nack with requeue, then closing the
// channel, so nothing overtakes the failed batch). Poison messages (that do
// not decode or validate) are published to kairos.events.dead with the
// original body and properties plus headers kairos-reason,
// kairos-original-routing-key and kairos-original-exchange, confirmed, and
// only then acknowledged, so they neither block the stream nor get lost.
// Redelivered messages are passed on like any other.
//
// Reconnection: one connection publishes, another consumes and subscribes.
// Each is re-established with back-off (Config.ReconnectMin to
// ReconnectMax, jittered) after any loss, for example a broker restart;
// consumers and subscribers resume by themselves (a subscriber misses what
// was broadcast meanwhile), unacknowledged deliveries are redelivered, and
// Ready reports signals.ErrUnavailable until both connections are back.
package rabbitmq
