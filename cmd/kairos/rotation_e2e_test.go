package main

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/kairoshq/kairos/internal/testutil"
)

// TestRotationEmbedded and TestRotationRabbitRedis run kairos serve with a
// settable clock: items served to a visitor drop down on the next request
// (rotation=30m) and come back once the clock has moved past the
// rotation time; pages (next tokens) never repeat an item and together
// hold what one long list holds.
func TestRotationEmbedded(t *testing.T) {
	clock := testutil.NewClock(time.Now())
	testRotation(t, clock, startServerWith(t, func(c *serveConfig) { c.Now = clock.Now }))
}

func TestRotationRabbitRedis(t *testing.T) {
	requireServices(t)
	clock := testutil.NewClock(time.Now())
	ns := testNamespace(t)
	testRotation(t, clock, startServerWith(t, func(c *serveConfig) { c.Now = clock.Now },
		"--amqp-url", amqpURL(), "--redis-url", redisURL(), "--namespace", ns))
}

func recsOf(t *testing.T, srv *testServer, query string) (items []string, next string) {
	t.Helper()
	out := secretGet(t, srv.base+"/v1/recommendations?"+query)
	for _, it := range out["items"].([]any) {
		items = append(items, it.(map[string]any)["item"].(string))
	}
	next, _ = out["next"].(string)
	return items, next
}

func testRotation(t *testing.T, clock *testutil.Clock, srv *testServer) {
	base := clusterBatch("rb", 3, 20, 12, 12, 11)
	const v = "rotating-visitor"
	for j := range 3 {
		base = append(base, map[string]any{"id": fmt.Sprintf("%s-%d", v, j), "type": "click", "visitor": v, "item": fmt.Sprintf("c1-item%d", j)})
	}
	accepted := 0.0
	for lo := 0; lo < len(base); lo += 500 {
		accepted += srv.postEvents(t, base[lo:min(lo+500, len(base))])["accepted"].(float64)
	}
	// Every event applied (on RabbitMQ they are consumed after the POST):
	// the ranking compared below must not move under the test.
	waitFor(t, 15*time.Second, "every event applied", func() bool { return appliedEvents(t, srv) >= accepted })
	waitFor(t, 15*time.Second, "the visitor's own recommendations", func() bool {
		s, _ := srv.recommend(t, v, 3)
		return s == "als"
	})

	// A HEAD shows nothing: the list it would serve is not demoted.
	plain, _ := recsOf(t, srv, "visitor="+v+"&n=3&rotation=0")
	srv.secretDo(t, http.MethodHead, "/v1/recommendations?visitor="+v+"&n=3&rotation=30m", http.StatusOK)
	first, _ := recsOf(t, srv, "visitor="+v+"&n=3&rotation=30m")
	if !slices.Equal(first, plain) {
		t.Errorf("after a HEAD: %v, want the ranker's %v (nothing was shown)", first, plain)
	}
	clock.Add(time.Minute)
	second, _ := recsOf(t, srv, "visitor="+v+"&n=3&rotation=30m")
	t.Logf("first %v; a minute later %v", first, second)
	if slices.ContainsFunc(second, func(it string) bool { return slices.Contains(first, it) }) {
		t.Errorf("a minute later %v holds items of %v, served then: not demoted", second, first)
	}
	clock.Add(30 * time.Minute) // 31 minutes after the first request, 30 after the second
	third, _ := recsOf(t, srv, "visitor="+v+"&n=3&rotation=30m")
	t.Logf("31 minutes later %v", third)
	if !slices.Equal(third, first) {
		t.Errorf("after the rotation time: %v, want the first list %v back", third, first)
	}
	// 20 minutes into the rotation of the third list its items fade back
	// (multiplier 2/3): in a list of 10, below items the ranker puts after
	// them, but not cut.
	clock.Add(20 * time.Minute)
	fading, _ := recsOf(t, srv, "visitor="+v+"&n=10&rotation=30m")
	t.Logf("20 minutes later, 10 items: %v", fading)
	if i := slices.Index(fading, first[0]); i < 1 || slices.Index(fading, first[2]) < 3 {
		t.Errorf("%v, served 20 minutes ago, in %v: want them demoted below the top but in the list", first, fading)
	}

	testRotationDeviceErasure(t, srv)

	// Paging: pages of 4 until the end, without a repeat, hold the long list.
	all, _ := recsOf(t, srv, "visitor="+v+"&n=100&rotation=0")
	seen := map[string]bool{}
	q := "visitor=" + v + "&n=4&rotation=0"
	pages := 0
	for {
		items, next := recsOf(t, srv, q)
		pages++
		for _, it := range items {
			if seen[it] {
				t.Fatalf("page %d repeats %s", pages, it)
			}
			seen[it] = true
		}
		if next == "" || pages > 40 {
			break
		}
		q = "visitor=" + v + "&n=4&page=" + url.QueryEscape(next)
	}
	t.Logf("%d pages of 4 hold %d items; one list of 100 holds %d", pages, len(seen), len(all))
	if len(seen) != len(all) || slices.ContainsFunc(all, func(it string) bool { return !seen[it] }) {
		t.Errorf("pages hold %d items, the long list %d: %v", len(seen), len(all), all)
	}
}

// testRotationDeviceErasure: a user's phone and laptop share one record
// of shown items; erasing the phone forgets what it was shown, while
// what the laptop was shown stays demoted.
func testRotationDeviceErasure(t *testing.T, srv *testServer) {
	const user = "rot-user"
	var evs []map[string]any
	for _, d := range []string{"rot-phone", "rot-laptop"} {
		evs = append(evs, map[string]any{"id": d + "-id", "type": "identify", "visitor": d, "user": user})
		for j := range 3 {
			evs = append(evs, map[string]any{"id": fmt.Sprintf("%s-%d", d, j), "type": "click", "visitor": d, "item": fmt.Sprintf("c2-item%d", j)})
		}
	}
	// Nothing is in flight (testRotation waited for its events): the
	// counter moves only with these.
	applied := appliedEvents(t, srv)
	applied += srv.postEvents(t, evs)["accepted"].(float64)
	// Every event applied (on RabbitMQ they are consumed after the POST):
	// the phone's showings must be recorded on the user, and the ranking
	// compared after the erasure must not move under the test.
	waitFor(t, 15*time.Second, "every event applied", func() bool { return appliedEvents(t, srv) >= applied })
	waitFor(t, 15*time.Second, "the user's own recommendations", func() bool {
		s, _ := srv.recommend(t, "rot-laptop", 3)
		return s == "als"
	})
	phone, _ := recsOf(t, srv, "visitor=rot-phone&n=3&rotation=30m")
	laptop, _ := recsOf(t, srv, "visitor=rot-laptop&n=3&rotation=30m")
	if slices.ContainsFunc(laptop, func(it string) bool { return slices.Contains(phone, it) }) {
		t.Fatalf("the laptop got %v, holding items the phone was just served (%v): the user's devices do not share the record", laptop, phone)
	}
	srv.secretDo(t, http.MethodDelete, "/v1/visitors/rot-phone", http.StatusNoContent)
	// The erasure is done when DELETE answers. The ranking without
	// rotation, less the laptop's items, is what the laptop gets now: the
	// phone's showings no longer demote. (A request with a rotation
	// records its page, so it is asked once.)
	all, _ := recsOf(t, srv, "visitor=rot-laptop&n=100&rotation=0")
	got, _ := recsOf(t, srv, "visitor=rot-laptop&n=3&rotation=30m")
	want := slices.DeleteFunc(slices.Clone(all), func(it string) bool { return slices.Contains(laptop, it) })[:3]
	if !slices.Equal(got, want) {
		t.Errorf("after erasing the phone the laptop gets %v, want %v: the unrotated list %v less its own recent items %v (the phone's %v no longer demoted)", got, want, all, laptop, phone)
	}
	t.Logf("phone served %v, laptop %v; after erasing the phone the laptop gets %v (unrotated %v)", phone, laptop, got, all[:min(6, len(all))])
}
