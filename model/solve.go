package model

import (
	"errors"
	"math"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/lapack/lapack64"
)

// ErrNotPositiveDefinite is returned when a row's normal equations cannot be
// factorised, which with λ > 0 only happens for non-finite inputs.
var ErrNotPositiveDefinite = errors.New("model: normal equations not positive definite (non-finite factors or weights?)")

// Workspace holds the scratch memory of one row solve so that repeated
// solves allocate nothing. A Workspace is not safe for concurrent use; give
// each goroutine its own.
type Workspace struct {
	k        int
	a        []float64 // k×k normal matrix
	b, x     []float64 // right-hand side, solution
	r, p, ap []float64 // CG vectors
	g        []float64 // gathered rows of the other side, n×k
	t        []float64 // per-gathered-row scalars
	delta    []float64 // item update step

	cols        []int32   // history columns
	ws          []float32 // history weights
	pending     []float32 // rows changed by the current Apply batch
	pendingRows []int32
	t2          []float64 // per-entry scalars of an item step

	alpha   float64 // α of the model whose Apply uses this workspace
	groups  []itemGroup
	groupOf map[int32]int
	counts  []int
	entries []itemEntry

	base baseFactor // cached factor of a live model's YᵀY + λI (lowrank.go)
}

// NewWorkspace returns a workspace for k factors.
func NewWorkspace(k int) *Workspace {
	return &Workspace{
		k: k, a: make([]float64, k*k),
		b: make([]float64, k), x: make([]float64, k),
		r: make([]float64, k), p: make([]float64, k), ap: make([]float64, k),
	}
}

// gather copies the rows cols of other into ws.g as float64, scaling row j
// by scale(j) when scale is not nil.
func (ws *Workspace) gather(other *Factors, cols []int32) []float64 {
	k := ws.k
	n := len(cols) * k
	if cap(ws.g) < n {
		ws.g = make([]float64, n, n+n/2)
	}
	g := ws.g[:n]
	for j, c := range cols {
		row := other.Data[int(c)*k : int(c)*k+k]
		dst := g[j*k : j*k+k]
		for f, v := range row {
			dst[f] = float64(v)
		}
	}
	return g
}

func (ws *Workspace) scalars(n int) []float64 {
	if cap(ws.t) < n {
		ws.t = make([]float64, n, n+n/2)
	}
	return ws.t[:n]
}

// solveExact solves (gram + λI + Σ α w_j y_j y_jᵀ) x = Σ (1 + α w_j) y_j
// exactly by Cholesky, where gram = YᵀY (k×k, full symmetric) and
// y_j = other.Row(cols[j]), and writes x to dst.
func (ws *Workspace) solveExact(dst []float32, gram []float64, lambda float64, other *Factors, cols []int32, w []float32, alpha float64) error {
	k := ws.k
	g := ws.gather(other, cols)
	copy(ws.a, gram)
	for i := 0; i < k; i++ {
		ws.a[i*k+i] += lambda
	}
	clear(ws.b)
	for j := range cols {
		yj := g[j*k : j*k+k]
		wj := alpha * float64(w[j])
		axpy(1+wj, yj, ws.b)
		s := math.Sqrt(wj)
		for f := range yj {
			yj[f] *= s
		}
	}
	if len(cols) > 0 {
		blas64.Syrk(blas.Trans, 1, blas64.General{Rows: len(cols), Cols: k, Stride: k, Data: g}, 1, ws.sym())
	}
	if err := ws.choleskySolve(ws.b); err != nil {
		return err
	}
	for f, v := range ws.b {
		dst[f] = float32(v)
	}
	return nil
}

// solveExactRHS factorises the same normal matrix as solveExact and solves
// it for the right-hand side rhs instead, writing the solution to out.
func (ws *Workspace) solveExactRHS(gram []float64, lambda float64, other *Factors, cols []int32, w []float32, alpha float64, rhs []float32, out []float64) error {
	k := ws.k
	g := ws.gather(other, cols)
	copy(ws.a, gram)
	for i := 0; i < k; i++ {
		ws.a[i*k+i] += lambda
	}
	for j := range cols {
		s := math.Sqrt(alpha * float64(w[j]))
		yj := g[j*k : j*k+k]
		for f := range yj {
			yj[f] *= s
		}
	}
	blas64.Syrk(blas.Trans, 1, blas64.General{Rows: len(cols), Cols: k, Stride: k, Data: g}, 1, ws.sym())
	for f, v := range rhs {
		out[f] = float64(v)
	}
	return ws.choleskySolve(out)
}

// scratchRow returns a k-length scratch vector distinct from the others.
func (ws *Workspace) scratchRow(k int) []float64 {
	if len(ws.delta) < k {
		ws.delta = make([]float64, k)
	}
	return ws.delta[:k]
}

func (ws *Workspace) sym() blas64.Symmetric {
	return blas64.Symmetric{N: ws.k, Stride: ws.k, Uplo: blas.Upper, Data: ws.a}
}

// choleskySolve factorises ws.a (upper triangle) in place and overwrites
// rhs with the solution.
func (ws *Workspace) choleskySolve(rhs []float64) error {
	t, ok := lapack64.Potrf(ws.sym())
	if !ok {
		return ErrNotPositiveDefinite
	}
	return solveFactored(t, rhs)
}

// solveFactored overwrites rhs with the solution of uᵀu x = rhs for the
// upper Cholesky factor u, refusing a non-finite result. It solves
// uᵀy = rhs, then ux = y, by two triangular solves of a vector (Trsv),
// not Potrs: its Trsm with one right-hand column runs an axpy of length 1
// per matrix element, which was half the fold-in's time.
func solveFactored(u blas64.Triangular, rhs []float64) error {
	x := blas64.Vector{N: len(rhs), Inc: 1, Data: rhs}
	blas64.Trsv(blas.Trans, u, x)
	blas64.Trsv(blas.NoTrans, u, x)
	for _, v := range rhs {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return ErrNotPositiveDefinite
		}
	}
	return nil
}

// solveCG runs steps conjugate-gradient iterations on the same system as
// solveExact, starting from the current contents of dst, and writes the
// result back to dst.
func (ws *Workspace) solveCG(dst []float32, gram []float64, lambda float64, other *Factors, cols []int32, w []float32, alpha float64, steps int) {
	k := ws.k
	n := len(cols)
	g := ws.gather(other, cols)
	t := ws.scalars(n)
	G := blas64.General{Rows: n, Cols: k, Stride: k, Data: g}
	x, r, p, ap := ws.x, ws.r, ws.p, ws.ap
	for f, v := range dst {
		x[f] = float64(v)
	}
	// r = b − A x, with b = Σ (1 + α w_j) y_j.
	ws.applyA(r, x, gram, lambda, G, w, alpha, t)
	for f := range r {
		r[f] = -r[f]
	}
	for j := range cols {
		axpy(1+alpha*float64(w[j]), g[j*k:j*k+k], r)
	}
	copy(p, r)
	rs := dot(r, r)
	for it := 0; it < steps && rs > 1e-20; it++ {
		ws.applyA(ap, p, gram, lambda, G, w, alpha, t)
		a := rs / dot(p, ap)
		axpy(a, p, x)
		axpy(-a, ap, r)
		next := dot(r, r)
		beta := next / rs
		for f := range p {
			p[f] = r[f] + beta*p[f]
		}
		rs = next
	}
	for f, v := range x {
		dst[f] = float32(v)
	}
}

// applyA sets dst = (gram + λI)·v + Gᵀ(α w ∘ (G v)).
func (ws *Workspace) applyA(dst, v, gram []float64, lambda float64, G blas64.General, w []float32, alpha float64, t []float64) {
	k := ws.k
	copy(dst, v)
	// gram is full symmetric: the general product is the faster kernel.
	blas64.Gemv(blas.NoTrans, 1, blas64.General{Rows: k, Cols: k, Stride: k, Data: gram}, blas64.Vector{N: k, Inc: 1, Data: v}, lambda, blas64.Vector{N: k, Inc: 1, Data: dst})
	if G.Rows == 0 {
		return
	}
	tv := blas64.Vector{N: G.Rows, Inc: 1, Data: t}
	blas64.Gemv(blas.NoTrans, 1, G, blas64.Vector{N: k, Inc: 1, Data: v}, 0, tv)
	for j := range t {
		t[j] *= alpha * float64(w[j])
	}
	blas64.Gemv(blas.Trans, 1, G, tv, 1, blas64.Vector{N: k, Inc: 1, Data: dst})
}

func dot(a, b []float64) float64 {
	return blas64.Dot(blas64.Vector{N: len(a), Inc: 1, Data: a}, blas64.Vector{N: len(b), Inc: 1, Data: b})
}

func axpy(alpha float64, x, y []float64) {
	blas64.Axpy(alpha, blas64.Vector{N: len(x), Inc: 1, Data: x}, blas64.Vector{N: len(y), Inc: 1, Data: y})
}

// gramInto sets dst (k×k, full symmetric) to FᵀF, accumulating in float64
// over chunks of rows. It runs on the calling goroutine.
func gramInto(dst []float64, f *Factors, buf []float64) {
	k := f.K
	clear(dst)
	const chunk = 256
	if cap(buf) < chunk*k {
		buf = make([]float64, chunk*k)
	}
	c := blas64.Symmetric{N: k, Stride: k, Uplo: blas.Upper, Data: dst}
	rows := f.Rows()
	for start := 0; start < rows; start += chunk {
		n := min(chunk, rows-start)
		b := buf[:n*k]
		for i, v := range f.Data[start*k : (start+n)*k] {
			b[i] = float64(v)
		}
		blas64.Syrk(blas.Trans, 1, blas64.General{Rows: n, Cols: k, Stride: k, Data: b}, 1, c)
	}
	symmetrize(dst, k)
}

// symmetrize copies the upper triangle of the k×k matrix a to its lower one.
func symmetrize(a []float64, k int) {
	for i := 0; i < k; i++ {
		for j := i + 1; j < k; j++ {
			a[j*k+i] = a[i*k+j]
		}
	}
}
