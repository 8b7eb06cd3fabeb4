package model

import (
	"math"
	"math/bits"
	"slices"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/mat"
)

// Cold start: the pieces that answer a visitor the model does not know yet,
// and place an item nobody has interacted with yet.
//
// # Visitors: context, then fold-in, blended by confidence
//
// A visitor with no learning event has no factors; the answer comes from
// the context of the request (the item of the current page, trending). From
// the first event on, the visitor's factors are folded in exactly
// (Online.FoldUser) and the two answers are blended by a confidence that
// grows with the number of events n:
//
//	w(n)    = n / (n + κ)                       (0 when n = 0; 1 when κ = 0)
//	ctx_i   = (1 − τ)·z(sim_i) + τ·z(log(1 + trend_i))
//	score_i = w(n)·z(personal_i) + (1 − w(n))·ctx_i
//
// where personal_i = x_u·y_i is the fold-in score, sim_i the cosine
// similarity of item i to the current page item, trend_i the recency-
// weighted popularity (Trending) and z standardises a score vector over the
// candidate items (mean 0, standard deviation 1, excluded rows ignored), so
// that scores on different scales mix by their shape, not their units. A
// missing context part is left out (ctx = z(sim) without trending, ctx =
// z(log(1 + trend)) without a page item). κ is the number of events at which
// the fold-in and the context weigh the same; τ is trending's share of the
// context when a page item is known. Blend holds κ and τ; DefaultBlend
// gives the values chosen on MovieLens 100K (eval.ColdUsers, validation
// users only).
//
// # Known visitors: a popularity prior
//
// Implicit ALS ranks a visitor's items by x_u·y_i alone, and on sparse
// data (a dozen interactions per visitor, many rarely seen items) it can
// rank worse than "most popular" (Steck 2011 on popularity and missing
// data; Rendle 2022 on well-tuned baselines). The blend therefore keeps a
// share ρ (Prior) of popularity inside the personal part:
//
//	personal'_i = (1 − ρ)·z(personal_i) + ρ·z(log(1 + trend_i))
//	score_i     = w(n)·personal'_i + (1 − w(n))·ctx_i
//
// Without a page item (ctx = z(log(1 + trend))) popularity's weight
// relative to the personal score is then ρ/(1 − ρ) + κ/(n·(1 − ρ)): a
// constant plus a part that fades as 1/n while the model learns the
// visitor — one formula for the first event and the thousandth. ρ and κ
// are fitted on a validation split of the data a model is trained on
// (eval.FitBlend: batch retrains and `kairos eval offline`); a snapshot
// carries them (Meta.Blend) and engines use them from the swap on. With
// ρ = 0 the blend is what it was before the prior existed.
//
// # Items: provisional factors from attributes
//
// An item without interactions gets the mean of the factors of the items
// that share its category or tags, shrunk towards the mean of all items,
// several tags fitted jointly by ridge least squares (TagPrior). Written into the live model (Online.SetItems) it is scored
// like any item before its first click; the live item update (Apply) then
// moves it from there as interactions arrive, and the next batch retrain
// replaces it with the factor learnt from its interactions alone.

// Blend mixes a visitor's personal (fold-in) scores with context scores by
// a confidence that grows with the visitor's number of events (see the
// formulas above). The zero value weighs the fold-in fully from the first
// event on and uses no trending when a page item is known.
type Blend struct {
	// Kappa (κ) is the number of events at which personal and context
	// scores weigh the same: w(n) = n/(n+κ). 0 means the fold-in alone from
	// the first event.
	Kappa float64 `json:"kappa"`
	// Trending (τ) is trending's share of the context when a page item is
	// known, in [0, 1].
	Trending float64 `json:"trending"`
	// Prior (ρ) is popularity's share of the personal part, in [0, 1): the
	// popularity prior of a visitor the model knows well (see "Known
	// visitors: a popularity prior"). 0 turns it off.
	Prior float64 `json:"prior"`
	// Neighbours (η) is the weight of the item-neighbour part
	// z(log(1 + nb_i)) relative to z(personal_i) inside the personal
	// part (see "Item neighbours" in neighbours.go), >= 0. 0 turns it
	// off.
	Neighbours float64 `json:"neighbours,omitempty"`
}

// DefaultBlend returns the blend chosen by validation NDCG@10 on
// MovieLens 100K (`kairos eval coldstart`, eval.ColdUsers: three
// validation folds of training users, never the held-out ones, steps
// m = 1, 2, 3, 5, 10): κ = 8, τ = 0.75, with trending at a 7-day half-life
// (better than 1 day, 30 days or plain popularity at m = 0). The search
// surface is flat around it (κ = 16 within 0.001 NDCG@10; seeds 1 and 2
// pick κ = 16). MovieLens asks new members to rate popular films first,
// which favours trending early on; a site whose first clicks are less
// herd-like may prefer a smaller κ.
func DefaultBlend() Blend { return Blend{Kappa: 8, Trending: 0.75} }

// Confidence returns w(n), the weight of the personal scores after n
// events: 0 for n ≤ 0, n/(n+κ) otherwise (1 when κ ≤ 0).
func (b Blend) Confidence(n int) float64 {
	if n <= 0 {
		return 0
	}
	if b.Kappa <= 0 {
		return 1
	}
	return float64(n) / (float64(n) + b.Kappa)
}

// BlendInput are the score vectors a Blend mixes, each one score per item
// row (all of the same length) or nil when not available.
type BlendInput struct {
	// Personal holds the fold-in scores x_u·y_i (used when Events > 0).
	Personal []float32
	// Item holds the similarity of each item to the current page item
	// (e.g. Online.ScoreAll with cosine), nil when the request has none.
	Item []float32
	// Trending holds recency-weighted popularity scores (≥ 0, e.g.
	// Trending.Score at request time), nil when none.
	Trending []float32
	// Neighbours holds the visitor's item-neighbour scores nb_i
	// (Neighbours.Scores over the visitor's items), nil when none; it
	// counts only with Personal.
	Neighbours []float32
	// Events is the visitor's number of learning events.
	Events int
	// Exclude lists rows that are not candidates (seen, inactive): they are
	// ignored by the standardisation and get score −Inf.
	Exclude Bitset
}

// Scores writes the blended score of every item row to dst (grown or cut
// to the length of the input vectors) and returns it: each part
// standardised, then mixed as Mix does. Excluded rows get −Inf. With no
// input vector at all every candidate scores 0. Scores allocates nothing
// when dst has the capacity. It costs a few passes over the items, about
// 2.5 ms per 100,000 items on the 2-core machine (BenchmarkBlendScores),
// two thirds of it the log of the trending scores: an engine that serves
// many requests between trending updates should standardise trending once
// per update and a page item's neighbours once per page (Standardize) and
// call Mix per request (0.34 ms per 100,000 items with the visitor's
// standardisation). Once Confidence(n) is close to 1 (n ≫ κ) and ρ = 0 the
// blend is the fold-in ranking and plain top-K is cheaper.
func (b Blend) Scores(dst []float32, in BlendInput) []float32 {
	dst = in.fit(dst)
	wp, wi, wt := b.weights(in)
	if wt > 0 {
		// Trending first: its log is computed once, in dst.
		Standardize(dst, in.Trending, in.Exclude, true)
		for i := range dst {
			dst[i] *= float32(wt)
		}
	} else {
		clear(dst)
	}
	if wp > 0 {
		addStandardized(dst, in.Personal, wp, in.Exclude, false)
	}
	if wi > 0 {
		addStandardized(dst, in.Item, wi, in.Exclude, false)
	}
	if wn := b.neighbourWeight(in, wp); wn > 0 {
		addStandardized(dst, in.Neighbours, wn, in.Exclude, true)
	}
	excludeRows(dst, in.Exclude)
	return dst
}

// neighbourWeight returns the coefficient of the item-neighbour part:
// η times the personal part's (0 without neighbour scores).
func (b Blend) neighbourWeight(in BlendInput, wp float64) float64 {
	if in.Neighbours == nil || in.Personal == nil || !(b.Neighbours > 0) {
		return 0
	}
	return wp * b.Neighbours
}

// fit returns dst resized to the rows of in (its longest part),
// reallocated only when too small.
func (in BlendInput) fit(dst []float32) []float32 {
	n := max(len(in.Personal), len(in.Item), len(in.Trending), len(in.Neighbours))
	if cap(dst) < n {
		dst = make([]float32, n)
	}
	return dst[:n]
}

// weights returns the coefficients of the personal, page-item and
// trending parts for in (0 for a missing part).
func (b Blend) weights(in BlendInput) (wp, wi, wt float64) {
	w := b.Confidence(in.Events)
	if in.Personal == nil {
		w = 0
	}
	ctx := 1 - w
	tau := min(max(b.Trending, 0), 1)
	switch {
	case in.Item == nil:
		tau = 1
	case in.Trending == nil:
		tau = 0
	}
	rho := 0.0
	if in.Trending != nil {
		rho = min(max(b.Prior, 0), 1)
	}
	wp = w * (1 - rho)
	if in.Item != nil {
		wi = ctx * (1 - tau)
	}
	if in.Trending != nil {
		wt = ctx*tau + w*rho
	}
	return wp, wi, wt
}

// PopularityWeight returns popularity's weight relative to the personal
// score for a visitor with n events and no page item,
// (ρ + κ/n)/(1 − ρ) (+Inf when ρ ≥ 1 or n ≤ 0; κ/n is 0 when κ ≤ 0):
// ranking by z(personal) + PopularityWeight(n)·z(log(1 + trend)) is
// ranking by the blend.
func (b Blend) PopularityWeight(n int) float64 {
	rho := max(b.Prior, 0)
	if rho >= 1 || n <= 0 {
		return math.Inf(1)
	}
	return (rho + max(b.Kappa, 0)/float64(n)) / (1 - rho)
}

// Mix is Scores for parts that are already standardised (Standardize,
// with log for trending and neighbours): dst_i = w·((1−ρ)·(p_i + η·b_i) +
// ρ·t_i) + (1−w)·((1−τ)·s_i + τ·t_i), one pass, missing parts left out as
// in Scores, excluded rows −Inf. It lets
// an engine standardise trending once per update and a page item's
// neighbours once per page instead of once per request.
func (b Blend) Mix(dst []float32, z BlendInput) []float32 {
	dst = z.fit(dst)
	wp, wi, wt := b.weights(z)
	clear(dst)
	for _, part := range []struct {
		v []float32
		w float64
	}{{z.Trending, wt}, {z.Personal, wp}, {z.Item, wi}, {z.Neighbours, b.neighbourWeight(z, wp)}} {
		if part.w == 0 {
			continue
		}
		w := float32(part.w)
		for i, v := range part.v {
			dst[i] += w * v
		}
	}
	excludeRows(dst, z.Exclude)
	return dst
}

func excludeRows(dst []float32, exclude Bitset) {
	negInf := float32(math.Inf(-1))
	for wi, word := range exclude {
		for word != 0 {
			i := wi*64 + bits.TrailingZeros64(word)
			word &= word - 1
			if i < len(dst) {
				dst[i] = negInf
			}
		}
	}
}

// Standardize writes z(v) to dst (grown or cut to len(v)) and returns it:
// (f(v_i) − mean)/sd, the mean and standard deviation taken over the rows
// not in exclude, with f(x) = log(1 + max(x, 0)) when logged (for
// popularity-like scores) and f(x) = x otherwise. Non-finite entries and
// a constant vector give 0.
func Standardize(dst, v []float32, exclude Bitset, logged bool) []float32 {
	if cap(dst) < len(v) {
		dst = make([]float32, len(v))
	}
	dst = dst[:len(v)]
	var n, sum, sq float64
	for i, x := range v {
		f := float64(x)
		if f-f != 0 { // NaN or ±Inf
			dst[i] = float32(math.NaN())
			continue
		}
		if logged {
			f = math.Log1p(max(f, 0))
		}
		dst[i] = float32(f)
		if exclude.Has(i) {
			continue
		}
		n++
		sum += f
		sq += f * f
	}
	mean, inv := moments(n, sum, sq)
	for i, f := range dst {
		if f != f || inv == 0 {
			dst[i] = 0
			continue
		}
		dst[i] = float32((float64(f) - mean) * inv)
	}
	return dst
}

// moments returns the mean and 1/sd of n values with the given sum and
// sum of squares (inv 0 when they are fewer than 2 or constant).
func moments(n, sum, sq float64) (mean, inv float64) {
	if n < 2 {
		return 0, 0
	}
	mean = sum / n
	v := sq/n - mean*mean
	if !(v > 1e-12*max(mean*mean, 1e-30)) {
		return mean, 0
	}
	return mean, 1 / math.Sqrt(v)
}

// addStandardized adds scale·z(f(v)) to dst, f as in Standardize (the
// log of 1 + v when logged), without allocating.
func addStandardized(dst, v []float32, scale float64, exclude Bitset, logged bool) {
	f := func(x float32) float64 {
		if logged {
			return math.Log1p(max(float64(x), 0))
		}
		return float64(x)
	}
	var n, sum, sq float64
	for i, x := range v {
		y := f(x)
		if y-y != 0 || exclude.Has(i) {
			continue
		}
		n++
		sum += y
		sq += y * y
	}
	mean, inv := moments(n, sum, sq)
	if inv == 0 {
		return
	}
	inv *= scale
	for i, x := range v {
		if y := f(x); y-y == 0 {
			dst[i] += float32((y - mean) * inv)
		}
	}
}

// ScoreAll writes the score of every item row for the query vector q to
// dst (grown or cut to the number of items) and returns it: q·y_i, or with
// cosine the cosine similarity q·y_i/(|q||y_i|). Rows without factors
// score 0. It is the full-vector counterpart of TopK, for callers that mix
// scores before selecting (Blend).
func (o *Online) ScoreAll(dst, q []float32, cosine bool) []float32 {
	o.mu.RLock()
	defer o.mu.RUnlock()
	n := o.items.Rows()
	if cap(dst) < n {
		dst = make([]float32, n)
	}
	dst = dst[:n]
	k := o.p.Factors
	if len(q) != k || n == 0 {
		clear(dst)
		return dst
	}
	Y := blas32.General{Rows: n, Cols: k, Stride: k, Data: o.items.Data[:n*k]}
	blas32.Gemv(blas.NoTrans, 1, Y, blas32.Vector{N: k, Inc: 1, Data: q}, 0, blas32.Vector{N: n, Inc: 1, Data: dst})
	if cosine {
		qn := norm32(q)
		for i := range dst {
			if d := o.norms[i] * qn; d != 0 {
				dst[i] /= d
			} else {
				dst[i] = 0
			}
		}
	}
	return dst
}

// TagPrior computes provisional factors for items without interactions
// from the factors of the learnt items that share their attributes
// (category, tags). With one tag t it is the mean of the factors of the
// n_t learnt items carrying t, shrunk towards the mean of all learnt items
// ȳ by s pseudo-items:
//
//	y_new = (Σ_{j ∈ I_t} y_j + s·ȳ) / (n_t + s)
//
// With several tags T, plain averaging would let a broad tag (carried by
// half the catalogue) drown a specific one and would count twice what two
// overlapping tags share, so the tag offsets are fitted jointly by ridge
// least squares over the learnt items:
//
//	y_new = ȳ + Σ_{t ∈ T} w_t,   w = argmin Σ_j |y_j − ȳ − Σ_{t ∈ T ∩ T_j} w_t|² + s·Σ_t |w_t|²
//
// i.e. (C + sI) W = R with C_tu the number of learnt items carrying both t
// and u (n_t on the diagonal) and R_t = Σ_{j ∈ I_t} (y_j − ȳ); for one tag
// this is exactly the shrunk mean above. Unknown tags are ignored; an item
// with no known tag gets ȳ, the average item. Cost per item O(|T|³ + |T|·k
// + Σ_{t∈T} n_t·|T_j|) (the co-occurrences are counted from per-tag item
// lists), independent of the catalogue size for specific tags.
//
// A TagPrior is a snapshot of the factors it was built from: rebuild it
// after a retrain. It is safe for concurrent use once built.
type TagPrior struct {
	k         int
	shrinkage float64
	mean      []float64
	tagID     map[string]int32
	counts    []int
	resid     [][]float64 // per tag, Σ (y_j − ȳ) over its learnt items
	posting   [][]int32   // per tag, its learnt items
	itemTags  map[int32][]int32
}

// DefaultTagShrinkage is the shrinkage s of provisional factors (in learnt
// items): a tag needs several items before its mean outweighs the average
// item.
const DefaultTagShrinkage = 5

// minShrinkage keeps the normal equations of several tags solvable when
// two tags always occur together and no shrinkage was asked for.
const minShrinkage = 1e-6

// NewTagPrior builds the prior from item factors and each item row's tags
// (tags[i]; tags may be shorter than the table: missing rows have none).
// Only rows for which known(i) holds count as learnt (known nil: the rows
// with non-zero factors). A negative shrinkage counts as 0.
func NewTagPrior(items *Factors, tags [][]string, known func(i int) bool, shrinkage float64) *TagPrior {
	k := items.K
	p := &TagPrior{k: k, shrinkage: max(shrinkage, 0), mean: make([]float64, k), tagID: map[string]int32{}, itemTags: map[int32][]int32{}}
	isKnown := func(i int) bool {
		if known != nil {
			return known(i)
		}
		return norm32(items.Row(i)) != 0
	}
	var learnt []int32
	for i := range items.Rows() {
		if !isKnown(i) {
			continue
		}
		learnt = append(learnt, int32(i))
		for f, v := range items.Row(i) {
			p.mean[f] += float64(v)
		}
	}
	if len(learnt) > 0 {
		for f := range p.mean {
			p.mean[f] /= float64(len(learnt))
		}
	}
	for _, i := range learnt {
		if int(i) >= len(tags) {
			continue
		}
		var ids []int32
		for _, t := range uniqueTags(tags[i]) {
			id, ok := p.tagID[t]
			if !ok {
				id = int32(len(p.counts))
				p.tagID[t] = id
				p.counts = append(p.counts, 0)
				p.resid = append(p.resid, make([]float64, k))
				p.posting = append(p.posting, nil)
			}
			ids = append(ids, id)
			p.counts[id]++
			p.posting[id] = append(p.posting[id], i)
			r := p.resid[id]
			for f, v := range items.Row(int(i)) {
				r[f] += float64(v) - p.mean[f]
			}
		}
		if len(ids) > 0 {
			p.itemTags[i] = ids
		}
	}
	return p
}

// uniqueTags returns the non-empty tags without repeats (tag lists are
// short: quadratic is fine).
func uniqueTags(tags []string) []string {
	out := make([]string, 0, len(tags))
	for _, t := range tags {
		if t != "" && !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

// Known reports whether any of tags is carried by a learnt item.
func (p *TagPrior) Known(tags []string) bool {
	for _, t := range tags {
		if p.Count(t) > 0 {
			return true
		}
	}
	return false
}

// Count returns the number of learnt items carrying tag t.
func (p *TagPrior) Count(t string) int {
	if id, ok := p.tagID[t]; ok {
		return p.counts[id]
	}
	return 0
}

// Factors writes the provisional factors of an item with the given tags
// to dst (grown or cut to K) and returns it.
func (p *TagPrior) Factors(dst []float32, tags []string) []float32 {
	if cap(dst) < p.k {
		dst = make([]float32, p.k)
	}
	dst = dst[:p.k]
	var ids []int32
	for _, t := range uniqueTags(tags) {
		if id, ok := p.tagID[t]; ok {
			ids = append(ids, id)
		}
	}
	y := append([]float64(nil), p.mean...)
	if len(ids) > 0 {
		w := p.solve(ids)
		for j := range ids {
			for f := range y {
				y[f] += w.At(j, f)
			}
		}
	}
	for f, v := range y {
		dst[f] = float32(v)
	}
	return dst
}

// solve fits the offsets of the tags ids: (C + sI) W = R.
func (p *TagPrior) solve(ids []int32) *mat.Dense {
	n := len(ids)
	pos := make(map[int32]int, n)
	for j, id := range ids {
		pos[id] = j
	}
	c := mat.NewSymDense(n, nil)
	for a, id := range ids {
		for _, item := range p.posting[id] {
			for _, u := range p.itemTags[item] {
				if b, ok := pos[u]; ok && b >= a {
					c.SetSym(a, b, c.At(a, b)+1)
				}
			}
		}
	}
	r := mat.NewDense(n, p.k, nil)
	for j, id := range ids {
		r.SetRow(j, p.resid[id])
	}
	s := max(p.shrinkage, minShrinkage)
	for {
		a := mat.NewSymDense(n, nil)
		a.CopySym(c)
		for j := range n {
			a.SetSym(j, j, a.At(j, j)+s)
		}
		var ch mat.Cholesky
		if ch.Factorize(a) {
			var w mat.Dense
			if err := ch.SolveTo(&w, r); err == nil {
				return &w
			}
		}
		s *= 1000 // numerically singular: shrink harder
	}
}

// ProvisionalFactors writes to dst the provisional factors of a new item
// with tags newTags, from the factors of the items (tags[i] per row) that
// known accepts (nil: every row with non-zero factors), with the given
// shrinkage: NewTagPrior(items, tags, known, shrinkage).Factors(dst,
// newTags). Build a TagPrior once to place many items.
func ProvisionalFactors(dst []float32, items *Factors, tags [][]string, known func(i int) bool, newTags []string, shrinkage float64) []float32 {
	return NewTagPrior(items, tags, known, shrinkage).Factors(dst, newTags)
}

// Weights returns the coefficients of the personal, page-item and
// trending parts of the blend for a visitor with the given number of
// events, given which parts are available (0 for a missing part): the
// formulas of the package documentation, for callers that standardise the
// parts themselves (e.g. over a few candidates with Moments).
func (b Blend) Weights(personal, item, trending bool, events int) (wp, wi, wt float64) {
	in := BlendInput{Events: events}
	if personal {
		in.Personal = []float32{}
	}
	if item {
		in.Item = []float32{}
	}
	if trending {
		in.Trending = []float32{}
	}
	return b.weights(in)
}
