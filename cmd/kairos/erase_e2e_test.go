package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/promo"
)

// TestEraseDeviceEmbedded and …RabbitRedis erase one device of a user
// through DELETE /v1/visitors/{id} on kairos serve: the device's link
// goes, its events leave the user's history, the user is folded in again
// from the rest (its recommendations lose the device's taste), and a
// later event of the device no longer lands on the user. Erasing the user
// then also ends the rule cooldown kept under its state key.
func TestEraseDeviceEmbedded(t *testing.T) {
	testEraseDevice(t, startServer(t))
}

func TestEraseDeviceRabbitRedis(t *testing.T) {
	testEraseDevice(t, startServices(t))
}

func testEraseDevice(t *testing.T, srv *testServer) {
	ctx := context.Background()
	// Erasure is idempotent: an id with no state is 204 too (its events
	// may be archived or in flight; the tombstone covers them).
	srv.erase(t, "never-seen")
	accepted := srv.postEvents(t, clusterBatch("bg", 2, 20, 10, 12, 11))["accepted"].(float64)
	var evs []map[string]any
	for i := range 4 {
		evs = append(evs,
			map[string]any{"id": fmt.Sprintf("lap-%d", i), "type": "click", "visitor": "laptop", "user": "ann", "item": fmt.Sprintf("c0-item%d", i)},
			map[string]any{"id": fmt.Sprintf("ph-%d", i), "type": "click", "visitor": "phone", "user": "ann", "item": fmt.Sprintf("c1-item%d", i)})
	}
	accepted += srv.postEvents(t, evs)["accepted"].(float64)
	history := func() []engine.HistoryEvent {
		t.Helper()
		vs, err := srv.app.store.Visitors(ctx, []string{engine.UserKey("ann")})
		if err != nil {
			t.Fatal(err)
		}
		return vs[0].History
	}
	waitFor(t, 10*time.Second, "ann's eight events", func() bool { return len(history()) == 8 })
	srv.secretJSON(t, "POST", "/v1/offers", `{"id":"o1","title":"Stay","slot":"exit"}`, http.StatusCreated)
	srv.secretJSON(t, "POST", "/v1/rules", `{"id":"r1","cooldown":"24h","when":{"exit":{}},"then":{"offer":"o1"}}`, http.StatusCreated)
	accepted += srv.postEvents(t, []map[string]any{{"id": "lap-exit", "type": "exit", "visitor": "laptop", "user": "ann"}})["accepted"].(float64)
	ps := promo.NewStore(srv.app.store)
	waitFor(t, 10*time.Second, "the laptop's promotion (ann's cooldown of r1 starts)", func() bool {
		got, err := ps.Promotions(ctx, "laptop", 0, 10)
		return err == nil && len(got) == 1
	})
	// Every event applied (on RabbitMQ the background events are consumed
	// per partition, some maybe after ann's): the item factors ann is
	// folded in with again, and ranked by, no longer move.
	waitFor(t, 15*time.Second, "every event applied", func() bool { return appliedEvents(t, srv) >= accepted })

	srv.erase(t, "phone")
	for _, h := range history() {
		if h.Device == "phone" || strings.HasPrefix(h.ID, "ph-") {
			t.Fatalf("the erased phone's event %+v is still in ann's history", h)
		}
	}
	if n := len(history()); n != 5 {
		t.Fatalf("ann's history has %d events after erasing the phone, want the laptop's 5", n)
	}
	s, items := srv.recommendUser(t, "laptop", "ann", 5)
	if s != "als" || len(items) != 5 {
		t.Fatalf("ann after the erasure: %s %v", s, items)
	}
	for _, it := range items {
		if !strings.HasPrefix(it, "c0-") {
			t.Fatalf("ann's recommendations after erasing the phone still follow its taste: %v", items)
		}
	}
	srv.postEvents(t, []map[string]any{{"id": "ph-late", "type": "click", "visitor": "phone", "item": "c1-item5"}})
	waitFor(t, 10*time.Second, "the phone's own state", func() bool {
		vs, err := srv.app.store.Visitors(ctx, []string{"phone"})
		return err == nil && len(vs[0].History) == 1
	})
	if n := len(history()); n != 5 {
		t.Fatalf("a later event of the erased phone landed on ann: %d events", n)
	}

	srv.erase(t, "ann")
	ok, until, err := ps.TryRuleCooldown(ctx, engine.UserKey("ann"), "r1", time.Now(), time.Minute)
	if err != nil || !ok {
		t.Fatalf("ann's cooldown of r1 survived her erasure (until %v, %v)", until, err)
	}
}

// erase deletes a visitor through DELETE /v1/visitors/{id}, expecting 204.
func (s *testServer) erase(t *testing.T, id string) {
	t.Helper()
	s.secretDo(t, http.MethodDelete, "/v1/visitors/"+url.PathEscape(id), http.StatusNoContent)
}
