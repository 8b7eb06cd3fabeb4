package promo_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/promo"
	"github.com/kairoshq/kairos/signals"
)

// batch is one batch of a visitor's events, at offsets from t0, and
// whether the rule must fire after it.
type batch struct {
	evs  []signals.Event
	fire bool
}

func TestRuleConditions(t *testing.T) {
	type mk func(v *env) []batch
	at := func(d time.Duration) time.Duration { return d }
	tests := []struct {
		name    string
		when    string
		batches mk
	}{
		{"count within 10m reaches 3", `{"count":{"type":"view","within":"10m","min":3}}`, func(v *env) []batch {
			return []batch{
				{[]signals.Event{v.ev("a", "view", at(0))}, false},
				{[]signals.Event{v.ev("a", "view", 4*time.Minute)}, false},
				{[]signals.Event{v.ev("a", "view", 8*time.Minute)}, true},
			}
		}},
		{"count outside the window does not count", `{"count":{"type":"view","within":"10m","min":3}}`, func(v *env) []batch {
			return []batch{
				{[]signals.Event{v.ev("a", "view", 0)}, false},
				{[]signals.Event{v.ev("a", "view", 6*time.Minute)}, false},
				{[]signals.Event{v.ev("a", "view", 12*time.Minute)}, false}, // window [2m, 12m]: 2 views
				{[]signals.Event{v.ev("a", "view", 13*time.Minute)}, true},
			}
		}},
		{"count in one batch, other types ignored", `{"count":{"type":["view","click"],"min":3}}`, func(v *env) []batch {
			return []batch{
				{[]signals.Event{v.ev("a", "view", 0), v.ev("a", "scroll", 1), v.ev("a", "dwell", 2)}, false},
				{[]signals.Event{v.ev("a", "click", time.Second), v.ev("a", "view", 2*time.Second)}, true},
			}
		}},
		{"count session window restarts after a gap", `{"count":{"type":"view","min":2}}`, func(v *env) []batch {
			return []batch{
				{[]signals.Event{v.ev("a", "view", 0)}, false},
				{[]signals.Event{v.ev("a", "view", time.Hour)}, false}, // a new session
				{[]signals.Event{v.ev("a", "view", time.Hour+time.Minute)}, true},
			}
		}},
		{"count by category", `{"count":{"type":"view","category":"shoes","within":"all","min":2}}`, func(v *env) []batch {
			return []batch{
				{[]signals.Event{v.ev("a", "view", 0, item("sku-1")), v.ev("a", "view", 1, item("bag-1"))}, false},
				{[]signals.Event{v.ev("a", "view", time.Minute, item("sku-2"))}, true},
			}
		}},
		{"count on a page and an item", `{"any":[{"count":{"page":"/checkout"}},{"count":{"item":"sku-2","type":"click"}}]}`, func(v *env) []batch {
			return []batch{
				{[]signals.Event{v.ev("a", "view", 0, page("https://shop.example/home")), v.ev("a", "view", 1, item("sku-2"))}, false},
				{[]signals.Event{v.ev("a", "click", time.Minute, item("sku-2"))}, true},
			}
		}},
		{"count max", `{"count":{"type":"view","min":1,"max":2}}`, func(v *env) []batch {
			return []batch{
				{[]signals.Event{v.ev("a", "view", 0)}, true},
				{[]signals.Event{v.ev("a", "view", time.Second)}, true},
				{[]signals.Event{v.ev("a", "view", 2*time.Second)}, false},
			}
		}},
		{"no conversion yet", `{"all":[{"count":{"type":"view"}},{"not":{"count":{"type":"conversion","within":"all"}}}]}`, func(v *env) []batch {
			return []batch{
				{[]signals.Event{v.ev("a", "view", 0)}, true},
				{[]signals.Event{v.ev("a", "conversion", time.Minute)}, false},
				{[]signals.Event{v.ev("a", "view", 2*time.Hour)}, false}, // still converted, in an older session
			}
		}},
		{"all and any and not", `{"all":[{"count":{"type":"view","min":2}},{"any":[{"exit":{}},{"scroll":{"min":75}}]},{"not":{"count":{"type":"add_to_cart"}}}]}`, func(v *env) []batch {
			return []batch{
				{[]signals.Event{v.ev("a", "view", 0), v.ev("a", "exit", 1)}, false},         // one view
				{[]signals.Event{v.ev("a", "view", time.Second)}, false},                     // no exit in this batch
				{[]signals.Event{v.ev("a", "scroll", 2*time.Second, value(80))}, true},       // 2 views, scroll 80
				{[]signals.Event{v.ev("a", "add_to_cart", 3*time.Second, item("x"))}, false}, // cart now
			}
		}},
		{"exit intent only in its batch", `{"exit":{}}`, func(v *env) []batch {
			return []batch{
				{[]signals.Event{v.ev("a", "view", 0)}, false},
				{[]signals.Event{v.ev("a", "view", time.Second), v.ev("a", "exit", 2*time.Second)}, true},
				{[]signals.Event{v.ev("a", "view", 3*time.Second)}, false},
			}
		}},
		{"exit intent within 1m on a page", `{"exit":{"within":"1m","page":"/cart"}}`, func(v *env) []batch {
			return []batch{
				{[]signals.Event{v.ev("a", "exit", 0, page("https://shop.example/home"))}, false},
				{[]signals.Event{v.ev("a", "exit", time.Second, page("https://shop.example/cart?x=1"))}, true},
				{[]signals.Event{v.ev("a", "view", 30*time.Second)}, true},
				{[]signals.Event{v.ev("a", "view", 62*time.Second)}, false},
			}
		}},
		{"dwell on an offer adds up", `{"dwell":{"element":"offer:o2","min_ms":2000}}`, func(v *env) []batch {
			return []batch{
				{[]signals.Event{v.ev("a", "dwell", 0, offer("o2"), value(1200)), v.ev("a", "dwell", 1, offer("o1"), value(5000))}, false},
				{[]signals.Event{v.ev("a", "dwell", time.Second, offer("o2"), value(900))}, true},
			}
		}},
		{"dwell on a custom element counts in its batch only", `{"dwell":{"element":"cta","min_ms":500}}`, func(v *env) []batch {
			return []batch{
				{[]signals.Event{v.ev("a", "dwell", 0, element("other"), value(900))}, false},
				{[]signals.Event{v.ev("a", "dwell", time.Second, element("cta"), value(600))}, true},
				{[]signals.Event{v.ev("a", "view", 2*time.Second)}, false},
			}
		}},
		{"scroll depth on a page", `{"scroll":{"min":75,"page":"/article"}}`, func(v *env) []batch {
			return []batch{
				{[]signals.Event{v.ev("a", "scroll", 0, value(50), page("https://x.example/article/1"))}, false},
				{[]signals.Event{v.ev("a", "scroll", time.Second, value(100), page("https://x.example/home"))}, false},
				{[]signals.Event{v.ev("a", "scroll", 2*time.Second, value(75), page("https://x.example/article/1"))}, true},
			}
		}},
		{"session length and duration", `{"session":{"min_events":3,"min_duration":"1m"}}`, func(v *env) []batch {
			return []batch{
				{[]signals.Event{v.ev("a", "view", 0), v.ev("a", "view", time.Second), v.ev("a", "view", 2*time.Second)}, false},
				{[]signals.Event{v.ev("a", "view", time.Minute)}, true},
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newEnv(t, nil)
			v.model.items["sku-1"] = engine.Item{ID: "sku-1", Category: "shoes", Active: true}
			v.model.items["sku-2"] = engine.Item{ID: "sku-2", Category: "shoes", Active: true}
			v.model.items["bag-1"] = engine.Item{ID: "bag-1", Category: "bags", Active: true}
			v.put(t, promo.KindOffer, `{"id":"o1","title":"Wait!","slot":"exit"}`)
			v.put(t, promo.KindOffer, `{"id":"o2","slot":"hero"}`)
			v.put(t, promo.KindRule, `{"id":"r","cooldown":"0s","when":`+tt.when+`,"then":{"offer":"o1"}}`)
			fired := 0
			for i, b := range tt.batches(v) {
				v.react(t, "a", b.evs...)
				n := len(v.fired(t, "a"))
				if got := n > fired; got != b.fire {
					t.Fatalf("batch %d: fired %v, want %v", i, got, b.fire)
				}
				fired = n
			}
		})
	}
}

// TestRuleUnsortedHistory: a late event with an old timestamp does not
// hide the events of the window before it.
func TestRuleUnsortedHistory(t *testing.T) {
	v := newEnv(t, nil)
	v.put(t, promo.KindOffer, `{"id":"o1","slot":"exit"}`)
	v.put(t, promo.KindRule, `{"id":"r","cooldown":"0s","when":{"count":{"type":"view","within":"10m","min":3}},"then":{"offer":"o1"}}`)
	v.react(t, "a", v.ev("a", "view", 20*time.Minute), v.ev("a", "view", 21*time.Minute))
	v.react(t, "a", v.ev("a", "view", 0)) // arrives late: outside the window
	if n := len(v.fired(t, "a")); n != 0 {
		t.Fatalf("fired %d with 2 views in the window", n)
	}
	v.react(t, "a", v.ev("a", "view", 22*time.Minute))
	if n := len(v.fired(t, "a")); n != 1 {
		t.Fatalf("fired %d with 3 views in the window behind a late one, want 1", n)
	}
}

func TestRuleAffinity(t *testing.T) {
	v := newEnv(t, nil)
	v.model.factors["sku-1"] = []float32{1, 0, 0, 0}
	v.model.factors["sku-2"] = []float32{0, 1, 0, 0}
	v.put(t, promo.KindOffer, `{"id":"shoes","slot":"hero","items":["sku-1"]}`)
	v.put(t, promo.KindOffer, `{"id":"bags","slot":"hero","items":["sku-2"]}`)
	v.put(t, promo.KindRule, `{"id":"r","cooldown":"0s","when":{"affinity":{"offer":"shoes","min":0.3}},"then":{"offer":"shoes"}}`)
	v.react(t, "nofactors", v.ev("nofactors", "view", 0))
	if n := len(v.fired(t, "nofactors")); n != 0 {
		t.Errorf("fired for a visitor without factors")
	}
	v.vis.set("bagfan", []float32{0.1, 0.9, 0, 0})
	v.react(t, "bagfan", v.ev("bagfan", "view", 0))
	if n := len(v.fired(t, "bagfan")); n != 0 {
		t.Errorf("fired at affinity 0.1 < 0.3")
	}
	v.vis.set("shoefan", []float32{0.8, 0.1, 0, 0})
	v.react(t, "shoefan", v.ev("shoefan", "view", 0))
	if n := len(v.fired(t, "shoefan")); n != 1 {
		t.Errorf("did not fire at affinity 0.8 >= 0.3")
	}
	if a, ok := v.e.Affinity([]float32{0.8, 0.1, 0, 0}, "shoes"); !ok || a < 0.79 || a > 0.81 {
		t.Errorf("Affinity = %v, %v; want 0.8", a, ok)
	}
}

func TestRuleCooldown(t *testing.T) {
	v := newEnv(t, nil)
	v.put(t, promo.KindOffer, `{"id":"o1","slot":"exit"}`)
	v.put(t, promo.KindRule, `{"id":"r","cooldown":"1h","when":{"count":{"type":"view"}},"then":{"offer":"o1"}}`)
	steps := []struct {
		at    time.Duration
		total int
	}{
		{0, 1},
		{time.Minute, 1},
		{59 * time.Minute, 1},
		{61 * time.Minute, 2}, // the cooldown ended at 60m
		{62 * time.Minute, 2},
	}
	for _, s := range steps {
		v.clock.Set(t0.Add(s.at))
		v.react(t, "a", v.ev("a", "view", 0))
		v.react(t, "b", v.ev("b", "view", 0))
		if n := len(v.fired(t, "a")); n != s.total {
			t.Fatalf("at +%v: %d promotions, want %d", s.at, n, s.total)
		}
		if n := len(v.fired(t, "b")); n != s.total {
			t.Fatalf("at +%v: visitor b has %d promotions, want %d (cooldowns are per visitor)", s.at, n, s.total)
		}
	}

	// The cooldown is durable: a new engine on the same store (a restart,
	// or another replica) does not fire early.
	e2, err := promo.New(context.Background(), promo.Config{Factors: k, Seed: 1, Now: v.clock.Now}, promo.Deps{Store: v.store, Profiles: v.vis, Model: v.model})
	if err != nil {
		t.Fatal(err)
	}
	v.e = e2
	v.clock.Set(t0.Add(90 * time.Minute))
	v.react(t, "a", v.ev("a", "view", 0))
	if n := len(v.fired(t, "a")); n != 2 {
		t.Fatalf("a restarted engine fired during the cooldown: %d promotions", n)
	}
}

func TestRulePriorityOnePerBatch(t *testing.T) {
	v := newEnv(t, nil)
	v.put(t, promo.KindOffer, `{"id":"o1","slot":"exit"}`)
	v.put(t, promo.KindOffer, `{"id":"o2","slot":"hero"}`)
	v.put(t, promo.KindRule, `{"id":"low","priority":1,"cooldown":"1h","when":{"count":{"type":"view"}},"then":{"offer":"o2"}}`)
	v.put(t, promo.KindRule, `{"id":"high","priority":5,"cooldown":"1h","when":{"count":{"type":"view"}},"then":{"offer":"o1"}}`)
	v.put(t, promo.KindRule, `{"id":"off","priority":9,"active":false,"when":{"count":{"type":"view"}},"then":{"offer":"o1"}}`)
	v.react(t, "a", v.ev("a", "view", 0))
	ps := v.fired(t, "a")
	if len(ps) != 1 || ps[0].Rule != "high" || ps[0].Offer.ID != "o1" || ps[0].Slot != "exit" {
		t.Fatalf("first batch: %+v, want one promotion of rule high", ps)
	}
	v.react(t, "a", v.ev("a", "view", time.Second))
	ps = v.fired(t, "a")
	if len(ps) != 2 || ps[1].Rule != "low" || ps[1].Slot != "hero" {
		t.Fatalf("second batch: %+v, want rule low (high is cooling down)", ps)
	}
	v.react(t, "a", v.ev("a", "view", 2*time.Second))
	if n := len(v.fired(t, "a")); n != 2 {
		t.Fatalf("third batch fired: %d promotions", n)
	}
	bc := v.bus.promotions(t)
	if len(bc) != 2 || bc[0].ID != ps[0].ID || bc[1].ID != ps[1].ID || bc[0].Visitor != "a" {
		t.Errorf("broadcast %+v, want the 2 logged promotions", bc)
	}
}

func TestRuleBestOfferAndIneligible(t *testing.T) {
	v := newEnv(t, nil)
	v.put(t, promo.KindOffer, `{"id":"capped","slot":"side","cap":{"max":1,"per":"24h"}}`)
	v.put(t, promo.KindRule, `{"id":"r","cooldown":"1h","when":{"count":{"type":"view"}},"then":{"slot":"side"}}`)
	v.react(t, "a", v.ev("a", "view", 0))
	ps := v.fired(t, "a")
	if len(ps) != 1 || ps[0].Offer.ID != "capped" || ps[0].Slot != "side" || ps[0].Token == "" {
		t.Fatalf("promotions %+v, want the best offer of slot side", ps)
	}
	// The page renders it: the impression (with the token) uses up the cap.
	v.clock.Add(2 * time.Hour)
	v.react(t, "a", v.ev("a", "impression", 0, offer("capped"), token(ps[0].Token)))
	v.react(t, "a", v.ev("a", "view", time.Second))
	if n := len(v.fired(t, "a")); n != 1 {
		t.Fatalf("fired with the only offer capped")
	}
	// No eligible offer: the cooldown was not used up, so once another
	// offer exists the rule fires at once.
	v.put(t, promo.KindOffer, `{"id":"fresh","slot":"side"}`)
	v.react(t, "a", v.ev("a", "view", 2*time.Second))
	ps = v.fired(t, "a")
	if len(ps) != 2 || ps[1].Offer.ID != "fresh" {
		t.Fatalf("promotions %+v, want offer fresh", ps)
	}
}

// TestRuleNotFiredByImpressions: a batch of impressions only (the page
// rendering a promotion) is not evaluated, even by a rule that would hold.
func TestRuleNotFiredByImpressions(t *testing.T) {
	v := newEnv(t, nil)
	v.put(t, promo.KindOffer, `{"id":"o1","slot":"exit"}`)
	v.put(t, promo.KindRule, `{"id":"r","cooldown":"0s","when":{"session":{"min_events":1}},"then":{"offer":"o1"}}`)
	v.react(t, "a", v.ev("a", "view", 0))
	ps := v.fired(t, "a")
	if len(ps) != 1 {
		t.Fatalf("%d promotions after a view", len(ps))
	}
	v.react(t, "a", v.ev("a", signals.TypeImpression, time.Second, offer("o1"), token(ps[0].Token)))
	if n := len(v.fired(t, "a")); n != 1 {
		t.Fatalf("the promotion's impression fired another: %d", n)
	}
	v.react(t, "a", v.ev("a", signals.TypeImpression, 2*time.Second, offer("o1")), v.ev("a", "click", 3*time.Second, offer("o1")))
	if n := len(v.fired(t, "a")); n != 2 {
		t.Fatalf("a batch with a click did not fire: %d", n)
	}
}

// TestRuleStatusSaysWhyItDoesNotFire: a rule whose offer is served only
// in a campaign that ended matches but pushes nothing; its status says
// so before any event (ready false, naming the campaign and its end) and
// counts the skipped match with the reason; once the campaign is live
// again it fires, then skips for its cooldown.
func TestRuleStatusSaysWhyItDoesNotFire(t *testing.T) {
	v := newEnv(t, nil)
	v.put(t, promo.KindOffer, `{"id":"o1","title":"Stay","slot":"exit"}`)
	v.put(t, promo.KindCampaign, `{"id":"bf","offers":["o1"],"end":"2026-11-01T00:00:00Z"}`)
	v.put(t, promo.KindRule, `{"id":"r1","cooldown":"1h","when":{"exit":{}},"then":{"offer":"o1"}}`)
	status := func() promo.RuleStatus {
		t.Helper()
		d, err := v.e.Get(promo.KindRule, "r1")
		if err != nil {
			t.Fatal(err)
		}
		return d.(promo.RuleDetail).Status
	}
	st := status()
	if st.Ready || !strings.Contains(st.NotReady, `campaign "bf" ended at 2026-11-01T00:00:00Z`) {
		t.Fatalf("status before any event: %+v, want not ready because bf ended", st)
	}
	v.react(t, "v1", v.ev("v1", signals.TypeExit, 0))
	if ps := v.fired(t, "v1"); len(ps) != 0 {
		t.Fatalf("fired with the campaign over: %+v", ps)
	}
	st = status()
	if st.Matched != 1 || st.Fired != 0 || st.Skipped[promo.SkipNoOffer] != 1 || st.LastSkip == nil || !strings.Contains(st.LastSkip.Detail, "ended") {
		t.Fatalf("after a match: %+v (last skip %+v)", st, st.LastSkip)
	}
	v.put(t, promo.KindCampaign, `{"id":"bf","offers":["o1"],"end":"2026-12-31T00:00:00Z"}`)
	if st = status(); !st.Ready {
		t.Fatalf("campaign live again, status %+v", st)
	}
	v.react(t, "v1", v.ev("v1", signals.TypeExit, time.Minute))
	v.react(t, "v1", v.ev("v1", signals.TypeExit, 2*time.Minute))
	st = status()
	if len(v.fired(t, "v1")) != 1 || st.Fired != 1 || st.LastFired == nil || st.Skipped[promo.SkipCooldown] != 1 || st.Matched != 3 {
		t.Fatalf("after firing and a match in the cooldown: %+v", st)
	}
}

// TestDeletedOfferIsNotReplayed: the promotions of an offer deleted since
// are not handed to streams again (a new page would render an offer that
// no longer exists), and an offer created again with a deleted one's id
// does not inherit its counters.
func TestDeletedOfferIsNotReplayed(t *testing.T) {
	v := newEnv(t, nil)
	v.put(t, promo.KindOffer, `{"id":"o1","slot":"exit"}`)
	v.put(t, promo.KindOffer, `{"id":"o2","slot":"exit"}`)
	v.put(t, promo.KindRule, `{"id":"r1","when":{"count":{"type":"view"}},"then":{"offer":"o1"}}`)
	v.put(t, promo.KindRule, `{"id":"r2","when":{"count":{"type":"click"}},"then":{"offer":"o2"}}`)
	v.react(t, "a", v.ev("a", "view", 0))
	v.react(t, "a", v.ev("a", "click", 0))
	ctx := context.Background()
	if ps, err := v.e.Promotions(ctx, "a", 0, 10); err != nil || len(ps) != 2 {
		t.Fatalf("before the deletion: %d promotions, %v", len(ps), err)
	}
	if err := v.e.Delete(ctx, promo.KindRule, "r1"); err != nil {
		t.Fatal(err)
	}
	if err := v.e.Delete(ctx, promo.KindOffer, "o1"); err != nil {
		t.Fatal(err)
	}
	ps, err := v.e.Promotions(ctx, "a", 0, 10)
	if err != nil || len(ps) != 1 || ps[0].Offer.ID != "o2" {
		t.Fatalf("after deleting o1: %+v, %v; want o2's promotion alone", ps, err)
	}
	// Created again, o1 starts anew: no counters of the deleted one.
	v.put(t, promo.KindOffer, `{"id":"o1","slot":"exit"}`)
	v.react(t, "a", v.ev("a", signals.TypeImpression, 1, offer("o1")))
	if v.e.Stats("o1") == (promo.OfferStats{}) {
		t.Fatal("o1's impression was not counted before the deletion")
	}
	if err := v.e.Delete(ctx, promo.KindOffer, "o1"); err != nil {
		t.Fatal(err)
	}
	v.put(t, promo.KindOffer, `{"id":"o1","slot":"exit"}`)
	if got := v.e.Stats("o1"); got != (promo.OfferStats{}) {
		t.Errorf("o1 created again has the deleted one's counters %+v", got)
	}
}
