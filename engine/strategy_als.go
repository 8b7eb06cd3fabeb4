package engine

import "github.com/kairoshq/kairos/model"

// alsRanker ranks by the visitor's fold-in alone: x_u·Y over every item
// (exact top-K, batched with concurrent exact requests), or through the
// approximate index when it is built and the request does not ask for
// exact.
type alsRanker struct{}

func (alsRanker) serves(*rankQuery) bool { return true }

func (alsRanker) rank(q *rankQuery) ([]model.Scored, Strategy) {
	e, s := q.e, q.s
	mq := model.Query{Vector: q.x, N: q.req.N, Exclude: s.exclude, Keep: q.keep}
	q.view.Narrow(&mq)
	return e.topK(s, s.top, mq, q.req.Exact), StrategyALS
}
