package history

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kairoshq/kairos/engine/storage"
	"github.com/kairoshq/kairos/internal/defaults"
	"github.com/kairoshq/kairos/offline/archive"
	"github.com/kairoshq/kairos/signals"
)

// Defaults of ArchiverConfig.
const (
	DefaultLeaseKey     = "history:archiver"
	DefaultErasureLog   = "history:erasures"
	DefaultLeaseTTL     = 15 * time.Second
	DefaultCompactEvery = time.Hour
)

// ArchiverConfig configures an Archiver.
type ArchiverConfig struct {
	// Dir is the cold tier's archive directory, shared by every replica
	// that may be elected (see docs/history.md, "Where the cold tier
	// lives").
	Dir string
	// Stream is the hot tier the archiver copies from.
	Stream Stream
	// Store holds the lease and the erasure log (the engine's store).
	Store Store
	// Holder names this replica in the lease (unique per replica).
	Holder string
	// LeaseKey (default "history:archiver") and ErasureLog (default
	// "history:erasures") are the store keys.
	LeaseKey, ErasureLog string
	// LeaseTTL: a holder that does not renew for this long is replaced
	// (default 15 s; renewed every third of it).
	LeaseTTL time.Duration
	// Retention of the cold tier (archive.Options.Retention; 0 keeps
	// everything).
	Retention time.Duration
	// CompactEvery bounds how often erasures trigger a compaction of the
	// cold segments (default 1 h).
	CompactEvery time.Duration
	// Limits decode the stream's messages (the consumers').
	Limits signals.Limits
	// Logger; nil discards.
	Logger *slog.Logger
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Store is what the archiver keeps in the engine's store (engine.Store
// implements it on every backend): the lease, a map, and the erasure
// requests, a log.
type Store interface {
	storage.Maps
	storage.Logs
}

// ArchiverStats are the archiver's counters since it was made.
type ArchiverStats struct {
	// Leading is true while this archiver holds the lease.
	Leading bool
	// Events and Messages were archived by this archiver; Terms counts
	// the times it took the lease.
	Events, Messages, Terms uint64
	// Next is the committed offset (the first not archived).
	Next uint64
}

// Archiver copies the stream to the cold tier when it is elected: on
// every replica the same Archiver runs, one holds the lease. The holder
// opens the archive (SyncAlways), reads the stream from the checkpoint's
// offset, appends each batch and then commits the offset (Checkpoint);
// it applies erasure requests from the store's log as tombstones, and
// compacts. When it loses the lease (it could not renew it within the
// TTL) it stops, closes the archive and competes again; the next holder
// continues from the checkpoint. A batch appended but not committed when
// a holder dies is appended again by the next: readers drop those
// duplicates by event id.
type Archiver struct {
	cfg   ArchiverConfig
	lease *lease
	log   *slog.Logger

	events, messages, terms atomic.Uint64
	next                    atomic.Uint64
	leading                 atomic.Bool
}

// NewArchiver checks cfg and returns an Archiver; Run runs it.
func NewArchiver(cfg ArchiverConfig) (*Archiver, error) {
	defaults.Set(&cfg.LeaseKey, DefaultLeaseKey)
	defaults.Set(&cfg.ErasureLog, DefaultErasureLog)
	defaults.Set(&cfg.LeaseTTL, DefaultLeaseTTL)
	defaults.Set(&cfg.CompactEvery, DefaultCompactEvery)
	cfg.Now = defaults.Clock(cfg.Now)
	cfg.Logger = defaults.Logger(cfg.Logger)
	cfg.Limits = historyLimits(cfg.Limits)
	var problems []error
	if cfg.Dir == "" {
		problems = append(problems, errors.New("history: archiver needs Dir, the cold tier"))
	}
	if cfg.Stream == nil || cfg.Store == nil {
		problems = append(problems, errors.New("history: archiver needs Stream and Store"))
	}
	if cfg.Holder == "" {
		problems = append(problems, errors.New("history: archiver needs a Holder name"))
	}
	if cfg.LeaseTTL < 300*time.Millisecond {
		problems = append(problems, fmt.Errorf("history: LeaseTTL %v: want at least 300ms", cfg.LeaseTTL))
	}
	if err := errors.Join(problems...); err != nil {
		return nil, err
	}
	log := cfg.Logger.With(slog.String("component", "archiver"), slog.String("holder", cfg.Holder))
	return &Archiver{cfg: cfg, log: log, lease: &lease{maps: cfg.Store, key: cfg.LeaseKey, holder: cfg.Holder, ttl: cfg.LeaseTTL, now: cfg.Now}}, nil
}

// Stats returns the archiver's counters.
func (a *Archiver) Stats() ArchiverStats {
	return ArchiverStats{Leading: a.leading.Load(), Events: a.events.Load(), Messages: a.messages.Load(), Terms: a.terms.Load(), Next: a.next.Load()}
}

// Run competes for the lease and archives while it holds it, until ctx
// ends; then it releases the lease and returns nil.
func (a *Archiver) Run(ctx context.Context) error {
	poll := a.cfg.LeaseTTL / 3
	for {
		held, err := a.lease.acquire(ctx)
		if err != nil && ctx.Err() == nil {
			a.log.LogAttrs(ctx, slog.LevelWarn, "archiver lease unavailable", slog.String("error", err.Error()))
		}
		if held {
			a.terms.Add(1)
			a.leading.Store(true)
			a.log.LogAttrs(ctx, slog.LevelInfo, "archiver elected")
			err := a.lead(ctx)
			a.leading.Store(false)
			if ctx.Err() != nil {
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), poll)
				_ = a.lease.release(rctx)
				cancel()
				return nil
			}
			a.log.LogAttrs(ctx, slog.LevelWarn, "archiver stepped down", slog.String("error", err.Error()))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(poll):
		}
	}
}

// term is the state of one term as the lease holder.
type term struct {
	a   *Archiver
	arc atomic.Pointer[archive.Archive] // nil until opened
	mu  sync.Mutex                      // guards cp and the checkpoint file
	cp  Checkpoint
	// validUntil is when the lease expires if it is not renewed again
	// (unix ns); a commit after it is refused.
	validUntil  atomic.Int64
	lastCompact time.Time
	// pending are the erasure requests read from the log and not yet
	// recorded, in log order; loaded is the log position read up to.
	// Both belong to batch (the stream's goroutine).
	pending []erasure
	loaded  uint64
	// erased is set when a tombstone was recorded since the last
	// compaction.
	erased atomic.Bool
}

// lead archives until the lease is lost or ctx ends.
func (a *Archiver) lead(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	t := &term{a: a, lastCompact: a.cfg.Now()}
	t.validUntil.Store(a.cfg.Now().Add(a.cfg.LeaseTTL).UnixNano())
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() { defer wg.Done(); t.keep(ctx, cancel) }()
	arc, err := a.openArchive(ctx)
	if err != nil {
		return err
	}
	defer arc.Close()
	t.arc.Store(arc)
	cp, _, err := ReadCheckpoint(a.cfg.Dir)
	if err != nil {
		return err
	}
	if cp.Seq > arc.LastSeq() {
		return fmt.Errorf("history: checkpoint says records up to %d are archived, the archive ends at %d: the cold tier is not the one the checkpoint was written for", cp.Seq, arc.LastSeq())
	}
	t.cp = cp
	t.loaded = cp.Erasures
	a.next.Store(cp.Next)
	a.log.LogAttrs(ctx, slog.LevelInfo, "archiving the stream", slog.Uint64("from_offset", cp.Next), slog.Uint64("archive_seq", arc.LastSeq()))
	err = a.cfg.Stream.Follow(ctx, cp.Next, t.batch)
	if c := context.Cause(ctx); c != nil && !errors.Is(c, context.Canceled) {
		return c
	}
	return err
}

// openArchive opens the cold tier, waiting while the previous holder
// still has it open (its lock).
func (a *Archiver) openArchive(ctx context.Context) (*archive.Archive, error) {
	for {
		arc, err := archive.Open(ctx, archive.Options{Dir: a.cfg.Dir, Sync: archive.SyncAlways, Retention: a.cfg.Retention, Logger: a.cfg.Logger, Now: a.cfg.Now})
		if !errors.Is(err, archive.ErrLocked) {
			return arc, err
		}
		select {
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// keep renews the lease every third of its TTL, compacts the cold tier
// when tombstones were recorded (at most every CompactEvery), and appends
// a fence to an idle stream while erasure requests wait (see fenceIdle);
// it cancels the term when the lease is lost or could not be renewed
// before it expired.
func (t *term) keep(ctx context.Context, cancel context.CancelCauseFunc) {
	a := t.a
	tick := time.NewTicker(a.cfg.LeaseTTL / 3)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := a.cfg.Now()
		switch err := a.lease.renew(ctx); {
		case errors.Is(err, errLeaseLost):
			cancel(err)
			return
		case err != nil:
			if now.UnixNano() >= t.validUntil.Load() {
				cancel(fmt.Errorf("history: lease not renewed within its TTL: %w", err))
				return
			}
			continue
		}
		t.validUntil.Store(now.Add(a.cfg.LeaseTTL).UnixNano())
		arc := t.arc.Load()
		if arc == nil {
			continue
		}
		if err := t.fenceIdle(ctx); err != nil && ctx.Err() == nil {
			a.log.LogAttrs(ctx, slog.LevelWarn, "erasure requests not recorded yet", slog.String("error", err.Error()))
		}
		if t.erased.Load() && now.Sub(t.lastCompact) >= a.cfg.CompactEvery {
			t.lastCompact = now
			t.erased.Store(false)
			if _, err := arc.Compact(ctx); err != nil && ctx.Err() == nil {
				t.erased.Store(true)
				a.log.LogAttrs(ctx, slog.LevelWarn, "compaction of the cold tier failed", slog.String("error", err.Error()))
			}
		}
	}
}

// Fencer is a Stream that can append a fence: a message without events,
// with a publish time (signals/rabbitmq.StreamReader implements it).
type Fencer interface {
	Fence(ctx context.Context) error
}

// fenceIdle appends a fence to the stream when erasure requests are
// logged that no batch has recorded yet: a request is recorded at the
// first message published after it, and on an idle stream the fence is
// that message.
func (t *term) fenceIdle(ctx context.Context) error {
	f, ok := t.a.cfg.Stream.(Fencer)
	if !ok {
		return nil
	}
	t.mu.Lock()
	after := t.cp.Erasures
	t.mu.Unlock()
	entries, err := t.a.cfg.Store.Entries(ctx, t.a.cfg.ErasureLog, after, 1)
	if err != nil || len(entries) == 0 {
		return err
	}
	return f.Fence(ctx)
}

// batch archives a batch of stream messages, then commits its offset.
// Erasure requests are recorded in stream order: each as a tombstone
// after the events of the messages published up to its time and before
// those published after it (see loadErasures).
func (t *term) batch(batch []signals.StreamMessage) error {
	a := t.a
	t.mu.Lock()
	next, done := t.cp.Next, t.cp.Erasures
	t.mu.Unlock()
	if first := batch[0].Offset; first > next {
		a.log.Warn("stream retention removed messages before the archiver read them: they are lost",
			slog.Uint64("from_offset", next), slog.Uint64("first_kept", first))
	}
	ctx := context.Background() // an append in progress completes; the commit checks the lease
	if err := t.loadErasures(ctx); err != nil {
		return err
	}
	arc := t.arc.Load()
	var events []signals.Event
	var appended uint64
	flush := func() error {
		if len(events) == 0 {
			return nil
		}
		if err := arc.Append(ctx, events); err != nil {
			return fmt.Errorf("history: append to the cold tier: %w", err)
		}
		appended += uint64(len(events))
		events = events[:0]
		return nil
	}
	for _, m := range batch {
		for len(t.pending) > 0 && m.Published.After(t.pending[0].at) {
			if err := flush(); err != nil {
				return err
			}
			e := t.pending[0]
			if err := arc.EraseHashRequested(ctx, e.hash, e.at); err != nil {
				return fmt.Errorf("history: record erasure request %d as a tombstone: %w", e.seq, err)
			}
			t.pending, done = t.pending[1:], e.seq
			t.erased.Store(true)
			a.log.LogAttrs(ctx, slog.LevelInfo, "erasure recorded in the cold tier", slog.Uint64("request", e.seq),
				slog.Time("requested_at", e.at), slog.Uint64("before_offset", m.Offset))
		}
		events, _ = decode(m, a.cfg.Limits, events)
	}
	if err := flush(); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	cp := t.cp
	cp.Next = batch[len(batch)-1].Offset + 1
	cp.Seq = arc.LastSeq()
	cp.Events += appended
	cp.Erasures = done
	if err := t.commit(cp); err != nil {
		return err
	}
	a.events.Add(appended)
	a.messages.Add(uint64(len(batch)))
	a.next.Store(cp.Next)
	return nil
}

// loadErasures reads the erasure requests logged since the last read
// into t.pending. It runs before each batch is archived: a message
// received before a request was logged was published before it, so no
// message published after a request is archived before the request is
// known. A request of an older version, without time, gets now.
func (t *term) loadErasures(ctx context.Context) error {
	a := t.a
	ctx, cancel := context.WithTimeout(ctx, a.cfg.LeaseTTL)
	defer cancel()
	more, err := readErasures(ctx, a.cfg.Store, a.cfg.ErasureLog, t.loaded)
	if err != nil {
		return err
	}
	for _, e := range more {
		if e.at.IsZero() {
			e.at = a.cfg.Now()
		}
		t.pending = append(t.pending, e)
		t.loaded = e.seq
	}
	return nil
}

// commit writes cp if the lease is still valid (t.mu held).
func (t *term) commit(cp Checkpoint) error {
	now := t.a.cfg.Now()
	if now.UnixNano() >= t.validUntil.Load() {
		return errLeaseLost
	}
	cp.Holder, cp.At = t.a.cfg.Holder, now.UTC()
	if err := writeCheckpoint(t.a.cfg.Dir, cp); err != nil {
		return err
	}
	t.cp = cp
	return nil
}
