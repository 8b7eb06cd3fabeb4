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
