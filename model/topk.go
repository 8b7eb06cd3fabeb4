package model

import (
	"math"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
)

// Scored is an item row with its score.
type Scored struct {
	Item  int32
	Score float32
}

// Query describes a top-K request.
type Query struct {
	// Vector is the query factors (a user's x_u, or an item's y_i for
	// similar items); length K.
	Vector []float32
	// N is the number of results wanted.
	N int
	// Exclude, when not nil, lists item rows never to return (seen items,
	// inactive items, the query item itself).
	Exclude Bitset
	// Keep, when not nil, is asked about each candidate that would enter the
	// result; returning false skips it (business filters).
	Keep func(item int) bool
	// LogBoost, when not nil, is added per item row to the scores of TopK,
	// the batch and the index before selection (rows past its end: 0): the
	// natural log of a positive boost b. Factor scores (inner products,
	// cosines) are treated as log-utilities — a boost multiplies the
	// utility e^score — so that a boost above 1 lifts an item whatever
	// the sign of its score, and ×b means the same lift at every score.
	LogBoost []float32
	// Boost, when not nil, multiplies per row the (positive, popularity)
	// scores of SelectTopQ; scored queries use LogBoost.
	Boost []float32
	// Rows, when not nil, are the only rows scored (exactly, row by row):
	// the rows that pass a selective filter, so that a query that keeps 1 %
	// of the items reads 1 % of the table and returns N results whenever
	// N of them qualify (the approximate index is not used then).
	Rows []int32
	// Cosine divides every score by the item's norm (and the query's), for
	// item-to-item similarity.
	Cosine bool
}

// scoreChunk is the number of item rows scored per BLAS call: 4 KB of
// scores that stay in L1 while they are selected.
const scoreChunk = 1024

// Scorer holds the scratch memory of top-K queries so that a query
// allocates nothing. It is not safe for concurrent use; keep one per
// goroutine (or in a sync.Pool).
type Scorer struct {
	buf   [scoreChunk]float32
	heap  []Scored
	ivf   ivfScratch
	req   batchReq      // this scorer's query in a batch (batch.go)
	batch *batchScratch // its scratch when it leads a batch
}

// TopK returns the q.N best items for q (best first) appended to dst[:0]:
// scores x·y_i over all items in chunks through BLAS, and a bounded min-heap
// (partial selection, O(n log N)); no full sort, no allocation when dst has
// capacity q.N. Items with zero factors (never seen by the model) and NaN
// scores are skipped.
func (o *Online) TopK(s *Scorer, dst []Scored, q Query) []Scored {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return s.topK(dst, o.items, o.norms, q)
}

func (s *Scorer) topK(dst []Scored, items *Factors, norms []float32, q Query) []Scored {
	dst = dst[:0]
	if q.N <= 0 || len(q.Vector) != items.K {
		return dst
	}
	if q.Rows != nil {
		return s.topKRows(dst, items, norms, q)
	}
	k := items.K
	rows := items.Rows()
	s.heap = s.heap[:0]
	threshold := float32(math.Inf(-1))
	qn := float32(1)
	if q.Cosine {
		if qn = norm32(q.Vector); qn == 0 {
			return dst
		}
	}
	x := blas32.Vector{N: k, Inc: 1, Data: q.Vector}
	for start := 0; start < rows; start += scoreChunk {
		n := min(scoreChunk, rows-start)
		Y := blas32.General{Rows: n, Cols: k, Stride: k, Data: items.Data[start*k : (start+n)*k]}
		blas32.Gemv(blas.NoTrans, 1, Y, x, 0, blas32.Vector{N: n, Inc: 1, Data: s.buf[:n]})
		threshold = s.selectColumn(s.buf[:n], 1, 0, start, norms, &q, qn, threshold)
	}
	return appendSorted(dst, s.heap)
}

// topKRows is topK over q.Rows only: a dot product per listed row.
func (s *Scorer) topKRows(dst []Scored, items *Factors, norms []float32, q Query) []Scored {
	k := items.K
	rows := items.Rows()
	qn := float32(1)
	if q.Cosine {
		if qn = norm32(q.Vector); qn == 0 {
			return dst
		}
	}
	h := s.heap[:0]
	threshold := float32(math.Inf(-1))
	x := blas32.Vector{N: k, Inc: 1, Data: q.Vector}
	for _, r32 := range q.Rows {
		i := int(r32)
		if i < 0 || i >= rows || norms[i] == 0 || q.Exclude.Has(i) {
			continue
		}
		v := blas32.Dot(x, blas32.Vector{N: k, Inc: 1, Data: items.Data[i*k : (i+1)*k]})
		if q.Cosine {
			v /= norms[i] * qn
		}
		if i < len(q.LogBoost) {
			v += q.LogBoost[i]
		}
		if v != v || (!(v > threshold) && len(h) == q.N) || (q.Keep != nil && !q.Keep(i)) {
			continue
		}
		h = pushBounded(h, Scored{Item: r32, Score: v}, q.N)
		if len(h) == q.N {
			threshold = h[0].Score
		}
	}
	s.heap = h
	return appendSorted(dst, h)
}

// pushBounded inserts e into the min-heap h of capacity n (by score),
// replacing the minimum when full.
func pushBounded(h []Scored, e Scored, n int) []Scored {
	if len(h) < n {
		h = append(h, e)
		for i := len(h) - 1; i > 0; {
			p := (i - 1) / 2
			if !less(h[i], h[p]) {
				break
			}
			h[i], h[p] = h[p], h[i]
			i = p
		}
		return h
	}
	if !less(h[0], e) {
		return h
	}
	h[0] = e
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(h) && less(h[l], h[m]) {
			m = l
		}
		if r < len(h) && less(h[r], h[m]) {
			m = r
		}
		if m == i {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	return h
}

// less orders by score, ties by larger item row first out (so that among
// equal scores the smaller row ranks higher: deterministic results).
func less(a, b Scored) bool {
	if a.Score != b.Score {
		return a.Score < b.Score
	}
	return a.Item > b.Item
}

// appendSorted appends the heap's elements best first (insertion sort: the
// heap holds N elements, N small).
func appendSorted(dst []Scored, h []Scored) []Scored {
	start := len(dst)
	for _, e := range h {
		dst = append(dst, e)
		for i := len(dst) - 1; i > start && less(dst[i-1], dst[i]); i-- {
			dst[i-1], dst[i] = dst[i], dst[i-1]
		}
	}
	return dst
}

// SelectTop returns the n best entries of scores (best first) appended to
// dst[:0], skipping excluded rows, NaN scores and rows keep rejects. It is
// the selection of TopK for precomputed scores (popularity, trending).
func (s *Scorer) SelectTop(dst []Scored, scores []float32, n int, exclude Bitset, keep func(int) bool) []Scored {
	return s.SelectTopQ(dst, scores, Query{N: n, Exclude: exclude, Keep: keep})
}

// SelectTopQ is SelectTop with the selection of a query: q.N results,
// q.Exclude, q.Keep, the scores multiplied by q.Boost (precomputed scores
// are positive popularity: the boost multiplies them), and only q.Rows
// when it is set (q.Vector, q.Cosine and q.LogBoost are not used).
func (s *Scorer) SelectTopQ(dst []Scored, scores []float32, q Query) []Scored {
	dst = dst[:0]
	n := q.N
	if n <= 0 {
		return dst
	}
	h := s.heap[:0]
	threshold := float32(math.Inf(-1))
	consider := func(i int, v float32) {
		if i < len(q.Boost) {
			v *= q.Boost[i]
		}
		if !(v > threshold) && len(h) == n {
			return
		}
		if v != v || q.Exclude.Has(i) || (q.Keep != nil && !q.Keep(i)) {
			return
		}
		h = pushBounded(h, Scored{Item: int32(i), Score: v}, n)
		if len(h) == n {
			threshold = h[0].Score
		}
	}
	if q.Rows != nil {
		for _, r := range q.Rows {
			if int(r) >= 0 && int(r) < len(scores) {
				consider(int(r), scores[r])
			}
		}
	} else {
		for i, v := range scores {
			consider(i, v)
		}
	}
	s.heap = h
	return appendSorted(dst, h)
}

// Similar returns the n items most similar to item i by cosine similarity
// of their factors, excluding i itself and exclude's rows.
func (o *Online) Similar(s *Scorer, dst []Scored, i, n int, exclude Bitset, keep func(int) bool) ([]Scored, error) {
	return o.SimilarQ(s, dst, i, Query{N: n, Exclude: exclude, Keep: keep})
}

// SimilarQ is Similar with the selection of q (N, Exclude, Keep,
// LogBoost, Rows); q.Vector and q.Cosine are set from item i.
func (o *Online) SimilarQ(s *Scorer, dst []Scored, i int, q Query) ([]Scored, error) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	if i < 0 || i >= o.items.Rows() {
		return dst[:0], ErrUnknownItem
	}
	return s.topK(dst, o.items, o.norms, similarQuery(o.items.Row(i), i, q)), nil
}

// similarQuery is q for the neighbours of item i (vector y_i): cosine,
// i itself left out.
func similarQuery(y []float32, i int, q Query) Query {
	keep := q.Keep
	q.Keep = func(j int) bool { return j != i && (keep == nil || keep(j)) }
	q.Vector, q.Cosine = y, true
	return q
}

// Contribution is one known item's share of a recommended item's score.
type Contribution struct {
	Item  int32
	Score float32
}

// Explain returns the items of a user's history that contribute most to
// the score of item, best first, following Hu, Koren and Volinsky (2008,
// §5): with W = (YᵀC_uY + λI)⁻¹ (the fold-in's normal matrix inverted), the
// score decomposes as x_u·y_i = Σ_j c_uj · y_iᵀ W y_j over the user's items
// j, and each term is item j's contribution. The contributions sum to the
// fold-in score. At most n are returned, appended to dst[:0].
func (o *Online) Explain(ws *Workspace, dst []Contribution, hist []ItemWeight, item, n int) ([]Contribution, error) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	dst = dst[:0]
	rows := o.items.Rows()
	if item < 0 || item >= rows {
		return dst, ErrUnknownItem
	}
	cols, w := ws.split(hist)
	for _, c := range cols {
		if c < 0 || int(c) >= rows {
			return dst, ErrUnknownItem
		}
	}
	if len(cols) == 0 || n <= 0 {
		return dst, nil
	}
	// Factorise A = YᵀY + λI + Σ α w_j y_j y_jᵀ (as the fold-in does) with
	// z = A⁻¹ y_i on the right-hand side.
	k := o.p.Factors
	tmp := ws.scratchRow(k)
	if err := ws.solveExactRHS(o.gram, o.p.Lambda, o.items, cols, w, o.p.Alpha, o.items.Row(item), tmp); err != nil {
		return dst, err
	}
	var h []Scored
	for j, c := range cols {
		var s float64
		for f, v := range o.items.Row(int(c)) {
			s += float64(v) * tmp[f]
		}
		s *= 1 + o.p.Alpha*float64(w[j])
		h = pushBounded(h, Scored{Item: c, Score: float32(s)}, n)
	}
	for _, e := range appendSorted(nil, h) {
		dst = append(dst, Contribution(e))
	}
	return dst, nil
}
