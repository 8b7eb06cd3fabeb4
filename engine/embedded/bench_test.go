package embedded

import (
	"fmt"
	"testing"

	"github.com/kairoshq/kairos/engine/storetest"
)

func benchStore(b *testing.B, cfg Config) *Store {
	s, err := Open(b.TempDir(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// BenchmarkCommit: one batch of 256 events over 200 visitors (k = 64) per
// op, with each sync policy.
func BenchmarkCommit(b *testing.B) {
	for _, p := range []SyncPolicy{SyncAlways, SyncInterval, SyncNever} {
		b.Run("sync="+p.String(), func(b *testing.B) {
			storetest.BenchCommit(b, benchStore(b, Config{Sync: p}))
		})
	}
}

func BenchmarkCommitParallel(b *testing.B) {
	storetest.BenchCommitParallel(b, benchStore(b, Config{}))
}

// BenchmarkVisitors: one load of 200 visitors with k = 64 factors and
// histories of 50 and 500 events.
func BenchmarkVisitors(b *testing.B) {
	for _, h := range []int{50, 500} {
		b.Run(fmt.Sprintf("history=%d", h), func(b *testing.B) {
			storetest.BenchVisitors(b, benchStore(b, Config{Sync: SyncNever}), h)
		})
	}
}
