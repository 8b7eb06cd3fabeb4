package offline

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kairoshq/kairos/eval"
	"github.com/kairoshq/kairos/model"
	"github.com/kairoshq/kairos/offline/archive"
	"github.com/kairoshq/kairos/signals"
)

var t0 = time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)

// planted describes an archive of visitors in clusters who view items of
// their own cluster (popular ones more often), in per batches over 10
// days, every 5th batch archived twice.
type planted struct {
	clusters, visitors, items, per int
}

func openArchive(t *testing.T) *archive.Archive {
	t.Helper()
	a, err := archive.Open(context.Background(), archive.Options{Dir: t.TempDir(), Now: func() time.Time { return t0.Add(240 * time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// write appends batches [from, to) of the planted log to a.
func (pl planted) write(t *testing.T, a *archive.Archive, from, to int) {
	t.Helper()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, uint64(from)))
	for j := from; j < to; j++ {
		var batch []signals.Event
		for c := range pl.clusters {
			for v := range pl.visitors {
				i := int(float64(pl.items) * math.Pow(rng.Float64(), 1.5))
				batch = append(batch, signals.Event{ID: fmt.Sprintf("e%d-%d-%d", j, c, v), Type: signals.TypeView,
					Visitor: fmt.Sprintf("c%d-v%d", c, v), Item: fmt.Sprintf("c%d-i%d", c, i),
					Time: signals.Timestamp{Time: t0.Add(time.Duration(j) * 240 * time.Hour / time.Duration(pl.per)).Add(time.Duration(v) * time.Second)}})
			}
		}
		if err := a.Append(ctx, batch); err != nil {
			t.Fatal(err)
		}
		if j%5 == 0 { // a redelivered batch archived twice
			if err := a.Append(ctx, batch); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func plantedArchive(t *testing.T, clusters, visitors, items, per int) *archive.Archive {
	t.Helper()
	a := openArchive(t)
	planted{clusters, visitors, items, per}.write(t, a, 0, per)
	return a
}

func testParams() model.Params {
	p := model.DefaultParams()
	p.Factors, p.Lambda, p.Alpha, p.HalfLife, p.Threads = 8, 1, 10, 0, 2
	return p
}

func testConfig() RetrainConfig {
	return RetrainConfig{Params: testParams(), MinUsers: 20}
}

func TestRetrainLearnsPlantedClustersAndEvaluates(t *testing.T) {
	a := plantedArchive(t, 3, 30, 40, 20)
	res, err := Retrain(context.Background(), a, nil, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	if res.Events != 3*30*20 || res.Duplicates != 3*30*4 {
		t.Fatalf("events %d, duplicates %d; want %d and %d", res.Events, res.Duplicates, 3*30*20, 3*30*4)
	}
	if res.Users != 90 || res.Items > 120 || res.Snapshot == nil || res.Snapshot.Users.Rows() != 90 || res.Snapshot.Meta.ArchiveSeq == 0 {
		t.Fatalf("result %+v", res)
	}
	ev, ok := res.Evaluation("retrained")
	pop, okPop := res.Evaluation("popularity")
	if !ok || !okPop || ev.Users < 60 {
		t.Fatalf("evaluations on the tail: %+v (want retrained and popularity over most of the 90 users)", res.Evaluations)
	}
	// Random ranking of 40 own-cluster items among 120 gives HR@10 < 0.1;
	// the model ranks the own cluster first, popularity cannot.
	if ev.HR10 < 0.5 || ev.NDCG10 <= pop.NDCG10 {
		t.Fatalf("tail HR@10 %.3f NDCG@10 %.3f (popularity %.3f): want >= 0.5 and above popularity", ev.HR10, ev.NDCG10, pop.NDCG10)
	}
	if c, ok := res.Comparison("popularity"); !ok || c.Users != ev.Users || c.T < 2 {
		t.Fatalf("paired comparison with popularity %+v: want t >= 2 over %d users", c, ev.Users)
	}
	if res.Validation == nil || res.Validation.Users == 0 || res.Snapshot.Meta.Blend == nil || *res.Snapshot.Meta.Blend != res.Blend {
		t.Fatalf("validation %+v, snapshot blend %v, blend %+v", res.Validation, res.Snapshot.Meta.Blend, res.Blend)
	}
	// The snapshot ranks each visitor's cluster first.
	s := res.Snapshot
	o, err := model.NewOnline(&model.Model{Params: s.Meta.Params, Items: s.Items, Users: s.Users}, s.Stats)
	if err != nil {
		t.Fatal(err)
	}
	var sc model.Scorer
	for u, id := range s.UserIDs[:10] {
		top := o.TopK(&sc, nil, model.Query{Vector: s.Users.Row(u), N: 5})
		for _, e := range top {
			if s.ItemIDs[e.Item][:2] != id[:2] {
				t.Fatalf("visitor %s: top item %s of another cluster", id, s.ItemIDs[e.Item])
			}
		}
	}
}

// liveOf is the live model a published snapshot becomes, with current
// item factors items (what it learnt since, or anything).
func liveOf(s *model.Snapshot, items *model.Factors) *LiveModel {
	return &LiveModel{Params: s.Meta.Params, Blend: *s.Meta.Blend, ItemIDs: s.ItemIDs, Items: items, Snapshot: s}
}

func noise(rows, k int, seed uint64) *model.Factors {
	rng := rand.New(rand.NewPCG(seed, 1))
	f := model.NewFactors(rows, k)
	for i := range f.Data {
		f.Data[i] = float32(rng.NormFloat64())
	}
	return f
}

// retrainedThenMore returns an archive of planted clusters and the
// result of a retrain on its first 12 days, after which 8 more days were
// written (unseen by that model).
func retrainedThenMore(t *testing.T) (*archive.Archive, *RetrainResult) {
	t.Helper()
	pl := planted{3, 30, 15, 20}
	a := openArchive(t)
	pl.write(t, a, 0, 12)
	first, err := Retrain(context.Background(), a, nil, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	pl.write(t, a, 12, 20)
	return a, first
}

func TestGuardComparesWithTheLiveSnapshotOnUnseenEvents(t *testing.T) {
	a, first := retrainedThenMore(t)
	// The live model's current item factors are noise: the guard must
	// not use them (they may have learnt from the tail), only the
	// snapshot as of its cut-off.
	live := liveOf(first.Snapshot, noise(len(first.Snapshot.ItemIDs), 8, 1))
	res, err := Retrain(context.Background(), a, live, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	if res.Reference != ReferenceSnapshot || !res.HoldoutFrom.Equal(first.Snapshot.Meta.Cutoff) {
		t.Fatalf("reference %q from %s; want the snapshot's cut-off %s", res.Reference, res.HoldoutFrom, first.Snapshot.Meta.Cutoff)
	}
	le, _ := res.Evaluation("live")
	re, _ := res.Evaluation("retrained")
	if le.Users != re.Users || le.Users < 60 || le.HR10 < 0.5 {
		t.Fatalf("live %+v, retrained %+v: the snapshot ranks the planted clusters (HR@10 >= 0.5) on the same users", le, re)
	}
	r := &Runner{MinUsers: 20}
	if d, why, ok := r.decide(res, true); d != DecisionPublished || !ok {
		t.Fatalf("same recipe, more data: %s (%s); want published", d, why)
	}
}

func TestGuardRefusesABadModel(t *testing.T) {
	a, first := retrainedThenMore(t)
	live := liveOf(first.Snapshot, first.Snapshot.Items)
	var published []*model.Snapshot
	store := &memBlobs{}
	runner := func(p model.Params) *Runner {
		cfg := testConfig()
		cfg.Params = p
		return &Runner{Source: a, Config: cfg, MinUsers: 20, Log: &Log{Store: store},
			Live:    func(context.Context) (*LiveModel, error) { return live, nil },
			Publish: func(_ context.Context, s *model.Snapshot) error { published = append(published, s); return nil }}
	}
	// One factor and no training sweep: random item factors.
	bad := testParams()
	bad.Factors, bad.Iterations = 1, 0
	res, err := runner(bad).Run(context.Background(), false, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %s", res.Decision, res.Reason)
	if res.Decision != DecisionWorse && res.Decision != DecisionNotBetterThanPopularity {
		t.Fatalf("a model of random factors was %s (%s)", res.Decision, res.Reason)
	}
	if len(published) != 0 {
		t.Fatal("the refused model was published")
	}
	if c, _ := res.Comparison("live"); c.T > WorseT {
		t.Fatalf("bad model vs live: t = %.2f, want clearly negative", c.T)
	}
	// Forced, it is published and says what the guard thought.
	if res, err = runner(bad).Run(context.Background(), false, true); err != nil || res.Decision != DecisionPublished || len(published) != 1 {
		t.Fatalf("forced: %v, %v, %d published", res.Decision, err, len(published))
	}
	// The good recipe is published.
	if res, err = runner(testParams()).Run(context.Background(), false, false); err != nil || res.Decision != DecisionPublished || len(published) != 2 {
		t.Fatalf("good model: %v (%s), %v", res.Decision, res.Reason, err)
	}
	reps, err := (&Log{Store: store}).Reports(context.Background())
	if err != nil || len(reps) != 3 || reps[0].Decision == DecisionPublished || reps[2].Decision != DecisionPublished || reps[2].Version == 0 {
		t.Fatalf("log %+v, %v", reps, err)
	}
}

func TestRunnerReportsTooFewUsers(t *testing.T) {
	a := plantedArchive(t, 2, 5, 10, 10)
	store := &memBlobs{}
	r := &Runner{Source: a, Config: testConfig(), Log: &Log{Store: store},
		Publish: func(context.Context, *model.Snapshot) error { t.Fatal("published"); return nil }}
	res, err := r.Run(context.Background(), false, false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Decision != DecisionTooFewUsers {
		t.Fatalf("%s (%s), want too few users", res.Decision, res.Reason)
	}
	// A failing run is logged as failed.
	r.Source = failingSource{}
	if _, err := r.Run(context.Background(), false, false); err == nil {
		t.Fatal("no error from a failing archive")
	}
	reps, _ := r.Log.Reports(context.Background())
	if len(reps) != 2 || reps[1].Decision != DecisionFailed || reps[1].Error == "" {
		t.Fatalf("log %+v", reps)
	}
}

func TestTunedRetrainWarmStartsFromTheLastPick(t *testing.T) {
	a := plantedArchive(t, 3, 30, 15, 20)
	store := &memBlobs{}
	log := &Log{Store: store}
	prev := testParams()
	prev.Lambda, prev.Alpha, prev.Iterations = 2.5, 7, 6
	if err := log.Append(context.Background(), Report{Decision: DecisionPublished, Params: &prev, Search: &SearchSummary{}}); err != nil {
		t.Fatal(err)
	}
	r := &Runner{Source: a, Config: testConfig(), Log: log, MinUsers: 20, TuneBudget: time.Second,
		Publish: func(context.Context, *model.Snapshot) error { return nil }}
	starts := r.warmStarts(context.Background(), nil, testParams())
	prev.Threads = 0 // not kept in the log
	if len(starts) != 2 || starts[0] != prev {
		t.Fatalf("warm starts %+v, want the last pick then the base", starts)
	}
	res, err := r.Run(context.Background(), true, false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Search == nil || res.Search.Trials == 0 || res.Search.WarmStarts != 2 || res.Decision != DecisionDryRun {
		t.Fatalf("search %+v, decision %s", res.Search, res.Decision)
	}
}

func TestStraddleBoundary(t *testing.T) {
	ns := func(h int) int64 { return t0.Add(time.Duration(h) * time.Hour).UnixNano() }
	// Events at hours 0..99; 10 users active hours 0–99; 3 users 0–60.
	var times []int64
	for h := range 100 {
		times = append(times, ns(h))
	}
	var spans []userSpan
	for range 10 {
		spans = append(spans, userSpan{first: ns(0), last: ns(99)})
	}
	for range 3 {
		spans = append(spans, userSpan{first: ns(0), last: ns(60)})
	}
	b := straddleBoundary(spans, times, 5)
	if got := b.Sub(t0); got != 90*time.Hour {
		t.Fatalf("boundary %s after the start, want the 90th percentile (90h): 10 users straddle it", got)
	}
	b = straddleBoundary(spans, times, 50)
	if got := b.Sub(t0); got != 60*time.Hour {
		t.Fatalf("boundary %s: want the latest time where all 13 users straddle (60h)", got)
	}
}

func TestAggregationMatchesTheEngine(t *testing.T) {
	// The retrain's decayed weights equal model.HistoryAggregator's for the
	// same history (the engine's fold-in weights), for every half-life.
	hls := []time.Duration{0, time.Hour, 24 * time.Hour}
	in := newPairSet(hls)
	events := []model.Event{
		{Item: 1, Weight: 2, Time: t0},
		{Item: 2, Weight: 1, Time: t0.Add(30 * time.Minute)},
		{Item: 1, Weight: 4, Time: t0.Add(2 * time.Hour)},
		{Item: 2, Weight: 3, Time: t0.Add(-time.Hour)},
	}
	for _, e := range events {
		in.add(0, e.Item, float64(e.Weight), e.Time.UnixNano())
	}
	for h, hl := range hls {
		var agg model.HistoryAggregator
		want := map[int32]float32{}
		for _, w := range agg.Aggregate(nil, events, hl) {
			want[w.Item] = w.Weight
		}
		for _, tr := range in.all().triples(h) {
			if math.Abs(float64(tr.Weight-want[tr.Item])) > 1e-5 {
				t.Fatalf("half-life %s, item %d: retrain weight %v, engine weight %v", hl, tr.Item, tr.Weight, want[tr.Item])
			}
		}
	}
}

// memBlobs is an in-memory BlobStore.
type memBlobs struct{ m map[string][]byte }

func (s *memBlobs) PutBlob(_ context.Context, name string, b []byte) error {
	if s.m == nil {
		s.m = map[string][]byte{}
	}
	s.m[name] = append([]byte(nil), b...)
	return nil
}

func (s *memBlobs) GetBlob(_ context.Context, name string) ([]byte, error) { return s.m[name], nil }

type failingSource struct{}

func (failingSource) ScanRecords(context.Context, archive.Query, func(archive.Record) error) error {
	return fmt.Errorf("disk on fire")
}

func TestScoreTargets(t *testing.T) {
	// Scores of 60 candidates: item j scores 100 − j, so its rank is j+1.
	scores := make([]float32, 60)
	for j := range scores {
		scores[j] = float32(100 - j)
	}
	var sc model.Scorer
	top := sc.SelectTop(nil, scores, 51, nil, nil)
	idcg2 := 1 + 1/math.Log2(3)
	for _, tc := range []struct {
		targets           []int32
		ndcg, hit, recall float64
	}{
		{[]int32{0}, 1, 1, 1},
		{[]int32{0, 2}, (1 + 1/math.Log2(4)) / idcg2, 1, 1},
		{[]int32{12, 55}, 0, 0, 0.5},
		{[]int32{9}, 1 / math.Log2(11), 1, 1},
	} {
		n, h, r := scoreTargets(scores, top, tc.targets)
		if math.Abs(n-tc.ndcg) > 1e-12 || h != tc.hit || r != tc.recall {
			t.Errorf("targets %v: NDCG %.4f HR %v recall %v; want %.4f %v %v", tc.targets, n, h, r, tc.ndcg, tc.hit, tc.recall)
		}
	}
	// Ties count against the relevant item.
	flat := make([]float32, 60)
	n, h, _ := scoreTargets(flat, sc.SelectTop(nil, flat, 51, nil, nil), []int32{3})
	if n != 0 || h != 0 {
		t.Fatalf("constant scores: NDCG %v HR %v, want 0 (ranked last)", n, h)
	}
}

func TestTunedRetrainKeepsTheEnginesK(t *testing.T) {
	a, first := retrainedThenMore(t)
	live := liveOf(first.Snapshot, first.Snapshot.Items)
	prev := testParams()
	prev.Factors = 32 // an old pick of another k
	log := &Log{Store: &memBlobs{}}
	if err := log.Append(context.Background(), Report{Params: &prev, Search: &SearchSummary{}}); err != nil {
		t.Fatal(err)
	}
	r := &Runner{Source: a, Config: testConfig(), MinUsers: 20, TuneBudget: -1, Log: log,
		Live: func(context.Context) (*LiveModel, error) { return live, nil }}
	res, err := r.Run(context.Background(), true, false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Search == nil || res.Search.Trials == 0 || res.Params.Factors != 8 || res.Snapshot.Meta.Params.Factors != 8 {
		t.Fatalf("search %+v, pick k=%d: want trials and the engines' k = 8", res.Search, res.Params.Factors)
	}
}

// With OpenSource (the cluster's history) every run reads a source
// opened for it, and a snapshot of a history cut is marked so.
func TestRunnerOpensTheSourceOfEachRun(t *testing.T) {
	a := plantedArchive(t, 3, 30, 15, 20)
	opened := 0
	cfg := testConfig()
	cfg.HistoryCut = true
	var published []*model.Snapshot
	r := &Runner{Config: cfg, MinUsers: 20,
		OpenSource: func(context.Context) (RecordSource, error) { opened++; return a, nil },
		Publish:    func(_ context.Context, s *model.Snapshot) error { published = append(published, s); return nil }}
	for range 2 {
		if _, err := r.Run(context.Background(), false, true); err != nil {
			t.Fatal(err)
		}
	}
	if opened != 2 || len(published) != 2 {
		t.Fatalf("opened %d sources and published %d snapshots in 2 runs, want 2 and 2", opened, len(published))
	}
	if !published[1].Meta.HistoryCut || published[1].Meta.Cutoff.IsZero() {
		t.Fatalf("snapshot of the history: HistoryCut %v, cutoff %v", published[1].Meta.HistoryCut, published[1].Meta.Cutoff)
	}
	r.OpenSource = func(context.Context) (RecordSource, error) { return nil, errors.New("stream unreachable") }
	if _, err := r.Run(context.Background(), false, true); err == nil || !strings.Contains(err.Error(), "stream unreachable") {
		t.Fatalf("a source that does not open: %v", err)
	}
}

// TestRetrainFitsItemLambdaExponent: with FitItemLambda the retrain
// chooses ν on its validation split, says so, and the snapshot carries
// it; without, the configured ν is kept.
func TestRetrainFitsItemLambdaExponent(t *testing.T) {
	a := plantedArchive(t, 3, 30, 40, 20)
	var log strings.Builder
	cfg := testConfig()
	cfg.Params.ItemLambdaExponent = 0.5
	cfg.FitItemLambda, cfg.Progress = true, &log
	res, err := Retrain(context.Background(), a, nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	nu := res.Params.ItemLambdaExponent
	if (nu != 0 && nu != 1) || res.Snapshot.Meta.Params.ItemLambdaExponent != nu || !strings.Contains(log.String(), fmt.Sprintf("item λ exponent ν = %g:", nu)) {
		t.Fatalf("fitted ν %v, snapshot's %v; log:\n%s", nu, res.Snapshot.Meta.Params.ItemLambdaExponent, log.String())
	}
	cfg.FitItemLambda, cfg.Progress = false, nil
	res, err = Retrain(context.Background(), a, nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Params.ItemLambdaExponent != 0.5 || res.Snapshot.Meta.Params.ItemLambdaExponent != 0.5 {
		t.Fatalf("configured ν 0.5 became %v (snapshot %v)", res.Params.ItemLambdaExponent, res.Snapshot.Meta.Params.ItemLambdaExponent)
	}
}

func TestRetrainFitsHalfLife(t *testing.T) {
	a := plantedArchive(t, 3, 30, 40, 20)
	var log strings.Builder
	cfg := testConfig()
	cfg.Params.HalfLife = time.Minute
	cfg.FitHalfLife, cfg.Progress = true, &log
	res, err := Retrain(context.Background(), a, nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	hl := res.Params.HalfLife
	if (hl != time.Minute && !slices.Contains(eval.FittedHalfLives, hl)) || res.Snapshot.Meta.Params.HalfLife != hl || !strings.Contains(log.String(), fmt.Sprintf("half-life %s: validation NDCG@10", hl)) {
		t.Fatalf("fitted half-life %v, snapshot's %v; log:\n%s", hl, res.Snapshot.Meta.Params.HalfLife, log.String())
	}
	cfg.FitHalfLife, cfg.Progress = false, nil
	cfg.Params.HalfLife = time.Hour
	res, err = Retrain(context.Background(), a, nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Params.HalfLife != time.Hour || res.Snapshot.Meta.Params.HalfLife != time.Hour {
		t.Fatalf("configured half-life 1h became %v (snapshot %v)", res.Params.HalfLife, res.Snapshot.Meta.Params.HalfLife)
	}
}

func TestGuardRanksAnEvenSpreadOfABigTail(t *testing.T) {
	a := plantedArchive(t, 3, 30, 40, 20)
	all, err := Retrain(context.Background(), a, nil, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	ev, _ := all.Evaluation("retrained")
	if all.TailUsers < 60 || ev.Users != all.TailUsers {
		t.Fatalf("default bound: %d tail users, %d ranked; want every one of at least 60", all.TailUsers, ev.Users)
	}
	cfg := testConfig()
	cfg.GuardUsers = 25
	res, err := Retrain(context.Background(), a, nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.TailUsers != all.TailUsers {
		t.Fatalf("tail users %d with the bound, %d without", res.TailUsers, all.TailUsers)
	}
	for _, e := range res.Evaluations {
		if e.Users != 25 {
			t.Errorf("%s ranked %d users; want the bound, 25", e.Model, e.Users)
		}
	}
	for _, c := range res.Comparisons {
		if c.Users != 25 {
			t.Errorf("comparison with %s over %d users; want 25", c.B, c.Users)
		}
	}
}

func TestRetrainFitsAlpha(t *testing.T) {
	a := plantedArchive(t, 3, 30, 40, 20)
	var log strings.Builder
	cfg := testConfig()
	cfg.FitAlpha, cfg.Progress = true, &log
	res, err := Retrain(context.Background(), a, nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	tried := []float64{cfg.Params.Alpha}
	for _, x := range eval.FittedAlphaFactors {
		tried = append(tried, cfg.Params.Alpha*x)
	}
	alpha := res.Params.Alpha
	if !slices.Contains(tried, alpha) || res.Snapshot.Meta.Params.Alpha != alpha || !strings.Contains(log.String(), fmt.Sprintf("confidence α = %g: validation NDCG@10", alpha)) {
		t.Fatalf("fitted α %v (tried %v), snapshot's %v; log:\n%s", alpha, tried, res.Snapshot.Meta.Params.Alpha, log.String())
	}
	cfg.FitAlpha, cfg.Progress = false, nil
	if res, err = Retrain(context.Background(), a, nil, cfg); err != nil {
		t.Fatal(err)
	}
	if res.Params.Alpha != cfg.Params.Alpha || res.Snapshot.Meta.Params.Alpha != cfg.Params.Alpha {
		t.Fatalf("configured α %v became %v (snapshot %v)", cfg.Params.Alpha, res.Params.Alpha, res.Snapshot.Meta.Params.Alpha)
	}
}
