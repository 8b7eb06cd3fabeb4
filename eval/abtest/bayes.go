package abtest

import (
	"math"
	"math/rand/v2"
	"slices"

	"gonum.org/v1/gonum/integrate/quad"
	"gonum.org/v1/gonum/stat/distuv"
)

// Family is the distribution family of a Posterior.
type Family uint8

const (
	// BetaFamily: Posterior.A = α ≥ 1, Posterior.B = β ≥ 1.
	BetaFamily Family = 1 + iota
	// NormalFamily: Posterior.A = μ, Posterior.B = σ ≥ 0; σ = 0 is a point
	// mass at μ.
	NormalFamily
)

// Posterior is the posterior distribution of one arm's mean.
type Posterior struct {
	Family Family
	A, B   float64
}

// BetaPosterior is the posterior of a conversion rate after x conversions
// in n users under a uniform Beta(1, 1) prior: Beta(1 + x, 1 + n − x).
func BetaPosterior(conversions, users int64) Posterior {
	return Posterior{Family: BetaFamily, A: float64(1 + conversions), B: float64(1 + users - conversions)}
}

// NormalPosterior is the large-sample posterior of a mean under a flat
// prior: N(m, V/n). It is invalid (σ = NaN) when n < 2, and a point mass
// when V = 0.
func NormalPosterior(s Summary) Posterior {
	sd := math.NaN()
	if s.N >= 2 {
		sd = math.Sqrt(s.Var / s.N)
	}
	return Posterior{Family: NormalFamily, A: s.Mean, B: sd}
}

// Valid reports whether p is a usable posterior: Beta with finite α, β ≥ 1,
// or Normal with finite μ and σ ≥ 0.
func (p Posterior) Valid() bool {
	finite := func(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
	switch p.Family {
	case BetaFamily:
		return finite(p.A) && finite(p.B) && p.A >= 1 && p.B >= 1
	case NormalFamily:
		return finite(p.A) && finite(p.B) && p.B >= 0
	}
	return false
}

// Mean returns the posterior mean.
func (p Posterior) Mean() float64 {
	if p.Family == BetaFamily {
		return p.A / (p.A + p.B)
	}
	return p.A
}

// StdDev returns the posterior standard deviation.
func (p Posterior) StdDev() float64 {
	if p.Family == BetaFamily {
		s := p.A + p.B
		return math.Sqrt(p.A * p.B / (s * s * (s + 1)))
	}
	return p.B
}

// pointMass reports whether p is a point mass: σ = 0, or σ below the
// resolution of float64 at μ (the quadrature panels would collapse).
func (p Posterior) pointMass() bool {
	return p.Family == NormalFamily && p.B <= 1e-12*math.Abs(p.A)
}

// tailSD is how many standard deviations from the mean the quadrature
// covers; the mass beyond is below 1e-18 for every valid posterior
// (e^{−41} for the most skewed one, Beta(1, β)).
const tailSD = 40

// window returns the interval outside which the density is treated as 0.
func (p Posterior) window() (lo, hi float64) {
	m, s := p.Mean(), p.StdDev()
	lo, hi = m-tailSD*s, m+tailSD*s
	if p.Family == BetaFamily {
		lo, hi = max(lo, 0), min(hi, 1)
	}
	return lo, hi
}

// mode returns the mode of a Beta with α, β ≥ 1 (½ for the uniform).
func (p Posterior) mode() float64 {
	if p.A+p.B <= 2 {
		return 0.5
	}
	return (p.A - 1) / (p.A + p.B - 2)
}

// logKernel returns the log density at x up to an additive constant (0 at
// the mode), written with log1p of small ratios so that large counts keep
// full relative precision.
func (p Posterior) logKernel(x float64) float64 {
	if p.Family == NormalFamily {
		z := (x - p.A) / p.B
		return -0.5 * z * z
	}
	if x <= 0 || x >= 1 {
		return math.Inf(-1)
	}
	m := p.mode()
	var l float64
	if p.A > 1 {
		l += (p.A - 1) * math.Log1p((x-m)/m)
	}
	if p.B > 1 {
		l += (p.B - 1) * math.Log1p((m-x)/(1-m))
	}
	return l
}

// Gauss–Legendre rule used on every panel, and its integration matrix.
const glN = 20

var (
	glX, glW [glN]float64
	// glS[k][m] = ∫_{−1}^{x_k} L_m(t) dt, where L_m is the Lagrange basis
	// polynomial of node m: Σ_m glS[k][m]·f(x_m) is the integral from −1 to
	// node k of the degree-19 interpolant of f.
	glS [glN][glN]float64
)

func init() {
	quad.Legendre{}.FixedLocations(glX[:], glW[:], -1, 1)
	// L_m(t) = Σ_l (2l+1)/2 · w_m·P_l(x_m)·P_l(t) (exact: Gauss rule of
	// degree 2n − 1), ∫_{−1}^{x} P_0 = x + 1 and
	// ∫_{−1}^{x} P_l = (P_{l+1}(x) − P_{l−1}(x))/(2l + 1).
	// P[i][l] = P_l(x_i), by Bonnet's recursion.
	var P [glN][glN + 1]float64
	for i, x := range glX {
		P[i][0], P[i][1] = 1, x
		for l := 1; l < glN; l++ {
			P[i][l+1] = (float64(2*l+1)*x*P[i][l] - float64(l)*P[i][l-1]) / float64(l+1)
		}
	}
	for k := range glN {
		for m := range glN {
			s := (glX[k] + 1) / 2
			for l := 1; l < glN; l++ {
				s += 0.5 * P[m][l] * (P[k][l+1] - P[k][l-1])
			}
			glS[k][m] = glW[m] * s
		}
	}
}

// sdSteps are the panel boundaries around each arm, in standard deviations
// from its mean: panels are at most ½σ wide where the density is large.
var sdSteps = []float64{0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5, 6, 7, 8, 10, 12, 15, 20, 25, 30, tailSD}

// grid is a composite Gauss–Legendre discretisation shared by several
// posteriors: panels between the union of every arm's boundaries, glN
// nodes each, with each arm's normalised density and CDF at every node.
type grid struct {
	bounds []float64   // panel boundaries, strictly increasing
	x, w   []float64   // nodes and weights, glN per panel
	dens   [][]float64 // dens[j][node]: normalised density of arm j (0 for point masses)
	cdf    [][]float64 // cdf[j][node]
	cdfB   [][]float64 // cdfB[j][b]: CDF of arm j at bounds[b]
}

func newGrid(arms []Posterior) *grid {
	var bounds []float64
	for _, a := range arms {
		if a.pointMass() {
			bounds = append(bounds, a.A)
			continue
		}
		m, s := a.Mean(), a.StdDev()
		lo, hi := a.window()
		bounds = append(bounds, lo, hi)
		for _, st := range sdSteps {
			for _, x := range [2]float64{m - st*s, m + st*s} {
				if x > lo && x < hi {
					bounds = append(bounds, x)
				}
			}
		}
	}
	slices.Sort(bounds)
	bounds = slices.Compact(bounds)
	g := &grid{bounds: bounds}
	np := len(bounds) - 1
	if np < 0 {
		np = 0
	}
	g.x = make([]float64, np*glN)
	g.w = make([]float64, np*glN)
	for p := range np {
		c, h := (bounds[p]+bounds[p+1])/2, (bounds[p+1]-bounds[p])/2
		for k := range glN {
			g.x[p*glN+k] = c + h*glX[k]
			g.w[p*glN+k] = h * glW[k]
		}
	}
	g.dens = make([][]float64, len(arms))
	g.cdf = make([][]float64, len(arms))
	g.cdfB = make([][]float64, len(arms))
	for j, a := range arms {
		dens := make([]float64, np*glN)
		cdf := make([]float64, np*glN)
		cdfB := make([]float64, len(bounds))
		g.dens[j], g.cdf[j], g.cdfB[j] = dens, cdf, cdfB
		if a.pointMass() {
			for i, x := range g.x {
				if x > a.A {
					cdf[i] = 1
				}
			}
			for b, x := range bounds {
				if x >= a.A {
					cdfB[b] = 1
				}
			}
			continue
		}
		lo, hi := a.window()
		for i, x := range g.x {
			if x > lo && x < hi {
				dens[i] = math.Exp(a.logKernel(x))
			}
		}
		g.cumulate(dens, cdf, cdfB)
	}
	return g
}

// cumulate integrates f (values at the nodes) into F at the nodes and FB at
// the bounds, then normalises f, F and FB by the total.
func (g *grid) cumulate(f, F, FB []float64) {
	g.integrate(f, F, FB)
	if len(FB) == 0 {
		return
	}
	total := FB[len(FB)-1]
	if !(total > 0) {
		return
	}
	for i := range f {
		f[i] /= total
		F[i] /= total
	}
	for i := range FB {
		FB[i] /= total
	}
}

func sameValidFamily(arms []Posterior) bool {
	for _, a := range arms {
		if !a.Valid() || a.Family != arms[0].Family {
			return false
		}
	}
	return true
}

func fillNaN(dst []float64) []float64 {
	for i := range dst {
		dst[i] = math.NaN()
	}
	return dst
}

// ProbabilityBest writes into dst (allocated when nil) the probability that
// each arm has the largest mean, computed exactly by quadrature:
//
//	P(i best) = ∫ f_i(x) · Π_{j≠i} F_j(x) dx
//
// with composite 20-point Gauss–Legendre panels laid ½σ apart around every
// arm out to 40σ, each density normalised by its own quadrature sum and each
// CDF obtained by integrating the density's interpolant (no incomplete-beta
// evaluations, which lose accuracy for large counts). The absolute error is
// below 1e-9 (tests compare with 50-digit references). Point masses are
// exact; ties among them are shared equally. Cost grows as k²; use
// ProbabilityBestMC for many arms. All results are NaN if an arm is invalid
// or the families differ.
func ProbabilityBest(dst []float64, arms []Posterior) []float64 {
	dst = armsDst(dst, arms, "ProbabilityBest")
	if len(arms) == 0 {
		return dst
	}
	if !sameValidFamily(arms) {
		return fillNaN(dst)
	}
	if len(arms) == 1 {
		dst[0] = 1
		return dst
	}
	if arms[0].Family == NormalFamily {
		// P(best) is invariant under a common shift; centring on the
		// control keeps the panels resolvable when |μ| ≫ σ.
		shifted := make([]Posterior, len(arms))
		for j, a := range arms {
			shifted[j] = Posterior{Family: NormalFamily, A: a.A - arms[0].A, B: a.B}
		}
		arms = shifted
	}
	g := newGrid(arms)
	for i, a := range arms {
		if a.pointMass() {
			dst[i] = g.pointMassBest(arms, i)
			continue
		}
		s := 0.0
		for n := range g.x {
			d := g.dens[i][n]
			if d == 0 {
				continue
			}
			prod := g.w[n] * d
			for j := range arms {
				if j != i {
					prod *= g.cdf[j][n]
				}
			}
			s += prod
		}
		dst[i] = s
	}
	return dst
}

// pointMassBest is P(arm i is best) for a point mass arm i.
func (g *grid) pointMassBest(arms []Posterior, i int) float64 {
	c := arms[i].A
	b, _ := slices.BinarySearch(g.bounds, c)
	prod, ties := 1.0, 1.0
	for j, a := range arms {
		switch {
		case j == i:
		case a.pointMass() && a.A > c:
			return 0
		case a.pointMass() && a.A == c:
			ties++
		case a.pointMass():
		default:
			prod *= g.cdfB[j][b]
		}
	}
	return prod / ties
}

// armsDst returns dst, made when nil, one entry per arm; a dst of another
// length is a programming error of the caller fn.
func armsDst(dst []float64, arms []Posterior, fn string) []float64 {
	if dst == nil {
		dst = make([]float64, len(arms))
	}
	if len(dst) != len(arms) {
		panic("abtest: " + fn + ": len(dst) != len(arms)")
	}
	return dst
}

// ProbabilityBestMC estimates ProbabilityBest by drawing every arm's
// posterior draws times from src and counting how often each is largest
// (ties shared). Its standard error is at most 0.5/√draws.
func ProbabilityBestMC(dst []float64, arms []Posterior, draws int, src rand.Source) []float64 {
	dst = armsDst(dst, arms, "ProbabilityBestMC")
	if len(arms) == 0 {
		return dst
	}
	if !sameValidFamily(arms) || draws <= 0 {
		return fillNaN(dst)
	}
	rng := rand.New(src)
	betas := make([]distuv.Beta, len(arms))
	for j, a := range arms {
		betas[j] = distuv.Beta{Alpha: a.A, Beta: a.B, Src: src}
	}
	clear(dst)
	vals := make([]float64, len(arms))
	for range draws {
		best := math.Inf(-1)
		for j, a := range arms {
			if a.Family == BetaFamily {
				vals[j] = betas[j].Rand()
			} else {
				vals[j] = a.A + a.B*rng.NormFloat64()
			}
			best = max(best, vals[j])
		}
		ties := 0.0
		for _, v := range vals {
			if v == best {
				ties++
			}
		}
		for j, v := range vals {
			if v == best {
				dst[j] += 1 / ties
			}
		}
	}
	for j := range dst {
		dst[j] /= float64(draws)
	}
	return dst
}

// ChanceToBeat is the Bayesian chance to beat control, P(m_B > m_A), for
// independent posteriors of the same family. For Beta posteriors it is
// ProbabilityBest of the pair (exact to 1e-9); for normal posteriors the
// closed form Φ((μ_B − μ_A)/√(σ_A² + σ_B²)) (½ when both are equal point
// masses). NaN for invalid or mixed posteriors.
func ChanceToBeat(control, variant Posterior) float64 {
	arms := []Posterior{control, variant}
	if !sameValidFamily(arms) {
		return math.NaN()
	}
	if control.Family == NormalFamily {
		d, s := normalGap(control, variant)
		if s == 0 {
			switch {
			case d > 0:
				return 1
			case d < 0:
				return 0
			}
			return 0.5
		}
		return 0.5 * math.Erfc(-d/(s*math.Sqrt2))
	}
	var dst [2]float64
	ProbabilityBest(dst[:], arms)
	return dst[1]
}

// normalGap returns, for normal posteriors, the difference of the means
// d = μ_B − μ_A and its standard deviation s = √(σ_A² + σ_B²).
func normalGap(control, variant Posterior) (d, s float64) {
	return variant.A - control.A, math.Hypot(control.B, variant.B)
}

// ExpectedLoss is the expected loss of shipping the variant instead of the
// control, E[max(m_A − m_B, 0)], in metric units. For normal posteriors it
// is the closed form s·φ(d/s) − d·Φ(−d/s) with d = μ_B − μ_A and
// s = √(σ_A² + σ_B²); for Beta posteriors
//
//	E[max(A − B, 0)] = ∫ f_A(a) · ∫_{b<a} (a − b) f_B(b) db da
//
// by the same quadrature as ProbabilityBest. NaN for invalid or mixed
// posteriors.
func ExpectedLoss(control, variant Posterior) float64 {
	arms := []Posterior{control, variant}
	if !sameValidFamily(arms) {
		return math.NaN()
	}
	if control.Family == NormalFamily {
		d, s := normalGap(control, variant)
		if s == 0 {
			return max(-d, 0)
		}
		z := d / s
		return s*math.Exp(-z*z/2)/math.Sqrt(2*math.Pi) - d*0.5*math.Erfc(z/math.Sqrt2)
	}
	g := newGrid(arms)
	// Inner integral ∫_{b<a} (a − b) f_B(b) db = (a − c)F_B(a) − M(a) with
	// M(a) = ∫_{b<a} (b − c) f_B(b) db, centred at c = E[B] for precision.
	c := variant.Mean()
	fb := g.dens[1]
	mom := make([]float64, len(fb))
	for i, x := range g.x {
		mom[i] = (x - c) * fb[i]
	}
	M := make([]float64, len(fb))
	MB := make([]float64, len(g.bounds))
	g.integrate(mom, M, MB)
	loss := 0.0
	for i, x := range g.x {
		if d := g.dens[0][i]; d != 0 {
			inner := max(0, (x-c)*g.cdf[1][i]-M[i])
			loss += g.w[i] * d * inner
		}
	}
	return loss
}

// integrate is cumulate without the normalisation.
func (g *grid) integrate(f, F, FB []float64) {
	total := 0.0
	for p := 0; p+1 < len(g.bounds); p++ {
		h := (g.bounds[p+1] - g.bounds[p]) / 2
		FB[p] = total
		v := f[p*glN : (p+1)*glN]
		for k := range glN {
			s := 0.0
			for m := range glN {
				s += glS[k][m] * v[m]
			}
			F[p*glN+k] = total + h*s
		}
		s := 0.0
		for k := range glN {
			s += glW[k] * v[k]
		}
		total += h * s
	}
	if n := len(g.bounds); n > 0 {
		FB[n-1] = total
	}
}

// ApplyFloor writes into dst (allocated when nil) the floored allocation
// weights of k = len(w) arms,
//
//	w'_i = f + (1 − k·f)·w_i
//
// which sum to 1 when w does. When k·f ≥ 1, or any w_i is NaN, the weights
// are uniform, 1/k.
func ApplyFloor(dst, w []float64, floor float64) []float64 {
	if dst == nil {
		dst = make([]float64, len(w))
	}
	if len(dst) != len(w) {
		panic("abtest: ApplyFloor: len(dst) != len(w)")
	}
	k := float64(len(w))
	uniform := k*floor >= 1
	for _, v := range w {
		if math.IsNaN(v) {
			uniform = true
		}
	}
	for i, v := range w {
		if uniform {
			dst[i] = 1 / k
		} else {
			dst[i] = floor + (1-k*floor)*v
		}
	}
	return dst
}

// ThompsonWeights writes into dst (allocated when nil) the Thompson-sampling
// allocation weights: w_i = P(arm i is best | data), exact (ProbabilityBest)
// for up to ExactArms arms and by Monte Carlo (ProbabilityBestMC with
// MonteCarloDraws draws from a PCG source seeded with seed) beyond, then
// floored with ApplyFloor.
func ThompsonWeights(dst []float64, arms []Posterior, floor float64, seed uint64) []float64 {
	if dst == nil {
		dst = make([]float64, len(arms))
	}
	ApplyFloor(dst, probabilityBest(dst, arms, seed), floor)
	return dst
}

// probabilityBest is ProbabilityBest up to ExactArms arms and
// ProbabilityBestMC beyond.
func probabilityBest(dst []float64, arms []Posterior, seed uint64) []float64 {
	if len(arms) <= ExactArms {
		return ProbabilityBest(dst, arms)
	}
	return ProbabilityBestMC(dst, arms, MonteCarloDraws, rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}
