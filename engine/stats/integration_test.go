package stats_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kairoshq/kairos/api"
	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/stats"
	"github.com/kairoshq/kairos/internal/testutil/backends"
	"github.com/kairoshq/kairos/signals"
)

const (
	itSK = "sk_integration_secret_0001"
	itPK = "pk_integration_public_0001"
)

// TestEndToEnd posts events to the HTTP API, which publishes them on the
// in-process bus to a running engine with Stats as a Reactor, then reads
// the counters back through GET /v1/stats/…, with the embedded store and
// with Redis. Redelivered events are not counted twice.
func TestEndToEnd(t *testing.T) {
	backends.Each(t, testEndToEnd)
}

func testEndToEnd(t *testing.T, store engine.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	eng, bus := backends.NewEngine(ctx, t, store)
	st, err := stats.New(stats.NewStore(store), stats.Config{Retention: stats.DefaultRetention()})
	if err != nil {
		t.Fatal(err)
	}
	eng.AddReactor(st)
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("engine: %v", err)
		}
	})
	srv, err := api.New(api.Config{SecretKeys: []string{itSK}, PublishableKeys: []string{itPK}, Registry: prometheus.NewRegistry()},
		api.Deps{Publisher: bus, Recommender: eng, Catalog: eng, Checker: eng, Stats: st})
	if err != nil {
		t.Fatal(err)
	}
	do := func(method, target, body string) *httptest.ResponseRecorder {
		t.Helper()
		r := httptest.NewRequest(method, target, strings.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+itSK)
		w := httptest.NewRecorder()
		srv.Handler().ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			t.Fatalf("%s %s: status %d: %s", method, target, w.Code, w.Body)
		}
		return w
	}

	// The start of an hour, three hours ago: every event below is in one
	// hour and one day.
	base := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Hour)
	ts := func(d time.Duration) string { return base.Add(d).Format(time.RFC3339Nano) }
	events := []string{
		`{"id":"e1","type":"view","visitor":"v1","item":"sku-1","ts":"` + ts(time.Minute) + `"}`,
		`{"id":"e2","type":"view","visitor":"v2","item":"sku-1","ts":"` + ts(2*time.Minute) + `"}`,
		`{"id":"e3","type":"click","visitor":"v1","item":"sku-1","ts":"` + ts(3*time.Minute) + `"}`,
		`{"id":"e4","type":"dwell","visitor":"v2","item":"sku-1","value":1500,"ts":"` + ts(4*time.Minute) + `"}`,
		`{"id":"e5","type":"conversion","visitor":"v1","item":"sku-1","offer":"spring","value":49.5,"ts":"` + ts(5*time.Minute) + `"}`,
		`{"id":"e6","type":"view","visitor":"v3","item":"sku-1","ts":"` + ts(20*time.Minute) + `"}`, // next quarter hour
		`{"id":"e7","type":"view","visitor":"v3","item":"sku-2","ts":"` + ts(time.Minute) + `"}`,
		`{"id":"e8","type":"impression","visitor":"v3","offer":"spring","ts":"` + ts(time.Minute) + `"}`,
		`{"id":"e9","type":"view","visitor":"v3","page":"https://shop.example/","ts":"` + ts(time.Minute) + `"}`, // no item: not counted
	}
	body := "[" + strings.Join(events, ",") + "]"
	if got := decodeJSON[map[string]any](t, do("POST", "/v1/events", body)); got["accepted"] != float64(len(events)) {
		t.Fatalf("POST /v1/events: %v", got)
	}
	// Delivered again (a client retry): the engine de-duplicates, the
	// counters do not change.
	do("POST", "/v1/events", body)

	q := fmt.Sprintf("from=%d&to=%d", base.UnixMilli(), base.Add(30*time.Minute).UnixMilli())
	resp := decodeJSON[api.StatsResponse](t, do("GET", "/v1/stats/items/sku-1?resolution=15m&"+q, ""))
	if resp.Item != "sku-1" || resp.Resolution != "15m" || len(resp.Points) != 2 || !resp.Points[0].T.Equal(base) {
		t.Fatalf("answer %+v", resp)
	}
	wantCounts(t, "15m first", resp.Points[0].Counts, map[signals.Type]int64{"view": 2, "click": 1, "dwell": 1, "conversion": 1})
	if p := resp.Points[0]; p.Revenue != 49.5 || p.DwellMs != 1500 {
		t.Errorf("revenue %v, dwell %v; want 49.5, 1500", p.Revenue, p.DwellMs)
	}
	wantCounts(t, "15m second", resp.Points[1].Counts, map[signals.Type]int64{"view": 1})

	// The hour and the day hold all of sku-1's events.
	for _, res := range []stats.Resolution{stats.Res1h, stats.Res1d} {
		from := res.Bucket(base)
		resp := decodeJSON[api.StatsResponse](t, do("GET", fmt.Sprintf("/v1/stats/items/sku-1?resolution=%s&from=%d&to=%d", res, from.UnixMilli(), from.Add(res.Duration()).UnixMilli()), ""))
		if len(resp.Points) != 1 {
			t.Fatalf("%v: %d points", res, len(resp.Points))
		}
		wantCounts(t, res.String(), resp.Points[0].Counts, map[signals.Type]int64{"view": 3, "click": 1, "dwell": 1, "conversion": 1})
	}
	// The offer counts its own events.
	resp = decodeJSON[api.StatsResponse](t, do("GET", "/v1/stats/offers/spring?resolution=15m&"+q, ""))
	wantCounts(t, "offer", resp.Points[0].Counts, map[signals.Type]int64{"conversion": 1, "impression": 1})
	if resp.Points[0].Revenue != 49.5 {
		t.Errorf("offer revenue %v", resp.Points[0].Revenue)
	}
	// Series directly, with the default window through the API too.
	ps, err := st.Series(context.Background(), stats.Item("sku-2"), stats.Res1h, base, base.Add(time.Hour))
	if err != nil || len(ps) != 1 {
		t.Fatalf("Series: %v, %v", ps, err)
	}
	wantCounts(t, "sku-2", ps[0].Counts, map[signals.Type]int64{"view": 1})
	resp = decodeJSON[api.StatsResponse](t, do("GET", "/v1/stats/items/sku-2", ""))
	var views int64
	for _, p := range resp.Points {
		views += p.Counts["view"]
	}
	if len(resp.Points) < 24 || views != 1 {
		t.Errorf("default window: %d points, %d views; want >= 24 points and 1 view", len(resp.Points), views)
	}
}

func wantCounts(t *testing.T, what string, got, want map[signals.Type]int64) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s: counts %v, want %v", what, got, want)
	}
}

func decodeJSON[T any](t *testing.T, w *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("decode %T: %v: %s", v, err, w.Body)
	}
	return v
}
