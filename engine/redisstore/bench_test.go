package redisstore

import (
	"fmt"
	"testing"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/redisstore/redistest"
	"github.com/kairoshq/kairos/engine/storetest"
)

func benchStore(b *testing.B) *Store {
	url := redistest.URL(b)
	return mustOpen(b, Config{URL: url, Prefix: redistest.Prefix(b, url)})
}

// BenchmarkCommit: one batch of 256 events over 200 visitors (k = 64) per
// op: one MULTI/EXEC round trip.
func BenchmarkCommit(b *testing.B) { storetest.BenchCommit(b, benchStore(b)) }

func BenchmarkCommitParallel(b *testing.B) { storetest.BenchCommitParallel(b, benchStore(b)) }

// BenchmarkVisitors: one pipelined load of 200 visitors with k = 64
// factors and histories of 50 and 500 events.
func BenchmarkVisitors(b *testing.B) {
	for _, h := range []int{50, 500} {
		b.Run(fmt.Sprintf("history=%d", h), func(b *testing.B) {
			storetest.BenchVisitors(b, benchStore(b), h)
		})
	}
}

// BenchmarkSeen: one MGET of 256 event ids, half of them seen.
func BenchmarkSeen(b *testing.B) {
	s := benchStore(b)
	ids := make([]string, 256)
	for i := range ids {
		ids[i] = fmt.Sprintf("0190b7e2-6d0c-7a3e-9f1e-%012x", i)
	}
	if err := s.Commit(b.Context(), engineCommit(ids[:128])); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Seen(b.Context(), ids); err != nil {
			b.Fatal(err)
		}
	}
}

func engineCommit(ids []string) engine.Commit { return engine.Commit{EventIDs: ids} }
