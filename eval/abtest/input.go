package abtest

import (
	"errors"
	"fmt"
	"math"
)

// Metric names the quantity compared between variants.
type Metric string

const (
	// Conversion compares conversion rates conversions/users with the
	// two-proportion z test and Beta posteriors.
	Conversion Metric = "conversion"
	// Revenue compares revenue per visitor sum/users with Welch's t test and
	// normal posteriors; every user counts, with 0 if they spent nothing.
	Revenue Metric = "revenue"
)

// Defaults used by Input.WithDefaults for fields left at zero.
const (
	DefaultAlpha  = 0.05
	DefaultTuning = 5000
	DefaultFloor  = 0.01
	DefaultSeed   = 1
	// SRMThreshold is the p-value below which a sample-ratio mismatch is
	// flagged.
	SRMThreshold = 0.001
	// ExactArms is the largest number of arms for which Thompson weights are
	// computed by quadrature; beyond it they are estimated by Monte Carlo
	// with MonteCarloDraws draws.
	ExactArms       = 4
	MonteCarloDraws = 200_000
)

// ErrInvalid is wrapped by every validation error; test with errors.Is.
var ErrInvalid = errors.New("invalid input")

// FieldError is one invalid field, named by its JSON path
// ("variants[1].conversions").
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Unwrap returns ErrInvalid.
func (e *FieldError) Unwrap() error { return ErrInvalid }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Variant holds the cumulative counts of one arm of an experiment.
type Variant struct {
	// Name identifies the arm ("A"); names are unique within an experiment.
	Name string `json:"name"`
	// Weight is the configured share of traffic (any non-negative scale;
	// normalised over the arms). It is used only by the SRM check. When every
	// weight is 0 the split is taken to be equal.
	Weight float64 `json:"weight"`
	// Users is the number of units (visitors) assigned to the arm.
	Users int64 `json:"users"`
	// Conversions is the number of those users who converted.
	Conversions int64 `json:"conversions"`
	// Sum and SumSquares are Σx and Σx² of the per-user metric value x
	// (revenue), over all Users including those with x = 0. Revenue only.
	Sum        float64 `json:"sum"`
	SumSquares float64 `json:"sum_squares"`
}

// Look is an earlier cumulative snapshot of the same experiment, used for
// the always-valid p-value (the minimum of the sequential p-values over all
// looks).
type Look struct {
	Variants []Variant `json:"variants"`
}

// Input is one experiment to analyse. The first variant is the control.
type Input struct {
	// Metric is Conversion (default) or Revenue.
	Metric Metric `json:"metric"`
	// Alpha is the two-sided significance level, in (0, 1); 0 means
	// DefaultAlpha. Intervals have coverage 1 − Alpha.
	Alpha float64 `json:"alpha"`
	// Tuning is N*, the total sample size at which the sequential confidence
	// sequence is tightest; 0 means DefaultTuning.
	Tuning float64 `json:"tuning"`
	// Floor is the minimum Thompson allocation weight per arm, in [0, 1);
	// 0 means DefaultFloor. Use a negative value for no floor.
	Floor float64 `json:"floor"`
	// Seed seeds the Monte Carlo estimate of Thompson weights for more than
	// ExactArms arms; 0 means DefaultSeed.
	Seed uint64 `json:"seed"`
	// Variants are the arms; Variants[0] is the control.
	Variants []Variant `json:"variants"`
	// History holds earlier looks, oldest first (optional).
	History []Look `json:"history,omitempty"`
}

// WithDefaults returns in with zero fields replaced by their defaults.
func (in Input) WithDefaults() Input {
	if in.Metric == "" {
		in.Metric = Conversion
	}
	if in.Alpha == 0 {
		in.Alpha = DefaultAlpha
	}
	if in.Tuning == 0 {
		in.Tuning = DefaultTuning
	}
	switch {
	case in.Floor == 0:
		in.Floor = DefaultFloor
	case in.Floor < 0:
		in.Floor = 0
	}
	if in.Seed == 0 {
		in.Seed = DefaultSeed
	}
	return in
}

// Validate reports every problem of in at once, as errors joined with
// errors.Join; each wraps ErrInvalid and names its field. Call it on
// in.WithDefaults().
func (in Input) Validate() error {
	var errs []error
	switch in.Metric {
	case Conversion, Revenue:
	default:
		errs = append(errs, fieldErr("metric", "%q is not conversion or revenue", in.Metric))
	}
	if !(in.Alpha > 0 && in.Alpha < 1) {
		errs = append(errs, fieldErr("alpha", "%v not in (0, 1)", in.Alpha))
	}
	if !(in.Tuning > 0) || math.IsInf(in.Tuning, 0) {
		errs = append(errs, fieldErr("tuning", "%v is not a positive number", in.Tuning))
	}
	if !(in.Floor >= 0 && in.Floor < 1) {
		errs = append(errs, fieldErr("floor", "%v not in [0, 1)", in.Floor))
	}
	if len(in.Variants) < 2 {
		errs = append(errs, fieldErr("variants", "need at least 2 variants (control first), got %d", len(in.Variants)))
	}
	errs = append(errs, validateVariants("variants", in.Metric, in.Variants)...)
	for h, look := range in.History {
		path := fmt.Sprintf("history[%d].variants", h)
		if len(look.Variants) != len(in.Variants) {
			errs = append(errs, fieldErr(path, "%d variants, want %d as in variants", len(look.Variants), len(in.Variants)))
			continue
		}
		for i, v := range look.Variants {
			if v.Name != in.Variants[i].Name {
				errs = append(errs, fieldErr(fmt.Sprintf("%s[%d].name", path, i), "%q, want %q as in variants", v.Name, in.Variants[i].Name))
			}
		}
		errs = append(errs, validateVariants(path, in.Metric, look.Variants)...)
	}
	return errors.Join(errs...)
}

func validateVariants(path string, metric Metric, vs []Variant) []error {
	var errs []error
	seen := make(map[string]int, len(vs))
	for i, v := range vs {
		p := fmt.Sprintf("%s[%d]", path, i)
		if v.Name == "" {
			errs = append(errs, fieldErr(p+".name", "empty"))
		} else if j, dup := seen[v.Name]; dup {
			errs = append(errs, fieldErr(p+".name", "%q repeats %s[%d]", v.Name, path, j))
		} else {
			seen[v.Name] = i
		}
		if !(v.Weight >= 0) || math.IsInf(v.Weight, 0) {
			errs = append(errs, fieldErr(p+".weight", "%v is not a non-negative number", v.Weight))
		}
		if v.Users < 0 {
			errs = append(errs, fieldErr(p+".users", "%d < 0", v.Users))
		}
		if v.Conversions < 0 {
			errs = append(errs, fieldErr(p+".conversions", "%d < 0", v.Conversions))
		} else if v.Users >= 0 && v.Conversions > v.Users {
			errs = append(errs, fieldErr(p+".conversions", "%d > users %d", v.Conversions, v.Users))
		}
		if metric != Revenue {
			continue
		}
		if math.IsNaN(v.Sum) || math.IsInf(v.Sum, 0) {
			errs = append(errs, fieldErr(p+".sum", "%v is not a finite number", v.Sum))
		}
		if !(v.SumSquares >= 0) || math.IsInf(v.SumSquares, 0) {
			errs = append(errs, fieldErr(p+".sum_squares", "%v is not a non-negative finite number", v.SumSquares))
			continue
		}
		// Cauchy–Schwarz: (Σx)² ≤ n·Σx², with room for rounding.
		if n := float64(v.Users); n > 0 && v.Sum*v.Sum > n*v.SumSquares*(1+1e-9) {
			errs = append(errs, fieldErr(p+".sum_squares", "%v < sum²/users = %v: impossible", v.SumSquares, v.Sum*v.Sum/n))
		}
		if v.Users == 0 && (v.Sum != 0 || v.SumSquares != 0) {
			errs = append(errs, fieldErr(p+".sum", "non-zero sums with 0 users"))
		}
	}
	return errs
}
