package promo

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/kairoshq/kairos/internal/defaults"
	"github.com/prometheus/client_golang/prometheus"
)

// Config configures an Engine. Zero fields take their Defaults.
type Config struct {
	// Factors is k, the number of latent factors of the model (required
	// with a Model; kairos serve passes the engine's).
	Factors int
	// AffinityWeight w blends a visitor's predicted affinity a (clamped
	// to [0, 1]) with the Thompson sample θ of the offer's click-through:
	// score = (1−w)·θ + w·a (default 0.5).
	AffinityWeight float64
	// PriorStrength is the weight, in impressions, of the prior of each
	// offer's Thompson sample: the slot's pooled click-through (default
	// 10). It keeps offers without impressions from drawing their
	// click-through from the whole [0, 1] range, which would drown the
	// visitor's affinity in noise; negative is invalid.
	PriorStrength float64
	// OwnShrink s weighs an offer's own learnt factor against the factors
	// of what it promotes: with c clicks, the own share is c/(c+s)
	// (default 10).
	OwnShrink float64
	// LearnRate and Reg are the step and the L2 penalty of the online
	// update of an offer's own factor (defaults 0.05 and 0.01).
	LearnRate, Reg float64
	// PromotionTTL is how long a promotion may still be delivered after
	// it fired (default 10 min): streams replay only unexpired ones.
	PromotionTTL time.Duration
	// LogKeep is the number of promotions kept per visitor for replay
	// (default 50).
	LogKeep int
	// TokenTTL: older tokens no longer attribute events (default 30 days).
	TokenTTL time.Duration
	// RequireToken counts impressions, clicks and conversions only when
	// they carry a valid token; by default an event naming an offer
	// (without a token) counts too.
	RequireToken bool
	// ReloadEvery is how often definitions (when another replica changed
	// them) and offer counters are reloaded from the store (default 2 s).
	ReloadEvery time.Duration
	// RefreshEvery is how often the factor centroids of offers' items and
	// categories are recomputed (default 30 s).
	RefreshEvery time.Duration
	// MaxCategoryItems bounds the items of a category used for its
	// centroid (default 1000, the first by id).
	MaxCategoryItems int
	// MaxResults bounds n of an offer request (default 100).
	MaxResults int
	// CooldownCache bounds the cooldowns remembered in memory (default
	// 100,000; the store is the authority).
	CooldownCache int
	// Seed seeds the exploration RNG (0: random).
	Seed uint64
	// Logger receives the engine's logs (nil: discard).
	Logger *slog.Logger
	// Registerer receives the metrics (nil: not registered).
	Registerer prometheus.Registerer
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Defaults returns c with every zero field set to its default.
func (c Config) Defaults() Config {
	defaults.Set(&c.AffinityWeight, 0.5)
	defaults.Set(&c.PriorStrength, 10)
	defaults.Set(&c.OwnShrink, 10)
	defaults.Set(&c.LearnRate, 0.05)
	defaults.Set(&c.Reg, 0.01)
	defaults.Set(&c.PromotionTTL, 10*time.Minute)
	defaults.Set(&c.TokenTTL, 30*24*time.Hour)
	defaults.Set(&c.ReloadEvery, 2*time.Second)
	defaults.Set(&c.RefreshEvery, 30*time.Second)
	defaults.Set(&c.LogKeep, 50)
	defaults.Set(&c.MaxCategoryItems, 1000)
	defaults.Set(&c.MaxResults, 100)
	defaults.Set(&c.CooldownCache, 100_000)
	c.Logger = defaults.Logger(c.Logger)
	c.Now = defaults.Clock(c.Now)
	return c
}

// Validate reports every problem of c (after Defaults) at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Factors < 0 || c.Factors > 4096 {
		bad("factors %d outside [0, 4096]", c.Factors)
	}
	if !(c.AffinityWeight >= 0 && c.AffinityWeight <= 1) {
		bad("affinity weight %v outside [0, 1]", c.AffinityWeight)
	}
	if !(c.PriorStrength >= 0 && c.PriorStrength <= 1e6) {
		bad("prior strength %v outside [0, 1e6]", c.PriorStrength)
	}
	if !(c.OwnShrink > 0) || !(c.LearnRate > 0 && c.LearnRate <= 1) || !(c.Reg >= 0 && c.Reg < 1) {
		bad("own shrink %v must be > 0, learn rate %v in (0, 1], reg %v in [0, 1)", c.OwnShrink, c.LearnRate, c.Reg)
	}
	if c.PromotionTTL < time.Second || c.TokenTTL < time.Minute {
		bad("promotion TTL %v must be >= 1s and token TTL %v >= 1m", c.PromotionTTL, c.TokenTTL)
	}
	if c.LogKeep < 1 || c.LogKeep > 10_000 {
		bad("log keep %d outside [1, 10000]", c.LogKeep)
	}
	if c.ReloadEvery < 10*time.Millisecond || c.RefreshEvery < 10*time.Millisecond {
		bad("reload interval %v and refresh interval %v must be >= 10ms", c.ReloadEvery, c.RefreshEvery)
	}
	if c.MaxCategoryItems < 1 || c.MaxResults < 1 || c.MaxResults > 1000 || c.CooldownCache < 1 {
		bad("max category items %d, max results %d (<= 1000) and cooldown cache %d must be >= 1", c.MaxCategoryItems, c.MaxResults, c.CooldownCache)
	}
	if len(errs) > 0 {
		return fmt.Errorf("promo: invalid config: %w", errors.Join(errs...))
	}
	return nil
}
