package archive

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/kairoshq/kairos/signals"
)

// benchEvents returns n realistic events (about 200 bytes of JSON each)
// over 10,000 visitors.
func benchEvents(n int) []signals.Event {
	rng := rand.New(rand.NewPCG(42, 42))
	out := make([]signals.Event, n)
	for i := range out {
		out[i] = mkEvent(rng, fmt.Sprintf("e-%08d-%04x", i, rng.IntN(1<<16)), fmt.Sprintf("visitor-%05d", rng.IntN(10000)),
			t0.Add(time.Duration(i)*time.Millisecond))
	}
	return out
}

// BenchmarkAppend measures archive write throughput for each fsync policy:
// several goroutines append batches concurrently, as engine consumers do.
// One op is one Append call of batch events; events/s and bytes/event
// (compressed, framing included) are reported.
func BenchmarkAppend(b *testing.B) {
	events := benchEvents(1 << 14)
	for _, policy := range []SyncPolicy{SyncNone, SyncInterval, SyncAlways} {
		for _, batch := range []int{1, 100} {
			b.Run(fmt.Sprintf("sync=%s/batch=%d", policy, batch), func(b *testing.B) {
				a, err := Open(context.Background(), Options{Dir: b.TempDir(), Sync: policy})
				if err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				b.SetParallelism(4) // 4 appenders per core
				start := time.Now()
				b.RunParallel(func(pb *testing.PB) {
					rng := rand.New(rand.NewPCG(rand.Uint64(), 1))
					for pb.Next() {
						i := rng.IntN(len(events) - batch)
						if err := a.Append(context.Background(), events[i:i+batch]); err != nil {
							b.Error(err)
							return
						}
					}
				})
				elapsed := time.Since(start)
				b.StopTimer()
				st := a.Stats()
				if err := a.Close(); err != nil {
					b.Fatal(err)
				}
				n := float64(st.Events)
				b.ReportMetric(n/elapsed.Seconds(), "events/s")
				b.ReportMetric(float64(st.Bytes)/n, "bytes/event")
				b.ReportMetric(float64(st.RawBytes)/n, "json-bytes/event")
				b.ReportMetric(n/float64(max(st.Records, 1)), "events/record")
			})
		}
	}
}

// BenchmarkAppendSequential is the engine's pattern: one consumer appends
// a batch, waits for it, then the next. It reports events/s and the
// latency of Append (p50, p99).
func BenchmarkAppendSequential(b *testing.B) {
	events := benchEvents(1 << 14)
	for _, policy := range []SyncPolicy{SyncInterval, SyncAlways} {
		for _, batch := range []int{10, 100} {
			b.Run(fmt.Sprintf("sync=%s/batch=%d", policy, batch), func(b *testing.B) {
				a, err := Open(context.Background(), Options{Dir: b.TempDir(), Sync: policy})
				if err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				lat := make([]time.Duration, 0, 1<<16)
				rng := rand.New(rand.NewPCG(1, 2))
				start := time.Now()
				for b.Loop() {
					i := rng.IntN(len(events) - batch)
					t := time.Now()
					if err := a.Append(context.Background(), events[i:i+batch]); err != nil {
						b.Fatal(err)
					}
					if len(lat) < cap(lat) {
						lat = append(lat, time.Since(t))
					}
				}
				elapsed := time.Since(start)
				if err := a.Close(); err != nil {
					b.Fatal(err)
				}
				slices.Sort(lat)
				b.ReportMetric(float64(b.N*batch)/elapsed.Seconds(), "events/s")
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			})
		}
	}
}

// BenchmarkScan measures read throughput (decompress, decode JSON,
// deliver) over an archive of 100,000 events.
func BenchmarkScan(b *testing.B) {
	dir := b.TempDir()
	a, err := Open(context.Background(), Options{Dir: dir, Sync: SyncNone})
	if err != nil {
		b.Fatal(err)
	}
	events := benchEvents(100_000)
	for i := 0; i < len(events); i += 500 {
		if err := a.Append(context.Background(), events[i:i+500]); err != nil {
			b.Fatal(err)
		}
	}
	if err := a.Close(); err != nil {
		b.Fatal(err)
	}
	r := NewReader(dir, nil)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		n := 0
		if err := r.Scan(context.Background(), time.Time{}, time.Time{}, func(signals.Event) error { n++; return nil }); err != nil {
			b.Fatal(err)
		}
		if n != len(events) {
			b.Fatalf("scanned %d events", n)
		}
	}
	b.ReportMetric(float64(b.N*len(events))/time.Since(start).Seconds(), "events/s")
}
