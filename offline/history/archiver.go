package history

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
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

// keep renews the lease every third of its TTL and applies erasure
// requests; it cancels the term when the lease is lost or could not be
// renewed before it expired.
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
		if arc := t.arc.Load(); arc != nil {
			if err := t.applyErasures(ctx, arc); err != nil && ctx.Err() == nil {
				a.log.LogAttrs(ctx, slog.LevelWarn, "erasure requests not applied yet", slog.String("error", err.Error()))
			}
		}
	}
}

// batch archives a batch of stream messages, then commits its offset.
func (t *term) batch(batch []signals.StreamMessage) error {
	a := t.a
	t.mu.Lock()
	next := t.cp.Next
	t.mu.Unlock()
	if first := batch[0].Offset; first > next {
		a.log.Warn("stream retention removed messages before the archiver read them: they are lost",
			slog.Uint64("from_offset", next), slog.Uint64("first_kept", first))
	}
	var events []signals.Event
	for _, m := range batch {
		events, _ = decode(m, a.cfg.Limits, events)
	}
	ctx := context.Background() // an append in progress completes; the commit checks the lease
	if len(events) > 0 {
		if err := t.arc.Load().Append(ctx, events); err != nil {
			return fmt.Errorf("history: append to the cold tier: %w", err)
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	cp := t.cp
	cp.Next = batch[len(batch)-1].Offset + 1
	cp.Seq = t.arc.Load().LastSeq()
	cp.Events += uint64(len(events))
	if err := t.commit(cp); err != nil {
		return err
	}
	a.events.Add(uint64(len(events)))
	a.messages.Add(uint64(len(batch)))
	a.next.Store(cp.Next)
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

// applyErasures records the erasure requests logged since the checkpoint
// as tombstones, commits, and compacts at most every CompactEvery.
func (t *term) applyErasures(ctx context.Context, arc *archive.Archive) error {
	a := t.a
	t.mu.Lock()
	after := t.cp.Erasures
	t.mu.Unlock()
	entries, err := a.cfg.Store.Entries(ctx, a.cfg.ErasureLog, after, 1000)
	if err != nil || len(entries) == 0 {
		return err
	}
	for _, e := range entries {
		if err := arc.EraseHash(ctx, string(e.Data)); err != nil {
			return err
		}
	}
	t.mu.Lock()
	cp := t.cp
	cp.Erasures = entries[len(entries)-1].Seq
	err = t.commit(cp)
	t.mu.Unlock()
	if err != nil {
		return err
	}
	a.log.LogAttrs(ctx, slog.LevelInfo, "erasures applied to the cold tier", slog.Int("visitors", len(entries)))
	if now := a.cfg.Now(); now.Sub(t.lastCompact) >= a.cfg.CompactEvery {
		t.lastCompact = now
		if _, err := arc.Compact(ctx); err != nil {
			return fmt.Errorf("history: compact the cold tier: %w", err)
		}
	}
	return nil
}

// erasureKeep and erasureTTL bound the erasure log: an archiver applies
// requests within seconds; a week covers a long outage of every replica.
const (
	erasureKeep = 1_000_000
	erasureTTL  = 7 * 24 * time.Hour
)

// RequestErasure logs an erasure of visitor for the archiver (whichever
// replica holds the lease) to record in the cold tier as a tombstone. The
// log keeps the SHA-256 of the id, as the tombstones do. Readers filter
// the visitor's events once the tombstone is recorded (within a lease
// renewal period).
func RequestErasure(ctx context.Context, logs storage.Logs, key, visitor string) error {
	defaults.Set(&key, DefaultErasureLog)
	h := sha256.Sum256([]byte(visitor))
	if _, err := logs.Append(ctx, key, 0, []byte(hex.EncodeToString(h[:])), erasureKeep, erasureTTL); err != nil {
		return fmt.Errorf("history: log erasure request: %w", err)
	}
	return nil
}

// LogErasure is RequestErasure requested at now, for the archiver and for
// every replica following the log into its local archive (package
// offline/erasurelog); it returns the entry's sequence number. The
// sequence number is at least now in Unix milliseconds, so that it tells
// every follower when the erasure was requested (ErasureTime) and never
// goes back, even after the log expired.
func LogErasure(ctx context.Context, logs storage.Logs, key, visitor string, now time.Time) (uint64, error) {
	defaults.Set(&key, DefaultErasureLog)
	h := sha256.Sum256([]byte(visitor))
	seq, err := logs.Append(ctx, key, uint64(max(now.UnixMilli(), 1)), []byte(hex.EncodeToString(h[:])), erasureKeep, erasureTTL)
	if err != nil {
		return 0, fmt.Errorf("history: log erasure request: %w", err)
	}
	return seq, nil
}

// ErasureTime is when the erasure logged with sequence number seq was
// requested, at the latest (LogErasure); ok is false for an entry logged
// before the sequence numbers were times.
func ErasureTime(seq uint64) (at time.Time, ok bool) {
	if seq < minTimeSeq || seq > math.MaxInt64 {
		return time.Time{}, false
	}
	return time.UnixMilli(int64(seq)).UTC(), true
}

// minTimeSeq (2020-01-01 in Unix ms) separates time sequence numbers from
// the counters of older logs.
const minTimeSeq = 1_577_836_800_000

// ErasureRetention is how long the erasure log keeps its entries after the
// last erasure, and ErasureKeep how many it keeps at most: a follower
// down for longer may miss erasures.
const (
	ErasureRetention = erasureTTL
	ErasureKeep      = erasureKeep
)
