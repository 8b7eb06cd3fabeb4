package eval

import (
	"context"
	"testing"

	"github.com/kairoshq/kairos/model"
)

// foldOf returns the confirming split of c's planted log: each user's
// next held-out interaction after the validation one (Holdout.Fold).
func foldOf(t *testing.T, c SparseConfig) Split {
	t.Helper()
	recs, err := Sparse(c)
	if err != nil {
		t.Fatal(err)
	}
	d := Build(recs, WeightOne)
	h, err := NewHoldout(HoldoutLatest)
	if err != nil {
		t.Fatal(err)
	}
	test := h.Split(len(d.Users), len(d.Items), d.Interactions)
	return h.Fold(test, h.Validation(test))
}

func TestConfirmBlendRefusesABlendThatLosesToPopularity(t *testing.T) {
	ctx := context.Background()
	p := model.DefaultParams()
	p.Threads = 2
	g := DefaultBlendGrid()
	heavy := g.PopularityHeavy()
	if heavy.Prior != 0.99 || heavy.Kappa != 128 || heavy.Neighbours != 0 {
		t.Fatalf("popularity-heavy blend %+v, want ρ 0.99, κ 128, no neighbours", heavy)
	}
	// On the planted popularity-heavy log plain ALS (ρ = κ = 0) loses to
	// popularity: the confirmation must hand back the popularity-heavy
	// blend.
	fold := foldOf(t, smallSparse())
	plain := model.Blend{Trending: model.DefaultBlend().Trending}
	b, c, err := ConfirmBlend(ctx, fold, trainALS(t, fold, p), plain, heavy, 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	if c == nil || c.Kept || b != heavy || !(c.T < -2) || c.Users < 1000 || !(c.NDCG10 < c.PopularityNDCG10) {
		t.Fatalf("plain ALS on a popularity-heavy log: blend %+v, confirmation %+v; want the popularity-heavy blend, t < -2", b, c)
	}
	// Where tastes drive most draws the personal part wins clearly and
	// stands.
	tasteful := smallSparse()
	tasteful.Taste, tasteful.Zipf = 0.9, 0.3
	fold = foldOf(t, tasteful)
	personal := model.Blend{Kappa: 2, Trending: model.DefaultBlend().Trending, Prior: 0.1}
	mod := trainALS(t, fold, p)
	b, c, err = ConfirmBlend(ctx, fold, mod, personal, heavy, 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	if c == nil || !c.Kept || b != personal || !(c.T > 2) {
		t.Fatalf("on a taste-driven log: blend %+v, confirmation %+v; want it kept, t > 2", b, c)
	}
	// Bounded, it ranks an even spread of that many users.
	if _, c, err := ConfirmBlend(ctx, fold, mod, personal, heavy, 2, 100); err != nil || c.Users != 100 {
		t.Fatalf("confirmation on at most 100 users: %+v, %v", c, err)
	}
}

// TestSkipConfirmationOnAClearValidationWin: FitBlend's pick carries its
// paired comparison with the grid's popularity-heavy blend on the users it
// was fitted on, and SkipConfirmation spares the confirming split only
// when that t reaches ConfirmSkipT: on a taste-driven log (t far above
// it), not on a popularity-heavy one.
func TestSkipConfirmationOnAClearValidationWin(t *testing.T) {
	ctx := context.Background()
	p := model.DefaultParams()
	p.Threads = 2
	g := DefaultBlendGrid()
	heavy := g.PopularityHeavy()
	for _, tc := range []struct {
		name string
		c    SparseConfig
		skip bool
	}{
		{"popularity-heavy", smallSparse(), false},
		{"taste-driven", func() SparseConfig { c := smallSparse(); c.Taste, c.Zipf = 0.9, 0.3; return c }(), true},
	} {
		_, val := sparseSplits(t, tc.c)
		best, trials, err := FitBlend(ctx, val, trainALS(t, val, p), g, 2)
		if err != nil {
			t.Fatal(err)
		}
		var heavyTrial BlendTrial
		for _, tr := range trials {
			if tr.Blend == heavy {
				heavyTrial = tr
			}
		}
		vs := best.VsPopularityHeavy
		if best.PopularityHeavyNDCG10 != heavyTrial.NDCG10 || vs.Users != best.Users || (best.Blend == heavy) != (vs.T == 0 && vs.NDCGDiff == 0) {
			t.Fatalf("%s: pick %+v (heavy NDCG@10 %v, vs %+v); the popularity-heavy trial %+v", tc.name, best.Blend, best.PopularityHeavyNDCG10, vs, heavyTrial)
		}
		c := SkipConfirmation(best)
		if (c != nil) != tc.skip || (vs.T >= ConfirmSkipT) != tc.skip {
			t.Fatalf("%s: pick %+v at validation t %.2f, skip %+v; want skipped %v", tc.name, best.Blend, vs.T, c, tc.skip)
		}
		if c != nil && (!c.Kept || !c.Skipped || c.T != vs.T || c.NDCG10 != best.NDCG10 || c.PopularityNDCG10 != heavyTrial.NDCG10 || c.Users != vs.Users) {
			t.Fatalf("%s: skip report %+v does not carry the validation figures (pick %+v, vs %+v)", tc.name, c, best.Metrics, vs)
		}
		t.Logf("%s: pick %+v, validation t %.2f, skipped %v", tc.name, best.Blend, vs.T, c != nil)
	}
}

// TestCompareTunedKeepsOnlyAPickNotWorseThanTheReference: on a split
// neither model chose on, a pick with crippled hyperparameters (1 factor,
// λ 1000) loses to the shipped ones and gives way to them; the other way
// round it stands, and so does a pick equal to the reference.
func TestCompareTunedKeepsOnlyAPickNotWorseThanTheReference(t *testing.T) {
	ctx := context.Background()
	c := smallSparse()
	c.Taste = 0.7 // tastes to learn: the shipped model is far ahead of a crippled one
	fold := foldOf(t, c)
	good := model.DefaultParams()
	good.Threads = 2
	bad := good
	bad.Factors, bad.Lambda = 1, 1000
	plain := model.Blend{Trending: model.DefaultBlend().Trending}
	worse, err := CompareTuned(ctx, fold, bad, plain, good, plain, 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	if worse.Kept || !(worse.T < TunedWorseT) || !(worse.NDCG10 < worse.ReferenceNDCG10) || worse.Users == 0 {
		t.Fatalf("crippled pick against the shipped parameters: %+v, want refused (t < %g)", worse, TunedWorseT)
	}
	better, err := CompareTuned(ctx, fold, good, plain, bad, plain, 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !better.Kept || better.T < 2 {
		t.Fatalf("shipped pick against crippled reference: %+v, want kept with t > 2", better)
	}
	same, err := CompareTuned(ctx, fold, good, plain, good, plain, 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !same.Kept || same.NDCG10 != same.ReferenceNDCG10 {
		t.Fatalf("pick equal to the reference: %+v, want kept, equal figures", same)
	}
}
