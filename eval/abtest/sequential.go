package abtest

import "math"

// SequentialRho returns the mixing parameter ρ of the normal-mixture
// confidence sequence that makes it tightest (approximately) at the total
// sample size N* = tuning, as in Waudby-Smith et al. (2023), eq. 161, and
// GrowthBook:
//
//	ρ² = (−2·ln α + ln(1 − 2·ln α)) / N*
func SequentialRho(alpha, tuning float64) float64 {
	l := -2 * math.Log(alpha)
	return math.Sqrt((l + math.Log1p(l)) / tuning)
}

// SequentialCI is the asymptotic normal-mixture confidence sequence (Howard
// et al. 2021; Waudby-Smith et al. 2023, Theorem 2.2) for a difference with
// point estimate diff whose estimator has variance v (V_A/n_A + V_B/n_B),
// after n units in total, in GrowthBook's parametrisation (σ̂² = v·n):
//
//	half = √(v·n) · √( 2(nρ² + 1)/(n²ρ²) · ln(√(nρ² + 1)/α) )
//
// The interval diff ± half covers the true difference at every n at once
// with probability ≥ 1 − α, so it may be looked at after every visitor.
// The bounds are NaN when v is not positive or n is 0.
func SequentialCI(diff, v, n, alpha, tuning float64) (lo, hi float64) {
	if !(v > 0) || !(n > 0) || math.IsNaN(diff) {
		return math.NaN(), math.NaN()
	}
	r2 := SequentialRho(alpha, tuning)
	r2 *= r2
	nr2 := n * r2
	half := math.Sqrt(v*n) * math.Sqrt(2*(nr2+1)/(n*nr2)*math.Log(math.Sqrt(nr2+1)/alpha))
	return diff - half, diff + half
}

// SequentialP is the sequential p-value of H₀: difference = 0 at one look,
// min(1, 1/Λ), where Λ is the normal-mixture likelihood ratio (mSPRT,
// Johari et al. 2017) matching SequentialCI:
//
//	ln Λ = −½·ln(nρ² + 1) + nρ²·diff² / (2v(nρ² + 1))
//
// p < α exactly when 0 is outside SequentialCI. The running minimum over
// looks (AlwaysValidP) is the always-valid p-value. It is NaN when v is not
// positive or n is 0.
func SequentialP(diff, v, n, alpha, tuning float64) float64 {
	if !(v > 0) || !(n > 0) || math.IsNaN(diff) {
		return math.NaN()
	}
	r2 := SequentialRho(alpha, tuning)
	nr2 := n * r2 * r2
	logLambda := -0.5*math.Log1p(nr2) + nr2*diff*diff/(2*v*(nr2+1))
	if logLambda <= 0 {
		return 1
	}
	return math.Exp(-logLambda)
}

// SequentialTest applies SequentialCI and SequentialP to two arms, with
// diff = m_B − m_A, v = V_A/n_A + V_B/n_B and n = n_A + n_B.
func SequentialTest(a, b Summary, alpha, tuning float64) (lo, hi, p float64) {
	if a.N <= 0 || b.N <= 0 {
		return math.NaN(), math.NaN(), math.NaN()
	}
	diff := b.Mean - a.Mean
	v := a.Var/a.N + b.Var/b.N
	n := a.N + b.N
	lo, hi = SequentialCI(diff, v, n, alpha, tuning)
	return lo, hi, SequentialP(diff, v, n, alpha, tuning)
}

// AlwaysValidP is the always-valid p-value after a series of looks: the
// running minimum of the sequential p-values, ignoring NaN (looks where the
// test was undefined). It is NaN when no look was defined.
func AlwaysValidP(looks ...float64) float64 {
	m := math.NaN()
	for _, p := range looks {
		if !math.IsNaN(p) && !(m <= p) {
			m = p
		}
	}
	return m
}
