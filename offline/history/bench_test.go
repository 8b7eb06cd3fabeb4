package history_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/kairoshq/kairos/offline/history"
	"github.com/kairoshq/kairos/signals"
)

// benchEvents is the size of the benchmarks' stream: 20,000 events in
// messages of 20 events of one visitor (the tracker's shape).
const benchEvents = 20_000

// benchCluster publishes benchEvents events to a new stream.
func benchCluster(b *testing.B) *cluster {
	c := newCluster(b)
	bus := c.bus(b, "0")
	base := time.Now().Add(-24 * time.Hour)
	for i := 0; i < benchEvents/20; i++ {
		evs := genEvents(fmt.Sprintf("b%d", i), 20, 1, base.Add(time.Duration(i)*time.Second))
		for j := range evs {
			evs[j].Visitor = fmt.Sprintf("v%d", i)
		}
		if err := bus.Publish(context.Background(), evs); err != nil {
			b.Fatal(err)
		}
	}
	return c
}

// BenchmarkArchiver measures the archiver's throughput: stream to
// fsynced cold segments and committed offsets, from an empty cold tier.
func BenchmarkArchiver(b *testing.B) {
	c := benchCluster(b)
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		dir := filepath.Join(b.TempDir(), "history")
		_, stop := startArchiver(b, history.ArchiverConfig{Dir: dir, Stream: c.stream, Store: openStore(b), Holder: fmt.Sprint(i), LeaseTTL: 5 * time.Second})
		waitFor(b, "every event archived", func() bool { return committed(b, dir) == benchEvents })
		stop()
	}
	b.ReportMetric(float64(b.N*benchEvents)/time.Since(start).Seconds(), "events/s")
}

// BenchmarkReplay measures a full read of the history (decoded events,
// de-duplicated), all from the stream and all from the cold tier.
func BenchmarkReplay(b *testing.B) {
	c := benchCluster(b)
	cold := filepath.Join(b.TempDir(), "history")
	_, stop := startArchiver(b, history.ArchiverConfig{Dir: cold, Stream: c.stream, Store: openStore(b), Holder: "r", LeaseTTL: 5 * time.Second})
	waitFor(b, "every event archived", func() bool { return committed(b, cold) == benchEvents })
	stop()
	for _, tier := range []struct{ name, dir string }{{"stream", filepath.Join(b.TempDir(), "none")}, {"cold", cold}} {
		b.Run(tier.name, func(b *testing.B) {
			start := time.Now()
			for b.Loop() {
				r, err := history.NewReader(history.ReaderConfig{Dir: tier.dir, Stream: c.stream})
				if err != nil {
					b.Fatal(err)
				}
				n := 0
				if err := r.Scan(context.Background(), time.Time{}, time.Time{}, func(signals.Event) error { n++; return nil }); err != nil {
					b.Fatal(err)
				}
				if n != benchEvents {
					b.Fatalf("read %d events, want %d", n, benchEvents)
				}
			}
			b.ReportMetric(float64(b.N*benchEvents)/time.Since(start).Seconds(), "events/s")
		})
	}
}
