package eval

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

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
	fitted, defaults, err := OfflineFitted(context.Background(), test, val, nil, p, DefaultsChoice{ItemLambdaExponent: true}, grid, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := OfflineBlended(context.Background(), test, val, nil, p, grid, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	fit := *defaults.Exponent
	t.Logf("%s; test NDCG@10 %.4f fitted, %.4f plain", fit, fitted.NDCG10, plain.NDCG10)
	if fit.Exponent != FittedItemLambdaExponent || fitted.ItemLambdaFit == nil || fitted.Params.(model.Params).ItemLambdaExponent != FittedItemLambdaExponent {
		t.Fatalf("fit %s, result params %+v", fit, fitted.Params)
	}
	if cmp := ComparePaired(fitted.Ranks, plain.Ranks); !(cmp.NDCGDiff > 0) {
		t.Fatalf("fitted ν ranks test no better than plain λ: %+v", cmp)
	}
}

// TestFitDefaultsDropsAHidingDecay: on items seen in groups, ten minutes
// apart, a one-minute half-life leaves the model little of a user's
// earlier items; the fit measures a long half-life (a week) or no decay
// as better on validation and takes it, and test ranks better for it.
func TestFitDefaultsDropsAHidingDecay(t *testing.T) {
	test, val := groupsSplits(t, 300, 5)
	p := model.DefaultParams()
	p.Threads = 2
	grid := DefaultBlendGrid()
	grid.Neighbours = nil // the neighbours ignore the decay
	const unit = 10 * time.Minute
	fitted, fit, err := OfflineFitted(context.Background(), test, val, nil, p, DefaultsChoice{HalfLife: true}, grid, unit, 2)
	if err != nil {
		t.Fatal(err)
	}
	decayed, err := OfflineBlended(context.Background(), test, val, nil, p, grid, unit, 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s; test NDCG@10 %.4f fitted, %.4f with the decay", fit.HalfLife, fitted.NDCG10, decayed.NDCG10)
	hl := fit.Params.HalfLife
	if fit.HalfLife == nil || hl != 0 && hl < 24*time.Hour || fitted.HalfLifeFit == nil || fitted.HalfLifeFit.HalfLife != hl.String() ||
		len(fit.HalfLife.Alternatives) != len(FittedHalfLives) || fit.Exponent != nil {
		t.Fatalf("fit %v (half-life %v): want no decay or one of a day or more chosen, %d alternatives tried (and ν not tried)", fit.HalfLife, hl, len(FittedHalfLives))
	}
	if cmp := ComparePaired(fitted.Ranks, decayed.Ranks); !(cmp.T > 2) {
		t.Fatalf("no decay ranks test no better: %+v", cmp)
	}
}

// TestFitDefaultsKeepsTheDecayWithoutEvidence: when every time is the
// same the decay changes nothing, the two models tie, and the shipped
// half-life stays; each configuration is trained once.
func TestFitDefaultsKeepsTheDecayWithoutEvidence(t *testing.T) {
	_, val := sparseSplits(t, SparseConfig{Users: 300, Items: 400, Clusters: 5, PerUser: 8, Zipf: 0.8, Taste: 0.5, Seed: 4})
	for j := range val.Train {
		val.Train[j].Time = 0
	}
	p := model.DefaultParams()
	p.Factors, p.Threads = 8, 2
	trained := map[model.Params]int{}
	fit, err := FitDefaults(context.Background(), val, p, DefaultsChoice{HalfLife: true, ItemLambdaExponent: true}, CoarseBlendGrid(), 2, func(q model.Params) (*model.Model, error) {
		trained[q]++
		return trainALS(t, val, q), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if fit.HalfLife == nil || fit.HalfLife.T != 0 || fit.Params.HalfLife != p.HalfLife || fit.HalfLife.HalfLife != p.HalfLife.String() {
		t.Fatalf("half-life fit %+v, params %+v: want a tie and the shipped half-life kept", fit.HalfLife, fit.Params)
	}
	if want := 2 + len(FittedHalfLives); len(trained) != want {
		t.Fatalf("trained %v: want %d configurations (the shipped half-life, each fitted one, scaled ν), each once", trained, want)
	}
	for q, n := range trained {
		if n != 1 {
			t.Fatalf("%+v trained %d times", q, n)
		}
	}
}

// TestFitDefaultsBoundsItsUsers: FitDefaults ranks at most MaxUsers
// validation users, spread over them, for every configuration it tries.
func TestFitDefaultsBoundsItsUsers(t *testing.T) {
	_, val := sparseSplits(t, SparseConfig{Users: 300, Items: 400, Clusters: 5, PerUser: 8, Zipf: 0.8, Taste: 0.5, Seed: 4})
	p := model.DefaultParams()
	p.Factors, p.Threads = 8, 2
	train := func(q model.Params) (*model.Model, error) { return trainALS(t, val, q), nil }
	all, err := FitDefaults(context.Background(), val, p, DefaultsChoice{HalfLife: true, MaxUsers: -1}, CoarseBlendGrid(), 2, train)
	if err != nil {
		t.Fatal(err)
	}
	some, err := FitDefaults(context.Background(), val, p, DefaultsChoice{HalfLife: true, MaxUsers: 100}, CoarseBlendGrid(), 2, train)
	if err != nil {
		t.Fatal(err)
	}
	if all.Pick.Users <= 100 || some.Pick.Users != 100 || some.HalfLife.Users != 100 || len(some.Pick.Ranks) != 100 {
		t.Fatalf("users ranked: %d with no bound, %d (half-life fit %d, ranks %d) with 100", all.Pick.Users, some.Pick.Users, some.HalfLife.Users, len(some.Pick.Ranks))
	}
}

// TestFitDefaultsChoosesAlpha: when the configured α's model is spoilt
// (its visitors' factors replaced by noise) and every other α's is
// trained honestly, the fit moves α to the better of half and double,
// then on the same way while each step wins;
// when α changes nothing (every α gives the same model) the configured
// one stays, each α trained once.
func TestFitDefaultsChoosesAlpha(t *testing.T) {
	_, val := sparseSplits(t, SparseConfig{Users: 600, Items: 400, Clusters: 5, PerUser: 8, Zipf: 0.8, Taste: 0.8, Seed: 4})
	p := model.DefaultParams()
	p.Factors, p.Threads = 8, 2
	spoilt := func(q model.Params) (*model.Model, error) {
		mod := trainALS(t, val, q)
		if q.Alpha == p.Alpha {
			rng := rand.New(rand.NewPCG(1, 2))
			for j := range mod.Users.Data {
				mod.Users.Data[j] = float32(rng.NormFloat64())
			}
		}
		return mod, nil
	}
	fit, err := FitDefaults(context.Background(), val, p, DefaultsChoice{Alpha: true}, CoarseBlendGrid(), 2, spoilt)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(fit.Alpha)
	if fit.Alpha == nil || len(fit.Alpha.Alternatives) < len(FittedAlphaFactors) || fit.Params.Alpha == p.Alpha ||
		fit.Alpha.Alpha != fit.Params.Alpha || fit.Alpha.T < FallbackMinT || fit.HalfLife != nil || fit.Exponent != nil {
		t.Fatalf("fit %+v, α %v: want another α than the spoilt %v, by t ≥ %v (and nothing else fitted)", fit.Alpha, fit.Params.Alpha, p.Alpha, FallbackMinT)
	}
	// It went on the way it first moved while each step won, at most
	// MaxAlphaSteps more, each α once: the last α tried lost (or the
	// steps ran out), the α before it is the pick.
	alts := fit.Alpha.Alternatives
	if steps := len(alts) - len(FittedAlphaFactors); steps > MaxAlphaSteps {
		t.Fatalf("%d further steps, at most %d", steps, MaxAlphaSteps)
	}
	seen := map[float64]bool{p.Alpha: true}
	for _, a := range alts {
		if seen[a.Alpha] {
			t.Fatalf("α %v tried twice: %+v", a.Alpha, alts)
		}
		seen[a.Alpha] = true
	}
	if last := alts[len(alts)-1]; last.Alpha == fit.Params.Alpha && len(alts)-len(FittedAlphaFactors) != MaxAlphaSteps {
		t.Fatalf("the last step (α %v) won, yet the fit stopped before its last step: %+v", last.Alpha, alts)
	}
	if len(alts) == len(FittedAlphaFactors) {
		t.Fatalf("no further step after the first won: %+v", alts)
	}
	trained := map[float64]int{}
	same := func(q model.Params) (*model.Model, error) {
		trained[q.Alpha]++
		q.Alpha = p.Alpha
		return trainALS(t, val, q), nil
	}
	if fit, err = FitDefaults(context.Background(), val, p, DefaultsChoice{Alpha: true}, CoarseBlendGrid(), 2, same); err != nil {
		t.Fatal(err)
	}
	if fit.Params.Alpha != p.Alpha || fit.Alpha.T != 0 || len(trained) != 1+len(FittedAlphaFactors) {
		t.Fatalf("fit %+v, α %v, trained %v: want a tie, the configured α kept, each α trained once", fit.Alpha, fit.Params.Alpha, trained)
	}
	for a, n := range trained {
		if n != 1 {
			t.Fatalf("α %v trained %d times", a, n)
		}
	}
}

// TestFitDefaultsFitsAlphaWithEitherExponent: when only ν =
// FittedItemLambdaExponent together with double α trains an honest
// model (every other configuration's visitors are noise), neither ν
// against 0 at the configured α nor α at ν = 0 finds it; the α fit, which
// pairs each α with either ν, does, and each configuration is trained
// once.
func TestFitDefaultsFitsAlphaWithEitherExponent(t *testing.T) {
	_, val := sparseSplits(t, SparseConfig{Users: 600, Items: 400, Clusters: 5, PerUser: 8, Zipf: 0.8, Taste: 0.8, Seed: 4})
	p := model.DefaultParams()
	p.Factors, p.Threads = 8, 2
	good := model.Params{Alpha: 2 * p.Alpha, ItemLambdaExponent: FittedItemLambdaExponent}
	trained := map[[2]float64]int{}
	onlyThePair := func(q model.Params) (*model.Model, error) {
		trained[[2]float64{q.Alpha, q.ItemLambdaExponent}]++
		mod := trainALS(t, val, q)
		if q.Alpha != good.Alpha || q.ItemLambdaExponent != good.ItemLambdaExponent {
			rng := rand.New(rand.NewPCG(1, 2))
			for j := range mod.Users.Data {
				mod.Users.Data[j] = float32(rng.NormFloat64())
			}
		}
		return mod, nil
	}
	fit, err := FitDefaults(context.Background(), val, p, DefaultsChoice{ItemLambdaExponent: true, Alpha: true}, CoarseBlendGrid(), 2, onlyThePair)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(fit.Exponent, fit.Alpha)
	if fit.Params.Alpha != good.Alpha || fit.Params.ItemLambdaExponent != good.ItemLambdaExponent {
		t.Fatalf("fitted α %v, ν %v; want the only honest pair α %v, ν %v", fit.Params.Alpha, fit.Params.ItemLambdaExponent, good.Alpha, good.ItemLambdaExponent)
	}
	if fit.Exponent == nil || fit.Exponent.Exponent != 0 {
		t.Fatalf("ν fit %+v: at the configured α it should have kept ν = 0", fit.Exponent)
	}
	// The pair's step is followed by one more (double again, either ν),
	// which loses.
	if a := fit.Alpha; a == nil || len(a.Alternatives) != 2*len(FittedAlphaFactors)+2 || a.ItemLambdaExponent == nil ||
		*a.ItemLambdaExponent != good.ItemLambdaExponent || a.T < FallbackMinT || !strings.Contains(a.String(), "with ν 1") {
		t.Fatalf("α fit %+v (%v): want both ν with each α, the pair chosen by t ≥ %v and reported", a, a, FallbackMinT)
	}
	if len(trained) != 2+2*len(FittedAlphaFactors)+2 {
		t.Fatalf("trained %v: want the configured pair, ν alone, each α with either ν, then double the pair's α with either ν", trained)
	}
	for c, n := range trained {
		if n != 1 {
			t.Fatalf("α %v, ν %v trained %d times", c[0], c[1], n)
		}
	}
}
