package engine

import (
	"math"

	"github.com/kairoshq/kairos/engine/filter"

	"github.com/kairoshq/kairos/model"
)

// coldBlend ranks a visitor with few learning events (fewer than the
// request's or Config.BlendBelow) or without factors but with a context:
// the fold-in blended with the page's neighbours and the segment's
// trending (strategy blend, or context without factors).
type coldBlend struct{}

func (coldBlend) serves(q *rankQuery) bool { return q.x == nil || q.events < q.blendBelow }

func (coldBlend) rank(q *rankQuery) ([]model.Scored, Strategy) {
	return blendRank(q.e, q.s, q.x, q.events, q.req, q.keep, q.view)
}

// priorBlend ranks a visitor with enough events when the loaded snapshot
// carries a popularity prior ρ > 0 or item neighbours weighed by η > 0:
// the blend of the fold-in, the neighbours and the items' all-time
// popularity, without the page's context (reported as strategy als).
type priorBlend struct{}

func (priorBlend) serves(q *rankQuery) bool {
	b := q.e.Blend()
	return b.Prior > 0 || (b.Neighbours > 0 && q.e.itemNeighbours() != nil)
}

func (priorBlend) rank(q *rankQuery) ([]model.Scored, Strategy) {
	warm := q.req
	warm.Item = ""
	top, _ := blendRank(q.e, q.s, q.x, q.events, warm, q.keep, q.view)
	return top, StrategyALS
}

// blendRank ranks by model.Blend of the visitor's fold-in scores (x may be
// nil), the page item's neighbours and popularity — the items' all-time
// popularity when the visitor has factors (Engine.popularity, what the
// prior was fitted on), else the segment's trending — without scoring
// every item: the candidates are the union of each part's best (the
// fold-in's top-M through the approximate index when it is built, the
// page item's cached neighbours, popularity's cached top), and each part
// is standardised with its mean and deviation over all items
// (model.Moments for the factor scores, cached for popularity), so the
// blended score of a candidate is what model.Blend.Scores gives it. e.mu
// must be held for reading; s.exclude is the candidates' complement.
// The view's log-boosts are added to the blended scores (a boost
// multiplies the utility e^score, model.Query.LogBoost).
func blendRank(e *Engine, s *scratch, x []float32, events int, r RecRequest, keep func(int) bool, view *filter.View) ([]model.Scored, Strategy) {
	o := e.model()
	m := max(blendCandidates, 4*r.N)
	trend, trendKey := e.trendingFor(r)
	if x != nil {
		// The prior of a visitor with factors: the popularity it was
		// fitted on (popularity), not the segment's trending.
		if pop := e.popularity(o); pop != nil {
			trend, trendKey = pop, popularityKey
		}
	}
	tt := e.trendingTop(trendKey, trend, m)
	hasTrend := tt != nil && tt.sd > 0
	var page []float32
	if row, ok := e.rowOf[r.Item]; ok && r.Item != "" {
		if s.y = o.ItemFactors(s.y, int(row)); !isZero(s.y) {
			page = s.y
			s.exclude.Set(int(row))
		}
	}
	if x == nil && page == nil {
		// Trending alone ranks by its scores: it needs one that counts, not
		// a spread (a young segment's few items may all tie).
		if tt == nil || len(tt.rows) == 0 || !(trend[tt.rows[0]] > 0) {
			return nil, StrategyTrending
		}
		mq := model.Query{N: r.N, Exclude: s.exclude, Keep: keep}
		view.Narrow(&mq)
		return s.scorer.SelectTopQ(s.top, trend, mq), StrategyTrending
	}
	blend := e.Blend()
	wp, wi, wt := blend.Weights(x != nil, page != nil, hasTrend, events)
	var nbp *neighbourPart
	if x != nil {
		nbp = e.neighbourScores(s, blend.Neighbours, o.Len())
	}
	mom := e.moments(o)
	// Candidates.
	s.cand = s.cand[:0]
	if x != nil {
		q := model.Query{Vector: x, N: m, Exclude: s.exclude, Keep: keep}
		view.Narrow(&q)
		top := e.topK(s, s.candTop, q, r.Exact)
		s.candTop = top
		for _, c := range top {
			s.cand = append(s.cand, c.Item)
		}
	}
	if page != nil {
		s.cand = append(s.cand, e.neighbours(o, int32(e.rowOf[r.Item]), m)...)
	}
	if hasTrend {
		s.cand = append(s.cand, tt.rows...)
	}
	if nbp != nil {
		s.cand = append(s.cand, nbp.touched...)
	}
	// Standardisation of each part over all items.
	var mp, sp, mi, si float64
	if x != nil {
		mp, sp = mom.Dist(x, false)
	}
	if page != nil {
		mi, si = mom.Dist(page, true)
	}
	pn := norm(page)
	s.mixed = s.mixed[:0]
	s.seen.Reset()
	for _, c := range s.cand {
		if s.seen.Has(int(c)) || s.exclude.Has(int(c)) || (keep != nil && !keep(int(c))) {
			continue
		}
		s.seen.Set(int(c))
		y := o.ItemFactors(s.y2, int(c))
		s.y2 = y
		var score float64
		if x != nil && sp > 0 {
			score += wp * (dot(x, y) - mp) / sp
		}
		if page != nil && si > 0 {
			if yn := norm(y); yn > 0 && pn > 0 {
				score += wi * (dot(page, y)/(pn*yn) - mi) / si
			}
		}
		if hasTrend && int(c) < len(trend) {
			score += wt * (math.Log1p(max(float64(trend[c]), 0)) - tt.mean) / tt.sd
		}
		if nbp != nil && sp > 0 {
			score += wp * blend.Neighbours * nbp.z(c)
		}
		sc := float32(score)
		if view != nil && int(c) < len(view.LogBoost) {
			sc += view.LogBoost[c]
		}
		s.mixed = append(s.mixed, sc)
		s.mixedRows = append(s.mixedRows[:len(s.mixed)-1], c)
	}
	top := s.scorer.SelectTop(s.top, s.mixed, r.N, nil, nil)
	for i := range top {
		top[i].Item = s.mixedRows[top[i].Item]
	}
	strategy := StrategyContext
	if x != nil {
		strategy = StrategyBlend
	}
	return top, strategy
}
