package signals

import (
	"context"
	"fmt"
	"time"

	"github.com/kairoshq/kairos/internal/errs"
)

// Errors of Bus implementations, compared with errors.Is.
var (
	// ErrClosed is returned by a Bus that has been closed.
	ErrClosed = fmt.Errorf("bus closed: %w", errs.Unavailable)
	// ErrUnavailable wraps errors caused by the broker being unreachable,
	// disconnected, or refusing a message (nack, unroutable): the call may
	// succeed later. The HTTP API answers 503.
	ErrUnavailable = fmt.Errorf("bus %w", errs.Unavailable)
)

// Publisher publishes events durably: when Publish returns nil every
// event is safely stored by the broker (publisher confirms) and cannot be
// lost. On error some events may have been stored anyway: publishing the
// same events again is safe because the engine de-duplicates by id.
// Events of the same visitor are delivered in the order of the slice.
type Publisher interface {
	Publish(ctx context.Context, events []Event) error
}

// BatchHandler processes a batch of consumed events; returning nil
// acknowledges the batch, an error leaves it to be redelivered (after a
// back-off). A batch may contain events delivered before (redeliveries):
// the handler de-duplicates by id.
type BatchHandler func(ctx context.Context, batch []Event) error

// Consumer delivers events in batches (<= prefetch, waiting at most a short
// linger for a batch to fill) until ctx is done; then it finishes the
// in-flight batch, acks it, and returns nil. The handler is called with a
// context that carries ctx's values but is not cancelled with it, so the
// in-flight batch can finish; calls are never concurrent, and events of one
// visitor arrive in publish order. Messages that do not decode or validate
// (poison) never reach the handler: they are dead-lettered with the reason
// and acknowledged, so they do not block the stream. Consume returns
// ErrClosed when the Bus is closed, and otherwise only for errors that
// retrying cannot fix (broker outages are waited out).
type Consumer interface {
	Consume(ctx context.Context, h BatchHandler) error
}

// Topic names a fan-out channel: every subscriber gets every message.
type Topic string

// The fan-out topics of Kairos.
const (
	// TopicUpdates carries factor deltas from the replica that applied an
	// event to every other replica (the speed layer).
	TopicUpdates Topic = "kairos.updates"
	// TopicModels announces a new model snapshot to hot-swap.
	TopicModels Topic = "kairos.models"
	// TopicPromotions carries instant promotions to the replicas holding
	// the visitor's open page (server-sent events).
	TopicPromotions Topic = "kairos.promotions"
)

// ModelAnnouncement is the message on TopicModels (JSON): a new model
// snapshot, stored in the deployment's store as the blob named Blob.
// The publisher also stores it as the blob BlobModelAnnouncement, so that
// an engine that was not running when it was broadcast finds it at start.
type ModelAnnouncement struct {
	Version uint64 `json:"version"`
	Blob    string `json:"blob"`
}

// The store's blobs of the published model (offline.Publish writes them,
// the engine reads them).
const (
	// BlobModel holds the current model snapshot.
	BlobModel = "model/current"
	// BlobModelAnnouncement holds the ModelAnnouncement of the model last
	// stored in BlobModel.
	BlobModelAnnouncement = "model/announcement"
)

// Broadcaster publishes msg to every current subscriber of t. When it
// returns nil the broker has the message; subscribers that are
// disconnected at that moment miss it.
type Broadcaster interface {
	Broadcast(ctx context.Context, t Topic, msg []byte) error
}

// Subscriber calls h for every message broadcast to t after the
// subscription took effect, in broadcast order, one at a time, until ctx is
// done; then it returns nil (or ErrClosed when the Bus is closed). h must
// not retain msg after it returns. Messages broadcast while the
// subscription is disconnected are lost.
type Subscriber interface {
	Subscribe(ctx context.Context, t Topic, h func(msg []byte)) error
}

// Bus is the event stream of Kairos: an in-process implementation
// (signals/membus) for the embedded mode and a RabbitMQ one
// (signals/rabbitmq) for scale-out.
type Bus interface {
	Publisher
	Consumer
	Broadcaster
	Subscriber
	// Ready returns nil when the bus can publish now, or an error
	// matching ErrUnavailable or ErrClosed (for /readyz).
	Ready(ctx context.Context) error
	// Close releases the bus; blocked calls return ErrClosed.
	Close() error
}

// DeadLetter is a message that could not be accepted by a consumer: its
// body, the reason (a decoding or validation error) and the routing key
// (the visitor id, as published).
type DeadLetter struct {
	Body       []byte
	Reason     string
	RoutingKey string
	Time       time.Time
}
