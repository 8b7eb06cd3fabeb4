package offline

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/kairoshq/kairos/offline/archive"
	"github.com/kairoshq/kairos/signals"
)

// maxTargets bounds the tail items ranked per user (the first ones).
const maxTargets = 100

// userSpan is what the first pass learns of a user: the first and last
// learning event, by time and by archive record.
type userSpan struct {
	first, last       int64 // unix nanoseconds
	firstSeq, lastSeq uint64
}

// readArchive scans the range twice: the first pass finds its extent and
// each user's span to place the tail, the second aggregates the events.
func readArchive(ctx context.Context, src RecordSource, live *LiveModel, cfg RetrainConfig, p *progress) (*RetrainResult, *retrainData, error) {
	r := &RetrainResult{}
	d := &retrainData{users: newIndex(), items: newIndex(), targets: map[int32][]int32{}, threads: cfg.Params.Threads}
	var first, last time.Time
	var spans []userSpan
	times := newReservoir(10_000, 7)
	dedup := signals.NewIDWindow(cfg.DedupWindow)
	if err := src.ScanRecords(ctx, archive.Query{From: cfg.From, To: cfg.To}, func(rec archive.Record) error {
		ev := &rec.Event
		t := ev.Time.Time
		if first.IsZero() || t.Before(first) {
			first = t
		}
		if t.After(last) {
			last = t
		}
		r.ArchiveSeq = max(r.ArchiveSeq, rec.Seq)
		if dedup.Seen(ev.ID) || learningWeight(cfg.Weights, ev) <= 0 {
			return nil
		}
		u := d.users.add(ev.Visitor)
		ns := t.UnixNano()
		times.add(ns)
		if int(u) == len(spans) {
			spans = append(spans, userSpan{first: ns, last: ns, firstSeq: rec.Seq, lastSeq: rec.Seq})
		}
		s := &spans[u]
		s.first, s.last = min(s.first, ns), max(s.last, ns)
		s.firstSeq, s.lastSeq = min(s.firstSeq, rec.Seq), max(s.lastSeq, rec.Seq)
		return nil
	}); err != nil {
		return nil, nil, fmt.Errorf("offline: read archive: %w", err)
	}
	r.Cutoff = last
	inTail := d.placeTail(r, live, cfg, spans, times.sorted())
	d.all = newPairSet(cfg.halfLives(live))
	d.pre = newPairSet(cfg.halfLives(live))
	dedup = signals.NewIDWindow(cfg.DedupWindow)
	err := src.ScanRecords(ctx, archive.Query{From: cfg.From, To: cfg.To, UntilSeq: r.ArchiveSeq}, func(rec archive.Record) error {
		ev := &rec.Event
		if dedup.Seen(ev.ID) {
			r.Duplicates++
			return nil
		}
		r.Events++
		p.read(r.Events)
		w := learningWeight(cfg.Weights, ev)
		if w <= 0 {
			return nil
		}
		u, i := d.users.add(ev.Visitor), d.items.add(ev.Item)
		t := ev.Time.UnixNano()
		d.all.add(u, i, w, t)
		if !inTail(rec) {
			d.pre.add(u, i, w, t)
			return nil
		}
		if _, seen := d.pre.pos[pairKey(u, i)]; !seen && !slices.Contains(d.targets[u], i) && len(d.targets[u]) < maxTargets {
			d.targets[u] = append(d.targets[u], i)
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("offline: read archive: %w", err)
	}
	// Only users with history before the tail can be evaluated.
	for u := range d.targets {
		if int(u) >= len(d.pre.seen) || !d.pre.seen[u] {
			delete(d.targets, u)
		}
	}
	r.Users, r.Items = len(d.users.ids), len(d.items.ids)
	return r, d, nil
}

// placeTail chooses where the held-out tail starts and returns the test
// of a record's membership (see RetrainConfig.Holdout).
func (d *retrainData) placeTail(r *RetrainResult, live *LiveModel, cfg RetrainConfig, spans []userSpan, times []int64) func(archive.Record) bool {
	if cfg.Holdout > 0 {
		b := r.Cutoff.Add(-cfg.Holdout)
		r.HoldoutFrom = b
		d.reference = ReferenceRecipe
		return func(rec archive.Record) bool { return !rec.Event.Time.Before(b) }
	}
	// A snapshot's record number places the tail only when it numbers
	// the records read here: both from one archive, not the history.
	if live != nil && live.Snapshot != nil && !cfg.HistoryCut && !live.Snapshot.Meta.HistoryCut {
		if seq := live.Snapshot.Meta.ArchiveSeq; seq > 0 && seq < r.ArchiveSeq {
			n := 0
			for _, s := range spans {
				if s.firstSeq <= seq && s.lastSeq > seq {
					n++
				}
			}
			if n >= cfg.MinUsers {
				d.reference = ReferenceSnapshot
				r.HoldoutFrom = live.Snapshot.Meta.Cutoff
				return func(rec archive.Record) bool { return rec.Seq > seq }
			}
		}
	}
	b := straddleBoundary(spans, times, cfg.TargetUsers)
	r.HoldoutFrom = b
	d.reference = ReferenceRecipe
	return func(rec archive.Record) bool { return !rec.Event.Time.Before(b) }
}

// straddleBoundary returns the latest time between the 50th and the 90th
// percentile of the learning events' times (so that the tail holds 10 % to
// 50 % of them) at which at least target users have events on both sides,
// else the one with the most such users (the latest of equals). times is a
// sorted sample of the events' times.
func straddleBoundary(spans []userSpan, times []int64, target int) time.Time {
	if len(times) == 0 {
		return time.Time{}
	}
	best, bestN := int64(0), -1
	for q := 90; q >= 50; q-- {
		b := times[min(len(times)*q/100, len(times)-1)]
		n := 0
		for _, u := range spans {
			if u.first < b && u.last >= b {
				n++
			}
		}
		if n >= target {
			return time.Unix(0, b).UTC()
		}
		if n > bestN {
			best, bestN = b, n
		}
	}
	return time.Unix(0, best).UTC()
}

// reservoir keeps a uniform sample of a stream of times (Vitter's
// algorithm R), seeded.
type reservoir struct {
	n    int
	keep []int64
	rng  *rand.Rand
}

func newReservoir(size int, seed uint64) *reservoir {
	return &reservoir{keep: make([]int64, 0, size), rng: rand.New(rand.NewPCG(seed, 0))}
}

func (r *reservoir) add(t int64) {
	r.n++
	if len(r.keep) < cap(r.keep) {
		r.keep = append(r.keep, t)
		return
	}
	if j := r.rng.IntN(r.n); j < len(r.keep) {
		r.keep[j] = t
	}
}

// sorted returns the sample in ascending order.
func (r *reservoir) sorted() []int64 {
	slices.Sort(r.keep)
	return r.keep
}
