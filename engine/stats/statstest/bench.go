package statstest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/stats"
	"github.com/kairoshq/kairos/signals"
)

// Shape of the benchmark batches: BatchEvents events of BatchVisitors
// visitors over BatchItems items (a different set per batch), with event
// times 50 µs apart (20,000 events/s).
const (
	BatchEvents   = 256
	BatchItems    = 100
	BatchVisitors = 100
)

// BenchBatch returns the n-th benchmark batch, as the engine shows it to
// a Reactor: views (60 %), clicks (15 %), dwells with a value (15 %),
// add-to-carts (5 %), conversions with revenue (3 %) and impressions
// (2 %); one event in ten also has an offer (of 20). Seeded by n.
func BenchBatch(n int) []engine.VisitorChange {
	rng := rand.New(rand.NewPCG(uint64(n), 7))
	t0 := time.Now().UTC().Truncate(time.Hour).Add(time.Duration(n) * BatchEvents * 50 * time.Microsecond)
	changes := make([]engine.VisitorChange, BatchVisitors)
	for v := range changes {
		changes[v].Visitor.ID = fmt.Sprintf("visitor-%06d", (n*BatchVisitors+v)%50_000)
	}
	for i := range BatchEvents {
		ev := signals.Event{
			ID: fmt.Sprintf("%08x-6d0c-7a3e-9f1e-%012x", n, i), Visitor: changes[i%BatchVisitors].Visitor.ID,
			Item: fmt.Sprintf("sku-%06d", (n*37+rng.IntN(BatchItems))%100_000),
			Time: signals.Timestamp{Time: t0.Add(time.Duration(i) * 50 * time.Microsecond)},
		}
		switch r := rng.IntN(100); {
		case r < 60:
			ev.Type = signals.TypeView
		case r < 75:
			ev.Type = signals.TypeClick
		case r < 90:
			ev.Type, ev.Value = signals.TypeDwell, float64(200+rng.IntN(5000))
		case r < 95:
			ev.Type = signals.TypeAddToCart
		case r < 98:
			ev.Type, ev.Value = signals.TypeConversion, float64(rng.IntN(20000))/100
		default:
			ev.Type = signals.TypeImpression
		}
		if rng.IntN(10) == 0 {
			ev.Offer = fmt.Sprintf("offer-%02d", rng.IntN(20))
		}
		c := &changes[i%BatchVisitors]
		c.Fresh = append(c.Fresh, ev)
	}
	return changes
}

// capture is a stats.Store that keeps a copy of what it is given.
type capture struct{ deltas []stats.Delta }

func (c *capture) AddCounts(_ context.Context, ds []stats.Delta) error {
	c.deltas = append(c.deltas, ds...)
	return nil
}

func (c *capture) Counts(context.Context, stats.Resolution, stats.Subject, time.Time, time.Time) ([]stats.Point, error) {
	return nil, nil
}

// BenchDeltas returns the deltas stats.Stats writes for BenchBatch(n)
// (default retention).
func BenchDeltas(tb testing.TB, n int) []stats.Delta {
	tb.Helper()
	c := &capture{}
	st, err := stats.New(c, stats.Config{Retention: stats.DefaultRetention()})
	if err != nil {
		tb.Fatal(err)
	}
	st.React(context.Background(), BenchBatch(n))
	return slices.Clone(c.deltas)
}

const prepared = 64

// mustWrite fails the benchmark when a write fails (React only logs).
type mustWrite struct {
	stats.Store
	b *testing.B
}

func (m mustWrite) AddCounts(ctx context.Context, ds []stats.Delta) error {
	err := m.Store.AddCounts(ctx, ds)
	if err != nil {
		m.b.Error(err)
	}
	return err
}

// BenchReact measures stats.Stats.React over store on BenchBatch batches
// (prepared outside the timer): aggregation and one AddCounts per batch.
// It reports events/s and deltas per batch.
func BenchReact(b *testing.B, store stats.Store) {
	st, err := stats.New(mustWrite{store, b}, stats.Config{Retention: stats.DefaultRetention()})
	if err != nil {
		b.Fatal(err)
	}
	batches := make([][]engine.VisitorChange, prepared)
	for i := range batches {
		batches[i] = BenchBatch(i)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		st.React(ctx, batches[i%prepared])
		i++
	}
	b.ReportMetric(float64(i*BatchEvents)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(len(BenchDeltas(b, 0))), "deltas/batch")
}

// BenchAdd measures AddCounts of one batch's deltas (BenchDeltas,
// prepared outside the timer) and reports events/s.
func BenchAdd(b *testing.B, store stats.Store) {
	batches := make([][]stats.Delta, prepared)
	for i := range batches {
		batches[i] = BenchDeltas(b, i)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if err := store.AddCounts(ctx, batches[i%prepared]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(i*BatchEvents)/b.Elapsed().Seconds(), "events/s")
}
