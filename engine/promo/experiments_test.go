package promo_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/promo"
	"github.com/kairoshq/kairos/engine/promo/promotest"
	"github.com/kairoshq/kairos/internal/testutil"
	"github.com/kairoshq/kairos/signals"
)

// fakeExperiments answers PromotionOffer from a table by visitor and
// records its calls.
type fakeExperiments struct {
	mu     sync.Mutex
	offers map[string]string   // visitor → offer ("" holdout); absent: the rule's
	calls  []string            // "visitor user rule offer"
	naming map[string][]string // "kind id" → paths of experiments naming it
}

func (f *fakeExperiments) Naming(kind, id string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.naming[kind+" "+id]
}

func (f *fakeExperiments) PromotionOffer(_ context.Context, visitor, user, rule, offer string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, visitor+" "+user+" "+rule+" "+offer)
	if o, ok := f.offers[visitor]; ok {
		return o
	}
	return offer
}

// TestExperimentDecidesThePromotion: with Deps.Experiments, the rule
// pushes the offer the experiment returns, or nothing for a holdout.
func TestExperimentDecidesThePromotion(t *testing.T) {
	v := &env{
		store: promotest.NewMem(), clock: testutil.NewClock(t0),
		model: &fakeModel{factors: map[string][]float32{}, items: map[string]engine.Item{}},
		vis:   &fakeVisitors{m: map[string][]float32{}}, bus: &recorder{},
		hist: map[string][]engine.HistoryEvent{}, sess: map[string]engine.Session{},
	}
	x := &fakeExperiments{offers: map[string]string{"a": "o2", "b": ""}}
	e, err := promo.New(context.Background(), promo.Config{Factors: k, Seed: 42, Now: v.clock.Now},
		promo.Deps{Store: v.store, Profiles: v.vis, Model: v.model, Broadcaster: v.bus, Experiments: x})
	if err != nil {
		t.Fatal(err)
	}
	v.e = e
	v.put(t, promo.KindOffer, `{"id":"o1","slot":"exit","title":"one"}`)
	v.put(t, promo.KindOffer, `{"id":"o2","slot":"exit","title":"two"}`)
	v.put(t, promo.KindRule, `{"id":"r1","cooldown":"1h","when":{"exit":{}},"then":{"offer":"o1"}}`)
	for _, who := range []string{"a", "b", "c"} {
		v.react(t, who, v.ev(who, signals.TypeExit, 0))
	}
	for who, want := range map[string]string{"a": "o2", "b": "", "c": "o1"} {
		ps := v.fired(t, who)
		switch {
		case want == "" && len(ps) != 0:
			t.Errorf("%s (holdout) got %d promotions", who, len(ps))
		case want != "" && (len(ps) != 1 || ps[0].Offer.ID != want):
			t.Errorf("%s: promotions %+v, want %s", who, ps, want)
		}
	}
	// The holdout's cooldown started like the others': no second call.
	v.react(t, "b", v.ev("b", signals.TypeExit, 0))
	// A known user's state key: the device is the visitor, the user named.
	exit := v.ev("phone", signals.TypeExit, 0)
	ch := engine.VisitorChange{Fresh: []signals.Event{exit}, Visitor: engine.Visitor{ID: engine.UserKey("u1"),
		History: []engine.HistoryEvent{{ID: exit.ID, Type: exit.Type, Time: exit.Time.Time}},
		Session: engine.Session{ID: "s", Start: exit.Time.Time, Last: exit.Time.Time, Events: 1}}}
	v.e.React(context.Background(), []engine.VisitorChange{ch})
	want := []string{"a  r1 o1", "b  r1 o1", "c  r1 o1", "phone u1 r1 o1"}
	if len(x.calls) != len(want) {
		t.Fatalf("calls %q, want %q", x.calls, want)
	}
	for i := range want {
		if x.calls[i] != want[i] {
			t.Errorf("call %d = %q, want %q", i, x.calls[i], want[i])
		}
	}
}

// TestRankOffersOfACampaign: OfferRequest.Campaign keeps only that live
// campaign's offers.
func TestRankOffersOfACampaign(t *testing.T) {
	v := newEnv(t, nil)
	v.put(t, promo.KindOffer, `{"id":"o1","slot":"hero"}`)
	v.put(t, promo.KindOffer, `{"id":"o2","slot":"hero"}`)
	v.put(t, promo.KindOffer, `{"id":"o3","slot":"hero"}`)
	v.put(t, promo.KindCampaign, `{"id":"c1","offers":["o2","o3"]}`)
	ctx := context.Background()
	list, err := v.e.RankOffers(ctx, promo.OfferRequest{Visitor: "v", Slot: "hero", N: 10, Campaign: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Offers) != 2 || list.Offers[0].ID == "o1" || list.Offers[1].ID == "o1" {
		t.Errorf("campaign c1 ranked %+v", list.Offers)
	}
	if list, err := v.e.RankOffers(ctx, promo.OfferRequest{Visitor: "v", Slot: "hero", N: 10}); err != nil || len(list.Offers) != 3 {
		t.Errorf("without campaign: %+v, %v: want all 3 offers", list.Offers, err)
	}
	if _, err := v.e.RankOffers(ctx, promo.OfferRequest{Visitor: "v", Slot: "hero", N: 10, Campaign: "bad id!"}); err == nil {
		t.Errorf("a malformed campaign id was accepted")
	}
}

// TestDeleteRefusedWhileAnExperimentNamesIt: an offer or campaign that an
// experiment's variant names cannot be deleted (ErrInUse naming the
// experiment), like one a rule names.
func TestDeleteRefusedWhileAnExperimentNamesIt(t *testing.T) {
	v := newEnv(t, nil)
	x := &fakeExperiments{naming: map[string][]string{
		"offers o2":    {"experiments[hero].variants[1].offer"},
		"campaigns bf": {"experiments[hero].variants[2].campaign"},
		"rules r1":     {"experiments[px].target.rule"},
	}}
	e, err := promo.New(context.Background(), promo.Config{Factors: k, Seed: 42, Now: v.clock.Now},
		promo.Deps{Store: v.store, Profiles: v.vis, Model: v.model, Experiments: x})
	if err != nil {
		t.Fatal(err)
	}
	v.e = e
	v.put(t, promo.KindOffer, `{"id":"o1","slot":"hero"}`)
	v.put(t, promo.KindOffer, `{"id":"o2","slot":"hero"}`)
	v.put(t, promo.KindCampaign, `{"id":"bf","offers":["o1"]}`)
	v.put(t, promo.KindRule, `{"id":"r1","when":{"exit":{}},"then":{"offer":"o1"}}`)
	for _, c := range []struct {
		kind promo.Kind
		id   string
		want string
	}{{promo.KindOffer, "o2", "experiments[hero].variants[1].offer"}, {promo.KindCampaign, "bf", "experiments[hero].variants[2].campaign"},
		{promo.KindRule, "r1", "experiments[px].target.rule"}} {
		err := e.Delete(context.Background(), c.kind, c.id)
		if !errors.Is(err, promo.ErrInUse) || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("delete %s %s: %v, want ErrInUse naming %s", c.kind, c.id, err, c.want)
		}
	}
	if !e.HasOffer("o2") || !e.HasCampaign("bf") || e.HasOffer("nope") || !e.HasRule("r1") || e.HasRule("nope") {
		t.Fatal("HasOffer/HasCampaign/HasRule disagree with the definitions")
	}
}

// TestPersonalizationHoldoutGetsNoRulePromotion: with Deps.HeldOut, a
// rule pushes nothing to a held-out visitor (skip reason holdout, no
// experiment asked, no cooldown started) and to the others as before.
func TestPersonalizationHoldoutGetsNoRulePromotion(t *testing.T) {
	v := &env{
		store: promotest.NewMem(), clock: testutil.NewClock(t0),
		model: &fakeModel{factors: map[string][]float32{}, items: map[string]engine.Item{}},
		vis:   &fakeVisitors{m: map[string][]float32{}}, bus: &recorder{},
		hist: map[string][]engine.HistoryEvent{}, sess: map[string]engine.Session{},
	}
	x := &fakeExperiments{offers: map[string]string{}}
	var asked []string
	held := func(_ context.Context, visitor, user string) bool {
		asked = append(asked, visitor+"/"+user)
		return visitor == "b" || user == "u-held"
	}
	e, err := promo.New(context.Background(), promo.Config{Factors: k, Seed: 42, Now: v.clock.Now},
		promo.Deps{Store: v.store, Profiles: v.vis, Model: v.model, Broadcaster: v.bus, Experiments: x, HeldOut: held})
	if err != nil {
		t.Fatal(err)
	}
	v.e = e
	v.put(t, promo.KindOffer, `{"id":"o1","slot":"exit","title":"one"}`)
	v.put(t, promo.KindRule, `{"id":"r1","cooldown":"1h","when":{"exit":{}},"then":{"offer":"o1"}}`)
	for _, who := range []string{"a", "b"} {
		v.react(t, who, v.ev(who, signals.TypeExit, 0))
	}
	if ps := v.fired(t, "a"); len(ps) != 1 || ps[0].Offer.ID != "o1" {
		t.Errorf("a (personalized): promotions %+v, want o1", ps)
	}
	if ps := v.fired(t, "b"); len(ps) != 0 {
		t.Errorf("b (held out) got %d promotions", len(ps))
	}
	// A known user held out, through its device.
	exit := v.ev("phone", signals.TypeExit, 0)
	ch := engine.VisitorChange{Fresh: []signals.Event{exit}, Visitor: engine.Visitor{ID: engine.UserKey("u-held"),
		History: []engine.HistoryEvent{{ID: exit.ID, Type: exit.Type, Time: exit.Time.Time}},
		Session: engine.Session{ID: "s", Start: exit.Time.Time, Last: exit.Time.Time, Events: 1}}}
	v.e.React(context.Background(), []engine.VisitorChange{ch})
	if ps := v.fired(t, "phone"); len(ps) != 0 {
		t.Errorf("the held-out user's device got %d promotions", len(ps))
	}
	if len(x.calls) != 1 || x.calls[0] != "a  r1 o1" {
		t.Errorf("experiments asked %q, want only for a", x.calls)
	}
	if !slices.Contains(asked, "phone/u-held") {
		t.Errorf("holdout asked %q, want the device with its user", asked)
	}
}
