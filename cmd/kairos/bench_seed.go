package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/embedded"
	"github.com/kairoshq/kairos/engine/redisstore"
	"github.com/kairoshq/kairos/model"
)

func init() {
	register(command{
		name:    "bench seed",
		summary: "fill a store with a synthetic catalog and visitors (item factors with topic structure) for HTTP benchmarks",
		run:     runBenchSeed,
	})
}

func runBenchSeed(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench seed", stderr)
	redisURL := fs.String("redis-url", "", "Redis URL (empty: the embedded store of --data-dir)")
	namespace := fs.String("namespace", "kairos", "Redis key prefix")
	dataDir := fs.String("data-dir", "./kairos-data", "data dir of the embedded store")
	items := fs.Int("items", 100_000, "catalog size")
	visitors := fs.Int("visitors", 10_000, "visitors v0..v(N-1) with factors and a short history")
	k := fs.Int("factors", model.DefaultParams().Factors, "factors k (must match the server's)")
	topics := fs.Int("topics", 200, "latent topics of the synthetic factors")
	index := fs.Bool("index", true, "also build and save the approximate index when the catalog is large enough for it (20k items), so that the first kairos serve loads it instead of serving exactly until it has built one")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := errors.Join(atLeast("items", *items, 1), atLeast("visitors", *visitors, 0),
		atLeast("factors", *k, 1), atLeast("topics", *topics, 1)); err != nil {
		return err
	}
	var store engine.Store
	var err error
	if *redisURL != "" {
		store, err = redisstore.Open(ctx, redisstore.Config{URL: *redisURL, Prefix: *namespace})
	} else {
		store, err = embedded.Open(*dataDir+"/state", embedded.Config{Sync: embedded.SyncNever})
	}
	if err != nil {
		return err
	}
	defer store.Close()
	start := time.Now()
	rng := rand.New(rand.NewPCG(7, 7))
	centres := make([][]float32, *topics)
	for t := range centres {
		centres[t] = gaussian(rng, *k, 0.3)
	}
	itemTopic := make([]int, *items)
	const chunk = 5000
	for lo := 0; lo < *items; lo += chunk {
		hi := min(lo+chunk, *items)
		ids := make([]string, 0, hi-lo)
		for i := lo; i < hi; i++ {
			ids = append(ids, fmt.Sprintf("sku-%06d", i))
		}
		rows, err := store.ItemRows(ctx, ids)
		if err != nil {
			return err
		}
		states := make([]engine.ItemState, len(ids))
		for j := range ids {
			t := rng.IntN(*topics)
			itemTopic[lo+j] = t
			f := gaussian(rng, *k, 0.1)
			scale := float32(0.3 + rng.ExpFloat64())
			for d := range f {
				f[d] = scale * (f[d] + centres[t][d])
			}
			states[j] = engine.ItemState{Row: rows[j], Factors: f, Curv: make([]float32, *k), Count: 10}
		}
		if err := store.SaveItemStates(ctx, states); err != nil {
			return err
		}
	}
	now := time.Now().UTC()
	for lo := 0; lo < *visitors; lo += 1000 {
		var c engine.Commit
		for v := lo; v < min(lo+1000, *visitors); v++ {
			x := make([]float32, *k)
			var hist []engine.HistoryEvent
			for j := range 3 {
				it := rng.IntN(*items)
				for d, c := range centres[itemTopic[it]] {
					x[d] += c
				}
				hist = append(hist, engine.HistoryEvent{ID: fmt.Sprintf("seed-%d-%d", v, j), Type: "view", Item: fmt.Sprintf("sku-%06d", it), Weight: 1, Time: now})
			}
			c.Visitors = append(c.Visitors, engine.VisitorUpdate{ID: fmt.Sprintf("v%d", v), Append: hist, Factors: x,
				Session: engine.Session{ID: "seed", Start: now, Last: now, Events: 3}})
		}
		if err := store.Commit(ctx, c); err != nil {
			return err
		}
	}
	res := map[string]any{"bench": "seed", "items": *items, "visitors": *visitors, "k": *k, "took_s": time.Since(start).Seconds()}
	if *index && *items >= (engine.Config{}).Defaults().Index.MinItems {
		t := time.Now()
		if err := seedIndex(ctx, store, *k); err != nil {
			return err
		}
		res["index_s"] = time.Since(t).Seconds()
	}
	return writeJSON(stdout, res)
}

// seedIndex builds the approximate index of the seeded catalog and saves
// it in store, as a serving engine with the default index settings would.
func seedIndex(ctx context.Context, store engine.Store, k int) error {
	cfg := engine.Config{Params: model.DefaultParams()}
	cfg.Params.Factors = k
	e, err := engine.New(ctx, cfg, store, nil)
	if err != nil {
		return fmt.Errorf("bench seed: index: %w", err)
	}
	if err := e.BuildIndex(ctx); err != nil {
		return fmt.Errorf("bench seed: %w", err)
	}
	return nil
}

func gaussian(rng *rand.Rand, k int, sd float64) []float32 {
	v := make([]float32, k)
	for i := range v {
		v[i] = float32(rng.NormFloat64() * sd)
	}
	return v
}
