package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kairoshq/kairos/offline/history"
)

// TestClusterHistoryReplay runs two replicas of kairos serve on RabbitMQ
// and Redis with the history stream: events accepted over HTTP by either
// are written to the stream by the broker and archived to the shared cold
// tier by the elected replica; when it stops, the other takes over from
// the committed offset. A visitor erased over the API is dropped from
// both tiers. `kairos replay --history-stream` then re-feeds exactly the
// accepted events of the visitors not erased, from the cluster's
// history, into a fresh store.
func TestClusterHistoryReplay(t *testing.T) {
	requireServices(t)
	ns := testNamespace(t)
	shared := filepath.Join(t.TempDir(), "history")
	flags := func(replica string) []string {
		return []string{"--amqp-url", amqpURL(), "--redis-url", redisURL(), "--namespace", ns, "--replica", replica,
			"--history-stream", "--history-dir", shared, "--history-lease-ttl", "1s"}
	}
	s0 := startServer(t, flags("0")...)
	s1 := startServer(t, flags("1")...)
	var all []map[string]any
	post := func(s *testServer, tag string, n int) {
		var evs []map[string]any
		now := time.Now().Add(-time.Hour).UnixMilli()
		for i := range n {
			evs = append(evs, map[string]any{"id": fmt.Sprintf("%s-%d", tag, i), "type": "view", "visitor": fmt.Sprintf("v%d", i%9),
				"item": fmt.Sprintf("sku-%d", i%13), "ts": now + int64(i)})
		}
		s.postEvents(t, evs)
		all = append(all, evs...)
	}
	checkpoint := func() history.Checkpoint {
		cp, _, err := history.ReadCheckpoint(shared)
		if err != nil {
			t.Fatal(err)
		}
		return cp
	}
	post(s0, "a", 60)
	post(s1, "b", 60)
	waitFor(t, 30*time.Second, "120 events archived", func() bool { return checkpoint().Events == 120 })
	first := checkpoint().Holder
	for _, s := range []*testServer{s0, s1} {
		m := s.metrics(t)
		lead := metricValue(m, "kairos_history_archiver_leading ")
		if want := s.app.cfg.Replica == first; (lead == 1) != want {
			t.Errorf("replica %s: kairos_history_archiver_leading %v, holder %s", s.app.cfg.Replica, lead, first)
		}
	}

	// The archiving replica stops (it releases the lease); the other
	// takes over from the committed offset.
	holder, other := s0, s1
	if first == "1" {
		holder, other = s1, s0
	}
	holder.stop(t)
	post(other, "c", 60)
	waitFor(t, 30*time.Second, "the other replica archives the rest", func() bool {
		cp := checkpoint()
		return cp.Events == 180 && cp.Holder != first
	})

	// v0 erased: its events leave both tiers.
	other.erase(t, "v0")
	waitFor(t, 30*time.Second, "the erasure recorded in the cold tier", func() bool { return checkpoint().Erasures >= 1 })
	// A tail the archiver may not have read yet, a second later (publish
	// times have whole seconds: events of v0 in the erasure's second
	// count as erased).
	for erased := checkpoint().At; !time.Now().Truncate(time.Second).After(erased); {
		time.Sleep(50 * time.Millisecond)
	}
	post(other, "d", 18)
	want := 0
	for _, e := range all {
		if e["visitor"] != "v0" || strings.HasPrefix(e["id"].(string), "d-") {
			want++ // v0's events after its erasure are new history
		}
	}

	code, out, errs := runCmd(t, "replay", "--history-stream", "--history-dir", shared, "--amqp-url", amqpURL(), "--namespace", ns,
		"--redis-url", "", "--to-store", "--store-data-dir", t.TempDir())
	if code != 0 {
		t.Fatalf("kairos replay: exit %d: %s", code, errs)
	}
	var res replayResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v in %q", err, out)
	}
	if res.Events != want {
		t.Fatalf("kairos replay from the cluster history re-fed %d events, want %d (stderr: %s)", res.Events, want, errs)
	}
	if !strings.Contains(errs, "from the cold tier") {
		t.Errorf("replay did not report the tiers: %s", errs)
	}
	t.Logf("replay: %s%s", errs, out)
}

// TestHistoryErasureWithoutArchiver: with no archiver running (every
// replica --history-archiver=false, or the archiver killed before another
// takes the lease) an erasure stays in the store's log; `kairos replay
// --history-stream` applies it from there (--history-redis-url): the
// visitor's events published before the DELETE are not re-fed, those sent
// after it are.
func TestHistoryErasureWithoutArchiver(t *testing.T) {
	requireServices(t)
	ns := testNamespace(t)
	shared := filepath.Join(t.TempDir(), "history")
	s := startServer(t, "--amqp-url", amqpURL(), "--redis-url", redisURL(), "--namespace", ns, "--replica", "0",
		"--history-stream", "--history-dir", shared, "--history-archiver=false")
	now := time.Now().Add(-time.Hour).UnixMilli()
	ev := func(id, visitor string) map[string]any {
		return map[string]any{"id": id, "type": "view", "visitor": visitor, "item": "sku-1", "ts": now}
	}
	s.postEvents(t, []map[string]any{ev("gap-1", "gap-v"), ev("gap-2", "gap-v"), ev("keep-1", "other")})
	s.erase(t, "gap-v")
	for erased := time.Now(); !time.Now().Truncate(time.Second).After(erased); { // publish times have whole seconds
		time.Sleep(50 * time.Millisecond)
	}
	s.postEvents(t, []map[string]any{ev("gap-3", "gap-v")})

	replay := func(store string) (replayResult, string) {
		code, out, errs := runCmd(t, "replay", "--history-stream", "--history-dir", shared, "--amqp-url", amqpURL(), "--namespace", ns,
			"--history-redis-url", store, "--redis-url", "", "--to-store", "--store-data-dir", t.TempDir())
		if code != 0 {
			t.Fatalf("kairos replay: exit %d: %s", code, errs)
		}
		var res replayResult
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("%v in %q", err, out)
		}
		return res, errs
	}
	res, errs := replay(redisURL())
	if res.Events != 2 || !strings.Contains(errs, "2 erased events dropped") {
		t.Fatalf("replay with the erasure log re-fed %d events, want keep-1 and gap-3 (stderr: %s)", res.Events, errs)
	}
	// Without the store the tool says what it cannot apply.
	res, errs = replay("")
	if res.Events != 4 || !strings.Contains(errs, "WARNING no --history-redis-url") {
		t.Fatalf("replay without the erasure log: %d events, stderr %s", res.Events, errs)
	}
}
