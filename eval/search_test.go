package eval

import (
	"context"
	"math"
	"slices"
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
	res, err := Search(context.Background(), val, SearchConfig{Space: smallSpace(), Base: base, Starts: []model.Params{start}, Seed: 3,
		OnTrial: func(tr SearchTrial) { seen = append(seen, tr) }})
	if err != nil {
		t.Fatal(err)
	}
	// One cycle with rungs 2, 6, 18 and η = 3: brackets of 9, 5 and 3
	// configurations; 9+3+1 + 5+1 + 3 evaluations, then the best 3
	// trained again with 2 other seeds.
	if res.Stopped != "complete" || res.Brackets != 3 || res.Configs != 17 || len(res.Trials) != 28 || len(seen) != 28 || res.Confirmed != 3 {
		t.Fatalf("stopped %q after %d brackets, %d configurations, %d trials (%d seen), confirmed %d; want complete, 3, 17, 28, 3",
			res.Stopped, res.Brackets, res.Configs, len(res.Trials), len(seen), res.Confirmed)
	}
	// The pick is the configuration with the best mean over its 3 seeds.
	means := map[model.Params][]float64{}
	for _, tr := range res.Trials {
		p := tr.Params
		p.Seed, p.Threads = 0, 0
		means[p] = append(means[p], tr.NDCG10)
	}
	best := res.Best.Params
	best.Seed, best.Threads = 0, 0
	mean := func(v []float64) float64 {
		var s float64
		for _, x := range v {
			s += x
		}
		return s / float64(len(v))
	}
	if res.Best.Confirm || len(means[best]) != 3 || math.Abs(mean(means[best])-res.MeanNDCG10) > 1e-12 {
		t.Fatalf("pick %+v (%d runs, mean %.4f), reported mean %.4f", res.Best.Params, len(means[best]), mean(means[best]), res.MeanNDCG10)
	}
	for p, v := range means {
		if len(v) == 3 && mean(v) > res.MeanNDCG10 {
			t.Fatalf("configuration %+v has a better mean %.4f than the pick's %.4f", p, mean(v), res.MeanNDCG10)
		}
	}
	first := res.Trials[0].Params
	if first.Factors != start.Factors || first.Lambda != start.Lambda || first.Alpha != start.Alpha || first.Iterations != 2 {
		t.Fatalf("first trial %+v, want the warm start at 2 sweeps", first)
	}
	// The synthetic data has distinct times per user: half-lives vary.
	for _, tr := range res.Trials {
		if !slices.Contains([]int{2, 6, 18}, tr.Params.Iterations) || !slices.Contains([]int{4, 8}, tr.Params.Factors) {
			t.Fatalf("trial outside the rungs or the space: %+v", tr.Params)
		}
		if tr.Users == 0 {
			t.Fatalf("trial scored on no user: %+v", tr)
		}
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
