package holdout

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/kairoshq/kairos/eval/abtest"
)

// ArmCounts are one arm's raw counts.
type ArmCounts struct {
	Arm Arm `json:"arm"`
	// Units are the subjects (visitors, or users once identified) counted
	// in the arm.
	Units int64 `json:"units"`
	// Converters are the units with a conversion; Conversions counts the
	// conversion events.
	Converters  int64 `json:"converters"`
	Conversions int64 `json:"conversions"`
	// Revenue is the sum of the units' revenue; RevenueSq the sum of its
	// squares per unit (what the t test needs).
	Revenue   float64 `json:"revenue"`
	RevenueSq float64 `json:"revenue_sq"`
	// ConversionRate is Converters / Units, RevenuePerVisitor Revenue /
	// Units (0 without units).
	ConversionRate    float64 `json:"conversion_rate"`
	RevenuePerVisitor float64 `json:"revenue_per_visitor"`
}

// Results is the lift of the whole personalization layer: GET
// /v1/holdout/results. The holdout is the control (Variants[0] of each
// report), so a positive lift is what personalization adds.
type Results struct {
	// Share is the configured share held out; On is Share > 0.
	Share float64 `json:"share"`
	On    bool    `json:"on"`
	// AsOf is when the counts were read.
	AsOf time.Time `json:"as_of"`
	// Arms are the counts, holdout first.
	Arms []ArmCounts `json:"arms"`
	// Conversion and Revenue are abtest.Analyze of the conversion rate
	// and of the revenue per visitor — the statistics of experiments
	// (engine/experiments, `kairos eval abtest`).
	Conversion abtest.Report `json:"conversion"`
	Revenue    abtest.Report `json:"revenue"`
	// Verdict joins the two reports' verdicts.
	Verdict string `json:"verdict"`
	// Inputs are what the reports analyse (pipe one to `kairos eval abtest`).
	Inputs struct {
		Conversion abtest.Input `json:"conversion"`
		Revenue    abtest.Input `json:"revenue"`
	} `json:"inputs"`
}

// Counts returns the counters of both arms, holdout first, summed over
// the shards.
func (h *Holdout) Counts(ctx context.Context) ([]ArmCounts, error) {
	keys := make([]string, Shards)
	for i := range keys {
		keys[i] = counterPrefix + strconv.Itoa(i)
	}
	ms, err := h.maps.Maps(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("holdout: read counts: %w", err)
	}
	arms := []ArmCounts{{Arm: ArmHoldout}, {Arm: ArmPersonalized}}
	for _, m := range ms {
		for f, v := range m {
			arm, name, _ := strings.Cut(f, ":")
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("holdout: counter %s is %q, not an integer", f, v)
			}
			for i := range arms {
				if string(arms[i].Arm) == arm {
					add(&arms[i], name, n)
				}
			}
		}
	}
	for i := range arms {
		a := &arms[i]
		if a.Units > 0 {
			a.ConversionRate = float64(a.Converters) / float64(a.Units)
			a.RevenuePerVisitor = a.Revenue / float64(a.Units)
		}
	}
	return arms, nil
}

func add(a *ArmCounts, name string, n int64) {
	switch name {
	case "units":
		a.Units += n
	case "converters":
		a.Converters += n
	case "conversions":
		a.Conversions += n
	case "revenue":
		a.Revenue += float64(n) / 100
	case "revenue_sq":
		a.RevenueSq += float64(n) / 1e4
	}
}

// Input returns the abtest input of metric from arms (holdout first):
// users are units, conversions converters, and for revenue Σx and Σx² of
// the revenue per unit; the weights are the configured split, for the
// sample-ratio-mismatch check.
func (h *Holdout) Input(metric abtest.Metric, arms []ArmCounts) abtest.Input {
	in := abtest.Input{Metric: metric}
	for _, a := range arms {
		w := 1 - h.cfg.Share
		if a.Arm == ArmHoldout {
			w = h.cfg.Share
		}
		v := abtest.Variant{Name: string(a.Arm), Weight: w, Users: a.Units, Conversions: a.Converters}
		if metric == abtest.Revenue {
			v.Sum, v.SumSquares = a.Revenue, a.RevenueSq
		}
		in.Variants = append(in.Variants, v)
	}
	return in
}

// Results reads the counts and analyses them (see Results). With the
// holdout off the counts are those of the last time it was on.
func (h *Holdout) Results(ctx context.Context) (Results, error) {
	arms, err := h.Counts(ctx)
	if err != nil {
		return Results{}, err
	}
	r := Results{Share: h.cfg.Share, On: h.On(), AsOf: h.cfg.Now().UTC(), Arms: arms}
	r.Inputs.Conversion = h.Input(abtest.Conversion, arms)
	r.Inputs.Revenue = h.Input(abtest.Revenue, arms)
	if !r.On {
		// abtest needs a positive weight: equal weights (no SRM check
		// against a split that is not configured).
		for i := range arms {
			r.Inputs.Conversion.Variants[i].Weight, r.Inputs.Revenue.Variants[i].Weight = 0, 0
		}
	}
	if r.Conversion, err = abtest.Analyze(r.Inputs.Conversion); err != nil {
		return Results{}, fmt.Errorf("holdout: analyse conversion: %w", err)
	}
	if r.Revenue, err = abtest.Analyze(r.Inputs.Revenue); err != nil {
		return Results{}, fmt.Errorf("holdout: analyse revenue: %w", err)
	}
	r.Verdict = r.Conversion.Verdict + " | " + r.Revenue.Verdict
	return r, nil
}
