package rabbitmq

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/kairoshq/kairos/internal/defaults"
	"github.com/kairoshq/kairos/internal/errs"
	"github.com/kairoshq/kairos/signals"
)

// Defaults of StreamReaderConfig.
const (
	DefaultStreamPrefetch = 2000
	DefaultStreamLinger   = 20 * time.Millisecond
)

// fenceHeader marks a fence: an empty message a reader appends to the
// stream to know where the stream ended when it started reading (AMQP
// 0.9.1 has no "end of stream" for a stream queue consumer). Other
// readers' fences are delivered with StreamMessage.Fence set, so that
// their offsets count as read (the archiver commits past them); consumers
// skip their bodies.
const fenceHeader = "kairos-fence"

// StreamReaderConfig configures a StreamReader.
type StreamReaderConfig struct {
	// URL of the broker, or the comma-separated URLs of a cluster's
	// nodes, as Config.URL (default DefaultURL): each connection tries
	// them in turn, starting with the one that answered last.
	URL string
	// Prefix of the names (default "kairos"): the stream is
	// <prefix>.history.
	Prefix string
	// Prefetch bounds the unacknowledged messages, and so a batch
	// (default 2,000).
	Prefetch int
	// Linger is how long Follow waits for a batch to fill after its
	// first message (default 20 ms).
	Linger time.Duration
	// DialTimeout bounds the connection and each broker call (default
	// 10 s).
	DialTimeout time.Duration
	// Logger; nil discards.
	Logger *slog.Logger
}

// StreamReader reads the history stream (see StreamConfig) by offset over
// AMQP 0.9.1: a consumer of the stream queue with basic.qos and the
// x-stream-offset argument. Each call opens its own connection; a
// StreamReader is safe for concurrent use.
type StreamReader struct {
	cfg  StreamReaderConfig
	urls []string // the brokers of cfg.URL, in order
	at   atomic.Int64
	name string
	log  *slog.Logger
}

// NewStreamReader checks cfg and returns a reader; it does not connect.
func NewStreamReader(cfg StreamReaderConfig) (*StreamReader, error) {
	defaults.Set(&cfg.URL, DefaultURL)
	defaults.Set(&cfg.Prefix, DefaultPrefix)
	defaults.Set(&cfg.Prefetch, DefaultStreamPrefetch)
	defaults.Set(&cfg.Linger, DefaultStreamLinger)
	defaults.Set(&cfg.DialTimeout, DefaultDialTimeout)
	var errs []error
	urls := splitURLs(cfg.URL)
	errs = append(errs, checkURLs("stream reader", urls)...)
	if !validName(cfg.Prefix) {
		errs = append(errs, fmt.Errorf("stream reader: Prefix %q: want 1-100 letters, digits, '.', '-' or '_'", cfg.Prefix))
	}
	if cfg.Prefetch < 1 || cfg.Prefetch > 65535 {
		errs = append(errs, fmt.Errorf("stream reader: Prefetch %d: want 1..65535", cfg.Prefetch))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	log := defaults.Logger(cfg.Logger)
	return &StreamReader{cfg: cfg, urls: urls, name: StreamName(cfg.Prefix), log: log.With(slog.String("component", "history-stream"))}, nil
}

// Name returns the stream queue's name.
func (r *StreamReader) Name() string { return r.name }

// Read calls fn with the messages from offset from (or the first one
// retention kept, when from is older) up to the end of the stream at the
// time of the call, in offset order and in batches of at most Prefetch
// messages. It appends a fence to find that end (see fenceHeader), so it
// needs permission to publish to the stream; other readers' fences are
// delivered with Fence set, this read's own is not. An error of fn stops the
// read and is returned as is.
func (r *StreamReader) Read(ctx context.Context, from uint64, fn func([]signals.StreamMessage) error) error {
	conn, err := r.dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	fence, err := r.appendFence(ctx, conn)
	if err != nil {
		return err
	}
	return r.consume(ctx, conn, from, fence, fn)
}

// Follow calls fn with batches of messages from offset from on (waiting
// at most Linger for a batch to fill) until ctx ends, then returns nil. A
// message is acknowledged to the broker (credit) after fn returns; an
// error of fn, or a lost connection, ends Follow with that error: the
// caller resumes from the offset after the last batch it committed.
func (r *StreamReader) Follow(ctx context.Context, from uint64, fn func([]signals.StreamMessage) error) error {
	conn, err := r.dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	err = r.consume(ctx, conn, from, "", fn)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// Fence appends a fence to the stream (see fenceHeader) and returns once
// it is confirmed: a message without events, with a publish time, that
// followers see (the history archiver records pending erasures at the
// first message published after them, so it fences an idle stream).
func (r *StreamReader) Fence(ctx context.Context) error {
	conn, err := r.dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = r.appendFence(ctx, conn)
	return err
}

// dial connects to the first broker of the reader's URLs that answers,
// starting with the one that answered last (a stream is replicated: any
// node of the cluster serves it).
func (r *StreamReader) dial() (*amqp.Connection, error) {
	start := int(r.at.Load())
	var errs []error
	for k := range r.urls {
		i := (start + k) % len(r.urls)
		conn, err := amqp.DialConfig(r.urls[i], amqp.Config{
			Locale:     "en_US",
			Dial:       amqp.DefaultDial(r.cfg.DialTimeout),
			Properties: amqp.Table{"connection_name": "kairos " + r.cfg.Prefix + " history reader", "product": "kairos"},
		})
		if err == nil {
			r.at.Store(int64(i))
			return conn, nil
		}
		errs = append(errs, fmt.Errorf("connect to %s: %w", redactOne(r.urls[i]), err))
	}
	return nil, fmt.Errorf("%w: history stream: %w", signals.ErrUnavailable, errors.Join(errs...))
}

// appendFence publishes a fence to the stream and waits for its confirm.
func (r *StreamReader) appendFence(ctx context.Context, conn *amqp.Connection) (string, error) {
	ch, err := conn.Channel()
	if err != nil {
		return "", fmt.Errorf("history stream: open channel: %w", err)
	}
	defer ch.Close()
	if err := ch.Confirm(false); err != nil {
		return "", fmt.Errorf("history stream: confirm mode: %w", err)
	}
	returned := ch.NotifyReturn(make(chan amqp.Return, 1))
	var b [12]byte
	_, _ = rand.Read(b[:])
	fence := hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(ctx, r.cfg.DialTimeout)
	defer cancel()
	dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", r.name, true, false, amqp.Publishing{
		Headers: amqp.Table{fenceHeader: fence}, DeliveryMode: amqp.Persistent, Timestamp: time.Now()})
	if err != nil {
		return "", fmt.Errorf("%w: history stream: append fence to %s: %w", signals.ErrUnavailable, r.name, err)
	}
	ok, err := dc.WaitContext(ctx)
	if err != nil || !ok {
		return "", fmt.Errorf("%w: history stream: fence on %s not confirmed: %v", signals.ErrUnavailable, r.name, err)
	}
	select {
	case <-returned: // the broker returns a mandatory message before its confirm
		return "", fmt.Errorf("%w: there is no history stream %s (kairos serve --history-stream declares it; check --namespace)", errs.NotFound, r.name)
	default:
	}
	return fence, nil
}

// consume reads from offset from; with a fence, it returns nil after the
// batch that precedes it.
func (r *StreamReader) consume(ctx context.Context, conn *amqp.Connection, from uint64, fence string, fn func([]signals.StreamMessage) error) error {
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("history stream: open channel: %w", err)
	}
	defer ch.Close()
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	if err := ch.Qos(r.cfg.Prefetch, 0, false); err != nil {
		return fmt.Errorf("history stream: qos: %w", err)
	}
	deliveries, err := ch.Consume(r.name, "", false, false, false, false, amqp.Table{"x-stream-offset": int64(from)})
	if err != nil {
		return fmt.Errorf("%w: history stream: consume %s from offset %d: %w", signals.ErrUnavailable, r.name, from, err)
	}
	// The client blocks its connection's reader while a delivery waits
	// for us: drain them until the channel's close (deferred above)
	// completes, or the close would wait forever for its answer.
	defer func() { go drain(deliveries) }()
	batch := make([]signals.StreamMessage, 0, r.cfg.Prefetch)
	for {
		var d amqp.Delivery
		var ok bool
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e := <-closed:
			return fmt.Errorf("%w: history stream: connection closed: %v", signals.ErrUnavailable, e)
		case d, ok = <-deliveries:
			if !ok {
				return fmt.Errorf("%w: history stream: consumer of %s cancelled", signals.ErrUnavailable, r.name)
			}
		}
		batch, last, done := r.fill(ctx, batch[:0], d, deliveries, fence)
		if len(batch) > 0 {
			if err := fn(batch); err != nil {
				return err
			}
		}
		if err := ch.Ack(last, true); err != nil {
			return fmt.Errorf("%w: history stream: ack: %w", signals.ErrUnavailable, err)
		}
		if done {
			return nil
		}
	}
}

// fill adds d and the deliveries that follow (those already there; with
// no fence, also those arriving within Linger) to batch, up to Prefetch
// messages; other readers' fences are taken with Fence set (no body). It
// returns the delivery tag of the last one taken and whether the reader's
// own fence was reached.
func (r *StreamReader) fill(ctx context.Context, batch []signals.StreamMessage, d amqp.Delivery, deliveries <-chan amqp.Delivery, fence string) ([]signals.StreamMessage, uint64, bool) {
	var linger <-chan time.Time
	if fence == "" {
		t := time.NewTimer(r.cfg.Linger)
		defer t.Stop()
		linger = t.C
	}
	for {
		last := d.DeliveryTag
		f, isFence := d.Headers[fenceHeader].(string)
		switch {
		case isFence && f == fence:
			return batch, last, true
		case isFence:
			batch = append(batch, signals.StreamMessage{Offset: streamOffset(d), Published: d.Timestamp, Fence: true})
		default:
			batch = append(batch, signals.StreamMessage{Offset: streamOffset(d), Published: d.Timestamp, Body: d.Body})
		}
		if len(batch) == cap(batch) {
			return batch, last, false
		}
		var ok bool
		select {
		case d, ok = <-deliveries:
			if !ok {
				return batch, last, false
			}
			continue
		default:
		}
		if linger == nil {
			return batch, last, false
		}
		select {
		case d, ok = <-deliveries:
			if !ok {
				return batch, last, false
			}
		case <-linger:
			return batch, last, false
		case <-ctx.Done():
			return batch, last, false
		}
	}
}

// streamOffset returns the x-stream-offset header the broker puts on
// every message consumed from a stream.
func streamOffset(d amqp.Delivery) uint64 {
	switch v := d.Headers["x-stream-offset"].(type) {
	case int64:
		return uint64(v)
	case int32:
		return uint64(v)
	}
	return 0
}

// drain discards deliveries until the channel closes.
func drain(deliveries <-chan amqp.Delivery) {
	for range deliveries {
	}
}
