package rabbitmq

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/kairoshq/kairos/signals"
	"github.com/kairoshq/kairos/signals/bustest"
)

// queueBenchCases are the topologies the queue-type benchmarks compare:
// each queue type, with one replica queue and with 64 partitions.
var queueBenchCases = []struct {
	queueType  string
	partitions int
}{{QueueClassic, 0}, {QueueQuorum, 0}, {QueueClassic, 64}, {QueueQuorum, 64}}

func queueBenchBus(b *testing.B, queueType string, partitions int) *Bus {
	cfg := testConfig(b)
	cfg.Logger = nil
	cfg.QueueType, cfg.Partitions = queueType, partitions
	a := newAdmin(b, cfg.URL)
	deletePartitions(b, a, cfg.Prefix, partitions)
	return newTestBus(b, cfg, a)
}

// BenchmarkQueueTypePublish publishes confirmed batches of 100 events
// (50 visitors) from 8 goroutines, as concurrent HTTP requests do, to
// classic and quorum queues.
func BenchmarkQueueTypePublish(b *testing.B) {
	for _, c := range queueBenchCases {
		b.Run(fmt.Sprintf("type=%s/partitions=%d", c.queueType, c.partitions), func(b *testing.B) {
			bus := queueBenchBus(b, c.queueType, c.partitions)
			events := bustest.Events("bench", 50, 2, time.Now())
			b.SetParallelism(4) // 2 cores x 4 = 8 publishers
			b.ResetTimer()      // the declaration of the queues is set-up
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := bus.Publish(context.Background(), events); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(len(events))*float64(b.N)/time.Since(start).Seconds(), "events/s")
		})
	}
}

// BenchmarkQueueTypePublishConsume publishes batches of 100 events from 8
// goroutines and consumes them (the handler does nothing) on one Bus:
// the ingest rate through classic and quorum queues.
func BenchmarkQueueTypePublishConsume(b *testing.B) {
	for _, c := range queueBenchCases {
		b.Run(fmt.Sprintf("type=%s/partitions=%d", c.queueType, c.partitions), func(b *testing.B) {
			bus := queueBenchBus(b, c.queueType, c.partitions)
			events := bustest.Events("bench", 50, 2, time.Now())
			var mu sync.Mutex
			consumed := 0
			cond := sync.NewCond(&mu)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				defer close(done)
				_ = bus.Consume(ctx, func(_ context.Context, batch []signals.Event) error {
					mu.Lock()
					consumed += len(batch)
					cond.Broadcast()
					mu.Unlock()
					return nil
				})
			}()
			defer func() { cancel(); <-done }()
			b.SetParallelism(4)
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := bus.Publish(ctx, events); err != nil {
						b.Error(err)
						return
					}
				}
			})
			want := len(events) * b.N
			mu.Lock()
			for consumed < want {
				cond.Wait()
			}
			mu.Unlock()
			b.ReportMetric(float64(want)/time.Since(start).Seconds(), "events/s")
		})
	}
}
