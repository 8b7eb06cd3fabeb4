// Package backends runs engine-level tests on every backend that is a
// whole engine.Store: the embedded store and Redis, opened through
// engine/storage/backendtest (Redis: skipped when the server does not
// answer, a failure under CI=true).
package backends

import (
	"context"
	"testing"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/storage/backendtest"
	"github.com/kairoshq/kairos/model"
	"github.com/kairoshq/kairos/signals/membus"
)

// Each runs f in a subtest per backend (named after it) on a fresh
// store, closed on the subtest's cleanup. The in-memory reference
// backend of backendtest holds only the storage primitives and is left
// out.
func Each(t *testing.T, f func(t *testing.T, store engine.Store)) {
	t.Helper()
	for _, k := range backendtest.Kinds() {
		if k.Name == "mem" {
			continue
		}
		t.Run(k.Name, func(t *testing.T) {
			s, ok := k.Open(t).(engine.Store)
			if !ok {
				t.Fatalf("backend %s is not an engine.Store", k.Name)
			}
			f(t, s)
		})
	}
}

// NewEngine returns an engine with k = 8 factors on store and a new
// in-process bus, not running yet (reactors are added before Run): the
// start of the integration tests of the engine's reactors. The bus is
// closed on t's cleanup, after the cleanups registered later (which stop
// the engine).
func NewEngine(ctx context.Context, t *testing.T, store engine.Store) (*engine.Engine, *membus.Bus) {
	t.Helper()
	bus := membus.New(membus.Options{})
	t.Cleanup(func() { bus.Close() })
	p := model.DefaultParams()
	p.Factors = 8
	eng, err := engine.New(ctx, engine.Config{Params: p}, store, bus)
	if err != nil {
		t.Fatal(err)
	}
	return eng, bus
}
