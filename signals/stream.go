package signals

import "time"

// StreamMessage is one message of the history stream: a replicated,
// append-only log that keeps every message the broker accepted on the
// events exchange (signals/rabbitmq: a RabbitMQ stream queue), read by
// offset. Body is the message as published (one event or an array of
// events of one visitor, see DecodeMessage).
type StreamMessage struct {
	// Offset is the message's position in the stream; offsets increase
	// by one per message and are never reused.
	Offset uint64
	// Published is the publish time the producer put on the message (the
	// AMQP timestamp property, second precision), zero when it set none.
	Published time.Time
	// Body is the message body; it is valid only during the callback
	// that receives it.
	Body []byte
	// Fence marks a control message a reader appended to find the
	// stream's end (signals/rabbitmq: the kairos-fence header): it holds
	// no events (Body is empty) and is delivered only so that its offset
	// counts as read — a consumer that commits offsets moves past it, and
	// a jump in offsets still means messages removed by retention.
	Fence bool
}
