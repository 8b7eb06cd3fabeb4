package engine

import (
	"github.com/kairoshq/kairos/engine/filter"
	"github.com/kairoshq/kairos/model"
)

// A ranker is one recommendation strategy. Recommend asks the rankers of
// the table in order and the first that serves a request ranks it; when
// the ranking is empty (nothing learnt yet), the active catalog answers
// (strategy catalog). Adding a strategy is a file with its ranker and an
// entry in rankers.
//
// Rankers are called with the catalog's mu held for reading (doc.go): they
// may read the item index, the catalog cache and the trending counters,
// and use the serving part's caches, never write the engine's state.
type ranker interface {
	// serves reports whether the strategy ranks q.
	serves(q *rankQuery) bool
	// rank returns the best q.req.N rows (excluding q.s.exclude, kept by
	// q.keep, scores boosted by q.view) and the strategy to report.
	rank(q *rankQuery) ([]model.Scored, Strategy)
}

// rankers is the table of strategies, in the order they are asked.
var rankers = []ranker{
	trendingRanker{}, // strategy=trending, or no factors and no context
	coldBlend{},      // few events, or no factors with a context
	priorBlend{},     // the snapshot's popularity prior
	alsRanker{},      // the fold-in alone
}

// rankQuery is what a ranker ranks: the request and the visitor, with the
// request's scratch (pooled: a query allocates nothing).
type rankQuery struct {
	e          *Engine
	s          *scratch
	req        RecRequest
	x          []float32      // the visitor's factors, nil when unknown
	events     int            // the visitor's learning events
	blendBelow int            // events from which the fold-in alone ranks
	keep       func(int) bool // the category, filter and boost (q.view.Has)
	view       *filter.View   // the filter and boost evaluated per row (nil: none)
}

// rank ranks q with the first ranker of the table that serves it.
func rank(q *rankQuery) ([]model.Scored, Strategy) {
	for _, r := range rankers {
		if r.serves(q) {
			return r.rank(q)
		}
	}
	return nil, StrategyALS // alsRanker serves every query
}
