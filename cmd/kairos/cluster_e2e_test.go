package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine/redisstore"
	"github.com/kairoshq/kairos/internal/clustertest"
)

// TestServeOnRedisCluster runs kairos serve with KAIROS_REDIS_URL in
// go-redis's cluster form, on the local Redis Cluster (KAIROS_CLUSTER_TESTS=1,
// internal/clustertest) and the single RabbitMQ: events posted over HTTP
// are applied (their visitors' state and marks spread over the cluster's
// masters) and the visitors' recommendations come from their factors; a
// re-sent event changes nothing.
func TestServeOnRedisCluster(t *testing.T) {
	c := clustertest.Get(t)
	c.WaitHealthy(t, time.Minute)
	t.Setenv("KAIROS_REDIS_URL", c.RedisURL) // requireServices and the clean-up use it
	requireServices(t)
	ns := testNamespace(t)
	srv := startServer(t, "--amqp-url", amqpURL(), "--redis-url", redisURL(), "--namespace", ns, "--redis-wait-replicas", "1")
	if rs, ok := srv.app.store.(*redisstore.Store); !ok || !rs.Cluster() {
		t.Fatalf("the store of kairos serve with a cluster URL is a %T, not on the cluster", srv.app.store)
	}
	base := clusterBatch("cl", 3, 30, 12, 12, 1)
	srv.postAll(t, base)
	waitFor(t, 20*time.Second, "the base events to be learnt", func() bool {
		s, _ := srv.recommend(t, "cl-c0-0", 5)
		return s == "als"
	})
	visitor := "fresh-cluster"
	srv.waitTrending(t, visitor)
	evs := []map[string]any{
		{"id": visitor + "-1", "type": "click", "visitor": visitor, "item": "c2-item1"},
		{"id": visitor + "-2", "type": "like", "visitor": visitor, "item": "c2-item4"},
	}
	srv.postEvents(t, evs)
	waitFor(t, 20*time.Second, "recommendations from the visitor's factors", func() bool {
		s, items := srv.recommend(t, visitor, 5)
		return s == "als" && len(items) == 5 && !slices.ContainsFunc(items, func(it string) bool { return !strings.HasPrefix(it, "c2-") })
	})
	vs, err := srv.app.store.Visitors(t.Context(), []string{visitor})
	if err != nil {
		t.Fatal(err)
	}
	if len(vs[0].History) != 2 || vs[0].Factors == nil {
		t.Fatalf("stored visitor: %d events, factors %v; want 2 events and factors", len(vs[0].History), vs[0].Factors != nil)
	}
	// The same events again: recognised as seen, the history unchanged.
	srv.postEvents(t, evs)
	srv.postEvents(t, []map[string]any{{"id": visitor + "-3", "type": "view", "visitor": visitor, "item": "c2-item2"}})
	waitFor(t, 20*time.Second, "the third event", func() bool {
		vs, err := srv.app.store.Visitors(t.Context(), []string{visitor})
		return err == nil && len(vs[0].History) >= 3
	})
	vs, _ = srv.app.store.Visitors(t.Context(), []string{visitor})
	if len(vs[0].History) != 3 {
		t.Fatalf("history of %d events after a re-sent batch and one new event, want 3", len(vs[0].History))
	}
}
