package abtest

import (
	"fmt"
	"math"
	"strings"
)

// Verdict builds a plain-language summary of r, one clause per non-control
// variant joined by " | ", then the SRM status, for example
//
//	B beats A on conversion: +12.0 % [+4.0 %, +20.0 %], chance to win 99.2 %; keep running: no / SRM: none
//
// The decision uses the always-valid p-value (Holm-adjusted across variants
// when there are several), so it stays valid however often the result is
// looked at: a variant "beats" or "loses to" the control when that p-value
// is below α, and the experiment should keep running otherwise. The
// bracketed interval is the fixed-horizon delta-method interval of the
// relative lift (of the absolute difference when the lift is undefined).
// A flagged SRM is reported as a reason to distrust every clause.
func Verdict(r Report) string {
	if len(r.Variants) == 0 {
		return "no variants"
	}
	ctl := r.Variants[0].Name
	avp := make([]float64, len(r.Variants))
	for i, v := range r.Variants {
		avp[i] = math.NaN()
		if v.Comparison != nil {
			avp[i] = float64(v.AlwaysValidPValue)
		}
	}
	Holm(avp, avp)
	var clauses []string
	for i, v := range r.Variants {
		c := v.Comparison
		if c == nil {
			continue
		}
		var b strings.Builder
		sig := avp[i] < r.Alpha
		switch {
		case math.IsNaN(avp[i]):
			fmt.Fprintf(&b, "%s vs %s on %s: not enough data yet", v.Name, ctl, r.Metric)
		case sig && c.Diff > 0:
			fmt.Fprintf(&b, "%s beats %s on %s", v.Name, ctl, r.Metric)
		case sig && c.Diff < 0:
			fmt.Fprintf(&b, "%s loses to %s on %s", v.Name, ctl, r.Metric)
		default:
			fmt.Fprintf(&b, "no clear difference between %s and %s on %s", v.Name, ctl, r.Metric)
		}
		switch {
		case c.Lift.Valid():
			fmt.Fprintf(&b, ": %s", pct(c.Lift))
			if c.LiftLow.Valid() {
				fmt.Fprintf(&b, " [%s, %s]", pct(c.LiftLow), pct(c.LiftHigh))
			}
		case c.Diff.Valid():
			fmt.Fprintf(&b, ": difference %+.4g", float64(c.Diff))
			if c.DiffLow.Valid() {
				fmt.Fprintf(&b, " [%+.4g, %+.4g]", float64(c.DiffLow), float64(c.DiffHigh))
			}
		}
		if v.ChanceToWin.Valid() {
			fmt.Fprintf(&b, ", chance to win %s", chance(v.ChanceToWin))
		}
		if sig {
			b.WriteString("; keep running: no")
		} else {
			b.WriteString("; keep running: yes")
		}
		clauses = append(clauses, b.String())
	}
	srm := "SRM: none"
	if r.SRMFlag {
		srm = fmt.Sprintf("SRM: detected (p = %.2g): traffic split differs from the configured weights, do not trust these results until the assignment is fixed", float64(r.SRMPValue))
	}
	return strings.Join(clauses, " | ") + " / " + srm
}

func pct(x Num) string { return fmt.Sprintf("%+.1f %%", 100*float64(x)) }

func chance(x Num) string {
	switch f := float64(x); {
	case f > 0.999 && f < 1:
		return "> 99.9 %"
	case f > 0 && f < 0.001:
		return "< 0.1 %"
	default:
		return fmt.Sprintf("%.1f %%", 100*f)
	}
}
