package engine

import "github.com/kairoshq/kairos/model"

// Trending returns up to n items by recency-weighted popularity — the
// counter behind the trending fallback of Recommend: every learning
// event's weight, decayed with Config.TrendingHalfLife — best first, with
// their catalog title and category. Score is the decayed weight as of
// Config.Now (with the default weights, 3 is as much as one fresh click
// and one fresh view). Inactive items and items without weight are left
// out, so a fresh engine returns none; n < 1 returns nil. It reads memory
// only (the dashboard's "top items" poll it).
func (e *Engine) Trending(n int) []Rec {
	if n < 1 {
		return nil
	}
	var sc model.Scorer
	now := e.cfg.Now()
	e.mu.RLock()
	defer e.mu.RUnlock()
	top := sc.SelectTop(nil, e.trending.Scores(), n, e.inactive, nil)
	out := make([]Rec, 0, len(top))
	for _, t := range top {
		if !(t.Score > 0) || int(t.Item) >= len(e.idOf) || e.idOf[t.Item] == "" {
			continue // no weight, or a row a peer assigned that this replica has not heard of yet
		}
		id := e.idOf[t.Item]
		r := Rec{Item: id, Score: float32(e.trending.Score(int(t.Item), now))}
		if it, ok := e.catalog[id]; ok {
			r.Title, r.Category = it.Title, it.Category
		}
		out = append(out, r)
	}
	return out
}
