package model

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
)

// IVF is an approximate maximum-inner-product index over item factors
// (an inverted file): items are clustered, a query scores the cluster
// centroids and then exactly scores only the items of the best NProbe
// clusters. It trades a little recall for a large cut in the bytes streamed
// per query (DESIGN.md: an exact pass over 100k×64 float32 is 25.6 MB).
//
// Inner product is not a metric, so clustering uses the standard reduction
// of MIPS to cosine search (Bachrach et al. 2014): every item is augmented
// with one coordinate sqrt(M² − |y|²), where M is the largest norm, which
// makes all augmented items equally long, and the query with a 0; cosine
// k-means on the augmented items then groups items whose inner products
// with any query are alike. Candidates are scored with their exact
// (non-augmented) factors, so the returned scores are exact; only recall is
// approximate.
//
// Items are stored list by list in one contiguous table, so a probed list is
// one BLAS call. The index holds its own copy of the factors; Online keeps
// it current as items change (an item keeps its list until the next
// rebuild; new items go to an overflow list that is always scanned), and
// rebuilds it in the background when the overflow grows.
type IVF struct {
	k         int
	nlist     int
	centroids []float32 // nlist × (k+1), unit length
	// lists: items of list l are rows listStart[l]..listStart[l+1] of data.
	listStart []int32
	data      []float32 // reordered item factors (n × k)
	rowOf     []int32   // position in data → item row
	posOf     []int32   // item row → position in data (−1: in overflow or absent)
	// overflow holds items added after the build, scanned on every query.
	overflow    []int32
	overflowPos map[int32]int
}

// IVFParams configure an IVF build.
type IVFParams struct {
	// Lists is the number of clusters (0: 2·√n, at least 1).
	Lists int
	// Iterations of spherical k-means (0: 8).
	Iterations int
	// Sample is the number of items k-means trains on (0: 32 per list).
	Sample int
	// Seed seeds the sampling and initial centroids.
	Seed uint64
}

// BuildIVF clusters the rows of items that have factors (non-zero norm).
func BuildIVF(ctx context.Context, items *Factors, p IVFParams) (*IVF, error) {
	k, n := items.K, items.Rows()
	var live []int32
	maxNorm := float32(0)
	for i := range n {
		if nm := norm32(items.Row(i)); nm > 0 {
			live = append(live, int32(i))
			maxNorm = max(maxNorm, nm)
		}
	}
	if p.Lists <= 0 {
		p.Lists = max(1, int(2*math.Sqrt(float64(len(live)))))
	}
	p.Lists = max(1, min(p.Lists, len(live)))
	if p.Iterations <= 0 {
		p.Iterations = 8
	}
	if p.Sample <= 0 {
		p.Sample = 32 * p.Lists
	}
	x := &IVF{k: k, nlist: p.Lists, posOf: make([]int32, n), overflowPos: map[int32]int{}}
	if len(live) == 0 {
		x.listStart = make([]int32, 2)
		x.nlist = 1
		x.centroids = make([]float32, k+1)
		for i := range x.posOf {
			x.posOf[i] = -1
		}
		return x, nil
	}
	rng := rand.New(rand.NewPCG(p.Seed, 0x495646))
	aug := augment(items, live, maxNorm)
	sample := sampleRows(len(live), p.Sample, rng)
	x.centroids = sphericalKMeans(ctx, aug, k+1, sample, p.Lists, p.Iterations, rng)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	assign := assignAll(aug, k+1, x.centroids, p.Lists)
	x.layout(items, live, assign)
	return x, nil
}

// augment returns the unit-length augmented vectors of the live rows.
func augment(items *Factors, live []int32, m float32) []float32 {
	k := items.K
	out := make([]float32, len(live)*(k+1))
	for j, row := range live {
		y := items.Row(int(row))
		dst := out[j*(k+1) : (j+1)*(k+1)]
		var s float64
		for f, v := range y {
			dst[f] = v / m
			s += float64(dst[f]) * float64(dst[f])
		}
		dst[k] = float32(math.Sqrt(max(0, 1-s)))
	}
	return out
}

func sampleRows(n, s int, rng *rand.Rand) []int {
	if s >= n {
		out := make([]int, n)
		for i := range out {
			out[i] = i
		}
		return out
	}
	return rng.Perm(n)[:s]
}

// sphericalKMeans clusters the sampled unit vectors by cosine and returns
// nlist unit centroids (row-major, d columns).
func sphericalKMeans(ctx context.Context, v []float32, d int, sample []int, nlist, iters int, rng *rand.Rand) []float32 {
	pts := make([]float32, len(sample)*d)
	for j, i := range sample {
		copy(pts[j*d:(j+1)*d], v[i*d:(i+1)*d])
	}
	c := make([]float32, nlist*d)
	for l, j := range rng.Perm(len(sample))[:nlist] {
		copy(c[l*d:(l+1)*d], pts[j*d:(j+1)*d])
	}
	for range iters {
		if ctx.Err() != nil {
			return c
		}
		assign := assignAll(pts, d, c, nlist)
		sums := make([]float64, nlist*d)
		counts := make([]int, nlist)
		for j, l := range assign {
			counts[l]++
			for f, x := range pts[j*d : (j+1)*d] {
				sums[int(l)*d+f] += float64(x)
			}
		}
		for l := range nlist {
			if counts[l] == 0 { // re-seed an empty cluster on a random point
				j := rng.IntN(len(sample))
				copy(c[l*d:(l+1)*d], pts[j*d:(j+1)*d])
				continue
			}
			var s float64
			for f := range d {
				s += sums[l*d+f] * sums[l*d+f]
			}
			s = math.Sqrt(s)
			for f := range d {
				c[l*d+f] = float32(sums[l*d+f] / s)
			}
		}
	}
	return c
}

// assignAll returns, for each row of v (d columns), the centroid with the
// largest inner product, in blocks through BLAS.
func assignAll(v []float32, d int, c []float32, nlist int) []int32 {
	n := len(v) / d
	out := make([]int32, n)
	const block = 512
	scores := make([]float32, block*nlist)
	C := blas32.General{Rows: nlist, Cols: d, Stride: d, Data: c}
	for s := 0; s < n; s += block {
		m := min(block, n-s)
		V := blas32.General{Rows: m, Cols: d, Stride: d, Data: v[s*d : (s+m)*d]}
		S := blas32.General{Rows: m, Cols: nlist, Stride: nlist, Data: scores[:m*nlist]}
		blas32.Gemm(blas.NoTrans, blas.Trans, 1, V, C, 0, S)
		for j := range m {
			row := scores[j*nlist : (j+1)*nlist]
			best := 0
			for l, x := range row {
				if x > row[best] {
					best = l
				}
			}
			out[s+j] = int32(best)
		}
	}
	return out
}

// layout stores the live rows list by list.
func (x *IVF) layout(items *Factors, live []int32, assign []int32) {
	k := x.k
	counts := make([]int32, x.nlist+1)
	for _, l := range assign {
		counts[l+1]++
	}
	for l := range x.nlist {
		counts[l+1] += counts[l]
	}
	x.listStart = counts
	next := append([]int32(nil), counts[:x.nlist]...)
	x.data = make([]float32, len(live)*k)
	x.rowOf = make([]int32, len(live))
	for i := range x.posOf {
		x.posOf[i] = -1
	}
	for j, row := range live {
		p := next[assign[j]]
		next[assign[j]]++
		copy(x.data[int(p)*k:int(p+1)*k], items.Row(int(row)))
		x.rowOf[p] = row
		x.posOf[row] = p
	}
}

// Lists returns the number of clusters.
func (x *IVF) Lists() int { return x.nlist }

// Overflow returns the number of items outside the clustered lists.
func (x *IVF) Overflow() int { return len(x.overflow) }

// update mirrors an item row change into the index (called with the
// owning Online's write lock held).
func (x *IVF) update(row int32, y []float32) {
	k := x.k
	for int(row) >= len(x.posOf) {
		x.posOf = append(x.posOf, -1)
	}
	if p := x.posOf[row]; p >= 0 {
		copy(x.data[int(p)*k:int(p+1)*k], y)
		return
	}
	if _, ok := x.overflowPos[row]; !ok {
		x.overflowPos[row] = len(x.overflow)
		x.overflow = append(x.overflow, row)
	}
}

// ivfScratch is the per-query scratch of an IVF search.
type ivfScratch struct {
	cscores []float32
	probe   []Scored
}

// search returns the top q.N of the probed lists and the overflow.
func (x *IVF) search(s *Scorer, dst []Scored, items *Factors, norms []float32, q Query, nprobe int) []Scored {
	dst = dst[:0]
	if q.N <= 0 || len(q.Vector) != x.k || q.Cosine {
		return dst
	}
	k, d := x.k, x.k+1
	nprobe = max(1, min(nprobe, x.nlist))
	// Score the centroids with the query augmented by a zero coordinate.
	sc := &s.ivf
	if cap(sc.cscores) < x.nlist {
		sc.cscores = make([]float32, x.nlist)
	}
	cs := sc.cscores[:x.nlist]
	C := blas32.General{Rows: x.nlist, Cols: k, Stride: d, Data: x.centroids}
	blas32.Gemv(blas.NoTrans, 1, C, blas32.Vector{N: k, Inc: 1, Data: q.Vector}, 0, blas32.Vector{N: x.nlist, Inc: 1, Data: cs})
	sc.probe = s.SelectTop(sc.probe, cs, nprobe, nil, nil)
	h := s.heap[:0]
	threshold := float32(math.Inf(-1))
	xv := blas32.Vector{N: k, Inc: 1, Data: q.Vector}
	consider := func(row int, v float32) {
		if !(v > threshold) && len(h) == q.N {
			return
		}
		if norms[row] == 0 || q.Exclude.Has(row) || v != v || (q.Keep != nil && !q.Keep(row)) {
			return
		}
		h = pushBounded(h, Scored{Item: int32(row), Score: v}, q.N)
		if len(h) == q.N {
			threshold = h[0].Score
		}
	}
	for _, pl := range sc.probe {
		lo, hi := int(x.listStart[pl.Item]), int(x.listStart[pl.Item+1])
		for start := lo; start < hi; start += scoreChunk {
			n := min(scoreChunk, hi-start)
			Y := blas32.General{Rows: n, Cols: k, Stride: k, Data: x.data[start*k : (start+n)*k]}
			blas32.Gemv(blas.NoTrans, 1, Y, xv, 0, blas32.Vector{N: n, Inc: 1, Data: s.buf[:n]})
			for j, v := range s.buf[:n] {
				consider(int(x.rowOf[start+j]), v)
			}
		}
	}
	for _, row := range x.overflow {
		consider(int(row), float32(dot32f(q.Vector, items.Row(int(row)))))
	}
	s.heap = h
	return appendSorted(dst, h)
}

// ErrNoIndex is returned by approximate queries before an index is built.
var ErrNoIndex = errors.New("model: no approximate index built")
