package model

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
)

// Item neighbours: an item-kNN part of the blend.
//
// Factor models smooth what they learn through k dimensions; on sparse
// logs with strong item-to-item structure (sessions, things bought or
// viewed together) the plain co-occurrence of two items says more than
// the factors can hold (Sarwar et al. 2001; Ludewig and Jannach 2018 on
// sessions). Neighbours keeps, for each item i, its most similar items j
// by the asymmetric cosine of their training users (Aiolli 2013), with a
// shrinkage h against pairs seen once or twice:
//
//	sim(i, j) = c_ij / (n_i^a · n_j^(1−a) + h)
//
// c_ij being the users who have both, n_i the users of i. A visitor's
// neighbour score of item j is Σ sim(h, j) over the items h of the
// visitor's history; the blend adds its standardised log,
// η·z(log(1 + nb_j)), to the personal part (Blend.Neighbours). η is
// fitted on validation with ρ and κ (eval.FitBlend); 0 leaves the ranking
// as it was.

// NeighbourConfig sets how Neighbours are built.
type NeighbourConfig struct {
	// K is the number of neighbours kept per item.
	K int
	// Alpha (a) weighs the two items' popularity in the cosine's
	// denominator, in [0, 1]: 0.5 is the cosine, higher values favour
	// popular neighbours less.
	Alpha float64
	// Shrink (h) is added to the denominator, >= 0.
	Shrink float64
	// MaxHistory leaves users with more items out of the counts (a
	// crawler's or a shop's own account co-occurs with everything), so
	// that one user cannot make the build quadratic in the catalogue.
	MaxHistory int
	// MaxEntries caps the table at about that many neighbours in all
	// (8 bytes each, in the snapshot and in every engine): on a catalogue
	// where items × K exceeds it each item keeps MaxEntries / items
	// neighbours (at least one). 0 leaves K alone.
	MaxEntries int
}

// DefaultNeighbourConfig returns the neighbours batch retrains build: 50
// per item, a = 0.8, h = 10, users of at most 2,000 items, at most 16M
// neighbours (128 MB; a catalogue of more than 320,000 items keeps fewer
// than 50 per item, 16 at 1M items).
func DefaultNeighbourConfig() NeighbourConfig {
	return NeighbourConfig{K: 50, Alpha: 0.8, Shrink: 10, MaxHistory: 2000, MaxEntries: 16 << 20}
}

// perItem returns the number of neighbours kept per item of a catalogue
// of the given size: K, lowered to MaxEntries / items when that is set
// and smaller (at least 1).
func (c NeighbourConfig) perItem(items int) int {
	if c.MaxEntries <= 0 || items <= 0 {
		return c.K
	}
	return max(min(c.K, c.MaxEntries/items), 1)
}

// Validate reports an out-of-range field.
func (c NeighbourConfig) Validate() error {
	if c.K < 1 || c.K > 1000 {
		return fmt.Errorf("model: neighbours k %d outside [1, 1000]", c.K)
	}
	if !(c.Alpha >= 0 && c.Alpha <= 1) {
		return fmt.Errorf("model: neighbours alpha %v outside [0, 1]", c.Alpha)
	}
	if !(c.Shrink >= 0) || math.IsInf(c.Shrink, 0) {
		return fmt.Errorf("model: neighbours shrink %v must be finite and >= 0", c.Shrink)
	}
	if c.MaxHistory < 2 {
		return fmt.Errorf("model: neighbours max history %d must be >= 2", c.MaxHistory)
	}
	if c.MaxEntries < 0 {
		return fmt.Errorf("model: neighbours max entries %d must be >= 0", c.MaxEntries)
	}
	return nil
}

// Neighbours holds each item row's neighbours (CSR): row i's are
// Idx[Ptr[i]:Ptr[i+1]] with similarities Sim[Ptr[i]:Ptr[i+1]], best first.
// A Neighbours is read-only once built and safe for concurrent readers.
type Neighbours struct {
	Ptr []int64
	Idx []int32
	Sim []float32
}

// Rows returns the number of item rows.
func (n *Neighbours) Rows() int { return max(len(n.Ptr)-1, 0) }

// Of returns row i's neighbours and their similarities (none for a row
// out of range).
func (n *Neighbours) Of(i int) ([]int32, []float32) {
	if i < 0 || i >= n.Rows() {
		return nil, nil
	}
	lo, hi := n.Ptr[i], n.Ptr[i+1]
	return n.Idx[lo:hi], n.Sim[lo:hi]
}

// Validate checks the shape: Ptr non-decreasing from 0 to len(Idx),
// every index a row, every similarity finite and > 0.
func (n *Neighbours) Validate() error {
	if len(n.Ptr) == 0 || n.Ptr[0] != 0 || n.Ptr[len(n.Ptr)-1] != int64(len(n.Idx)) || len(n.Idx) != len(n.Sim) {
		return errors.New("model: neighbours: pointers do not span the entries")
	}
	for i := 1; i < len(n.Ptr); i++ {
		if n.Ptr[i] < n.Ptr[i-1] {
			return fmt.Errorf("model: neighbours: row %d's pointer decreases", i-1)
		}
	}
	rows := int32(n.Rows())
	for e, j := range n.Idx {
		if j < 0 || j >= rows {
			return fmt.Errorf("model: neighbours: entry %d names row %d of %d", e, j, rows)
		}
		if s := n.Sim[e]; !(s > 0) || math.IsInf(float64(s), 0) {
			return fmt.Errorf("model: neighbours: entry %d has similarity %v", e, s)
		}
	}
	return nil
}

// BuildNeighbours computes the neighbours of every item of m (its users'
// co-occurrence, see the formula above) on every core, in chunks of
// items. Its cost is the sum over users of their (capped) items squared,
// plus a selection per item: 200,000 users of 25 items over 1M items take
// about 6 s on 2 cores (BenchmarkBuildNeighbours). The workers stop
// between chunks when ctx is done, and BuildNeighbours returns its error.
func BuildNeighbours(ctx context.Context, m *Matrix, c NeighbourConfig) (*Neighbours, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	b := newNeighbourBuild(m, c)
	chunks := make([]neighbourChunk, (m.Items()+neighbourChunkItems-1)/neighbourChunkItems)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(chunks)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := b.worker()
			for {
				n := int(next.Add(1)) - 1
				if n >= len(chunks) || ctx.Err() != nil {
					return
				}
				lo := n * neighbourChunkItems
				chunks[n] = w.chunk(lo, min(lo+neighbourChunkItems, m.Items()))
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("model: item neighbours: %w", err)
	}
	return joinChunks(chunks, m.Items()), nil
}

// neighbourChunkItems is the number of items a worker of BuildNeighbours
// takes at a time.
const neighbourChunkItems = 4096

// neighbourBuild holds what every worker of BuildNeighbours reads: the
// matrix, the config and each item's powers of its user count.
type neighbourBuild struct {
	m          *Matrix
	c          NeighbourConfig
	k          int
	powA, powB []float64
}

func newNeighbourBuild(m *Matrix, c NeighbourConfig) *neighbourBuild {
	b := &neighbourBuild{m: m, c: c, k: c.perItem(m.Items())}
	users := make([]float64, m.Items())
	for u := range m.Users() {
		for _, i := range b.hist(u) {
			users[i]++
		}
	}
	// The powers of the denominator, once per item.
	b.powA, b.powB = make([]float64, len(users)), make([]float64, len(users))
	for i, n := range users {
		b.powA[i], b.powB[i] = math.Pow(n, c.Alpha), math.Pow(n, 1-c.Alpha)
	}
	return b
}

// hist returns user u's items, none when they exceed MaxHistory.
func (b *neighbourBuild) hist(u int) []int32 {
	cols, _ := b.m.UserRow(u)
	if len(cols) > b.c.MaxHistory {
		return nil
	}
	return cols
}

// neighbourWorker is one worker's scratch: a co-occurrence count per item
// (all zero between items) and the items it touched.
type neighbourWorker struct {
	*neighbourBuild
	acc     []float64
	touched []int32
	cands   []Scored
}

func (b *neighbourBuild) worker() *neighbourWorker {
	return &neighbourWorker{neighbourBuild: b, acc: make([]float64, b.m.Items())}
}

// neighbourChunk is the neighbours of a run of items: counts[i] of them
// for its i-th item, in order.
type neighbourChunk struct {
	counts []int32
	idx    []int32
	sim    []float32
}

// chunk computes the neighbours of items [lo, hi).
func (w *neighbourWorker) chunk(lo, hi int) neighbourChunk {
	out := neighbourChunk{counts: make([]int32, hi-lo)}
	for i := lo; i < hi; i++ {
		best := w.item(i)
		for _, x := range best {
			out.idx = append(out.idx, x.Item)
			out.sim = append(out.sim, x.Score)
		}
		out.counts[i-lo] = int32(len(best))
	}
	return out
}

// item returns item i's best neighbours, best first (valid until the
// next call).
func (w *neighbourWorker) item(i int) []Scored {
	w.touched = w.touched[:0]
	rows, _ := w.m.ItemColumn(i)
	for _, u := range rows {
		for _, j := range w.hist(int(u)) {
			if int(j) == i {
				continue
			}
			if w.acc[j] == 0 {
				w.touched = append(w.touched, j)
			}
			w.acc[j]++
		}
	}
	w.cands = w.cands[:0]
	for _, j := range w.touched {
		s := w.acc[j] / (w.powA[i]*w.powB[j] + w.c.Shrink)
		w.acc[j] = 0
		if s > 0 && !math.IsInf(s, 0) {
			w.cands = append(w.cands, Scored{Item: j, Score: float32(s)})
		}
	}
	k := min(len(w.cands), w.k)
	selectBest(w.cands, k)
	best := w.cands[:k]
	slices.SortFunc(best, compareBest)
	return best
}

// joinChunks concatenates chunks, in order, into one table of items rows.
func joinChunks(chunks []neighbourChunk, items int) *Neighbours {
	total := 0
	for _, ch := range chunks {
		total += len(ch.idx)
	}
	out := &Neighbours{Ptr: make([]int64, items+1), Idx: make([]int32, 0, total), Sim: make([]float32, 0, total)}
	row := 0
	for n := range chunks {
		ch := &chunks[n]
		for _, c := range ch.counts {
			out.Ptr[row+1] = out.Ptr[row] + int64(c)
			row++
		}
		out.Idx = append(out.Idx, ch.idx...)
		out.Sim = append(out.Sim, ch.sim...)
		*ch = neighbourChunk{} // its memory can go while the rest is copied
	}
	return out
}

// Scores adds, for every neighbour j of the rows of history, sim(h, j)
// into dst (one entry per item row; rows beyond dst are skipped) and
// returns the rows it touched for the first time (appended to touched):
// the visitor's neighbour scores nb_j, whose other entries stay 0. dst
// must be all zero where the caller has not written.
func (n *Neighbours) Scores(dst []float32, history []int32, touched []int32) []int32 {
	for _, h := range history {
		idx, sim := n.Of(int(h))
		for e, j := range idx {
			if int(j) >= len(dst) {
				continue
			}
			if dst[j] == 0 {
				touched = append(touched, j)
			}
			dst[j] += sim[e]
		}
	}
	return touched
}

// LogMoments returns the mean and population standard deviation over
// items rows of log(1 + nb_j), nb being a visitor's neighbour scores of
// which only the touched rows are non-zero (Scores): the standardisation
// of the neighbour part over all items, computed from the touched rows
// alone.
func LogMoments(nb []float32, touched []int32, items int) (mean, sd float64) {
	if items <= 0 {
		return 0, 0
	}
	var sum, sq float64
	for _, j := range touched {
		f := math.Log1p(max(float64(nb[j]), 0))
		sum += f
		sq += f * f
	}
	n := float64(items)
	mean = sum / n
	return mean, math.Sqrt(max(sq/n-mean*mean, 0))
}

// Remap returns the neighbours with rows renumbered: row i of n becomes
// rows[i] of a table of size rows (entries of a negative row dropped).
// An engine uses it to place a snapshot's neighbours at its own rows.
func (n *Neighbours) Remap(rows []int32, size int) *Neighbours {
	at := func(i int32) int32 { // the new row of old row i, or -1
		if i < 0 || int(i) >= len(rows) || rows[i] < 0 || int(rows[i]) >= size {
			return -1
		}
		return rows[i]
	}
	// each calls fn with every entry kept, at its new rows.
	each := func(fn func(r, j int32, sim float32)) {
		for i := range min(n.Rows(), len(rows)) {
			r := at(int32(i))
			if r < 0 {
				continue
			}
			idx, sim := n.Of(i)
			for e, j := range idx {
				if nj := at(j); nj >= 0 {
					fn(r, nj, sim[e])
				}
			}
		}
	}
	// Two passes: count each new row's entries, then place them.
	out := &Neighbours{Ptr: make([]int64, size+1)}
	each(func(r, _ int32, _ float32) { out.Ptr[r+1]++ })
	for r := range size {
		out.Ptr[r+1] += out.Ptr[r]
	}
	out.Idx, out.Sim = make([]int32, out.Ptr[size]), make([]float32, out.Ptr[size])
	next := slices.Clone(out.Ptr[:size])
	each(func(r, j int32, sim float32) {
		out.Idx[next[r]], out.Sim[next[r]] = j, sim
		next[r]++
	})
	return out
}

// neighbourPtr returns the row pointers of rows with counts neighbours
// each (a count outside [0, maxNeighbours] is corrupt).
func neighbourPtr(counts []int32) ([]int64, error) {
	ptr := make([]int64, len(counts)+1)
	for i, c := range counts {
		if c < 0 || c > maxNeighbours {
			return nil, corrupt("item row %d has %d neighbours", i, c)
		}
		ptr[i+1] = ptr[i] + int64(c)
	}
	return ptr, nil
}

// neighboursMagic starts Neighbours.MarshalBinary's encoding.
var neighboursMagic = [4]byte{'K', 'N', 'B', '1'}

// MarshalBinary encodes n: "KNB1", the rows (uint64), each row's count
// (uint32), then the rows' indices (int32) and similarities (float32),
// little-endian.
func (n *Neighbours) MarshalBinary() ([]byte, error) {
	rows := n.Rows()
	b := make([]byte, 0, 12+4*rows+8*len(n.Idx))
	b = append(b, neighboursMagic[:]...)
	b = binary.LittleEndian.AppendUint64(b, uint64(rows))
	for i := range rows {
		b = binary.LittleEndian.AppendUint32(b, uint32(n.Ptr[i+1]-n.Ptr[i]))
	}
	for _, j := range n.Idx {
		b = binary.LittleEndian.AppendUint32(b, uint32(j))
	}
	for _, s := range n.Sim {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(s))
	}
	return b, nil
}

// UnmarshalBinary decodes what MarshalBinary wrote and validates it; a
// short, long or inconsistent encoding is an error wrapping ErrCorrupt.
func (n *Neighbours) UnmarshalBinary(b []byte) error {
	le := binary.LittleEndian
	if len(b) < 12 || [4]byte(b[:4]) != neighboursMagic {
		return corrupt("item neighbours: bad header")
	}
	rows := le.Uint64(b[4:])
	if rows > uint64(len(b)-12)/4 {
		return corrupt("item neighbours: %d rows in %d bytes", rows, len(b))
	}
	b = b[12:]
	counts := make([]int32, rows)
	for i := range counts {
		counts[i] = int32(le.Uint32(b[4*i:]))
	}
	ptr, err := neighbourPtr(counts)
	if err != nil {
		return fmt.Errorf("item neighbours: %w", err)
	}
	out := Neighbours{Ptr: ptr}
	b = b[4*rows:]
	total := out.Ptr[rows]
	if int64(len(b)) != 8*total {
		return corrupt("item neighbours: %d bytes for %d entries", len(b), total)
	}
	out.Idx, out.Sim = make([]int32, total), make([]float32, total)
	for e := range out.Idx {
		out.Idx[e] = int32(le.Uint32(b[4*e:]))
		out.Sim[e] = math.Float32frombits(le.Uint32(b[4*(int(total)+e):]))
	}
	if err := out.Validate(); err != nil {
		return corrupt("%v", err)
	}
	*n = out
	return nil
}
