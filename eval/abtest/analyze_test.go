package abtest

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
)

func mustAnalyze(tb testing.TB, in Input) Report {
	tb.Helper()
	r, err := Analyze(in)
	if err != nil {
		tb.Fatalf("Analyze: %v", err)
	}
	return r
}

// mustJSON marshals r and fails on NaN or Inf leaking into the output.
func mustJSON(tb testing.TB, r Report) string {
	tb.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		tb.Fatalf("marshal report: %v", err)
	}
	s := string(b)
	for _, bad := range []string{"NaN", "Inf"} {
		if strings.Contains(s, bad) {
			tb.Fatalf("report JSON contains %s: %s", bad, s)
		}
	}
	return s
}

func conv(name string, users, conversions int64) Variant {
	return Variant{Name: name, Weight: 1, Users: users, Conversions: conversions}
}

func TestAnalyzeConversion(t *testing.T) {
	r := mustAnalyze(t, Input{Variants: []Variant{conv("A", 1000, 100), conv("B", 1000, 120)}})
	if r.Metric != Conversion || r.Alpha != DefaultAlpha || r.Tuning != DefaultTuning || r.Floor != DefaultFloor {
		t.Errorf("defaults not applied: %+v", r)
	}
	a, b := r.Variants[0], r.Variants[1]
	if a.Comparison != nil {
		t.Error("control carries a comparison")
	}
	// Same references as the unit tests (R prop.test, mpmath).
	near(t, "z", float64(*b.Z), 1.429300849823232, 1e-12)
	near(t, "p", float64(b.PValue), 0.1529177818639457, 1e-12)
	near(t, "p holm (one comparison)", float64(b.PValueHolm), 0.1529177818639457, 1e-12)
	near(t, "diff_low", float64(b.DiffLow), -0.0074114819980199385, 1e-12)
	near(t, "chance", float64(b.ChanceToWin), 0.92318343897355975351, 1e-9)
	near(t, "control chance = 1 − chance", float64(a.ChanceToWin), 1-0.92318343897355975351, 1e-9)
	near(t, "loss", float64(b.ExpectedLoss), 0.0004846139263564437332, 1e-9)
	near(t, "bandit", float64(b.BanditWeight), 0.01+0.98*0.92318343897355975351, 1e-9)
	// R: prop.test(100, 1000, correct = FALSE)$conf.int; tolerance 1e-12.
	near(t, "wilson_low", float64(a.WilsonLow), 0.082909443593095711, 1e-12)
	near(t, "wilson_high", float64(a.WilsonHigh), 0.120151963195348391, 1e-12)
	if b.T != nil || b.DF != nil {
		t.Error("conversion report has t or df")
	}
	if r.SRMFlag || float64(r.SRMPValue) != 1 {
		t.Errorf("SRM on a perfect split: p %v flag %v", r.SRMPValue, r.SRMFlag)
	}
	s := mustJSON(t, r)
	for _, key := range []string{`"wilson_low"`, `"chance_to_win"`, `"bandit_weight"`, `"diff_high"`, `"lift_low"`, `"z"`, `"p_value_holm"`,
		`"seq_low"`, `"seq_p_value"`, `"always_valid_p_value"`, `"expected_loss"`, `"srm_p_value"`, `"srm_flag"`} {
		if !strings.Contains(s, key) {
			t.Errorf("JSON lacks %s: %s", key, s)
		}
	}
	if strings.Contains(s, `"t"`) || strings.Contains(s, `"df"`) {
		t.Errorf("conversion JSON has t/df: %s", s)
	}
}

func TestAnalyzeRevenue(t *testing.T) {
	// Same data as TestWelchTTest (R t.test(b, a)).
	xa := []float64{0, 0, 12.5, 0, 30, 0, 0, 8.25, 0, 0, 55, 0}
	xb := []float64{0, 19.99, 0, 0, 42, 0, 7.5, 0, 0, 64.1, 0, 0, 25, 0, 0}
	na, sa, qa := revenueSums(xa)
	nb, sb, qb := revenueSums(xb)
	r := mustAnalyze(t, Input{Metric: Revenue, Variants: []Variant{
		{Name: "A", Users: na, Conversions: 4, Sum: sa, SumSquares: qa},
		{Name: "B", Users: nb, Conversions: 5, Sum: sb, SumSquares: qb},
	}})
	b := r.Variants[1]
	if b.Z != nil || b.T == nil || b.DF == nil {
		t.Fatalf("revenue report: z %v t %v df %v", b.Z, b.T, b.DF)
	}
	near(t, "t", float64(*b.T), 0.25017297635556657, 1e-10)
	near(t, "df", float64(*b.DF), 24.724659138562181, 1e-10)
	near(t, "diff_high", float64(b.DiffHigh), 16.258851828590469, 1e-10)
	near(t, "mean", float64(b.Mean), sb/float64(nb), 1e-15)
	near(t, "rate", float64(b.Rate), 5.0/15, 1e-15)
	// Normal posteriors: chance = Φ(d/se), which for large n is 1 − p/2 of a
	// one-sided z test; here it is monotone with t.
	if !(b.ChanceToWin > 0.5 && b.ChanceToWin < 0.7) {
		t.Errorf("chance to win %v, want a little above 0.5 for t = 0.25", b.ChanceToWin)
	}
	mustJSON(t, r)
}

func TestAnalyzeEdgeCases(t *testing.T) {
	cases := []struct {
		name  string
		in    Input
		check func(t *testing.T, r Report)
		note  string // a substring expected in Notes
	}{
		{"no users in B", Input{Variants: []Variant{conv("A", 100, 10), conv("B", 0, 0)}}, func(t *testing.T, r Report) {
			b := r.Variants[1]
			for name, v := range map[string]Num{"rate": b.Rate, "wilson_low": b.WilsonLow, "diff": b.Diff, "p": b.PValue, "seq_p": b.SeqPValue, "lift": b.Lift} {
				if v.Valid() {
					t.Errorf("%s = %v, want null", name, v)
				}
			}
			// The Beta(1, 1) prior still gives a chance to win.
			if !b.ChanceToWin.Valid() {
				t.Error("chance to win is null with a prior")
			}
		}, "B has no users"},
		{"both at 0 %", Input{Variants: []Variant{conv("A", 500, 0), conv("B", 500, 0)}}, func(t *testing.T, r Report) {
			b := r.Variants[1]
			if b.Z.Valid() || b.PValue.Valid() || b.DiffLow.Valid() || b.Lift.Valid() || b.SeqPValue.Valid() {
				t.Errorf("undefined tests reported: %+v", *b.Comparison)
			}
			near(t, "diff", float64(b.Diff), 0, 0)
			near(t, "wilson low", float64(b.WilsonLow), 0, 0)
			near(t, "chance", float64(b.ChanceToWin), 0.5, 1e-12)
		}, "both arms at 0 %"},
		{"both at 100 %", Input{Variants: []Variant{conv("A", 50, 50), conv("B", 40, 40)}}, func(t *testing.T, r Report) {
			b := r.Variants[1]
			near(t, "lift", float64(b.Lift), 0, 0)
			if b.LiftLow.Valid() || b.Z.Valid() {
				t.Errorf("lift interval or z defined at zero variance: %v %v", b.LiftLow, b.Z)
			}
			near(t, "wilson high", float64(b.WilsonHigh), 1, 0)
		}, "both arms at 100 %"},
		{"no revenue yet", Input{Metric: Revenue, Variants: []Variant{{Name: "A", Users: 100}, {Name: "B", Users: 90}}}, func(t *testing.T, r Report) {
			b := r.Variants[1]
			if b.T.Valid() || b.DF.Valid() || b.PValue.Valid() || b.Rate.Valid() {
				t.Errorf("t %v df %v p %v rate %v, want null", b.T, b.DF, b.PValue, b.Rate)
			}
			near(t, "chance (equal point masses)", float64(b.ChanceToWin), 0.5, 0)
			near(t, "bandit", float64(b.BanditWeight), 0.5, 1e-15)
		}, "no variance in either arm"},
		{"one revenue user", Input{Metric: Revenue, Variants: []Variant{{Name: "A", Users: 1, Sum: 5, SumSquares: 25}, {Name: "B", Users: 30, Sum: 60, SumSquares: 400}}}, func(t *testing.T, r Report) {
			b := r.Variants[1]
			if b.ChanceToWin.Valid() || b.ExpectedLoss.Valid() || r.Variants[0].ChanceToBeBest.Valid() {
				t.Error("Bayesian statistics defined with 1 user")
			}
			near(t, "uniform bandit", float64(b.BanditWeight), 0.5, 0)
		}, "at least 2 users per arm"},
		{"control at 0 %", Input{Variants: []Variant{conv("A", 500, 0), conv("B", 500, 5)}}, func(t *testing.T, r Report) {
			b := r.Variants[1]
			if b.Lift.Valid() || !b.Z.Valid() || !b.DiffLow.Valid() {
				t.Errorf("lift %v z %v diff_low %v", b.Lift, b.Z, b.DiffLow)
			}
		}, "control mean is 0"},
		{"no weights", Input{Variants: []Variant{{Name: "A", Users: 10300, Conversions: 1}, {Name: "B", Users: 9700, Conversions: 1}}}, func(t *testing.T, r Report) {
			near(t, "srm p", float64(r.SRMPValue), 2.2090496998585445e-05, 1e-12) // R chisq.test(c(10300, 9700))
			if !r.SRMFlag || !strings.Contains(r.Verdict, "SRM: detected") {
				t.Errorf("SRM not flagged: %v, %q", r.SRMFlag, r.Verdict)
			}
		}, "assumes an equal split"},
		{"five arms", Input{Variants: []Variant{conv("A", 300, 30), conv("B", 300, 36), conv("C", 280, 33), conv("D", 310, 25), conv("E", 290, 34)}}, func(t *testing.T, r Report) {
			sum := 0.0
			for _, v := range r.Variants {
				sum += float64(v.BanditWeight)
			}
			near(t, "bandit weights sum", sum, 1, 1e-12)
			// Holm with 4 comparisons is never below the raw p-values.
			for _, v := range r.Variants[1:] {
				if v.PValueHolm < v.PValue {
					t.Errorf("%s: holm %v < p %v", v.Name, v.PValueHolm, v.PValue)
				}
			}
		}, "Monte Carlo"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := mustAnalyze(t, c.in)
			mustJSON(t, r)
			c.check(t, r)
			if !strings.Contains(strings.Join(r.Notes, "\n"), c.note) {
				t.Errorf("notes %q lack %q", r.Notes, c.note)
			}
		})
	}
}

func TestAnalyzeHistory(t *testing.T) {
	// The always-valid p-value is the minimum of the sequential p-values
	// over the looks; a later, less extreme look does not raise it.
	early := []Variant{conv("A", 5000, 450), conv("B", 5000, 560)}
	now := []Variant{conv("A", 10000, 1000), conv("B", 10000, 1060)}
	r := mustAnalyze(t, Input{Variants: now, History: []Look{{Variants: early}}})
	b := r.Variants[1]
	_, _, pEarly := SequentialTest(ProportionSummary(450, 5000), ProportionSummary(560, 5000), 0.05, 5000)
	if !(pEarly < float64(b.SeqPValue)) {
		t.Fatalf("test data: early p %v not below current %v", pEarly, b.SeqPValue)
	}
	near(t, "always-valid p", float64(b.AlwaysValidPValue), pEarly, 0)
}

func TestValidate(t *testing.T) {
	_, err := Analyze(Input{Variants: []Variant{conv("A", 1000, 100), conv("B", 1000, 1200)}})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
	if !strings.Contains(err.Error(), "variants[1].conversions: 1200 > users 1000") {
		t.Errorf("error %q does not name the field as in the brief", err)
	}
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "variants[1].conversions" {
		t.Errorf("errors.As FieldError: %v", fe)
	}

	// Every problem is reported at once.
	_, err = Analyze(Input{Metric: "clicks", Alpha: 2, Tuning: -1, Floor: 1.5,
		Variants: []Variant{{Name: "A", Users: -1, Weight: -1}, {Name: "A", Conversions: -2}},
		History:  []Look{{Variants: []Variant{conv("A", 1, 0)}}}})
	for _, want := range []string{"metric:", "alpha:", "tuning:", "floor:", "variants[0].users:", "variants[0].weight:",
		"variants[1].name:", "variants[1].conversions:", "history[0].variants:"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}

	_, err = Analyze(Input{Metric: Revenue, Variants: []Variant{
		{Name: "A", Users: 10, Sum: 100, SumSquares: 10}, {Name: "B", Users: 10, Sum: math.Inf(1)}}})
	for _, want := range []string{"variants[0].sum_squares:", "variants[1].sum:"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
	if _, err := Analyze(Input{Variants: []Variant{conv("A", 10, 1)}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("one variant: err = %v", err)
	}
}

func TestNumJSON(t *testing.T) {
	type wrap struct {
		A Num  `json:"a"`
		B Num  `json:"b"`
		C *Num `json:"c,omitempty"`
	}
	b, err := json.Marshal(wrap{A: Num(math.NaN()), B: 0.25})
	if err != nil || string(b) != `{"a":null,"b":0.25}` {
		t.Fatalf("marshal = %s, %v", b, err)
	}
	var w wrap
	if err := json.Unmarshal([]byte(`{"a":null,"b":1e-7}`), &w); err != nil || w.A.Valid() || w.B != 1e-7 {
		t.Errorf("unmarshal = %+v, %v", w, err)
	}
}
