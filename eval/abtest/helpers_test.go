package abtest

import (
	"math"
	"testing"
)

// near fails t unless got is within tol of want, where tol is absolute
// below |want| = 1 and relative above (so one tolerance serves p-values near
// 0 and statistics in the thousands). NaN matches only NaN.
func near(tb testing.TB, name string, got, want, tol float64) {
	tb.Helper()
	if math.IsNaN(want) {
		if !math.IsNaN(got) {
			tb.Errorf("%s = %v, want NaN", name, got)
		}
		return
	}
	if math.IsNaN(got) || math.Abs(got-want) > tol*max(1, math.Abs(want)) {
		tb.Errorf("%s = %.17g, want %.17g (tolerance %g)", name, got, want, tol)
	}
}

// nearRel fails t unless got is within relative tolerance tol of want.
func nearRel(tb testing.TB, name string, got, want, tol float64) {
	tb.Helper()
	if math.IsNaN(got) || math.Abs(got-want) > tol*math.Abs(want) {
		tb.Errorf("%s = %.17g, want %.17g (relative tolerance %g)", name, got, want, tol)
	}
}

// revenueSums returns n, Σx and Σx² of xs.
func revenueSums(xs []float64) (n int64, sum, sumSquares float64) {
	for _, x := range xs {
		sum += x
		sumSquares += x * x
	}
	return int64(len(xs)), sum, sumSquares
}
