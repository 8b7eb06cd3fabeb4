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

// benchBus returns a Bus for a benchmark: on a fresh prefix, without a
// logger, with the configuration set changes (nil: none) once the admin
// channel is open.
func benchBus(b *testing.B, set func(*Config, *admin)) (*Bus, Config) {
	cfg := testConfig(b)
	cfg.Logger = nil
	a := newAdmin(b, cfg.URL)
	if set != nil {
		set(&cfg, a)
	}
	return newTestBus(b, cfg, a), cfg
}

// withStream returns a benchBus change that sets the stream
// configuration st, and deletes the stream when b ends.
func withStream(b *testing.B, st StreamConfig) func(*Config, *admin) {
	return func(cfg *Config, a *admin) {
		cfg.Stream = st
		b.Cleanup(func() { _, _ = a.ch.QueueDelete(StreamName(cfg.Prefix), false, false, false) })
	}
}

// consumed counts the events and batches a Bus consumed.
type consumed struct {
	mu              sync.Mutex
	cond            *sync.Cond
	events, batches int
}

// consumeCounting consumes bus, until b ends, with a handler that only
// counts.
func consumeCounting(b *testing.B, bus *Bus) *consumed {
	c := &consumed{}
	c.cond = sync.NewCond(&c.mu)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = bus.Consume(ctx, func(_ context.Context, batch []signals.Event) error {
			c.mu.Lock()
			c.events += len(batch)
			c.batches++
			c.cond.Broadcast()
			c.mu.Unlock()
			return nil
		})
	}()
	b.Cleanup(func() { cancel(); <-done })
	return c
}

// wait blocks until n events in all were consumed, and returns the number
// of batches they came in.
func (c *consumed) wait(n int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.events < n {
		c.cond.Wait()
	}
	return c.batches
}

// publishParallel publishes events b.N times from 8 goroutines (on 2
// cores), as concurrent HTTP requests do.
func publishParallel(b *testing.B, bus *Bus, events []signals.Event) {
	b.SetParallelism(4) // 2 cores x 4 = 8 publishers
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := bus.Publish(context.Background(), events); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// benchPublishShape measures Publish with confirms of the shape s on bus.
func benchPublishShape(b *testing.B, s ingestShape, bus *Bus) {
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	n := runShape(b, s, bus.Publish)
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "events/s")
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
			bus, _ := benchBus(b, nil)
			benchPublishShape(b, s, bus)
		})
	}
}

// BenchmarkIngest measures the end-to-end rate: the shapes of ingestShapes
// published with confirms and consumed by a handler that does nothing; the
// clock stops when the last event has been handled.
func BenchmarkIngest(b *testing.B) {
	for _, s := range ingestShapes {
		b.Run(s.name, func(b *testing.B) {
			bus, _ := benchBus(b, nil)
			c := consumeCounting(b, bus)
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			n := runShape(b, s, bus.Publish)
			nb := c.wait(n)
			b.ReportMetric(float64(n)/time.Since(start).Seconds(), "events/s")
			b.ReportMetric(float64(n)/float64(nb), "events/batch")
		})
	}
}
