package main

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine/redisstore"
)

// TestPartitionsEndToEnd runs two kairos serve replicas on one namespace
// with --partitions 8: events posted to one replica's HTTP API are applied
// by both (each consumes its share of the partitions), in order per
// visitor; when one replica stops, the other consumes every partition and
// the later events are applied as well.
func TestPartitionsEndToEnd(t *testing.T) {
	requireServices(t)
	ns := testNamespace(t)
	flags := []string{"--amqp-url", amqpURL(), "--redis-url", redisURL(), "--namespace", ns, "--partitions", "8", "--lease-ttl", "1s"}
	a := startServer(t, append(flags, "--replica", "a")...)
	b := startServer(t, append(flags, "--replica", "b")...)
	store, err := redisstore.Open(context.Background(), redisstore.Config{URL: redisURL(), Prefix: ns})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	const visitors = 40
	var want [visitors][]string // per visitor, the posted event ids in order
	round := 0
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
		a.postEvents(t, batch)
	}
	applied := func(s *testServer) float64 {
		return metricValue(s.metrics(t), "kairos_engine_events_applied_total ")
	}
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
	t.Logf("replica a applied %v events, b %v", applied(a), applied(b))
	b.stop(t)
	before := applied(a)
	for range 3 {
		post()
	}
	waitFor(t, 30*time.Second, "the events after the stop applied by replica a, in order", allApplied)
	if got := applied(a) - before; got != 3*visitors {
		t.Errorf("replica a applied %v events after b stopped, want %d", got, 3*visitors)
	}
}
