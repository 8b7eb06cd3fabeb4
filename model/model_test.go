package model

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// planted generates users in clusters, each cluster interacting only with
// its own block of items (with some popularity skew inside the block).
func planted(t testing.TB, clusters, usersPer, itemsPer, perUser int, seed uint64) (*Matrix, func(u int) int, func(i int) int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	nu, ni := clusters*usersPer, clusters*itemsPer
	var ts []Interaction
	for u := range nu {
		c := u / usersPer
		seen := map[int]bool{}
		for len(seen) < perUser {
			// Zipf-like skew within the block.
			i := c*itemsPer + int(float64(itemsPer)*math.Pow(rng.Float64(), 2))
			if seen[i] {
				continue
			}
			seen[i] = true
			ts = append(ts, Interaction{User: int32(u), Item: int32(i), Weight: float32(1 + rng.IntN(3))})
		}
	}
	m, err := NewMatrix(nu, ni, ts)
	if err != nil {
		t.Fatal(err)
	}
	return m, func(u int) int { return u / usersPer }, func(i int) int { return i / itemsPer }
}

func mustTrain(t testing.TB, m *Matrix, p Params) *Model {
	t.Helper()
	mod, err := Train(context.Background(), m, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	return mod
}

func mustOnline(t testing.TB, m *Model, st *ItemStats) *Online {
	t.Helper()
	o, err := NewOnline(m, st)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func testParams(k int) Params {
	p := DefaultParams()
	p.Factors = k
	p.Lambda = 1
	p.Alpha = 10
	p.Iterations = 10
	return p
}

func TestPlantedClustersRecovered(t *testing.T) {
	for _, solver := range []Solver{SolverCG, SolverCholesky} {
		t.Run(solver.String(), func(t *testing.T) {
			m, clusterOfUser, clusterOfItem := planted(t, 5, 40, 30, 8, 7)
			p := testParams(8)
			p.Solver = solver
			mod := mustTrain(t, m, p)
			o := mustOnline(t, mod, nil)
			var s Scorer
			var top []Scored
			for u := range m.Users() {
				items, _ := m.UserRow(u)
				ex := NewBitset(m.Items())
				for _, i := range items {
					ex.Set(int(i))
				}
				top = o.TopK(&s, top, Query{Vector: mod.Users.Row(u), N: 10, Exclude: ex})
				if len(top) != 10 {
					t.Fatalf("user %d: %d results, want 10", u, len(top))
				}
				for r, e := range top {
					if clusterOfItem(int(e.Item)) != clusterOfUser(u) {
						t.Fatalf("user %d (cluster %d): rank %d is item %d of cluster %d", u, clusterOfUser(u), r+1, e.Item, clusterOfItem(int(e.Item)))
					}
				}
			}
		})
	}
}

// exactUserSolution solves the user's ALS problem with Y fixed from its
// definition, over all items, with dense gonum matrices:
// x = (Yᵀ C Y + λI)⁻¹ Yᵀ C p.
func exactUserSolution(t *testing.T, Y *Factors, hist []ItemWeight, p Params) []float64 {
	t.Helper()
	n, k := Y.Rows(), Y.K
	c := make([]float64, n)
	pref := make([]float64, n)
	for i := range c {
		c[i] = 1
	}
	for _, h := range hist {
		c[h.Item] = 1 + p.Alpha*float64(h.Weight)
		pref[h.Item] = 1
	}
	A := mat.NewDense(k, k, nil)
	b := mat.NewVecDense(k, nil)
	for i := range n {
		y := make([]float64, k)
		for f, v := range Y.Row(i) {
			y[f] = float64(v)
		}
		yv := mat.NewVecDense(k, y)
		var outer mat.Dense
		outer.Outer(c[i], yv, yv)
		A.Add(A, &outer)
		b.AddScaledVec(b, c[i]*pref[i], yv)
	}
	for f := range k {
		A.Set(f, f, A.At(f, f)+p.Lambda)
	}
	var x mat.VecDense
	if err := x.SolveVec(A, b); err != nil {
		t.Fatal(err)
	}
	return x.RawVector().Data
}

func TestFoldInEqualsBatchSolution(t *testing.T) {
	m, _, _ := planted(t, 4, 30, 25, 10, 3)
	p := testParams(16)
	mod := mustTrain(t, m, p)
	o := mustOnline(t, mod, nil)
	ws := NewWorkspace(p.Factors)
	dst := make([]float32, p.Factors)
	rng := rand.New(rand.NewPCG(5, 5))
	for trial := range 20 {
		var hist []ItemWeight
		for range 1 + rng.IntN(40) {
			hist = append(hist, ItemWeight{Item: int32(rng.IntN(m.Items())), Weight: float32(rng.Float64() * 5)})
		}
		hist = dedupe(hist)
		if err := o.FoldUser(ws, dst, hist); err != nil {
			t.Fatal(err)
		}
		want := exactUserSolution(t, mod.Items, hist, p)
		if e := relErr(dst, want); e > 1e-6 {
			t.Fatalf("trial %d: fold-in differs from the exact solution by %.3g relative", trial, e)
		}
	}
}

func dedupe(h []ItemWeight) []ItemWeight {
	seen := map[int32]int{}
	var out []ItemWeight
	for _, e := range h {
		if j, ok := seen[e.Item]; ok {
			out[j].Weight += e.Weight
			continue
		}
		seen[e.Item] = len(out)
		out = append(out, e)
	}
	return out
}

func relErr(got []float32, want []float64) float64 {
	var num, den float64
	for i := range want {
		d := float64(got[i]) - want[i]
		num += d * d
		den += want[i] * want[i]
	}
	return math.Sqrt(num / den)
}

func TestCGMatchesCholesky(t *testing.T) {
	m, _, _ := planted(t, 4, 50, 40, 12, 11)
	p := testParams(16)
	p.Iterations = 15
	p.Solver = SolverCholesky
	exact := mustTrain(t, m, p)
	p.Solver = SolverCG
	p.CGSteps = 3
	cg := mustTrain(t, m, p)
	// Both minimise the same objective: CG must get as low as the exact
	// solver, and both far below the random start.
	lc, lx := Objective(m, cg), Objective(m, exact)
	p0 := p
	p0.Iterations = 0
	l0 := Objective(m, mustTrain(t, m, p0))
	t.Logf("objective: start %.1f, cholesky %.1f, cg %.1f", l0, lx, lc)
	if lc > lx*1.01 {
		t.Fatalf("CG objective %.2f is more than 1%% above Cholesky's %.2f", lc, lx)
	}
	if lx > l0*0.5 {
		t.Fatalf("training did not reduce the objective enough: %.1f -> %.1f", l0, lx)
	}
	// Converged to full precision, CG solves each row exactly.
	ws := NewWorkspace(p.Factors)
	gram := make([]float64, p.Factors*p.Factors)
	gramInto(gram, exact.Items, nil)
	for u := range 10 {
		cols, w := m.UserRow(u)
		want := make([]float32, p.Factors)
		if err := ws.solveExact(want, gram, p.Lambda, exact.Items, cols, w, p.Alpha); err != nil {
			t.Fatal(err)
		}
		got := make([]float32, p.Factors)
		ws.solveCG(got, gram, p.Lambda, exact.Items, cols, w, p.Alpha, 200)
		w64 := make([]float64, len(want))
		for f, v := range want {
			w64[f] = float64(v)
		}
		if e := relErr(got, w64); e > 1e-5 {
			t.Fatalf("user %d: converged CG differs from Cholesky by %.3g", u, e)
		}
	}
}

func TestContinueEqualsLongerTraining(t *testing.T) {
	m, _, _ := planted(t, 3, 30, 20, 8, 5)
	p := testParams(8)
	p.Threads = 2
	p.Iterations = 7
	want := mustTrain(t, m, p)
	p.Iterations = 3
	got := mustTrain(t, m, p)
	var its []int
	if err := Continue(context.Background(), m, got, 4, func(it int, _ *Model) { its = append(its, it) }); err != nil {
		t.Fatal(err)
	}
	if got.Params.Iterations != 7 || len(its) != 4 || its[0] != 4 || its[3] != 7 {
		t.Fatalf("iterations %d, progress %v; want 7 and 4..7", got.Params.Iterations, its)
	}
	for i, v := range want.Items.Data {
		if got.Items.Data[i] != v {
			t.Fatalf("item factor %d: %v after 3+4 sweeps, %v after 7", i, got.Items.Data[i], v)
		}
	}
	bad := mustTrain(t, m, p)
	other, _, _ := planted(t, 2, 10, 5, 3, 6)
	if err := Continue(context.Background(), other, bad, 1, nil); err == nil {
		t.Fatal("Continue on a matrix of another shape did not fail")
	}
}
