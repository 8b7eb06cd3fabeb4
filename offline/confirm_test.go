package offline

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/kairoshq/kairos/eval"
	"github.com/kairoshq/kairos/model"
	"github.com/kairoshq/kairos/signals"
)

// sparseArchive archives eval.Sparse's planted log of c, one view per
// record, a minute per step of a visitor's draws.
func sparseArchive(t *testing.T, c eval.SparseConfig) RecordSource {
	t.Helper()
	recs, err := eval.Sparse(c)
	if err != nil {
		t.Fatal(err)
	}
	a := openArchive(t)
	batch := make([]signals.Event, 0, len(recs))
	for j, r := range recs {
		batch = append(batch, signals.Event{ID: "s" + strconv.Itoa(j), Type: signals.TypeView, Visitor: "v" + r.User, Item: "i" + r.Item,
			Time: signals.Timestamp{Time: t0.Add(time.Duration(r.Time) * time.Minute)}})
	}
	if err := a.Append(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	return a
}

// TestRetrainConfirmsItsBlendOnTheNextEvents: a retrain checks its fitted
// blend on each visitor's next event before the tail and ranks with the
// popularity-heavy blend when the fitted one loses there — here plain ALS
// on a popularity-only log — and keeps one that wins (a taste-driven
// log). A pick that beat the popularity-heavy blend on validation by
// eval.ConfirmSkipT stands without the check, even where the check would
// refuse it.
func TestRetrainConfirmsItsBlendOnTheNextEvents(t *testing.T) {
	ctx := context.Background()
	heavy := eval.DefaultBlendGrid().PopularityHeavy()
	for _, tc := range []struct {
		name  string
		taste float64
		blend model.Blend
		kept  bool
		valT  float64 // the pick's validation t against the popularity-heavy blend
	}{
		{"popularity only, plain ALS", 0, model.Blend{Trending: model.DefaultBlend().Trending}, false, 0},
		{"taste-driven, a light prior", 0.9, model.Blend{Kappa: 2, Trending: model.DefaultBlend().Trending, Prior: 0.1}, true, 0},
		{"popularity only, plain ALS far ahead on validation", 0, model.Blend{Trending: model.DefaultBlend().Trending}, true, eval.ConfirmSkipT},
	} {
		c := eval.SparseConfig{Users: 1500, Items: 1500, Clusters: 10, PerUser: 12, Zipf: 0.8, Taste: tc.taste, Seed: 4}
		if tc.kept {
			c.Zipf = 0.3
		}
		cfg := testConfig()
		cfg.Params.Factors = 16
		r, d, err := readArchive(ctx, sparseArchive(t, c), nil, cfg.withDefaults(), newProgress(nil))
		if err != nil {
			t.Fatal(err)
		}
		held, _ := d.validation()
		r.Params, r.Blend = cfg.Params, tc.blend
		pick := eval.BlendTrial{Blend: tc.blend, Metrics: eval.Metrics{NDCG10: 0.2}, PopularityHeavyNDCG10: 0.1,
			VsPopularityHeavy: eval.Paired{Users: 1200, T: tc.valT}}
		if err := d.confirm(ctx, r, held, pick, heavy, newProgress(nil)); err != nil {
			t.Fatal(err)
		}
		c2 := r.BlendConfirm
		want := tc.blend
		if !tc.kept {
			want = heavy
		}
		if c2 == nil || c2.Kept != tc.kept || r.Blend != want || c2.Users < 1000 || (c2.T < 0) == tc.kept {
			t.Fatalf("%s: blend %+v, confirmation %+v; want kept %v, blend %+v", tc.name, r.Blend, c2, tc.kept, want)
		}
		if skipped := tc.valT >= eval.ConfirmSkipT; c2.Skipped != skipped || (skipped && (c2.T != tc.valT || c2.Users != 1200 || c2.PopularityNDCG10 != 0.1)) {
			t.Fatalf("%s: confirmation %+v; want skipped %v with the validation figures", tc.name, c2, skipped)
		}
		t.Logf("%s: %+v", tc.name, *c2)
	}
}
