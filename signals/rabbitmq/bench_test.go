package rabbitmq

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kairoshq/kairos/signals"
	"github.com/kairoshq/kairos/signals/bustest"
)

// ingestShape is a shape of Publish calls seen in production.
type ingestShape struct {
	name       string
	visitors   int // visitors per call
	perVisitor int // events per visitor per call
	publishers int // concurrent publishers (1 = sequential calls)
}

// ingestShapes: the browser tracker posts up to 20 events of one visitor
// per request, and requests arrive concurrently; server-side producers
// send bursts of many visitors.
var ingestShapes = []ingestShape{
	{name: "tracker=20x1", visitors: 1, perVisitor: 20, publishers: 1},
	{name: "tracker=20x1/publishers=8", visitors: 1, perVisitor: 20, publishers: 8},
	{name: "burst=500x100", visitors: 100, perVisitor: 5, publishers: 1},
}

// runShape calls publish b.N times in total with the events of shape s,
// from s.publishers goroutines, each with its own visitors; it returns the
// number of events published.
func runShape(b *testing.B, s ingestShape, publish func(context.Context, []signals.Event) error) int {
	var next atomic.Int32
	batches := make([][]signals.Event, s.publishers)
	for p := range batches {
		batches[p] = bustest.Events(fmt.Sprintf("bench%d", next.Add(1)), s.visitors, s.perVisitor, time.Now())
	}
	ctx := context.Background()
	if s.publishers == 1 {
		for b.Loop() {
			if err := publish(ctx, batches[0]); err != nil {
				b.Fatal(err)
			}
		}
		return b.N * len(batches[0])
	}
	var slot atomic.Int32
	b.SetParallelism((s.publishers + 1) / 2) // 2 cores
	b.RunParallel(func(pb *testing.PB) {
		events := batches[int(slot.Add(1)-1)%len(batches)]
		for pb.Next() {
			if err := publish(ctx, events); err != nil {
				b.Error(err)
				return
			}
		}
	})
	return b.N * s.visitors * s.perVisitor
}

// BenchmarkPublishShapes measures Publish with confirms for the shapes of
// ingestShapes (nothing consumes: the queue grows during the run).
func BenchmarkPublishShapes(b *testing.B) {
	for _, s := range ingestShapes {
		b.Run(s.name, func(b *testing.B) {
			cfg := testConfig(b)
			cfg.Logger = nil
			a := newAdmin(b, cfg.URL)
			bus := newTestBus(b, cfg, a)
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			n := runShape(b, s, bus.Publish)
			b.ReportMetric(float64(n)/time.Since(start).Seconds(), "events/s")
		})
	}
}

// BenchmarkIngest measures the end-to-end rate: the shapes of ingestShapes
// published with confirms and consumed by a handler that does nothing; the
// clock stops when the last event has been handled.
func BenchmarkIngest(b *testing.B) {
	for _, s := range ingestShapes {
		b.Run(s.name, func(b *testing.B) {
			cfg := testConfig(b)
			cfg.Logger = nil
			a := newAdmin(b, cfg.URL)
			bus := newTestBus(b, cfg, a)
			var (
				mu       sync.Mutex
				cond     = sync.NewCond(&mu)
				consumed int
				batches  int
			)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				defer close(done)
				bus.Consume(ctx, func(_ context.Context, batch []signals.Event) error {
					mu.Lock()
					consumed += len(batch)
					batches++
					cond.Broadcast()
					mu.Unlock()
					return nil
				})
			}()
			defer func() { cancel(); <-done }()
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			n := runShape(b, s, bus.Publish)
			mu.Lock()
			for consumed < n {
				cond.Wait()
			}
			nb := batches
			mu.Unlock()
			b.ReportMetric(float64(n)/time.Since(start).Seconds(), "events/s")
			b.ReportMetric(float64(n)/float64(nb), "events/batch")
		})
	}
}
