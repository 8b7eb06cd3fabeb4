package engine

import "github.com/kairoshq/kairos/model"

// trendingRanker ranks by recency-weighted popularity: on request
// (strategy=trending), or for a visitor without factors and without any
// context (page item, campaign, referrer, device).
type trendingRanker struct{}

func (trendingRanker) serves(q *rankQuery) bool {
	r := q.req
	return r.Strategy == StrategyTrending || (q.x == nil && r.Item == "" && r.Campaign == "" && r.Referrer == "" && r.Device == "")
}

func (trendingRanker) rank(q *rankQuery) ([]model.Scored, Strategy) {
	s := q.s
	mq := model.Query{N: q.req.N, Exclude: s.exclude, Keep: q.keep}
	q.view.Narrow(&mq)
	return s.scorer.SelectTopQ(s.top, q.e.trending.Scores(), mq), StrategyTrending
}
