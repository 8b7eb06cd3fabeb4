package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine/redisstore"
	"github.com/kairoshq/kairos/offline"
	"github.com/kairoshq/kairos/signals/rabbitmq/rabbitmqtest"
	amqp "github.com/rabbitmq/amqp091-go"
)

// amqpPublisher publishes raw JSON events straight to the exchange, as a
// server-side producer would (README, "Publishing straight to RabbitMQ").
type amqpPublisher struct {
	conn *amqp.Connection
	ch   *amqp.Channel
	conf chan amqp.Confirmation
	ex   string
}

func newAMQPPublisher(t *testing.T, ns string) *amqpPublisher {
	t.Helper()
	conn, ch := rabbitmqtest.ConfirmChannel(t, amqpURL())
	return &amqpPublisher{conn: conn, ch: ch, conf: ch.NotifyPublish(make(chan amqp.Confirmation, 1024)), ex: ns + ".events"}
}

// publish sends one event and waits for the broker's confirmation.
func (p *amqpPublisher) publish(t *testing.T, ev map[string]any) {
	t.Helper()
	body, _ := json.Marshal(ev)
	err := p.ch.PublishWithContext(context.Background(), p.ex, ev["visitor"].(string), true, false, amqp.Publishing{
		ContentType: "application/json", DeliveryMode: amqp.Persistent, MessageId: ev["id"].(string), Body: body,
	})
	if err != nil {
		t.Fatal(err)
	}
	if c := <-p.conf; !c.Ack {
		t.Fatal("broker nacked the event")
	}
}

// TestEndToEndRabbitRedis runs kairos serve on RabbitMQ and Redis: events
// posted over HTTP and events published straight to RabbitMQ both change
// the visitor's recommendations; it measures event-to-updated-recommendation
// latency over 1,000 events.
func TestEndToEndRabbitRedis(t *testing.T) {
	requireServices(t)
	ns := testNamespace(t)
	srv := startServer(t, "--amqp-url", amqpURL(), "--redis-url", redisURL(), "--namespace", ns)
	base := clusterBatch("base", 3, 30, 12, 12, 1)
	srv.postAll(t, base)
	waitFor(t, 10*time.Second, "the base events to be learnt", func() bool {
		s, _ := srv.recommend(t, "base-c0-0", 5)
		return s == "als"
	})
	pub := newAMQPPublisher(t, ns)
	for _, path := range []string{"http", "amqp"} {
		t.Run(path, func(t *testing.T) {
			visitor := "fresh-" + path
			srv.waitTrending(t, visitor)
			evs := []map[string]any{
				{"id": visitor + "-1", "type": "click", "visitor": visitor, "item": "c2-item1"},
				{"id": visitor + "-2", "type": "like", "visitor": visitor, "item": "c2-item4"},
			}
			if path == "http" {
				srv.postEvents(t, evs)
			} else {
				for _, ev := range evs {
					pub.publish(t, ev)
				}
			}
			waitFor(t, 10*time.Second, "recommendations from the visitor's factors", func() bool {
				s, items := srv.recommend(t, visitor, 5)
				return s == "als" && len(items) == 5 && !slices.ContainsFunc(items, func(it string) bool { return !strings.HasPrefix(it, "c2-") })
			})
		})
	}
	t.Run("latency", func(t *testing.T) {
		const n = 1000
		srv.unchecked = true // the validation's cost is not the server's latency
		defer func() { srv.unchecked = false }()
		lat := make([]time.Duration, 0, n)
		for i := range n {
			visitor := fmt.Sprintf("lat-%d", i)
			ev := map[string]any{"id": visitor, "type": "click", "visitor": visitor, "item": fmt.Sprintf("c%d-item%d", i%3, i%12)}
			start := time.Now()
			if i%2 == 0 {
				srv.postEvents(t, []map[string]any{ev})
			} else {
				pub.publish(t, ev)
			}
			for {
				if s, _ := srv.recommend(t, visitor, 10); s == "als" {
					break
				}
				if time.Since(start) > 10*time.Second {
					t.Fatalf("event %d not reflected after 10 s", i)
				}
				time.Sleep(200 * time.Microsecond)
			}
			lat = append(lat, time.Since(start))
		}
		slices.Sort(lat)
		t.Logf("event-to-updated-recommendation latency over %d events (half HTTP, half AMQP): p50 %v, p90 %v, p99 %v, max %v",
			n, lat[n/2], lat[n*9/10], lat[n*99/100], lat[n-1])
	})
}

// TestEndToEndEmbedded runs the default embedded mode: events change
// recommendations, and a graceful restart on the same data dir keeps them.
func TestEndToEndEmbedded(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, "--data-dir", dir)
	srv.postEvents(t, clusterBatch("b", 2, 20, 8, 10, 2))
	srv.postEvents(t, []map[string]any{{"id": "x1", "type": "click", "visitor": "newbie", "item": "c1-item2"}})
	// In embedded mode a 200 means the engine has applied the events.
	s, want := srv.recommend(t, "newbie", 5)
	if s != "als" || slices.ContainsFunc(want, func(it string) bool { return !strings.HasPrefix(it, "c1-") }) {
		t.Fatalf("newbie who clicked a c1 item: %s %v", s, want)
	}
	srv.stop(t)
	srv2 := startServer(t, "--data-dir", dir)
	if s, got := srv2.recommend(t, "newbie", 5); s != "als" || !slices.Equal(got, want) {
		t.Fatalf("after restart: %s %v, before: %v", s, got, want)
	}
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	waitEvery(t, d, 5*time.Millisecond, what, ok)
}

// waitEvery calls ok every poll until it holds, failing t after d.
func waitEvery(t *testing.T, d, poll time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(poll)
	}
}

// TestScheduledRetrainHotSwaps runs kairos serve (embedded) with a short
// --retrain-every: the retrained model beats popularity on the held-out
// tail, is published and loaded while the server keeps serving, and
// /metrics and the dashboard's summary show the swap and the retrain.
func TestScheduledRetrainHotSwaps(t *testing.T) {
	srv := startServer(t, "--retrain-every", "300ms", "--retrain-min-users", "10")
	evs := roundsBatch("r", 3, 15, 30, 14, 3)
	for lo := 0; lo < len(evs); lo += 500 {
		srv.postEvents(t, evs[lo:min(lo+500, len(evs))])
	}
	waitFor(t, 30*time.Second, "a retrained model to be loaded", func() bool {
		return srv.app.engine.ModelVersion() != 0
	})
	// The engines load the published model while the retrainer still
	// logs its report and counts the run (after Publish returns): wait
	// for the count, which follows the report.
	waitFor(t, 10*time.Second, "the published retrain counted", func() bool {
		return metricValue(srv.metrics(t), `kairos_retrain_runs_total{decision="published"} `) >= 1
	})
	if s, items := srv.recommend(t, "r-c1-3", 5); s != "als" || !strings.HasPrefix(items[0], "c1-") {
		t.Fatalf("after the swap: %s %v", s, items)
	}
	srv.postEvents(t, []map[string]any{{"id": "after-1", "type": "click", "visitor": "late", "item": "c2-item3"}})
	if s, items := srv.recommend(t, "late", 5); s != "als" || !strings.HasPrefix(items[0], "c2-") {
		t.Fatalf("a new visitor after the swap: %s %v", s, items)
	}
	metrics := srv.metrics(t)
	for _, want := range []string{"kairos_engine_model_generation ", "kairos_engine_model_swaps_total ", `kairos_retrain_runs_total{decision="published"} `} {
		if v := metricValue(metrics, want); !(v >= 1) {
			t.Errorf("/metrics %s= %v, want >= 1", want, v)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, srv.base+"/v1/dashboard/summary?n=5", nil)
	req.Header.Set("Authorization", "Bearer sk_test_0123456789abcdef")
	m, _ := doJSON(t, req, http.StatusOK)["model"].(map[string]any)
	runs, _ := m["retrains"].([]any)
	if m == nil || m["generation"].(float64) < 1 || len(runs) == 0 {
		t.Fatalf("dashboard model %v", m)
	}
	published := false
	for _, r := range runs {
		r := r.(map[string]any)
		figs := map[string]bool{}
		for _, f := range r["figures"].([]any) {
			figs[f.(map[string]any)["model"].(string)] = true
		}
		if r["label"] == "published" && figs["retrained"] && figs["popularity"] && r["params"] != nil && r["t_popularity"].(float64) >= 1 {
			published = true
		}
	}
	if !published {
		t.Fatalf("no published retrain with its figures against popularity in %v", runs)
	}
}

// TestRetrainCarriesItemLambdaExponent: a ν fixed by the flag reaches
// the retrain of kairos serve (not fitted), its published model and the
// engine's live item updates after the swap.
func TestRetrainCarriesItemLambdaExponent(t *testing.T) {
	testRetrainCarriesItemLambdaExponent(t, startServer(t, "--retrain-every", "24h", "--retrain-min-users", "10", "--item-lambda-exponent", "0.75"))
}

// TestRetrainCarriesItemLambdaExponentRabbitRedis is the same on RabbitMQ
// and Redis.
func TestRetrainCarriesItemLambdaExponentRabbitRedis(t *testing.T) {
	testRetrainCarriesItemLambdaExponent(t, startServices(t, "--retrain-every", "24h", "--retrain-min-users", "10", "--item-lambda-exponent", "0.75"))
}

func testRetrainCarriesItemLambdaExponent(t *testing.T, srv *testServer) {
	evs := roundsBatch("r", 3, 15, 30, 14, 3)
	accepted := srv.postAll(t, evs)
	// Every event applied, hence archived (the engine archives a batch
	// before its commit; on RabbitMQ the events are consumed after the
	// POST): the retrain below reads the whole log, not a part of it.
	waitFor(t, 20*time.Second, "every event applied", func() bool { return appliedEvents(t, srv) >= accepted })
	waitFor(t, 20*time.Second, "the events to be archived", func() bool { return srv.app.archive.LastSeq() > 0 && srv.app.engine.Online().Len() >= 90 })
	// The scheduled retrain's own runner, run now rather than in a day.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := srv.app.retrain.runner.Run(ctx, false, false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Decision != offline.DecisionPublished || res.Params.ItemLambdaExponent != 0.75 || res.Snapshot.Meta.Params.ItemLambdaExponent != 0.75 {
		t.Fatalf("retrain %s (%s) with ν %v, snapshot's %v; want published with 0.75", res.Decision, res.Reason, res.Params.ItemLambdaExponent, res.Snapshot.Meta.Params.ItemLambdaExponent)
	}
	waitFor(t, 20*time.Second, "the published model to be loaded", func() bool { return srv.app.engine.ModelVersion() == res.Snapshot.Meta.Version })
	if nu := srv.app.engine.Online().Params().ItemLambdaExponent; nu != 0.75 {
		t.Fatalf("live model ν %v after the swap, want 0.75", nu)
	}
	srv.postEvents(t, []map[string]any{{"id": "after-1", "type": "click", "visitor": "late", "item": "c2-item3"}})
	var strategy string
	var items []string
	waitEvery(t, 10*time.Second, 20*time.Millisecond, "the new visitor's click to be learnt (applied asynchronously on RabbitMQ)", func() bool {
		strategy, items = srv.recommend(t, "late", 5)
		return strategy != "trending"
	})
	if strategy != "als" || !strings.HasPrefix(items[0], "c2-") {
		t.Fatalf("a new visitor after the swap: %s %v", strategy, items)
	}
}

// roundsBatch returns events of visitors base-c<cluster>-<i> viewing items
// of their own cluster in rounds (every visitor once per round, rounds 5
// minutes apart), so that visitors are active before and after any time.
func roundsBatch(prefix string, clusters, visitors, items, rounds int, seed uint64) []map[string]any {
	rng := rand.New(rand.NewPCG(seed, 11))
	start := time.Now().Add(-2 * time.Hour)
	var evs []map[string]any
	for r := range rounds {
		for c := range clusters {
			for v := range visitors {
				evs = append(evs, map[string]any{
					"id": fmt.Sprintf("%s-%d-%d-%d", prefix, r, c, v), "type": "view", "visitor": fmt.Sprintf("%s-c%d-%d", prefix, c, v),
					"item": fmt.Sprintf("c%d-item%d", c, rng.IntN(items)), "ts": start.Add(time.Duration(r)*5*time.Minute + time.Duration(v)*time.Millisecond).UnixMilli(),
				})
			}
		}
	}
	return evs
}

// TestIdentifyEndToEnd links an anonymous visitor to a user through POST
// /v1/identify on RabbitMQ and Redis; the link survives a restart and
// later anonymous events land on the user.
func TestIdentifyEndToEnd(t *testing.T) {
	requireServices(t)
	ns := testNamespace(t)
	flags := []string{"--amqp-url", amqpURL(), "--redis-url", redisURL(), "--namespace", ns}
	srv := startServer(t, flags...)
	srv.postEvents(t, clusterBatch("id", 2, 20, 8, 10, 5))
	srv.postEvents(t, []map[string]any{{"id": "ph-1", "type": "click", "visitor": "phone", "item": "c1-item1"}})
	req, _ := http.NewRequest(http.MethodPost, srv.base+"/v1/identify", strings.NewReader(`{"anonymous_id":"phone","user_id":"zoe"}`))
	req.Header.Set("Authorization", "Bearer sk_test_0123456789abcdef")
	doJSON(t, req, http.StatusOK)
	key := "user:zoe"
	waitFor(t, 10*time.Second, "the phone's history on zoe", func() bool {
		s, _ := srv.recommendUser(t, "laptop", "zoe", 3)
		return s == "als"
	})
	srv.stop(t)
	srv2 := startServer(t, flags...)
	srv2.postEvents(t, []map[string]any{{"id": "ph-2", "type": "click", "visitor": "phone", "item": "c1-item2"}})
	store, err := redisstore.Open(context.Background(), redisstore.Config{URL: redisURL(), Prefix: ns})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	waitFor(t, 10*time.Second, "the later anonymous event on zoe", func() bool {
		vs, err := store.Visitors(context.Background(), []string{key, "phone"})
		if err != nil {
			t.Fatal(err)
		}
		ids := map[string]bool{}
		for _, h := range vs[0].History {
			ids[h.ID] = true
		}
		return ids["ph-1"] && ids["ph-2"] && len(vs[1].History) == 0
	})
}

// metrics returns the server's /metrics text.
func (s *testServer) metrics(t *testing.T) string {
	t.Helper()
	return string(s.secretDo(t, http.MethodGet, "/metrics", http.StatusOK))
}

// metricValue returns the value of the sample line starting with prefix
// (NaN when absent).
func metricValue(text, prefix string) float64 {
	for _, line := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(line, prefix); ok {
			var v float64
			if _, err := fmt.Sscan(rest, &v); err == nil {
				return v
			}
		}
	}
	return math.NaN()
}
