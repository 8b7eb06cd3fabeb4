package experimentstest_test

import (
	"context"
	"io"
	"strconv"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine/experiments"
	"github.com/kairoshq/kairos/engine/experiments/experimentstest"
	"github.com/kairoshq/kairos/engine/storage"
	"github.com/kairoshq/kairos/engine/storage/backendtest"
)

// The suite on experiments.BackendStore over the real backends: the
// embedded store and Redis (the storage primitives of each).

// closer is the experiments store over a backend that closes.
type closer struct {
	*experiments.BackendStore
	io.Closer
}

func TestEmbeddedBackend(t *testing.T) { testBackend(t, kind(t, "embedded")) }

func TestRedisBackend(t *testing.T) { testBackend(t, kind(t, "redis")) }

func TestRedisClusterBackend(t *testing.T) { testBackend(t, kind(t, "redis-cluster")) }

func testBackend(t *testing.T, k backendtest.Kind) {
	experimentstest.RunBackend(t, func(t *testing.T) storage.Backend { return k.Open(t) })
	experimentstest.RunPersistence(t, func(t *testing.T) func(t *testing.T) experimentstest.Closer {
		open := k.New(t)
		return func(t *testing.T) experimentstest.Closer {
			s := open(t)
			return closer{experiments.NewStore(s), s}
		}
	})
}

// kind returns the backend name of backendtest.Kinds.
func kind(tb testing.TB, name string) backendtest.Kind {
	tb.Helper()
	for _, k := range backendtest.Kinds() {
		if k.Name == name {
			return k
		}
	}
	tb.Fatalf("no backend %q", name)
	return backendtest.Kind{}
}

// The exposure and attribution paths of the store, on each backend's
// primitives.

func benchStores(b *testing.B, run func(b *testing.B, s experiments.Store)) {
	for _, k := range backendtest.Kinds() {
		b.Run("backend="+k.Name, func(b *testing.B) { run(b, experiments.NewStore(k.Open(b))) })
	}
}

// BenchmarkExposure is a first exposure: the sticky assignment, the read
// of the unit and its write with the counts' deltas.
func BenchmarkExposure(b *testing.B) {
	benchStores(b, func(b *testing.B, s experiments.Store) {
		ctx := context.Background()
		if err := s.PutExperimentDoc(ctx, "x", []byte(`{"id":"x"}`)); err != nil {
			b.Fatal(err)
		}
		at := time.Date(2026, 12, 5, 7, 0, 0, 0, time.UTC)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			sub := "a:v" + strconv.Itoa(i)
			a, _, err := s.AssignSubject(ctx, "x", sub, experiments.Assignment{Variant: "B", At: at, Propensity: 0.5})
			if err != nil {
				b.Fatal(err)
			}
			k := experiments.UnitKey{Exp: "x", Key: sub}
			us, err := s.ExperimentUnits(ctx, []experiments.UnitKey{k})
			if err != nil {
				b.Fatal(err)
			}
			err = s.UpdateExperimentUnits(ctx, experiments.Update{
				Units:  []experiments.UnitWrite{{UnitKey: k, Old: us[0], New: experiments.Unit{Variant: a.Variant, Exposed: at, Propensity: a.Propensity}}},
				Counts: []experiments.CountDelta{{Exp: "x", Variant: a.Variant, Counts: experiments.Counts{N: 1, Expected: 500_000}}},
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkOutcomes is the attribution of a batch of 256 outcomes to
// exposed units: one read of the units and one update of them with the
// counts' deltas.
func BenchmarkOutcomes(b *testing.B) {
	benchStores(b, func(b *testing.B, s experiments.Store) {
		ctx := context.Background()
		at := time.Date(2026, 12, 5, 7, 0, 0, 0, time.UTC)
		keys := make([]experiments.UnitKey, 256)
		var first experiments.Update
		for i := range keys {
			keys[i] = experiments.UnitKey{Exp: "x", Key: "a:v" + strconv.Itoa(i)}
			first.Units = append(first.Units, experiments.UnitWrite{UnitKey: keys[i], New: experiments.Unit{Variant: "A", Exposed: at, Propensity: 0.5}})
		}
		if err := s.UpdateExperimentUnits(ctx, first); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			us, err := s.ExperimentUnits(ctx, keys)
			if err != nil {
				b.Fatal(err)
			}
			var u experiments.Update
			for i, old := range us {
				nw := old
				nw.Revenue++
				u.Units = append(u.Units, experiments.UnitWrite{UnitKey: keys[i], Old: old, New: nw})
			}
			u.Counts = []experiments.CountDelta{{Exp: "x", Variant: "A", Counts: experiments.Counts{Revenue: 256, RevenueSq: [4]int64{512, 0, 0, 0}}}}
			if err := s.UpdateExperimentUnits(ctx, u); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/256, "ns/unit")
	})
}
