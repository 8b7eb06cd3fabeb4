package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/stats"
	"github.com/kairoshq/kairos/signals"
)

// Interface guard.
var _ stats.Store = (*Store)(nil)

// sumSuffix ends the hash field of a type's sum of values.
const sumSuffix = ":v"

// countKey returns the key of one counter hash: see the package
// documentation for the layout. The bucket start is the last segment, so
// ids with ':' cannot collide.
func (s *Store) countKey(res stats.Resolution, sub stats.Subject, start int64) string {
	var b strings.Builder
	b.Grow(len(s.p) + 3 + 3 + 3 + len(sub.ID) + 1 + 11)
	b.WriteString(s.p)
	b.WriteString("st:")
	b.WriteString(res.String())
	b.WriteByte(':')
	b.WriteByte(byte(sub.Kind))
	b.WriteByte(':')
	b.WriteString(sub.ID)
	b.WriteByte(':')
	b.WriteString(strconv.FormatInt(start, 10))
	return b.String()
}

// AddCounts adds the deltas in one MULTI/EXEC transaction (one round
// trip): per delta an HINCRBY of the type's field by the count and, when
// the sum is not zero, an HINCRBYFLOAT of "<type>:v"; per counter hash
// (consecutive deltas of the same resolution, subject and bucket, as
// stats.Stats emits them, share one) an EXPIREAT of its ExpireAt, when it
// is not 0. A malformed delta fails the call before anything is sent.
func (s *Store) AddCounts(ctx context.Context, deltas []stats.Delta) error {
	for i := range deltas {
		if err := deltas[i].Check(); err != nil {
			return fmt.Errorf("redisstore: add counts: deltas[%d]: %w", i, err)
		}
	}
	if err := ctx.Err(); err != nil || len(deltas) == 0 {
		return wrap("add counts", err)
	}
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		var key string
		for i := range deltas {
			d := &deltas[i]
			if i == 0 || !sameHash(d, &deltas[i-1]) {
				key = s.countKey(d.Res, d.Subject, d.Start)
			}
			if d.Count != 0 {
				p.HIncrBy(ctx, key, string(d.Type), d.Count)
			}
			if d.Sum != 0 {
				p.HIncrByFloat(ctx, key, string(d.Type)+sumSuffix, d.Sum)
			}
			if d.ExpireAt != 0 && (i == len(deltas)-1 || !sameHash(d, &deltas[i+1])) {
				p.ExpireAt(ctx, key, time.Unix(d.ExpireAt, 0))
			}
		}
		return nil
	})
	return wrap("add counts", err)
}

func sameHash(a, b *stats.Delta) bool {
	return a.Res == b.Res && a.Start == b.Start && a.Subject == b.Subject
}

// Counts reads the counter hash of every bucket start in [from, to) with
// one pipeline of HGETALLs (one round trip); Redis has dropped the
// expired ones. A range of more than stats.MaxBuckets buckets is
// engine.ErrInvalid.
func (s *Store) Counts(ctx context.Context, res stats.Resolution, sub stats.Subject, from, to time.Time) ([]stats.Point, error) {
	first, n, err := stats.Starts(res, from, to)
	if err != nil {
		return nil, fmt.Errorf("redisstore: counts: %w", err)
	}
	if n == 0 {
		return []stats.Point{}, wrap("counts", ctx.Err())
	}
	w := int64(res.Duration() / time.Second)
	cmds := make([]*redis.MapStringStringCmd, n)
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range cmds {
			cmds[i] = p.HGetAll(ctx, s.countKey(res, sub, first+int64(i)*w))
		}
		return nil
	})
	if err != nil {
		return nil, wrap("counts", err)
	}
	out := []stats.Point{}
	for i, c := range cmds {
		if len(c.Val()) == 0 {
			continue
		}
		start := first + int64(i)*w
		p, err := decodeCounts(c.Val())
		if err != nil {
			return nil, fmt.Errorf("redisstore: counts: %s: %w", s.countKey(res, sub, start), err)
		}
		if p.Counts == nil && p.Sums == nil {
			continue
		}
		p.Start = time.Unix(start, 0).UTC()
		out = append(out, p)
	}
	return out, nil
}

var errCorruptCounts = errors.New("corrupt counter hash")

// decodeCounts reads a counter hash: "<type>" → count, "<type>:v" → sum.
// Zero fields are left out.
func decodeCounts(h map[string]string) (stats.Point, error) {
	var p stats.Point
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

// CountTTL returns the time to live of the counter hash of a bucket (for
// tests and tools): -1 when it never expires, engine.ErrNotFound when it
// does not exist.
func (s *Store) CountTTL(ctx context.Context, res stats.Resolution, sub stats.Subject, start int64) (time.Duration, error) {
	d, err := s.rdb.PTTL(ctx, s.countKey(res, sub, start)).Result()
	if err != nil {
		return 0, wrap("count ttl", err)
	}
	switch d { // go-redis passes Redis's -2 and -1 through as nanoseconds
	case -2:
		return 0, fmt.Errorf("redisstore: count ttl: %w", engine.ErrNotFound)
	case -1:
		return -1, nil
	}
	return d, nil
}
