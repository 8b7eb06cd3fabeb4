package engine

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/kairoshq/kairos/engine/filter"
	"github.com/kairoshq/kairos/internal/errs"

	"github.com/kairoshq/kairos/model"
)

// scratch is the per-request memory of ranking, pooled.
type scratch struct {
	scorer  model.Scorer
	exclude model.Bitset
	top     []model.Scored
	ws      *model.Workspace
	agg     model.HistoryAggregator
	hist    []model.ItemWeight
	events  []model.Event
	contrib []model.Contribution
	// cold-start blend
	y, y2     []float32
	cand      []int32
	candTop   []model.Scored
	mixed     []float32
	mixedRows []int32
	seen      model.Bitset
	query     rankQuery // the request being ranked (strategy.go)
	// item neighbours: the visitor's history, its distinct learnt item
	// rows and their neighbour part (neighbours.go)
	history  []HistoryEvent
	histRows []int32
	nbPart   neighbourPart
}

func (e *Engine) getScratch() *scratch {
	s := e.scorers.Get().(*scratch)
	if s.ws == nil {
		s.ws = model.NewWorkspace(e.cfg.Params.Factors)
	}
	return s
}

// visitorState returns the state of a visitor (the user's once it is
// linked; see stateKey). An anonymous id's own state is read while its
// link is looked up, so that the common case (no link) takes one round
// trip to the store, not two; a linked id's user state is read after.
func (e *Engine) visitorState(ctx context.Context, visitor, user string) (Visitor, error) {
	key := visitor
	if user == "" && !strings.HasPrefix(visitor, userKeyPrefix) {
		type result struct {
			vs  []Visitor
			err error
		}
		own := make(chan result, 1)
		go func() {
			vs, err := e.store.Visitors(ctx, []string{visitor})
			own <- result{vs, err}
		}()
		users, err := e.store.Resolve(ctx, []string{visitor})
		r := <-own
		if err != nil {
			return Visitor{}, fmt.Errorf("engine: resolve identity: %w", err)
		}
		if users[0] == "" {
			if r.err != nil {
				return Visitor{}, fmt.Errorf("engine: load visitor: %w", r.err)
			}
			return r.vs[0], nil
		}
		key = UserKey(users[0])
	} else if user != "" {
		key = UserKey(user)
	}
	vs, err := e.store.Visitors(ctx, []string{key})
	if err != nil {
		return Visitor{}, fmt.Errorf("engine: load visitor: %w", err)
	}
	return vs[0], nil
}

// Recommend ranks items for a visitor: by the visitor's factors when the
// model knows them (x_u·Y over all items, exact top-K), else by trending
// popularity. Inactive items are never returned; with ExcludeSeen, neither
// are items the visitor interacted with.
func (e *Engine) Recommend(ctx context.Context, r RecRequest) (RecResponse, error) {
	if err := e.checkRequest(r.Visitor, r.N); err != nil {
		return RecResponse{}, err
	}
	if r.Strategy != "" && r.Strategy != StrategyTrending {
		return RecResponse{}, fmt.Errorf("%w: strategy: %q is not trending", ErrInvalid, r.Strategy)
	}
	blendBelow := e.cfg.BlendBelow
	if r.BlendBelow > 0 {
		blendBelow = r.BlendBelow
	}
	v, err := e.visitorState(ctx, r.Visitor, r.User)
	if err != nil {
		return RecResponse{}, err
	}
	start := time.Now()
	s := e.getScratch()
	defer func() {
		s.history = nil // the pool keeps no visitor
		e.scorers.Put(s)
	}()
	resp := RecResponse{Visitor: r.Visitor, Strategy: StrategyALS}
	x := e.visitorFactors(s, v)
	events := learningEvents(v.History)
	e.prepareViews(r)
	e.mu.RLock()
	s.exclude = e.excludeSet(s.exclude, v.History, r.ExcludeSeen)
	s.history = v.History
	var promoted []Rec
	if p := r.Promote; p != nil && p.Share > 0 {
		// The promoted slots first: the best items of the base filter and
		// the promotion's, boosted by both; then the rest of the list
		// without them (no duplicates).
		k := int(math.Round(p.Share * float64(r.N)))
		if k > 0 {
			pr := r
			pr.N = k
			pr.Filter, pr.Boost = and(r.Filter, p.FilterExpr), times(r.Boost, p.BoostExpr)
			var top []model.Scored
			top, _ = e.rankFiltered(s, pr, x, events, blendBelow)
			promoted = e.recsLocked(top)
			for _, t := range top {
				s.exclude.Set(int(t.Item))
			}
			for i := range promoted {
				promoted[i].Promoted = true
			}
		}
	}
	rest := r
	rest.N = r.N - len(promoted)
	if rest.N > 0 {
		s.top, resp.Strategy = e.rankFiltered(s, rest, x, events, blendBelow)
		resp.Items = e.recsLocked(s.top)
		if len(resp.Items) == 0 && len(promoted) == 0 {
			resp.Strategy = StrategyCatalog
			resp.Items = e.catalogFallback(rest.N, s.exclude, r.Category, e.itemFilter(r))
		}
	}
	resp.Items = interleave(resp.Items, promoted, r.N)
	e.mu.RUnlock()
	e.met.recommend.WithLabelValues(string(resp.Strategy)).Observe(time.Since(start).Seconds())
	if r.Explain && (resp.Strategy == StrategyALS || resp.Strategy == StrategyBlend) {
		e.explain(s, v.History, resp.Items)
	}
	return resp, nil
}

// rankFiltered ranks r with the first ranker that serves it, through the
// view of r's filter and boost, topped up from trending when a filter
// left the ranking short (the blend's candidates may hold fewer than N
// qualifying items). e.mu is held for reading.
func (e *Engine) rankFiltered(s *scratch, r RecRequest, x []float32, events, blendBelow int) ([]model.Scored, Strategy) {
	view := e.filterView(r, r.Filter, r.Boost)
	keep := e.keepFunc(r.Category, view)
	s.query = rankQuery{e: e, s: s, req: r, x: x, events: events, blendBelow: blendBelow, keep: keep, view: view}
	top, strategy := rank(&s.query)
	s.query = rankQuery{} // the pool keeps no request
	if view != nil && len(top) < r.N && len(top) < view.Count {
		top = e.topUp(s, top, r.N, keep, view)
	}
	return top, strategy
}

// topUp appends to top the best trending rows that qualify and are not
// in top or excluded, up to n.
func (e *Engine) topUp(s *scratch, top []model.Scored, n int, keep func(int) bool, view *filter.View) []model.Scored {
	s.seen.Reset()
	for _, t := range top {
		s.seen.Set(int(t.Item))
	}
	notTop := func(i int) bool { return !s.seen.Has(i) && (keep == nil || keep(i)) }
	q := model.Query{N: n - len(top), Exclude: s.exclude, Keep: notTop}
	view.Narrow(&q)
	more := s.scorer.SelectTopQ(s.candTop, e.trending.Scores(), q)
	s.candTop = more
	return append(top, more...)
}

// interleave places the promoted recommendations among the others,
// evenly spread over the n slots (promoted j at slot round((j+½)·n/k − ½)),
// filling from either list when the other runs short.
func interleave(organic, promoted []Rec, n int) []Rec {
	if len(promoted) == 0 {
		return organic
	}
	k := len(promoted)
	out := make([]Rec, 0, min(n, len(organic)+k))
	oi, pi := 0, 0
	for slot := 0; len(out) < n && (oi < len(organic) || pi < k); slot++ {
		due := pi < k && int(math.Round((float64(pi)+0.5)*float64(n)/float64(k)-0.5)) <= slot
		if pi < k && (due || oi >= len(organic)) {
			out = append(out, promoted[pi])
			pi++
			continue
		}
		out = append(out, organic[oi])
		oi++
	}
	return out
}

// and is the conjunction of two filters (either may be nil).
func and(a, b *filter.Expr) *filter.Expr {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	return filter.And(a, b)
}

// times is the product of two boosts (either may be nil).
func times(a, b *filter.Expr) *filter.Expr {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	return filter.Times(a, b)
}

func (e *Engine) checkRequest(visitor string, n int) error {
	if visitor == "" {
		return fmt.Errorf("%w: visitor: missing", ErrInvalid)
	}
	if len(visitor) > maxItemIDBytes {
		return fmt.Errorf("%w: visitor: longer than %d bytes", ErrInvalid, maxItemIDBytes)
	}
	if n < 1 || n > e.cfg.MaxResults {
		return fmt.Errorf("%w: n: %d is not in [1, %d]", ErrInvalid, n, e.cfg.MaxResults)
	}
	return nil
}

// excludeSet fills dst with the inactive items and, when seen is set, the
// visitor's history items. e.mu must be held.
func (e *itemCatalog) excludeSet(dst model.Bitset, hist []HistoryEvent, seen bool) model.Bitset {
	dst = append(dst[:0], e.inactive...)
	if seen {
		for _, h := range hist {
			if row, ok := e.rowOf[h.Item]; ok && h.Item != "" {
				dst.Set(int(row))
			}
		}
	}
	return dst
}

// learntRows returns the distinct rows of the items of hist's learning
// events (appended to dst[:0]), the items a visitor's neighbour scores
// come from. e.mu must be held for reading.
func (e *itemCatalog) learntRows(dst []int32, hist []HistoryEvent) []int32 {
	dst = dst[:0]
	for _, h := range hist {
		if row, ok := e.rowOf[h.Item]; ok && h.Item != "" && h.Weight > 0 {
			dst = append(dst, row)
		}
	}
	slices.Sort(dst)
	return slices.Compact(dst)
}

// keepFunc returns the category filter and the view's (nil when
// none). e.mu must be held while it is called.
func (e *itemCatalog) keepFunc(category string, view *filter.View) func(int) bool {
	switch {
	case category == "" && view == nil:
		return nil
	case category == "":
		return view.Has
	}
	return func(row int) bool {
		it, ok := e.catalog[e.idOf[row]]
		return ok && it.Category == category && (view == nil || view.Has(row))
	}
}

// recsLocked maps ranked rows to recommendations; e.mu must be held.
func (e *itemCatalog) recsLocked(top []model.Scored) []Rec {
	out := make([]Rec, 0, len(top))
	for _, t := range top {
		id := ""
		if int(t.Item) < len(e.idOf) {
			id = e.idOf[t.Item]
		}
		if id == "" {
			continue // a row a peer assigned that this replica has not heard of yet
		}
		r := Rec{Item: id, Score: t.Score}
		if it, ok := e.catalog[id]; ok {
			r.Title, r.Category = it.Title, it.Category
		}
		out = append(out, r)
	}
	return out
}

// explain adds the top "because" items to each recommendation.
func (e *Engine) explain(s *scratch, hist []HistoryEvent, recs []Rec) {
	s.events = e.modelEvents(s.events[:0], hist)
	s.hist = s.agg.Aggregate(s.hist, s.events, e.model().Params().HalfLife)
	for i := range recs {
		e.mu.RLock()
		row, ok := e.rowOf[recs[i].Item]
		e.mu.RUnlock()
		if !ok {
			continue
		}
		cs, err := e.model().Explain(s.ws, s.contrib, s.hist, int(row), 3)
		if err != nil {
			continue
		}
		s.contrib = cs
		for _, c := range cs {
			if c.Score > 0 {
				if id := e.itemID(c.Item); id != "" {
					recs[i].Because = append(recs[i].Because, id)
				}
			}
		}
	}
}

// Similar returns the n items most similar to item by cosine of their
// factors (inactive items excluded; through the approximate index for
// large catalogs), or ErrNotFound when the model has no
// factors for item.
func (e *Engine) Similar(ctx context.Context, item string, n int) ([]Rec, error) {
	return e.SimilarTo(ctx, SimilarRequest{Item: item, N: n})
}

// SimilarRequest asks for the items most similar to one.
type SimilarRequest struct {
	Item string
	N    int
	// Filter and Boost as in RecRequest; the context they read is the
	// item itself as the page item.
	Filter, Boost *filter.Expr
}

// SimilarTo is Similar with the request's filter and boost: n results
// whenever n qualifying items have factors.
func (e *Engine) SimilarTo(ctx context.Context, r SimilarRequest) ([]Rec, error) {
	item, n := r.Item, r.N
	if item == "" {
		return nil, fmt.Errorf("%w: item: missing", ErrInvalid)
	}
	if n < 1 || n > e.cfg.MaxResults {
		return nil, fmt.Errorf("%w: n: %d is not in [1, %d]", ErrInvalid, n, e.cfg.MaxResults)
	}
	s := e.getScratch()
	defer e.scorers.Put(s)
	e.prepareView(RecRequest{Item: item}, r.Filter, r.Boost)
	e.mu.RLock()
	defer e.mu.RUnlock()
	row, ok := e.rowOf[item]
	if !ok {
		return nil, errs.New(ErrNotFound, "item %q has no interactions yet", item)
	}
	s.exclude = append(s.exclude[:0], e.inactive...)
	view := e.filterView(RecRequest{Item: item}, r.Filter, r.Boost)
	q := model.Query{N: n, Exclude: s.exclude, Keep: e.keepFunc("", view)}
	view.Narrow(&q)
	top, err := e.similar(e.model(), &s.scorer, s.top, int(row), q)
	if err != nil {
		return nil, errs.New(ErrNotFound, "item %q has no factors yet", item)
	}
	s.top = top
	return e.recsLocked(top), nil
}

func isZero(v []float32) bool {
	return !slices.ContainsFunc(v, func(x float32) bool { return x != 0 })
}

// VisitorFactors returns the live model's factors of a visitor — its
// user's when user is given or the visitor is linked to one — folded in
// from the history when the stored factors belong to a replaced model.
// It returns nil (and no error) when the model knows nothing of them.
// The engine is the only reader that decodes stored factors: other
// components (offers, rules) ask it. The slice is the caller's.
func (e *Engine) VisitorFactors(ctx context.Context, visitor, user string) ([]float32, error) {
	key, err := e.stateKey(ctx, visitor, user)
	if err != nil {
		return nil, err
	}
	vs, err := e.store.Visitors(ctx, []string{key})
	if err != nil {
		return nil, fmt.Errorf("engine: load visitor: %w", err)
	}
	s := e.getScratch()
	defer e.scorers.Put(s)
	x := e.visitorFactors(s, vs[0])
	if x == nil {
		return nil, nil
	}
	return slices.Clone(x), nil
}
