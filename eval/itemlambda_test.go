package eval

import (
	"context"
	"errors"
	"testing"

	"github.com/kairoshq/kairos/model"
)

// TestFitItemLambdaExponentNeedsClearEvidence feeds the fit a trained
// model for one ν and an untrained one for the other: it picks whichever
// ranks better on validation, and keeps plain λ on a tie.
func TestFitItemLambdaExponentNeedsClearEvidence(t *testing.T) {
	_, val := sparseSplits(t, smallSparse())
	p := model.DefaultParams()
	p.Factors, p.Threads = 16, 2
	good := trainALS(t, val, p)
	bad := trainALS(t, val, func() model.Params { q := p; q.Iterations = 0; return q }())
	for _, tc := range []struct {
		name      string
		goodNu    float64 // the ν whose training gives the good model (-1: both get it)
		wantNu    float64
		wantClear bool
	}{
		{"scaled is better", FittedItemLambdaExponent, FittedItemLambdaExponent, true},
		{"plain is better", 0, 0, false},
		{"tie", -1, 0, false},
	} {
		var trained []float64
		fit, err := FitItemLambdaExponent(context.Background(), val, p, CoarseBlendGrid(), 2, func(q model.Params) (*model.Model, error) {
			trained = append(trained, q.ItemLambdaExponent)
			if tc.goodNu < 0 || q.ItemLambdaExponent == tc.goodNu {
				return good, nil
			}
			return bad, nil
		})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if len(trained) != 2 || trained[0] != 0 || trained[1] != FittedItemLambdaExponent {
			t.Fatalf("%s: trained ν %v, want 0 then %v", tc.name, trained, FittedItemLambdaExponent)
		}
		if fit.Exponent != tc.wantNu || fit.Params.ItemLambdaExponent != tc.wantNu || (fit.T >= FallbackMinT) != tc.wantClear {
			t.Fatalf("%s: picked ν %v (params %v) with t = %.2f; want ν %v", tc.name, fit.Exponent, fit.Params.ItemLambdaExponent, fit.T, tc.wantNu)
		}
		want := fit.Plain
		if tc.wantNu != 0 {
			want = fit.Scaled
		}
		if fit.Pick.NDCG10 != want || fit.Users == 0 {
			t.Fatalf("%s: pick's validation NDCG@10 %.4f, want %.4f, over %d users", tc.name, fit.Pick.NDCG10, want, fit.Users)
		}
		t.Logf("%s: %s", tc.name, fit)
	}
	_, err := FitItemLambdaExponent(context.Background(), val, p, CoarseBlendGrid(), 2, func(model.Params) (*model.Model, error) {
		return nil, errors.New("disk full")
	})
	if err == nil {
		t.Fatal("a failed training was not reported")
	}
}

// TestFittedExponentLiftsSparseRanking trains for real on a planted sparse
// log: the fit picks ν = 1 on validation, and on the test split the
// fitted ranking beats the same defaults with plain λ (both without item
// neighbours, which this small log's fit also takes).
func TestFittedExponentLiftsSparseRanking(t *testing.T) {
	test, val := sparseSplits(t, SparseConfig{Users: 2000, Items: 3000, Clusters: 20, PerUser: 12, Zipf: 0.8, Taste: 0.4, Seed: 2})
	p := model.DefaultParams()
	p.Threads = 2
	grid := DefaultBlendGrid()
	grid.Neighbours = nil
	fitted, fit, err := OfflineFitted(context.Background(), test, val, p, grid, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := OfflineBlended(context.Background(), test, val, p, grid, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s; test NDCG@10 %.4f fitted, %.4f plain", fit, fitted.NDCG10, plain.NDCG10)
	if fit.Exponent != FittedItemLambdaExponent || fitted.ItemLambdaFit == nil || fitted.Params.(model.Params).ItemLambdaExponent != FittedItemLambdaExponent {
		t.Fatalf("fit %s, result params %+v", fit, fitted.Params)
	}
	if cmp := ComparePaired(fitted.Ranks, plain.Ranks); !(cmp.NDCGDiff > 0) {
		t.Fatalf("fitted ν ranks test no better than plain λ: %+v", cmp)
	}
}
