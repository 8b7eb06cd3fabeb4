package model

import (
	"math"
	"testing"
)

// TestItemLambdaExponentSolvesEachItemWithItsOwnLambda trains with ν = 1
// and checks that every item row, solved last, is the exact minimiser for
// λ·(n_i/n̄): popular items are regularised more than the plain λ, rare
// ones less.
func TestItemLambdaExponentSolvesEachItemWithItsOwnLambda(t *testing.T) {
	m, _, _ := planted(t, 3, 40, 20, 8, 17)
	p := testParams(8)
	p.Solver = SolverCholesky
	p.Lambda = 5
	p.ItemLambdaExponent = 1
	mod := mustTrain(t, m, p)
	mean := float64(m.NNZ()) / float64(m.Items())
	popular, rare := 0, 0
	for i := range m.Items() {
		users, w := m.ItemColumn(i)
		if len(users) == 0 {
			continue
		}
		col := make([]ItemWeight, len(users))
		for j, u := range users {
			col[j] = ItemWeight{Item: u, Weight: w[j]}
		}
		own := p
		own.Lambda = p.Lambda * float64(len(users)) / mean
		if e := relErr(mod.Items.Row(i), exactUserSolution(t, mod.Users, col, own)); e > 1e-4 {
			t.Fatalf("item %d (%d users, mean %.1f): differs from the exact solution for λ %.2f by %.3g", i, len(users), mean, own.Lambda, e)
		}
		switch ratio := float64(len(users)) / mean; {
		case ratio > 2:
			popular++
		case ratio < 0.5:
			rare++
		default:
			continue
		}
		if e := relErr(mod.Items.Row(i), exactUserSolution(t, mod.Users, col, p)); e < 1e-3 {
			t.Fatalf("item %d (%d users, mean %.1f) is also the solution for the plain λ (%.3g): ν had no effect", i, len(users), mean, e)
		}
	}
	if popular == 0 || rare == 0 {
		t.Fatalf("planted data has %d popular and %d rare items: nothing was checked", popular, rare)
	}
}

// TestItemUpdateRegularisedByPopularity checks that the live item update
// uses the item's own λ: with ν = 1 a popular item moves less, a rare one
// more, than with the plain λ for the same event.
func TestItemUpdateRegularisedByPopularity(t *testing.T) {
	m, _, _ := planted(t, 2, 40, 20, 6, 21)
	p := testParams(4) // k = 4: the item update's 4 CG steps solve exactly
	p.Lambda = 20
	mod := mustTrain(t, m, p)
	st := ItemStatsFromMatrix(mod, m)
	popular, rare := 0, -1
	for i, c := range st.Counts {
		if c > st.Counts[popular] {
			popular = i
		}
		if c > 0 && (rare < 0 || c < st.Counts[rare]) {
			rare = i
		}
	}
	step := func(nu float64, item int, grow int) float64 {
		q := mod.Params
		q.ItemLambdaExponent = nu
		o := mustOnline(t, &Model{Params: q, Users: mod.Users, Items: mod.Items}, st)
		o.Grow(o.Len() + grow) // catalog rows without users
		before := o.ItemFactors(nil, item)
		up := Update{OldUser: mod.Users.Row(0), User: mod.Users.Row(0), Items: []ItemDelta{{Item: int32(item), DeltaWeight: 3}}}
		if err := o.Apply(NewWorkspace(p.Factors), []Update{up}); err != nil {
			t.Fatal(err)
		}
		var d float64
		for f, v := range o.ItemFactors(nil, item) {
			d += float64(v-before[f]) * float64(v-before[f])
		}
		return math.Sqrt(d)
	}
	t.Logf("popular item %d (%d users), rare item %d (%d users)", popular, st.Counts[popular], rare, st.Counts[rare])
	if plain, scaled := step(0, popular, 0), step(1, popular, 0); !(scaled < plain) {
		t.Errorf("popular item moved %.4g with ν = 1, %.4g with plain λ: want less", scaled, plain)
	}
	if plain, scaled := step(0, rare, 0), step(1, rare, 0); !(scaled > plain) {
		t.Errorf("rare item moved %.4g with ν = 1, %.4g with plain λ: want more", scaled, plain)
	}
	// Rows nobody used (a large catalog) do not change the mean.
	if alone, padded := step(1, popular, 10_000), step(1, popular, 0); alone != padded {
		t.Errorf("popular item moved %.6g with 10,000 unused rows, %.6g without", alone, padded)
	}
}

func TestItemLambdaExponentValidated(t *testing.T) {
	for _, nu := range []float64{-0.5, MaxItemLambdaExponent + 0.5, math.NaN(), math.Inf(1)} {
		p := DefaultParams()
		p.ItemLambdaExponent = nu
		if err := p.Validate(); err == nil {
			t.Errorf("ν = %v accepted", nu)
		}
	}
	p := DefaultParams()
	p.ItemLambdaExponent = 1
	if err := p.Validate(); err != nil {
		t.Errorf("ν = 1 refused: %v", err)
	}
}
