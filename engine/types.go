package engine

// RecRequest asks for recommendations for one visitor.
type RecRequest struct {
	Visitor string
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
}

// Rec is one recommended item.
type Rec struct {
	Item     string  `json:"item"`
	Score    float32 `json:"score"`
	Title    string  `json:"title,omitempty"`
	Category string  `json:"category,omitempty"`
	// Because lists the visitor's items that contribute most to the score.
	Because []string `json:"because,omitempty"`
}

// Strategy names how a recommendation list was made.
type Strategy string

// Strategies.
const (
	StrategyALS      Strategy = "als"      // from the visitor's factors
	StrategyTrending Strategy = "trending" // no history yet: recency-weighted popularity
)

// RecResponse is the answer to a RecRequest.
type RecResponse struct {
	Visitor  string   `json:"visitor"`
	Strategy Strategy `json:"strategy"`
	Items    []Rec    `json:"items"`
}
