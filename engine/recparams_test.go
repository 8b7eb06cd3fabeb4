package engine_test

import (
	"context"
	"errors"
	"testing"

	"github.com/kairoshq/kairos/engine"
)

// TestRequestStrategyAndBlendBelow: an experiment's variant may force the
// trending strategy or move the blend threshold for one request.
func TestRequestStrategyAndBlendBelow(t *testing.T) {
	e := newEngine(t, openStore(t, t.TempDir()), nil) // BlendBelow 1: the fold-in from the first event
	mustHandle(t, e, clusterEvents(3, 20, 10, 10, 5))
	if r := recommend(t, e, "c0-0", 5); r.Strategy != engine.StrategyALS {
		t.Fatalf("default strategy %s, want als", r.Strategy)
	}
	if r := recommend(t, e, "c0-0", 5, func(r *engine.RecRequest) { r.Strategy = engine.StrategyTrending }); r.Strategy != engine.StrategyTrending || len(r.Items) != 5 {
		t.Errorf("forced trending: %+v", r)
	}
	if r := recommend(t, e, "c0-0", 5, func(r *engine.RecRequest) { r.BlendBelow = 1000 }); r.Strategy != engine.StrategyBlend {
		t.Errorf("blend_below 1000: strategy %s, want blend", r.Strategy)
	}
	_, err := e.Recommend(context.Background(), engine.RecRequest{Visitor: "c0-0", N: 5, Strategy: "random"})
	if !errors.Is(err, engine.ErrInvalid) {
		t.Errorf("unknown strategy: %v", err)
	}
}
