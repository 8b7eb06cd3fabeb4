package engine

import (
	"sync"
	"time"

	"github.com/kairoshq/kairos/engine/filter"
	"github.com/kairoshq/kairos/model"
)

// serving is the engine's serving part: the caches of the ranking
// strategies (recommend.go, coldstart.go, strategy*.go) — item moments of
// the blend, top trending rows, item neighbours — and the pool of
// per-request scratch. Requests read the catalog under its mu and the
// live model; they never write either.
type serving struct {
	candMu    sync.Mutex // guards the blend's caches below
	mom       *model.Moments
	momOf     *model.Online
	momAt     time.Time
	momBusy   bool
	momMu     sync.Mutex // single-flights the first computation of mom
	trendTops map[string]*trendTop
	neigh     map[int32]*cachedRows
	// pop is the item rows' all-time popularity (model.Online.Popularity)
	// of popOf as of popAt, replaced whole on refresh (popularity);
	// popBusy while one request refreshes it.
	pop     []float32
	popOf   *model.Online
	popAt   time.Time
	popBusy bool

	scorers sync.Pool // *scratch

	views *filter.Views // filter and boost expressions evaluated per item (filters.go)
}
