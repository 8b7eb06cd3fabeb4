package history

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"time"

	"github.com/kairoshq/kairos/engine/storage"
	"github.com/kairoshq/kairos/internal/defaults"
	"github.com/kairoshq/kairos/offline/archive"
	"github.com/kairoshq/kairos/signals"
)

// DefaultDedupWindow is how many recent event ids a Reader remembers.
const DefaultDedupWindow = 1_000_000

// ReaderConfig configures a Reader.
type ReaderConfig struct {
	// Dir is the cold tier: the archive directory the archiver writes
	// (with its checkpoint). It may not exist yet.
	Dir string
	// Stream is the hot tier; nil reads Dir alone, as a plain archive.
	Stream Stream
	// Erasures is the store holding the erasure log (the engine's store;
	// see RequestErasure), ErasureLog its key (default
	// "history:erasures"). With it, a scan also applies the requests the
	// archiver has not recorded as tombstones yet (those after the
	// checkpoint's Erasures: none is while no archiver runs): the
	// visitor's events in the cold tier up to the checkpoint, and those
	// of the tail published up to the request's time. Without it
	// (nil), only the cold tier's tombstones are applied, so the
	// erasures of the last lease renewal period — or of a whole archiver
	// outage — are not: give the store whenever it is reachable.
	Erasures   storage.Logs
	ErasureLog string
	// DedupWindow is how many recent event ids are remembered to drop
	// duplicates (default 1,000,000).
	DedupWindow int
	// Limits decode the stream's messages (the consumers'; the age bound
	// is lifted).
	Limits signals.Limits
	// Logger; nil discards.
	Logger *slog.Logger
}

// ReadStats counts what the last scan of a Reader read.
type ReadStats struct {
	// Cold and Tail are the events delivered from each tier.
	Cold, Tail int
	// Duplicates were dropped by id; Erased filtered by a tombstone or a
	// pending erasure request, in either tier; Rejected are invalid
	// events of stream messages (the consumers dead-lettered them).
	Duplicates, Erased, Rejected int
	// Pending is the number of erasure requests of the store's log that
	// the archiver had not recorded and the scan applied itself
	// (ReaderConfig.Erasures).
	Pending int
	// Gap is the number of stream offsets after the checkpoint that
	// retention removed before the archiver read them (lost).
	Gap uint64
}

// Reader reads the cluster's history: the cold tier up to its
// checkpoint, then the stream from the checkpoint's offset to the end,
// de-duplicated by event id, in that order (the archive's order, then
// the stream's). It pins the checkpoint when it is made, so that
// successive scans (a retrain's two passes) see the same cut; make a new
// Reader to see the archiver's progress. It implements
// offline.RecordSource. Safe for sequential use.
//
// Record.Seq of a cold event is its archive record's; a tail event gets
// checkpoint.Seq + 1 + (offset − checkpoint.Next), so sequence numbers
// increase through both tiers. A tail event's number is provisional: once
// archived, the event is in a record numbered from the archive's own
// sequence (see docs/history.md, "Offsets").
type Reader struct {
	cfg   ReaderConfig
	cold  *archive.Reader // nil when Dir does not exist
	cp    Checkpoint
	hasCP bool
	log   *slog.Logger
	stats ReadStats // of the scan in progress or the last one
	// whole are the counts of the last scan without AfterSeq or
	// UntilSeq (hasWhole): see Stats.
	whole    ReadStats
	hasWhole bool
}

// NewReader loads the checkpoint of cfg.Dir and returns a Reader.
func NewReader(cfg ReaderConfig) (*Reader, error) {
	if cfg.Dir == "" {
		return nil, errors.New("history: reader needs the cold tier's directory")
	}
	if cfg.DedupWindow <= 0 {
		cfg.DedupWindow = DefaultDedupWindow
	}
	defaults.Set(&cfg.ErasureLog, DefaultErasureLog)
	cfg.Limits = historyLimits(cfg.Limits)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Reader{cfg: cfg, log: cfg.Logger.With(slog.String("component", "history"))}
	fi, err := os.Stat(cfg.Dir)
	switch {
	case errors.Is(err, fs.ErrNotExist) && cfg.Stream != nil:
		return r, nil // nothing archived yet: the stream is the whole history
	case err != nil:
		return nil, fmt.Errorf("history: cold tier: %w", err)
	case !fi.IsDir():
		return nil, fmt.Errorf("history: cold tier %s is not a directory", cfg.Dir)
	}
	r.cold = archive.NewReader(cfg.Dir, cfg.Logger)
	if r.cp, r.hasCP, err = ReadCheckpoint(cfg.Dir); err != nil {
		return nil, err
	}
	return r, nil
}

// Checkpoint returns the pinned checkpoint (ok false: none).
func (r *Reader) Checkpoint() (Checkpoint, bool) { return r.cp, r.hasCP }

// Stats returns the counts of the last scan of the whole history
// selected by a time window (no AfterSeq or UntilSeq bound), or of the
// last scan when there was none such: a scan cut at a sequence number
// (the second pass of a retrain, up to the last event the first
// delivered) does not count the duplicates and erased events after the
// cut, so it would under-report what the history dropped.
func (r *Reader) Stats() ReadStats {
	if r.hasWhole {
		return r.whole
	}
	return r.stats
}

// Scan calls fn for every event with from <= ts < to (zero bounds are
// open), as ScanRecords.
func (r *Reader) Scan(ctx context.Context, from, to time.Time, fn func(signals.Event) error) error {
	return r.ScanRecords(ctx, archive.Query{From: from, To: to}, func(rec archive.Record) error { return fn(rec.Event) })
}

// errStop ends a stream read at Query.UntilSeq.
var errStop = errors.New("history: until reached")

// ScanRecords calls fn for every event of the history selected by q
// (archive.Query: time window, AfterSeq, UntilSeq) that is not erased and
// not a duplicate, cold tier first, then the stream's tail. An error of
// fn stops the scan and is returned as is.
func (r *Reader) ScanRecords(ctx context.Context, q archive.Query, fn func(archive.Record) error) error {
	r.stats = ReadStats{}
	err := r.scan(ctx, q, fn)
	if q.AfterSeq == 0 && q.UntilSeq == 0 {
		r.whole, r.hasWhole = r.stats, true
	}
	return err
}

func (r *Reader) scan(ctx context.Context, q archive.Query, fn func(archive.Record) error) error {
	pending, err := r.pendingErasures(ctx)
	if err != nil {
		return err
	}
	dedup := signals.NewIDWindow(r.cfg.DedupWindow)
	if err := r.scanCold(ctx, q, pending, dedup, fn); err != nil {
		return err
	}
	if r.cfg.Stream == nil || (q.UntilSeq != 0 && q.UntilSeq <= r.cp.Seq) {
		return nil
	}
	return r.scanTail(ctx, q, pending, dedup, fn)
}

// pendingErasures reads the erasure requests the pinned checkpoint has
// not recorded: the time of each visitor's latest (a request without
// time, of an older version, counts as made now).
func (r *Reader) pendingErasures(ctx context.Context) (map[[sha256.Size]byte]time.Time, error) {
	if r.cfg.Erasures == nil || r.cfg.Stream == nil {
		return nil, nil // a plain archive: its tombstones are all there is
	}
	es, err := readErasures(ctx, r.cfg.Erasures, r.cfg.ErasureLog, r.cp.Erasures)
	if err != nil || len(es) == 0 {
		return nil, err
	}
	now := time.Now()
	pending := make(map[[sha256.Size]byte]time.Time, len(es))
	for _, e := range es {
		if e.at.IsZero() {
			e.at = now
		}
		if at, ok := pending[e.key]; !ok || e.at.After(at) {
			pending[e.key] = e.at
		}
	}
	r.stats.Pending = len(es)
	return pending, nil
}

// scanCold reads the archive up to the checkpoint (the whole archive
// without a stream).
//
// A pending erasure request (pending) erases every event of its visitor
// there: the archiver records it at a later place of the stream.
func (r *Reader) scanCold(ctx context.Context, q archive.Query, pending map[[sha256.Size]byte]time.Time, dedup *signals.IDWindow, fn func(archive.Record) error) error {
	if r.cold == nil {
		return nil
	}
	if r.cfg.Stream != nil {
		if !r.hasCP || r.cp.Seq == 0 {
			return nil // nothing committed: records there are re-read from the stream
		}
		if q.UntilSeq == 0 || q.UntilSeq > r.cp.Seq {
			q.UntilSeq = r.cp.Seq
		}
	}
	st, err := r.cold.ScanRecordsStats(ctx, q, func(rec archive.Record) error {
		if len(pending) > 0 {
			if _, ok := pending[sha256.Sum256([]byte(rec.Event.Visitor))]; ok {
				r.stats.Erased++
				return nil
			}
		}
		if dedup.Seen(rec.Event.ID) {
			r.stats.Duplicates++
			return nil
		}
		r.stats.Cold++
		return fn(rec)
	})
	r.stats.Erased += st.Erased
	return err
}

// scanTail reads the stream from the checkpoint's offset to its end. An
// event is erased when its visitor has a tombstone or a pending request
// at or after its publish time.
func (r *Reader) scanTail(ctx context.Context, q archive.Query, pending map[[sha256.Size]byte]time.Time, dedup *signals.IDWindow, fn func(archive.Record) error) error {
	var erasures archive.Erasures
	if r.cold != nil {
		var err error
		if erasures, err = r.cold.Erasures(); err != nil {
			return err
		}
	}
	erasedAt := func(visitor string, published time.Time) bool {
		if erasures.Any() && erasures.ErasedAt(visitor, published) {
			return true
		}
		if len(pending) == 0 {
			return false
		}
		at, ok := pending[sha256.Sum256([]byte(visitor))]
		return ok && !at.Before(published)
	}
	lo, hi := q.From, q.To
	first := true
	var events []signals.Event
	err := r.cfg.Stream.Read(ctx, r.cp.Next, func(batch []signals.StreamMessage) error {
		for _, m := range batch {
			if first {
				first = false
				if m.Offset > r.cp.Next {
					r.stats.Gap = m.Offset - r.cp.Next
					r.log.LogAttrs(ctx, slog.LevelWarn, "stream retention removed messages the archiver had not archived: they are lost",
						slog.Uint64("from_offset", r.cp.Next), slog.Uint64("first_kept", m.Offset))
				}
			}
			seq := r.cp.Seq + 1 + (m.Offset - r.cp.Next)
			if seq <= q.AfterSeq {
				continue
			}
			if q.UntilSeq != 0 && seq > q.UntilSeq {
				return errStop
			}
			var rejected int
			events, rejected = decode(m, r.cfg.Limits, events[:0])
			r.stats.Rejected += rejected
			for _, ev := range events {
				switch {
				case !lo.IsZero() && ev.Time.Before(lo), !hi.IsZero() && !ev.Time.Before(hi):
					continue
				case erasedAt(ev.Visitor, m.Published):
					r.stats.Erased++
					continue
				case dedup.Seen(ev.ID):
					r.stats.Duplicates++
					continue
				}
				r.stats.Tail++
				if err := fn(archive.Record{Seq: seq, Arrival: m.Published, Event: ev}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if errors.Is(err, errStop) {
		return nil
	}
	return err
}
