package offline

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/kairoshq/kairos/model"
	"github.com/kairoshq/kairos/offline/archive"
	"github.com/kairoshq/kairos/signals"
)

var t0 = time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)

// plantedArchive writes an archive of visitors in clusters who view items
// of their own cluster, over 10 days, with every 50th batch duplicated.
func plantedArchive(t *testing.T, clusters, visitors, items, per int) *archive.Archive {
	t.Helper()
	ctx := context.Background()
	a, err := archive.Open(ctx, archive.Options{Dir: t.TempDir(), Now: func() time.Time { return t0.Add(240 * time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	rng := rand.New(rand.NewPCG(3, 3))
	n := 0
	for j := range per {
		var batch []signals.Event
		for c := range clusters {
			for v := range visitors {
				batch = append(batch, signals.Event{ID: fmt.Sprintf("e%d", n), Type: signals.TypeView,
					Visitor: fmt.Sprintf("c%d-v%d", c, v), Item: fmt.Sprintf("c%d-i%d", c, rng.IntN(items)),
					Time: signals.Timestamp{Time: t0.Add(time.Duration(j) * 240 * time.Hour / time.Duration(per)).Add(time.Duration(v) * time.Second)}})
				n++
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
	return a
}

func testParams() model.Params {
	p := model.DefaultParams()
	p.Factors, p.Lambda, p.Alpha, p.HalfLife = 8, 1, 10, 0
	return p
}

func TestRetrainLearnsPlantedClustersAndEvaluates(t *testing.T) {
	a := plantedArchive(t, 3, 30, 15, 20)
	res, err := Retrain(context.Background(), a, nil, RetrainConfig{Params: testParams()})
	if err != nil {
		t.Fatal(err)
	}
	if res.Events != 3*30*20 || res.Duplicates != 3*30*4 {
		t.Fatalf("events %d, duplicates %d; want %d and %d", res.Events, res.Duplicates, 3*30*20, 3*30*4)
	}
	if res.Users != 90 || res.Items != 45 || res.Snapshot == nil || res.Snapshot.Users.Rows() != 90 || res.Snapshot.Meta.ArchiveSeq == 0 {
		t.Fatalf("result %+v", res)
	}
	ev, ok := res.Evaluation("retrained")
	if !ok || ev.Users == 0 {
		t.Fatalf("no evaluation on the tail: %+v", res.Evaluations)
	}
	// Random ranking of 15 own-cluster items among 45 gives HR@10 ≈ 0.2;
	// the model ranks the own cluster first.
	if ev.HR10 < 0.5 {
		t.Fatalf("tail HR@10 %.3f, want >= 0.5 (planted clusters)", ev.HR10)
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

func TestRetrainComparesWithLiveModel(t *testing.T) {
	a := plantedArchive(t, 3, 30, 15, 20)
	first, err := Retrain(context.Background(), a, nil, RetrainConfig{Params: testParams()})
	if err != nil {
		t.Fatal(err)
	}
	good := &LiveModel{Params: testParams(), ItemIDs: first.Snapshot.ItemIDs, Items: first.Snapshot.Items}
	rng := rand.New(rand.NewPCG(1, 1))
	noise := model.NewFactors(good.Items.Rows(), good.Items.K)
	for i := range noise.Data {
		noise.Data[i] = float32(rng.NormFloat64())
	}
	bad := &LiveModel{Params: testParams(), ItemIDs: first.Snapshot.ItemIDs, Items: noise}
	for _, tc := range []struct {
		live   *LiveModel
		better bool
	}{{good, true}, {bad, false}} {
		res, err := Retrain(context.Background(), a, tc.live, RetrainConfig{Params: testParams()})
		if err != nil {
			t.Fatal(err)
		}
		live, ok := res.Evaluation("live")
		if !ok {
			t.Fatal("no live evaluation")
		}
		re, _ := res.Evaluation("retrained")
		if tc.better && live.HR10 < 0.5 || !tc.better && live.HR10 > re.HR10-0.2 {
			t.Fatalf("live HR@10 %.3f vs retrained %.3f (live is the %v model)", live.HR10, re.HR10, map[bool]string{true: "good", false: "random"}[tc.better])
		}
	}
}

func TestAggregationMatchesTheEngine(t *testing.T) {
	// The retrain's decayed weights equal model.HistoryAggregator's for the
	// same history (the engine's fold-in weights).
	hl := time.Hour
	in := newInteractions(hl)
	events := []model.Event{
		{Item: 1, Weight: 2, Time: t0},
		{Item: 2, Weight: 1, Time: t0.Add(30 * time.Minute)},
		{Item: 1, Weight: 4, Time: t0.Add(2 * time.Hour)},
		{Item: 2, Weight: 3, Time: t0.Add(-time.Hour)},
	}
	for _, e := range events {
		in.add(0, e.Item, float64(e.Weight), e.Time.UnixNano())
	}
	var agg model.HistoryAggregator
	want := map[int32]float32{}
	for _, w := range agg.Aggregate(nil, events, hl) {
		want[w.Item] = w.Weight
	}
	for _, tr := range in.triples() {
		if math.Abs(float64(tr.Weight-want[tr.Item])) > 1e-5 {
			t.Fatalf("item %d: retrain weight %v, engine weight %v", tr.Item, tr.Weight, want[tr.Item])
		}
	}
}
