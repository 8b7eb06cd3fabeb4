package main

import (
	"fmt"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/kairoshq/kairos/internal/testutil"
)

// TestRotationEmbedded and TestRotationRabbitRedis run kairos serve with a
// settable clock: items served to a visitor drop down on the next request
// (rotation=30m) and come back once the clock has moved past the
// rotation time; pages (next tokens) never repeat an item and together
// hold what one long list holds.
func TestRotationEmbedded(t *testing.T) {
	clock := testutil.NewClock(time.Now())
	testRotation(t, clock, startServerWith(t, func(c *serveConfig) { c.Now = clock.Now }))
}

func TestRotationRabbitRedis(t *testing.T) {
	requireServices(t)
	clock := testutil.NewClock(time.Now())
	ns := testNamespace(t)
	testRotation(t, clock, startServerWith(t, func(c *serveConfig) { c.Now = clock.Now },
		"--amqp-url", amqpURL(), "--redis-url", redisURL(), "--namespace", ns))
}

func recsOf(t *testing.T, srv *testServer, query string) (items []string, next string) {
	t.Helper()
	out := secretGet(t, srv.base+"/v1/recommendations?"+query)
	for _, it := range out["items"].([]any) {
		items = append(items, it.(map[string]any)["item"].(string))
	}
	next, _ = out["next"].(string)
	return items, next
}

func testRotation(t *testing.T, clock *testutil.Clock, srv *testServer) {
	base := clusterBatch("rb", 3, 20, 12, 12, 11)
	srv.postAll(t, base)
	const v = "rotating-visitor"
	var evs []map[string]any
	for j := range 3 {
		evs = append(evs, map[string]any{"id": fmt.Sprintf("%s-%d", v, j), "type": "click", "visitor": v, "item": fmt.Sprintf("c1-item%d", j)})
	}
	srv.postEvents(t, evs)
	waitFor(t, 15*time.Second, "the visitor's own recommendations", func() bool {
		s, _ := srv.recommend(t, v, 3)
		return s == "als"
	})

	first, _ := recsOf(t, srv, "visitor="+v+"&n=3&rotation=30m")
	clock.Add(time.Minute)
	second, _ := recsOf(t, srv, "visitor="+v+"&n=3&rotation=30m")
	t.Logf("first %v; a minute later %v", first, second)
	if slices.ContainsFunc(second, func(it string) bool { return slices.Contains(first, it) }) {
		t.Errorf("a minute later %v holds items of %v, served then: not demoted", second, first)
	}
	clock.Add(30 * time.Minute) // 31 minutes after the first request, 30 after the second
	third, _ := recsOf(t, srv, "visitor="+v+"&n=3&rotation=30m")
	t.Logf("31 minutes later %v", third)
	if !slices.Equal(third, first) {
		t.Errorf("after the rotation time: %v, want the first list %v back", third, first)
	}
	// 20 minutes into the rotation of the third list its items fade back
	// (multiplier 2/3): in a list of 10, below items the ranker puts after
	// them, but not cut.
	clock.Add(20 * time.Minute)
	fading, _ := recsOf(t, srv, "visitor="+v+"&n=10&rotation=30m")
	t.Logf("20 minutes later, 10 items: %v", fading)
	if i := slices.Index(fading, first[0]); i < 1 || slices.Index(fading, first[2]) < 3 {
		t.Errorf("%v, served 20 minutes ago, in %v: want them demoted below the top but in the list", first, fading)
	}

	// Paging: pages of 4 until the end, without a repeat, hold the long list.
	all, _ := recsOf(t, srv, "visitor="+v+"&n=100&rotation=0")
	seen := map[string]bool{}
	q := "visitor=" + v + "&n=4&rotation=0"
	pages := 0
	for {
		items, next := recsOf(t, srv, q)
		pages++
		for _, it := range items {
			if seen[it] {
				t.Fatalf("page %d repeats %s", pages, it)
			}
			seen[it] = true
		}
		if next == "" || pages > 40 {
			break
		}
		q = "visitor=" + v + "&n=4&page=" + url.QueryEscape(next)
	}
	t.Logf("%d pages of 4 hold %d items; one list of 100 holds %d", pages, len(seen), len(all))
	if len(seen) != len(all) || slices.ContainsFunc(all, func(it string) bool { return !seen[it] }) {
		t.Errorf("pages hold %d items, the long list %d: %v", len(seen), len(all), all)
	}
}
