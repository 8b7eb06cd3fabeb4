package main

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kairoshq/kairos/api"
	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/attention"
	"github.com/kairoshq/kairos/engine/experiments"
	"github.com/kairoshq/kairos/engine/promo"
	"github.com/kairoshq/kairos/engine/stats"
)

// A capability is a part of the storage port a feature needs: an interface
// the store must implement.
type capability struct {
	name string // the interface, e.g. "promo.Store"
	has  func(engine.Store) bool
}

// capabilityOf is the capability of implementing T.
func capabilityOf[T any](name string) capability {
	return capability{name, func(s engine.Store) bool { _, ok := s.(T); return ok }}
}

// The capabilities features need.
var (
	capLinks       = capabilityOf[engine.LinkStore]("engine.LinkStore")
	capBlobs       = capabilityOf[engine.BlobStore]("engine.BlobStore")
	capStats       = capabilityOf[stats.Store]("stats.Store")
	capExperiments = capabilityOf[experiments.Store]("experiments.Store")
	capSecret      = capabilityOf[promo.SecretStore]("promo.SecretStore")
	capPromo       = capabilityOf[promo.Store]("promo.Store")
	capAttention   = capabilityOf[attention.Store]("attention.Store")
)

// A feature is one part of `kairos serve` built over the store. Every
// feature of the table is on (unless its on func says otherwise), and the
// server refuses to start when the store lacks a capability one needs:
// nothing is switched off silently.
type feature struct {
	name  string
	needs []capability
	// on reports whether the configuration enables the feature (nil:
	// always).
	on func(serveConfig) bool
	// add builds the feature into the app and the API's dependencies (nil:
	// the engine provides it itself).
	add func(a *app, ctx context.Context, w *wiring) error
}

// wiring is what features are built into: the metrics registry, the API's
// configuration and dependencies.
type wiring struct {
	reg  prometheus.Registerer
	api  *api.Config
	deps *api.Deps
}

// features lists the features of `kairos serve` in the order they are
// built (a feature may use those before it: experiments before
// promotions, which hands them to the promo engine; attention after
// promotions, so that its writes do not delay promotions).
var features = []feature{
	{name: "identity", needs: []capability{capLinks}},
	{name: "archive", on: func(c serveConfig) bool { return c.ArchiveDir != "off" }, add: (*app).addArchive},
	{name: "retrain", needs: []capability{capBlobs}, add: (*app).addRetrain},
	{name: "stats", needs: []capability{capStats}, add: (*app).addStats},
	{name: "experiments", needs: []capability{capExperiments, capSecret, capLinks}, add: (*app).addExperiments},
	{name: "promotions", needs: []capability{capPromo}, add: (*app).addPromo},
	{name: "attention", needs: []capability{capAttention}, add: (*app).addAttention},
	{name: "demo", on: func(c serveConfig) bool { return c.Demo }, add: (*app).addDemo},
}

// enabled returns the features cfg enables.
func enabled(cfg serveConfig) []feature {
	var out []feature
	for _, f := range features {
		if f.on == nil || f.on(cfg) {
			out = append(out, f)
		}
	}
	return out
}

// checkFeatures returns an error naming the first enabled feature the
// store cannot serve and the capability it lacks.
func checkFeatures(cfg serveConfig, s engine.Store) error {
	for _, f := range enabled(cfg) {
		for _, c := range f.needs {
			if !c.has(s) {
				return fmt.Errorf("feature %s: the %s store cannot serve it: it does not implement %s", f.name, storeKind(cfg), c.name)
			}
		}
	}
	return nil
}

// storeKind names the store cfg chooses.
func storeKind(cfg serveConfig) string {
	if cfg.RedisURL != "" {
		return "redis"
	}
	return "embedded"
}

// must returns s as T; checkFeatures has checked that it is one.
func must[T any](s engine.Store) T {
	t, ok := s.(T)
	if !ok {
		panic("kairos: the store lacks a capability that checkFeatures checked")
	}
	return t
}
