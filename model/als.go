package model

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
)

// Model is a trained implicit-feedback ALS model: user factors X and item
// factors Y, with the hyperparameters that produced them.
type Model struct {
	Params Params
	Users  *Factors
	Items  *Factors
}

// Progress is called after each training sweep with the 1-based iteration
// and the model so far (valid only during the call: copy what you keep).
type Progress func(iteration int, m *Model)

// Train fits implicit ALS (Hu, Koren, Volinsky 2008) to m: it minimises
//
//	Σ_u Σ_i c_ui (p_ui − x_u·y_i)² + λ Σ_u |x_u|² + Σ_i λ_i |y_i|²
//
// with c_ui = 1 + α·w_ui, p_ui = 1 where w_ui > 0 (0 elsewhere), and
// λ_i = λ unless p.ItemLambdaExponent scales it by the item's popularity, by
// alternating row-wise least squares over users and items, each half-sweep
// parallel over p.Threads goroutines. Every row solve uses the cached Gram
// YᵀY so that its cost is O(|row|·k² + k³) (Cholesky) or O(steps·(|row|·k + k²))
// (conjugate gradient), never O(all items).
//
// Train stops early with ctx's error when ctx is cancelled.
func Train(ctx context.Context, m *Matrix, p Params, progress Progress) (*Model, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	k := p.Factors
	rng := rand.New(rand.NewPCG(p.Seed, 0x4b4149524f53)) // "KAIROS"
	users := randomFactors(m.Users(), k, p.InitScale, rng)
	items := randomFactors(m.Items(), k, p.InitScale, rng)
	t := newTrainer(p)
	itemLambda := itemLambdas(p, m)
	for it := 1; it <= p.Iterations; it++ {
		if err := t.sweep(ctx, users, items, m.UserRow, t.userLambda); err != nil {
			return nil, err
		}
		if err := t.sweep(ctx, items, users, m.ItemColumn, itemLambda); err != nil {
			return nil, err
		}
		if progress != nil {
			progress(it, &Model{Params: p, Users: users, Items: items})
		}
	}
	return &Model{Params: p, Users: users, Items: items}, nil
}

// Continue runs more sweeps of Train on mod, in place, from its current
// factors: Train with n iterations followed by Continue with m gives the
// model of Train with n + m iterations. mod.Params.Iterations is advanced;
// progress sees the running iteration count. A hyperparameter search uses
// it to train its surviving configurations further instead of again.
func Continue(ctx context.Context, m *Matrix, mod *Model, iterations int, progress Progress) error {
	if err := mod.Params.Validate(); err != nil {
		return err
	}
	if mod.Users.Rows() != m.Users() || mod.Items.Rows() != m.Items() || mod.Users.K != mod.Params.Factors || mod.Items.K != mod.Params.Factors {
		return fmt.Errorf("model: Continue: a %d×%d model (k=%d) for a %d×%d matrix", mod.Users.Rows(), mod.Items.Rows(), mod.Users.K, m.Users(), m.Items())
	}
	t := newTrainer(mod.Params)
	itemLambda := itemLambdas(mod.Params, m)
	done := mod.Params.Iterations
	for it := 1; it <= iterations; it++ {
		if err := t.sweep(ctx, mod.Users, mod.Items, m.UserRow, t.userLambda); err != nil {
			return err
		}
		if err := t.sweep(ctx, mod.Items, mod.Users, m.ItemColumn, itemLambda); err != nil {
			return err
		}
		mod.Params.Iterations = done + it
		if progress != nil {
			progress(done+it, mod)
		}
	}
	return nil
}

func randomFactors(n, k int, scale float64, rng *rand.Rand) *Factors {
	f := NewFactors(n, k)
	for i := range f.Data {
		f.Data[i] = float32(rng.NormFloat64() * scale)
	}
	return f
}

// trainer holds the per-goroutine workspaces and the shared Gram matrix.
type trainer struct {
	p    Params
	ws   []*Workspace
	gram []float64 // Gram of the fixed side
	buf  []float64
}

func newTrainer(p Params) *trainer {
	t := &trainer{p: p, gram: make([]float64, p.Factors*p.Factors)}
	for range p.threads() {
		t.ws = append(t.ws, NewWorkspace(p.Factors))
	}
	return t
}

// userLambda is the λ of every user row.
func (t *trainer) userLambda(int) float64 { return t.p.Lambda }

// itemLambdas returns the λ of an item row by its number of users in m
// (Params.ItemLambdaExponent), the mean taken over the items with users
// (rows without any, such as catalog items never seen, do not move it).
func itemLambdas(p Params, m *Matrix) func(n int) float64 {
	seen := 0
	for i := range m.Items() {
		if users, _ := m.ItemColumn(i); len(users) > 0 {
			seen++
		}
	}
	mean := 0.0
	if seen > 0 {
		mean = float64(m.NNZ()) / float64(seen)
	}
	return func(n int) float64 { return p.itemLambda(n, mean) }
}

// sweep re-solves every row of solve with fixed held constant; row(i)
// returns the fixed-side rows and weights of row i, lambda(n) the
// regularisation of a row with n of them.
func (t *trainer) sweep(ctx context.Context, solve, fixed *Factors, row func(int) ([]int32, []float32), lambda func(n int) float64) error {
	t.buf = gramParallel(t.gram, fixed, len(t.ws), t.buf)
	const chunk = 32
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, len(t.ws))
	n := solve.Rows()
	for wi, ws := range t.ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if ctx.Err() != nil {
					errs[wi] = ctx.Err()
					return
				}
				start := int(next.Add(chunk)) - chunk
				if start >= n {
					return
				}
				for i := start; i < min(start+chunk, n); i++ {
					cols, w := row(i)
					if err := t.solveRow(ws, solve.Row(i), fixed, cols, w, lambda(len(cols))); err != nil {
						errs[wi] = fmt.Errorf("model: row %d: %w", i, err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func (t *trainer) solveRow(ws *Workspace, dst []float32, fixed *Factors, cols []int32, w []float32, lambda float64) error {
	if len(cols) == 0 {
		clear(dst) // the exact solution without observations
		return nil
	}
	if t.p.Solver == SolverCholesky {
		return ws.solveExact(dst, t.gram, lambda, fixed, cols, w, t.p.Alpha)
	}
	ws.solveCG(dst, t.gram, lambda, fixed, cols, w, t.p.Alpha, t.p.CGSteps)
	return nil
}

// gramParallel sets dst = FᵀF using up to threads goroutines over row
// ranges; buf is scratch reused across calls (returned, possibly grown).
func gramParallel(dst []float64, f *Factors, threads int, buf []float64) []float64 {
	k := f.K
	rows := f.Rows()
	if threads <= 1 || rows < 4096 {
		if cap(buf) < 256*k {
			buf = make([]float64, 256*k)
		}
		gramInto(dst, f, buf)
		return buf
	}
	parts := make([][]float64, threads)
	var wg sync.WaitGroup
	per := (rows + threads - 1) / threads
	for w := range threads {
		lo, hi := w*per, min((w+1)*per, rows)
		parts[w] = make([]float64, k*k)
		if lo >= hi {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sub := &Factors{K: k, Data: f.Data[lo*k : hi*k]}
			gramInto(parts[w], sub, nil)
		}()
	}
	wg.Wait()
	clear(dst)
	for _, p := range parts {
		for i, v := range p {
			dst[i] += v
		}
	}
	return buf
}

// Objective returns the implicit-ALS loss of mod on m (the quantity Train
// minimises), computed in O(nnz·k + (users+items)·k²) with the identity
// Σ_{u,i} (x_u·y_i)² = Σ_u x_uᵀ (YᵀY) x_u.
func Objective(m *Matrix, mod *Model) float64 {
	k := mod.Params.Factors
	gram := make([]float64, k*k)
	gramInto(gram, mod.Items, nil)
	var loss float64
	for u := range m.Users() {
		x := mod.Users.Row(u)
		for a := range k {
			for b := range k {
				loss += float64(x[a]) * gram[a*k+b] * float64(x[b])
			}
		}
		items, ws := m.UserRow(u)
		for j, i := range items {
			s := dot32f(x, mod.Items.Row(int(i)))
			c := 1 + mod.Params.Alpha*float64(ws[j])
			loss += c*(1-s)*(1-s) - s*s
		}
	}
	var reg float64
	for _, v := range mod.Users.Data {
		reg += float64(v) * float64(v)
	}
	reg *= mod.Params.Lambda
	lambda := itemLambdas(mod.Params, m)
	for i := range mod.Items.Rows() {
		users, _ := m.ItemColumn(i)
		var sq float64
		for _, v := range mod.Items.Row(i) {
			sq += float64(v) * float64(v)
		}
		reg += lambda(len(users)) * sq
	}
	return loss + reg
}

func dot32f(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}
