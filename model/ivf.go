package model

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
)

// IVF is an approximate maximum-inner-product index over item factors (an
// inverted file with a quantised scan): items are clustered into lists; a
// query scores the list centroids, scans the items of the NProbe best
// lists through int8 copies of their factors, keeps a shortlist of the
// best approximate scores and re-ranks it with the exact float32 factors.
// Returned scores are exact; only recall is approximate (measured by
// BenchmarkIndexRecall and the tests).
//
// # Inner product, not cosine
//
// Inner product is not a metric, so the lists are made with the standard
// reduction of MIPS to cosine search (Bachrach et al. 2014): every item is
// augmented with one coordinate sqrt(M² − |y|²), M the largest norm at the
// build, which makes all augmented items equally long, and the query with
// a 0; spherical k-means on the augmented items then groups items whose
// inner products with any query are alike. One M for all items would
// leave the many short items dominated by their augmented coordinate, so
// items are split into norm bands (octiles), each augmented with its
// own M and clustered into its own lists (norm ranging, Yan et al. 2018);
// a list's score for a query is M·(q·c) over the item part of its
// centroid c, an estimate of its items' inner products comparable across
// bands. An item longer than its band's M (it grew after the build) is
// clamped to the augmented sphere; reclustering restores M.
//
// # Quantisation
//
// Each item row is stored once as int8 codes with one scale per row
// (max |y_f| / 127), k rounded up to a multiple of 16; the query as int16
// with one scale. The scan is an integer dot product (an AVX2 kernel on
// amd64); its error is far below the gap between a shortlist's head and
// its tail, which the exact re-rank then orders. The float32 factors are
// not copied: the re-rank reads the live model's rows.
//
// # Freshness
//
// Lists are separate growable tables, so an item can move between lists:
// a changed item's codes are rewritten in place at once (its scores are
// current immediately); whether it should move to another list is checked
// in the background (Online.RefreshIndex) for the items changed since the
// last check. A new item waits in an overflow list that every query scans
// exactly until that check assigns it. The mean fit of the items to their
// centroids is tracked; when it drops, the engine reclusters in the
// background and swaps the new index in atomically (Online.BuildIndex).
type IVF struct {
	k, kp     int
	nlist     int
	centroids []float32 // nlist × (k+1), unit length, augmented space
	bands     []ivfBand // norm ranges, each with its lists
	listM     []float32 // per list, its band's M
	lists     []ivfList
	listOf    []int32 // item row → list, or noList / inOverflow
	slotOf    []int32 // item row → position in its list or in overflow
	overflow  []int32
	dirty     Bitset  // rows changed since the last refresh
	dirtyRows []int32 // the same rows, in order
	moved     int     // items moved between lists since the build
	size      int     // items in lists
	probe     int     // lists scanned by default (0: AutoProbe; set by Online.CalibrateIndex)
}

const (
	noList     = -1
	inOverflow = -2
)

// ivfBand is a range of item norms with its own augmentation (norm
// ranging, Yan et al. 2018): items with norms up to upper (the last band:
// any) are augmented with their band's M, the largest norm of the band at
// the build, and clustered into the band's lists lo…hi−1.
type ivfBand struct {
	upper, m float32
	lo, hi   int
}

// ivfList is one inverted list: its items' rows, int8 codes and scales.
type ivfList struct {
	rows   []int32
	codes  []int8 // len(rows) × kp
	scales []float32
}

// IVFParams configure an IVF build. Zero fields are chosen from the
// catalog size (AutoIVF).
type IVFParams struct {
	// Lists is the number of clusters (0: AutoLists).
	Lists int
	// Iterations of spherical k-means (0: 8).
	Iterations int
	// Sample is the number of items k-means trains on (0: 24 per list).
	Sample int
	// Seed seeds the sampling and initial centroids.
	Seed uint64
}

// IVFSearch are the per-query parameters of an index search.
type IVFSearch struct {
	// Probe is the number of lists scanned (0: AutoProbe).
	Probe int
	// Shortlist is the number of candidates re-ranked exactly (0: AutoShortlist).
	Shortlist int
}

// AutoLists is the default number of lists for n items: 2√n, so that a
// list holds about √n/2 items (at equal items scanned, 2,000 lists of 1M
// items recall more than 1,000: BenchmarkServeScale).
func AutoLists(n int) int { return max(1, int(2*math.Sqrt(float64(n)))) }

// AutoProbe is the default number of lists scanned when there are nlist:
// 1.8·√nlist, a share that falls with the catalog — 13 % of the 197 lists
// of MovieLens latest-small, 4 % of the 2,000 lists of 1M items — for
// recall@10 ≥ 0.95 on ALS and topic-structured factors
// (BenchmarkIndexRecall, BenchmarkServeScale).
func AutoProbe(nlist int) int {
	return max(1, min(nlist, int(math.Ceil(1.8*math.Sqrt(float64(nlist))))))
}

// AutoShortlist is the default number of candidates re-ranked exactly for
// a query of n results: the int8 scan's error is small against the gaps
// of the head of a ranking, so twice n recalls as much as 8n or 5,000
// candidates (100k items with topic structure: recall@50 0.935 with
// 75 candidates and with 400), and every extra candidate costs its share
// of the buffer's cuts and an exact dot product.
func AutoShortlist(n int) int { return max(50, 2*n) }

// defaultProbe is the number of lists a search scans when it names none:
// the calibrated count, else AutoProbe.
func (x *IVF) defaultProbe() int {
	if x.probe > 0 {
		return x.probe
	}
	return AutoProbe(x.nlist)
}

// padK rounds k up to the int8 kernel's multiple of 16.
func padK(k int) int { return (k + 15) &^ 15 }

// BuildIVF clusters the rows of items that have factors (non-zero norm).
// It reads items only; see Online.BuildIndex for a build beside a live
// model.
func BuildIVF(ctx context.Context, items *Factors, p IVFParams) (*IVF, error) {
	return buildIVF(ctx, tableReader{items}, p)
}

// rowReader gives a build its rows in blocks (the live model takes its
// read lock per block).
type rowReader interface {
	rows() int
	k() int
	// read calls fn with rows [lo, hi) of the table.
	read(lo, hi int, fn func(t *Factors))
}

type tableReader struct{ t *Factors }

func (r tableReader) rows() int                            { return r.t.Rows() }
func (r tableReader) k() int                               { return r.t.K }
func (r tableReader) read(lo, hi int, fn func(t *Factors)) { fn(r.t) }

// buildBlock is the number of rows read per block by a build.
const buildBlock = 8192

func buildIVF(ctx context.Context, src rowReader, p IVFParams) (*IVF, error) {
	k, n := src.k(), src.rows()
	var norms []float32
	for lo := 0; lo < n; lo += buildBlock {
		src.read(lo, min(lo+buildBlock, n), func(t *Factors) {
			for i := lo; i < min(lo+buildBlock, n); i++ {
				if nm := norm32(t.Row(i)); nm > 0 {
					norms = append(norms, nm)
				}
			}
		})
	}
	live := len(norms)
	if p.Lists <= 0 {
		p.Lists = AutoLists(live)
	}
	p.Lists = max(1, min(p.Lists, live))
	if p.Iterations <= 0 {
		p.Iterations = 8
	}
	if p.Sample <= 0 {
		p.Sample = 24 * p.Lists
	}
	x := newIVF(k, 0, n)
	if live == 0 {
		x.centroids = make([]float32, k+1)
		x.bands = []ivfBand{{upper: float32(math.Inf(1)), m: 1, lo: 0, hi: 1}}
		x.setLists(1)
		return x, nil
	}
	rng := rand.New(rand.NewPCG(p.Seed, 0x495646))
	sample := sampleLive(src, p.Sample, live, rng)
	x.bands = normBands(norms, p.Lists)
	for b := range x.bands {
		band := &x.bands[b]
		pts := x.augmentBand(b, sample)
		want := band.hi - band.lo
		band.lo = len(x.centroids) / (k + 1)
		if np := len(pts) / (k + 1); np > 0 {
			x.centroids = append(x.centroids, sphericalKMeans(ctx, pts, k+1, min(want, np), p.Iterations, rng)...)
		}
		band.hi = len(x.centroids) / (k + 1)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	x.setLists(len(x.centroids) / (k + 1))
	// Assign every row, then lay the lists out at their final sizes (no
	// regrowth: at 1M items the codes are 64 MB).
	assign := make([]int32, n)
	ys := make([][]float32, 0, buildBlock)
	for lo := 0; lo < n; lo += buildBlock {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hi := min(lo+buildBlock, n)
		src.read(lo, hi, func(t *Factors) {
			ys = ys[:0]
			for i := lo; i < hi; i++ {
				ys = append(ys, t.Row(i))
			}
			copy(assign[lo:hi], x.assign(ys))
		})
	}
	sizes := make([]int, x.nlist)
	for _, l := range assign {
		if l >= 0 {
			sizes[l]++
		}
	}
	for l, c := range sizes {
		x.lists[l] = ivfList{rows: make([]int32, 0, c), codes: make([]int8, 0, c*x.kp), scales: make([]float32, 0, c)}
	}
	for lo := 0; lo < n; lo += buildBlock {
		hi := min(lo+buildBlock, n)
		src.read(lo, hi, func(t *Factors) {
			for i := lo; i < hi; i++ {
				if assign[i] >= 0 {
					x.add(int32(i), int(assign[i]), t.Row(i))
				}
			}
		})
	}
	return x, nil
}

// normBands splits the items into up to four bands of equal counts by
// norm, sharing out nlist lists among them (eight bands from 64 lists;
// eight beat one, four and sixteen on the recall of MovieLens factors).
func normBands(norms []float32, nlist int) []ivfBand {
	sorted := slices.Clone(norms)
	slices.Sort(sorted)
	nb := max(1, min(normBandCount, nlist/8))
	bands := make([]ivfBand, nb)
	for b := range bands {
		top := sorted[min(len(sorted)-1, (b+1)*len(sorted)/nb-1)]
		bands[b] = ivfBand{upper: top, m: top, lo: 0, hi: nlist/nb + btoi(b < nlist%nb)}
	}
	bands[nb-1].upper = float32(math.Inf(1))
	return bands
}

// normBandCount is the number of norm bands of large indexes.
const normBandCount = 8

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// setLists allocates nlist lists and their band scales.
func (x *IVF) setLists(nlist int) {
	x.nlist = nlist
	x.lists = make([]ivfList, nlist)
	x.listM = make([]float32, nlist)
	for _, b := range x.bands {
		for l := b.lo; l < b.hi; l++ {
			x.listM[l] = b.m
		}
	}
}

// bandOf returns the band of an item of norm nm.
func (x *IVF) bandOf(nm float32) int {
	for b, band := range x.bands {
		if nm <= band.upper {
			return b
		}
	}
	return len(x.bands) - 1
}

// augmentBand returns the augmented vectors of the rows of pts (k
// columns) that belong to band b.
func (x *IVF) augmentBand(b int, pts []float32) []float32 {
	k := x.k
	var out []float32
	aug := make([]float32, k+1)
	for j := 0; j < len(pts)/k; j++ {
		y := pts[j*k : (j+1)*k]
		if nm := norm32(y); nm == 0 || x.bandOf(nm) != b {
			continue
		}
		augmentRow(aug, y, x.bands[b].m)
		out = append(out, aug...)
	}
	return out
}

// assign returns the best list of each of ys (noList for zero rows): in
// each norm band, the centroid with the largest inner product with the
// augmented rows, in blocks through BLAS.
func (x *IVF) assign(ys [][]float32) []int32 {
	k := x.k
	out := make([]int32, len(ys))
	band := make([]int, len(ys))
	for j, y := range ys {
		out[j] = noList
		band[j] = -1
		if nm := norm32(y); nm > 0 {
			band[j] = x.bandOf(nm)
		}
	}
	var aug []float32
	var idx []int
	for b, bd := range x.bands {
		aug, idx = aug[:0], idx[:0]
		for j, y := range ys {
			if band[j] == b {
				aug = append(aug, make([]float32, k+1)...)
				augmentRow(aug[len(aug)-k-1:], y, bd.m)
				idx = append(idx, j)
			}
		}
		if len(idx) == 0 || bd.hi == bd.lo {
			continue
		}
		res := assignAll(aug, k+1, x.centroids[bd.lo*(k+1):bd.hi*(k+1)], bd.hi-bd.lo)
		for j, l := range res {
			out[idx[j]] = int32(bd.lo) + l
		}
	}
	return out
}

func newIVF(k, nlist, n int) *IVF {
	x := &IVF{k: k, kp: padK(k), nlist: nlist, lists: make([]ivfList, nlist),
		listOf: make([]int32, n), slotOf: make([]int32, n), dirty: NewBitset(n)}
	for i := range x.listOf {
		x.listOf[i] = noList
	}
	return x
}

// augmentRow writes y's unit augmented vector into dst (len k+1) and
// reports whether y is non-zero.
func augmentRow(dst, y []float32, m float32) bool {
	var s float64
	for f, v := range y {
		dst[f] = v / m
		s += float64(dst[f]) * float64(dst[f])
	}
	if s == 0 {
		return false
	}
	if s > 1 { // longer than M: onto the sphere
		r := float32(1 / math.Sqrt(s))
		for f := range y {
			dst[f] *= r
		}
		s = 1
	}
	dst[len(y)] = float32(math.Sqrt(1 - s))
	return true
}

// sampleLive returns up to s live rows (k columns) drawn uniformly
// (reservoir sampling over the blocks).
func sampleLive(src rowReader, s, live int, rng *rand.Rand) []float32 {
	k := src.k()
	s = min(s, live)
	out := make([]float32, s*k)
	seen := 0
	n := src.rows()
	for lo := 0; lo < n; lo += buildBlock {
		hi := min(lo+buildBlock, n)
		src.read(lo, hi, func(t *Factors) {
			for i := lo; i < hi; i++ {
				y := t.Row(i)
				if norm32(y) == 0 {
					continue
				}
				j := seen
				if seen >= s {
					j = rng.IntN(seen + 1)
				}
				seen++
				if j < s {
					copy(out[j*k:(j+1)*k], y)
				}
			}
		})
	}
	return out[:min(seen, s)*k]
}

// sphericalKMeans clusters the unit vectors pts (d columns) by cosine and
// returns nlist unit centroids (row-major, d columns).
func sphericalKMeans(ctx context.Context, pts []float32, d, nlist, iters int, rng *rand.Rand) []float32 {
	n := len(pts) / d
	c := make([]float32, nlist*d)
	for l, j := range rng.Perm(n)[:nlist] {
		copy(c[l*d:(l+1)*d], pts[j*d:(j+1)*d])
	}
	sums := make([]float64, nlist*d)
	counts := make([]int, nlist)
	for range iters {
		if ctx.Err() != nil {
			return c
		}
		assign := assignAll(pts, d, c, nlist)
		clear(sums)
		clear(counts)
		for j, l := range assign {
			counts[l]++
			for f, x := range pts[j*d : (j+1)*d] {
				sums[int(l)*d+f] += float64(x)
			}
		}
		for l := range nlist {
			if counts[l] == 0 { // re-seed an empty cluster on a random point
				j := rng.IntN(n)
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
	const block = 256
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

// quantize writes y's int8 codes into dst (len kp) and returns the scale.
func quantize(dst []int8, y []float32) float32 {
	m := float32(0)
	for _, v := range y {
		m = max(m, abs32(v))
	}
	clear(dst)
	if m == 0 {
		return 0
	}
	inv := 127 / m
	for f, v := range y {
		if r := v * inv; r >= 0 { // round half away from zero; |r| ≤ 127
			dst[f] = int8(r + 0.5)
		} else {
			dst[f] = int8(r - 0.5)
		}
	}
	return m / 127
}

func abs32(v float32) float32 {
	if v < 0 {
		return -v
	}
	return v
}

func (x *IVF) grow(n int) {
	for len(x.listOf) < n {
		x.listOf = append(x.listOf, noList)
		x.slotOf = append(x.slotOf, 0)
	}
}

// add appends row (factors y) to list l.
func (x *IVF) add(row int32, l int, y []float32) {
	x.grow(int(row) + 1)
	ls := &x.lists[l]
	ls.rows = append(ls.rows, row)
	ls.codes = append(ls.codes, make([]int8, x.kp)...)
	j := len(ls.rows) - 1
	ls.scales = append(ls.scales, quantize(ls.codes[j*x.kp:(j+1)*x.kp], y))
	x.listOf[row], x.slotOf[row] = int32(l), int32(j)
	x.size++
}

// remove takes row out of its list or the overflow.
func (x *IVF) remove(row int32) {
	l, j := x.listOf[row], int(x.slotOf[row])
	switch {
	case l == inOverflow:
		last := len(x.overflow) - 1
		moved := x.overflow[last]
		x.overflow[j] = moved
		x.slotOf[moved] = int32(j)
		x.overflow = x.overflow[:last]
	case l >= 0:
		ls := &x.lists[l]
		last := len(ls.rows) - 1
		moved := ls.rows[last]
		ls.rows[j] = moved
		ls.scales[j] = ls.scales[last]
		copy(ls.codes[j*x.kp:(j+1)*x.kp], ls.codes[last*x.kp:(last+1)*x.kp])
		x.slotOf[moved] = int32(j)
		ls.rows, ls.scales, ls.codes = ls.rows[:last], ls.scales[:last], ls.codes[:last*x.kp]
		x.size--
	}
	x.listOf[row] = noList
}

// Lists returns the number of clusters.
func (x *IVF) Lists() int { return x.nlist }

// Overflow returns the number of items waiting outside the lists.
func (x *IVF) Overflow() int { return len(x.overflow) }

// Moved returns the number of items moved between lists since the build.
func (x *IVF) Moved() int { return x.moved }

// Size returns the number of items in the lists.
func (x *IVF) Size() int { return x.size }

// update mirrors an item row change into the index (the owning Online's
// write lock held): its codes at once, its list at the next refresh.
func (x *IVF) update(row int32, y []float32) {
	x.grow(int(row) + 1)
	switch l := x.listOf[row]; {
	case l >= 0:
		ls := &x.lists[l]
		j := int(x.slotOf[row])
		ls.scales[j] = quantize(ls.codes[j*x.kp:(j+1)*x.kp], y)
	case l == noList:
		x.listOf[row], x.slotOf[row] = inOverflow, int32(len(x.overflow))
		x.overflow = append(x.overflow, row)
	}
	if !x.dirty.Has(int(row)) {
		x.dirty.Set(int(row))
		x.dirtyRows = append(x.dirtyRows, row)
	}
}

// touchRows reads one value of every cache line of the rows of short
// and returns their sum (kept by the caller, so that the loads stay).
func touchRows(items *Factors, short []Scored) float32 {
	var t float32
	k := items.K
	for _, c := range short {
		row := items.Data[int(c.Item)*k : int(c.Item+1)*k]
		for j := 0; j < len(row); j += 16 { // 16 float32s: a 64-byte line
			t += row[j]
		}
	}
	return t
}

// ivfScratch is the per-query scratch of an IVF search.
type ivfScratch struct {
	touched float32 // touchRows's sum (unused)
	cscores []float32
	probe   []Scored
	short   []Scored
	q16     []int16
	dots    [scoreChunk]int32
}

// search returns the top q.N of the probed lists and the overflow.
func (x *IVF) search(s *Scorer, dst []Scored, items *Factors, norms []float32, q Query, p IVFSearch) []Scored {
	dst = dst[:0]
	if q.N <= 0 || len(q.Vector) != x.k {
		return dst
	}
	if q.Rows != nil {
		return s.topK(dst, items, norms, q) // a selective filter: its rows exactly
	}
	qn := float32(1)
	if q.Cosine {
		if qn = norm32(q.Vector); qn == 0 {
			return dst
		}
	}
	if p.Probe <= 0 {
		p.Probe = x.defaultProbe()
	}
	if p.Shortlist <= 0 {
		p.Shortlist = AutoShortlist(q.N)
	}
	p.Shortlist = max(p.Shortlist, q.N)
	sc := &s.ivf
	x.probeLists(s, q.Vector, min(p.Probe, x.nlist), q.Cosine)
	qs := x.quantizeQuery(sc, q.Vector)
	c := candidates{q: &q, norms: norms, qn: qn, size: p.Shortlist, h: sc.short[:0], threshold: float32(math.Inf(-1))}
	for _, pl := range sc.probe {
		ls := &x.lists[pl.Item]
		for lo := 0; lo < len(ls.rows); lo += scoreChunk {
			hi := min(lo+scoreChunk, len(ls.rows))
			dots := sc.dots[:hi-lo]
			dotsInt8(dots, sc.q16, ls.codes[lo*x.kp:hi*x.kp], x.kp)
			c.scan(dots, ls.scales[lo:hi], ls.rows[lo:hi], qs)
		}
	}
	xv := blas32.Vector{N: x.k, Inc: 1, Data: q.Vector}
	for _, row := range x.overflow {
		c.consider(row, blas32.Dot(xv, blas32.Vector{N: x.k, Inc: 1, Data: items.Row(int(row))}))
	}
	short := c.best()
	sc.short = short
	cands := &c
	// Exact re-rank of the shortlist. Its rows are scattered over the
	// table (256 MB at 1M items): touching each row's cache lines first,
	// in one pass of independent loads, lets the memory system fetch
	// them in parallel instead of one miss per dot product (50 rows of a
	// 1M-item table: 12–33 µs instead of 33–54 µs, BenchmarkRerankTouch).
	sc.touched = touchRows(items, short)
	h := s.heap[:0]
	for _, c := range short {
		v := blas32.Dot(xv, blas32.Vector{N: x.k, Inc: 1, Data: items.Row(int(c.Item))})
		if q.Cosine {
			v /= norms[c.Item] * qn
		}
		if v = cands.boost(c.Item, v); v != v {
			continue
		}
		h = pushBounded(h, Scored{Item: c.Item, Score: v}, q.N)
	}
	s.heap = h
	return appendSorted(dst, h)
}

// candidates is the shortlist of a search: the best approximate scores
// of the rows that pass the query's exclusions and predicate. Rows above
// the threshold are appended to a buffer of up to twice the shortlist;
// a full buffer is cut to the shortlist's best (selectBest, linear time)
// and the threshold raised to the worst of them, so a row costs an
// append, not a heap push.
type candidates struct {
	q         *Query
	norms     []float32
	qn        float32 // the query's norm (cosine), else 1
	size      int
	h         []Scored
	threshold float32
	full      bool // the threshold is the worst of size kept rows
}

// scan considers a chunk of rows with their int8 dot products dots,
// codes scales and the query's scale qs.
func (c *candidates) scan(dots []int32, scales []float32, rows []int32, qs float32) {
	scales, rows = scales[:len(dots)], rows[:len(dots)]
	if !c.q.Cosine && c.q.LogBoost == nil {
		c.scanPlain(dots, scales, rows, qs)
		return
	}
	for j, d := range dots {
		v := float32(d) * scales[j] * qs
		if !c.q.Cosine && c.full && !(c.boost(rows[j], v) > c.threshold) {
			continue // the common case, decided without touching the row
		}
		c.consider(rows[j], v)
	}
}

// scanPlain is scan for an unboosted inner-product query, the serving
// path's common case: the threshold is held in a register and a row
// reaches consider only when it beats it. An empty row (zero factors) has
// a zero scale, so it is recognised from its list's scales without
// reading the norms, whose entries are scattered over the catalog (one
// cache miss per row considered, a quarter of a 100k-item search).
func (c *candidates) scanPlain(dots []int32, scales []float32, rows []int32, qs float32) {
	scales, rows = scales[:len(dots)], rows[:len(dots)]
	t := c.threshold // −Inf until the shortlist is full: every row is considered
	for j, d := range dots {
		v := float32(d) * scales[j] * qs
		if !(v > t) || scales[j] == 0 {
			continue
		}
		c.add(rows[j], v)
		t = c.threshold
	}
}

// boost adds the query's log-boost of row to its score v.
func (c *candidates) boost(row int32, v float32) float32 {
	if b := c.q.LogBoost; int(row) < len(b) {
		return v + b[row]
	}
	return v
}

// consider adds row with its (inner-product) score v when it ranks,
// divided by its norm for a cosine query, then boosted.
func (c *candidates) consider(row int32, v float32) {
	q := c.q
	if q.Cosine {
		v /= c.norms[row] * c.qn
	}
	v = c.boost(row, v)
	if (c.full && !(v > c.threshold)) || c.norms[row] == 0 {
		return
	}
	c.add(row, v)
}

// add appends row with its final score v when the query does not exclude
// it, cutting a full buffer.
func (c *candidates) add(row int32, v float32) {
	q := c.q
	if q.Exclude.Has(int(row)) || v != v || (q.Keep != nil && !q.Keep(int(row))) {
		return
	}
	c.h = append(c.h, Scored{Item: row, Score: v})
	if len(c.h) >= 2*c.size {
		c.cut()
	}
}

// cut keeps the size best rows of the buffer and raises the threshold to
// the worst of them.
func (c *candidates) cut() {
	selectBest(c.h, c.size)
	c.h = c.h[:c.size]
	t := c.h[0].Score
	for _, e := range c.h[1:] {
		t = min(t, e.Score)
	}
	c.threshold, c.full = t, true
}

// best returns the shortlist: the size best rows considered (fewer when
// fewer passed), in no particular order.
func (c *candidates) best() []Scored {
	if len(c.h) > c.size {
		c.cut()
	}
	return c.h
}

// probeLists selects the lists to scan: the best inner products of the
// centroids with the query augmented by a zero.
//
// For a cosine query the lists are ranked by the cosine of the query with
// the centroids' item part (their last, augmented coordinate left out):
// the direction of their items whatever their norms.
func (x *IVF) probeLists(s *Scorer, v []float32, nprobe int, cosine bool) {
	sc := &s.ivf
	if cap(sc.cscores) < x.nlist {
		sc.cscores = make([]float32, x.nlist)
	}
	cs := sc.cscores[:x.nlist]
	C := blas32.General{Rows: x.nlist, Cols: x.k, Stride: x.k + 1, Data: x.centroids}
	blas32.Gemv(blas.NoTrans, 1, C, blas32.Vector{N: x.k, Inc: 1, Data: v}, 0, blas32.Vector{N: x.nlist, Inc: 1, Data: cs})
	for l := range cs {
		if !cosine {
			cs[l] *= x.listM[l]
		} else if c := x.centroids[l*(x.k+1)+x.k]; c < 1 {
			cs[l] /= float32(math.Sqrt(float64(1 - c*c)))
		}
	}
	sc.probe = bestLists(sc.probe[:0], cs, nprobe)
}

// bestLists returns the nprobe best of the centroid scores cs (NaN left
// out), best first: the order the lists are scanned in, so that the
// shortlist's threshold rises early.
func bestLists(dst []Scored, cs []float32, nprobe int) []Scored {
	for l, v := range cs {
		if v == v {
			dst = append(dst, Scored{Item: int32(l), Score: v})
		}
	}
	k := min(nprobe, len(dst))
	selectBest(dst, k)
	dst = dst[:k]
	slices.SortFunc(dst, compareBest)
	return dst
}

// quantizeQuery writes the query's int16 codes into sc.q16 and returns
// their scale.
func (x *IVF) quantizeQuery(sc *ivfScratch, v []float32) float32 {
	if cap(sc.q16) < x.kp {
		sc.q16 = make([]int16, x.kp)
	}
	sc.q16 = sc.q16[:x.kp]
	clear(sc.q16)
	m := float32(0)
	for _, f := range v {
		m = max(m, abs32(f))
	}
	if m == 0 {
		return 0
	}
	s := m / 32767
	for f, a := range v {
		sc.q16[f] = int16(math.Round(float64(a / s)))
	}
	return s
}

// ErrNoIndex is returned by approximate queries before an index is built.
var ErrNoIndex = errors.New("model: no approximate index built")
