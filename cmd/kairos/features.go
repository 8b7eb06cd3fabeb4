package main

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kairoshq/kairos/api"
)

// A feature is one part of `kairos serve` built over the store. Every
// feature of the table is on unless its on func says otherwise: nothing is
// switched off silently. Every feature keeps its state on the store port
// (engine.Store: visitor state, item rows, blobs, links and the storage
// primitives of engine/storage), which every backend implements whole, so
// a backend that compiles serves every feature — there is no capability
// to check at run time and no type assertion on the store.
type feature struct {
	name string
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
// built (a feature may use those before it: experiments and the holdout
// before promotions, which hands them to the promo engine; attention after
// promotions, so that its writes do not delay promotions).
var features = []feature{
	{name: "identity"},
	{name: "archive", on: func(c serveConfig) bool { return c.ArchiveDir != "off" }, add: (*app).addArchive},
	{name: "history", on: func(c serveConfig) bool { return c.History.Stream }, add: (*app).addHistory},
	{name: "erasure log", on: func(c serveConfig) bool { return c.RedisURL != "" || c.History.Stream }, add: (*app).addErasureLog},
	{name: "retrain", add: (*app).addRetrain},
	{name: "stats", add: (*app).addStats},
	{name: "experiments", add: (*app).addExperiments},
	{name: "holdout", on: func(c serveConfig) bool { return c.HoldoutShare > 0 }, add: (*app).addHoldout},
	{name: "promotions", add: (*app).addPromo},
	{name: "attention", add: (*app).addAttention},
	{name: "filters", add: (*app).addFilters},
	{name: "rotation", add: (*app).addRotation},
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
