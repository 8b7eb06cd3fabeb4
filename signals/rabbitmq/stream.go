package rabbitmq

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/kairoshq/kairos/internal/defaults"
	amqp "github.com/rabbitmq/amqp091-go"
)

// Defaults of StreamConfig.
const (
	DefaultStreamMaxAge       = 7 * 24 * time.Hour
	DefaultStreamMaxBytes     = int64(20) << 30 // 20 GiB
	DefaultStreamSegmentBytes = int64(500) << 20
)

// StreamConfig configures the history stream, <prefix>.history: a
// RabbitMQ stream queue (x-queue-type stream) bound to <prefix>.events
// with "#", so that the broker writes every message it accepts on the
// events exchange to it once, and its publisher confirm covers the stream
// too. See docs/history.md.
type StreamConfig struct {
	// Enabled declares and binds the stream (Dial, after every
	// reconnection). Off by default: a single node keeps its local archive.
	Enabled bool
	// MaxAge is the stream's age retention (x-max-age, whole seconds;
	// default 7 days): segments whose messages are all older are removed.
	MaxAge time.Duration
	// MaxBytes is the stream's size retention (x-max-length-bytes,
	// default 20 GiB): the oldest segments go first beyond it.
	MaxBytes int64
	// SegmentBytes is the size of the stream's segment files
	// (x-stream-max-segment-size-bytes, default 500 MiB): retention
	// removes whole segments.
	SegmentBytes int64
	// InitialClusterSize is the number of replicas of the stream on a
	// cluster (x-initial-cluster-size; 0: every node).
	InitialClusterSize int
}

// Defaults returns a copy of c with every zero field set to its default.
func (c StreamConfig) Defaults() StreamConfig {
	defaults.Set(&c.MaxAge, DefaultStreamMaxAge)
	defaults.Set(&c.MaxBytes, DefaultStreamMaxBytes)
	defaults.Set(&c.SegmentBytes, DefaultStreamSegmentBytes)
	return c
}

// Validate reports every problem of c at once.
func (c StreamConfig) Validate() error {
	var errs []error
	if c.MaxAge < time.Second {
		errs = append(errs, fmt.Errorf("stream MaxAge %v: want at least 1s", c.MaxAge))
	}
	if c.MaxBytes < 1 || c.SegmentBytes < 1 || c.SegmentBytes > c.MaxBytes {
		errs = append(errs, fmt.Errorf("stream MaxBytes %d, SegmentBytes %d: want 0 < SegmentBytes <= MaxBytes", c.MaxBytes, c.SegmentBytes))
	}
	if c.InitialClusterSize < 0 {
		errs = append(errs, fmt.Errorf("stream InitialClusterSize %d: want >= 0", c.InitialClusterSize))
	}
	return errors.Join(errs...)
}

// args are the queue arguments of the stream. The broker refuses a
// redeclaration with other arguments (PRECONDITION_FAILED): change the
// retention of an existing stream with a policy (rabbitmqctl set_policy
// … '{"max-age":"14D"}' --apply-to queues), not here.
func (c StreamConfig) args() amqp.Table {
	t := amqp.Table{
		"x-queue-type":                    "stream",
		"x-max-age":                       strconv.FormatInt(int64(c.MaxAge/time.Second), 10) + "s",
		"x-max-length-bytes":              c.MaxBytes,
		"x-stream-max-segment-size-bytes": c.SegmentBytes,
	}
	if c.InitialClusterSize > 0 {
		t["x-initial-cluster-size"] = int64(c.InitialClusterSize)
	}
	return t
}

// StreamName returns the name of the history stream of prefix.
func StreamName(prefix string) string { return prefix + ".history" }

// declareStream declares the history stream and binds it to the events
// exchange (which must exist), when enabled.
func (b *Bus) declareStream(ch *amqp.Channel) error {
	c := b.cfg.Stream
	if !c.Enabled {
		return nil
	}
	name := StreamName(b.cfg.Prefix)
	if _, err := ch.QueueDeclare(name, true, false, false, false, c.args()); err != nil {
		return fmt.Errorf("declare stream %s: %w", name, err)
	}
	if err := ch.QueueBind(name, "#", b.names.events, false, nil); err != nil {
		return fmt.Errorf("bind stream %s to %s: %w", name, b.names.events, err)
	}
	return nil
}
