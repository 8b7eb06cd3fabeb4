package stats_test

import (
	"testing"

	"github.com/kairoshq/kairos/engine/stats"
	"github.com/kairoshq/kairos/engine/stats/statstest"
	"github.com/kairoshq/kairos/engine/storage"
	"github.com/kairoshq/kairos/engine/storage/backendtest"
)

// TestMapStoreContract runs the contract suite on the store written on
// the primitives, on every backend (in-memory, embedded, Redis).
func TestMapStoreContract(t *testing.T) {
	backendtest.Run(t, func(t *testing.T, open func(testing.TB) storage.Backend) {
		statstest.Run(t, func(t *testing.T) stats.Store { return stats.NewStore(open(t)) })
	})
}

// benchStores runs fn on the store written on the primitives,
// per backend.
func benchStores(b *testing.B, fn func(b *testing.B, s stats.Store)) {
	backendtest.Bench(b, func(b *testing.B, be storage.Backend) { fn(b, stats.NewStore(be)) })
}

// BenchmarkStoreAddCounts measures AddCounts of one batch's deltas.
func BenchmarkStoreAddCounts(b *testing.B) { benchStores(b, statstest.BenchAdd) }

// BenchmarkStoreReact measures Stats.React of one batch (aggregation and
// one AddCounts).
func BenchmarkStoreReact(b *testing.B) { benchStores(b, statstest.BenchReact) }
