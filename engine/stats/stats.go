package stats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/internal/batchwrite"
	"github.com/kairoshq/kairos/internal/defaults"
	"github.com/kairoshq/kairos/signals"
)

// Kind is what a Subject is: an item or an offer.
type Kind byte

// The kinds of subjects; the byte is the kind's segment in the Redis keys.
const (
	KindItem  Kind = 'i'
	KindOffer Kind = 'o'
)

// Valid reports whether k is KindItem or KindOffer.
func (k Kind) Valid() bool { return k == KindItem || k == KindOffer }

// String returns "item" or "offer".
func (k Kind) String() string {
	switch k {
	case KindItem:
		return "item"
	case KindOffer:
		return "offer"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Subject is what counters are kept for: an item (events with that item)
// or an offer (events with that offer). Item and offer ids are separate
// namespaces.
type Subject struct {
	Kind Kind
	ID   string
}

// Item returns the subject of item id.
func Item(id string) Subject { return Subject{Kind: KindItem, ID: id} }

// Offer returns the subject of offer id.
func Offer(id string) Subject { return Subject{Kind: KindOffer, ID: id} }

// String returns e.g. `item "sku-42"`.
func (s Subject) String() string { return s.Kind.String() + " " + strconv.Quote(s.ID) }

// Delta is an increment of one counter: the events of one type in one
// bucket of one subject at one resolution.
type Delta struct {
	Res     Resolution
	Subject Subject
	// Start is the bucket's start in Unix seconds (a multiple of the
	// resolution's width).
	Start int64
	// ExpireAt is when the bucket expires, in Unix seconds (0: never); the
	// stores drop the bucket then (Redis EXPIREAT; the embedded store
	// prunes). It is a function of Res and Start (Retention.ExpireAt), so
	// deltas of the same resolution and start carry the same value: a
	// store may keep one expiry per resolution and start, over every
	// subject (the embedded store does; the last one written wins).
	ExpireAt int64
	Type     signals.Type
	// Count is the number of events (>= 0).
	Count int64
	// Sum is the sum of the events' values (dwell ms, revenue, scroll
	// percent…).
	Sum float64
}

// Check reports whether d is well formed, with an error wrapping
// engine.ErrInvalid that names the field.
func (d *Delta) Check() error {
	switch {
	case !d.Res.Valid():
		return fmt.Errorf("%w: delta res: %v is not a resolution", engine.ErrInvalid, d.Res)
	case !d.Subject.Kind.Valid():
		return fmt.Errorf("%w: delta subject: kind %v", engine.ErrInvalid, d.Subject.Kind)
	case d.Subject.ID == "":
		return fmt.Errorf("%w: delta subject: id is empty", engine.ErrInvalid)
	case d.Res.StartOf(d.Start) != d.Start:
		return fmt.Errorf("%w: delta start: %d is not the start of a %s bucket", engine.ErrInvalid, d.Start, d.Res)
	case d.ExpireAt < 0:
		return fmt.Errorf("%w: delta expire_at: %d is negative", engine.ErrInvalid, d.ExpireAt)
	case d.Type == "":
		return fmt.Errorf("%w: delta type: empty", engine.ErrInvalid)
	case d.Count < 0:
		return fmt.Errorf("%w: delta count: %d is negative", engine.ErrInvalid, d.Count)
	case math.IsNaN(d.Sum) || math.IsInf(d.Sum, 0):
		return fmt.Errorf("%w: delta sum: %v is not a finite number", engine.ErrInvalid, d.Sum)
	}
	return nil
}

// Point is one bucket of a series: the number of events of each type and
// the sum of their values.
type Point struct {
	// Start is the bucket's start (UTC).
	Start time.Time
	// Counts holds the number of events per type (types without events
	// are absent; nil when the bucket is empty).
	Counts map[signals.Type]int64
	// Sums holds the sum of the events' values per type, for the types
	// whose sum is not zero (nil when none).
	Sums map[signals.Type]float64
}

// Revenue is the sum of the values of the bucket's conversions.
func (p *Point) Revenue() float64 { return p.Sums[signals.TypeConversion] }

// DwellMs is the sum of the bucket's dwell times, in milliseconds.
func (p *Point) DwellMs() float64 { return p.Sums[signals.TypeDwell] }

// Store keeps the counters: engine/redisstore and engine/embedded
// implement it and pass the suite of engine/stats/statstest.
type Store interface {
	// AddCounts adds every delta to its counter (creating it at zero), and
	// sets its bucket's expiry; deltas are Checked first and a malformed
	// one fails the call (engine.ErrInvalid) with nothing added. The
	// deltas of one call are applied together: a reader sees all or none
	// of them. The store does not keep the slice.
	AddCounts(ctx context.Context, deltas []Delta) error
	// Counts returns the buckets of subject at res whose start lies in
	// [from, to), in ascending order, leaving out buckets that have
	// expired and buckets without counts; in a Point, types whose count
	// and sum are zero are left out. An invalid res is engine.ErrInvalid.
	Counts(ctx context.Context, res Resolution, subject Subject, from, to time.Time) ([]Point, error)
}

// Defaults of Config.
const (
	DefaultMaxPoints    = 2000
	DefaultWriteTimeout = 5 * time.Second
)

// Config configures Stats. Zero fields take their defaults.
type Config struct {
	// Retention is the per-resolution retention (zero value: every
	// resolution forever; use DefaultRetention for 15m:30d,1h:120d,1d:0).
	Retention Retention
	// MaxPoints bounds the buckets of one Series (default 2,000).
	MaxPoints int
	// WriteTimeout bounds the store write of one batch's counters
	// (default 5 s). It runs even when the batch's context is cancelled
	// (a shutdown finishing its last batch).
	WriteTimeout time.Duration
	// FlushEvery, when positive, coalesces the counters of the batches
	// of this period into one write, made off the consuming goroutine
	// (and before every Series, and at Flush): on a Redis Cluster a
	// batch's counters are one script call per counter hash, most of the
	// store's calls at a high event rate. Zero writes each batch's
	// counters in React. Counts held back are lost if the process dies
	// before the write (at most this period's).
	FlushEvery time.Duration
	// Logger receives write failures (nil: discard).
	Logger *slog.Logger
	// Registerer receives the metrics (nil: not registered).
	Registerer prometheus.Registerer
	// Now is the clock that decides which buckets have expired (nil:
	// time.Now).
	Now func() time.Time
}

// Defaults returns a copy of c with every zero field set to its default.
func (c Config) Defaults() Config {
	defaults.Set(&c.MaxPoints, DefaultMaxPoints)
	defaults.Set(&c.WriteTimeout, DefaultWriteTimeout)
	c.Logger = defaults.Logger(c.Logger)
	c.Now = defaults.Clock(c.Now)
	return c
}

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	errs := []error{c.Retention.Validate()}
	if c.MaxPoints < 1 {
		errs = append(errs, fmt.Errorf("stats config: MaxPoints %d: want >= 1", c.MaxPoints))
	}
	if c.WriteTimeout <= 0 {
		errs = append(errs, fmt.Errorf("stats config: WriteTimeout %v: want > 0", c.WriteTimeout))
	}
	if c.FlushEvery < 0 {
		errs = append(errs, fmt.Errorf("stats config: FlushEvery %v: want >= 0", c.FlushEvery))
	}
	return errors.Join(errs...)
}

// Stats counts the engine's events (it is an engine.Reactor) and answers
// series queries. It is safe for concurrent use.
type Stats struct {
	cfg   Config
	store Store
	out   *batchwrite.Writer

	mu  sync.Mutex // guards agg (React calls are serialised by the engine, but need not be)
	agg aggregator
}

// Interface guards.
var (
	_ engine.Reactor = (*Stats)(nil)
	_ engine.Flusher = (*Stats)(nil)
)

// New returns Stats over store, configured by cfg (after Defaults and
// Validate).
func New(store Store, cfg Config) (*Stats, error) {
	cfg = cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if store == nil {
		return nil, errors.New("stats: store is nil")
	}
	s := &Stats{cfg: cfg, store: store, out: newWriter(cfg)}
	s.agg.init()
	return s, nil
}

// Retention returns the retention policy in force.
func (s *Stats) Retention() Retention { return s.cfg.Retention }

// React counts the fresh events of a committed batch: per resolution, per
// subject (the event's item, and its offer) and per bucket of the event
// time, the number of events of each type and the sum of their values.
// The counters of the batch are aggregated in memory first and written
// in one AddCounts call — or, with Config.FlushEvery, together with the
// other batches of the period, later. Events with neither item nor offer
// are not counted; buckets that have already expired (late events) are
// skipped. A failed write is logged and counted
// (kairos_stats_write_errors_total), and its counts are lost: a Reactor
// cannot fail the batch.
func (s *Stats) React(ctx context.Context, changes []engine.VisitorChange) {
	s.mu.Lock()
	if s.out.Coalescing() {
		s.count(changes)
		if len(s.agg.keys) > 0 {
			s.out.Hold(func() { s.Flush(context.Background()) })
		}
		s.mu.Unlock()
		return
	}
	defer s.mu.Unlock()
	s.agg.reset()
	s.count(changes)
	deltas := s.agg.deltas()
	if len(deltas) == 0 {
		return
	}
	s.out.Write(ctx, len(deltas), func(ctx context.Context) error { return s.store.AddCounts(ctx, deltas) })
}

// count adds the fresh events of changes to the aggregator (s.mu held).
func (s *Stats) count(changes []engine.VisitorChange) {
	now := s.cfg.Now().Unix()
	a := &s.agg
	late := 0
	for _, res := range resolutions {
		for ci := range changes {
			fresh := changes[ci].Fresh
			for ei := range fresh {
				ev := &fresh[ei]
				if ev.Item == "" && ev.Offer == "" {
					continue
				}
				start := res.StartOf(ev.Time.Unix())
				exp := s.cfg.Retention.ExpireAt(res, start)
				if exp != 0 && exp <= now {
					late++
					continue
				}
				if ev.Item != "" {
					a.add(res, KindItem, ev.Item, start, exp, ev.Type, ev.Value)
				}
				if ev.Offer != "" {
					a.add(res, KindOffer, ev.Offer, start, exp, ev.Type, ev.Value)
				}
			}
		}
	}
	s.out.Skip(late)
}

// Flush writes the counts held back by Config.FlushEvery now, and returns
// once they are written (or their write failed: logged and counted); it
// does nothing without FlushEvery. Series flushes first, so that a read
// after an applied event sees it; the engine flushes when it stops.
func (s *Stats) Flush(ctx context.Context) {
	s.out.Flush(ctx, &s.mu, func() (int, func(context.Context) error) {
		deltas := slices.Clone(s.agg.deltas())
		s.agg.reset()
		return len(deltas), func(ctx context.Context) error { return s.store.AddCounts(ctx, deltas) }
	})
}

// Series returns the buckets of subject at res that overlap [from, to),
// every one of them in ascending order, empty buckets included (with nil
// maps): from the bucket holding from to the bucket holding the last
// instant before to. Buckets past their retention read as empty. Errors
// wrapping engine.ErrInvalid name the parameter: an invalid res or
// subject, to not after from, or more than Config.MaxPoints buckets.
func (s *Stats) Series(ctx context.Context, subject Subject, res Resolution, from, to time.Time) ([]Point, error) {
	first, n, err := s.Span(res, from, to)
	if err != nil {
		return nil, err
	}
	if !subject.Kind.Valid() || subject.ID == "" {
		return nil, fmt.Errorf("stats: series: %w: subject: %v is not an item or offer id", engine.ErrInvalid, subject)
	}
	s.Flush(ctx)
	w := res.seconds()
	got, err := s.store.Counts(ctx, res, subject, time.Unix(first, 0), time.Unix(first+int64(n)*w, 0))
	if err != nil {
		return nil, fmt.Errorf("stats: series: %w", err)
	}
	out := make([]Point, n)
	for i := range out {
		out[i].Start = time.Unix(first+int64(i)*w, 0).UTC()
	}
	for _, p := range got {
		i := (p.Start.Unix() - first) / w
		if i < 0 || i >= int64(n) || out[i].Start.Unix() != p.Start.Unix() {
			return nil, fmt.Errorf("stats: series: the store returned bucket %v outside [%v, %v) or misaligned", p.Start, out[0].Start, out[n-1].Start.Add(res.Duration()))
		}
		out[i].Counts, out[i].Sums = p.Counts, p.Sums
	}
	return out, nil
}

// Span returns the first bucket start (Unix seconds) and the number of
// buckets of res that overlap [from, to), or an error wrapping
// engine.ErrInvalid naming the parameter (resolution, from, to) when res
// is invalid, to is not after from, or the range holds more than
// Config.MaxPoints buckets.
func (s *Stats) Span(res Resolution, from, to time.Time) (first int64, n int, err error) {
	if !res.Valid() {
		return 0, 0, fmt.Errorf("stats: %w: resolution: %v is not 15m, 1h or 1d", engine.ErrInvalid, res)
	}
	if !to.After(from) {
		return 0, 0, fmt.Errorf("stats: %w: from, to: from %s is not before to %s", engine.ErrInvalid,
			from.UTC().Format(time.RFC3339Nano), to.UTC().Format(time.RFC3339Nano))
	}
	first = res.StartOf(from.Unix())
	// The bucket of the last instant before to.
	lastSec := to.Unix()
	if to.Nanosecond() == 0 {
		lastSec--
	}
	last := res.StartOf(lastSec)
	count := (last-first)/res.seconds() + 1
	if count > int64(s.cfg.MaxPoints) {
		return 0, 0, fmt.Errorf("stats: %w: from, to: the range holds %d buckets of %s, more than the maximum %d (narrow the range or use a coarser resolution)",
			engine.ErrInvalid, count, res, s.cfg.MaxPoints)
	}
	return first, int(count), nil
}

// MaxBuckets bounds the range of one Store.Counts call, in buckets: a
// larger range is engine.ErrInvalid (stats.Series asks for at most
// Config.MaxPoints).
const MaxBuckets = 100_000

// Starts returns the first bucket start (Unix seconds) and the number of
// buckets of res whose start lies in [from, to): the keys a Store's Counts
// reads. n is 0 when there are none; an invalid res, or a range of more
// than MaxBuckets buckets, is engine.ErrInvalid.
func Starts(res Resolution, from, to time.Time) (first int64, n int, err error) {
	if !res.Valid() {
		return 0, 0, fmt.Errorf("%w: resolution: %v is not 15m, 1h or 1d", engine.ErrInvalid, res)
	}
	w := res.seconds()
	lo := from.Unix()
	if from.Nanosecond() != 0 {
		lo++ // the first whole second at or after from
	}
	first = res.StartOf(lo)
	if first < lo {
		first += w
	}
	hi := to.Unix() // bucket starts < to: starts <= hi, less one when to is a whole second
	if to.Nanosecond() == 0 {
		hi--
	}
	if hi < first {
		return first, 0, nil
	}
	count := (res.StartOf(hi)-first)/w + 1
	if count > MaxBuckets {
		return 0, 0, fmt.Errorf("%w: from, to: the range holds %d buckets of %s, more than %d", engine.ErrInvalid, count, res, MaxBuckets)
	}
	return first, int(count), nil
}

// MaxPoints returns the largest number of buckets of one Series.
func (s *Stats) MaxPoints() int { return s.cfg.MaxPoints }

// newWriter returns the batch writer of Stats and its instruments.
func newWriter(cfg Config) *batchwrite.Writer {
	return batchwrite.New(batchwrite.Config{
		Timeout:    cfg.WriteTimeout,
		Logger:     cfg.Logger.With("component", "stats"),
		Failed:     "counters not written",
		Deltas:     prometheus.CounterOpts{Name: "kairos_stats_deltas_total", Help: "Counter increments written (one per resolution, subject, bucket and event type of a batch)."},
		Errors:     prometheus.CounterOpts{Name: "kairos_stats_write_errors_total", Help: "Batches whose counters could not be written (their counts are lost)."},
		Skipped:    prometheus.CounterOpts{Name: "kairos_stats_late_total", Help: "Event counts skipped because their bucket had already expired (per resolution)."},
		Write:      prometheus.HistogramOpts{Name: "kairos_stats_write_seconds", Help: "Time to write one batch's counters to the store.", Buckets: prometheus.ExponentialBuckets(5e-5, 2, 14)},
		Registerer: cfg.Registerer,
		FlushEvery: cfg.FlushEvery,
	})
}
