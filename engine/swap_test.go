package engine_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/model"
	"github.com/kairoshq/kairos/offline"
	"github.com/kairoshq/kairos/offline/archive"
	"github.com/kairoshq/kairos/signals"
)

// TestHotSwapWhileEventsFlow retrains from the archive, keeps feeding
// events and serving recommendations while the engine loads the new model,
// and checks that an event after the cut-off is reflected after the swap.
func TestHotSwapWhileEventsFlow(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store := openStore(t, dir)
	e := newEngine(t, store, nil)
	arc := attachArchive(t, e)
	mustHandle(t, e, clusterEvents(3, 20, 10, 10, 11))
	cfg := testConfig()
	res, err := offline.Retrain(ctx, arc, nil, offline.RetrainConfig{Params: cfg.Params})
	if err != nil {
		t.Fatal(err)
	}
	// After the cut-off: a brand-new item clicked by cluster-1 visitors.
	var late []signals.Event
	for v := range 8 {
		late = append(late, signals.Event{ID: fmt.Sprintf("late-%d", v), Type: signals.TypeClick, Visitor: fmt.Sprintf("c1-%d", v),
			Item: "c1-late", Time: signals.Timestamp{Time: t0.Add(3 * time.Hour)}})
	}
	mustHandle(t, e, late)

	// Serve and ingest while the snapshot loads; every request records
	// when it started and how long it took.
	type sample struct {
		at  time.Time
		lat time.Duration
	}
	var errs atomic.Int64
	var samples []sample
	var mu sync.Mutex
	stop := make(chan struct{})
	var wg sync.WaitGroup
	loopUntil(&wg, stop, func(i int) {
		start := time.Now()
		if _, err := e.Recommend(ctx, engine.RecRequest{Visitor: fmt.Sprintf("c%d-%d", i%3, i%20), N: 10}); err != nil {
			errs.Add(1)
		}
		mu.Lock()
		samples = append(samples, sample{start, time.Since(start)})
		mu.Unlock()
	})
	loopUntil(&wg, stop, func(i int) {
		ev := signals.Event{ID: fmt.Sprintf("flow-%d", i), Type: signals.TypeView, Visitor: fmt.Sprintf("c2-%d", i%20),
			Item: fmt.Sprintf("c2-item%d", i%10), Time: signals.Timestamp{Time: t0.Add(4 * time.Hour)}}
		if err := e.Handle(ctx, []signals.Event{ev}); err != nil {
			errs.Add(1)
		}
	})
	time.Sleep(50 * time.Millisecond)
	swapStart := time.Now()
	if err := e.LoadSnapshot(ctx, res.Snapshot); err != nil {
		t.Fatal(err)
	}
	swapEnd := time.Now()
	time.Sleep(50 * time.Millisecond)
	close(stop)
	wg.Wait()
	if n := errs.Load(); n > 0 {
		t.Fatalf("%d errors while swapping", n)
	}
	var before, during []time.Duration
	for _, s := range samples {
		switch {
		case s.at.Before(swapStart):
			before = append(before, s.lat)
		case s.at.Before(swapEnd):
			during = append(during, s.lat)
		}
	}
	p99 := func(d []time.Duration) time.Duration {
		slices.Sort(d)
		return d[len(d)*99/100]
	}
	if len(before) > 100 && len(during) > 100 {
		t.Logf("swap took %v; recommendation p99 before it %v (%d requests), during it %v (%d requests)",
			swapEnd.Sub(swapStart), p99(before), len(before), p99(during), len(during))
	}

	// The post-cut-off item has factors in the new model, near cluster 1.
	sim, err := e.Similar(ctx, "c1-late", 5)
	if err != nil {
		t.Fatalf("the item seen only after the cut-off is unknown to the new model: %v", err)
	}
	for _, r := range sim {
		if !strings.HasPrefix(r.Item, "c1-") {
			t.Fatalf("similar to c1-late: %v", sim)
		}
	}
	// A visitor's factors are folded in against the new model.
	if resp := recommend(t, e, "c1-3", 5); resp.Strategy != engine.StrategyALS || !strings.HasPrefix(resp.Items[0].Item, "c1-") {
		t.Fatalf("after the swap c1-3 gets %+v", resp)
	}
	// A restart keeps the new model: the swap persisted every item state
	// (item nudges made after it are saved by the running engine's
	// periodic state save, which this test does not run).
	e2 := newEngine(t, store, nil)
	if _, err := e2.Similar(ctx, "c1-late", 5); err != nil {
		t.Fatalf("after a restart the new model's item is missing: %v", err)
	}
	if got := recommend(t, e2, "c0-4", 3); got.Strategy != engine.StrategyALS || !strings.HasPrefix(got.Items[0].Item, "c0-") {
		t.Fatalf("after a restart c0-4 gets %+v", got)
	}
}

// TestVisitorFactorsAfterSwap: stored factors carry the model generation,
// but VisitorFactors — what offers and rules read — always answers k
// factors of the live model: before a swap, after it (folded in again
// from the history), and for a device linked to a user (the user's).
func TestVisitorFactorsAfterSwap(t *testing.T) {
	ctx := context.Background()
	store := openStore(t, t.TempDir())
	e := newEngine(t, store, nil)
	arc := attachArchive(t, e)
	mustHandle(t, e, clusterEvents(2, 10, 8, 8, 3))
	k := testConfig().Params.Factors
	check := func(when, visitor, user string) []float32 {
		t.Helper()
		x, err := e.VisitorFactors(ctx, visitor, user)
		if err != nil {
			t.Fatal(err)
		}
		if len(x) != k {
			t.Fatalf("%s: VisitorFactors(%q, %q) has %d factors, want %d", when, visitor, user, len(x), k)
		}
		return x
	}
	before := check("before the swap", "c0-1", "")
	res, err := offline.Retrain(ctx, arc, nil, offline.RetrainConfig{Params: testConfig().Params})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.LoadSnapshot(ctx, res.Snapshot); err != nil {
		t.Fatal(err)
	}
	mustHandle(t, e, []signals.Event{{ID: "late", Type: signals.TypeClick, Visitor: "c0-1", Item: "c0-item1", Time: signals.Timestamp{Time: t0.Add(2 * time.Hour)}}})
	if stored := visitor(t, store, "c0-1").Factors; len(stored) != k+1 {
		t.Fatalf("stored factors after a swap: %d floats, want k+1 = %d (with the generation)", len(stored), k+1)
	}
	after := check("after the swap", "c0-1", "")
	if slices.Equal(before, after) {
		t.Fatal("the factors did not change with the new model and event")
	}
	if x, err := e.VisitorFactors(ctx, "nobody", ""); err != nil || x != nil {
		t.Fatalf("unknown visitor: %v, %v; want nil, nil", x, err)
	}
	mustHandle(t, e, []signals.Event{{ID: "id-1", Type: signals.TypeIdentify, Visitor: "c1-2", User: "ann", Time: signals.Timestamp{Time: t0.Add(3 * time.Hour)}}})
	dev := check("a device linked to a user", "c1-2", "")
	if byUser := check("by user", "phone", "ann"); !slices.Equal(dev, byUser) {
		t.Fatalf("a linked device's factors %v differ from its user's %v", dev, byUser)
	}
}

// TestSnapshotPriorRanksKnownVisitorsWithPopularity loads a snapshot that
// carries a popularity prior: visitors past --blend-below are then ranked
// by their fold-in and popularity together (strategy still als), the
// prior survives a restart, and without it the fold-in alone ranks.
func TestSnapshotPriorRanksKnownVisitorsWithPopularity(t *testing.T) {
	store := openStore(t, t.TempDir())
	e := newEngine(t, store, nil)
	arc := attachArchive(t, e)
	evs := clusterEvents(3, 20, 10, 10, 11)
	// A hit of clusters 0 and 2, which cluster 1 never saw.
	for _, c := range []int{0, 2} {
		for v := range 20 {
			evs = append(evs, signals.Event{ID: fmt.Sprintf("hit-%d-%d", c, v), Type: signals.TypeClick, Visitor: fmt.Sprintf("c%d-%d", c, v),
				Item: "hit", Time: signals.Timestamp{Time: t0.Add(50 * time.Minute)}})
		}
	}
	mustHandle(t, e, evs)
	top := func(e *engine.Engine) engine.RecResponse {
		return recommend(t, e, "c1-3", 3, func(r *engine.RecRequest) { r.Exact = true })
	}
	if r := top(e); r.Strategy != engine.StrategyALS || r.Items[0].Item == "hit" || !strings.HasPrefix(r.Items[0].Item, "c1-") {
		t.Fatalf("without a prior: %+v", r)
	}
	loadRetrained(t, e, arc, model.Blend{Prior: 0.9, Kappa: 2})
	if b := e.Blend(); b.Prior != 0.9 || b.Kappa != 2 || b.Trending != testConfig().Defaults().Blend.Trending || e.ModelGeneration() != 1 {
		t.Fatalf("blend %+v, generation %d: want the snapshot's ρ and κ, the configured τ, generation 1", b, e.ModelGeneration())
	}
	if r := top(e); r.Strategy != engine.StrategyALS || r.Items[0].Item != "hit" {
		t.Fatalf("with ρ = 0.9 the trending hit leads: %+v", r)
	}
	e2 := newEngine(t, store, nil)
	if b := e2.Blend(); b.Prior != 0.9 || e2.ModelGeneration() != 1 {
		t.Fatalf("after a restart: blend %+v, generation %d", b, e2.ModelGeneration())
	}
}

// TestPriorRanksKnownVisitorsWithAllTimePopularity: the prior of a
// visitor with factors is the items' all-time popularity (distinct
// visitors, as the retrain fitted it), not the 24-hour trending that
// ranks visitors without factors. A classic that forty visitors clicked a
// month ago leads a known visitor's recommendations under a
// popularity-heavy prior, while a new item that five visitors clicked
// today leads trending.
func TestPriorRanksKnownVisitorsWithAllTimePopularity(t *testing.T) {
	store := openStore(t, t.TempDir())
	e := newEngine(t, store, nil)
	arc := attachArchive(t, e)
	evs := clusterEvents(3, 20, 10, 10, 11)
	for c := range 2 {
		for v := range 20 {
			evs = append(evs, signals.Event{ID: fmt.Sprintf("classic-%d-%d", c, v), Type: signals.TypeClick, Visitor: fmt.Sprintf("c%d-%d", 2*c, v),
				Item: "classic", Time: signals.Timestamp{Time: t0.Add(50 * time.Minute)}})
		}
	}
	mustHandle(t, e, evs)
	loadRetrained(t, e, arc, model.Blend{Prior: 0.9, Kappa: 2})
	month := t0.Add(30 * 24 * time.Hour)
	var fresh []signals.Event
	for v := range 5 {
		fresh = append(fresh, signals.Event{ID: fmt.Sprintf("new-%d", v), Type: signals.TypeClick, Visitor: fmt.Sprintf("c0-%d", v),
			Item: "new", Time: signals.Timestamp{Time: month.Add(time.Duration(v) * time.Minute)}})
	}
	mustHandle(t, e, fresh)
	exact := func(r *engine.RecRequest) { r.Exact = true }
	if r := recommend(t, e, "stranger", 3, exact); r.Strategy != engine.StrategyTrending || len(r.Items) == 0 || r.Items[0].Item != "new" {
		t.Fatalf("a visitor without factors: %+v; want trending led by today's new item", r)
	}
	for _, v := range []string{"c1-3", "c1-7"} {
		r := recommend(t, e, v, 3, exact)
		if len(r.Items) == 0 || r.Items[0].Item != "classic" || slices.ContainsFunc(r.Items, func(it engine.Rec) bool { return it.Item == "new" }) {
			t.Fatalf("known visitor %s under ρ = 0.9: %+v; want the all-time classic first and not the item five visitors saw today", v, r)
		}
	}
}

// loadRetrained retrains from arc and loads the snapshot into e with the
// popularity prior b instead of the fitted one.
func loadRetrained(t *testing.T, e *engine.Engine, arc *archive.Archive, b model.Blend) {
	t.Helper()
	ctx := context.Background()
	res, err := offline.Retrain(ctx, arc, nil, offline.RetrainConfig{Params: testConfig().Params})
	if err != nil {
		t.Fatal(err)
	}
	res.Snapshot.Meta.Blend = &b
	if err := e.LoadSnapshot(ctx, res.Snapshot); err != nil {
		t.Fatal(err)
	}
}

// attachArchive opens an archive in a temporary directory, closed on
// cleanup, as e's archive and retrain tail.
func attachArchive(t *testing.T, e *engine.Engine) *archive.Archive {
	t.Helper()
	arc, err := archive.Open(context.Background(), archive.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { arc.Close() })
	e.SetArchive(arc, arc)
	e.SetTail(offline.Tail{Archive: arc})
	return arc
}

// loopUntil calls fn(0), fn(1), … in a goroutine of wg until stop is
// closed.
func loopUntil(wg *sync.WaitGroup, stop <-chan struct{}, fn func(i int)) {
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			fn(i)
		}
	})
}

// A model retrained from the cluster's history numbers its cut in the
// history's records, not in this engine's archive: the engine replays its
// archive's events after the snapshot's Cutoff by time instead.
func TestHistoryCutReplaysByTime(t *testing.T) {
	for _, historyCut := range []bool{true, false} {
		t.Run(fmt.Sprintf("history_cut=%v", historyCut), func(t *testing.T) {
			ctx := context.Background()
			store := openStore(t, t.TempDir())
			e := newEngine(t, store, nil)
			arc := attachArchive(t, e)
			mustHandle(t, e, clusterEvents(3, 20, 10, 10, 11))
			res, err := offline.Retrain(ctx, arc, nil, offline.RetrainConfig{Params: testConfig().Params, HistoryCut: historyCut})
			if err != nil {
				t.Fatal(err)
			}
			if res.Snapshot.Meta.HistoryCut != historyCut {
				t.Fatalf("snapshot HistoryCut %v, want %v", res.Snapshot.Meta.HistoryCut, historyCut)
			}
			// The history's record numbers run far past this archive's.
			res.Snapshot.Meta.ArchiveSeq = 1 << 40
			var late []signals.Event
			for v := range 8 {
				late = append(late, signals.Event{ID: fmt.Sprintf("late-%d", v), Type: signals.TypeClick, Visitor: fmt.Sprintf("c1-%d", v),
					Item: "c1-late", Time: signals.Timestamp{Time: res.Snapshot.Meta.Cutoff.Add(time.Minute)}})
			}
			mustHandle(t, e, late)
			if err := e.LoadSnapshot(ctx, res.Snapshot); err != nil {
				t.Fatal(err)
			}
			sim, err := e.Similar(ctx, "c1-late", 5)
			if !historyCut {
				if err == nil && len(sim) > 0 {
					t.Fatalf("a cut by record number past the archive replayed the late events: similar %v", sim)
				}
				return
			}
			if err != nil {
				t.Fatalf("the events after the cut-off were not replayed: %v", err)
			}
			for _, r := range sim {
				if !strings.HasPrefix(r.Item, "c1-") {
					t.Fatalf("similar to c1-late: %v", sim)
				}
			}
		})
	}
}

// TestSlimSnapshotLearnsLikeTheFullOne loads a retrain's snapshot into
// one engine and its slim form (the users' Gram instead of their rows:
// what offline.Publish publishes) into another fed the same events: both
// have the same XᵀX, and the item updates of the next batch are the same.
func TestSlimSnapshotLearnsLikeTheFullOne(t *testing.T) {
	ctx := context.Background()
	events := clusterEvents(2, 10, 8, 8, 3)
	full := newEngine(t, openStore(t, t.TempDir()), nil)
	slim := newEngine(t, openStore(t, t.TempDir()), nil)
	arc := attachArchive(t, full)
	mustHandle(t, full, events)
	mustHandle(t, slim, events)
	res, err := offline.Retrain(ctx, arc, nil, offline.RetrainConfig{Params: testConfig().Params})
	if err != nil {
		t.Fatal(err)
	}
	if err := full.LoadSnapshot(ctx, res.Snapshot); err != nil {
		t.Fatal(err)
	}
	if err := slim.LoadSnapshot(ctx, res.Snapshot.Slim()); err != nil {
		t.Fatal(err)
	}
	if a, b := full.Online().XtX(), slim.Online().XtX(); !slices.Equal(a, b) || slices.Max(a) == 0 {
		t.Fatalf("XᵀX after loading the slim snapshot differs from the full one's (or is zero): %v vs %v", b[:3], a[:3])
	}
	late := []signals.Event{
		{ID: "late-1", Type: signals.TypeClick, Visitor: "c0-1", Item: "c1-item2", Time: signals.Timestamp{Time: t0.Add(2 * time.Hour)}},
		{ID: "late-2", Type: signals.TypeLike, Visitor: "c1-3", Item: "c0-item4", Time: signals.Timestamp{Time: t0.Add(2 * time.Hour)}},
	}
	mustHandle(t, full, late)
	mustHandle(t, slim, late)
	_, idsA, a := full.LiveItems()
	_, idsB, b := slim.LiveItems()
	if !slices.Equal(idsA, idsB) || !slices.Equal(a.Data, b.Data) {
		t.Fatal("item factors after the same batch differ between the full and the slim snapshot")
	}
}
