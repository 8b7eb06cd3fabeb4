// Package membus is the in-process signals.Bus of the embedded mode (no
// RabbitMQ): the API and the engine run in one process and the "broker" is
// a Go channel.
//
// It keeps the guarantees of the broker adapter and strengthens one:
//
//   - Publish is synchronous: it hands the batch to the consumer's handler
//     and returns the handler's error. A nil error therefore means the
//     engine has applied and persisted the batch, so the HTTP 2xx of the
//     collector is as durable as a publisher confirm. With no consumer
//     running yet, Publish waits for one until its context ends.
//   - Handler calls are serialised (one at a time across all consumers,
//     like a queue with a single active consumer), so the events of a
//     visitor are applied in publish order.
//   - A handler error is not retried in process: Publish returns it
//     (wrapped with signals.ErrUnavailable, so the API answers 503) and the
//     client retries; the engine de-duplicates by id.
//   - Poison messages: Publish refuses invalid events with their
//     *signals.FieldError. PublishRaw accepts an encoded body the way a
//     foreign producer publishes to RabbitMQ; a body that does not decode
//     or validate is dead-lettered (kept in memory, bounded, see
//     DeadLetters) and never reaches the handler.
//   - Broadcast and Subscribe fan out in process; every subscriber gets a
//     copy of every message broadcast after it subscribed, in order, from
//     an unbounded in-memory queue (Broadcast never blocks).
//
// Nothing is persisted by the bus itself: durability is the engine's store
// (engine/embedded persists to the data directory).
package membus
