package model

import (
	"math"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/lapack/lapack64"
)

// A visitor's fold-in solves (YᵀY + λI + Σ_j α w_j y_j y_jᵀ) x = b. The
// base YᵀY + λI is the same for every visitor until the item table moves
// (once per applied batch), while a web visitor's history holds a handful
// of items. For short histories the fold-in therefore factorises the base
// once per Gram version and adds each item to a copy of that factor by a
// rank-one Cholesky update (O(k²) each) instead of factorising the whole
// k×k matrix again (O(k³/3)). Both are exact: the results agree to
// rounding (TestLowRankFoldInEqualsCholesky).

// lowRankMaxItems is the longest history (in distinct items) folded in by
// rank-one updates of the cached base factor; longer ones are factorised
// whole. BenchmarkFoldInPaths puts the crossover at 4, 7 and 20 items for
// k = 32, 64 and 128 (one update costs 0.6, 1.7 and 6 µs; the whole
// factorisation 3, 13 and 100 µs).
func lowRankMaxItems(k int) int { return max(1, k/9) }

// baseFactor is a Workspace's cached Cholesky factor of one model's
// YᵀY + λI at one Gram version.
type baseFactor struct {
	owner   *Online
	version uint64
	upper   []float64 // k×k, upper triangle, row-major
}

// solveLowRank is solveExact for o's current Gram, by rank-one updates of
// the cached base factor. Called with o.mu held for reading.
func (ws *Workspace) solveLowRank(dst []float32, o *Online, cols []int32, w []float32) error {
	k := ws.k
	if err := ws.ensureBase(o); err != nil {
		return err
	}
	copy(ws.a, ws.base.upper)
	g := ws.gather(o.items, cols)
	clear(ws.b)
	for j := range cols {
		yj := g[j*k : j*k+k]
		wj := o.p.Alpha * float64(w[j])
		axpy(1+wj, yj, ws.b)
		s := math.Sqrt(wj)
		for f := range yj {
			yj[f] *= s
		}
		cholAddRankOne(ws.a, yj, k)
	}
	u := blas64.Triangular{N: k, Stride: k, Uplo: blas.Upper, Diag: blas.NonUnit, Data: ws.a}
	if err := solveFactored(u, ws.b); err != nil {
		return err
	}
	for f, v := range ws.b {
		dst[f] = float32(v)
	}
	return nil
}

// ensureBase makes ws.base the factor of o's current YᵀY + λI.
func (ws *Workspace) ensureBase(o *Online) error {
	if ws.base.owner == o && ws.base.version == o.gramVersion {
		return nil
	}
	k := ws.k
	copy(ws.a, o.gram)
	for i := range k {
		ws.a[i*k+i] += o.p.Lambda
	}
	if _, ok := lapack64.Potrf(ws.sym()); !ok {
		return ErrNotPositiveDefinite
	}
	ws.base = baseFactor{owner: o, version: o.gramVersion, upper: append(ws.base.upper[:0], ws.a...)}
	return nil
}

// cholAddRankOne turns the upper Cholesky factor u of A (A = uᵀu, k×k,
// row-major) into that of A + x·xᵀ in place, by Givens rotations; x is
// overwritten.
func cholAddRankOne(u, x []float64, k int) {
	for i := range k {
		xi := x[i]
		if xi == 0 {
			continue
		}
		row := u[i*k : i*k+k]
		d := row[i]
		r := math.Sqrt(d*d + xi*xi) // factor entries are far from overflow
		c, s, inv := r/d, xi/d, d/r
		row[i] = r
		xs := x[i+1 : k]
		rs := row[i+1 : k]
		for j := range rs {
			v := (rs[j] + s*xs[j]) * inv
			rs[j] = v
			xs[j] = c*xs[j] - s*v
		}
	}
}
