package engine

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/kairoshq/kairos/internal/defaults"
	"github.com/kairoshq/kairos/model"
	"github.com/kairoshq/kairos/signals"
	"github.com/prometheus/client_golang/prometheus"
)

// Config configures an Engine. Zero fields take their Defaults.
type Config struct {
	// Params are the ALS hyperparameters of the live model (used when the
	// store holds no model yet; a loaded snapshot brings its own).
	Params model.Params
	// Weights turn events into learning weights.
	Weights signals.Weights
	// SessionGap ends a session after this much inactivity (default 30 min).
	SessionGap time.Duration
	// TrendingHalfLife is the half-life of the trending fallback (default 24 h).
	TrendingHalfLife time.Duration
	// Blend mixes a visitor's fold-in with the request context while the
	// visitor has few events (default model.DefaultBlend: κ = 8, τ = 0.75).
	Blend model.Blend
	// BlendBelow is the number of learning events from which a visitor is
	// ranked by the fold-in alone (default 20; w(20) = 0.71 with κ = 8).
	BlendBelow int
	// MaxSegments bounds the trending segments kept (campaigns, referrer
	// hosts, device classes; default 100).
	MaxSegments int
	// MaxResults bounds n of a recommendation request (default 100).
	MaxResults int
	// Replica names this engine among its peers (default "0"); it tags the
	// updates it broadcasts so that it ignores its own.
	Replica string
	// StateEvery is how often the engine persists its in-memory state
	// (XᵀX, trending counters) to the store (default 10 s).
	StateEvery time.Duration
	// Index configures the approximate top-K index.
	Index IndexConfig
	// FilterMemory bounds the memory of the per-item views of filter and
	// boost expressions (filters.go; default 64 MB: about 150 views with a
	// boost, 5,000 without, at 100k items).
	FilterMemory int
	// Logger receives the engine's logs (nil: discard).
	Logger *slog.Logger
	// Registerer receives the engine's metrics (nil: not registered).
	Registerer prometheus.Registerer
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// IndexConfig configures the approximate index (model.IVF) that serves
// recommendations and similar items for large catalogs (index.go). Exact
// scoring streams every item's factors per request (batched across
// concurrent requests); the index scans the int8 codes of the best lists
// and re-ranks a shortlist exactly: recall@10 ≥ 0.95 with the automatic
// parameters (README, "Benchmarks").
type IndexConfig struct {
	// Disabled turns the index off: every request is scored exactly.
	Disabled bool
	// MinItems is the catalog size from which the index is used (default
	// 20,000; below it exact scoring is already fast).
	MinItems int
	// Lists is the number of clusters (0: 2√n, model.AutoLists).
	Lists int
	// Probe is the number of lists scanned per request (0: from the
	// number of lists, model.AutoProbe).
	Probe int
	// Shortlist is the number of candidates re-ranked exactly (0: from
	// the number of results, model.AutoShortlist).
	Shortlist int
	// RefreshEvery is how often changed items are moved to their best
	// list and new items assigned one (default 250 ms; until then they
	// are scored with their current factors in their old list, or
	// exactly in the overflow).
	RefreshEvery time.Duration
	// Drift is the share of the catalog moved between lists since the
	// last build from which the index is reclustered (default 0.2).
	Drift float64
	// RebuildEvery reclusters the index in the background at least this
	// often (default 1 h).
	RebuildEvery time.Duration
}

// Defaults returns c with every zero field set to its default.
func (c Config) Defaults() Config {
	if c.Params.Factors == 0 {
		c.Params = model.DefaultParams()
	}
	defaults.Set(&c.Weights, signals.DefaultWeights())
	defaults.Set(&c.SessionGap, 30*time.Minute)
	defaults.Set(&c.TrendingHalfLife, 24*time.Hour)
	defaults.Set(&c.Blend, model.DefaultBlend())
	defaults.Set(&c.BlendBelow, 20)
	defaults.Set(&c.MaxSegments, 100)
	defaults.Set(&c.MaxResults, 100)
	defaults.Set(&c.Replica, "0")
	defaults.Set(&c.StateEvery, 10*time.Second)
	defaults.Set(&c.Index.MinItems, 20_000)
	defaults.Set(&c.Index.RefreshEvery, 250*time.Millisecond)
	defaults.Set(&c.Index.Drift, 0.2)
	defaults.Set(&c.Index.RebuildEvery, time.Hour)
	defaults.Set(&c.FilterMemory, 64<<20)
	c.Logger = defaults.Logger(c.Logger)
	c.Now = defaults.Clock(c.Now)
	return c
}

// Validate reports every problem of c (after Defaults) at once.
func (c Config) Validate() error {
	var errs []error
	if err := c.Params.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Weights.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.SessionGap < time.Second {
		errs = append(errs, fmt.Errorf("session gap %v is below 1s", c.SessionGap))
	}
	if c.TrendingHalfLife < 0 {
		errs = append(errs, fmt.Errorf("trending half-life %v is negative", c.TrendingHalfLife))
	}
	if c.MaxResults < 1 || c.MaxResults > 10_000 {
		errs = append(errs, fmt.Errorf("max results %d outside [1, 10000]", c.MaxResults))
	}
	if c.StateEvery < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("state interval %v is below 100ms", c.StateEvery))
	}
	if c.Index.Lists < 0 || c.Index.Probe < 0 || c.Index.Shortlist < 0 {
		errs = append(errs, fmt.Errorf("index: lists %d, probe %d and shortlist %d must be >= 0 (0: automatic)", c.Index.Lists, c.Index.Probe, c.Index.Shortlist))
	}
	if c.Index.MinItems < 1 || c.Index.RebuildEvery < time.Second || c.Index.RefreshEvery < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("index: min items %d must be >= 1, rebuild interval %v >= 1s, refresh interval %v >= 10ms", c.Index.MinItems, c.Index.RebuildEvery, c.Index.RefreshEvery))
	}
	if !(c.Index.Drift > 0 && c.Index.Drift <= 1) {
		errs = append(errs, fmt.Errorf("index drift %v outside (0, 1]", c.Index.Drift))
	}
	if len(errs) > 0 {
		return fmt.Errorf("engine: invalid config: %w", errors.Join(errs...))
	}
	return nil
}
