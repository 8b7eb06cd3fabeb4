package model

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
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
}

// DefaultNeighbourConfig returns the neighbours batch retrains build: 50
// per item, a = 0.8, h = 10, users of at most 2,000 items.
func DefaultNeighbourConfig() NeighbourConfig {
	return NeighbourConfig{K: 50, Alpha: 0.8, Shrink: 10, MaxHistory: 2000}
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
// co-occurrence, see the formula above). Its cost is the sum over users
// of their (capped) items squared, plus a sort per item.
func BuildNeighbours(m *Matrix, c NeighbourConfig) (*Neighbours, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	items := m.Items()
	hist := func(u int) []int32 {
		cols, _ := m.UserRow(u)
		if len(cols) > c.MaxHistory {
			return nil
		}
		return cols
	}
	users := make([]float64, items)
	for u := range m.Users() {
		for _, i := range hist(u) {
			users[i]++
		}
	}
	// The powers of the denominator, once per item.
	powA, powB := make([]float64, items), make([]float64, items)
	for i, n := range users {
		powA[i], powB[i] = math.Pow(n, c.Alpha), math.Pow(n, 1-c.Alpha)
	}
	out := &Neighbours{Ptr: make([]int64, items+1)}
	acc := make([]float64, items)
	var touched []int32
	var cands []Scored
	for i := range items {
		touched = touched[:0]
		rows, _ := m.ItemColumn(i)
		for _, u := range rows {
			for _, j := range hist(int(u)) {
				if int(j) == i {
					continue
				}
				if acc[j] == 0 {
					touched = append(touched, j)
				}
				acc[j]++
			}
		}
		cands = cands[:0]
		for _, j := range touched {
			s := acc[j] / (powA[i]*powB[j] + c.Shrink)
			acc[j] = 0
			if s > 0 && !math.IsInf(s, 0) {
				cands = append(cands, Scored{Item: j, Score: float32(s)})
			}
		}
		k := min(len(cands), c.K)
		selectBest(cands, k)
		best := cands[:k]
		slices.SortFunc(best, compareBest)
		for _, x := range best {
			out.Idx = append(out.Idx, x.Item)
			out.Sim = append(out.Sim, x.Score)
		}
		out.Ptr[i+1] = int64(len(out.Idx))
	}
	return out, nil
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
