package main

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kairoshq/kairos/api"
	"github.com/kairoshq/kairos/engine/promo"
)

// addPromo creates the promo engine (offers, campaigns, rules and instant
// promotions) over the store, registers it as a reactor of the engine and
// gives it to the API. Both stores implement promo.Store.
func (a *app) addPromo(ctx context.Context, reg prometheus.Registerer, deps *api.Deps) error {
	ps, ok := a.store.(promo.Store)
	if !ok {
		return nil
	}
	p, err := promo.New(ctx, promo.Config{Factors: a.engine.Online().K(), Logger: a.log, Registerer: reg},
		promo.Deps{Store: ps, Profiles: a.engine, Model: a.engine, Broadcaster: a.bus, Experiments: a.promoExperiments()})
	if err != nil {
		return fmt.Errorf("promo: %w", err)
	}
	a.promo = p
	if a.exps != nil {
		a.exps.SetDefinitions(p)
	}
	a.engine.AddReactor(p)
	deps.Offers, deps.Definitions, deps.Promotions, deps.Subscriber = p, p, p, a.bus
	if deps.Eraser != nil {
		deps.Eraser = alsoErase{name: "promo", forget: p.ForgetVisitor, ids: a.engine.ErasureIDs, next: deps.Eraser}
	}
	return nil
}
