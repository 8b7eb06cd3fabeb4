package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kairoshq/kairos/eval"
	"github.com/kairoshq/kairos/model"
	"github.com/kairoshq/kairos/offline"
)

// TestRetrainLearnsItemNeighbours: on a log of items seen in groups of
// five (more groups than the model has factors), the retrain of kairos
// serve fits the item neighbours' weight η > 0 on validation, publishes
// the neighbours with the model, and after the swap a new visitor who
// clicks one item of a group gets the four others first.
//
// The half-life is fixed at the shipped minute (its fit would take no
// decay on these ten-minute steps, and plain ALS would then learn the
// groups as well).
func TestRetrainLearnsItemNeighbours(t *testing.T) {
	testRetrainLearnsItemNeighbours(t, startServer(t, "--retrain-every", "24h", "--retrain-min-users", "10", "--retrain-guard-users", "12", "--half-life", "1m"))
}

// TestRetrainLearnsItemNeighboursRabbitRedis is the same on RabbitMQ and
// Redis.
func TestRetrainLearnsItemNeighboursRabbitRedis(t *testing.T) {
	testRetrainLearnsItemNeighbours(t, startServices(t, "--retrain-every", "24h", "--retrain-min-users", "10", "--retrain-guard-users", "12", "--half-life", "1m"))
}

// srv runs with --retrain-guard-users 12: its retrains rank 12 of the
// tail's visitors; the test's own retrain ranks them all.
func testRetrainLearnsItemNeighbours(t *testing.T, srv *testServer) {
	const groups = 240
	evs := groupsBatch("nb", groups, 8, 7)
	accepted := srv.postAll(t, evs)
	waitFor(t, 30*time.Second, "every event applied", func() bool { return appliedEvents(t, srv) >= accepted })
	waitFor(t, 20*time.Second, "the events to be archived", func() bool { return srv.app.archive.LastSeq() > 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	unbounded := *srv.app.retrain.runner
	unbounded.Config.GuardUsers = -1
	res, err := unbounded.Run(ctx, false, false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Params.HalfLife != time.Minute {
		t.Fatalf("retrain half-life %v: --half-life 1m fixes it", res.Params.HalfLife)
	}
	if res.Decision != offline.DecisionPublished || !(res.Blend.Neighbours > 0) || res.Snapshot.Neighbours == nil {
		t.Fatalf("retrain %s (%s), blend %+v, validation %+v, neighbours %v: want published with η > 0 and the neighbours", res.Decision, res.Reason, res.Blend, res.Validation, res.Snapshot != nil && res.Snapshot.Neighbours != nil)
	}
	// The fitted blend was confirmed: on each visitor's next event before
	// the tail, or on validation already when it led the popularity-heavy
	// blend there by eval.ConfirmSkipT (the groups are far ahead of
	// popularity).
	if c := res.BlendConfirm; c == nil || !c.Kept || !(c.T > 2) || c.Users < 100 {
		t.Fatalf("blend confirmation %+v: want kept, t > 2, on the visitors' next events", c)
	}
	// Without them (--item-neighbours=false) the same log gives η = 0 and
	// a snapshot without neighbours.
	off := unbounded
	off.Config.NoItemNeighbours = true
	if r, err := off.Run(ctx, true, false); err != nil || r.Blend.Neighbours != 0 || r.Snapshot == nil || r.Snapshot.Neighbours != nil {
		t.Fatalf("retrain without item neighbours: %v, blend %+v", err, r.Blend)
	}
	// The server's own retrain (--retrain-guard-users 12) ranks an even
	// spread of 12 of the tail's visitors.
	r, err := srv.app.retrain.runner.Run(ctx, true, false)
	if err != nil {
		t.Fatal(err)
	}
	if ev, ok := r.Evaluation("retrained"); !ok || r.TailUsers <= 12 || ev.Users != 12 {
		t.Fatalf("bounded guard: %d tail visitors, retrained evaluated on %+v; want 12 of more", r.TailUsers, ev)
	}
	waitFor(t, 20*time.Second, "the published model to be loaded", func() bool { return srv.app.engine.ModelVersion() == res.Snapshot.Meta.Version })
	if eta := srv.app.engine.Blend().Neighbours; eta != res.Blend.Neighbours {
		t.Fatalf("live η %v, want the snapshot's %v", eta, res.Blend.Neighbours)
	}
	// New visitors, each clicking an item of a group.
	hits := 0
	const probes = 10
	for p := range probes {
		k := p * groups / probes
		visitor := fmt.Sprintf("late-%d", p)
		srv.postEvents(t, []map[string]any{{"id": "late-click-" + visitor, "type": "click", "visitor": visitor, "item": fmt.Sprintf("g%d-0", k)}})
		var items []string
		waitEvery(t, 10*time.Second, 20*time.Millisecond, "the new visitor's click to be learnt (applied asynchronously on RabbitMQ)", func() bool {
			var strategy string
			strategy, items = srv.recommend(t, visitor, 4)
			return strategy != "trending"
		})
		inGroup := 0
		for _, it := range items {
			if strings.HasPrefix(it, fmt.Sprintf("g%d-", k)) {
				inGroup++
			}
		}
		if inGroup == 4 {
			hits++
		} else {
			t.Logf("new visitor %s clicked g%d-0 and got %v", visitor, k, items)
		}
	}
	if hits < probes-1 {
		t.Fatalf("the four other items of the clicked group led for %d of %d new visitors, want at least %d", hits, probes, probes-1)
	}
}

// TestRetrainFitsHalfLife: without --half-life, the retrain of kairos
// serve tries a week and no decay against the shipped minute on
// its validation split; on visits ten minutes apart, where a minute hides
// a visitor's earlier items, one of them wins, and the published model
// and the live engine after the swap run with it.
func TestRetrainFitsHalfLife(t *testing.T) {
	testRetrainFitsHalfLife(t, startServer(t, "--retrain-every", "24h", "--retrain-min-users", "10"))
}

// TestRetrainFitsHalfLifeRabbitRedis is the same on RabbitMQ and Redis.
func TestRetrainFitsHalfLifeRabbitRedis(t *testing.T) {
	testRetrainFitsHalfLife(t, startServices(t, "--retrain-every", "24h", "--retrain-min-users", "10"))
}

func testRetrainFitsHalfLife(t *testing.T, srv *testServer) {
	accepted := srv.postAll(t, groupsBatch("hl", 240, 8, 7))
	waitFor(t, 30*time.Second, "every event applied", func() bool { return appliedEvents(t, srv) >= accepted })
	waitFor(t, 20*time.Second, "the events to be archived", func() bool { return srv.app.archive.LastSeq() > 0 })
	if hl := srv.app.engine.Online().Params().HalfLife; hl != time.Minute {
		t.Fatalf("live half-life %v before the retrain, want the shipped 1m", hl)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := srv.app.retrain.runner.Run(ctx, false, false)
	if err != nil {
		t.Fatal(err)
	}
	fitted := res.Params.HalfLife
	if res.Decision != offline.DecisionPublished || fitted != 0 && fitted < 24*time.Hour || res.Snapshot.Meta.Params.HalfLife != fitted {
		t.Fatalf("retrain %s (%s), half-life %v (snapshot %v): want published with a day or more, or without decay", res.Decision, res.Reason, fitted, res.Snapshot.Meta.Params.HalfLife)
	}
	waitFor(t, 20*time.Second, "the published model to be loaded", func() bool { return srv.app.engine.ModelVersion() == res.Snapshot.Meta.Version })
	if hl := srv.app.engine.Online().Params().HalfLife; hl != fitted {
		t.Fatalf("live half-life %v after the swap, want the fitted %v", hl, fitted)
	}
	// Without --alpha the confidence scale is fitted too: the shipped 20,
	// half or double it, and on the same way while each step wins. A
	// server started on the published model (its retrainer made now)
	// tries them around the shipped value again, not around the model's:
	// no drift over restarts.
	shipped := model.DefaultParams().Alpha
	tried := []float64{shipped}
	for _, x := range eval.FittedAlphaFactors {
		for a, step := shipped*x, 0; step <= eval.MaxAlphaSteps; a, step = a*x, step+1 {
			tried = append(tried, a)
		}
	}
	if a := srv.app.engine.Online().Params().Alpha; !slices.Contains(tried, res.Params.Alpha) || a != res.Params.Alpha {
		t.Fatalf("retrain α %v, live α %v after the swap: want one of %v, the same", res.Params.Alpha, a, tried)
	}
	restarted := newRetrainer(srv.app, prometheus.NewRegistry())
	t.Logf("fitted α %v; the next server's retrains start from %v", res.Params.Alpha, restarted.runner.Config.Params.Alpha)
	if base := restarted.runner.Config.Params.Alpha; base != shipped || !restarted.runner.Config.FitAlpha {
		t.Fatalf("a restarted server's retrains fit α around %v (fit %v); want the shipped %v", base, restarted.runner.Config.FitAlpha, shipped)
	}
}

// groupsBatch returns events of visitors who each view two of 20
// popular items, then four of the five items g<k>-0..4 of one group in a
// random order (perGroup visitors for each of groups), ten minutes apart,
// two hours ago.
func groupsBatch(prefix string, groups, perGroup int, seed uint64) []map[string]any {
	rng := rand.New(rand.NewPCG(seed, 13))
	start := time.Now().Add(-2 * time.Hour)
	var evs []map[string]any
	n := 0
	for k := range groups {
		for v := range perGroup {
			visitor := fmt.Sprintf("%s-%d-%d", prefix, k, v)
			items := []string{fmt.Sprintf("pop-%d", rng.IntN(20)), fmt.Sprintf("pop-%d", rng.IntN(20))}
			for _, i := range rng.Perm(5)[:4] {
				items = append(items, fmt.Sprintf("g%d-%d", k, i))
			}
			for j, it := range items {
				evs = append(evs, map[string]any{"id": fmt.Sprintf("%s-%d", prefix, n), "type": "view", "visitor": visitor, "item": it,
					"ts": start.Add(time.Duration(j)*10*time.Minute + time.Duration(n)*time.Millisecond).UnixMilli()})
				n++
			}
		}
	}
	return evs
}
