package embedded

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine/stats"
	"github.com/kairoshq/kairos/engine/stats/statstest"
	"github.com/kairoshq/kairos/engine/storage"
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

// BenchmarkApply: one transaction of 200 ops (an Incr and an IncrFloat
// of 5 fields of each of 20 maps of 1000 fields: the counters of a
// consumed batch), with each sync policy.
func BenchmarkApply(b *testing.B) {
	for _, p := range []SyncPolicy{SyncAlways, SyncNever} {
		b.Run("ops=200/sync="+p.String(), func(b *testing.B) {
			s := benchStore(b, Config{Sync: p})
			ctx := context.Background()
			keys := make([]string, 20)
			fields := make([]string, 1000)
			for i := range fields {
				fields[i] = fmt.Sprintf("field-%04d", i)
			}
			for i := range keys {
				keys[i] = fmt.Sprintf("stats:item:%02d", i)
				var tx storage.Txn
				for _, f := range fields {
					tx.Incr(keys[i], f, 1)
				}
				if err := s.Apply(ctx, tx); err != nil {
					b.Fatal(err)
				}
			}
			txs := make([]storage.Txn, 16)
			for j := range txs {
				for i, k := range keys {
					for f := range 5 {
						field := fields[(i*7+j*13+f*31)%len(fields)]
						txs[j].Incr(k, field, 1)
						txs[j].IncrFloat(k, field+".sum", 0.5)
					}
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if err := s.Apply(ctx, txs[i%len(txs)]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkMaps: one read of 100 maps of 8 fields.
func BenchmarkMaps(b *testing.B) {
	s := benchStore(b, Config{Sync: SyncNever})
	ctx := context.Background()
	keys := make([]string, 100)
	var tx storage.Txn
	for i := range keys {
		keys[i] = fmt.Sprintf("caps:visitor:%03d", i)
		for f := range 8 {
			tx.Incr(keys[i], fmt.Sprintf("offer-%d", f), int64(f))
		}
	}
	if err := s.Apply(ctx, tx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		ms, err := s.Maps(ctx, keys)
		if err != nil || len(ms[99]) != 8 {
			b.Fatal(ms[99], err)
		}
	}
}

// BenchmarkAppend: one append of 200 bytes to one of 100 logs keeping 50
// entries with a ttl, with each sync policy.
func BenchmarkAppend(b *testing.B) {
	for _, p := range []SyncPolicy{SyncAlways, SyncNever} {
		b.Run("sync="+p.String(), func(b *testing.B) {
			s := benchStore(b, Config{Sync: p})
			ctx := context.Background()
			keys := make([]string, 100)
			for i := range keys {
				keys[i] = fmt.Sprintf("promotions:%03d", i)
			}
			data := make([]byte, 200)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if _, err := s.Append(ctx, keys[i%len(keys)], 0, data, 50, time.Hour); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkApplySmallMaps: one transaction of 200 ops shaped like the
// counters of engine/stats: an Incr, an IncrFloat and an Expire of each
// of 66 small maps (one per subject and bucket), most of them existing.
func BenchmarkApplySmallMaps(b *testing.B) {
	s := benchStore(b, Config{Sync: SyncNever})
	ctx := context.Background()
	at := time.Now().Add(24 * time.Hour)
	txs := make([]storage.Txn, 16)
	for j := range txs {
		for i := range 66 {
			k := fmt.Sprintf("st:1h:i:item-%04d:%d", (i*31+j*7)%1000, 1764000000+3600*(j%4))
			txs[j].Incr(k, "view", 1)
			txs[j].IncrFloat(k, "view:v", 1.5)
			txs[j].Expire(k, at)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := s.Apply(ctx, txs[i%len(txs)]); err != nil {
			b.Fatal(err)
		}
	}
}

// txnRecorder is a storage.Maps that keeps the Txns it is given.
type txnRecorder struct {
	storage.Backend // nil: only Apply is called
	txns            []storage.Txn
}

func (r *txnRecorder) Apply(_ context.Context, t storage.Txn) error {
	t.If, t.Ops = slices.Clone(t.If), slices.Clone(t.Ops) // the caller reuses them
	r.txns = append(r.txns, t)
	return nil
}

// BenchmarkApplyCounters: the Lazy transaction engine/stats writes for
// one consumed batch of 256 events (statstest.BenchDeltas: ~550 deltas
// as Incr, IncrFloat and Expire ops of ~300 bucket maps), on a store
// holding the counters of 64 earlier batches, with SyncAlways as kairos
// serve runs it (a Lazy Txn does not wait for an fsync).
func BenchmarkApplyCounters(b *testing.B) {
	const prepared = 64
	rec := &txnRecorder{}
	cs := stats.NewStore(rec)
	ctx := context.Background()
	for i := range prepared {
		if err := cs.AddCounts(ctx, statstest.BenchDeltas(b, i)); err != nil {
			b.Fatal(err)
		}
	}
	s := benchStore(b, Config{Sync: SyncAlways, CompactBytes: 1 << 40})
	for _, t := range rec.txns {
		if !t.Lazy {
			b.Fatal("the counters' Txn is not Lazy")
		}
		if err := s.Apply(ctx, t); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	logged := s.walBytes()
	for b.Loop() {
		if err := s.Apply(ctx, rec.txns[i%prepared]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(i*statstest.BatchEvents)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(s.walBytes()-logged)/float64(i), "log-B/op")
}

// walBytes returns how many bytes the store has logged since it opened
// or last compacted (for benchmarks; compactions reset it).
func (s *Store) walBytes() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.walSize
}
