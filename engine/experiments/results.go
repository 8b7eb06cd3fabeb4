package experiments

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/kairoshq/kairos/eval/abtest"
	"github.com/kairoshq/kairos/internal/jsondef"
)

// Results is the analysis of an experiment: GET /v1/experiments/{id}/results.
// Report is abtest.Analyze of Input — the same code as `kairos eval
// abtest`, which prints the same Report when fed Input.
type Results struct {
	Experiment Experiment `json:"experiment"`
	Status     Status     `json:"status"`
	// AsOf is when the counts were read.
	AsOf time.Time `json:"as_of"`
	// Metric is the primary metric (Report.Metric names it too).
	Metric Metric `json:"metric"`
	// Counts are the raw counts per variant, control first.
	Counts []VariantCounts `json:"counts"`
	// Report is the analysis of the primary metric.
	Report abtest.Report `json:"report"`
	// Guardrails are the guardrail metrics' statuses.
	Guardrails []GuardrailResult `json:"guardrails,omitempty"`
	// Verdict is Report.Verdict followed by the guardrails' status.
	Verdict string `json:"verdict"`
	// Weights are a bandit's current allocation (nil before the first
	// re-weighting and in fixed mode).
	Weights *Weights `json:"weights,omitempty"`
	// History is one point per look, then the current counts: the series
	// a dashboard charts (lift, its interval and confidence sequence,
	// the always-valid p-value as the running minimum).
	History []HistoryPoint `json:"history,omitempty"`
	// Input is what Report analyses (pipe it to `kairos eval abtest`).
	Input abtest.Input `json:"input"`
}

// VariantCounts are one variant's raw counts, in metric units.
type VariantCounts struct {
	Variant string `json:"variant"`
	Units   int64  `json:"units"`
	// ExpectedShare is the share of units the assignment should give the
	// variant (from the weights at each exposure): the SRM check's
	// expectation.
	ExpectedShare float64 `json:"expected_share"`
	Clicks        int64   `json:"clicks"`
	Carts         int64   `json:"carts"`
	Conversions   int64   `json:"conversions"`
	// Revenue and RevenueSq are Σx and Σx² of revenue per unit.
	Revenue   float64 `json:"revenue"`
	RevenueSq float64 `json:"revenue_sq"`
}

// GuardrailResult is one guardrail's status: the worst of its variants'.
type GuardrailResult struct {
	Guardrail
	// Status is ok, warn or fail (see Guardrail).
	Status   string             `json:"status"`
	Variants []GuardrailVariant `json:"variants"`
}

// GuardrailVariant is one non-control variant against the control on a
// guardrail metric.
type GuardrailVariant struct {
	Variant string     `json:"variant"`
	Status  string     `json:"status"`
	Diff    abtest.Num `json:"diff"`
	Lift    abtest.Num `json:"lift"`
	// SeqLow and SeqHigh bound the difference at every look (the
	// always-valid confidence sequence).
	SeqLow            abtest.Num `json:"seq_low"`
	SeqHigh           abtest.Num `json:"seq_high"`
	AlwaysValidPValue abtest.Num `json:"always_valid_p_value"`
}

// Guardrail statuses.
const (
	GuardrailOK   = "ok"
	GuardrailWarn = "warn"
	GuardrailFail = "fail"
)

// HistoryPoint is the state of the experiment at one look.
type HistoryPoint struct {
	At       time.Time        `json:"at"`
	Variants []HistoryVariant `json:"variants"`
}

// HistoryVariant is one variant at one look; non-control variants carry
// the comparison with the control.
type HistoryVariant struct {
	Name  string     `json:"name"`
	Units int64      `json:"units"`
	Mean  abtest.Num `json:"mean"`
	*HistoryComparison
}

// HistoryComparison is a variant against the control at one look:
// the difference with its fixed-horizon interval, the relative lift with
// its delta-method interval, the always-valid confidence sequence of the
// difference (and divided by the control's mean, of the lift), this
// look's sequential p-value and the always-valid p-value (its running
// minimum up to this look).
type HistoryComparison struct {
	Diff              abtest.Num `json:"diff"`
	DiffLow           abtest.Num `json:"diff_low"`
	DiffHigh          abtest.Num `json:"diff_high"`
	Lift              abtest.Num `json:"lift"`
	LiftLow           abtest.Num `json:"lift_low"`
	LiftHigh          abtest.Num `json:"lift_high"`
	SeqLow            abtest.Num `json:"seq_low"`
	SeqHigh           abtest.Num `json:"seq_high"`
	SeqLiftLow        abtest.Num `json:"seq_lift_low"`
	SeqLiftHigh       abtest.Num `json:"seq_lift_high"`
	SeqPValue         abtest.Num `json:"seq_p_value"`
	AlwaysValidPValue abtest.Num `json:"always_valid_p_value"`
}

// ResultsOptions select what Results returns.
type ResultsOptions struct {
	// NoHistory leaves out History and Input.History (the report still
	// uses the looks).
	NoHistory bool
}

// Results analyses the experiment id from its stored counts and looks.
// Errors: engine.ErrNotFound; the store's.
func (e *Engine) Results(ctx context.Context, id string, opts ResultsOptions) (Results, error) {
	x, err := e.Get(id)
	if err != nil {
		return Results{}, err
	}
	now := e.cfg.Now().UTC()
	counts, err := e.store.ExperimentCounts(ctx, id)
	if err != nil {
		return Results{}, fmt.Errorf("experiments: counts: %w", err)
	}
	looks, err := e.store.ExperimentLooks(ctx, id)
	if err != nil {
		return Results{}, fmt.Errorf("experiments: looks: %w", err)
	}
	var w *Weights
	if x.Mode == ModeBandit {
		cur, err := e.store.BanditWeights(ctx, id)
		if err != nil {
			return Results{}, fmt.Errorf("experiments: weights: %w", err)
		}
		if cur.Version > 0 {
			w = &cur
		}
	}
	r, err := Analyze(&x, counts, looks, now, opts)
	if err != nil {
		return Results{}, err
	}
	r.Weights = w
	return r, nil
}

// Analyze builds the results of x from its counts and looks at time now:
// the primary metric's abtest.Analyze, the guardrails (each its own
// abtest.Analyze), the verdict and the history. It is what Results
// serves and what `kairos eval experiment` prints for rebuilt counts.
func Analyze(x *Experiment, counts map[string]Counts, looks []Look, now time.Time, opts ResultsOptions) (Results, error) {
	r := Results{Experiment: *x, Status: x.StatusAt(now), AsOf: now, Metric: x.Metric}
	var expected float64
	for _, v := range x.Variants {
		expected += float64(counts[v.Name].Expected)
	}
	for _, v := range x.Variants {
		c := counts[v.Name]
		vc := VariantCounts{Variant: v.Name, Units: c.N, Clicks: c.Clicks, Carts: c.Carts, Conversions: c.Conversions,
			Revenue: c.Sum(MetricRevenue), RevenueSq: c.SumSquares()}
		if expected > 0 {
			vc.ExpectedShare = float64(c.Expected) / expected
		}
		r.Counts = append(r.Counts, vc)
	}
	in := Input(x, x.Metric, counts, looks)
	rep, err := analyzeAs(in, x.Metric)
	if err != nil {
		return Results{}, fmt.Errorf("experiments: analyse %s: %w", jsondef.Quote(x.ID), err)
	}
	r.Report = rep
	verdict := rep.Verdict
	var gs []string
	for _, g := range x.Guardrails {
		gin := Input(x, g.Metric, counts, looks)
		grep, err := analyzeAs(gin, g.Metric)
		if err != nil {
			return Results{}, fmt.Errorf("experiments: analyse guardrail %s: %w", g.Metric, err)
		}
		gr := guardrail(g, grep)
		r.Guardrails = append(r.Guardrails, gr)
		s := string(g.Metric) + " " + gr.Status
		if gr.Status != GuardrailOK {
			var bad []string
			for _, v := range gr.Variants {
				if v.Status == gr.Status {
					bad = append(bad, v.Variant)
				}
			}
			s += " (" + strings.Join(bad, ", ") + ")"
		}
		gs = append(gs, s)
	}
	if len(gs) > 0 {
		verdict += " / guardrails: " + strings.Join(gs, ", ")
	}
	r.Verdict = verdict
	if !opts.NoHistory {
		r.History = History(in)
		for i := range looks {
			r.History[i].At = looks[i].At
		}
		r.History[len(looks)].At = now
	} else {
		in.History = nil
	}
	r.Input = in
	return r, nil
}

// Input maps an experiment's counts (and looks) to abtest's input for
// metric m: Users = units; for binary metrics Conversions = units with
// x = 1; for revenue Conversions = converted units and Sum, SumSquares =
// Σx, Σx² of revenue per unit; Weight = the expected share (so that the
// SRM check follows weight changes and bandit re-weighting). ctr and
// add_to_cart are analysed as conversion metrics.
func Input(x *Experiment, m Metric, counts map[string]Counts, looks []Look) abtest.Input {
	in := abtest.Input{Metric: abtest.Conversion, Alpha: x.Alpha, Tuning: x.Tuning, Floor: x.Floor, Seed: abtest.DefaultSeed}
	if m == MetricRevenue {
		in.Metric = abtest.Revenue
	}
	if in.Floor == 0 {
		in.Floor = -1 // abtest: no floor
	}
	in.Variants = abVariants(x, m, counts)
	for _, l := range looks {
		in.History = append(in.History, abtest.Look{Variants: abVariants(x, m, l.Counts)})
	}
	return in
}

func abVariants(x *Experiment, m Metric, counts map[string]Counts) []abtest.Variant {
	out := make([]abtest.Variant, len(x.Variants))
	for i, v := range x.Variants {
		c := counts[v.Name]
		out[i] = abtest.Variant{Name: v.Name, Weight: float64(c.Expected) / 1e6, Users: c.N, Conversions: c.Successes(m)}
		if m == MetricRevenue {
			out[i].Sum, out[i].SumSquares = c.Sum(MetricRevenue), c.SumSquares()
		}
	}
	return out
}

// analyzeAs runs abtest.Analyze and names the metric m in the report and
// its verdict (abtest knows conversion and revenue; ctr and add_to_cart
// are conversion-type metrics).
func analyzeAs(in abtest.Input, m Metric) (abtest.Report, error) {
	rep, err := abtest.Analyze(in)
	if err != nil {
		return rep, err
	}
	if string(rep.Metric) != string(m) {
		rep.Metric = abtest.Metric(m)
		rep.Verdict = abtest.Verdict(rep)
	}
	return rep, nil
}

// guardrail derives a guardrail's status from the report of its metric.
func guardrail(g Guardrail, rep abtest.Report) GuardrailResult {
	gr := GuardrailResult{Guardrail: g, Status: GuardrailOK}
	ctl := float64(rep.Variants[0].Mean)
	for _, v := range rep.Variants[1:] {
		c := v.Comparison
		gv := GuardrailVariant{Variant: v.Name, Status: GuardrailOK, Diff: c.Diff, Lift: c.Lift, SeqLow: c.SeqLow, SeqHigh: c.SeqHigh,
			AlwaysValidPValue: c.AlwaysValidPValue}
		thr := -g.MaxDrop * math.Abs(ctl)
		switch {
		case c.SeqHigh.Valid() && float64(c.SeqHigh) < thr:
			gv.Status = GuardrailFail
		case c.Diff.Valid() && float64(c.Diff) < thr:
			gv.Status = GuardrailWarn
		}
		if rank(gv.Status) > rank(gr.Status) {
			gr.Status = gv.Status
		}
		gr.Variants = append(gr.Variants, gv)
	}
	return gr
}

func rank(s string) int {
	switch s {
	case GuardrailFail:
		return 2
	case GuardrailWarn:
		return 1
	}
	return 0
}

// History computes the series of in's looks and its current counts
// (the last point, at the time the caller sets): for each look, each
// variant's units and mean and, against the control, the statistics of
// HistoryComparison, with exactly the functions abtest.Analyze uses —
// the last point's always-valid p-value is the report's. At is left
// zero; Analyze sets it.
func History(in abtest.Input) []HistoryPoint {
	in = in.WithDefaults()
	k := len(in.Variants)
	looks := make([][]abtest.Variant, 0, len(in.History)+1)
	for _, h := range in.History {
		looks = append(looks, h.Variants)
	}
	looks = append(looks, in.Variants)
	minP := make([]float64, k)
	for i := range minP {
		minP[i] = math.NaN()
	}
	out := make([]HistoryPoint, len(looks))
	for li, vs := range looks {
		p := HistoryPoint{Variants: make([]HistoryVariant, k)}
		sums := make([]abtest.Summary, k)
		for i, v := range vs {
			sums[i] = summary(in.Metric, v)
			p.Variants[i] = HistoryVariant{Name: v.Name, Units: v.Users, Mean: abtest.Num(sums[i].Mean)}
		}
		a := sums[0]
		for i := 1; i < k; i++ {
			b := sums[i]
			crit := abtest.ZCritical(in.Alpha)
			if in.Metric == abtest.Revenue {
				_, df, _ := abtest.WelchTTest(a, b)
				crit = abtest.TCritical(in.Alpha, df)
			}
			c := &HistoryComparison{}
			d, dlo, dhi := abtest.DiffCI(a, b, crit)
			l, llo, lhi := abtest.RelativeLift(a, b, crit)
			slo, shi, sp := abtest.SequentialTest(a, b, in.Alpha, in.Tuning)
			minP[i] = abtest.AlwaysValidP(minP[i], sp)
			c.Diff, c.DiffLow, c.DiffHigh = abtest.Num(d), abtest.Num(dlo), abtest.Num(dhi)
			c.Lift, c.LiftLow, c.LiftHigh = abtest.Num(l), abtest.Num(llo), abtest.Num(lhi)
			c.SeqLow, c.SeqHigh, c.SeqPValue, c.AlwaysValidPValue = abtest.Num(slo), abtest.Num(shi), abtest.Num(sp), abtest.Num(minP[i])
			if m := math.Abs(a.Mean); m > 0 {
				lo := slo / m
				if a.Mean > 0 && b.Mean >= 0 {
					lo = max(lo, -1) // m_B ≥ 0: the lift cannot be below −100 %
				}
				c.SeqLiftLow, c.SeqLiftHigh = abtest.Num(lo), abtest.Num(shi/m)
			} else {
				c.SeqLiftLow, c.SeqLiftHigh = abtest.Num(math.NaN()), abtest.Num(math.NaN())
			}
			p.Variants[i].HistoryComparison = c
		}
		out[li] = p
	}
	return out
}

func summary(m abtest.Metric, v abtest.Variant) abtest.Summary {
	if m == abtest.Revenue {
		return abtest.MeanSummary(v.Users, v.Sum, v.SumSquares)
	}
	return abtest.ProportionSummary(v.Conversions, v.Users)
}
