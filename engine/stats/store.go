package stats

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kairoshq/kairos/engine/storage"
	"github.com/kairoshq/kairos/signals"
)

// Interface guard.
var _ Store = (*MapStore)(nil)

// MapStore is the Store of every backend, written once on storage.Maps.
//
// Layout: one map per (resolution, subject, bucket start), under the key
// "st:<res>:<kind byte>:<subject id>:<start in Unix s>" (the start is the
// last segment, so ids holding ':' cannot collide). Its fields are
// "<type>" → the count (an integer) and "<type>:v" → the sum of the
// values (a float, written only when a delta's sum is not zero). The map
// expires at the bucket's ExpireAt (none when 0). Counters are only added
// to, so the writes of several replicas commute.
type MapStore struct {
	m storage.Maps
}

// NewStore returns the counters kept in m.
func NewStore(m storage.Maps) *MapStore { return &MapStore{m: m} }

// sumSuffix ends the field of a type's sum of values.
const sumSuffix = ":v"

// CountKey returns the key of the map of one bucket.
func CountKey(res Resolution, sub Subject, start int64) string {
	var buf [64]byte
	b := append(buf[:0], "st:"...)
	b = append(b, res.String()...)
	b = append(b, ':', byte(sub.Kind), ':')
	b = append(b, sub.ID...)
	b = append(b, ':')
	return string(strconv.AppendInt(b, start, 10))
}

// AddCounts applies every delta in one storage.Txn: per delta an OpIncr
// of the type's field by the count and, when the sum is not zero, an
// OpIncrFloat of "<type>:v"; per bucket map (consecutive deltas of the
// same resolution, subject and start, as Stats emits them, share one) an
// OpExpire at its ExpireAt when it is not 0. A malformed delta fails the
// call before anything is applied.
func (s *MapStore) AddCounts(ctx context.Context, deltas []Delta) error {
	for i := range deltas {
		if err := deltas[i].Check(); err != nil {
			return fmt.Errorf("stats store: add counts: deltas[%d]: %w", i, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("stats store: add counts: %w", err)
	}
	if len(deltas) == 0 {
		return nil
	}
	buf := opsPool.Get().(*[]storage.Op)
	defer func() {
		clear(*buf)
		opsPool.Put(buf)
	}()
	ops := (*buf)[:0]
	var key string
	for i := range deltas {
		d := &deltas[i]
		if i == 0 || !sameBucket(d, &deltas[i-1]) {
			key = CountKey(d.Res, d.Subject, d.Start)
		}
		if d.Count != 0 {
			ops = append(ops, storage.Op{Kind: storage.OpIncr, Key: key, Field: string(d.Type), Int: d.Count})
		}
		if d.Sum != 0 {
			ops = append(ops, storage.Op{Kind: storage.OpIncrFloat, Key: key, Field: sumField(d.Type), Float: d.Sum})
		}
		if d.ExpireAt != 0 && (i == len(deltas)-1 || !sameBucket(d, &deltas[i+1])) {
			ops = append(ops, storage.Op{Kind: storage.OpExpire, Key: key, At: time.Unix(d.ExpireAt, 0)})
		}
	}
	*buf = ops
	if err := s.m.Apply(ctx, storage.Txn{Ops: ops, Lazy: true}); err != nil {
		return fmt.Errorf("stats store: add counts: %w", err)
	}
	return nil
}

// opsPool holds the ops of AddCounts between calls (a consumed batch
// writes hundreds; Apply does not keep them).
var opsPool = sync.Pool{New: func() any { return new([]storage.Op) }}

// sumFields holds the sum field of each known event type: every batch
// writes them.
var sumFields = func() map[signals.Type]string {
	m := map[signals.Type]string{}
	for _, t := range signals.Types() {
		m[t] = string(t) + sumSuffix
	}
	return m
}()

func sumField(t signals.Type) string {
	if f, ok := sumFields[t]; ok {
		return f
	}
	return string(t) + sumSuffix
}

func sameBucket(a, b *Delta) bool {
	return a.Res == b.Res && a.Start == b.Start && a.Subject == b.Subject
}

// Counts reads the map of every bucket start in [from, to) with one
// Maps call; the backend leaves out the expired ones. A range of more
// than MaxBuckets buckets is engine.ErrInvalid.
func (s *MapStore) Counts(ctx context.Context, res Resolution, sub Subject, from, to time.Time) ([]Point, error) {
	first, n, err := Starts(res, from, to)
	if err != nil {
		return nil, fmt.Errorf("stats store: counts: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("stats store: counts: %w", err)
	}
	if n == 0 {
		return []Point{}, nil
	}
	w := int64(res.Duration() / time.Second)
	keys := make([]string, n)
	for i := range keys {
		keys[i] = CountKey(res, sub, first+int64(i)*w)
	}
	maps, err := s.m.Maps(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("stats store: counts: %w", err)
	}
	out := []Point{}
	for i, h := range maps {
		if len(h) == 0 {
			continue
		}
		p, err := decodeCounts(h)
		if err != nil {
			return nil, fmt.Errorf("stats store: counts: %s: %w", keys[i], err)
		}
		if p.Counts == nil && p.Sums == nil {
			continue
		}
		p.Start = time.Unix(first+int64(i)*w, 0).UTC()
		out = append(out, p)
	}
	return out, nil
}

var errCorruptCounts = errors.New("corrupt counter map")

// decodeCounts reads a bucket map: "<type>" → count, "<type>:v" → sum.
// Zero fields are left out.
func decodeCounts(h map[string]string) (Point, error) {
	var p Point
	for f, v := range h {
		if typ, ok := strings.CutSuffix(f, sumSuffix); ok {
			x, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return p, fmt.Errorf("%w: field %q: %q is not a number", errCorruptCounts, f, v)
			}
			if x != 0 {
				if p.Sums == nil {
					p.Sums = map[signals.Type]float64{}
				}
				p.Sums[signals.Type(typ)] = x
			}
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return p, fmt.Errorf("%w: field %q: %q is not an integer", errCorruptCounts, f, v)
		}
		if n != 0 {
			if p.Counts == nil {
				p.Counts = map[signals.Type]int64{}
			}
			p.Counts[signals.Type(f)] = n
		}
	}
	return p, nil
}
