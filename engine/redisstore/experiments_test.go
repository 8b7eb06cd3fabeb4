package redisstore

import (
	"context"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine/experiments"
	"github.com/kairoshq/kairos/engine/experiments/experimentstest"
	"github.com/kairoshq/kairos/engine/redisstore/redistest"
)

func TestExperimentsContract(t *testing.T) {
	url := redistest.URL(t)
	experimentstest.Run(t, func(t *testing.T) experiments.Store {
		s := mustOpen(t, Config{URL: url, Prefix: redistest.Prefix(t, url)})
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestExperimentsPersistence(t *testing.T) {
	url := redistest.URL(t)
	experimentstest.RunPersistence(t, func(t *testing.T) func(t *testing.T) experimentstest.Closer {
		prefix := redistest.Prefix(t, url)
		return func(t *testing.T) experimentstest.Closer {
			return mustOpen(t, Config{URL: url, Prefix: prefix})
		}
	})
}

// TestExperimentsKeyLayout checks the documented keys and values.
func TestExperimentsKeyLayout(t *testing.T) {
	url := redistest.URL(t)
	prefix := redistest.Prefix(t, url)
	s := mustOpen(t, Config{URL: url, Prefix: prefix})
	ctx := context.Background()
	at := time.UnixMilli(1795430000123).UTC()
	if err := s.PutExperimentDoc(ctx, "hero", []byte(`{"id":"hero"}`)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.AssignSubject(ctx, "hero", "a:v1", experiments.Assignment{Variant: "B", At: at, Propensity: 0.5}); err != nil {
		t.Fatal(err)
	}
	err := s.UpdateExperimentUnits(ctx, experiments.Update{
		Units: []experiments.UnitWrite{
			{UnitKey: experiments.UnitKey{Exp: "hero", Key: "a:v1"}, New: experiments.Unit{Variant: "B", Exposed: at, Propensity: 0.5, Converted: true, Revenue: 1999}},
			{UnitKey: experiments.UnitKey{Exp: "hero", Key: "u:alice"}, New: experiments.Unit{Alias: "a:v1"}},
		},
		Counts: []experiments.CountDelta{{Exp: "hero", Variant: "B", Counts: experiments.Counts{N: 1, Expected: 500000, Conversions: 1, Revenue: 1999, RevenueSq: [4]int64{1999 * 1999}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetBanditWeights(ctx, "hero", experiments.Weights{Version: 1, At: at, Weights: map[string]float64{"A": 0.25, "B": 0.75}}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddExperimentLook(ctx, "hero", experiments.Look{At: at, Counts: map[string]experiments.Counts{"B": {N: 1}}}); err != nil {
		t.Fatal(err)
	}
	p := prefix + ":"
	for _, c := range []struct{ key, field, want string }{
		{p + "xp:defs", "hero", `{"id":"hero"}`},
		{p + "xp:hero:as", "a:v1", "B 1795430000123 0.5"},
		{p + "xp:hero:un", "a:v1", "v B 1795430000123 4 1999 0.5"},
		{p + "xp:hero:un", "u:alice", "= a:v1"},
		{p + "xp:hero:ct", "B:n", "1"},
		{p + "xp:hero:ct", "B:e", "500000"},
		{p + "xp:hero:ct", "B:conv", "1"},
		{p + "xp:hero:ct", "B:rev", "1999"},
		{p + "xp:hero:ct", "B:rq0", "3996001"},
		{p + "xp:hero:lk", "1795430000123", `{"at":"2026-11-23T10:33:20.123Z","counts":{"B":{"n":1,"expected":0,"clicks":0,"carts":0,"conversions":0,"revenue_cents":0,"revenue_sq_limbs":[0,0,0,0]}}}`},
	} {
		got, err := s.rdb.HGet(ctx, c.key, c.field).Result()
		if err != nil || got != c.want {
			t.Errorf("HGET %s %s = %q (%v), want %q", c.key, c.field, got, err, c.want)
		}
	}
	if got, err := s.rdb.Get(ctx, p+"xp:version").Result(); err != nil || got != "1" {
		t.Errorf("version %q %v", got, err)
	}
	if got, err := s.rdb.Get(ctx, p+"xp:hero:w").Result(); err != nil || got != `1 {"version":1,"at":"2026-11-23T10:33:20.123Z","weights":{"A":0.25,"B":0.75}}` {
		t.Errorf("weights %q %v", got, err)
	}
	if err := s.DeleteExperiment(ctx, "hero"); err != nil {
		t.Fatal(err)
	}
	for _, part := range []string{"as", "un", "ct", "w", "lk"} {
		if n, err := s.rdb.Exists(ctx, p+"xp:hero:"+part).Result(); err != nil || n != 0 {
			t.Errorf("%s survived the delete: %v %v", part, n, err)
		}
	}
}
