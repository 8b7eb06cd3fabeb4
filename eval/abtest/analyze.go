package abtest

import (
	"fmt"
	"math"
)

// Report is the analysis of one experiment, as printed by
// `kairos eval abtest` and served by the results endpoint. Undefined
// statistics are NaN in Go and null in JSON, with the reason in Notes.
type Report struct {
	Metric Metric  `json:"metric"`
	Alpha  float64 `json:"alpha"`
	Tuning float64 `json:"tuning"`
	Floor  float64 `json:"floor"`
	// Variants has one entry per input variant, control first; entries after
	// the first carry the comparison with the control.
	Variants []VariantReport `json:"variants"`
	// SRMChi2, SRMDF and SRMPValue are the sample-ratio-mismatch test (SRM);
	// SRMFlag is SRMPValue < SRMThreshold.
	SRMChi2   Num  `json:"srm_chi2"`
	SRMDF     int  `json:"srm_df"`
	SRMPValue Num  `json:"srm_p_value"`
	SRMFlag   bool `json:"srm_flag"`
	// Verdict is the plain-language summary built by Verdict.
	Verdict string `json:"verdict"`
	// Notes explains every null in the report and every assumption made.
	Notes []string `json:"notes,omitempty"`
}

// VariantReport is one arm's statistics and, for non-control arms, its
// comparison with the control.
type VariantReport struct {
	Name        string `json:"name"`
	Users       int64  `json:"users"`
	Conversions int64  `json:"conversions"`
	// Rate is conversions/users with its Wilson interval. For the revenue
	// metric they are null unless some variant reports conversions.
	Rate       Num `json:"rate"`
	WilsonLow  Num `json:"wilson_low"`
	WilsonHigh Num `json:"wilson_high"`
	// Mean is the compared metric's mean: the conversion rate, or revenue
	// per visitor sum/users.
	Mean Num `json:"mean"`
	// ChanceToWin is P(variant beats control) for non-control arms and
	// P(control is best of all arms) for the control (for two arms, one
	// minus the variant's).
	ChanceToWin Num `json:"chance_to_win"`
	// ChanceToBeBest is P(this arm is best of all arms), the unfloored
	// Thompson weight.
	ChanceToBeBest Num `json:"chance_to_be_best"`
	// BanditWeight is the floored Thompson allocation weight.
	BanditWeight Num `json:"bandit_weight"`
	*Comparison
}

// Comparison is a non-control arm (B) against the control (A).
type Comparison struct {
	// Diff = m_B − m_A with its unpooled Wald interval.
	Diff     Num `json:"diff"`
	DiffLow  Num `json:"diff_low"`
	DiffHigh Num `json:"diff_high"`
	// Lift = (m_B − m_A)/|m_A| with its delta-method interval.
	Lift     Num `json:"lift"`
	LiftLow  Num `json:"lift_low"`
	LiftHigh Num `json:"lift_high"`
	// Z is set for the conversion metric, T and DF for revenue.
	Z  *Num `json:"z,omitempty"`
	T  *Num `json:"t,omitempty"`
	DF *Num `json:"df,omitempty"`
	// PValue is the fixed-horizon p-value; PValueHolm its Holm adjustment
	// over all non-control arms.
	PValue     Num `json:"p_value"`
	PValueHolm Num `json:"p_value_holm"`
	// SeqLow and SeqHigh bound the difference with the always-valid
	// confidence sequence; SeqPValue is this look's sequential p-value and
	// AlwaysValidPValue its minimum over History and this look.
	SeqLow            Num `json:"seq_low"`
	SeqHigh           Num `json:"seq_high"`
	SeqPValue         Num `json:"seq_p_value"`
	AlwaysValidPValue Num `json:"always_valid_p_value"`
	// ExpectedLoss is E[max(m_A − m_B, 0)], in metric units.
	ExpectedLoss Num `json:"expected_loss"`
}

// summarise returns the Summary of v for metric.
func summarise(metric Metric, v Variant) Summary {
	if metric == Revenue {
		return MeanSummary(v.Users, v.Sum, v.SumSquares)
	}
	return ProportionSummary(v.Conversions, v.Users)
}

// notes collects distinct explanations in order.
type notes struct {
	list []string
	seen map[string]bool
}

func (n *notes) add(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	if n.seen == nil {
		n.seen = map[string]bool{}
	}
	if !n.seen[s] {
		n.seen[s] = true
		n.list = append(n.list, s)
	}
}

// Analyze validates in (after WithDefaults) and computes every statistic of
// the package for it. Validation problems are returned together, each
// wrapping ErrInvalid and naming its field
// ("variants[1].conversions: 1200 > users 1000").
func Analyze(in Input) (Report, error) {
	in = in.WithDefaults()
	if err := in.Validate(); err != nil {
		return Report{}, fmt.Errorf("abtest: %w", err)
	}
	var nt notes
	k := len(in.Variants)
	r := Report{Metric: in.Metric, Alpha: in.Alpha, Tuning: in.Tuning, Floor: in.Floor, Variants: make([]VariantReport, k)}
	sums := make([]Summary, k)
	posts := make([]Posterior, k)
	users := make([]int64, k)
	weights := make([]float64, k)
	anyConv := false
	for i, v := range in.Variants {
		sums[i] = summarise(in.Metric, v)
		if in.Metric == Revenue {
			posts[i] = NormalPosterior(sums[i])
		} else {
			posts[i] = BetaPosterior(v.Conversions, v.Users)
		}
		users[i], weights[i] = v.Users, v.Weight
		anyConv = anyConv || v.Conversions > 0
		if v.Users == 0 {
			nt.add("%s has no users: its rate, mean and every comparison with it are null", v.Name)
		}
	}
	for i, v := range in.Variants {
		vr := VariantReport{Name: v.Name, Users: v.Users, Conversions: v.Conversions, Mean: Num(sums[i].Mean),
			Rate: undefined, WilsonLow: undefined, WilsonHigh: undefined}
		if v.Users > 0 && (in.Metric == Conversion || anyConv) {
			lo, hi := Wilson(v.Conversions, v.Users, in.Alpha)
			vr.Rate, vr.WilsonLow, vr.WilsonHigh = Num(float64(v.Conversions)/float64(v.Users)), Num(lo), Num(hi)
		}
		r.Variants[i] = vr
	}
	if in.Metric == Revenue && !anyConv {
		nt.add("no conversions reported: rate and Wilson interval are null")
	}

	// Comparisons with the control.
	ps := make([]float64, k)
	ps[0] = math.NaN()
	a, ctl := sums[0], in.Variants[0]
	for i := 1; i < k; i++ {
		b, v := sums[i], in.Variants[i]
		c := &Comparison{}
		var p, crit float64
		if in.Metric == Revenue {
			t, df, pv := WelchTTest(a, b)
			c.T, c.DF, p, crit = numPtr(t), numPtr(df), pv, TCritical(in.Alpha, df)
			if math.IsNaN(t) && a.N > 0 && b.N > 0 {
				if a.N < 2 || b.N < 2 {
					nt.add("%s vs %s: t test needs at least 2 users per arm: t, df, p-value and intervals are null", v.Name, ctl.Name)
				} else {
					nt.add("%s vs %s: no variance in either arm: t, df, p-value and intervals are null", v.Name, ctl.Name)
				}
			}
		} else {
			z, pv := TwoProportionZTest(ctl.Conversions, ctl.Users, v.Conversions, v.Users)
			c.Z, p, crit = numPtr(z), pv, ZCritical(in.Alpha)
			if math.IsNaN(z) && a.N > 0 && b.N > 0 {
				nt.add("%s vs %s: both arms at %.0f %%: pooled variance is 0, z and p-value are null", v.Name, ctl.Name, 100*a.Mean)
			}
		}
		ps[i] = p
		c.PValue = Num(p)
		d, dlo, dhi := DiffCI(a, b, crit)
		c.Diff, c.DiffLow, c.DiffHigh = Num(d), Num(dlo), Num(dhi)
		if !math.IsNaN(d) && math.IsNaN(dlo) && in.Metric == Conversion {
			nt.add("%s vs %s: standard error of the difference is 0: its intervals are null", v.Name, ctl.Name)
		}
		l, llo, lhi := RelativeLift(a, b, crit)
		c.Lift, c.LiftLow, c.LiftHigh = Num(l), Num(llo), Num(lhi)
		if a.N > 0 && b.N > 0 && a.Mean == 0 {
			nt.add("%s vs %s: control mean is 0: relative lift is null", v.Name, ctl.Name)
		}
		slo, shi, sp := SequentialTest(a, b, in.Alpha, in.Tuning)
		c.SeqLow, c.SeqHigh, c.SeqPValue = Num(slo), Num(shi), Num(sp)
		looks := make([]float64, 0, len(in.History)+1)
		for _, h := range in.History {
			_, _, hp := SequentialTest(summarise(in.Metric, h.Variants[0]), summarise(in.Metric, h.Variants[i]), in.Alpha, in.Tuning)
			looks = append(looks, hp)
		}
		c.AlwaysValidPValue = Num(AlwaysValidP(append(looks, sp)...))
		c.ExpectedLoss = Num(ExpectedLoss(posts[0], posts[i]))
		r.Variants[i].ChanceToWin = Num(ChanceToBeat(posts[0], posts[i]))
		r.Variants[i].Comparison = c
	}
	holm := Holm(nil, ps)
	for i := 1; i < k; i++ {
		r.Variants[i].PValueHolm = Num(holm[i])
	}

	// Chance to be best and Thompson weights.
	best := probabilityBest(nil, posts, in.Seed)
	bandit := ApplyFloor(nil, best, in.Floor)
	if !sameValidFamily(posts) {
		nt.add("revenue posteriors need at least 2 users per arm: chance to win and to be best are null, bandit weights uniform")
	} else if k > ExactArms {
		nt.add("more than %d arms: chance to be best and bandit weights are Monte Carlo estimates (%d draws, seed %d)", ExactArms, MonteCarloDraws, in.Seed)
	}
	for i := range r.Variants {
		r.Variants[i].ChanceToBeBest, r.Variants[i].BanditWeight = Num(best[i]), Num(bandit[i])
	}
	r.Variants[0].ChanceToWin = Num(best[0])

	chi2, df, sp := SRM(users, weights)
	r.SRMChi2, r.SRMDF, r.SRMPValue, r.SRMFlag = Num(chi2), df, Num(sp), sp < SRMThreshold
	allZero := true
	for _, w := range weights {
		allZero = allZero && w == 0
	}
	if allZero {
		nt.add("no weights configured: the SRM check assumes an equal split")
	} else {
		for i, w := range weights {
			if w == 0 {
				nt.add("SRM check ignores %s (weight 0) and its users", in.Variants[i].Name)
			}
		}
	}
	r.Notes = nt.list
	r.Verdict = Verdict(r)
	return r, nil
}
