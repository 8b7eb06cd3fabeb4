package engine_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/model"
	"github.com/kairoshq/kairos/signals"
)

func TestColdStartFromContext(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig()
	cfg.BlendBelow = 0 // the default: blend below 20 events
	// Page neighbours weigh 3/4 of the context here (the shipped τ = 0.75,
	// tuned on MovieLens where the "page" is only the last rated film, gives
	// trending 3/4).
	cfg.Blend = model.Blend{Kappa: 8, Trending: 0.25}
	e, err := engine.New(ctx, cfg, openStore(t, t.TempDir()), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Nothing learnt yet: active catalog items, newest first.
	for i, id := range []string{"c0-item1", "c1-item2", "gone"} {
		if _, err := e.PutItem(ctx, engine.Item{ID: id, Active: id != "gone"}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(i) * time.Millisecond)
	}
	if r := recommend(t, e, "first", 5); r.Strategy != engine.StrategyCatalog || len(r.Items) != 2 {
		t.Fatalf("empty model: %+v, want the 2 active catalog items", r)
	}
	evs := clusterEvents(3, 20, 10, 10, 12)
	// Visitors arriving from campaign "spring" only click cluster-2 items.
	for i := range 30 {
		evs = append(evs, signals.Event{ID: fmt.Sprintf("sp%d", i), Type: signals.TypeClick, Visitor: fmt.Sprintf("sp%d", i%10),
			Item: fmt.Sprintf("c2-item%d", i%3), Props: map[string]string{"utm_campaign": "spring", "device": "mobile"},
			Time: signals.Timestamp{Time: t0.Add(time.Hour)}})
	}
	mustHandle(t, e, evs)

	// No events, on the page of a cluster-1 item: its neighbours.
	r := recommend(t, e, "anon1", 5, func(r *engine.RecRequest) { r.Item = "c1-item4" })
	if r.Strategy != engine.StrategyContext {
		t.Fatalf("strategy %s, want context", r.Strategy)
	}
	c1 := 0
	for _, it := range r.Items {
		if it.Item == "c1-item4" {
			t.Fatal("the page item itself is recommended")
		}
		if strings.HasPrefix(it.Item, "c1-") {
			c1++
		}
	}
	if c1 < 2 {
		t.Fatalf("on a c1 page: %v (want mostly c1 neighbours)", itemsOf(r))
	}
	// No events, from the spring campaign: the campaign's trending items.
	r = recommend(t, e, "anon2", 3, func(r *engine.RecRequest) { r.Campaign = "spring" })
	for _, it := range r.Items {
		if it.Item != "c2-item0" && it.Item != "c2-item1" && it.Item != "c2-item2" {
			t.Fatalf("spring visitor gets %v, want the campaign's c2-item0..2", itemsOf(r))
		}
	}
	// A few events: the fold-in blended with trending.
	mustHandle(t, e, []signals.Event{{ID: "b1", Type: signals.TypeClick, Visitor: "few", Item: "c0-item3", Time: signals.Timestamp{Time: t0.Add(2 * time.Hour)}}})
	if r := recommend(t, e, "few", 5); r.Strategy != engine.StrategyBlend || len(r.Items) != 5 {
		t.Fatalf("one event: %+v, want a blend of 5", r)
	}
}

func TestNewCatalogItemGetsProvisionalFactors(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t, openStore(t, t.TempDir()), nil)
	mustHandle(t, e, clusterEvents(3, 20, 10, 10, 15))
	// The catalog tags each cluster's items with a genre.
	for c := range 3 {
		for i := range 10 {
			if _, err := e.PutItem(ctx, engine.Item{ID: fmt.Sprintf("c%d-item%d", c, i), Category: fmt.Sprintf("genre%d", c), Active: true}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A new genre-1 item nobody has seen yet.
	if _, err := e.PutItem(ctx, engine.Item{ID: "brand-new", Category: "genre1", Active: true}); err != nil {
		t.Fatal(err)
	}
	sim, err := e.Similar(ctx, "brand-new", 5)
	if err != nil {
		t.Fatalf("the new item has no factors: %v", err)
	}
	for _, r := range sim {
		if !strings.HasPrefix(r.Item, "c1-") {
			t.Fatalf("similar to a new genre-1 item: %v", sim)
		}
	}
	// Cluster-1 visitors rank it above other clusters' items.
	got := recommend(t, e, "c1-4", 30, func(r *engine.RecRequest) { r.ExcludeSeen = false })
	rank := slices.IndexFunc(got.Items, func(r engine.Rec) bool { return r.Item == "brand-new" })
	if rank < 0 || rank >= 12 {
		t.Fatalf("brand-new ranks %d for a cluster-1 visitor: %v", rank, itemsOf(got))
	}
}
