package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// exactFold solves a fold-in by factorising the whole normal matrix.
func exactFold(t *testing.T, o *Online, hist []ItemWeight) []float32 {
	t.Helper()
	ws := NewWorkspace(o.K())
	cols, w := ws.split(hist)
	dst := make([]float32, o.K())
	o.mu.RLock()
	defer o.mu.RUnlock()
	if err := ws.solveExact(dst, o.gram, o.p.Lambda, o.items, cols, w, o.p.Alpha); err != nil {
		t.Fatal(err)
	}
	return dst
}

// assertClose fails unless got and want agree to a relative 1e-4 of want's
// largest component.
func assertClose(t *testing.T, what string, got, want []float32) {
	t.Helper()
	var scale float64
	for _, v := range want {
		scale = max(scale, math.Abs(float64(v)))
	}
	for f := range want {
		if d := math.Abs(float64(got[f] - want[f])); d > 1e-4*scale {
			t.Fatalf("%s: factor %d is %g, the whole factorisation gives %g (scale %g)", what, f, got[f], want[f], scale)
		}
	}
}

func randomHistory(rng *rand.Rand, items, n int) []ItemWeight {
	hist := make([]ItemWeight, n)
	for j := range hist {
		hist[j] = ItemWeight{Item: int32(j*(items/n) + rng.IntN(items/n)), Weight: 0.1 + 3*rng.Float32()}
	}
	return hist
}

func TestLowRankFoldInEqualsCholesky(t *testing.T) {
	const k = 64
	o, err := NewOnline(randomModel(2_000, k, 3), nil)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	ws := NewWorkspace(k)
	dst := make([]float32, k)
	for n := 1; n <= lowRankMaxItems(k); n++ {
		hist := randomHistory(rng, 2_000, n)
		if err := o.FoldUser(ws, dst, hist); err != nil {
			t.Fatal(err)
		}
		assertClose(t, "fold-in of a short history", dst, exactFold(t, o, hist))
	}
	if ws.base.owner != o {
		t.Fatal("short histories were not folded in by rank-one updates of the base factor")
	}
}

// The cached base factor must follow every change of the item table: a
// fold-in after an item update, an item start or a Gram refresh equals
// the whole factorisation against the new table.
func TestLowRankFoldInFollowsItemChanges(t *testing.T) {
	const k = 16
	o, err := NewOnline(randomModel(500, k, 4), nil)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 8))
	ws := NewWorkspace(k)
	dst := make([]float32, k)
	hist := randomHistory(rng, 500, 1)
	fold := func(what string) {
		t.Helper()
		if err := o.FoldUser(ws, dst, hist); err != nil {
			t.Fatal(err)
		}
		assertClose(t, what, dst, exactFold(t, o, hist))
	}
	fold("first fold-in")
	user := make([]float32, k)
	for f := range user {
		user[f] = 3 * float32(rng.NormFloat64())
	}
	for range 20 {
		up := Update{User: user, Items: []ItemDelta{{Item: int32(rng.IntN(500)), DeltaWeight: 5, New: true}}}
		if err := o.Apply(NewWorkspace(k), []Update{up}); err != nil {
			t.Fatal(err)
		}
	}
	fold("after item updates")
	o.p.InitScale = 3 // a start large enough to move YᵀY visibly
	if !o.InitItem(600, 1) {
		t.Fatal("row 600 was not started")
	}
	fold("after an item start")
	o.wmu.Lock()
	for f := range k { // drift the table behind the cached YᵀY's back
		o.items.Row(int(hist[0].Item))[f] += 1
	}
	o.refreshGram()
	o.wmu.Unlock()
	fold("after a Gram refresh")
	row := o.items.Row(3)
	st := ItemRowState{Row: 3, Factors: make([]float32, k)}
	for f := range st.Factors {
		st.Factors[f] = row[f] + 2
	}
	if err := o.setItems([]ItemRowState{st}, false); err != nil {
		t.Fatal(err)
	}
	fold("after a peer's item state")
}

// A factor of the base cached for one model is never used for another.
func TestLowRankFoldInPerModel(t *testing.T) {
	const k = 16
	a, _ := NewOnline(randomModel(300, k, 1), nil)
	b, _ := NewOnline(randomModel(300, k, 2), nil)
	ws := NewWorkspace(k)
	dst := make([]float32, k)
	hist := []ItemWeight{{Item: 7, Weight: 1}}
	for _, o := range []*Online{a, b, a} {
		if err := o.FoldUser(ws, dst, hist); err != nil {
			t.Fatal(err)
		}
		assertClose(t, "fold-in after switching models", dst, exactFold(t, o, hist))
	}
}

// BenchmarkFoldInPaths times both exact fold-in paths on short histories
// (where lowRankMaxItems puts the crossover).
func BenchmarkFoldInPaths(b *testing.B) {
	for _, k := range []int{32, 64, 128} {
		o, _ := NewOnline(randomModel(10_000, k, 1), nil)
		rng := rand.New(rand.NewPCG(1, 2))
		for _, n := range []int{1, 2, 4, 8, 12, 16} {
			hist := randomHistory(rng, 10_000, n)
			ws := NewWorkspace(k)
			cols, w := ws.split(hist)
			dst := make([]float32, k)
			b.Run(fmt.Sprintf("k=%d/hist=%d/rank-one", k, n), func(b *testing.B) {
				for b.Loop() {
					if err := ws.solveLowRank(dst, o, cols, w); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run(fmt.Sprintf("k=%d/hist=%d/whole", k, n), func(b *testing.B) {
				for b.Loop() {
					if err := ws.solveExact(dst, o.gram, o.p.Lambda, o.items, cols, w, o.p.Alpha); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
