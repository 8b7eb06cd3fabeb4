package history

import (
	"context"
	"time"

	"github.com/kairoshq/kairos/signals"
)

// Stream is the hot tier: a replicated log of every message the broker
// accepted on the events exchange, read by offset
// (signals/rabbitmq.StreamReader implements it).
type Stream interface {
	// Read calls fn with the messages from offset from (or the first one
	// the stream's retention kept) up to the end of the stream at the
	// time of the call, in offset order. Fences (StreamMessage.Fence) are
	// messages too: offsets have no holes but those retention made. An
	// error of fn stops it and is returned as is.
	Read(ctx context.Context, from uint64, fn func([]signals.StreamMessage) error) error
	// Follow is Read without an end: it calls fn with new messages as
	// they arrive until ctx ends (then it returns nil) or an error.
	Follow(ctx context.Context, from uint64, fn func([]signals.StreamMessage) error) error
}

// historyLimits are the limits events of the history are decoded with:
// the consumer's, but with no bound on age (a replay reads old events).
func historyLimits(l signals.Limits) signals.Limits {
	l = l.Defaults()
	l.MaxPastAge = 200 * 365 * 24 * time.Hour
	return l
}

// decode returns the valid events of a stream message (those the
// consumers accepted; invalid ones were dead-lettered, never learnt).
// Events without ts get the publish time, as a consumer would have given
// them its receive time. A fence has none.
func decode(m signals.StreamMessage, l signals.Limits, dst []signals.Event) ([]signals.Event, int) {
	if m.Fence {
		return dst, 0
	}
	now := m.Published
	if now.IsZero() {
		now = time.Now()
	}
	res, err := signals.DecodeMessage(m.Body, now, l)
	if err != nil {
		return dst, 1
	}
	return append(dst, res.Events...), len(res.Rejected)
}
