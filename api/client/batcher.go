package client

import (
	"context"
	"sync"
	"time"
)

// Batcher collects events added one at a time (a back end tracking its
// users' actions as they happen) and sends them with SendEvents, with its
// retries: a batch leaves when Options.MaxBatch events wait, Delay after
// the first of them, or on Flush and Close. Create it with
// Client.NewBatcher; it is safe for concurrent use.
type Batcher struct {
	c      *Client
	delay  time.Duration
	report func(EventsResult, error)

	ctx    context.Context // the Batcher's own: cancelled by Close's deadline
	cancel context.CancelFunc

	mu      sync.Mutex
	pending []Event
	timer   *time.Timer
	closed  bool
	sends   sync.WaitGroup
}

// NewBatcher returns a Batcher that sends within delay (default 1 s) of
// an event's Add. report, when not nil, is called with the result of
// every batch sent in the background (the events a failed batch carried
// are lost unless report keeps them: its error says why).
func (c *Client) NewBatcher(delay time.Duration, report func(EventsResult, error)) *Batcher {
	if delay <= 0 {
		delay = time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Batcher{c: c, delay: delay, report: report, ctx: ctx, cancel: cancel}
}

// Add queues an event (giving it an id when it has none) and returns its
// id, or "" after Close.
func (b *Batcher) Add(e Event) string {
	if e.ID == "" {
		e.ID = newID()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ""
	}
	b.pending = append(b.pending, e)
	switch {
	case len(b.pending) >= b.c.opt.MaxBatch:
		b.sendLocked()
	case b.timer == nil:
		b.timer = time.AfterFunc(b.delay, func() {
			b.mu.Lock()
			defer b.mu.Unlock()
			b.sendLocked()
		})
	}
	return e.ID
}

// sendLocked starts sending what waits; b.mu is held.
func (b *Batcher) sendLocked() {
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
	if len(b.pending) == 0 {
		return
	}
	batch := b.pending
	b.pending = nil
	b.sends.Add(1)
	go func() {
		defer b.sends.Done()
		res, err := b.c.SendEvents(b.ctx, batch)
		if b.report != nil {
			b.report(res, err)
		}
	}()
}

// Flush sends what waits and returns when every batch started so far is
// answered, or ctx ends.
func (b *Batcher) Flush(ctx context.Context) error {
	b.mu.Lock()
	b.sendLocked()
	b.mu.Unlock()
	done := make(chan struct{})
	go func() { b.sends.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close sends what waits, refuses later events and waits for the
// batches in flight until ctx ends, when it abandons them (their retries
// stop).
func (b *Batcher) Close(ctx context.Context) error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	err := b.Flush(ctx)
	b.cancel()
	if err != nil {
		b.sends.Wait() // the cancelled sends return at once
	}
	return err
}
