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
//	kairos.events                 durable topic exchange; server-side producers
//	  │ "#"                         publish here, routing key = the visitor id
//	  ▼
//	kairos.events.partitioned     durable x-consistent-hash exchange (plugin)
//	  │ weight "100" each
//	  ▼
//	kairos.p.0 … kairos.p.<N-1>   durable partition queues, N = Config.Partitions
//	  ▲                           (kairos serve: --partitions, default 16);
//	  │ "<i>" for kairos.p.<i>    x-single-active-consumer: true
//	kairos.events.p               durable topic exchange of partition-addressed
//	                              messages (the Bus's own Publish, Forward,
//	                              Retry with partitions; routing key = the
//	                              partition number, see "Partitioning")
//	kairos.events.retry.p         with a retry delay: exchange and queue of
//	                              partition-addressed retries (TTL, then
//	                              dead-lettered to kairos.events.p)
//	   or, with Config.Partitions = 0 (the per-replica mode of earlier releases):
//	kairos.engine.<replica>       durable queue per engine replica
//	                              (x-single-active-consumer: true)
//
//	kairos.history                with Config.Stream.Enabled: a stream queue
//	                              (x-queue-type stream, retention x-max-age and
//	                              x-max-length-bytes) bound to kairos.events
//	                              and kairos.events.p with "#": the broker
//	                              writes every accepted
//	                              message to it, under the same confirm; read
//	                              by offset with StreamReader (docs/history.md)
//
//	kairos.events.dead            durable fanout exchange and durable queue of
//	                              poison messages (x-max-length 100,000, drop-head)
//	kairos.updates, kairos.models, kairos.promotions
//	                              durable fanout exchanges (signals.Topic), one
//	                              exclusive auto-delete server-named queue per
//	                              subscriber
//
// The event queues and the dead-letter queue are quorum queues
// (x-queue-type "quorum": replicated by Raft over the cluster's nodes,
// durable) unless Config.QueueType is QueueClassic (kairos serve
// --queue-type classic, KAIROS_QUEUE_TYPE=classic: one node; for a single
// broker that is a little faster, see the README). A broker older than 3.8
// has no quorum queues: classic queues are declared then, with a warning.
//
// Brokers: Config.URL is one URL or a comma-separated list of a cluster's
// nodes (KAIROS_AMQP_URL=amqp://…@rabbit-1:5672/,amqp://…@rabbit-2:5672/,…).
// Each connection goes to the first node that answers; after a loss it
// tries the next node first, round robin, with jittered back-off
// (ReconnectMin doubling to ReconnectMax) once every node has failed.
// Publisher confirms hold across it: Publish returns nil only when the
// broker confirmed every message (a quorum queue confirms once a majority
// of its replicas has it), and a publish caught by the loss fails with
// signals.ErrUnavailable (the caller retries; the engine de-duplicates).
// Measured on the local 3-node cluster (kill -9 of the node the Bus was
// connected to, which led the partition queues; TestClusterNodeLoss):
// publishing stalled 5.5 s (reconnect, then the quorum queues elect new
// leaders), consuming about 0.5 s, no confirmed event lost.
//
// # Migrating to quorum queues
//
// RabbitMQ cannot change the type of a queue: declaring an existing classic
// queue as a quorum queue fails with 406 PRECONDITION_FAILED ("inequivalent
// arg 'x-queue-type'"). Dial then fails at once with ErrTopologyConflict,
// naming the queue and what to do. Either keep classic queues
// (--queue-type classic), or migrate:
//
//  1. Stop the replicas (events keep arriving in their queues; the
//     collectors keep publishing) — or keep them running with the old
//     type until step 3.
//  2. Read or discard the dead letters, then delete the dead-letter queue:
//     rabbitmqctl delete_queue kairos.events.dead.
//  3. With partitions (the default), a replica started with quorum queues
//     declares the partition queues as quorum queues, and drains and
//     deletes its old classic kairos.engine.<replica> queue by itself (see
//     "Partitions"), so only the dead-letter queue needs step 2. In the
//     per-replica mode, drain each kairos.engine.<replica> first
//     (rabbitmqctl list_queues name messages shows 0), then delete it and
//     start the replica: it declares a quorum queue.
//
// Queues of the other type left by a test or an earlier run can be found
// with rabbitmqctl list_queues name type.
//
// # Messages
//
// A message body on kairos.events is one event object or an array of
// events of the same visitor, in order (on kairos.events.p: of the keys
// its header kairos-keys names, see "Partitioning"); both are JSON with
// the schema of signals.Event:
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
// With partitions the Bus goes further (next section): one message per
// partition holds the events of many visitors.
//
// # Partitioning
//
// Each event has a routing key: the visitor id, or with Config.Router the
// key it gives. All events of a key go to one partition queue, and the
// single active consumer of that queue sees them in publish order.
//
// With partitions, the Bus computes a key's partition itself:
// PartitionOf(key, N), the jump consistent hash of the key's FNV-1a hash
// (fixed: every build and replica must agree). Publish packs the events
// of a call by partition and sends them to kairos.events.p under the
// partition's number, with the header kairos-keys = the routing key of
// each event of the body (an array of strings, in order); a message's
// keys hold at most 32 KiB. Concurrent Publish calls share flights (a
// group commit): while Config.PublishChannels-1 flights wait for the
// broker's confirms, new calls wait and the next flight packs them all,
// one message per partition. A quorum-queue message costs the broker
// about the same with one event or hundreds, so batches of many visitors
// (a collector's, the acceptance load's) cost it a message per partition
// per flight instead of one per visitor: 200 concurrent single-event
// calls became 15 messages (TestConcurrentPublishesShareMessages).
//
// Messages published to kairos.events (server-side producers, or builds
// before partition addressing) are placed by the consistent-hash
// exchange, which hashes otherwise. The consumer knows the partition of
// each delivery: an event whose key's partition is not that one is
// handed to the engine with Route.Foreign set, and the engine forwards it
// to its key's partition, so each state still has one writer. Upgrading
// from a build before partition addressing: stop every replica, then
// start the new ones (an old replica would re-route the new messages by
// their partition number).
//
// The routing key of kairos serve is the resolved identity
// (engine.Router: the user once the visitor is linked to one, so that all
// of a user's devices go to one partition and one replica folds the user
// in; see "Routing by identity" in package engine for what ordering holds
// across the moment of linking). On the consistent-hash exchange every
// queue is bound with weight "100" (its number of buckets), so queues get
// equal shares. That exchange needs the plugin:
//
//	rabbitmq-plugins enable rabbitmq_consistent_hash_exchange
//
// Without it (declaring the exchange fails with 503 COMMAND_INVALID,
// probed on a separate connection because that error closes the
// connection), a warning is logged once and: with partitions, partition 0
// alone is bound directly to kairos.events with "#" (every event
// published there goes to it and is forwarded to its key's partition;
// the Bus's own messages are partition-addressed and need no plugin); in
// the per-replica mode, the replica queue
// is bound directly, and every further replica would receive every event,
// so scaling out needs the plugin. When a replica later starts with the
// plugin available, it removes that direct binding.
//
// # Partitions
//
// The partitions are fixed and independent of the number of replicas.
// Each replica consumes the partitions Config.Assigner gives it (all of
// them without one); kairos serve assigns them with engine/membership:
// every replica renews a lease in the store every second (Redis for a
// cluster), and the partitions go to the live replicas by rendezvous
// hashing with bounded loads (an equal share each, ±1), so a change moves
// little more than the partitions of the replica that left or joined.
// Consume follows the assignment between two batches: it
// finishes and acknowledges the batch in flight, closes the channels of
// the partitions it no longer owns (which returns what they prefetched to
// the queues, in order, and drops those deliveries that it had not yet
// handed to the handler) and subscribes to the new ones. Each partition
// queue has a single active consumer: while two replicas disagree about
// an owner (one has seen a change, the other not yet), both may subscribe,
// but the second waits until the first lets go, so the events of a key
// are never consumed by two replicas at once and keep their order.
//
// A replica that stops cleanly deletes its lease: the others take its
// partitions within a second. One that dies (kill -9, a lost machine)
// loses its connections at once (the broker returns its unacknowledged
// deliveries to the queues, in order), and its partitions wait until its
// lease runs out (--lease-ttl, default 4 s) and the others next renew
// (every TTL/4, at most 1 s): measured 2.0–2.2 s with a 2 s TTL on one
// broker and 3.1–3.6 s with a 3 s TTL on the 3-node cluster, from the kill to
// the first event of the dead replica's visitors applied by another
// (TestPartitionTakeover, TestClusterReplicaTakeover). A batch the dead
// replica had applied but not acknowledged is delivered again; the engine
// de-duplicates it by event id, so every event takes effect once, in
// order per key. A replica that joins takes about 1/n of the partitions
// from the others at their next renewal.
//
// Replica names (Config.Replica, kairos serve --replica) must be unique
// among the live replicas: two processes with one name share one lease
// and both consume every partition they think theirs (single active
// consumer still keeps one consumer per partition, so nothing is applied
// twice, but the standby does no work).
//
// Changing the number of partitions of a running installation moves most
// keys to another partition: stop the publishers (or accept that the
// order of a key's events across the change is not guaranteed), let the
// partitions drain, delete the partition queues beyond the new count, and
// restart the replicas with the new number.
//
// From the per-replica mode: a replica started with partitions (the
// default of kairos serve) declares the partition queues, removes every
// binding of its old queue kairos.engine.<replica> (so it receives nothing
// more), consumes what it holds together with its partitions, and deletes
// it once it is empty (checked after 2 s without a delivery from it).
// Restart the replicas one at a time. During the switch, the events a
// visitor had waiting in an old queue and its new events in a partition
// are each applied in order, but not in order with each other. A retired
// replica's old queue is drained by nobody: start it once with partitions
// to drain it, or delete it (rabbitmqctl delete_queue
// kairos.engine.<replica>) after moving its messages (shovel). Every other
// process that dials with the same Prefix (kairos replay, retrain, bench)
// must use the same mode: KAIROS_PARTITIONS (default 16) and
// KAIROS_QUEUE_TYPE apply to them too; an older release, or one in the
// per-replica mode, would declare and bind kairos.engine.0 again, and that
// queue would take a share of the events.
//
// In the per-replica mode replica names must be stable: a replica's queue
// keeps receiving its share while the replica is down (nothing is lost),
// so to retire a replica for good, delete its queue (rabbitmqctl
// delete_queue kairos.engine.<replica>); its share moves to the others.
// Unconsumed events in it are lost then: drain it first.
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
// (Config.RetryMin doubling to RetryMax) and hands the same batch to the
// handler again, holding its deliveries and every later one
// unacknowledged, until it succeeds or the consumer stops. Nothing
// overtakes the failed batch, and no redelivery is counted: returning it
// to the queue instead (a channel close, or a nack with requeue, which
// would also put it at the tail of a quorum queue) counts one per retry,
// and RabbitMQ 4.0–4.2 drop a quorum-queue message after 20 (the default
// delivery-limit), so a store outage of two minutes would lose events.
// Messages redelivered after a connection loss are passed on like any
// other.
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
// kairos-original-exchange. Original headers beyond 16 KiB are left out
// (the smallest kept first; kairos-headers-dropped counts the others):
// the broker would refuse a copy near its frame size by closing the
// connection, and the batch would come back forever. Dead letters are published (on the publish
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
