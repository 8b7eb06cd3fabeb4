package abtest

import (
	"math"
	"math/rand/v2"
	"testing"
)

// betaRefs: P(p_B > p_A) and E[max(p_A − p_B, 0)] for Beta(1 + x, 1 + n − x)
// posteriors, from Evan Miller's closed form evaluated in mpmath at 50
// digits (testdata/beta_reference.py; the last row with the "big"
// argument). Tolerance 1e-9 absolute, the brief's accuracy target; the
// quadrature actually agrees to ~1e-14.
var betaRefs = []struct {
	xA, nA, xB, nB int64
	chance, loss   float64
}{
	{100, 1000, 120, 1000, 0.92318343897355975351, 0.0004846139263564437332},
	{0, 0, 0, 0, 0.5, 0.16666666666666666667},
	{0, 10, 1, 10, 0.76190476190476190476, 0.018115942028985507246},
	{5, 50, 50, 50, 1.0, 1.0172826269493615577e-25},
	{1000, 10000, 1100, 10000, 0.98945735443171401464, 0.000015582443832201356158},
	{10, 100, 1200, 10000, 0.67902022898140430112, 0.0074305917100654342568},
	{10000, 100000, 10200, 100000, 0.93111027988060447236, 0.000040947124215263527136},
	{0, 1000, 0, 1000, 0.5, 0.00049875286870094060506},
	{1000, 1000, 999, 1000, 0.24987506246876561719, 0.0012471312990593949395},
	{100000, 1000000, 100500, 1000000, 0.88044253676564556064, 0.000024964605188276617275},
}

func TestChanceToBeatBeta(t *testing.T) {
	for _, c := range betaRefs {
		a, b := BetaPosterior(c.xA, c.nA), BetaPosterior(c.xB, c.nB)
		near(t, "chance", ChanceToBeat(a, b), c.chance, 1e-9)
		near(t, "loss", ExpectedLoss(a, b), c.loss, 1e-9)
		// Symmetry: P(A > B) = 1 − P(B > A).
		near(t, "swapped chance", ChanceToBeat(b, a), 1-c.chance, 1e-9)
	}
	// Relative accuracy where the loss is tiny matters too.
	c := betaRefs[4]
	nearRel(t, "loss (relative)", ExpectedLoss(BetaPosterior(c.xA, c.nA), BetaPosterior(c.xB, c.nB)), c.loss, 1e-8)
}

func TestProbabilityBestBeta(t *testing.T) {
	// mpmath.quad of f_i·Π F_j with mpmath.betainc at 50 digits
	// (testdata/beta_reference.py). Tolerance 1e-9.
	cases := []struct {
		counts [][2]int64 // conversions, users
		want   []float64
	}{
		{[][2]int64{{100, 1000}, {120, 1000}, {110, 1000}},
			[]float64{0.046208314989331595278, 0.72688649783298369567, 0.22690518717768470905}},
		{[][2]int64{{30, 300}, {36, 300}, {33, 280}, {25, 310}},
			[]float64{0.10590719071782588621, 0.46733235863650569342, 0.41477079373691034556, 0.011989656908758074801}},
		{[][2]int64{{0, 0}, {1, 3}, {0, 5}},
			[]float64{0.58441558441558441558, 0.37575757575757575758, 0.03982683982683982684}},
	}
	for _, c := range cases {
		arms := make([]Posterior, len(c.counts))
		for i, k := range c.counts {
			arms[i] = BetaPosterior(k[0], k[1])
		}
		got := ProbabilityBest(nil, arms)
		for i := range got {
			near(t, "P(best)", got[i], c.want[i], 1e-9)
		}
	}
}

func TestNormalPosteriors(t *testing.T) {
	// scipy: norm.cdf(d/s) and s·norm.pdf(d/s) − d·norm.cdf(−d/s) with
	// d = μ_B − μ_A, s = hypot(σ_A, σ_B) (testdata/reference_scipy.py).
	// Tolerance 1e-12.
	cases := []struct {
		a, b         Posterior
		chance, loss float64
	}{
		{Posterior{NormalFamily, 3.06, 0.011}, Posterior{NormalFamily, 3.17, 0.012}, 0.9999999999929681, 1.626887862770917e-14},
		{Posterior{NormalFamily, 10, 0.5}, Posterior{NormalFamily, 9.5, 0.3}, 0.19558626140506974, 0.5632649188566612},
	}
	for _, c := range cases {
		near(t, "chance", ChanceToBeat(c.a, c.b), c.chance, 1e-12)
		near(t, "loss", ExpectedLoss(c.a, c.b), c.loss, 1e-12)
		// The quadrature agrees with the closed form.
		var pb [2]float64
		ProbabilityBest(pb[:], []Posterior{c.a, c.b})
		near(t, "quadrature vs closed form", pb[1], c.chance, 1e-12)
	}

	t.Run("point masses", func(t *testing.T) {
		zero := Posterior{NormalFamily, 0, 0} // e.g. no revenue yet: all users spent 0
		wide := Posterior{NormalFamily, 0.5, 1}
		other := Posterior{NormalFamily, 0, 0}
		got := ProbabilityBest(nil, []Posterior{zero, wide, other})
		// wide beats 0 with probability Φ(0.5); the two point masses share the rest.
		pw := 0.5 * math.Erfc(-0.5/math.Sqrt2)
		near(t, "continuous arm", got[1], pw, 1e-12)
		near(t, "point mass 1", got[0], (1-pw)/2, 1e-12)
		near(t, "point mass 2", got[2], (1-pw)/2, 1e-12)
		near(t, "chance, equal point masses", ChanceToBeat(zero, other), 0.5, 0)
		near(t, "chance, higher point mass", ChanceToBeat(zero, Posterior{NormalFamily, 1, 0}), 1, 0)
		near(t, "loss, lower point mass", ExpectedLoss(zero, Posterior{NormalFamily, -2, 0}), 2, 0)
		// σ far below |μ|: the quadrature is centred on the control, so it
		// keeps full accuracy (closed form Φ(d/s) as reference).
		far := []Posterior{{NormalFamily, 1e12, 1e-4}, {NormalFamily, 1e12 + 3e-4, 2e-4}}
		got = ProbabilityBest(nil, far)
		near(t, "|μ| ≫ σ", got[1], ChanceToBeat(far[0], far[1]), 1e-9)
	})
}

func TestProbabilityBestInvalid(t *testing.T) {
	for _, arms := range [][]Posterior{
		{BetaPosterior(1, 10), {NormalFamily, 1, 1}},          // mixed families
		{{NormalFamily, 1, math.NaN()}, {NormalFamily, 1, 1}}, // revenue with n < 2
		{{BetaFamily, 0.5, 2}, BetaPosterior(1, 3)},           // α < 1
	} {
		for _, p := range ProbabilityBest(nil, arms) {
			if !math.IsNaN(p) {
				t.Errorf("ProbabilityBest(%v) = %v, want NaN", arms, p)
			}
		}
		if w := ThompsonWeights(nil, arms, 0.01, 1); w[0] != 0.5 || w[1] != 0.5 {
			t.Errorf("ThompsonWeights(%v) = %v, want uniform", arms, w)
		}
	}
}

func TestProbabilityBestMC(t *testing.T) {
	// Monte Carlo agrees with the exact quadrature within 4 standard errors.
	arms := []Posterior{BetaPosterior(30, 300), BetaPosterior(36, 300), BetaPosterior(33, 280), BetaPosterior(25, 310), BetaPosterior(34, 290)}
	exact := ProbabilityBest(nil, arms)
	const draws = 100_000
	mc := ProbabilityBestMC(nil, arms, draws, rand.NewPCG(3, 4))
	sum := 0.0
	for i := range arms {
		se := math.Sqrt(exact[i] * (1 - exact[i]) / draws)
		if math.Abs(mc[i]-exact[i]) > 4*se {
			t.Errorf("arm %d: MC %v, exact %v (4 SE = %v)", i, mc[i], exact[i], 4*se)
		}
		sum += exact[i]
	}
	near(t, "exact sums to 1", sum, 1, 1e-12)
	// Seeded: the same seed gives the same estimate.
	again := ProbabilityBestMC(nil, arms, draws, rand.NewPCG(3, 4))
	for i := range mc {
		if mc[i] != again[i] {
			t.Fatalf("ProbabilityBestMC is not reproducible: %v vs %v", mc, again)
		}
	}
	// ThompsonWeights switches to Monte Carlo above ExactArms arms.
	w := ThompsonWeights(nil, arms, 0, 9)
	for i := range arms {
		if math.Abs(w[i]-exact[i]) > 4*math.Sqrt(exact[i]*(1-exact[i])/MonteCarloDraws) {
			t.Errorf("ThompsonWeights arm %d: %v, exact %v", i, w[i], exact[i])
		}
	}
}

func TestApplyFloor(t *testing.T) {
	cases := []struct {
		w     []float64
		floor float64
		want  []float64
	}{
		{[]float64{1, 0}, 0.01, []float64{0.99, 0.01}},
		{[]float64{0.7, 0.2, 0.1}, 0.1, []float64{0.1 + 0.7*0.7, 0.1 + 0.7*0.2, 0.1 + 0.7*0.1}},
		{[]float64{0.9, 0.05, 0.05}, 0.4, []float64{1.0 / 3, 1.0 / 3, 1.0 / 3}}, // k·f ≥ 1: uniform
		{[]float64{0.9, 0.1}, 0, []float64{0.9, 0.1}},
		{[]float64{math.NaN(), 0.5}, 0.01, []float64{0.5, 0.5}},
	}
	for _, c := range cases {
		got := ApplyFloor(nil, c.w, c.floor)
		for i := range got {
			near(t, "floored weight", got[i], c.want[i], 1e-15)
		}
	}
	// Exact Thompson weights for two arms are the floored P(best).
	arms := []Posterior{BetaPosterior(100, 1000), BetaPosterior(120, 1000)}
	w := ThompsonWeights(nil, arms, 0.01, 1)
	near(t, "thompson B", w[1], 0.01+0.98*0.92318343897355975351, 1e-9)
}

func TestGaussLegendreIntegrationMatrix(t *testing.T) {
	// ∫_{−1}^{x_k} of polynomials up to degree 19 is exact.
	for k := range glN {
		var s0, s1, s5 float64
		for m := range glN {
			s0 += glS[k][m]
			s1 += glS[k][m] * glX[m]
			s5 += glS[k][m] * math.Pow(glX[m], 5)
		}
		x := glX[k]
		near(t, "∫1", s0, x+1, 1e-14)
		near(t, "∫t", s1, (x*x-1)/2, 1e-14)
		near(t, "∫t⁵", s5, (math.Pow(x, 6)-1)/6, 1e-14)
	}
}

func BenchmarkProbabilityBest(b *testing.B) {
	for _, k := range []int{2, 4} {
		arms := make([]Posterior, k)
		for i := range arms {
			arms[i] = BetaPosterior(int64(1000+20*i), 10000)
		}
		dst := make([]float64, k)
		b.Run(string(rune('0'+k))+" arms", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ProbabilityBest(dst, arms)
			}
		})
	}
}
