package storetest

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/signals"
)

// Shape of the benchmark batches: a consumed batch of BatchEvents events
// over BatchVisitors visitors, each update carrying k = BenchK factors.
const (
	BatchEvents   = 256
	BatchVisitors = 200
	BenchK        = 64
)

// benchBatch returns the n-th benchmark commit: BatchEvents events with
// realistic ids and pages over BatchVisitors visitors drawn from a pool
// of 10,000, each with new factors.
func benchBatch(prefix string, n int, factors []float32) engine.Commit {
	c := engine.Commit{Events: make([]engine.EventRef, 0, BatchEvents), Visitors: make([]engine.VisitorUpdate, BatchVisitors)}
	now := time.Unix(1_750_000_000, 0).UTC().Add(time.Duration(n) * time.Second)
	for v := range c.Visitors {
		c.Visitors[v] = engine.VisitorUpdate{
			ID:      fmt.Sprintf("%s-visitor-%05d", prefix, (n*BatchVisitors+v*7919)%10_000),
			Factors: factors,
			Session: engine.Session{ID: "01J2ZK3Q8V5X7Y9A1B3C5D7E9F", Start: now.Add(-time.Minute), Last: now, Events: 12},
		}
	}
	for i := range BatchEvents {
		id := fmt.Sprintf("%s-%08x-6d0c-7a3e-9f1e-%012x", prefix, n, i)
		e := engine.HistoryEvent{
			ID: id, Type: signals.TypeView, Item: fmt.Sprintf("sku-%06d", (n*31+i*17)%100_000),
			Page: fmt.Sprintf("https://shop.example/p/sku-%06d", i), Weight: 1, Time: now.Add(time.Duration(i) * time.Millisecond),
		}
		u := &c.Visitors[i%BatchVisitors]
		c.Events = append(c.Events, engine.EventRef{Visitor: u.ID, ID: id})
		u.Append = append(u.Append, e)
	}
	return c
}

// benchBatches returns the 64 batches a commit benchmark cycles through,
// with ids under a fresh prefix.
func benchBatches(prefix string) []engine.Commit {
	factors := Factors(1, BenchK)
	prefix = Unique(prefix)
	batches := make([]engine.Commit, 64)
	for i := range batches {
		batches[i] = benchBatch(prefix, i, factors)
	}
	return batches
}

// BenchCommit measures Commit of one consumed batch (BatchEvents events
// over BatchVisitors visitors: history appends, factors of k = BenchK, a
// session and the de-duplication marks), one at a time, and reports
// events/s. Batches are prepared outside the timer.
func BenchCommit(b *testing.B, s engine.Store) {
	batches := benchBatches("bc")
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		if err := s.Commit(ctx, batches[n%len(batches)]); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n*BatchEvents)/b.Elapsed().Seconds(), "events/s")
}

// BenchCommitParallel is BenchCommit with concurrent committers
// (b.RunParallel), as several consumers or replicas would commit.
func BenchCommitParallel(b *testing.B, s engine.Store) {
	batches := benchBatches("bp")
	var next, done atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.Commit(context.Background(), batches[next.Add(1)%int64(len(batches))]); err != nil {
				b.Error(err)
				return
			}
			done.Add(1)
		}
	})
	b.ReportMetric(float64(done.Load()*BatchEvents)/b.Elapsed().Seconds(), "events/s")
}

// BenchVisitors measures loading BatchVisitors visitors that each have
// history events and k = BenchK factors (one Visitors call), and reports
// the equivalent events/s for batches of BatchEvents events.
func BenchVisitors(b *testing.B, s engine.Store, history int) {
	ctx := context.Background()
	prefix := Unique("bv")
	factors := Factors(2, BenchK)
	ids := make([]string, BatchVisitors)
	for v := range ids {
		ids[v] = fmt.Sprintf("%s-visitor-%d", prefix, v)
	}
	// Fill the histories with the benchmark's events, 10 per visitor per
	// commit.
	for done := 0; done < history; done += 10 {
		c := engine.Commit{}
		for v, id := range ids {
			evs := benchBatch(prefix, done*BatchVisitors+v, nil).Visitors[0].Append
			for len(evs) < 10 {
				evs = append(evs, evs...)
			}
			c.Visitors = append(c.Visitors, engine.VisitorUpdate{ID: id, Append: evs[:min(10, history-done)], Factors: factors})
		}
		if err := s.Commit(ctx, c); err != nil {
			b.Fatal(err)
		}
	}
	vs, err := s.Visitors(ctx, ids)
	if err != nil {
		b.Fatal(err)
	}
	if len(vs[0].History) != history || len(vs[0].Factors) != BenchK {
		b.Fatalf("visitor has %d events and %d factors, want %d and %d", len(vs[0].History), len(vs[0].Factors), history, BenchK)
	}
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		if _, err := s.Visitors(ctx, ids); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n*BatchEvents)/b.Elapsed().Seconds(), "events/s")
}
