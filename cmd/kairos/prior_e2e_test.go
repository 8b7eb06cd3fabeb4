package main

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// TestKnownVisitorPriorIsAllTimePopularity: through kairos serve (the
// default --blend-below), a visitor with a few events (ranked by the
// blend of the fold-in and popularity) gets first the item forty
// visitors clicked a month ago, not the one five visitors clicked today,
// which leads the trending that a visitor without events gets.
func TestKnownVisitorPriorIsAllTimePopularity(t *testing.T) {
	testKnownVisitorPrior(t, startServer(t, "--blend-below", "20"))
}

// TestKnownVisitorPriorIsAllTimePopularityRabbitRedis is the same on
// RabbitMQ and Redis.
func TestKnownVisitorPriorIsAllTimePopularityRabbitRedis(t *testing.T) {
	testKnownVisitorPrior(t, startServices(t, "--blend-below", "20"))
}

func testKnownVisitorPrior(t *testing.T, srv *testServer) {
	now := time.Now().UTC()
	month := now.Add(-30 * 24 * time.Hour)
	var evs []map[string]any
	for v := range 40 {
		at := month.Add(time.Duration(v) * time.Minute)
		visitor := fmt.Sprintf("old-%d", v)
		evs = append(evs, clickAt("classic-"+visitor, visitor, "classic", at),
			clickAt("filler-"+visitor, visitor, fmt.Sprintf("filler-%d", v%5), at.Add(time.Second)))
	}
	for v := range 5 {
		visitor := fmt.Sprintf("today-%d", v)
		evs = append(evs, clickAt("new-"+visitor, visitor, "new", now.Add(-time.Duration(v)*time.Minute)))
	}
	accepted := srv.postAll(t, evs)
	waitFor(t, 30*time.Second, "every event applied", func() bool { return appliedEvents(t, srv) >= accepted })
	waitEvery(t, 10*time.Second, 50*time.Millisecond, "trending to be led by today's item", func() bool {
		strategy, items := srv.recommend(t, "stranger", 3)
		return strategy == "trending" && len(items) > 0 && items[0] == "new"
	})
	srv.postEvents(t, []map[string]any{clickAt("k-1", "known", "filler-1", now), clickAt("k-2", "known", "filler-2", now.Add(time.Second))})
	var strategy string
	var items []string
	waitEvery(t, 10*time.Second, 20*time.Millisecond, "the known visitor's clicks to be learnt", func() bool {
		strategy, items = srv.recommend(t, "known", 3)
		return strategy != "trending"
	})
	if strategy != "blend" || len(items) == 0 || items[0] != "classic" || slices.Contains(items, "new") {
		t.Fatalf("a visitor with two clicks: strategy %s, items %v; want the blend led by the month-old classic, without today's item", strategy, items)
	}
}
