package model

import (
	"math"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
)

// Moments are the mean and covariance of the item factors (over the rows
// that have factors), and of the unit-length factors. They give the mean
// and standard deviation over all items of a query's scores in O(k²),
// without scoring every item: for scores s_i = x·y_i,
//
//	mean = x·ȳ,   var = xᵀ Σ x
//
// (Σ the covariance of the y_i), and likewise for cosine similarities with
// the unit factors. Blending standardised scores of a few candidates
// (engine's cold-start blend) needs exactly these.
type Moments struct {
	// Items is the number of rows with factors.
	Items int
	// Version is the model version they were computed at.
	Version uint64

	k                 int
	mean, cov         []float64
	unitMean, unitCov []float64
}

// Moments computes the moments of the current item factors: O(n·k²),
// through symmetric rank-k BLAS updates over chunks of rows (about 0.1 s
// for 100k items, k = 64).
func (o *Online) Moments() *Moments {
	o.mu.RLock()
	defer o.mu.RUnlock()
	k := o.p.Factors
	m := &Moments{k: k, Version: o.version.Load(), mean: make([]float64, k), cov: make([]float64, k*k),
		unitMean: make([]float64, k), unitCov: make([]float64, k*k)}
	const chunk = 256
	raw := make([]float64, 0, chunk*k)
	unit := make([]float64, 0, chunk*k)
	flush := func() {
		n := len(raw) / k
		if n == 0 {
			return
		}
		for _, pair := range []struct{ rows, sum, sq []float64 }{{raw, m.mean, m.cov}, {unit, m.unitMean, m.unitCov}} {
			for r := range n {
				for f, v := range pair.rows[r*k : r*k+k] {
					pair.sum[f] += v
				}
			}
			blas64.Syrk(blas.Trans, 1, blas64.General{Rows: n, Cols: k, Stride: k, Data: pair.rows}, 1,
				blas64.Symmetric{N: k, Stride: k, Uplo: blas.Upper, Data: pair.sq})
		}
		raw, unit = raw[:0], unit[:0]
	}
	for i := range o.items.Rows() {
		nm := float64(o.norms[i])
		if nm == 0 {
			continue
		}
		m.Items++
		for _, v := range o.items.Row(i) {
			raw = append(raw, float64(v))
			unit = append(unit, float64(v)/nm)
		}
		if len(raw) == chunk*k {
			flush()
		}
	}
	flush()
	symmetrize(m.cov, k)
	symmetrize(m.unitCov, k)
	finish(m.mean, m.cov, m.Items)
	finish(m.unitMean, m.unitCov, m.Items)
	return m
}

// finish turns sums into the mean and the (population) covariance.
func finish(mean, cov []float64, n int) {
	if n == 0 {
		return
	}
	k := len(mean)
	for a := range mean {
		mean[a] /= float64(n)
	}
	for a := range k {
		for b := range k {
			cov[a*k+b] = cov[a*k+b]/float64(n) - mean[a]*mean[b]
		}
	}
}

// Dist returns the mean and standard deviation over all items of the
// scores x·y_i (unit false) or of the cosines x̂·ŷ_i (unit true).
func (m *Moments) Dist(x []float32, unit bool) (mean, sd float64) {
	mu, cov := m.mean, m.cov
	scale := 1.0
	if unit {
		mu, cov = m.unitMean, m.unitCov
		if n := float64(norm32(x)); n > 0 {
			scale = 1 / n
		}
	}
	k := m.k
	var v float64
	for a, xa := range x {
		mean += float64(xa) * scale * mu[a]
		row := cov[a*k : a*k+k]
		var s float64
		for b, xb := range x {
			s += row[b] * float64(xb)
		}
		v += float64(xa) * s * scale * scale
	}
	return mean, math.Sqrt(max(v, 0))
}
