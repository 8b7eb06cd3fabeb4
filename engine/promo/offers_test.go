package promo_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/promo"
	"github.com/kairoshq/kairos/engine/promo/promotest"
	"github.com/kairoshq/kairos/signals"
)

// ranked returns the ids RankOffers answers for visitor in slot.
func (v *env) ranked(tb testing.TB, visitor, slot string, n int) []promo.RankedOffer {
	tb.Helper()
	l, err := v.e.RankOffers(context.Background(), promo.OfferRequest{Visitor: visitor, Slot: slot, N: n})
	if err != nil {
		tb.Fatalf("RankOffers: %v", err)
	}
	return l.Offers
}

func ids(os []promo.RankedOffer) []string {
	out := make([]string, len(os))
	for i, o := range os {
		out[i] = o.ID
	}
	slices.Sort(out)
	return out
}

func TestOfferEligibility(t *testing.T) {
	fri := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC) // a Friday; Paris is UTC+1
	defs := []struct {
		kind promo.Kind
		body string
	}{
		{promo.KindOffer, `{"id":"always","slot":"s"}`},
		{promo.KindOffer, `{"id":"off","slot":"s","active":false}`},
		{promo.KindOffer, `{"id":"window","slot":"s","start":"2026-11-27T12:00:00Z","end":"2026-11-28T00:00:00Z"}`},
		{promo.KindOffer, `{"id":"office","slot":"s"}`},
		{promo.KindOffer, `{"id":"night","slot":"s"}`},
		{promo.KindOffer, `{"id":"stopped","slot":"s"}`},
		{promo.KindOffer, `{"id":"other-slot","slot":"t"}`},
		{promo.KindCampaign, `{"id":"office-hours","offers":["office"],"schedule":{"days":["fri"],"from":"09:00","to":"17:00","tz":"Europe/Paris"}}`},
		{promo.KindCampaign, `{"id":"late","offers":["night"],"schedule":{"days":["fri"],"from":"22:00","to":"02:00","tz":"Europe/Paris"}}`},
		{promo.KindCampaign, `{"id":"paused","offers":["stopped"],"active":false}`},
	}
	tests := []struct {
		at   time.Time
		want []string
	}{
		{fri.Add(7 * time.Hour), []string{"always"}},                      // 08:00 Paris
		{fri.Add(8 * time.Hour), []string{"always", "office"}},            // 09:00 Paris
		{fri.Add(12 * time.Hour), []string{"always", "office", "window"}}, // window starts
		{fri.Add(16*time.Hour - time.Second), []string{"always", "office", "window"}},
		{fri.Add(16 * time.Hour), []string{"always", "window"}},          // 17:00 Paris: closed
		{fri.Add(21 * time.Hour), []string{"always", "night", "window"}}, // 22:00 Paris
		{fri.Add(24*time.Hour - time.Second), []string{"always", "night", "window"}},
		{fri.Add(24 * time.Hour), []string{"always", "night"}},                // Sat 01:00 Paris: Friday's night; window ended
		{fri.Add(25 * time.Hour), []string{"always"}},                         // Sat 02:00 Paris
		{fri.Add(7*24*time.Hour + 8*time.Hour), []string{"always", "office"}}, // next Friday
		{fri.Add(8*24*time.Hour + 8*time.Hour), []string{"always"}},           // Saturday
	}
	v := newEnv(t, nil)
	for _, d := range defs {
		v.put(t, d.kind, d.body)
	}
	for _, tt := range tests {
		v.clock.Set(tt.at)
		if got := ids(v.ranked(t, "v", "s", 100)); !slices.Equal(got, tt.want) {
			t.Errorf("at %v: %v, want %v", tt.at, got, tt.want)
		}
	}
	v.clock.Set(fri.Add(8 * time.Hour))
	if got := ids(v.ranked(t, "v", "", 100)); !slices.Equal(got, []string{"always", "office", "other-slot"}) {
		t.Errorf("any slot: %v", got)
	}
}

func TestOfferCampaignPriority(t *testing.T) {
	v := newEnv(t, nil)
	v.put(t, promo.KindOffer, `{"id":"a","slot":"s"}`)
	v.put(t, promo.KindOffer, `{"id":"b","slot":"s"}`)
	v.put(t, promo.KindOffer, `{"id":"c","slot":"s"}`)
	v.put(t, promo.KindCampaign, `{"id":"low","offers":["a","c"],"priority":-1}`)
	v.put(t, promo.KindCampaign, `{"id":"top","offers":["c"],"priority":10}`)
	for range 50 {
		got := v.ranked(t, "v", "s", 3)
		if got[0].ID != "c" || got[0].Campaign != "top" || got[1].ID != "b" || got[2].ID != "a" || got[2].Campaign != "low" {
			t.Fatalf("ranking %v %v %v, want c (priority 10), b (0), a (−1)", got[0], got[1], got[2])
		}
	}
}

func TestOfferCapAndBudget(t *testing.T) {
	v := newEnv(t, nil)
	v.put(t, promo.KindOffer, `{"id":"capped","slot":"s","cap":{"max":2,"per":"1h"}}`)
	v.put(t, promo.KindOffer, `{"id":"budget","slot":"s","budget":3}`)
	show := func(visitor, id string) {
		t.Helper()
		for _, o := range v.ranked(t, visitor, "s", 10) {
			if o.ID == id {
				v.react(t, visitor, v.ev(visitor, signals.TypeImpression, 0, offer(id), token(o.Token)))
				return
			}
		}
		t.Fatalf("%s not offered to %s", id, visitor)
	}
	has := func(visitor, id string) bool {
		t.Helper()
		return slices.Contains(ids(v.ranked(t, visitor, "s", 10)), id)
	}
	show("v1", "capped")
	show("v1", "capped")
	if has("v1", "capped") {
		t.Errorf("capped offered after 2 impressions in the hour")
	}
	if !has("v2", "capped") {
		t.Errorf("another visitor's cap applied to v2")
	}
	v.clock.Add(time.Hour)
	if !has("v1", "capped") {
		t.Errorf("cap still applied after its window")
	}
	show("v1", "budget")
	show("v2", "budget")
	if !has("v3", "budget") {
		t.Errorf("budget exhausted after 2 of 3")
	}
	show("v3", "budget")
	if has("v4", "budget") || has("v1", "budget") {
		t.Errorf("budget offered after 3 impressions of 3")
	}
	if st := v.e.Stats("budget"); st.Impressions != 3 {
		t.Errorf("stats %+v, want 3 impressions", st)
	}
}

func TestOfferRequestErrors(t *testing.T) {
	v := newEnv(t, nil)
	for _, r := range []promo.OfferRequest{
		{Visitor: "", N: 1}, {Visitor: "v", N: 0}, {Visitor: "v", N: 101}, {Visitor: "v", Slot: "a b", N: 1},
	} {
		if _, err := v.e.RankOffers(context.Background(), r); !errors.Is(err, engine.ErrInvalid) {
			t.Errorf("RankOffers(%+v) = %v, want ErrInvalid", r, err)
		}
	}
	if got := v.ranked(t, "v", "nothing-here", 5); len(got) != 0 {
		t.Errorf("empty slot answered %v", got)
	}
}

// storeWith returns a store whose offers have the given (impressions,
// clicks).
func storeWith(tb testing.TB, stats map[string][2]int64) *promo.BackendStore {
	tb.Helper()
	s := promotest.NewMem()
	c := promo.Counts{Now: t0, Stats: map[string]promo.OfferStats{}}
	for id, ic := range stats {
		c.Stats[id] = promo.OfferStats{Impressions: ic[0], Clicks: ic[1]}
	}
	if err := s.AddOfferCounts(context.Background(), c); err != nil {
		tb.Fatal(err)
	}
	return s
}

func TestThompsonExploration(t *testing.T) {
	const runs = 1000
	tests := []struct {
		name  string
		stats map[string][2]int64
		check func(t *testing.T, firsts map[string]int)
	}{
		{"a clearly better offer wins", map[string][2]int64{"good": {1000, 100}, "poor": {1000, 20}}, func(t *testing.T, f map[string]int) {
			if f["good"] < runs*95/100 {
				t.Errorf("good first %d/%d times, want >= 95%%", f["good"], runs)
			}
		}},
		{"a new offer is explored", map[string][2]int64{"good": {1000, 100}, "new": {0, 0}}, func(t *testing.T, f map[string]int) {
			if f["new"] < runs/5 || f["good"] < runs/50 {
				t.Errorf("new first %d/%d times, good %d: want both explored (new >= 20%%)", f["new"], runs, f["good"])
			}
		}},
		{"close offers share", map[string][2]int64{"a": {200, 20}, "b": {200, 22}}, func(t *testing.T, f map[string]int) {
			if f["a"] < runs/10 || f["b"] < runs/10 {
				t.Errorf("first: a %d, b %d of %d: want both often", f["a"], f["b"], runs)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newEnvWith(t, storeWith(t, tt.stats), nil)
			for id := range tt.stats {
				v.put(t, promo.KindOffer, `{"id":"`+id+`","slot":"s"}`)
			}
			firsts := map[string]int{}
			for range runs {
				firsts[v.ranked(t, "v", "s", 2)[0].ID]++
			}
			tt.check(t, firsts)
		})
	}
}

func TestThompsonSeeded(t *testing.T) {
	seq := func() []string {
		v := newEnvWith(t, storeWith(t, map[string][2]int64{"a": {50, 5}, "b": {50, 6}, "c": {0, 0}}), nil)
		for _, id := range []string{"a", "b", "c"} {
			v.put(t, promo.KindOffer, `{"id":"`+id+`","slot":"s"}`)
		}
		var out []string
		for range 100 {
			out = append(out, v.ranked(t, "v", "s", 1)[0].ID)
		}
		return out
	}
	a, b := seq(), seq()
	if !slices.Equal(a, b) {
		t.Errorf("same seed, different rankings")
	}
}

func TestAffinityRanking(t *testing.T) {
	v := newEnv(t, nil)
	v.model.factors["sku-1"] = []float32{1, 0, 0, 0}
	v.model.factors["sku-2"] = []float32{0, 1, 0, 0}
	v.model.factors["bag-1"] = []float32{0, 0.5, 0.5, 0}
	v.model.items["bag-1"] = engine.Item{ID: "bag-1", Category: "bags", Active: true}
	v.model.items["bag-2"] = engine.Item{ID: "bag-2", Category: "bags", Active: true} // no factors
	v.put(t, promo.KindOffer, `{"id":"shoes","slot":"s","items":["sku-1"]}`)
	v.put(t, promo.KindOffer, `{"id":"bags","slot":"s","items":["sku-2"],"categories":["bags"]}`)
	v.put(t, promo.KindOffer, `{"id":"plain","slot":"s"}`)
	v.vis.set("shoefan", []float32{0.9, 0, 0, 0})
	v.vis.set("bagfan", []float32{0, 0.9, 0, 0})
	firsts := map[string]map[string]int{"shoefan": {}, "bagfan": {}}
	for range 300 {
		for vis := range firsts {
			firsts[vis][v.ranked(t, vis, "s", 3)[0].ID]++
		}
	}
	// Without click data θ is uniform: the affinity (weight 0.5) makes the
	// matching offer first about 84% of the time (the unknown "plain"
	// gets the neutral mean affinity and wins the rest).
	if firsts["shoefan"]["shoes"] < 220 || firsts["bagfan"]["shoes"] > 30 {
		t.Errorf("shoes first: for the shoe fan %d/300, for the bag fan %d/300", firsts["shoefan"]["shoes"], firsts["bagfan"]["shoes"])
	}
	if firsts["bagfan"]["bags"] < 220 || firsts["shoefan"]["bags"] > 30 {
		t.Errorf("bags first: for the bag fan %d/300, for the shoe fan %d/300", firsts["bagfan"]["bags"], firsts["shoefan"]["bags"])
	}
	// bags' centroid: mean of sku-2's factors and the bags category's mean
	// (bag-1 only: bag-2 has no factors, and the category loads at refresh).
	a, ok := v.e.Affinity([]float32{0, 1, 0, 0}, "bags")
	if !ok || a != 1 {
		t.Errorf("affinity before the category refresh = %v, %v; want 1 (items only)", a, ok)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- v.e.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if a, _ = v.e.Affinity([]float32{0, 1, 0, 0}, "bags"); a == 0.75 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("affinity after the category refresh = %v, want (1 + 0.5)/2", a)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

func TestOwnFactorLearnt(t *testing.T) {
	v := newEnv(t, nil)
	v.put(t, promo.KindOffer, `{"id":"o","slot":"s"}`)
	likes, ignores := []float32{1, 0, 0, 0}, []float32{0, 1, 0, 0}
	if _, ok := v.e.Affinity(likes, "o"); ok {
		t.Fatalf("affinity known before any exposure")
	}
	for i := range 60 {
		vl, vi := "l"+itoa(i), "i"+itoa(i)
		v.vis.set(vl, likes)
		v.vis.set(vi, ignores)
		v.react(t, vl, v.ev(vl, signals.TypeImpression, 0, offer("o")), v.ev(vl, signals.TypeClick, time.Second, offer("o")))
		v.react(t, vi, v.ev(vi, signals.TypeImpression, 0, offer("o")))
	}
	al, okl := v.e.Affinity(likes, "o")
	ai, oki := v.e.Affinity(ignores, "o")
	if !okl || !oki || al < 0.5 || ai > 0.1 {
		t.Errorf("learnt affinity: clickers %v (%v), ignorers %v (%v); want > 0.5 and < 0.1", al, okl, ai, oki)
	}
	st := v.e.Stats("o")
	if st.Impressions != 120 || st.Clicks != 60 {
		t.Errorf("stats %+v", st)
	}
	oc, _ := v.store.OfferCounts(context.Background())
	if len(oc.Factors["o"]) != k {
		t.Errorf("own factor not stored: %v", oc.Factors)
	}
}

// TestBaselineRankingIgnoresFactors: with Baseline (a visitor in the
// personalization holdout) the visitor's factors do not rank: the shoe
// fan's matching offer is first no more often than the others.
func TestBaselineRankingIgnoresFactors(t *testing.T) {
	v := newEnv(t, nil)
	v.model.factors["sku-1"] = []float32{1, 0, 0, 0}
	v.model.factors["sku-2"] = []float32{0, 1, 0, 0}
	v.put(t, promo.KindOffer, `{"id":"shoes","slot":"s","items":["sku-1"]}`)
	v.put(t, promo.KindOffer, `{"id":"bags","slot":"s","items":["sku-2"]}`)
	v.vis.set("shoefan", []float32{0.9, 0, 0, 0})
	first := map[string]int{}
	for range 300 {
		l, err := v.e.RankOffers(context.Background(), promo.OfferRequest{Visitor: "shoefan", Slot: "s", N: 2, Baseline: true})
		if err != nil {
			t.Fatal(err)
		}
		first[l.Offers[0].ID]++
	}
	// Without click data θ is uniform and no affinity counts: about half each.
	if first["shoes"] < 100 || first["shoes"] > 200 {
		t.Errorf("baseline: shoes first %d/300 for the shoe fan, want about half (personalized: > 220)", first["shoes"])
	}
}
