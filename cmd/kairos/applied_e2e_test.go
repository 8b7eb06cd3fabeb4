package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"
)

// TestWaitForAppliedEmbedded runs waitScenario through kairos serve on
// the embedded store.
func TestWaitForAppliedEmbedded(t *testing.T) { waitScenario(t, startServer(t)) }

// TestWaitForAppliedRabbitRedis runs waitScenario on RabbitMQ and Redis,
// where the engine applies events after the broker has confirmed them:
// without wait= the answer comes before.
func TestWaitForAppliedRabbitRedis(t *testing.T) { waitScenario(t, startServices(t)) }

// waitScenario: a site's back end posts events and links a device to a
// user with wait=, then at once asks the user's recommendations on
// another device: every event is reported applied, and the answer
// already excludes the items the device clicked (the user's state is the
// union), which a read before the link was made would not.
func waitScenario(t *testing.T, srv *testServer) {
	base := clusterBatch("w", 2, 10, 8, 6, 3)
	out := srv.secretJSON(t, http.MethodPost, "/v1/events?wait=10s", mustJSON(t, base), http.StatusOK)
	if out["applied"] != float64(len(base)) {
		t.Fatalf("applied %v of %d events: %v", out["applied"], len(base), out)
	}
	var clicks []map[string]any
	var clicked []string
	for i := range 4 {
		item := fmt.Sprintf("c0-item%d", i)
		clicks = append(clicks, click(fmt.Sprintf("zed-click-%d", i), "zed-phone", item))
		clicked = append(clicked, item)
	}
	if out := srv.secretJSON(t, http.MethodPost, "/v1/events?wait=10s", mustJSON(t, clicks), http.StatusOK); out["applied"] != float64(len(clicks)) {
		t.Fatalf("the phone's clicks: %v", out)
	}
	out = srv.secretJSON(t, http.MethodPost, "/v1/identify?wait=10s", `{"anonymous_id":"zed-phone","user_id":"zed"}`, http.StatusOK)
	if out["applied"] != true {
		t.Fatalf("identify: %v", out)
	}
	strategy, items := srv.recommendUser(t, "zed-laptop", "zed", 16)
	if strategy == "trending" || strategy == "catalog" {
		t.Errorf("zed's recommendations right after the link: strategy %q, want the user's own", strategy)
	}
	for _, it := range clicked {
		if slices.Contains(items, it) {
			t.Errorf("zed's recommendations right after the link hold %s, clicked on the phone: %v", it, items)
		}
	}
	// Events already applied are reported at once; a duplicate too.
	if out := srv.secretJSON(t, http.MethodPost, "/v1/events?wait=1s", mustJSON(t, clicks[:1]), http.StatusOK); out["applied"] != 1.0 {
		t.Fatalf("a duplicate: %v", out)
	}
}

// mustJSON is v as JSON.
func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestIDsArePerVisitorEmbedded and TestIDsArePerVisitorRabbitRedis: an
// event id is de-duplicated per visitor on both stores: three visitors'
// views that share the id "1" are all counted, and each one posted again
// is not counted twice.
func TestIDsArePerVisitorEmbedded(t *testing.T) { idsPerVisitor(t, startServer(t)) }

// TestIDsArePerVisitorRabbitRedis: see TestIDsArePerVisitorEmbedded.
func TestIDsArePerVisitorRabbitRedis(t *testing.T) { idsPerVisitor(t, startServices(t)) }

func idsPerVisitor(t *testing.T, srv *testServer) {
	var evs []map[string]any
	for _, v := range []string{"v-alice", "v-bob", "v-carol"} {
		evs = append(evs, map[string]any{"id": "1", "type": "view", "visitor": v, "item": "shared-id-item"})
	}
	for range 2 { // the second time, every event is a duplicate
		for _, ev := range evs {
			if out := srv.secretJSON(t, http.MethodPost, "/v1/events?wait=10s", mustJSON(t, []map[string]any{ev}), http.StatusOK); out["applied"] != 1.0 {
				t.Fatalf("%v: %v", ev, out)
			}
		}
	}
	// ?wait= covers the commit; the stats counters are a reactor that runs
	// just after it, and the engine counts an event applied once its
	// reactors ran. Wait for the three views and the three re-posted
	// events to be consumed (and dropped), then read the counters.
	waitFor(t, 10*time.Second, "3 events applied and 3 duplicates dropped", func() bool {
		m := srv.metrics(t)
		return metricValue(m, "kairos_engine_events_applied_total ") >= 3 && metricValue(m, "kairos_engine_events_duplicate_total ") >= 3
	})
	views := viewsCounted(t, srv, "shared-id-item")
	if views != 3 {
		t.Fatalf("%d views counted, want 3 (one per visitor)", views)
	}
}
