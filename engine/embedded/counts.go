package embedded

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"time"

	"github.com/kairoshq/kairos/engine/stats"
	"github.com/kairoshq/kairos/signals"
)

// Interface guard.
var _ stats.Store = (*Store)(nil)

// countsPruneEvery is how often the background goroutine drops expired
// counter buckets.
const countsPruneEvery = time.Minute

// countGroupKey identifies the counters of one bucket of one resolution,
// over every subject: the unit of expiry and pruning.
type countGroupKey struct {
	res   stats.Resolution
	start int64 // Unix seconds
}

// countGroup holds the counters of one bucket. Its cells map is modified
// in place under the state lock; state.clone copies it.
type countGroup struct {
	expireAt int64 // Unix seconds; 0: never
	cells    map[countCellKey]countCell
}

type countCellKey struct {
	kind stats.Kind
	id   string
	typ  signals.Type
}

type countCell struct {
	n   int64
	sum float64
}

func (g *countGroup) expired(now int64) bool { return g.expireAt != 0 && g.expireAt <= now }

// applyCounts adds deltas to the counters. A bucket takes the ExpireAt of
// the last delta written to it.
func (st *state) applyCounts(deltas []stats.Delta) {
	for i := range deltas {
		d := &deltas[i]
		if d.Count == 0 && d.Sum == 0 {
			continue
		}
		gk := countGroupKey{res: d.Res, start: d.Start}
		g := st.counts[gk]
		if g == nil {
			g = &countGroup{cells: make(map[countCellKey]countCell)}
			st.counts[gk] = g
		}
		g.expireAt = d.ExpireAt
		ck := countCellKey{kind: d.Subject.Kind, id: d.Subject.ID, typ: d.Type}
		c := g.cells[ck]
		c.n += d.Count
		c.sum += d.Sum
		g.cells[ck] = c
	}
}

// pruneCounts drops the buckets expired at now (Unix seconds) and returns
// how many it dropped.
func (st *state) pruneCounts(now int64) int {
	n := 0
	for k, g := range st.counts {
		if g.expired(now) {
			delete(st.counts, k)
			n++
		}
	}
	return n
}

// cloneCounts copies the counters (each bucket's map too: they are
// modified in place).
func cloneCounts(m map[countGroupKey]*countGroup) map[countGroupKey]*countGroup {
	out := make(map[countGroupKey]*countGroup, len(m))
	for k, g := range m {
		out[k] = &countGroup{expireAt: g.expireAt, cells: maps.Clone(g.cells)}
	}
	return out
}

// AddCounts adds the deltas to the counters: one log record (recCounts),
// applied in memory under the state lock, so readers see the whole call
// or none of it. It does not wait for an fsync, whatever Config.Sync:
// counters are derived data, the record has reached the operating system
// when AddCounts returns (a crash of the process loses nothing), and the
// next fsync (the next Commit's, with SyncAlways) makes it durable; a
// crash of the machine may lose the counters written since. A malformed
// delta fails the call (engine.ErrInvalid) before anything is written.
func (s *Store) AddCounts(ctx context.Context, deltas []stats.Delta) error {
	for i := range deltas {
		if err := deltas[i].Check(); err != nil {
			return fmt.Errorf("embedded: add counts: deltas[%d]: %w", i, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("embedded: add counts: %w", err)
	}
	if len(deltas) == 0 {
		return nil
	}
	b := sealFrame(encodeCounts(s.getBuf(), deltas))
	defer s.putBuf(b)
	s.mu.Lock()
	_, err := s.appendLocked(b)
	if err == nil {
		s.st.applyCounts(deltas)
	}
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("embedded: add counts: %w", err)
	}
	return nil
}

// Counts returns the buckets of sub at res whose start lies in [from,
// to), leaving out buckets expired by the store's clock (Config.Now) even
// before the background prune drops them.
func (s *Store) Counts(ctx context.Context, res stats.Resolution, sub stats.Subject, from, to time.Time) ([]stats.Point, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("embedded: counts: %w", err)
	}
	first, n, err := stats.Starts(res, from, to)
	if err != nil {
		return nil, fmt.Errorf("embedded: counts: %w", err)
	}
	types := signals.Types()
	w := int64(res.Duration() / time.Second)
	now := s.cfg.Now().Unix()
	out := []stats.Point{}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, errClosed
	}
	for i := range int64(n) {
		start := first + i*w
		g := s.st.counts[countGroupKey{res: res, start: start}]
		if g == nil || g.expired(now) {
			continue
		}
		var p stats.Point
		for _, typ := range types {
			c, ok := g.cells[countCellKey{kind: sub.Kind, id: sub.ID, typ: typ}]
			if !ok {
				continue
			}
			if c.n != 0 {
				if p.Counts == nil {
					p.Counts = map[signals.Type]int64{}
				}
				p.Counts[typ] = c.n
			}
			if c.sum != 0 {
				if p.Sums == nil {
					p.Sums = map[signals.Type]float64{}
				}
				p.Sums[typ] = c.sum
			}
		}
		if p.Counts != nil || p.Sums != nil {
			p.Start = time.Unix(start, 0).UTC()
			out = append(out, p)
		}
	}
	return out, nil
}

// pruneCounts drops the expired buckets (by Config.Now).
func (s *Store) pruneCounts() {
	now := s.cfg.Now().Unix()
	s.mu.Lock()
	n := s.st.pruneCounts(now)
	s.mu.Unlock()
	if n > 0 {
		s.log.LogAttrs(context.Background(), slog.LevelDebug, "expired counter buckets dropped", slog.Int("buckets", n))
	}
}

// encodeCounts appends a counts record: consecutive deltas of the same
// resolution, bucket and expiry form one group.
//
//	recCounts | uvarint groups | per group: res byte, varint start, varint expire_at, uvarint cells,
//	per cell: kind byte, id (uvarint length, bytes), type (same), uvarint count,
//	          sum flag byte (0: zero; 1: followed by the float64, little-endian)
func encodeCounts(b []byte, deltas []stats.Delta) []byte {
	b = append(b, recCounts)
	groups := 0
	for i := range deltas {
		if i == 0 || !sameCountGroup(&deltas[i], &deltas[i-1]) {
			groups++
		}
	}
	b = binary.AppendUvarint(b, uint64(groups))
	for i := 0; i < len(deltas); {
		j := i + 1
		for j < len(deltas) && sameCountGroup(&deltas[j], &deltas[i]) {
			j++
		}
		b = encodeCountGroup(b, deltas[i].Res, deltas[i].Start, deltas[i].ExpireAt, j-i, func(b []byte, k int) []byte {
			d := &deltas[i+k]
			return appendCountCell(b, d.Subject.Kind, d.Subject.ID, d.Type, countCell{n: d.Count, sum: d.Sum})
		})
		i = j
	}
	return b
}

func sameCountGroup(a, b *stats.Delta) bool {
	return a.Res == b.Res && a.Start == b.Start && a.ExpireAt == b.ExpireAt
}

func encodeCountGroup(b []byte, res stats.Resolution, start, expireAt int64, cells int, cell func([]byte, int) []byte) []byte {
	b = append(b, byte(res))
	b = binary.AppendVarint(b, start)
	b = binary.AppendVarint(b, expireAt)
	b = binary.AppendUvarint(b, uint64(cells))
	for k := range cells {
		b = cell(b, k)
	}
	return b
}

func appendCountCell(b []byte, kind stats.Kind, id string, typ signals.Type, c countCell) []byte {
	b = append(b, byte(kind))
	b = appendStr(b, id)
	b = appendStr(b, string(typ))
	b = binary.AppendUvarint(b, uint64(c.n))
	if c.sum == 0 {
		return append(b, 0)
	}
	return binary.LittleEndian.AppendUint64(append(b, 1), math.Float64bits(c.sum))
}

// decodeCounts decodes the payload of a counts record (after the type
// byte) into deltas, each checked.
func decodeCounts(r *reader) ([]stats.Delta, error) {
	groups := r.count(4)
	var out []stats.Delta
	for range groups {
		res := stats.Resolution(r.byte())
		start, expireAt := r.varint(), r.varint()
		cells := r.count(5)
		for range cells {
			d := stats.Delta{Res: res, Start: start, ExpireAt: expireAt}
			d.Subject.Kind = stats.Kind(r.byte())
			d.Subject.ID = r.str()
			d.Type = signals.Type(r.str())
			n := r.uvarint()
			if n > math.MaxInt64 {
				r.fail("count %d", n)
			}
			d.Count = int64(n)
			switch r.byte() {
			case 0:
			case 1:
				if s := r.bytes(8); s != nil {
					d.Sum = math.Float64frombits(binary.LittleEndian.Uint64(s))
				}
			default:
				r.fail("bad sum flag")
			}
			if r.err != nil {
				return nil, r.err
			}
			if err := d.Check(); err != nil {
				return nil, fmt.Errorf("%w: %v", errCorruptRecord, err)
			}
			out = append(out, d)
		}
	}
	return out, r.done()
}

// snapCountsChunk bounds the cells of one snapshot counts record.
const snapCountsChunk = 1 << 12

// writeCounts emits the counters as counts records, one bucket (or part
// of one) each.
func writeCounts(counts map[countGroupKey]*countGroup, emit func(func([]byte) []byte) error) error {
	type cellKV struct {
		k countCellKey
		c countCell
	}
	chunk := make([]cellKV, 0, snapCountsChunk)
	for gk, g := range counts {
		flush := func() error {
			if len(chunk) == 0 {
				return nil
			}
			err := emit(func(b []byte) []byte {
				b = binary.AppendUvarint(append(b, recCounts), 1)
				return encodeCountGroup(b, gk.res, gk.start, g.expireAt, len(chunk), func(b []byte, k int) []byte {
					return appendCountCell(b, chunk[k].k.kind, chunk[k].k.id, chunk[k].k.typ, chunk[k].c)
				})
			})
			chunk = chunk[:0]
			return err
		}
		for k, c := range g.cells {
			if chunk = append(chunk, cellKV{k, c}); len(chunk) == snapCountsChunk {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		if err := flush(); err != nil {
			return err
		}
	}
	return nil
}
