package engine

import "github.com/kairoshq/kairos/engine/filter"

// RecRequest asks for recommendations for one visitor.
type RecRequest struct {
	Visitor string
	// User, when set, names the known user (the visitor's linked user is
	// used otherwise, when there is one).
	User string
	// N is the number of items wanted (1..Config.MaxResults).
	N int
	// ExcludeSeen drops items the visitor already interacted with.
	ExcludeSeen bool
	// Category, when set, keeps only items of that category.
	Category string
	// Explain adds "because" items to each recommendation.
	Explain bool
	// Exact bypasses the approximate index.
	Exact bool
	// Context of the request, for visitors the model knows little about:
	// the item of the current page, the referrer URL, the UTM campaign and
	// the device class (e.g. "mobile").
	Item, Referrer, Campaign, Device string
	// BlendBelow, when positive, replaces Config.BlendBelow for this
	// request (an experiment's variant, engine/experiments).
	BlendBelow int
	// Strategy StrategyTrending serves recency-weighted popularity
	// whatever the visitor's history (an experiment's variant); ""
	// lets the engine choose.
	Strategy Strategy
	// Filter (a filter.Bool expression) keeps only the items for which
	// it holds; Boost (a filter.Number expression) multiplies each item's
	// utility before the selection (e^score for the model's and the
	// blend's scores: ln(boost) is added, model.Query.LogBoost; trending
	// popularity itself); a boost ≤ 0 drops the item. nil: none.
	Filter, Boost *filter.Expr
	// Promote, when set with a positive share, fills round(Share·N) of
	// the N slots with the best-ranked items its filter keeps (boosted by
	// its boost), interleaved with the others and marked Promoted.
	Promote *filter.Compiled
}

// Rec is one recommended item.
type Rec struct {
	Item     string  `json:"item"`
	Score    float32 `json:"score"`
	Title    string  `json:"title,omitempty"`
	Category string  `json:"category,omitempty"`
	// Because lists the visitor's items that contribute most to the score.
	Because []string `json:"because,omitempty"`
	// Promoted marks an item placed by a promotion's share (a stored
	// filter with a share, RecRequest.Promote).
	Promoted bool `json:"promoted,omitempty"`
}

// Strategy names how a recommendation list was made.
type Strategy string

// Strategies.
const (
	StrategyALS      Strategy = "als"      // from the visitor's factors
	StrategyBlend    Strategy = "blend"    // few events: fold-in blended with context and trending
	StrategyContext  Strategy = "context"  // no history: the page item's neighbours and trending
	StrategyTrending Strategy = "trending" // no history, no page item: recency-weighted popularity (of the segment)
	StrategyCatalog  Strategy = "catalog"  // nothing learnt yet: active catalog items, newest first
)

// RecResponse is the answer to a RecRequest.
type RecResponse struct {
	Visitor  string   `json:"visitor"`
	Strategy Strategy `json:"strategy"`
	Items    []Rec    `json:"items"`
	// Next is the opaque token of the next page (set by the rotation and
	// paging layer, engine/rotation; "" on the last page).
	Next string `json:"next,omitempty"`
}
