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

// benchStores runs fn on the store written on the primitives (impl=new)
// and on the backend's own implementation being replaced (impl=old, while
// the backend has one), per backend.
func benchStores(b *testing.B, fn func(b *testing.B, s stats.Store)) {
	for _, k := range backendtest.Kinds() {
		if k.Name == "mem" {
			continue
		}
		b.Run("impl=old/backend="+k.Name, func(b *testing.B) {
			old, ok := k.Open(b).(stats.Store)
			if !ok {
				b.Skip("the backend has no stats store of its own")
			}
			fn(b, old)
		})
		b.Run("impl=new/backend="+k.Name, func(b *testing.B) { fn(b, stats.NewStore(k.Open(b))) })
	}
}

// BenchmarkStoreAddCounts measures AddCounts of one batch's deltas.
func BenchmarkStoreAddCounts(b *testing.B) { benchStores(b, statstest.BenchAdd) }

// BenchmarkStoreReact measures Stats.React of one batch (aggregation and
// one AddCounts).
func BenchmarkStoreReact(b *testing.B) { benchStores(b, statstest.BenchReact) }
