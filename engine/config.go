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
	// Logger receives the engine's logs (nil: discard).
	Logger *slog.Logger
	// Registerer receives the engine's metrics (nil: not registered).
	Registerer prometheus.Registerer
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// IndexConfig configures the approximate index (model.IVF) that serves
// recommendations for large catalogs. Exact scoring streams every item's
// factors per request; the index scores only the best clusters, with exact
// scores and recall@10 of about 0.96 at the default probe share (README,
// "Benchmarks").
type IndexConfig struct {
	// Disabled turns the index off: every request is scored exactly.
	Disabled bool
	// MinItems is the catalog size from which the index is used (default
	// 20,000; below it exact scoring is already fast).
	MinItems int
	// ProbeShare is the share of clusters scanned per request (default
	// 0.08: recall@10 ≈ 0.96 on ALS factors of MovieLens latest-small).
	ProbeShare float64
	// MinProbe is the least number of clusters scanned (default 8).
	MinProbe int
	// RebuildEvery rebuilds the index in the background (default 10 min);
	// it is also rebuilt when more than 10 % of the items joined since the
	// last build (they are scanned exactly until then).
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
	defaults.Set(&c.Index.ProbeShare, 0.08)
	defaults.Set(&c.Index.MinProbe, 8)
	defaults.Set(&c.Index.RebuildEvery, 10*time.Minute)
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
	if !(c.Index.ProbeShare > 0 && c.Index.ProbeShare <= 1) {
		errs = append(errs, fmt.Errorf("index probe share %v outside (0, 1]", c.Index.ProbeShare))
	}
	if c.Index.MinProbe < 1 || c.Index.MinItems < 1 || c.Index.RebuildEvery < time.Second {
		errs = append(errs, fmt.Errorf("index: min probe %d and min items %d must be >= 1, rebuild interval %v >= 1s", c.Index.MinProbe, c.Index.MinItems, c.Index.RebuildEvery))
	}
	if len(errs) > 0 {
		return fmt.Errorf("engine: invalid config: %w", errors.Join(errs...))
	}
	return nil
}
