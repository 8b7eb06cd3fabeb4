package membus

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/kairoshq/kairos/internal/defaults"
	"github.com/kairoshq/kairos/signals"
)

// Interface guard.
var _ signals.Bus = (*Bus)(nil)

// DefaultMaxDeadLetters is the default of Options.MaxDeadLetters.
const DefaultMaxDeadLetters = 1000

// Options configure a Bus. The zero value is usable.
type Options struct {
	// Limits bound what Publish and PublishRaw accept (zero fields mean
	// the defaults, see signals.Limits).
	Limits signals.Limits
	// MaxDeadLetters bounds the dead letters kept for DeadLetters; older
	// ones are dropped (DeadLettered still counts them). Default 1000.
	MaxDeadLetters int
	// Logger receives dead-letter warnings; nil discards.
	Logger *slog.Logger
	// Now is the clock used to normalize and validate events; nil means
	// time.Now.
	Now func() time.Time
}

// Bus is the in-process signals.Bus. Create it with New; it is safe for
// concurrent use.
//
// Lock order: Bus.mu before subscriber.mu; handlerMu is never held with
// either.
type Bus struct {
	limits  signals.Limits
	maxDead int
	log     *slog.Logger
	now     func() time.Time

	reqs      chan *request // unbuffered: a send succeeds when a consumer takes the batch
	closed    chan struct{}
	closeOnce sync.Once

	handlerMu sync.Mutex // serialises handler calls across consumers, like one queue

	mu        sync.Mutex
	subs      map[signals.Topic]map[*subscriber]struct{}
	dead      []signals.DeadLetter // ring of at most maxDead, oldest at deadStart
	deadStart int
	deadTotal uint64
}

// request is one published batch waiting for, then handled by, a consumer.
type request struct {
	events []signals.Event
	done   chan error // buffered 1: the consumer never blocks on it
}

// New returns a Bus configured by opts.
func New(opts Options) *Bus {
	b := &Bus{
		limits:  opts.Limits,
		maxDead: opts.MaxDeadLetters,
		log:     opts.Logger,
		now:     opts.Now,
		reqs:    make(chan *request),
		closed:  make(chan struct{}),
		subs:    map[signals.Topic]map[*subscriber]struct{}{},
	}
	if b.maxDead <= 0 {
		b.maxDead = DefaultMaxDeadLetters
	}
	b.log = defaults.Logger(b.log)
	b.log = b.log.With(slog.String("component", "membus"))
	b.now = defaults.Clock(b.now)
	return b
}

func (b *Bus) isClosed() bool {
	select {
	case <-b.closed:
		return true
	default:
		return false
	}
}

// Publish normalizes and validates a copy of events (the caller's slice is
// not modified) and hands them, as one batch, to a running consumer's
// handler, waiting for one to start if there is none (until ctx is done).
// It returns once the handler has returned: nil means the engine applied
// the batch. A handler error is returned wrapped with
// signals.ErrUnavailable (errors.Is also matches the handler's error). An
// invalid event fails the whole call with its *signals.FieldError (wrapped,
// matching signals.ErrInvalid) and nothing is delivered. If ctx ends while
// the handler runs, Publish returns ctx's error and the batch may still be
// applied.
func (b *Bus) Publish(ctx context.Context, events []signals.Event) error {
	if b.isClosed() {
		return signals.ErrClosed
	}
	if len(events) == 0 {
		return nil
	}
	now := b.now()
	batch := make([]signals.Event, len(events))
	for i := range events {
		batch[i] = events[i]
		batch[i].Normalize(now)
		if err := batch[i].Validate(now, b.limits); err != nil {
			return fmt.Errorf("membus: publish: event %d: %w", i, err)
		}
	}
	return b.deliver(ctx, batch)
}

func (b *Bus) deliver(ctx context.Context, batch []signals.Event) error {
	req := &request{events: batch, done: make(chan error, 1)}
	select {
	case b.reqs <- req:
	case <-ctx.Done():
		return fmt.Errorf("membus: publish: waiting for a consumer: %w", ctx.Err())
	case <-b.closed:
		return signals.ErrClosed
	}
	select {
	case err := <-req.done:
		if err != nil {
			return fmt.Errorf("%w: membus: handler: %w", signals.ErrUnavailable, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("membus: publish: waiting for the handler: %w", ctx.Err())
	}
}

// PublishRaw delivers an encoded event body as a foreign producer would
// publish it on RabbitMQ with routing key key: a body that does not decode
// or validate (signals.DecodeEvent) is dead-lettered with the reason and
// PublishRaw returns nil, like the broker adapter acknowledging a poison
// message; otherwise it behaves like Publish of the decoded event.
func (b *Bus) PublishRaw(ctx context.Context, key string, body []byte) error {
	if b.isClosed() {
		return signals.ErrClosed
	}
	now := b.now()
	e, err := signals.DecodeEvent(body, now, b.limits)
	if err != nil {
		b.deadLetter(ctx, signals.DeadLetter{Body: bytes.Clone(body), Reason: err.Error(), RoutingKey: key, Time: now})
		return nil
	}
	return b.deliver(ctx, []signals.Event{e})
}

func (b *Bus) deadLetter(ctx context.Context, d signals.DeadLetter) {
	b.mu.Lock()
	if len(b.dead) < b.maxDead {
		b.dead = append(b.dead, d)
	} else {
		b.dead[b.deadStart] = d
		b.deadStart = (b.deadStart + 1) % b.maxDead
	}
	b.deadTotal++
	b.mu.Unlock()
	b.log.LogAttrs(ctx, slog.LevelWarn, "dead-lettered a message",
		slog.String("reason", d.Reason), slog.Int("bytes", len(d.Body)))
}

// DeadLetters returns the dead letters kept (at most Options.MaxDeadLetters,
// the most recent), oldest first.
func (b *Bus) DeadLetters() []signals.DeadLetter {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]signals.DeadLetter, 0, len(b.dead))
	out = append(out, b.dead[b.deadStart:]...)
	return append(out, b.dead[:b.deadStart]...)
}

// DeadLettered returns how many messages were dead-lettered since New.
func (b *Bus) DeadLettered() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.deadTotal
}

// Consume takes published batches and calls h for each, one call at a time
// across all consumers of b, until ctx is done: then it finishes the
// in-flight call and returns nil. h's error is returned to the publisher
// (there is no redelivery in process: the publisher reports the failure,
// and the client retries). h gets a context with ctx's values that is not
// cancelled with ctx. Consume returns signals.ErrClosed after Close.
func (b *Bus) Consume(ctx context.Context, h signals.BatchHandler) error {
	hctx := context.WithoutCancel(ctx)
	for {
		if ctx.Err() != nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-b.closed:
			return signals.ErrClosed
		case req := <-b.reqs:
			b.handlerMu.Lock()
			err := h(hctx, req.events)
			b.handlerMu.Unlock()
			req.done <- err
		}
	}
}

// subscriber is one Subscribe call: an unbounded queue of messages.
type subscriber struct {
	mu    sync.Mutex
	queue [][]byte
	wake  chan struct{} // capacity 1
}

// Broadcast hands a copy of msg to every current subscriber of t; it
// never blocks (subscriber queues are unbounded, in memory).
func (b *Bus) Broadcast(ctx context.Context, t signals.Topic, msg []byte) error {
	if b.isClosed() {
		return signals.ErrClosed
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs[t] {
		s.mu.Lock()
		s.queue = append(s.queue, bytes.Clone(msg))
		s.mu.Unlock()
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

// Subscribe calls h with every message broadcast to t after Subscribe was
// called, in order, until ctx is done (nil) or b is closed
// (signals.ErrClosed). Messages still queued then are dropped.
func (b *Bus) Subscribe(ctx context.Context, t signals.Topic, h func(msg []byte)) error {
	if b.isClosed() {
		return signals.ErrClosed
	}
	s := &subscriber{wake: make(chan struct{}, 1)}
	b.mu.Lock()
	if b.subs[t] == nil {
		b.subs[t] = map[*subscriber]struct{}{}
	}
	b.subs[t][s] = struct{}{}
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.subs[t], s)
		b.mu.Unlock()
	}()
	var batch [][]byte
	for {
		s.mu.Lock()
		batch, s.queue = s.queue, batch[:0]
		s.mu.Unlock()
		for i, msg := range batch {
			if ctx.Err() != nil {
				return nil
			}
			h(msg)
			batch[i] = nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-b.closed:
			return signals.ErrClosed
		case <-s.wake:
		}
	}
}

// Ready returns signals.ErrClosed after Close, nil otherwise.
func (b *Bus) Ready(ctx context.Context) error {
	if b.isClosed() {
		return signals.ErrClosed
	}
	return nil
}

// Close makes Publish, Broadcast and new calls fail with signals.ErrClosed
// and Consume and Subscribe return it; an in-flight handler call finishes.
// It is idempotent.
func (b *Bus) Close() error {
	b.closeOnce.Do(func() { close(b.closed) })
	return nil
}
