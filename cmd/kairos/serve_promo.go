package main

import (
	"context"
	"fmt"

	"github.com/kairoshq/kairos/engine/promo"
)

// addPromo creates the promo engine (offers, campaigns, rules and instant
// promotions) over the store, registers it as a reactor of the engine and
// gives it to the API.
func (a *app) addPromo(ctx context.Context, w *wiring) error {
	p, err := promo.New(ctx, promo.Config{Factors: a.engine.Online().K(), Logger: a.log, Registerer: w.reg},
		promo.Deps{Store: must[promo.Store](a.store), Profiles: a.engine, Model: a.engine, Broadcaster: a.bus, Experiments: a.promoExperiments()})
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
