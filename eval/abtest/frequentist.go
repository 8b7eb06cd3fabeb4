package abtest

import (
	"math"
	"sort"

	"gonum.org/v1/gonum/stat/distuv"
)

// Summary is what every test needs from one arm: the number of units N, the
// mean of the per-unit metric, and the per-unit variance Var (so the variance
// of Mean is Var/N).
type Summary struct {
	N    float64
	Mean float64
	Var  float64
}

// ProportionSummary summarises a conversion arm: Mean = p = x/n and
// Var = p(1 − p). With n = 0 the mean and variance are NaN.
func ProportionSummary(conversions, users int64) Summary {
	if users <= 0 {
		return Summary{N: 0, Mean: math.NaN(), Var: math.NaN()}
	}
	p := float64(conversions) / float64(users)
	return Summary{N: float64(users), Mean: p, Var: p * (1 - p)}
}

// MeanSummary summarises a revenue arm from its sums: Mean = Σx/n and
// Var = (Σx² − (Σx)²/n)/(n − 1), clipped at 0 against rounding. Mean is NaN
// for n = 0 and Var is NaN for n < 2.
func MeanSummary(users int64, sum, sumSquares float64) Summary {
	n := float64(users)
	s := Summary{N: n, Mean: math.NaN(), Var: math.NaN()}
	if users <= 0 {
		s.N = 0
		return s
	}
	s.Mean = sum / n
	if users >= 2 {
		s.Var = max(0, (sumSquares-sum*sum/n)/(n-1))
	}
	return s
}

// ZCritical returns z₁₋α/₂, the two-sided standard normal critical value,
// from the exact normal quantile: ZCritical(0.05) = 1.959963984540054.
func ZCritical(alpha float64) float64 {
	return -distuv.UnitNormal.Quantile(alpha / 2)
}

// TCritical returns t₁₋α/₂,df, the two-sided Student t critical value with
// df degrees of freedom (NaN if df is not positive).
func TCritical(alpha, df float64) float64 {
	if !(df > 0) {
		return math.NaN()
	}
	return -distuv.StudentsT{Mu: 0, Sigma: 1, Nu: df}.Quantile(alpha / 2)
}

// normalP returns the two-sided normal p-value 2·Φ(−|z|).
func normalP(z float64) float64 {
	return math.Erfc(math.Abs(z) / math.Sqrt2)
}

// TwoProportionZTest is the pooled-variance two-proportion z (score) test of
// H₀: p_A = p_B, two-sided, without continuity correction:
//
//	p̂ = (x_A + x_B)/(n_A + n_B)
//	z = (x_B/n_B − x_A/n_A) / √(p̂(1 − p̂)(1/n_A + 1/n_B))
//	p = 2·Φ(−|z|)
//
// z² equals R's prop.test(correct = FALSE) statistic. z and p are NaN when
// an arm is empty or the pooled variance is 0 (both arms at 0 % or both at
// 100 %).
func TwoProportionZTest(xA, nA, xB, nB int64) (z, p float64) {
	if nA <= 0 || nB <= 0 {
		return math.NaN(), math.NaN()
	}
	fa, fb := float64(nA), float64(nB)
	pool := float64(xA+xB) / (fa + fb)
	se := math.Sqrt(pool * (1 - pool) * (1/fa + 1/fb))
	if !(se > 0) {
		return math.NaN(), math.NaN()
	}
	z = (float64(xB)/fb - float64(xA)/fa) / se
	return z, normalP(z)
}

// DiffCI is the unpooled (Wald) confidence interval for the absolute
// difference of means B − A:
//
//	d = m_B − m_A,  se = √(V_A/n_A + V_B/n_B),  [d − c·se, d + c·se]
//
// with critical value c: ZCritical(α) for proportions, TCritical(α, df) with
// the Welch df for means. d is NaN if an arm is empty; the bounds are NaN
// when se is 0 or undefined.
func DiffCI(a, b Summary, crit float64) (diff, lo, hi float64) {
	if a.N <= 0 || b.N <= 0 {
		return math.NaN(), math.NaN(), math.NaN()
	}
	diff = b.Mean - a.Mean
	se := math.Sqrt(a.Var/a.N + b.Var/b.N)
	if !(se > 0) || math.IsNaN(crit) {
		return diff, math.NaN(), math.NaN()
	}
	return diff, diff - crit*se, diff + crit*se
}

// WelchTTest is Welch's unequal-variance t test of H₀: m_A = m_B, two-sided:
//
//	v_A = V_A/n_A,  v_B = V_B/n_B
//	t  = (m_B − m_A)/√(v_A + v_B)
//	df = (v_A + v_B)² / (v_A²/(n_A − 1) + v_B²/(n_B − 1))   (Welch–Satterthwaite)
//	p  = 2·P(T_df > |t|)
//
// It needs n ≥ 2 in both arms and a positive standard error; otherwise all
// three results are NaN.
func WelchTTest(a, b Summary) (t, df, p float64) {
	if a.N < 2 || b.N < 2 {
		return math.NaN(), math.NaN(), math.NaN()
	}
	va, vb := a.Var/a.N, b.Var/b.N
	se2 := va + vb
	if !(se2 > 0) {
		return math.NaN(), math.NaN(), math.NaN()
	}
	t = (b.Mean - a.Mean) / math.Sqrt(se2)
	df = se2 * se2 / (va*va/(a.N-1) + vb*vb/(b.N-1))
	p = 2 * distuv.StudentsT{Mu: 0, Sigma: 1, Nu: df}.Survival(math.Abs(t))
	return t, df, p
}

// RelativeLift is the relative lift (m_B − m_A)/|m_A| with a confidence
// interval. For positive means (rates, revenue) it is the log-ratio
// (Katz) interval of the ratio R = m_B/m_A, minus 1:
//
//	Var(log R) = V_B/(n_B·m_B²) + V_A/(n_A·m_A²)
//	[R·exp(−c·√Var) − 1, R·exp(c·√Var) − 1]
//
// which for proportions is the Wald interval of the risk ratio on the log
// scale (statsmodels Table2x2.riskratio_confint, R epitools riskratio
// "wald"): it never goes below −100 %, and is skewed the way a ratio is.
// When m_B = 0 the lift is −100 %, the low bound −100 % and the high bound
// that of the delta method; with a negative mean the delta-method
// interval (no covariance term: the arms are independent)
//
//	Var = V_B/(n_B·m_A²) + V_A·m_B²/(n_A·m_A⁴),   [lift − c·√Var, lift + c·√Var]
//
// is used. c is the critical value of DiffCI. lift is NaN when an arm is
// empty or m_A = 0; the bounds are NaN when the variance is 0 or
// undefined.
func RelativeLift(a, b Summary, crit float64) (lift, lo, hi float64) {
	if a.N <= 0 || b.N <= 0 || a.Mean == 0 || math.IsNaN(a.Mean) {
		return math.NaN(), math.NaN(), math.NaN()
	}
	lift = (b.Mean - a.Mean) / math.Abs(a.Mean)
	if math.IsNaN(crit) {
		return lift, math.NaN(), math.NaN()
	}
	if a.Mean > 0 && b.Mean > 0 {
		v := b.Var/(b.N*b.Mean*b.Mean) + a.Var/(a.N*a.Mean*a.Mean)
		if !(v > 0) {
			return lift, math.NaN(), math.NaN()
		}
		r, half := b.Mean/a.Mean, crit*math.Sqrt(v)
		return lift, r*math.Exp(-half) - 1, r*math.Exp(half) - 1
	}
	ma2 := a.Mean * a.Mean
	v := b.Var/(b.N*ma2) + a.Var*b.Mean*b.Mean/(a.N*ma2*ma2)
	lo, hi = math.NaN(), math.NaN()
	if v > 0 {
		se := math.Sqrt(v)
		lo, hi = lift-crit*se, lift+crit*se
	}
	if a.Mean > 0 && b.Mean == 0 {
		lo = -1
	}
	return lift, lo, hi
}

// Wilson is the Wilson score interval for a proportion x/n, without
// continuity correction, clipped to [0, 1]:
//
//	z = z₁₋α/₂,  p̂ = x/n
//	centre = (p̂ + z²/2n)/(1 + z²/n)
//	half   = z/(1 + z²/n) · √(p̂(1 − p̂)/n + z²/4n²)
//
// It is R's prop.test(x, n, correct = FALSE)$conf.int. Both bounds are NaN
// for n = 0; x = 0 gives lo = 0 and x = n gives hi = 1 exactly.
func Wilson(x, n int64, alpha float64) (lo, hi float64) {
	if n <= 0 {
		return math.NaN(), math.NaN()
	}
	z := ZCritical(alpha)
	fn := float64(n)
	p := float64(x) / fn
	z2 := z * z
	den := 1 + z2/fn
	centre := (p + z2/(2*fn)) / den
	half := z / den * math.Sqrt(p*(1-p)/fn+z2/(4*fn*fn))
	lo, hi = max(0, centre-half), min(1, centre+half)
	if x <= 0 {
		lo = 0
	}
	if x >= n {
		hi = 1
	}
	return lo, hi
}

// SRM is the sample-ratio-mismatch check: Pearson's chi-square goodness of
// fit of the users per arm to the configured weights.
//
// Arms with weight 0 are dropped with their users; among the k remaining
// ("active") arms with N users in all, the expected count of arm i is
// E_i = N·w_i/Σw, and
//
//	χ² = Σ (O_i − E_i)²/E_i,  df = k − 1,  p = P(χ²_df > χ²)
//
// When every weight is 0 (none configured) all arms are active with equal
// weights. p = 1 (χ² = 0) when fewer than two arms are active or they have no
// users. weights must have the length of users.
func SRM(users []int64, weights []float64) (chi2 float64, df int, p float64) {
	if len(weights) != len(users) {
		panic("abtest: SRM: len(weights) != len(users)")
	}
	allZero := true
	for _, w := range weights {
		if w > 0 {
			allZero = false
		}
	}
	var total, wsum float64
	k := 0
	for i, u := range users {
		w := weights[i]
		if allZero {
			w = 1
		}
		if w > 0 {
			k++
			total += float64(u)
			wsum += w
		}
	}
	if k < 2 || total <= 0 {
		return 0, max(k-1, 0), 1
	}
	for i, u := range users {
		w := weights[i]
		if allZero {
			w = 1
		}
		if w > 0 {
			e := total * w / wsum
			d := float64(u) - e
			chi2 += d * d / e
		}
	}
	df = k - 1
	return chi2, df, distuv.ChiSquared{K: float64(df)}.Survival(chi2)
}

// Holm writes into dst the Holm (1979) step-down adjustment of the p-values
// p and returns it (dst is allocated when nil; it must have p's length and
// may be p itself). With the m valid p-values sorted ascending,
//
//	p̃_(j) = max_{i ≤ j} min(1, (m − i + 1)·p_(i))
//
// NaN entries are left out of m and stay NaN. It is R's p.adjust(p, "holm").
func Holm(dst, p []float64) []float64 {
	if dst == nil {
		dst = make([]float64, len(p))
	}
	if len(dst) != len(p) {
		panic("abtest: Holm: len(dst) != len(p)")
	}
	idx := make([]int, 0, len(p))
	for i, v := range p {
		if !math.IsNaN(v) {
			idx = append(idx, i)
		}
	}
	vals := make([]float64, len(p))
	copy(vals, p)
	sort.SliceStable(idx, func(a, b int) bool { return vals[idx[a]] < vals[idx[b]] })
	m := len(idx)
	running := 0.0
	for i := range dst {
		dst[i] = math.NaN()
	}
	for j, i := range idx {
		adj := min(1, float64(m-j)*vals[i])
		running = max(running, adj)
		dst[i] = running
	}
	return dst
}
