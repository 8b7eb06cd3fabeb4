package abtest

import (
	"math"
	"testing"
)

func TestSequential(t *testing.T) {
	// Reference: GrowthBook's SequentialTwoSidedTTest equations (ρ from
	// Waudby-Smith et al. eq. 161, half-width from Theorem 2.2, Λ from the
	// matching normal mixture) transcribed independently in mpmath at 40
	// digits by testdata/reference_scipy.py. This checks the transcription,
	// not GrowthBook's code, which is not available here; the behaviour
	// (false-positive rate under continuous peeking) is checked by
	// TestSimulatePeeking. Tolerance 1e-12.
	cases := []struct {
		xA, nA, xB, nB int64
		alpha, tuning  float64
		lo, hi, p      float64
	}{
		{1000, 10000, 1120, 10000, 0.05, 5000, -0.00161124701977800597, 0.02561124701977800597, 0.14371473503759304874},
		{100, 1000, 120, 1000, 0.05, 5000, -0.023688259076519279348, 0.063688259076519279348, 0.93888560396514779298},
		{1000, 10000, 1120, 10000, 0.1, 20000, -0.00003046928576329264205, 0.024030469285763292642, 0.10168268868936548256},
		{480, 5000, 530, 5100, 0.05, 5000, -0.010353396807683332758, 0.026196534062585293543, 1},
	}
	for _, c := range cases {
		lo, hi, p := SequentialTest(ProportionSummary(c.xA, c.nA), ProportionSummary(c.xB, c.nB), c.alpha, c.tuning)
		near(t, "seq_low", lo, c.lo, 1e-12)
		near(t, "seq_high", hi, c.hi, 1e-12)
		near(t, "seq_p", p, c.p, 1e-12)
	}

	t.Run("p below alpha iff 0 outside the sequence", func(t *testing.T) {
		const alpha, tuning, v = 0.05, 5000, 1e-4
		for _, n := range []float64{100, 5000, 1e6} {
			lo, _ := SequentialCI(1, v, n, alpha, tuning)
			edge := 1 - lo // the difference at which 0 is exactly on the boundary
			near(t, "p at boundary", SequentialP(edge, v, n, alpha, tuning), alpha, 1e-9)
			if p := SequentialP(edge*1.01, v, n, alpha, tuning); !(p < alpha) {
				t.Errorf("n=%v: p just outside = %v, want < α", n, p)
			}
			if p := SequentialP(edge*0.99, v, n, alpha, tuning); !(p > alpha) {
				t.Errorf("n=%v: p just inside = %v, want > α", n, p)
			}
		}
	})

	t.Run("tightest near N*", func(t *testing.T) {
		// ρ of eq. 161 approximately minimises the half-width at n = N*.
		const alpha, n, v = 0.05, 5000.0, 1e-4
		half := func(rho float64) float64 {
			r2 := rho * rho
			return math.Sqrt(v*n) * math.Sqrt(2*(n*r2+1)/(n*n*r2)*math.Log(math.Sqrt(n*r2+1)/alpha))
		}
		rho := SequentialRho(alpha, n)
		for _, f := range []float64{0.5, 0.8, 1.25, 2} {
			if half(rho*f) < half(rho) {
				t.Errorf("half-width at %.2g·ρ is smaller than at ρ", f)
			}
		}
	})

	t.Run("wider than the fixed-horizon interval", func(t *testing.T) {
		a, b := ProportionSummary(1000, 10000), ProportionSummary(1120, 10000)
		_, flo, fhi := DiffCI(a, b, ZCritical(0.05))
		lo, hi, _ := SequentialTest(a, b, 0.05, 5000)
		if !(lo < flo && hi > fhi) {
			t.Errorf("sequential [%v, %v] not wider than fixed [%v, %v]", lo, hi, flo, fhi)
		}
	})

	t.Run("undefined", func(t *testing.T) {
		lo, hi, p := SequentialTest(ProportionSummary(0, 100), ProportionSummary(0, 100), 0.05, 5000)
		if !math.IsNaN(lo) || !math.IsNaN(hi) || !math.IsNaN(p) {
			t.Errorf("zero variance: %v %v %v, want NaN", lo, hi, p)
		}
	})
}

func TestAlwaysValidP(t *testing.T) {
	nan := math.NaN()
	cases := []struct {
		looks []float64
		want  float64
	}{
		{[]float64{0.9, 0.3, 0.5}, 0.3},
		{[]float64{nan, 0.4, nan}, 0.4},
		{[]float64{nan}, nan},
		{nil, nan},
	}
	for _, c := range cases {
		near(t, "always-valid p", AlwaysValidP(c.looks...), c.want, 0)
	}
}
