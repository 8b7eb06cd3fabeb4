package eval

import (
	"context"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kairoshq/kairos/model"
)

func searchSplits(t testing.TB) Split {
	t.Helper()
	c := smallSparse()
	c.Users, c.Items, c.Clusters = 300, 400, 6
	_, val := sparseSplits(t, c)
	return val
}

func smallSpace() Space {
	return Space{Factors: []int{4, 8}, Lambda: [2]float64{0.5, 50}, Alpha: [2]float64{1, 30}, HalfLife: []time.Duration{0, time.Hour}}
}

func TestSearchRunsHyperbandBrackets(t *testing.T) {
	val := searchSplits(t)
	start := model.DefaultParams()
	start.Factors, start.Lambda, start.Alpha, start.Threads = 8, 5, 10, 2
	base := start
	var seen []SearchTrial
	res, err := Search(context.Background(), val, SearchConfig{Space: smallSpace(), Base: base, Starts: []model.Params{start}, Seed: 3, MinIterations: 2,
		OnTrial: func(tr SearchTrial) { seen = append(seen, tr) }})
	if err != nil {
		t.Fatal(err)
	}
	// The warm start at its own 10 sweeps and continued to 18; then one
	// cycle with rungs 2, 6, 18 and η = 3: brackets of 9, 5 and 3
	// configurations, 9+3+1 + 5+1 + 3 evaluations; then the race of the
	// 5 best full-fidelity configurations other than the reference (the
	// warm start at 10 sweeps) and the reference: 5+1, then 3+1, then
	// 2+1 runs with other seeds.
	confirmations := 0
	for _, tr := range res.Trials {
		if tr.Confirm {
			confirmations++
		}
	}
	if res.Stopped != "complete" || res.Brackets != 3 || res.Configs != 18 || confirmations != 13 ||
		len(res.Trials) != 24+confirmations || len(seen) != len(res.Trials) || res.Confirmed != 4 {
		t.Fatalf("stopped %q after %d brackets, %d configurations, %d trials (%d seen, %d confirmations), confirmed %d; want complete, 3, 18, 24 + 13, 4",
			res.Stopped, res.Brackets, res.Configs, len(res.Trials), len(seen), confirmations, res.Confirmed)
	}
	first, second := res.Trials[0], res.Trials[1]
	if first.Params.Lambda != start.Lambda || first.Params.Alpha != start.Alpha || first.Params.Iterations != 10 || !first.Full ||
		second.Params.Lambda != start.Lambda || second.Params.Iterations != 18 || !second.Full {
		t.Fatalf("first trials %+v, %+v; want the warm start at 10 and 18 sweeps, full fidelity", first.Params, second.Params)
	}
	if res.Reference == nil || res.Reference.Params != first.Params {
		t.Fatalf("reference %+v, want the warm start equal to the base at its sweeps", res.Reference)
	}
	// The synthetic data has distinct times per user: half-lives vary.
	for _, tr := range res.Trials {
		if !slices.Contains([]int{2, 6, 10, 18}, tr.Params.Iterations) || !slices.Contains([]int{4, 8}, tr.Params.Factors) {
			t.Fatalf("trial outside the rungs or the space: %+v", tr.Params)
		}
		if tr.Full != (tr.Params.Iterations >= 10) {
			t.Fatalf("trial %+v marked full %v", tr.Params, tr.Full)
		}
		if tr.Users == 0 {
			t.Fatalf("trial scored on no user: %+v", tr)
		}
	}
	if !res.Best.Full || res.Best.Confirm {
		t.Fatalf("pick %+v is not a full-fidelity trial", res.Best)
	}
	if res.KeptReference {
		if res.VsReference == nil || res.VsReference.NDCGDiff > 0 || res.Best.Params != first.Params {
			t.Fatalf("reference kept with %+v, pick %+v", res.VsReference, res.Best.Params)
		}
		return
	}
	if res.VsReference != nil && res.VsReference.NDCGDiff <= 0 {
		t.Fatalf("pick does not beat the reference on validation (%+v) and replaced it", res.VsReference)
	}
	// The pick is the configuration with the best mean over its 4 seeds
	// (the last two racers and the reference have 4).
	means := map[model.Params][]float64{}
	for _, tr := range res.Trials {
		if tr.Full {
			means[configKey(tr.Params)] = append(means[configKey(tr.Params)], tr.NDCG10)
		}
	}
	best := configKey(res.Best.Params)
	mean := func(v []float64) float64 {
		var s float64
		for _, x := range v {
			s += x
		}
		return s / float64(len(v))
	}
	if len(means[best]) != 4 || math.Abs(mean(means[best])-res.MeanNDCG10) > 1e-6 {
		t.Fatalf("pick %+v (%d runs, mean %.4f), reported mean %.4f", res.Best.Params, len(means[best]), mean(means[best]), res.MeanNDCG10)
	}
	for p, v := range means {
		if len(v) == 4 && mean(v) > res.MeanNDCG10+1e-6 {
			t.Fatalf("configuration %+v has a better mean %.4f than the pick's %.4f", p, mean(v), res.MeanNDCG10)
		}
	}
}

func TestSearchKeepsTheReferenceUnlessClearlyBeaten(t *testing.T) {
	// Strong tastes: the model's part matters and configurations differ.
	c := smallSparse()
	c.Users, c.Items, c.Clusters, c.Taste, c.PerUser = 300, 400, 6, 0.9, 20
	_, val := sparseSplits(t, c)
	base := model.DefaultParams()
	base.Factors, base.Lambda, base.Alpha, base.Iterations, base.Threads = 4, 50, 1, 4, 2 // a weak reference
	prev := base
	prev.Factors, prev.Lambda, prev.Alpha = 8, 5, 10
	run := func(minT float64) SearchResult {
		res, err := Search(context.Background(), val, SearchConfig{Space: smallSpace(), Base: base, Starts: []model.Params{prev},
			MinIterations: 2, MaxIterations: 6, Confirm: 1, MinT: minT, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	// The previous pick first, then the base (the reference), each at its
	// own sweeps and at 6.
	res := run(-1)
	var order []model.Params
	for _, tr := range res.Trials[:4] {
		order = append(order, tr.Params)
	}
	if order[0].Lambda != prev.Lambda || order[0].Iterations != 4 || order[1].Iterations != 6 || order[2] != res.Reference.Params ||
		order[2].Lambda != base.Lambda || order[2].Iterations != 4 || order[3].Iterations != 6 {
		t.Fatalf("first trials %+v; want the previous pick then the base, at 4 and 6 sweeps", order)
	}
	if res.KeptReference || configKey(res.Best.Params) == configKey(res.Reference.Params) {
		t.Fatalf("with MinT < 0 the best (%+v, %.4f) is the pick, not the reference (%.4f)", res.Best.Params, res.Best.NDCG10, res.Reference.NDCG10)
	}
	// A paired t no pick can reach keeps the reference.
	res = run(1e9)
	if !res.KeptReference || res.Best.Params != res.Reference.Params || res.VsReference == nil || res.VsReference.T >= 1e9 {
		t.Fatalf("with MinT 1e9 the pick is %+v (kept %v, %+v); want the reference %+v", res.Best.Params, res.KeptReference, res.VsReference, res.Reference.Params)
	}
}

func TestSearchStopsAtTheBudget(t *testing.T) {
	val := searchSplits(t)
	base := model.DefaultParams()
	base.Factors, base.Threads = 4, 1
	// A clock that advances one second per reading: the budget is spent
	// after a known number of readings, whatever the machine's speed.
	now := time.Unix(0, 0)
	clock := func() time.Time { now = now.Add(time.Second); return now }
	res, err := Search(context.Background(), val, SearchConfig{Space: smallSpace(), Base: base, Budget: 40 * time.Second, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stopped != "budget" || len(res.Trials) == 0 {
		t.Fatalf("stopped %q with %d trials; want budget and some", res.Stopped, len(res.Trials))
	}
	if last := res.Trials[len(res.Trials)-1]; last.ElapsedS > 40 {
		t.Fatalf("a trial ended at %.0f s, after the 40 s budget", last.ElapsedS)
	}
}

// TestSearchScoresTheUsersTheFitDoes: by default a search scores as many
// validation users as the defaults' fit (DefaultFitUsers), not a 3,000
// sample of them, and MaxUsers still bounds them.
func TestSearchScoresTheUsersTheFitDoes(t *testing.T) {
	c := smallSparse()
	c.Users, c.Items, c.Clusters = 3500, 300, 6
	_, val := sparseSplits(t, c)
	held := len(heldUsers(val, 0))
	if held <= 3000 || held > DefaultFitUsers {
		t.Fatalf("%d validation users: the test needs more than 3,000 and at most %d", held, DefaultFitUsers)
	}
	base := model.DefaultParams()
	base.Factors, base.Iterations, base.Threads = 4, 6, 2
	for _, tc := range []struct{ maxUsers, want int }{{0, held}, {1000, 1000}} {
		now := time.Unix(0, 0)
		clock := func() time.Time { now = now.Add(time.Second); return now }
		res, err := Search(context.Background(), val, SearchConfig{Space: smallSpace(), Base: base, Budget: 20 * time.Second, Now: clock, MaxUsers: tc.maxUsers})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Trials) == 0 {
			t.Fatalf("MaxUsers %d: no trial", tc.maxUsers)
		}
		for _, tr := range res.Trials {
			if tr.Users != tc.want {
				t.Fatalf("MaxUsers %d: a trial scored %d users, want %d", tc.maxUsers, tr.Users, tc.want)
			}
		}
	}
}

func TestSearchIgnoresHalfLifeWithoutTimes(t *testing.T) {
	val := searchSplits(t)
	for j := range val.Train {
		val.Train[j].Time = 0
	}
	base := model.DefaultParams()
	base.Factors, base.Threads = 4, 1
	res, err := Search(context.Background(), val, SearchConfig{Space: smallSpace(), Base: base, MaxIterations: 6})
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range res.Trials {
		if tr.Params.HalfLife != 0 {
			t.Fatalf("half-life %s searched on data without times", tr.Params.HalfLife)
		}
	}
}

func TestSearchDrawsItemLambdaExponentFromItsChoices(t *testing.T) {
	val := searchSplits(t)
	base := model.DefaultParams()
	base.Factors, base.Threads = 4, 1
	space := smallSpace()
	space.ItemLambdaExponent = []float64{0, 0.5, 1}
	start := base
	start.ItemLambdaExponent = 0.7 // not a choice: moved into the space
	res, err := Search(context.Background(), val, SearchConfig{Space: space, Base: base, Starts: []model.Params{start}, MaxIterations: 6, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	// The start (moved to ν = 0: the base) is tried, and so is the base
	// with the defaults' other ν.
	if !slices.ContainsFunc(res.Trials, func(tr SearchTrial) bool {
		p := tr.Params
		return p.ItemLambdaExponent == FittedItemLambdaExponent && p.Lambda == base.Lambda && p.Alpha == base.Alpha && p.Factors == base.Factors
	}) {
		t.Fatalf("the base with ν = %v was not tried", FittedItemLambdaExponent)
	}
	seen := map[float64]int{}
	for _, tr := range res.Trials {
		if !slices.Contains(space.ItemLambdaExponent, tr.Params.ItemLambdaExponent) {
			t.Fatalf("trial with ν %v outside the choices %v", tr.Params.ItemLambdaExponent, space.ItemLambdaExponent)
		}
		seen[tr.Params.ItemLambdaExponent]++
	}
	if len(seen) < 2 {
		t.Fatalf("ν drawn from %v only", seen)
	}
	for _, bad := range [][]float64{{0, 3}, {1, 0.5}, {-1}} {
		sp := smallSpace()
		sp.ItemLambdaExponent = bad
		if err := sp.Validate(); err == nil {
			t.Errorf("space with ν choices %v accepted", bad)
		}
	}
}

func TestTuneStateRoundTrip(t *testing.T) {
	path := t.TempDir() + "/sub/pick.json"
	if st, err := LoadTuneState(path); st != nil || err != nil {
		t.Fatalf("missing state: %v, %v; want nil, nil", st, err)
	}
	p := model.DefaultParams()
	p.Lambda = 7.5
	want := TuneState{Dataset: "d", Params: p, Blend: model.Blend{Kappa: 4, Prior: 0.3}, Validation: Metrics{Users: 3, NDCG10: 0.1}}
	if err := want.Save(path); err != nil {
		t.Fatal(err)
	}
	got, err := LoadTuneState(path)
	if err != nil || got.Params != want.Params || got.Blend != want.Blend || got.Validation != want.Validation {
		t.Fatalf("loaded %+v, %v; want %+v", got, err, want)
	}
}

func TestSearchRacesTheBestOnEveryFold(t *testing.T) {
	c := smallSparse()
	c.Users, c.Items, c.Clusters, c.PerUser = 300, 400, 6, 14
	recs, err := Sparse(c)
	if err != nil {
		t.Fatal(err)
	}
	d := Build(recs, WeightOne)
	h, _ := NewHoldout(HoldoutLatest)
	test := h.Split(len(d.Users), len(d.Items), d.Interactions)
	val := h.Validation(test)
	fold := h.Fold(test, val)
	base := model.DefaultParams()
	base.Factors, base.Lambda, base.Alpha, base.Threads = 8, 5, 10, 2
	res, err := Search(context.Background(), val, SearchConfig{Space: smallSpace(), Base: base, Seed: 2, MinIterations: 2, MaxIterations: 6,
		Confirm: 3, ConfirmSeeds: 3, Folds: []Split{fold}, MinT: -1})
	if err != nil {
		t.Fatal(err)
	}
	// Rounds 1, 2, 3 run on the fold, the main split, the fold, with seeds
	// base+1, +2, +3: 3 racers and the reference, then 2 and it, then 1
	// and it.
	foldUsers := len(heldUsers(fold, 0))
	perRound := map[uint64][]SearchTrial{}
	for _, tr := range res.Trials {
		if !tr.Confirm {
			if tr.Fold != 0 {
				t.Fatalf("a search trial on fold %d", tr.Fold)
			}
			continue
		}
		perRound[tr.Params.Seed] = append(perRound[tr.Params.Seed], tr)
		wantFold, wantUsers := 1, foldUsers
		if tr.Params.Seed == 2 {
			wantFold, wantUsers = 0, len(heldUsers(val, 0))
		}
		if tr.Fold != wantFold || tr.Users != wantUsers {
			t.Fatalf("confirmation with seed %d on fold %d over %d users; want fold %d, %d users", tr.Params.Seed, tr.Fold, tr.Users, wantFold, wantUsers)
		}
	}
	if len(perRound[1]) != 4 || len(perRound[2]) != 3 || len(perRound[3]) != 2 || res.Confirmed != 4 {
		t.Fatalf("rounds of %d, %d, %d runs, pick confirmed %d times; want 4, 3, 2 and 4", len(perRound[1]), len(perRound[2]), len(perRound[3]), res.Confirmed)
	}
	// Each round's entrants are among the previous round's, and the pick
	// ran in the last round (MinT < 0: the reference is not kept).
	for r := uint64(2); r <= 3; r++ {
		for _, tr := range perRound[r] {
			if !slices.ContainsFunc(perRound[r-1], func(p SearchTrial) bool { return configKey(p.Params) == configKey(tr.Params) }) {
				t.Fatalf("round %d ran %+v, which left the race in round %d", r, tr.Params, r-1)
			}
		}
	}
	if !slices.ContainsFunc(perRound[3], func(p SearchTrial) bool { return configKey(p.Params) == configKey(res.Best.Params) }) ||
		res.Best.Confirm || res.KeptReference {
		t.Fatalf("pick %+v did not run in the last round %+v", res.Best.Params, perRound[3])
	}
	// A fold of other data is refused.
	if _, err := Search(context.Background(), val, SearchConfig{Space: smallSpace(), Base: base, Folds: []Split{{Users: 1, Items: 1, Held: []int32{-1}}}}); err == nil {
		t.Fatal("a fold of 1 user and 1 item was accepted")
	}
}

func TestRaceCutKeepsTheBetterHalf(t *testing.T) {
	score := map[int]float64{10: 0.3, 11: 0.5, 12: 0.1, 13: 0.4, 14: 0.2}
	got := raceCut([]int{10, 11, 12, 13, 14}, func(j int) float64 { return score[j] })
	if !slices.Equal(got, []int{11, 13, 10}) {
		t.Fatalf("cut %v, want [11 13 10]", got)
	}
	if got := raceCut([]int{12, 11}, func(j int) float64 { return score[j] }); !slices.Equal(got, []int{11}) {
		t.Fatalf("cut of two %v, want [11]", got)
	}
}

func TestMeanUserAveragesTheRunsThatScoreAUser(t *testing.T) {
	nan := float32(math.NaN())
	s := &searcher{user: [][]float32{{1, 0, nan}, {0, nan, nan}, {0.5, 1, 0}}, runs: map[int][]int{0: {0, 1, 2}}}
	got := s.meanUser(0)
	if got[0] != 0.5 || got[1] != 0.5 || got[2] != 0 {
		t.Fatalf("per-user means %v, want [0.5 0.5 0]", got)
	}
	if m := s.meanOf(0); math.Abs(m-1.0/3) > 1e-12 {
		t.Fatalf("mean %v, want 1/3", m)
	}
	s.user[1] = []float32{nan, nan, nan}
	s.user[2] = []float32{nan, nan, nan}
	s.user[0] = []float32{nan, nan, nan}
	if got := s.meanUser(0); !math.IsNaN(got[0]) || s.meanOf(0) != 0 {
		t.Fatalf("no run scores anyone: %v, mean %v; want NaN and 0", got, s.meanOf(0))
	}
}

func TestSearchBarIgnoresOtherFolds(t *testing.T) {
	var out strings.Builder
	b := NewSearchBar(&out, time.Minute)
	b.Trial(SearchTrial{Metrics: Metrics{Users: 10, NDCG10: 0.05}, Full: true})
	b.Trial(SearchTrial{Metrics: Metrics{Users: 9, NDCG10: 0.09}, Full: true, Confirm: true, Fold: 1})
	b.Trial(SearchTrial{Metrics: Metrics{Users: 10, NDCG10: 0.04}, Full: true})
	b.Done()
	if got := out.String(); !strings.Contains(got, "best val NDCG@10 0.0500") || strings.Contains(got, "0.0900") {
		t.Fatalf("bar %q: want the best of the main split, 0.0500", got)
	}
}

// TestSearchReferenceIsTheFittedDefaults: on a planted sparse log, where
// ν = 1 beats plain λ on validation, the search's reference is the base
// with ν = 1, as the defaults would fit it; without ν = 1 in the space it
// is the base.
func TestSearchReferenceIsTheFittedDefaults(t *testing.T) {
	_, val := sparseSplits(t, SparseConfig{Users: 2000, Items: 3000, Clusters: 20, PerUser: 12, Zipf: 0.8, Taste: 0.4, Seed: 2})
	base := model.DefaultParams()
	base.Threads = 2
	for _, tc := range []struct {
		nus  []float64
		want float64
	}{{[]float64{0, 1}, 1}, {[]float64{0, 0.5}, 0}} {
		space := smallSpace()
		space.Factors, space.ItemLambdaExponent = []int{base.Factors}, tc.nus
		now := time.Unix(0, 0)
		clock := func() time.Time { now = now.Add(time.Second); return now }
		res, err := Search(context.Background(), val, SearchConfig{Space: space, Base: base, Budget: 30 * time.Second, Now: clock, MaxIterations: base.Iterations})
		if err != nil {
			t.Fatal(err)
		}
		if res.Reference == nil || res.Reference.Params.ItemLambdaExponent != tc.want {
			t.Fatalf("ν choices %v: reference %+v, want ν %v", tc.nus, res.Reference, tc.want)
		}
		t.Logf("ν choices %v: reference ν %v, validation NDCG@10 %.4f; %d trials, %s", tc.nus, res.Reference.Params.ItemLambdaExponent, res.Reference.NDCG10, len(res.Trials), res.Stopped)
	}
}

// TestSearchFitsItsReference: with FitBase the reference is the defaults
// as an untuned run fits them. On a log whose one-minute decay hides a
// user's earlier items the fit drops the decay (as
// TestFitDefaultsDropsAHidingDecay shows for the untuned run); the search
// races against that, and a budget the fit spends hands back the fitted
// defaults, not the shipped ones.
func TestSearchFitsItsReference(t *testing.T) {
	_, val := groupsSplits(t, 300, 5)
	base := model.DefaultParams()
	base.Threads = 2
	space := smallSpace()
	space.Factors, space.HalfLife = []int{base.Factors}, []time.Duration{0, time.Minute, 7 * 24 * time.Hour}
	search := func(budget time.Duration, clock func() time.Time) SearchResult {
		t.Helper()
		res, err := Search(context.Background(), val, SearchConfig{Space: space, Base: base, Budget: budget, Now: clock, Unit: 10 * time.Minute,
			MaxIterations: base.Iterations, Confirm: 1, FitBase: &DefaultsChoice{HalfLife: true}, Starts: []model.Params{base}})
		if err != nil {
			t.Fatal(err)
		}
		if res.BaseFit == nil || res.BaseFit.HalfLife == nil || res.BaseFit.Params.HalfLife == base.HalfLife {
			t.Fatalf("reference fit %+v: want the one-minute half-life fitted away", res.BaseFit)
		}
		return res
	}
	// Each reading of this clock takes a second: the fit's three
	// trainings spend a 4 s budget.
	now := time.Unix(0, 0)
	res := search(4*time.Second, func() time.Time { now = now.Add(time.Second); return now })
	fitted := res.BaseFit.Params
	if !res.KeptReference || res.Best.Params != fitted || len(res.Trials) != 0 || res.Stopped != "budget" || res.Best.Users == 0 {
		t.Fatalf("budget spent by the fit: pick %+v (kept %v, %d trials, %s, %d users); want the fitted defaults %+v, no trial",
			res.Best.Params, res.KeptReference, len(res.Trials), res.Stopped, res.Best.Users, fitted)
	}
	// One cycle: the reference is the fitted base at its own sweeps,
	// trained first (the unfitted base among the starts is not trained:
	// the fit measured it).
	res = search(0, nil)
	if res.Reference == nil || res.Reference.Params.HalfLife != fitted.HalfLife || res.Reference.Params.Iterations != base.Iterations ||
		res.Trials[0].Params != res.Reference.Params {
		t.Fatalf("reference %+v, first trial %+v; want the fitted defaults (half-life %v) trained first", res.Reference, res.Trials[0].Params, fitted.HalfLife)
	}
	t.Logf("%s; pick %+v (kept %v), reference validation NDCG@10 %.4f", res.BaseFit.HalfLife, res.Best.Params, res.KeptReference, res.Reference.NDCG10)
}
