// Package batchwrite is the write path shared by the engine's counting
// reactors (stats, attention): a Reactor aggregates a committed batch in
// memory, then writes the aggregate once, under a timeout that survives
// the batch's cancellation (a shutdown finishing its last batch), timed,
// and logged and counted when it fails, since a Reactor cannot fail the
// batch.
//
// With Config.FlushEvery the reactor holds its aggregate back instead and
// the Writer writes the aggregate of the period's batches at once, from a
// timer (Hold), off the consuming goroutine; Flush writes it earlier (a
// read that must see the applied events, the engine's stop).
package batchwrite

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Config names the instruments and the log line of a Writer.
type Config struct {
	// Timeout bounds one write.
	Timeout time.Duration
	// Logger receives failed writes with the message Failed.
	Logger *slog.Logger
	Failed string
	// Deltas counts the deltas written, Errors the failed writes,
	// Skipped what the reactor passed over, Write the time of a write.
	Deltas, Errors, Skipped prometheus.CounterOpts
	Write                   prometheus.HistogramOpts
	// Registerer receives the instruments (nil: not registered).
	Registerer prometheus.Registerer
	// FlushEvery, when positive, coalesces the writes of this period
	// (Hold, Flush); zero: the reactor writes each batch (Write).
	FlushEvery time.Duration
}

// Writer writes the aggregates of batches; see the package comment.
type Writer struct {
	timeout                 time.Duration
	log                     *slog.Logger
	failed                  string
	deltas, errors, skipped prometheus.Counter
	write                   prometheus.Histogram

	every time.Duration
	timer *time.Timer // the armed coalesced write; guarded by the reactor's mutex
	// flushMu serialises the coalesced writes, so that a Flush returns
	// once everything held back before it is written.
	flushMu sync.Mutex
}

// New returns the Writer of cfg, its instruments registered.
func New(cfg Config) *Writer {
	w := &Writer{
		timeout: cfg.Timeout,
		every:   cfg.FlushEvery,
		log:     cfg.Logger,
		failed:  cfg.Failed,
		deltas:  prometheus.NewCounter(cfg.Deltas),
		errors:  prometheus.NewCounter(cfg.Errors),
		skipped: prometheus.NewCounter(cfg.Skipped),
		write:   prometheus.NewHistogram(cfg.Write),
	}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(w.deltas, w.errors, w.skipped, w.write)
	}
	return w
}

// Skip counts n passed-over inputs (nothing when n is 0).
func (w *Writer) Skip(n int) {
	if n > 0 {
		w.skipped.Add(float64(n))
	}
}

// Write runs write for n deltas under the timeout, detached from the
// cancellation of ctx, and observes its time; a failure is logged and
// counted, a success adds n to the deltas written.
func (w *Writer) Write(ctx context.Context, n int, write func(context.Context) error) {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.timeout)
	defer cancel()
	start := time.Now()
	err := write(wctx)
	w.write.Observe(time.Since(start).Seconds())
	if err != nil {
		w.errors.Inc()
		w.log.LogAttrs(ctx, slog.LevelError, w.failed, slog.Int("deltas", n), slog.Any("err", err))
		return
	}
	w.deltas.Add(float64(n))
}

// Coalescing reports whether the reactor holds its aggregate back for a
// coalesced write (Config.FlushEvery) instead of writing each batch.
func (w *Writer) Coalescing() bool { return w.every > 0 }

// Hold arms the timer that calls flush (the reactor's Flush) once the
// period has passed, unless it is armed already. Call it with the
// reactor's mutex held, after adding a batch to what it holds back.
func (w *Writer) Hold(flush func()) {
	if w.timer == nil {
		w.timer = time.AfterFunc(w.every, flush)
	}
}

// Flush writes what the reactor holds back, one Flush at a time: with mu
// (the reactor's mutex) held and the timer stopped, take returns the
// number of deltas held and their write, forgetting them (0 when nothing
// is held); the write then runs as Write runs it. It does nothing when
// the Writer is not Coalescing.
func (w *Writer) Flush(ctx context.Context, mu *sync.Mutex, take func() (int, func(context.Context) error)) {
	if !w.Coalescing() {
		return
	}
	w.flushMu.Lock()
	defer w.flushMu.Unlock()
	mu.Lock()
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
	n, write := take()
	mu.Unlock()
	if n > 0 {
		w.Write(ctx, n, write)
	}
}
