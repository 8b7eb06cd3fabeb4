package experiments

import (
	"errors"
	"fmt"
	"time"

	"github.com/kairoshq/kairos/internal/errs"
)

// ErrConflict is returned (wrapped) when a definition cannot be written
// as asked: another experiment targets the same surface during an
// overlapping time, a started experiment's fixed parts would change, or
// an id already exists where it must not.
var ErrConflict = fmt.Errorf("experiments: %w", errs.Conflict)

// ErrStaleUnits is returned by UnitStore.UpdateUnits when a unit changed
// since it was read (another replica wrote it): nothing was applied and
// the caller reads again and retries.
var ErrStaleUnits = errors.New("experiments: units changed since read")

// Surface is where an experiment's variants are served.
type Surface string

// The surfaces an experiment can target.
const (
	// SurfaceOffers: GET /v1/offers for the target's slot; a variant
	// names the offer shown first, the campaign whose offers are ranked,
	// or a holdout (no offers).
	SurfaceOffers Surface = "offers"
	// SurfaceRecommendations: GET /v1/recommendations; a variant carries
	// recommendation parameters (RecParams).
	SurfaceRecommendations Surface = "recommendations"
	// SurfacePromotions: the promotions a rule pushes; a variant names
	// the offer pushed, or a holdout (nothing pushed).
	SurfacePromotions Surface = "promotions"
)

// Mode is how traffic is split between variants.
type Mode string

// The modes.
const (
	// ModeFixed splits traffic by the configured weights.
	ModeFixed Mode = "fixed"
	// ModeBandit re-weights traffic by Thompson sampling on the primary
	// metric every BanditEvery, with a floor share per arm.
	ModeBandit Mode = "bandit"
)

// Metric is an outcome measured per unit (see the package documentation
// for the exact definition of x per unit).
type Metric string

// The metrics. Every unit carries all four; Experiment.Metric picks the
// primary one and Guardrails others.
const (
	// MetricCTR: x = 1 if the unit clicked what the surface shows (an
	// offer for offers and promotions, an item for recommendations)
	// within the attribution window, else 0.
	MetricCTR Metric = "ctr"
	// MetricAddToCart: x = 1 if the unit added to its cart within the
	// window, else 0.
	MetricAddToCart Metric = "add_to_cart"
	// MetricConversion: x = 1 if the unit converted within the window,
	// else 0.
	MetricConversion Metric = "conversion"
	// MetricRevenue: x = the unit's total conversion value within the
	// window (0 when none): revenue per visitor.
	MetricRevenue Metric = "revenue"
)

// Valid reports whether m is one of the four metrics.
func (m Metric) Valid() bool {
	return m == MetricCTR || m == MetricAddToCart || m == MetricConversion || m == MetricRevenue
}

// Target is what an experiment takes over: a surface and, for offers, the
// slot, for promotions, the rule.
type Target struct {
	Surface Surface `json:"surface"`
	// Slot is the offer slot (offers; required).
	Slot string `json:"slot,omitempty"`
	// Rule is the promotion rule's id (promotions; required).
	Rule string `json:"rule,omitempty"`
}

// RecParams are the recommendation parameters of a variant of a
// recommendations experiment; unset members keep the request's.
type RecParams struct {
	// Strategy "trending" serves recency-weighted popularity to every
	// visitor; "" (default) lets the engine choose.
	Strategy string `json:"strategy,omitempty"`
	// BlendBelow replaces the engine's --blend-below: visitors with fewer
	// learning events get the fold-in blended with context and trending.
	BlendBelow int `json:"blend_below,omitempty"`
	// ExcludeSeen, when set, replaces the request's exclude_seen.
	ExcludeSeen *bool `json:"exclude_seen,omitempty"`
}

// Variant is one arm of an experiment.
type Variant struct {
	// Name identifies the arm in results ("A", "control", "big-banner").
	Name string `json:"name"`
	// Weight is the share of traffic (any non-negative scale; normalised
	// over the arms). In bandit mode it is the allocation until the
	// first re-weighting.
	Weight float64 `json:"weight"`
	// Offer is the offer served (offers: ranked first; promotions: the
	// offer pushed).
	Offer string `json:"offer,omitempty"`
	// Campaign restricts an offers variant to that campaign's offers.
	Campaign string `json:"campaign,omitempty"`
	// Params are a recommendations variant's parameters.
	Params *RecParams `json:"params,omitempty"`
	// Holdout serves nothing (offers: an empty list; promotions: no
	// push), to measure the effect of the surface itself.
	Holdout bool `json:"holdout,omitempty"`
}

// Guardrail is a metric that must not get worse. Its status per variant
// is "fail" when the always-valid confidence sequence of the difference
// lies entirely below −MaxDrop·|control mean|, "warn" when the point
// estimate does, "ok" otherwise.
type Guardrail struct {
	Metric Metric `json:"metric"`
	// MaxDrop is the tolerated relative drop (0.05 = 5 %; default 0).
	MaxDrop float64 `json:"max_drop"`
}

// Experiment is an A/B (or bandit) experiment. See the package
// documentation for the JSON form and the validation rules.
type Experiment struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
	// Salt seeds the assignment hash (default: the id). Two experiments
	// with different salts split visitors independently.
	Salt   string `json:"salt"`
	Target Target `json:"target"`
	Mode   Mode   `json:"mode"`
	// Variants are the arms; Variants[0] is the control.
	Variants []Variant `json:"variants"`
	// Start and Stop bound when variants are served (each optional: no
	// Start = from creation, no Stop = until stopped).
	Start *time.Time `json:"start,omitempty"`
	Stop  *time.Time `json:"stop,omitempty"`
	// Metric is the primary metric (default conversion).
	Metric     Metric      `json:"metric"`
	Guardrails []Guardrail `json:"guardrails,omitempty"`
	// AttributionWindow: an outcome counts when its time is in
	// [first exposure, first exposure + window) (default 24h).
	AttributionWindow Duration `json:"attribution_window"`
	// BanditEvery is the least time between two re-weightings (bandit
	// mode; default 15m).
	BanditEvery Duration `json:"bandit_every"`
	// Floor is the least share of traffic of every arm in bandit mode
	// (default 0.01).
	Floor float64 `json:"floor"`
	// Alpha is the significance level of the results (default 0.05);
	// Tuning the sequential test's N* (default 5000).
	Alpha   float64   `json:"alpha"`
	Tuning  float64   `json:"tuning"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

// Status is the state of an experiment at a time.
type Status string

// The statuses.
const (
	StatusScheduled Status = "scheduled" // before Start
	StatusRunning   Status = "running"   // serving variants
	StatusStopped   Status = "stopped"   // at or after Stop
)

// StatusAt returns the experiment's status at t.
func (x *Experiment) StatusAt(t time.Time) Status {
	switch {
	case x.Start != nil && t.Before(*x.Start):
		return StatusScheduled
	case x.Stop != nil && !t.Before(*x.Stop):
		return StatusStopped
	}
	return StatusRunning
}

// VariantIndex returns the index of the variant named name, or -1.
func (x *Experiment) VariantIndex(name string) int {
	for i := range x.Variants {
		if x.Variants[i].Name == name {
			return i
		}
	}
	return -1
}

// Weights returns the configured weights normalised to sum 1 (equal when
// they are all 0).
func (x *Experiment) Weights() []float64 {
	w := make([]float64, len(x.Variants))
	var sum float64
	for i, v := range x.Variants {
		w[i] = v.Weight
		sum += v.Weight
	}
	for i := range w {
		if sum > 0 {
			w[i] /= sum
		} else {
			w[i] = 1 / float64(len(w))
		}
	}
	return w
}

// window returns the attribution window.
func (x *Experiment) window() time.Duration { return time.Duration(x.AttributionWindow) }

// Assignment is a subject's sticky variant in one experiment.
type Assignment struct {
	// Variant is the arm's name ("" = no assignment).
	Variant string
	// At is when it was first decided.
	At time.Time
	// Propensity is the probability with which the arm was chosen (its
	// weight at that time).
	Propensity float64
}

// Counts are one variant's cumulative counts: n units and, per metric, Σx
// (and Σx² for revenue). Binary metrics have Σx² = Σx. Revenue is kept
// in hundredths of the currency unit (cents), exactly, as integers:
// Revenue is Σx in cents and RevenueSq is Σx² in cents² as four
// base-2³² limbs (value = Σ RevenueSq[i]·2³²ⁱ), so that sums never
// overflow or round and a rebuild from the archive is exact.
type Counts struct {
	// N is the number of units (subjects exposed for the first time).
	N int64 `json:"n"`
	// Expected is Σ over exposures of this arm's weight at that exposure,
	// in millionths: the SRM check's expected share (it follows weight
	// changes and bandit re-weighting).
	Expected int64 `json:"expected"`
	// Clicks, Carts and Conversions count the units whose x is 1 for the
	// ctr, add_to_cart and conversion metrics.
	Clicks      int64 `json:"clicks"`
	Carts       int64 `json:"carts"`
	Conversions int64 `json:"conversions"`
	// Revenue is Σx of the revenue metric in cents.
	Revenue int64 `json:"revenue_cents"`
	// RevenueSq is Σx² of the revenue metric in cents², as limbs.
	RevenueSq [4]int64 `json:"revenue_sq_limbs"`
}

// Add adds d to c.
func (c *Counts) Add(d Counts) {
	c.N += d.N
	c.Expected += d.Expected
	c.Clicks += d.Clicks
	c.Carts += d.Carts
	c.Conversions += d.Conversions
	c.Revenue += d.Revenue
	for i := range c.RevenueSq {
		c.RevenueSq[i] += d.RevenueSq[i]
	}
}

// IsZero reports whether c counts nothing.
func (c Counts) IsZero() bool { return c == Counts{} }

// Look is a snapshot of an experiment's counts, for the always-valid
// p-value and the results' history.
type Look struct {
	At     time.Time         `json:"at"`
	Counts map[string]Counts `json:"counts"`
}

// Weights are a bandit experiment's current allocation.
type Weights struct {
	// Version increases with every re-weighting (0: never re-weighted).
	Version int64     `json:"version"`
	At      time.Time `json:"at"`
	// Weights maps each variant to its share (they sum to 1).
	Weights map[string]float64 `json:"weights"`
}
