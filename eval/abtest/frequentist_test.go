package abtest

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/stat/distuv"
)

// The expected values below were printed by testdata/reference.R (R 4.2.2)
// and testdata/reference_scipy.py (scipy 1.10.1, statsmodels 0.13.5); the
// call that produced each is written beside it.

func TestCriticalValues(t *testing.T) {
	// R: qnorm(0.975), qnorm(0.995), qt(0.975, 10), qt(0.975, 57.3).
	// Tolerance 1e-15 for the normal quantile (the brief's exact
	// 1.959963984540054), 1e-9 for t (gonum's incomplete-beta inverse).
	near(t, "ZCritical(0.05)", ZCritical(0.05), 1.959963984540054, 1e-15)
	near(t, "ZCritical(0.01)", ZCritical(0.01), 2.5758293035488999, 1e-15)
	near(t, "TCritical(0.05, 10)", TCritical(0.05, 10), 2.2281388519862739, 1e-9)
	near(t, "TCritical(0.05, 57.3)", TCritical(0.05, 57.3), 2.002238268231336, 1e-9)
	// scipy.stats.t.ppf(0.975, 39838.071347573015)
	near(t, "TCritical(0.05, 39838.07)", TCritical(0.05, 39838.071347573015), 1.9600235341618337, 1e-9)
	if !math.IsNaN(TCritical(0.05, 0)) {
		t.Error("TCritical with df 0 is not NaN")
	}
}

func TestTwoProportionZTestAndDiffCI(t *testing.T) {
	// R: r <- prop.test(c(xB, xA), c(nB, nA), correct = FALSE);
	// z = sign(pB − pA)·sqrt(r$statistic), p = r$p.value, [lo, hi] = r$conf.int
	// (the unpooled Wald interval of pB − pA). Rows 1–2 also agree with
	// statsmodels proportions_ztest([xB, xA], [nB, nA]) and
	// confint_proportions_2indep(xB, nB, xA, nA, method="wald",
	// compare="diff") to 1e-15. Tolerance 1e-12.
	cases := []struct {
		xA, nA, xB, nB int64
		z, p, lo, hi   float64
	}{
		{100, 1000, 120, 1000, 1.429300849823232, 0.1529177818639457, -0.0074114819980199385, 0.047411481998019922},
		{45, 500, 70, 520, 2.2521545576442912, 0.024312506574759533, 0.0060171752458789418, 0.083213593984890283},
		{3, 40, 0, 35, -1.6535945694153691, 0.098209916839784805, -0.15662432322623798, 0.0066243232262379742},
		{480, 5000, 530, 5100, 1.3267812871298705, 0.18458104233054926, -0.0037753268738172953, 0.019618464128719263},
	}
	for _, c := range cases {
		z, p := TwoProportionZTest(c.xA, c.nA, c.xB, c.nB)
		near(t, "z", z, c.z, 1e-12)
		near(t, "p", p, c.p, 1e-12)
		d, lo, hi := DiffCI(ProportionSummary(c.xA, c.nA), ProportionSummary(c.xB, c.nB), ZCritical(0.05))
		near(t, "diff", d, float64(c.xB)/float64(c.nB)-float64(c.xA)/float64(c.nA), 1e-15)
		near(t, "diff_low", lo, c.lo, 1e-12)
		near(t, "diff_high", hi, c.hi, 1e-12)
	}
	t.Run("undefined", func(t *testing.T) {
		for _, c := range [][4]int64{{0, 100, 0, 100}, {100, 100, 50, 50}, {0, 0, 5, 10}} {
			z, p := TwoProportionZTest(c[0], c[1], c[2], c[3])
			if !math.IsNaN(z) || !math.IsNaN(p) {
				t.Errorf("TwoProportionZTest%v = %v, %v; want NaN, NaN", c, z, p)
			}
		}
		d, lo, hi := DiffCI(ProportionSummary(0, 100), ProportionSummary(0, 100), 1.96)
		if d != 0 || !math.IsNaN(lo) || !math.IsNaN(hi) {
			t.Errorf("DiffCI at 0 %% vs 0 %% = %v [%v, %v], want 0 [NaN, NaN]", d, lo, hi)
		}
	})
}

func TestWilson(t *testing.T) {
	// R: prop.test(x, n, correct = FALSE, conf.level = 1 − alpha)$conf.int.
	// The first four rows are Newcombe (1998, Stat. Med. 17:857, Table I,
	// method 3) examples, published to 4 d.p.: 81/263 → 0.2553–0.3662,
	// 15/148 → 0.0624–0.1605, 0/20 → 0–0.1611, 1/29 → 0.0061–0.1718.
	// statsmodels proportion_confint(x, n, alpha, method="wilson") agrees
	// to 1e-15 on rows 1, 3 and 6. Tolerance 1e-12.
	cases := []struct {
		x, n   int64
		alpha  float64
		lo, hi float64
	}{
		{81, 263, 0.05, 0.25528851987827428, 0.36620957698280016},
		{15, 148, 0.05, 0.062386399530736283, 0.160487241723308},
		{0, 20, 0.05, 0, 0.1611251580528193},
		{1, 29, 0.05, 0.006113214292762661, 0.17175521879320282},
		{29, 29, 0.05, 0.88303020150025935, 1},
		{100, 1000, 0.1, 0.085458581107733037, 0.11670001348407537},
		{5, 7, 0.01, 0.27807585064470974, 0.94194782007203837},
	}
	for _, c := range cases {
		lo, hi := Wilson(c.x, c.n, c.alpha)
		near(t, "wilson_low", lo, c.lo, 1e-12)
		near(t, "wilson_high", hi, c.hi, 1e-12)
	}
	if lo, hi := Wilson(0, 20, 0.05); lo != 0 {
		t.Errorf("Wilson(0, 20) low = %v, want exactly 0 (hi %v)", lo, hi)
	}
	if lo, hi := Wilson(0, 0, 0.05); !math.IsNaN(lo) || !math.IsNaN(hi) {
		t.Errorf("Wilson(0, 0) = [%v, %v], want NaN", lo, hi)
	}
}

func TestWelchTTest(t *testing.T) {
	// R: t.test(b, a) (Welch is R's default): t = 0.25017297635556657,
	// df = 24.724659138562181, p = 0.8045206414571221,
	// conf.int = [−12.738518495257134, 16.258851828590469]; with
	// conf.level = 0.9: [−10.263116679250366, 13.783450012583698].
	// Tolerance 1e-10 (p and the t quantile go through gonum's incomplete
	// beta).
	a := []float64{0, 0, 12.5, 0, 30, 0, 0, 8.25, 0, 0, 55, 0}
	b := []float64{0, 19.99, 0, 0, 42, 0, 7.5, 0, 0, 64.1, 0, 0, 25, 0, 0}
	sa, sb := MeanSummary(revenueSums(a)), MeanSummary(revenueSums(b))
	tt, df, p := WelchTTest(sa, sb)
	near(t, "t", tt, 0.25017297635556657, 1e-10)
	near(t, "df", df, 24.724659138562181, 1e-10)
	near(t, "p", p, 0.8045206414571221, 1e-10)
	_, lo, hi := DiffCI(sa, sb, TCritical(0.05, df))
	near(t, "diff_low", lo, -12.738518495257134, 1e-10)
	near(t, "diff_high", hi, 16.258851828590469, 1e-10)
	_, lo, hi = DiffCI(sa, sb, TCritical(0.1, df))
	near(t, "diff_low 90%", lo, -10.263116679250366, 1e-10)
	near(t, "diff_high 90%", hi, 13.783450012583698, 1e-10)

	t.Run("large, from sums", func(t *testing.T) {
		// scipy: ttest_ind_from_stats(mB, sdB, 19876, mA, sdA, 20000,
		// equal_var=False) with means and sds from the sums below
		// (testdata/reference_scipy.py). Tolerance 1e-9 (the t survival
		// function at df ≈ 4e4 is accurate to ~1e-10 in gonum).
		sa := MeanSummary(20000, 61234.5, 2.5e6)
		sb := MeanSummary(19876, 63001.25, 2.61e6)
		tt, df, p := WelchTTest(sa, sb)
		near(t, "t", tt, 0.9906452605334588, 1e-12)
		near(t, "df", df, 39838.071347573015, 1e-12)
		near(t, "p", p, 0.32186484559988404, 1e-9)
	})
	t.Run("undefined", func(t *testing.T) {
		one := MeanSummary(1, 5, 25)
		zero := MeanSummary(10, 0, 0)
		for _, c := range [][2]Summary{{one, sb}, {zero, zero}, {MeanSummary(0, 0, 0), sb}} {
			tt, df, p := WelchTTest(c[0], c[1])
			if !math.IsNaN(tt) || !math.IsNaN(df) || !math.IsNaN(p) {
				t.Errorf("WelchTTest(%+v, %+v) = %v, %v, %v; want NaN", c[0], c[1], tt, df, p)
			}
		}
		// One arm without variance: df = n − 1 of the other (Welch–Satterthwaite).
		_, df, _ = WelchTTest(zero, sb)
		near(t, "df with V_A = 0", df, float64(len(b)-1), 1e-12)
	})
}

func TestSummaries(t *testing.T) {
	s := MeanSummary(revenueSums([]float64{1, 2, 3, 4}))
	near(t, "mean", s.Mean, 2.5, 1e-15)
	near(t, "var (n−1 divisor)", s.Var, 5.0/3, 1e-15)
	if s := MeanSummary(1, 3, 9); s.Mean != 3 || !math.IsNaN(s.Var) {
		t.Errorf("MeanSummary(n=1) = %+v, want mean 3, var NaN", s)
	}
	// Rounding must not make the variance negative: 3 users at 0.1 each.
	if s := MeanSummary(3, 0.1+0.1+0.1, 0.01+0.01+0.01); s.Var < 0 {
		t.Errorf("MeanSummary of equal values has negative variance %v", s.Var)
	}
	p := ProportionSummary(25, 100)
	near(t, "p(1 − p)", p.Var, 0.1875, 1e-15)
}

func TestRelativeLift(t *testing.T) {
	// The Wald interval of the risk ratio on the log scale (statsmodels
	// Table2x2.riskratio_confint, R epitools::riskratio(method = "wald")),
	// minus 1. Exact arithmetic for 100/1000 vs 120/1000: R = 1.2,
	// Var(log R) = (1/120 − 1/1000) + (1/100 − 1/1000) = 0.0163333…,
	// so [1.2·e^(−z·0.1278019…) − 1, 1.2·e^(z·0.1278019…) − 1]
	// = [−0.065894…, +0.541581…]. Tolerance 1e-13.
	a, b := ProportionSummary(100, 1000), ProportionSummary(120, 1000)
	z := ZCritical(0.05)
	lift, lo, hi := RelativeLift(a, b, z)
	se := math.Sqrt(1.0/120 - 1.0/1000 + 1.0/100 - 1.0/1000)
	near(t, "lift", lift, 0.2, 1e-13)
	near(t, "lift_low", lo, 1.2*math.Exp(-z*se)-1, 1e-13)
	near(t, "lift_high", hi, 1.2*math.Exp(z*se)-1, 1e-13)
	near(t, "lift_low (decimal)", lo, -0.0658942, 1e-6)
	near(t, "lift_high (decimal)", hi, 0.5415813, 1e-6)

	// Small arms, where the delta method went below −100 % (the dashboard
	// showed [−399.7 %, +599.7 %]): the ratio interval cannot.
	lift, lo, hi = RelativeLift(ProportionSummary(1, 10), ProportionSummary(2, 10), z)
	if !(lo > -1 && lo < lift && hi > lift) {
		t.Errorf("1/10 vs 2/10: lift %v [%v, %v], want a low bound above −100 %%", lift, lo, hi)
	}
	// No conversion in B: −100 %, low bound −100 %.
	if lift, lo, _ := RelativeLift(ProportionSummary(5, 100), ProportionSummary(0, 100), z); lift != -1 || lo != -1 {
		t.Errorf("0 conversions in B: lift %v, low %v; want −1, −1", lift, lo)
	}

	// With a negative control mean the lift is relative to |m_A|.
	neg := Summary{N: 100, Mean: -2, Var: 1}
	lift, _, _ = RelativeLift(neg, Summary{N: 100, Mean: -1, Var: 1}, z)
	near(t, "lift vs negative control", lift, 0.5, 1e-15)

	if l, lo, hi := RelativeLift(ProportionSummary(0, 100), b, z); !math.IsNaN(l) || !math.IsNaN(lo) || !math.IsNaN(hi) {
		t.Errorf("lift with m_A = 0 = %v [%v, %v], want NaN", l, lo, hi)
	}

	t.Run("coverage", func(t *testing.T) {
		// Behaviour, not a formula: the 95 % interval covers the true lift
		// (0.1) in 95 % of 4,000 simulated experiments with 20,000 users per
		// arm, within 4 Monte Carlo standard errors (±1.4 %).
		src := rand.NewPCG(7, 7)
		const reps, n = 4000, 20000
		bA := distuv.Binomial{N: n, P: 0.10, Src: src}
		bB := distuv.Binomial{N: n, P: 0.11, Src: src}
		covered := 0
		for range reps {
			_, lo, hi := RelativeLift(ProportionSummary(int64(bA.Rand()), n), ProportionSummary(int64(bB.Rand()), n), z)
			if lo <= 0.1 && 0.1 <= hi {
				covered++
			}
		}
		cov := float64(covered) / reps
		if se := math.Sqrt(0.95 * 0.05 / reps); math.Abs(cov-0.95) > 4*se {
			t.Errorf("lift interval coverage %.4f, want 0.95 ± %.4f", cov, 4*se)
		}
	})
}

func TestSRM(t *testing.T) {
	// R: chisq.test(users, p = w/sum(w)) → X-squared, df, p-value; the
	// 3-arm row also agrees with scipy.stats.chisquare([5050, 2400, 2550],
	// f_exp=[5000, 2500, 2500]). Tolerance 1e-12.
	cases := []struct {
		name    string
		users   []int64
		weights []float64
		chi2    float64
		df      int
		p       float64
	}{
		{"even", []int64{5100, 4900}, []float64{0.5, 0.5}, 4, 1, 0.045500263896358473},
		{"flagged", []int64{10300, 9700}, []float64{0.5, 0.5}, 18, 1, 2.2090496998585445e-05},
		{"uneven weights", []int64{5050, 2400, 2550}, []float64{50, 25, 25}, 5.5, 2, 0.06392786120670757},
		{"three arms", []int64{1000, 1100, 900}, []float64{1, 1, 1}, 20, 2, 4.5399929762484854e-05},
		// Weight 0 drops the arm and its users: same as the 2-arm row.
		{"dropped arm", []int64{5100, 4900, 777}, []float64{0.5, 0.5, 0}, 4, 1, 0.045500263896358473},
		// No weights configured: equal split assumed.
		{"no weights", []int64{5100, 4900}, []float64{0, 0}, 4, 1, 0.045500263896358473},
		{"one active arm", []int64{5100, 4900}, []float64{1, 0}, 0, 0, 1},
		{"no users", []int64{0, 0}, []float64{1, 1}, 0, 1, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			chi2, df, p := SRM(c.users, c.weights)
			near(t, "chi2", chi2, c.chi2, 1e-12)
			near(t, "p", p, c.p, 1e-12)
			if df != c.df {
				t.Errorf("df = %d, want %d", df, c.df)
			}
		})
	}
}

func TestHolm(t *testing.T) {
	// R: p.adjust(p, "holm"); statsmodels multipletests(p, method="holm")
	// agrees on the first row. Tolerance 1e-15.
	cases := []struct{ p, want []float64 }{
		{[]float64{0.01, 0.04, 0.03, 0.005}, []float64{0.03, 0.06, 0.06, 0.02}},
		{[]float64{0.2, 0.01, 0.6}, []float64{0.4, 0.03, 0.6}},
		// NaN (an undefined test) is left out of m: same as p.adjust(c(0.2, 0.01), "holm").
		{[]float64{math.NaN(), 0.2, 0.01}, []float64{math.NaN(), 0.2, 0.02}},
		{[]float64{0.7}, []float64{0.7}},
	}
	for _, c := range cases {
		got := Holm(nil, c.p)
		for i := range got {
			near(t, "holm", got[i], c.want[i], 1e-15)
		}
	}
	// In place.
	p := []float64{0.01, 0.04}
	Holm(p, p)
	near(t, "in place", p[0], 0.02, 1e-15)
	near(t, "in place", p[1], 0.04, 1e-15)
}
