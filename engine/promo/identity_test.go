package promo_test

import (
	"context"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/promo"
	"github.com/kairoshq/kairos/signals"
)

// TestPromotionGoesToTheDevice checks an identified visitor: the engine
// hands React the user's state (key engine.UserKey) while the page's
// stream is keyed by the device's anonymous id. The promotion must be
// logged and broadcast for the device that sent the triggering event, its
// token must attribute that device's impression, and the rule's cooldown
// holds for the user across devices.
func TestPromotionGoesToTheDevice(t *testing.T) {
	v := newEnv(t, nil)
	v.put(t, promo.KindOffer, `{"id":"o1","title":"Hi","slot":"hero"}`)
	v.put(t, promo.KindRule, `{"id":"r1","cooldown":"1h","when":{"exit":{}},"then":{"offer":"o1"}}`)
	userKey := engine.UserKey("u1")
	ctx := context.Background()
	change := func(evs ...signals.Event) engine.VisitorChange {
		var hist []engine.HistoryEvent
		for _, e := range evs {
			hist = append(hist, engine.HistoryEvent{ID: e.ID, Type: e.Type, Item: e.Item, Offer: e.Offer, Time: e.Time.Time})
		}
		return engine.VisitorChange{
			Visitor: engine.Visitor{ID: userKey, History: hist, Session: engine.Session{Start: t0, Last: t0, Events: len(evs)}},
			Fresh:   evs,
		}
	}
	user := func(e *signals.Event) { e.User = "u1" }

	// Device A's exit fires the rule; an earlier impression of device B in
	// the same batch does not decide where it goes.
	v.e.React(ctx, []engine.VisitorChange{change(
		v.ev("dev-b", signals.TypeImpression, 0, user),
		v.ev("dev-a", signals.TypeExit, 1, user),
	)})
	if ps := v.fired(t, userKey); len(ps) != 0 {
		t.Fatalf("promotion logged under the state key %s: %+v", userKey, ps)
	}
	ps := v.fired(t, "dev-a")
	if len(ps) != 1 || ps[0].Visitor != "dev-a" || ps[0].Rule != "r1" {
		t.Fatalf("device log: %+v, want one promotion of r1 for dev-a", ps)
	}
	if b := v.bus.promotions(t); len(b) != 1 || b[0].Visitor != "dev-a" {
		t.Fatalf("broadcast %+v, want one for dev-a (the stream hub wakes streams by this visitor)", b)
	}

	// The rendered promotion's impression from the device is attributed.
	imp := v.ev("dev-a", signals.TypeImpression, 2, user, token(ps[0].Token), offer("o1"))
	v.e.React(ctx, []engine.VisitorChange{change(imp)})
	if st := v.e.Stats("o1"); st.Impressions != 1 {
		t.Fatalf("impressions of o1 = %d, want 1 (token made for the device)", st.Impressions)
	}

	// Device B's exit during the user's cooldown fires nothing.
	v.e.React(ctx, []engine.VisitorChange{change(v.ev("dev-b", signals.TypeExit, 3, user))})
	if ps := v.fired(t, "dev-b"); len(ps) != 0 {
		t.Fatalf("fired for dev-b during the user's cooldown: %+v", ps)
	}
}

// TestForgetUserEndsItsCooldown: erasing a user forgets the rule
// cooldowns kept under its state key (engine.UserKey), not only its raw
// id's state: after ForgetVisitor("u1") a device of a new u1 fires again.
func TestForgetUserEndsItsCooldown(t *testing.T) {
	v := newEnv(t, nil)
	v.put(t, promo.KindOffer, `{"id":"o1","title":"Hi","slot":"hero"}`)
	v.put(t, promo.KindRule, `{"id":"r1","cooldown":"24h","when":{"exit":{}},"then":{"offer":"o1"}}`)
	ctx := context.Background()
	exit := func(n time.Duration) engine.VisitorChange {
		ev := v.ev("dev", signals.TypeExit, n, func(e *signals.Event) { e.User = "u1" })
		return engine.VisitorChange{
			Visitor: engine.Visitor{ID: engine.UserKey("u1"), History: []engine.HistoryEvent{{ID: ev.ID, Type: ev.Type, Time: ev.Time.Time}},
				Session: engine.Session{Start: t0, Last: t0, Events: 1}},
			Fresh: []signals.Event{ev},
		}
	}
	v.e.React(ctx, []engine.VisitorChange{exit(0)})
	v.e.React(ctx, []engine.VisitorChange{exit(1)})
	if ps := v.fired(t, "dev"); len(ps) != 1 {
		t.Fatalf("before the erasure: %d promotions, want 1 (the second exit is in the cooldown)", len(ps))
	}
	if err := v.e.ForgetVisitor(ctx, "u1"); err != nil {
		t.Fatal(err)
	}
	if _, until, _ := v.store.TryRuleCooldown(ctx, engine.UserKey("u1"), "r1", t0, time.Hour); !until.Equal(t0.Add(time.Hour)) {
		t.Fatalf("the user's cooldown survived its erasure: it runs until %v", until)
	}
}
