package rabbitmq

import (
	"fmt"
	"testing"
	"time"

	"github.com/kairoshq/kairos/signals/bustest"
)

// queueBenchCases are the topologies the queue-type benchmarks compare:
// each queue type, with one replica queue and with 64 partitions.
var queueBenchCases = []struct {
	queueType  string
	partitions int
}{{QueueClassic, 0}, {QueueQuorum, 0}, {QueueClassic, 64}, {QueueQuorum, 64}}

func queueBenchBus(b *testing.B, queueType string, partitions int) *Bus {
	bus, _ := benchBus(b, func(cfg *Config, a *admin) {
		cfg.QueueType, cfg.Partitions = queueType, partitions
		deletePartitions(b, a, cfg.Prefix, partitions)
	})
	return bus
}

// BenchmarkQueueTypePublish publishes confirmed batches of 100 events
// (50 visitors) from 8 goroutines, as concurrent HTTP requests do, to
// classic and quorum queues.
func BenchmarkQueueTypePublish(b *testing.B) {
	for _, c := range queueBenchCases {
		b.Run(fmt.Sprintf("type=%s/partitions=%d", c.queueType, c.partitions), func(b *testing.B) {
			bus := queueBenchBus(b, c.queueType, c.partitions)
			events := bustest.Events("bench", 50, 2, time.Now())
			b.ResetTimer() // the declaration of the queues is set-up
			start := time.Now()
			publishParallel(b, bus, events)
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
			got := consumeCounting(b, bus)
			b.ResetTimer()
			start := time.Now()
			publishParallel(b, bus, events)
			want := len(events) * b.N
			got.wait(want)
			b.ReportMetric(float64(want)/time.Since(start).Seconds(), "events/s")
		})
	}
}
