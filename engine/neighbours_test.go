package engine_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/model"
	"github.com/kairoshq/kairos/offline"
	"github.com/kairoshq/kairos/signals"
)

// pairNeighbours returns neighbours for snap's items in which a and b are
// each other's only neighbour.
func pairNeighbours(t *testing.T, snap *model.Snapshot, a, b string) *model.Neighbours {
	t.Helper()
	ia, ib := slices.Index(snap.ItemIDs, a), slices.Index(snap.ItemIDs, b)
	if ia < 0 || ib < 0 {
		t.Fatalf("the snapshot lacks %s or %s", a, b)
	}
	nb := &model.Neighbours{Ptr: make([]int64, len(snap.ItemIDs)+1)}
	for i := range snap.ItemIDs {
		switch i {
		case ia:
			nb.Idx, nb.Sim = append(nb.Idx, int32(ib)), append(nb.Sim, 0.5)
		case ib:
			nb.Idx, nb.Sim = append(nb.Idx, int32(ia)), append(nb.Sim, 0.5)
		}
		nb.Ptr[i+1] = int64(len(nb.Idx))
	}
	return nb
}

// TestSnapshotNeighboursRankTheVisitorsCoItems loads a snapshot that
// carries item neighbours and η > 0: a visitor of cluster 1 who clicked
// pair-a then gets its neighbour pair-b first (the factors alone rank
// cluster 1's items first), on this engine and after a restart; a later
// snapshot without neighbours takes them away.
func TestSnapshotNeighboursRankTheVisitorsCoItems(t *testing.T) {
	ctx := context.Background()
	store := openStore(t, t.TempDir())
	e := newEngine(t, store, nil)
	arc := attachArchive(t, e)
	evs := clusterEvents(3, 20, 10, 10, 11)
	for v := range 4 { // pair-a and pair-b, a few clicks from cluster 0
		for _, it := range []string{"pair-a", "pair-b"} {
			evs = append(evs, signals.Event{ID: fmt.Sprintf("%s-%d", it, v), Type: signals.TypeClick, Visitor: fmt.Sprintf("c0-%d", v),
				Item: it, Time: signals.Timestamp{Time: t0.Add(50 * time.Minute)}})
		}
	}
	evs = append(evs, signals.Event{ID: "c1-3-pair-a", Type: signals.TypeClick, Visitor: "c1-3", Item: "pair-a", Time: signals.Timestamp{Time: t0.Add(51 * time.Minute)}})
	mustHandle(t, e, evs)
	top := func(e *engine.Engine) engine.RecResponse {
		return recommend(t, e, "c1-3", 3, func(r *engine.RecRequest) { r.Exact = true })
	}
	res, err := offline.Retrain(ctx, arc, nil, offline.RetrainConfig{Params: testConfig().Params})
	if err != nil {
		t.Fatal(err)
	}
	plain := *res.Snapshot
	plain.Meta.Blend = &model.Blend{}
	if err := e.LoadSnapshot(ctx, &plain); err != nil {
		t.Fatal(err)
	}
	if r := top(e); r.Items[0].Item == "pair-b" || !strings.HasPrefix(r.Items[0].Item, "c1-") {
		t.Fatalf("without neighbours the factors rank cluster 1 first: %+v", r)
	}
	withNb := plain
	withNb.Meta.Version++
	withNb.Meta.Blend = &model.Blend{Neighbours: 4}
	withNb.Neighbours = pairNeighbours(t, &withNb, "pair-a", "pair-b")
	if err := e.LoadSnapshot(ctx, &withNb); err != nil {
		t.Fatal(err)
	}
	if b := e.Blend(); b.Neighbours != 4 {
		t.Fatalf("blend %+v: want the snapshot's η = 4", b)
	}
	if r := top(e); r.Strategy != engine.StrategyALS || r.Items[0].Item != "pair-b" {
		t.Fatalf("with η = 4 pair-a's neighbour leads: %+v", r)
	}
	if r := recommend(t, e, "c1-4", 3, func(r *engine.RecRequest) { r.Exact = true }); r.Items[0].Item == "pair-b" {
		t.Fatalf("a visitor without pair-a does not get its neighbour first: %+v", r)
	}
	e2 := newEngine(t, store, nil)
	if r := top(e2); e2.Blend().Neighbours != 4 || r.Items[0].Item != "pair-b" {
		t.Fatalf("after a restart: blend %+v, %+v", e2.Blend(), r)
	}
	plain.Meta.Version += 2
	if err := e.LoadSnapshot(ctx, &plain); err != nil {
		t.Fatal(err)
	}
	if r := top(e); e.Blend().Neighbours != 0 || r.Items[0].Item == "pair-b" {
		t.Fatalf("a snapshot without neighbours: blend %+v, %+v", e.Blend(), r)
	}
	if e3 := newEngine(t, store, nil); top(e3).Items[0].Item == "pair-b" {
		t.Fatal("after a restart the removed neighbours are back")
	}
}

// BenchmarkRecommendNeighbours: one visitor with 20 items, 100,000 items
// of k = 64 with 50 neighbours each, ranked with the blend (ρ = 0.1)
// without and with the item neighbours (η = 1), exact scoring.
func BenchmarkRecommendNeighbours(b *testing.B) {
	const items, k, nbrs = 100_000, 64, 50
	rng := rand.New(rand.NewPCG(1, 2))
	snap := &model.Snapshot{Meta: model.Meta{Params: testConfig().Params, Version: 1}, Users: model.NewFactors(0, k), Items: model.NewFactors(items, k)}
	snap.Meta.Params.Factors = k
	for i := range snap.Items.Data {
		snap.Items.Data[i] = float32(rng.NormFloat64() * 0.1)
	}
	nb := &model.Neighbours{Ptr: make([]int64, items+1)}
	for i := range items {
		snap.ItemIDs = append(snap.ItemIDs, fmt.Sprintf("item%d", i))
		for range nbrs {
			nb.Idx, nb.Sim = append(nb.Idx, int32(rng.IntN(items))), append(nb.Sim, rng.Float32()+0.01)
		}
		nb.Ptr[i+1] = int64(len(nb.Idx))
	}
	for _, eta := range []float64{0, 1} {
		b.Run(fmt.Sprintf("eta=%v", eta), func(b *testing.B) {
			cfg := testConfig()
			cfg.Params.Factors = k
			e, err := engine.New(context.Background(), cfg, openStore(b, b.TempDir()), nil)
			if err != nil {
				b.Fatal(err)
			}
			s := *snap
			s.Meta.Blend = &model.Blend{Prior: 0.1, Neighbours: eta}
			if eta > 0 {
				s.Neighbours = nb
			}
			if err := e.LoadSnapshot(context.Background(), &s); err != nil {
				b.Fatal(err)
			}
			var evs []signals.Event
			for j := range 20 {
				evs = append(evs, signals.Event{ID: fmt.Sprintf("b%d", j), Type: signals.TypeClick, Visitor: "v", Item: fmt.Sprintf("item%d", rng.IntN(items)), Time: signals.Timestamp{Time: t0.Add(time.Duration(j) * time.Second)}})
			}
			mustHandle(b, e, evs)
			r := engine.RecRequest{Visitor: "v", N: 10, ExcludeSeen: true, Exact: true}
			b.ResetTimer()
			for range b.N {
				if _, err := e.Recommend(context.Background(), r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
