package main

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kairoshq/kairos/api"
	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/experiments"
	"github.com/kairoshq/kairos/engine/promo"
)

// addExperiments creates the experiments engine over the store (both
// stores implement experiments.Store), registers it as a reactor of the
// engine (attribution), gives it to the API (/v1/experiments, the variants
// of /v1/offers and /v1/recommendations) and erases visitors' experiment
// state with theirs. Exposures are published on the bus; the signing key
// derives from the store's token secret. Call it before addPromo, which
// hands it to the promo engine (promoExperiments).
func (a *app) addExperiments(ctx context.Context, reg prometheus.Registerer, deps *api.Deps) error {
	xs, ok := a.store.(experiments.Store)
	if !ok {
		return nil
	}
	ss, ok := a.store.(promo.SecretStore)
	if !ok {
		return nil
	}
	secret, err := ss.PromoSecret(ctx)
	if err != nil {
		return fmt.Errorf("experiments: secret: %w", err)
	}
	links, _ := a.store.(engine.LinkStore)
	x, err := experiments.New(ctx, experiments.Config{Logger: a.log, Registerer: reg},
		experiments.Deps{Store: xs, Publisher: a.bus, Links: links, Secret: secret})
	if err != nil {
		return fmt.Errorf("experiments: %w", err)
	}
	a.exps = x
	a.engine.AddReactor(x)
	deps.Experiments = x
	if deps.Eraser != nil {
		deps.Eraser = alsoErase{name: "experiments", forget: x.ForgetVisitor, ids: a.engine.ErasureIDs, next: deps.Eraser}
	}
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
