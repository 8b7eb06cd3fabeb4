package main

import (
	"context"
	"fmt"

	"github.com/kairoshq/kairos/engine/experiments"
	"github.com/kairoshq/kairos/engine/promo"
)

// addExperiments creates the experiments engine over the store,
// registers it as a reactor of the
// engine (attribution), gives it to the API (/v1/experiments, the variants
// of /v1/offers and /v1/recommendations) and erases visitors' experiment
// state with theirs. Exposures are published on the bus; the signing key
// derives from the store's token secret. Call it before addPromo, which
// hands it to the promo engine (promoExperiments).
func (a *app) addExperiments(ctx context.Context, w *wiring) error {
	secret, err := promo.NewStore(a.store).PromoSecret(ctx)
	if err != nil {
		return fmt.Errorf("experiments: secret: %w", err)
	}
	x, err := experiments.New(ctx, experiments.Config{Logger: a.log, Registerer: w.reg, QueueLength: a.cfg.Tenants.queueLength()},
		experiments.Deps{Backend: a.store, Publisher: a.bus, Links: a.store, Secret: secret})
	if err != nil {
		return fmt.Errorf("experiments: %w", err)
	}
	a.exps = x
	a.engine.AddReactor(x)
	w.deps.Experiments = x
	w.deps.Eraser = alsoErase{name: "experiments", forget: x.ForgetVisitor, ids: a.engine.ErasureIDs, next: w.deps.Eraser}
	return nil
}

// promoExperiments is the promo engine's experiments hook (nil without
// the experiments engine).
func (a *app) promoExperiments() promo.Experiments {
	if a.exps == nil {
		return nil
	}
	return a.exps
}
