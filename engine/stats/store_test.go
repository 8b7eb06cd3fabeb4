package stats_test

import (
	"testing"

	"github.com/kairoshq/kairos/engine/stats"
	"github.com/kairoshq/kairos/engine/stats/statstest"
	"github.com/kairoshq/kairos/engine/storage/storagetest"
)

func TestMapStoreOnMem(t *testing.T) {
	statstest.Run(t, func(t *testing.T) stats.Store { return stats.NewStore(storagetest.NewMem(nil)) })
}

func BenchmarkMapStoreAddCountsMem(b *testing.B) {
	statstest.BenchAdd(b, stats.NewStore(storagetest.NewMem(nil)))
}
