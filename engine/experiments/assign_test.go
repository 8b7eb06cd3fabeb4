package experiments_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/kairoshq/kairos/engine/experiments"
)

func TestPick(t *testing.T) {
	tests := []struct {
		w    []float64
		u    float64
		want int
	}{
		{[]float64{0.5, 0.5}, 0, 0},
		{[]float64{0.5, 0.5}, 0.4999, 0},
		{[]float64{0.5, 0.5}, 0.5, 1},
		{[]float64{0.5, 0.5}, 0.999999, 1},
		{[]float64{0, 1, 0}, 0, 1},
		{[]float64{0, 1, 0}, 0.9999, 1},
		{[]float64{2, 6}, 0.25, 1}, // unnormalised
		{[]float64{2, 6}, 0.2499, 0},
		{[]float64{0.1, 0.2, 0.7 - 1e-12}, 0.9999999999999, 2},
		{[]float64{0, 0}, 0.3, -1},
	}
	for _, tt := range tests {
		if got := experiments.Pick(tt.w, tt.u); got != tt.want {
			t.Errorf("Pick(%v, %v) = %d, want %d", tt.w, tt.u, got, tt.want)
		}
	}
}

// TestBucketDistribution: 100,000 subjects split 50/30/20 by Bucket and
// Pick fit the weights (Pearson χ², 2 df, below the 0.1 % critical value
// 13.82), the bucket is the same on every call, and two salts bucket
// independently (correlation of the buckets near 0).
func TestBucketDistribution(t *testing.T) {
	const n = 100_000
	w := []float64{0.5, 0.3, 0.2}
	var counts [3]float64
	var sx, sy, sxy, sxx, syy float64
	for i := range n {
		s := experiments.AnonKey(fmt.Sprintf("visitor-%d", i))
		u := experiments.Bucket("salt-1", s)
		if u < 0 || u >= 1 {
			t.Fatalf("bucket %v out of [0, 1)", u)
		}
		if u != experiments.Bucket("salt-1", s) {
			t.Fatalf("bucket of %s changed between calls", s)
		}
		counts[experiments.Pick(w, u)]++
		v := experiments.Bucket("salt-2", s)
		sx, sy, sxy, sxx, syy = sx+u, sy+v, sxy+u*v, sxx+u*u, syy+v*v
	}
	var chi2 float64
	for i, c := range counts {
		e := n * w[i]
		chi2 += (c - e) * (c - e) / e
	}
	t.Logf("counts %v, χ² = %.2f", counts, chi2)
	if chi2 > 13.82 {
		t.Errorf("χ² = %.2f > 13.82: the split %v does not fit %v", chi2, counts, w)
	}
	cov := sxy/n - sx/n*sy/n
	r := cov / math.Sqrt((sxx/n-sx/n*sx/n)*(syy/n-sy/n*sy/n))
	if math.Abs(r) > 0.02 { // 6 standard errors (1/√n ≈ 0.003)
		t.Errorf("correlation of two salts' buckets %.4f", r)
	}
}
