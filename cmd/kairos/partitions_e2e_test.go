package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine/redisstore"
	"github.com/kairoshq/kairos/internal/clustertest"
)

// startReplicaPair starts two kairos serve replicas, "a" and "b", on
// RabbitMQ amqpURL and the test Redis in namespace ns, with 8 partitions
// and a lease TTL of 1 s, and opens the namespace's store for the test.
func startReplicaPair(t *testing.T, amqpURL, ns string) (a, b *testServer, store *redisstore.Store) {
	t.Helper()
	flags := []string{"--amqp-url", amqpURL, "--redis-url", redisURL(), "--namespace", ns, "--partitions", "8", "--lease-ttl", "1s"}
	a = startServer(t, append(flags, "--replica", "a")...)
	b = startServer(t, append(flags, "--replica", "b")...)
	store, err := redisstore.Open(context.Background(), redisstore.Config{URL: redisURL(), Prefix: ns})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return a, b, store
}

// appliedEvents reads kairos_engine_events_applied_total of s.
func appliedEvents(t *testing.T, s *testServer) float64 {
	return metricValue(s.metrics(t), "kairos_engine_events_applied_total ")
}

// appliedByAll is the sum of appliedEvents over replicas: each counts
// only the events of the partitions it consumed.
func appliedByAll(t *testing.T, replicas ...*testServer) float64 {
	n := 0.0
	for _, s := range replicas {
		n += appliedEvents(t, s)
	}
	return n
}

// TestPartitionsEndToEnd runs two kairos serve replicas on one namespace
// with --partitions 8: events posted to one replica's HTTP API are applied
// by both (each consumes its share of the partitions), in order per
// visitor; when one replica stops, the other consumes every partition and
// the later events are applied as well.
func TestPartitionsEndToEnd(t *testing.T) {
	requireServices(t)
	ns := testNamespace(t)
	a, b, store := startReplicaPair(t, amqpURL(), ns)
	const visitors = 40
	var want [visitors][]string // per visitor, the posted event ids in order
	round := 0
	accepted := 0.0
	post := func() {
		t.Helper()
		var batch []map[string]any
		ts := time.Now().UTC()
		for v := range visitors {
			id := fmt.Sprintf("pe-%d-%d", v, round)
			batch = append(batch, map[string]any{"id": id, "type": "view", "visitor": fmt.Sprintf("pv%d", v),
				"item": fmt.Sprintf("item%d", (v+round)%9), "ts": ts.Format(time.RFC3339Nano)})
			want[v] = append(want[v], id)
		}
		round++
		accepted += a.postEvents(t, batch)["accepted"].(float64)
	}
	applied := func(s *testServer) float64 { return appliedEvents(t, s) }
	// Post until both replicas have applied events: the leases have met.
	waitFor(t, 30*time.Second, "both replicas applying", func() bool {
		post()
		return applied(a) > 0 && applied(b) > 0
	})
	allApplied := func() bool {
		ids := make([]string, visitors)
		for v := range ids {
			ids[v] = fmt.Sprintf("pv%d", v)
		}
		vs, err := store.Visitors(context.Background(), ids)
		if err != nil {
			t.Fatal(err)
		}
		for v := range vs {
			var got []string
			for _, h := range vs[v].History {
				got = append(got, h.ID)
			}
			if !slices.Equal(got, want[v]) {
				return false
			}
		}
		return true
	}
	waitFor(t, 30*time.Second, "every event in each visitor's history, in order", allApplied)
	// The counters move after the commit: wait until both together count
	// every event posted, so that a's does not move after before is read.
	waitFor(t, 10*time.Second, "both replicas' counters of applied events", func() bool { return appliedByAll(t, a, b) >= accepted })
	t.Logf("replica a applied %v events, b %v", applied(a), applied(b))
	b.stop(t)
	before := applied(a)
	for range 3 {
		post()
	}
	waitFor(t, 30*time.Second, "the events after the stop applied by replica a, in order", allApplied)
	// The counter moves after the commit (the batch's items and reactions
	// come between): wait for it, then check it did not overshoot.
	waitFor(t, 10*time.Second, "replica a's counter of applied events", func() bool { return applied(a)-before >= 3*visitors })
	if got := applied(a) - before; got != 3*visitors {
		t.Errorf("replica a applied %v events after b stopped, want %d", got, 3*visitors)
	}
	// Every event was posted to a: its packing counters count them all,
	// in fewer messages than events (a POST of 40 visitors' events is
	// packed per partition).
	m := a.metrics(t)
	messages, events := metricValue(m, "kairos_bus_packed_messages_total "), metricValue(m, "kairos_bus_packed_events_total ")
	if events != float64(round*visitors) || !(messages > 0 && messages < events) {
		t.Errorf("replica a packed %v events in %v messages; it published %d events", events, messages, round*visitors)
	}
}

// TestIdentityRoutingEndToEnd links eight devices to a user through one
// replica's /v1/identify; the later events of the devices, posted to the
// other replica, are all applied by one replica (the owner of the user's
// partition), in order, onto the user's state. (Routed by device instead,
// the eight would all land on one replica's partitions with probability
// 2/2^8.)
func TestIdentityRoutingEndToEnd(t *testing.T) {
	requireServices(t)
	testIdentityRouting(t, amqpURL(), testNamespace(t))
}

// TestIdentityRoutingCluster is TestIdentityRoutingEndToEnd on the local
// 3-node RabbitMQ cluster (KAIROS_CLUSTER_TESTS=1), the replicas given
// the list of the nodes' URLs (quorum partition queues).
func TestIdentityRoutingCluster(t *testing.T) {
	c := clustertest.Get(t)
	requireServices(t)
	c.WaitHealthy(t, 2*time.Minute)
	ns := fmt.Sprintf("kt%d", rand.Uint32())
	t.Cleanup(func() {
		deleteRedisPrefix(redisURL(), ns)
		deleteNamespaceQueues(c.AMQPURLs[0], ns)
	})
	testIdentityRouting(t, strings.Join(c.AMQPURLs, ","), ns)
}

func testIdentityRouting(t *testing.T, amqpURL, ns string) {
	a, b, store := startReplicaPair(t, amqpURL, ns)
	applied := func(s *testServer) float64 { return appliedEvents(t, s) }
	round := 0
	accepted := 0.0
	waitFor(t, 30*time.Second, "both replicas applying", func() bool {
		var batch []map[string]any
		for v := range 20 {
			batch = append(batch, map[string]any{"id": fmt.Sprintf("warm-%d-%d", v, round), "type": "view",
				"visitor": fmt.Sprintf("w%d", v), "item": "item1"})
		}
		round++
		accepted += a.postEvents(t, batch)["accepted"].(float64)
		return applied(a) > 0 && applied(b) > 0
	})
	devices := []string{"phone", "laptop", "tablet", "tv", "watch", "car", "office", "kiosk"}
	for _, dev := range devices {
		req, _ := http.NewRequest(http.MethodPost, a.base+"/v1/identify", strings.NewReader(`{"anonymous_id":"`+dev+`","user_id":"zoe"}`))
		req.Header.Set("Authorization", "Bearer sk_test_0123456789abcdef")
		doJSON(t, req, http.StatusOK)
		accepted++ // an identify is one event
	}
	waitFor(t, 10*time.Second, "the devices linked to zoe", func() bool {
		users, err := store.Resolve(context.Background(), devices)
		if err != nil {
			t.Fatal(err)
		}
		return slices.Equal(users, slices.Repeat([]string{"zoe"}, len(devices)))
	})
	// Let every replica finish applying the warm-up and the links (both
	// counters together count every accepted event), so that the counters
	// move only with the devices' events.
	waitFor(t, 10*time.Second, "the warm-up applied", func() bool { return appliedByAll(t, a, b) >= accepted })
	last := [2]float64{applied(a), applied(b)}
	var want []string
	for i := range 24 {
		dev := devices[i%len(devices)]
		id := fmt.Sprintf("dev-%d", i)
		want = append(want, id)
		b.postEvents(t, []map[string]any{{"id": id, "type": "view", "visitor": dev, "item": fmt.Sprintf("item%d", i%5),
			"ts": time.Now().UTC().Format(time.RFC3339Nano)}})
	}
	waitFor(t, 30*time.Second, "the devices' events on zoe, in order", func() bool {
		vs, err := store.Visitors(context.Background(), []string{"user:zoe"})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, h := range vs[0].History {
			if strings.HasPrefix(h.ID, "dev-") {
				got = append(got, h.ID)
			}
		}
		return slices.Equal(got, want)
	})
	da, db := applied(a)-last[0], applied(b)-last[1]
	t.Logf("the devices' 24 events applied by replica a: %v, b: %v", da, db)
	if !(da == 24 && db == 0 || da == 0 && db == 24) {
		t.Errorf("the devices' events were applied %v by a and %v by b, want all 24 by one replica", da, db)
	}
}

// TestPartitionCountMismatchRefused: a replica started with another
// --partitions than the live replicas of its namespace does not start,
// and says why.
func TestPartitionCountMismatchRefused(t *testing.T) {
	requireServices(t)
	ns := testNamespace(t)
	flags := []string{"--amqp-url", amqpURL(), "--redis-url", redisURL(), "--namespace", ns, "--lease-ttl", "1s"}
	startServer(t, append(flags, "--replica", "a", "--partitions", "8")...)
	store, err := redisstore.Open(context.Background(), redisstore.Config{URL: redisURL(), Prefix: ns})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	waitFor(t, 10*time.Second, "replica a's lease", func() bool {
		got, err := store.Fields(context.Background(), "replicas", []string{"a"})
		return err == nil && got["a"] != ""
	})
	args := append([]string{"--secret-key", "sk_test_0123456789abcdef", "--publishable-key", "pk_test_0123456789abcdef",
		"--log-level", "warn", "--data-dir", t.TempDir(), "--addr", "127.0.0.1:0"}, flags...)
	cfg, err := parseServeConfig(append(args, "--replica", "b", "--partitions", "16"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	app, err := newApp(context.Background(), cfg, io.Discard, io.Discard)
	if err == nil {
		app.Close()
		t.Fatal("a replica with 16 partitions started beside one with 8")
	}
	for _, want := range []string{`replica "a" consumes 8 partitions`, "started with 16", "same number of partitions"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	// The tools that publish check it too: a replay with another
	// KAIROS_PARTITIONS would declare partition queues no replica
	// consumes and leave its events there, unapplied.
	t.Setenv("KAIROS_PARTITIONS", "16")
	code, _, errOut := runCmd(t, "replay", "--to-exchange", "--archive-dir", t.TempDir(), "--amqp-url", amqpURL(), "--redis-url", redisURL(), "--namespace", ns)
	if code == 0 || !strings.Contains(errOut, `replica "a" consumes 8 partitions`) {
		t.Errorf("replay with KAIROS_PARTITIONS=16 beside a replica of 8: exit %d, stderr %q", code, errOut)
	}
	if q := ns + ".p.15"; queueExists(t, q) {
		t.Errorf("the refused replay declared %s", q)
	}
}

// TestTrendingSharedByReplicas: two replicas each consume a share of the
// partitions, so each counts a share of the traffic; both must rank
// trending (what a new visitor gets) by the whole traffic. Each item's
// views are posted by visitors spread over the partitions, in planted
// numbers (item t<j>: 4·j views); within two state periods both replicas
// answer a new visitor with the six items in that order and their total
// counts as scores. Before, each served its own share (QA: sku-4 11 on
// one replica, 15 on the other, 26 in all).
func TestTrendingSharedByReplicas(t *testing.T) {
	requireServices(t)
	ns := testNamespace(t)
	a, b, _ := startReplicaPair(t, amqpURL(), ns)
	var batch []map[string]any
	want := map[string]float64{}
	n := 0
	for j := 1; j <= 6; j++ {
		item := fmt.Sprintf("t%d", j)
		for k := range 4 * j {
			batch = append(batch, map[string]any{"id": fmt.Sprintf("tv-%d", n), "type": "view", "visitor": fmt.Sprintf("tv%d-%d", j, k), "item": item})
			want[item]++
			n++
		}
	}
	// Campaign spring's visitors (spread over both replicas' partitions)
	// view s1..s4; its trending must count all of them on both.
	wantSpring := map[string]float64{}
	for j := 1; j <= 4; j++ {
		item := fmt.Sprintf("s%d", j)
		for k := range 6 * j {
			batch = append(batch, map[string]any{"id": fmt.Sprintf("sv-%d", n), "type": "view", "visitor": fmt.Sprintf("sv%d-%d", j, k), "item": item,
				"props": map[string]any{"utm_campaign": "spring"}})
			wantSpring[item]++
			want[item]++ // everyone's trending counts them too
			n++
		}
	}
	waitFor(t, 30*time.Second, "both replicas consuming", func() bool {
		if appliedEvents(t, a) > 0 && appliedEvents(t, b) > 0 {
			return true
		}
		postWarmup(t, a)
		return false
	})
	a.postEvents(t, batch)
	trendingOf := func(s *testServer, campaign string) map[string]float64 {
		got := map[string]float64{}
		r := secretGet(t, s.base+"/v1/recommendations?visitor=newcomer&n=20&utm_campaign="+campaign)
		for _, it := range r["items"].([]any) {
			m := it.(map[string]any)
			got[m["item"].(string)] = m["score"].(float64)
		}
		return got
	}
	trending := func(s *testServer) map[string]float64 { return trendingOf(s, "") }
	sameAs := func(s *testServer, campaign string, want map[string]float64) bool {
		got := trendingOf(s, campaign)
		for item, w := range want {
			if math.Abs(got[item]-w) > 0.01*w {
				return false
			}
		}
		return true
	}
	same := func(s *testServer) bool { return sameAs(s, "", want) && sameAs(s, "spring", wantSpring) }
	waitFor(t, 40*time.Second, "both replicas ranking trending and spring's trending by the whole traffic", func() bool { return same(a) && same(b) })
	t.Logf("spring's trending on b: %v", trendingOf(b, "spring"))
	t.Logf("replica a applied %v events, b %v; trending %v", appliedEvents(t, a), appliedEvents(t, b), trending(b))
	if appliedEvents(t, a) == 0 || appliedEvents(t, b) == 0 {
		t.Fatalf("one replica consumed nothing: a %v, b %v", appliedEvents(t, a), appliedEvents(t, b))
	}
}

// postWarmup posts one view of the item "warmup" by a new visitor to s
// (a replica pair's leases meet after a few posts).
func postWarmup(t *testing.T, s *testServer) {
	id := fmt.Sprintf("warm-%d", rand.Uint32())
	s.postEvents(t, []map[string]any{{"id": id, "type": "view", "visitor": id, "item": "warmup"}})
}
