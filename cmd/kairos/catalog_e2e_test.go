package main

import (
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestDeletedItemStaysDeletedEmbedded and …RabbitRedis: an item deleted
// from the catalog is not recommended again, though visitors keep
// clicking it, by a server started after the deletion too — the restart
// of a single server, or a replica joining later — until it is added
// back.
func TestDeletedItemStaysDeletedEmbedded(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	testDeletedItemStaysDeleted(t, func() *testServer { return startServer(t, "--data-dir", dir) })
}

func TestDeletedItemStaysDeletedRabbitRedis(t *testing.T) {
	requireServices(t)
	ns := testNamespace(t)
	testDeletedItemStaysDeleted(t, func() *testServer {
		return startServer(t, "--amqp-url", amqpURL(), "--redis-url", redisURL(), "--namespace", ns, "--data-dir", t.TempDir())
	})
}

func testDeletedItemStaysDeleted(t *testing.T, start func() *testServer) {
	srv := start()
	srv.secretJSON(t, "PUT", "/v1/items/gone-1", `{"title":"Gone","category":"x","active":true}`, http.StatusCreated)
	applied := 0.0
	clicks := func(srv *testServer, round string) {
		t.Helper()
		var evs []map[string]any
		for i := range 15 {
			for _, item := range []string{"gone-1", "stay-1"} {
				evs = append(evs, map[string]any{"id": fmt.Sprintf("%s-%s-%d", round, item, i), "type": "click", "visitor": fmt.Sprintf("%s-v%d", round, i), "item": item})
			}
		}
		srv.postEvents(t, evs)
		applied += float64(len(evs))
		waitFor(t, 20*time.Second, "the clicks to be applied", func() bool {
			return metricValue(srv.metrics(t), "kairos_engine_events_applied_total ") >= applied
		})
	}
	trending := func(srv *testServer, visitor string) []string {
		t.Helper()
		s, items := srv.recommend(t, visitor, 10)
		if s != "trending" {
			t.Fatalf("a new visitor got strategy %s, want trending", s)
		}
		return items
	}
	clicks(srv, "a")
	if got := trending(srv, "new-1"); !slices.Contains(got, "gone-1") || !slices.Contains(got, "stay-1") {
		t.Fatalf("before the deletion: %v, want gone-1 and stay-1", got)
	}
	srv.secretDo(t, "DELETE", "/v1/items/gone-1", http.StatusNoContent)
	srv.secretDo(t, "DELETE", "/v1/items/gone-1", http.StatusNotFound) // a retry keeps the tombstone
	clicks(srv, "b")
	if got := trending(srv, "new-2"); slices.Contains(got, "gone-1") {
		t.Fatalf("the deleted item recommended: %v", got)
	}
	srv.stop(t)
	srv = start() // a restart, or a replica started after the deletion
	applied = 0   // the counter starts again
	clicks(srv, "c")
	if got := trending(srv, "new-3"); slices.Contains(got, "gone-1") || !slices.Contains(got, "stay-1") {
		t.Fatalf("after a restart: %v, want stay-1 without the deleted gone-1", got)
	}
	srv.secretJSON(t, "PUT", "/v1/items/gone-1", `{"title":"Back","category":"x","active":true}`, http.StatusCreated)
	if got := trending(srv, "new-4"); !slices.Contains(got, "gone-1") {
		t.Fatalf("added back: %v, want gone-1", got)
	}
}
