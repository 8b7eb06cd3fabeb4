//go:build unix

package stats_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/embedded"
	"github.com/kairoshq/kairos/engine/stats"
	"github.com/kairoshq/kairos/model"
	"github.com/kairoshq/kairos/signals"
	"github.com/kairoshq/kairos/signals/membus"
)

// BenchmarkIngestEmbedded measures the CPU of the engine's ingest of one
// consumed batch of 256 events on the embedded store with Stats as a
// Reactor: de-duplication, the model update, the store commit and the
// counters' write, as kairos serve does per batch (without its fsync:
// SyncNever, so that the disk does not hide the CPU), and its CPU time
// per event.
// The events are those of kairos bench overload: views (70 %), clicks
// (20 %) and add-to-carts of 20,000 visitors over 10,000 items (Zipf),
// timestamped now. It reports events/s.
func BenchmarkIngestEmbedded(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := embedded.Open(b.TempDir(), embedded.Config{Sync: embedded.SyncNever})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	bus := membus.New(membus.Options{})
	defer bus.Close()
	eng, err := engine.New(ctx, engine.Config{Params: model.DefaultParams()}, s, bus)
	if err != nil {
		b.Fatal(err)
	}
	st, err := stats.New(stats.NewStore(s), stats.Config{Retention: stats.DefaultRetention()})
	if err != nil {
		b.Fatal(err)
	}
	eng.AddReactor(st)
	const batchEvents = 256
	rng := rand.New(rand.NewPCG(11, 1))
	items := rand.NewZipf(rng, 1.1, 1, 9_999)
	types := []signals.Type{signals.TypeView, signals.TypeView, signals.TypeView, signals.TypeView, signals.TypeView,
		signals.TypeView, signals.TypeView, signals.TypeClick, signals.TypeClick, signals.TypeAddToCart}
	batch := func(n int) []signals.Event {
		evs := make([]signals.Event, batchEvents)
		now := time.Now().UTC()
		for i := range evs {
			evs[i] = signals.Event{ID: fmt.Sprintf("b%07d-e%03d", n, i), Type: types[rng.IntN(len(types))],
				Visitor: fmt.Sprintf("v%05d", rng.IntN(20_000)), Item: fmt.Sprintf("sku-%05d", items.Uint64()),
				Time: signals.Timestamp{Time: now}}
		}
		return evs
	}
	for n := range 200 { // warm up: the store holds visitors, items and counters
		if err := eng.Handle(ctx, batch(-1-n)); err != nil {
			b.Fatal(err)
		}
	}
	const prepared = 64
	batches := make([][]signals.Event, 0, prepared)
	b.ResetTimer()
	n := 0
	cpu0 := cpuTime(b)
	for b.Loop() {
		if n%prepared == 0 {
			b.StopTimer()
			prep := cpuTime(b)
			batches = batches[:0]
			for i := range prepared {
				batches = append(batches, batch(n+i))
			}
			cpu0 += cpuTime(b) - prep
			b.StartTimer()
		}
		if err := eng.Handle(ctx, batches[n%prepared]); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n*batchEvents)/b.Elapsed().Seconds(), "events/s")
	// The process's CPU time per event (but the batches' preparation):
	// unlike the wall time, it hardly grows with the load of a shared
	// machine.
	b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(n*batchEvents), "cpu-µs/event")
}

// cpuTime returns the user and system CPU time of the process.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
