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

// BenchmarkMapStoreAddCounts measures one batch's AddCounts on each
// backend.
func BenchmarkMapStoreAddCounts(b *testing.B) {
	for _, k := range backendtest.Kinds() {
		b.Run(k.Name, func(b *testing.B) { statstest.BenchAdd(b, stats.NewStore(k.Open(b))) })
	}
}

// BenchmarkMapStoreReact measures Stats.React of one batch on each
// backend.
func BenchmarkMapStoreReact(b *testing.B) {
	for _, k := range backendtest.Kinds() {
		b.Run(k.Name, func(b *testing.B) { statstest.BenchReact(b, stats.NewStore(k.Open(b))) })
	}
}
