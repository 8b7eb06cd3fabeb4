package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kairoshq/kairos/internal/errs"
	"github.com/kairoshq/kairos/signals"
	"github.com/kairoshq/kairos/signals/bustest"
)

// newStreamBus dials a Bus with the history stream enabled; the stream
// is deleted at cleanup with the rest of the topology.
func newStreamBus(t *testing.T) (*Bus, *StreamReader) {
	t.Helper()
	cfg := testConfig(t)
	cfg.Stream = StreamConfig{Enabled: true, MaxAge: time.Hour, MaxBytes: 64 << 20, SegmentBytes: 8 << 20}
	a := newAdmin(t, cfg.URL)
	t.Cleanup(func() {
		if _, err := a.ch.QueueDelete(StreamName(cfg.Prefix), false, false, false); err != nil {
			t.Errorf("cleanup: delete stream: %v", err)
		}
	})
	b := newTestBus(t, cfg, a)
	r, err := NewStreamReader(StreamReaderConfig{URL: cfg.URL, Prefix: cfg.Prefix, Prefetch: 50, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return b, r
}

// streamEvents makes n events of visitors v0..v(n/3).
func streamEvents(prefix string, n int) []signals.Event {
	evs := make([]signals.Event, n)
	t0 := time.Now().Add(-time.Hour).Truncate(time.Millisecond).UTC()
	for i := range evs {
		evs[i] = signals.Event{ID: fmt.Sprintf("%s-e%d", prefix, i), Type: signals.TypeView, Visitor: fmt.Sprintf("v%d", i%(n/3+1)),
			Item: fmt.Sprintf("i%d", i%7), Time: signals.Timestamp{Time: t0.Add(time.Duration(i) * time.Millisecond)}}
	}
	return evs
}

// readAll reads the stream from offset from to its end; offsets are the
// event messages', fences those of other readers' fences.
func readAll(t *testing.T, r *StreamReader, from uint64) (offsets []uint64, events []signals.Event, fences []uint64) {
	t.Helper()
	err := r.Read(context.Background(), from, func(batch []signals.StreamMessage) error {
		for _, m := range batch {
			if m.Fence {
				if len(m.Body) != 0 {
					return fmt.Errorf("fence at %d has a body", m.Offset)
				}
				fences = append(fences, m.Offset)
				continue
			}
			offsets = append(offsets, m.Offset)
			res, err := signals.DecodeMessage(m.Body, m.Published, signals.Limits{})
			if err != nil {
				return err
			}
			events = append(events, res.Events...)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return offsets, events, fences
}

func TestStreamKeepsEveryPublishedEvent(t *testing.T) {
	b, r := newStreamBus(t)
	ctx := context.Background()
	evs := streamEvents(b.cfg.Prefix, 600)
	for i := 0; i < len(evs); i += 100 {
		if err := b.Publish(ctx, evs[i:i+100]); err != nil {
			t.Fatal(err)
		}
	}
	offsets, got, fences := readAll(t, r, 0)
	if len(fences) != 0 {
		t.Fatalf("first read met fences at %v", fences)
	}
	if len(got) != len(evs) {
		t.Fatalf("stream holds %d events, %d were published", len(got), len(evs))
	}
	seen := map[string]bool{}
	for _, e := range got {
		if seen[e.ID] || !strings.HasPrefix(e.ID, b.cfg.Prefix) {
			t.Fatalf("event %s twice or foreign", e.ID)
		}
		seen[e.ID] = true
	}
	for i := 1; i < len(offsets); i++ {
		if offsets[i] <= offsets[i-1] {
			t.Fatalf("offsets not increasing: %v", offsets)
		}
	}
	// A second read appends a second fence and is given the first,
	// marked (its offset follows the last event's); reading from an
	// offset starts there.
	mid := offsets[len(offsets)/2]
	offs2, got2, fences2 := readAll(t, r, mid)
	if len(fences2) != 1 || fences2[0] != offsets[len(offsets)-1]+1 {
		t.Fatalf("second read: fences at %v, want the first read's at %d", fences2, offsets[len(offsets)-1]+1)
	}
	if offs2[0] != mid || len(offs2) != len(offsets)-len(offsets)/2 {
		t.Fatalf("read from %d: %d messages from %d, want %d", mid, len(offs2), offs2[0], len(offsets)-len(offsets)/2)
	}
	if got2[len(got2)-1].ID != got[len(got)-1].ID {
		t.Fatalf("last event %s, want %s", got2[len(got2)-1].ID, got[len(got)-1].ID)
	}
}

func TestStreamFollowDeliversNewMessages(t *testing.T) {
	b, r := newStreamBus(t)
	evs := streamEvents(b.cfg.Prefix, 90)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := make(chan signals.Event, len(evs))
	done := make(chan error, 1)
	fctx, stop := context.WithCancel(ctx)
	go func() {
		done <- r.Follow(fctx, 0, func(batch []signals.StreamMessage) error {
			for _, m := range batch {
				res, _ := signals.DecodeMessage(m.Body, m.Published, signals.Limits{})
				for _, e := range res.Events {
					got <- e
				}
			}
			return nil
		})
	}()
	for i := 0; i < len(evs); i += 30 {
		if err := b.Publish(ctx, evs[i:i+30]); err != nil {
			t.Fatal(err)
		}
	}
	ids := map[string]bool{}
	for len(ids) < len(evs) {
		select {
		case e := <-got:
			ids[e.ID] = true
		case <-ctx.Done():
			t.Fatalf("followed %d of %d events", len(ids), len(evs))
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Follow after cancel: %v", err)
	}
}

func TestStreamConfigValidate(t *testing.T) {
	c := StreamConfig{}.Defaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	bad := StreamConfig{MaxAge: time.Millisecond, MaxBytes: 10, SegmentBytes: 20, InitialClusterSize: -1}
	err := bad.Validate()
	for _, want := range []string{"MaxAge", "SegmentBytes", "InitialClusterSize"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate(%+v) = %v, want a problem naming %s", bad, err, want)
		}
	}
	if got := c.args()["x-max-age"]; got != "604800s" {
		t.Errorf("x-max-age = %v", got)
	}
	if _, err := NewStreamReader(StreamReaderConfig{URL: "http://x", Prefix: "a b"}); err == nil || !strings.Contains(err.Error(), "Prefix") || !strings.Contains(err.Error(), "URL") {
		t.Errorf("NewStreamReader with a bad URL and prefix: %v", err)
	}
	// A cluster's list, as Config.URL: each URL is checked, the bad one
	// named.
	if _, err := NewStreamReader(StreamReaderConfig{URL: "amqp://a:5672/, http://b"}); err == nil || !strings.Contains(err.Error(), "URL 2 of 2") {
		t.Errorf("NewStreamReader with a bad second URL: %v", err)
	}
}

// TestStreamReaderFailsOverBetweenURLs: given a cluster's list of URLs
// (as `kairos serve --amqp-url a,b,c` passes it), the reader connects to
// the first that answers — here after a node that is down — and reads
// the whole stream; it does not take the list for one URL with a strange
// virtual host.
func TestStreamReaderFailsOverBetweenURLs(t *testing.T) {
	b, _ := newStreamBus(t)
	ctx := context.Background()
	evs := streamEvents(b.cfg.Prefix, 90)
	if err := b.Publish(ctx, evs); err != nil {
		t.Fatal(err)
	}
	down := "amqp://guest:guest@127.0.0.1:1/" // nothing listens on port 1
	r, err := NewStreamReader(StreamReaderConfig{URL: down + "," + b.cfg.URL, Prefix: b.cfg.Prefix, DialTimeout: 2 * time.Second, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if _, got, _ := readAll(t, r, 0); len(got) != len(evs) {
		t.Fatalf("read %d events through the list, %d published", len(got), len(evs))
	}
	if at := r.at.Load(); at != 1 {
		t.Fatalf("answered by URL %d, want the second (1)", at)
	}
	// No broker answers: ErrUnavailable naming each.
	r, err = NewStreamReader(StreamReaderConfig{URL: down + "," + down, Prefix: b.cfg.Prefix, DialTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = r.Read(ctx, 0, func([]signals.StreamMessage) error { return nil })
	if !errors.Is(err, signals.ErrUnavailable) || strings.Count(err.Error(), "connect to amqp://guest:xxxxx@127.0.0.1:1/") != 2 {
		t.Fatalf("read with no broker: %v; want ErrUnavailable naming both URLs", err)
	}
}

// BenchmarkPublishStream measures Publish with confirms with and without
// the history stream bound to the events exchange: the stream's cost on
// the hot path (the broker writes each message to one more queue before
// it confirms).
func BenchmarkPublishStream(b *testing.B) {
	for _, s := range ingestShapes {
		for _, on := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/stream=%v", s.name, on), func(b *testing.B) {
				bus, _ := benchBus(b, withStream(b, StreamConfig{Enabled: on, MaxAge: time.Hour, MaxBytes: 1 << 30, SegmentBytes: 64 << 20}))
				benchPublishShape(b, s, bus)
			})
		}
	}
}

// BenchmarkStreamRead measures reading 20,000 events (1,000 messages of
// 20, the tracker's shape) from the stream's first offset with Read.
func BenchmarkStreamRead(b *testing.B) {
	bus, cfg := benchBus(b, withStream(b, StreamConfig{Enabled: true, MaxAge: time.Hour, MaxBytes: 1 << 30, SegmentBytes: 64 << 20}))
	const messages = 1000
	for i := range messages {
		if err := bus.Publish(context.Background(), bustest.Events(fmt.Sprintf("r%d", i), 1, 20, time.Now())); err != nil {
			b.Fatal(err)
		}
	}
	r, err := NewStreamReader(StreamReaderConfig{URL: cfg.URL, Prefix: cfg.Prefix})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		n := 0
		if err := r.Read(context.Background(), 0, func(batch []signals.StreamMessage) error {
			for _, m := range batch {
				if !m.Fence {
					n++
				}
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		if n != messages {
			b.Fatalf("read %d messages, want %d", n, messages)
		}
	}
	b.ReportMetric(float64(b.N*messages*20)/time.Since(start).Seconds(), "events/s")
}

func TestStreamReadWithoutStreamIsNotFound(t *testing.T) {
	cfg := testConfig(t)
	r, err := NewStreamReader(StreamReaderConfig{URL: cfg.URL, Prefix: cfg.Prefix})
	if err != nil {
		t.Fatal(err)
	}
	err = r.Read(context.Background(), 0, func([]signals.StreamMessage) error { return nil })
	if !errors.Is(err, errs.NotFound) || !strings.Contains(err.Error(), StreamName(cfg.Prefix)) {
		t.Fatalf("Read of a missing stream: %v, want NotFound naming %s", err, StreamName(cfg.Prefix))
	}
}
