package main

import (
	"context"
	"fmt"

	"github.com/kairoshq/kairos/engine/holdout"
	"github.com/kairoshq/kairos/engine/promo"
)

// addPromo creates the promo engine (offers, campaigns, rules and instant
// promotions) over the store, registers it as a reactor of the engine and
// gives it to the API.
func (a *app) addPromo(ctx context.Context, w *wiring) error {
	p, err := promo.New(ctx, promo.Config{Factors: a.engine.Online().K(), Logger: a.log, Registerer: w.reg},
		promo.Deps{Store: promo.NewStore(a.store), Profiles: a.engine, Model: a.engine, Broadcaster: a.bus, Experiments: a.promoExperiments(),
			HeldOut: a.heldOut(), Linked: a.store.Linked})
	if err != nil {
		return fmt.Errorf("promo: %w", err)
	}
	a.promo = p
	if a.exps != nil {
		a.exps.SetDefinitions(p)
	}
	a.engine.AddReactor(p)
	w.deps.Offers, w.deps.Definitions, w.deps.Promotions, w.deps.Subscriber = p, p, p, a.bus
	w.deps.Eraser = alsoErase{name: "promo", forget: p.ForgetVisitor, ids: a.engine.ErasureIDs, next: w.deps.Eraser}
	return nil
}

// heldOut is promo.Deps.HeldOut: whether the personalization holdout
// holds the visitor out (nil when the holdout is off). A store error
// counts as not held out: the rule's promotion goes out, as before the
// holdout existed.
func (a *app) heldOut() func(ctx context.Context, visitor, user string) bool {
	if a.holdout == nil || !a.holdout.On() {
		return nil
	}
	h := a.holdout
	return func(ctx context.Context, visitor, user string) bool {
		arm, err := h.Assign(ctx, visitor, user)
		return err == nil && arm == holdout.ArmHoldout
	}
}
