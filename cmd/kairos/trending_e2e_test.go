package main

import (
	"fmt"
	"testing"
	"time"
)

// TestTrendingHalfLifeFlag: --trending-half-life sets how fast the
// trending of visitors without factors forgets. An item three visitors
// clicked five hours ago leads a stranger's trending under the default
// day; the one a single visitor clicked now leads under an hour.
func TestTrendingHalfLifeFlag(t *testing.T) {
	testTrendingHalfLife(t, startServer)
}

// TestTrendingHalfLifeFlagRabbitRedis is the same on RabbitMQ and Redis.
func TestTrendingHalfLifeFlagRabbitRedis(t *testing.T) {
	testTrendingHalfLife(t, startServices)
}

func testTrendingHalfLife(t *testing.T, start func(*testing.T, ...string) *testServer) {
	for _, tc := range []struct {
		flags []string
		want  string
	}{
		{nil, "older"},
		{[]string{"--trending-half-life", "1h"}, "newer"},
	} {
		srv := start(t, tc.flags...)
		now := time.Now().UTC()
		var evs []map[string]any
		for v := range 3 {
			evs = append(evs, clickAt(fmt.Sprintf("o%d", v), fmt.Sprintf("a%d", v), "older", now.Add(-5*time.Hour)))
		}
		evs = append(evs, clickAt("n0", "b0", "newer", now))
		accepted := srv.postAll(t, evs)
		waitFor(t, 30*time.Second, "every event applied", func() bool { return appliedEvents(t, srv) >= accepted })
		var items []string
		waitEvery(t, 10*time.Second, 20*time.Millisecond, fmt.Sprintf("trending led by %s with %v", tc.want, tc.flags), func() bool {
			var strategy string
			strategy, items = srv.recommend(t, "stranger", 2)
			return strategy == "trending" && len(items) == 2 && items[0] == tc.want
		})
	}
}

// TestReplayBuildsTrendingWithTheServersHalfLife: `kairos replay
// --to-store --trending-half-life 1h` builds the store's trending counts
// with the half-life of the server that then loads them: a stranger's
// trending there is the replayed items'.
func TestReplayBuildsTrendingWithTheServersHalfLife(t *testing.T) {
	dir := t.TempDir()
	if code, _, errs := runCmd(t, "archive", "import", "--archive-dir", dir+"/archive", "--synthetic", "sparse,users=60,items=30,clusters=3"); code != 0 {
		t.Fatalf("kairos archive import: exit %d: %s", code, errs)
	}
	if code, _, errs := runCmd(t, "replay", "--archive-dir", dir+"/archive", "--to-store", "--store-data-dir", dir,
		"--redis-url", "", "--trending-half-life", "1h"); code != 0 {
		t.Fatalf("kairos replay: exit %d: %s", code, errs)
	}
	srv := startServer(t, "--data-dir", dir, "--trending-half-life", "1h")
	strategy, items := srv.recommend(t, "stranger", 3)
	if strategy != "trending" || len(items) != 3 {
		t.Fatalf("a stranger after the replay: strategy %s, items %v; want the replayed trending", strategy, items)
	}
}

// TestRestartWithAnotherTrendingHalfLife: kairos serve restarted with
// another --trending-half-life keeps serving the trending it had (its own
// stored counters, decaying with the new half-life from then on), on
// both stores.
func TestRestartWithAnotherTrendingHalfLife(t *testing.T) {
	t.Run("embedded", func(t *testing.T) {
		dir := t.TempDir()
		testRestartTrendingHalfLife(t, func(flags ...string) *testServer {
			return startServer(t, append([]string{"--data-dir", dir}, flags...)...)
		})
	})
	t.Run("rabbitmq-redis", func(t *testing.T) {
		requireServices(t)
		ns, dir := testNamespace(t), t.TempDir()
		testRestartTrendingHalfLife(t, func(flags ...string) *testServer {
			return startServer(t, append([]string{"--amqp-url", amqpURL(), "--redis-url", redisURL(), "--namespace", ns, "--data-dir", dir}, flags...)...)
		})
	})
}

func testRestartTrendingHalfLife(t *testing.T, start func(flags ...string) *testServer) {
	srv := start()
	var evs []map[string]any
	for v := range 6 {
		for j := range v%3 + 1 {
			evs = append(evs, map[string]any{"id": fmt.Sprintf("e%d-%d", v, j), "type": "click", "visitor": fmt.Sprintf("v%d", v), "item": fmt.Sprintf("item%d", j)})
		}
	}
	accepted := srv.postAll(t, evs)
	waitFor(t, 30*time.Second, "every event applied", func() bool { return appliedEvents(t, srv) >= accepted })
	srv.waitTrending(t, "stranger")
	_, before := srv.recommend(t, "stranger", 3)
	srv.stop(t)
	srv = start("--trending-half-life", "168h")
	strategy, after := srv.recommend(t, "stranger", 3)
	if strategy != "trending" || len(after) != 3 || after[0] != before[0] {
		t.Fatalf("after a restart with a week's half-life: strategy %s, items %v; before %v", strategy, after, before)
	}
}
