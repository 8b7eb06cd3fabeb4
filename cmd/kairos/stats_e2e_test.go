package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"
)

// TestStatsCoalescedEmbedded and …RabbitRedis: with the writes of the
// event counters and of the attention heat coalesced (--stats-flush, here
// an hour, so that only the reads and the shutdown write them), a read
// right after the events were applied sees them, and what is held back
// when the server stops is written then, not lost.
func TestStatsCoalescedEmbedded(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	testStatsCoalesced(t, func() *testServer { return startServer(t, "--data-dir", dir, "--stats-flush", "1h") })
}

func TestStatsCoalescedRabbitRedis(t *testing.T) {
	requireServices(t)
	ns := testNamespace(t)
	testStatsCoalesced(t, func() *testServer {
		return startServer(t, "--amqp-url", amqpURL(), "--redis-url", redisURL(), "--namespace", ns, "--data-dir", t.TempDir(), "--stats-flush", "1h")
	})
}

func testStatsCoalesced(t *testing.T, start func() *testServer) {
	srv := start()
	n := 0
	views := func(srv *testServer, k int) {
		t.Helper()
		var evs []map[string]any
		for range k {
			evs = append(evs, map[string]any{"id": fmt.Sprintf("sv-%d", n), "type": "view", "visitor": fmt.Sprintf("sv%d", n%4), "item": "sku-1"})
			n++
		}
		if k > 0 {
			srv.postEvents(t, evs)
		}
		waitFor(t, 20*time.Second, "the views to be applied", func() bool {
			return metricValue(srv.metrics(t), "kairos_engine_events_applied_total ") >= float64(n) // one server: every view so far
		})
	}
	counted := func(srv *testServer) int64 { t.Helper(); return viewsCounted(t, srv, "sku-1") }
	views(srv, 5)
	if got := counted(srv); got != 5 {
		t.Fatalf("read after 5 applied views: %d", got)
	}
	heat := func(srv *testServer) float64 {
		t.Helper()
		var out struct {
			TotalMs float64 `json:"total_ms"`
		}
		if err := json.Unmarshal(srv.secretDo(t, http.MethodGet, "/v1/pages/attention?page=https%3A%2F%2Fshop.example%2Fp%2F1", http.StatusOK), &out); err != nil {
			t.Fatal(err)
		}
		return out.TotalMs
	}
	srv.postEvents(t, []map[string]any{{"id": "dw-1", "type": "dwell", "visitor": "sv0", "item": "sku-1", "page": "https://shop.example/p/1", "element": "item:sku-1", "value": 1500}})
	n++
	views(srv, 3)
	if got := heat(srv); got != 1500 {
		t.Fatalf("attention read after the dwell was applied: %v ms, want 1500", got)
	}
	srv.postEvents(t, []map[string]any{{"id": "dw-2", "type": "dwell", "visitor": "sv1", "item": "sku-1", "page": "https://shop.example/p/1", "element": "item:sku-1", "value": 500}})
	n++
	views(srv, 0) // waits until the dwell is applied
	srv.stop(t)   // writes the views and the dwell held back
	srv = start()
	if got := counted(srv); got != 8 {
		t.Fatalf("after a restart: %d views counted, want 8 (the 3 held back at the stop written then)", got)
	}
	if got := heat(srv); got != 2000 {
		t.Fatalf("attention after a restart: %v ms, want 2000 (the 500 held back at the stop written then)", got)
	}
}

// viewsCounted is the number of views of item in its daily stats.
func viewsCounted(t *testing.T, srv *testServer, item string) int64 {
	t.Helper()
	var out struct {
		Points []struct {
			Counts map[string]int64 `json:"counts"`
		} `json:"points"`
	}
	if err := json.Unmarshal(srv.secretDo(t, http.MethodGet, "/v1/stats/items/"+item+"?resolution=1d", http.StatusOK), &out); err != nil {
		t.Fatal(err)
	}
	var views int64
	for _, p := range out.Points {
		views += p.Counts["view"]
	}
	return views
}
