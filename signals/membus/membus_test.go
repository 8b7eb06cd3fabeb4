package membus_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/kairoshq/kairos/signals"
	"github.com/kairoshq/kairos/signals/bustest"
	"github.com/kairoshq/kairos/signals/membus"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newFixture(t *testing.T) bustest.Fixture {
	b := membus.New(membus.Options{})
	t.Cleanup(func() { b.Close() })
	return bustest.Fixture{
		Bus:       b,
		Sync:      true,
		InjectRaw: b.PublishRaw,
		DeadLetters: func(context.Context) ([]signals.DeadLetter, error) {
			return b.DeadLetters(), nil
		},
	}
}

func TestContract(t *testing.T) { bustest.Run(t, newFixture) }

func TestPublishWaitsForConsumer(t *testing.T) {
	b := membus.New(membus.Options{})
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := b.Publish(ctx, bustest.Events("w", 1, 1, time.Now()))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Publish without consumer = %v, want DeadlineExceeded", err)
	}
	// A consumer that starts later gets a batch published before it started.
	got := make(chan []signals.Event, 1)
	pubErr := make(chan error, 1)
	go func() {
		pubErr <- b.Publish(context.Background(), bustest.Events("w2", 1, 2, time.Now()))
	}()
	time.Sleep(20 * time.Millisecond)
	cctx, ccancel := context.WithCancel(context.Background())
	defer ccancel()
	go b.Consume(cctx, func(_ context.Context, batch []signals.Event) error {
		got <- batch
		return nil
	})
	if batch := <-got; len(batch) != 2 {
		t.Errorf("batch of %d events, want 2", len(batch))
	}
	if err := <-pubErr; err != nil {
		t.Errorf("Publish: %v", err)
	}
}

func TestPublishHandlerErrorIsUnavailable(t *testing.T) {
	b := membus.New(membus.Options{})
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	boom := errors.New("boom")
	go b.Consume(ctx, func(context.Context, []signals.Event) error { return boom })
	err := b.Publish(ctx, bustest.Events("u", 1, 1, time.Now()))
	if !errors.Is(err, boom) || !errors.Is(err, signals.ErrUnavailable) {
		t.Fatalf("Publish = %v, want boom and ErrUnavailable", err)
	}
}

func TestPublishDoesNotModifyCallerEvents(t *testing.T) {
	b := membus.New(membus.Options{Now: func() time.Time { return time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC) }})
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan signals.Event, 1)
	go b.Consume(ctx, func(_ context.Context, batch []signals.Event) error {
		got <- batch[0]
		return nil
	})
	events := []signals.Event{{ID: "e", Type: signals.TypeView, Visitor: "v", Item: "i"}}
	if err := b.Publish(ctx, events); err != nil {
		t.Fatal(err)
	}
	if !events[0].Time.IsZero() {
		t.Errorf("caller's event was modified: ts %v", events[0].Time)
	}
	if e := <-got; !e.Time.Equal(time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("handler got ts %v, want the bus clock", e.Time)
	}
}

func TestDeadLettersBounded(t *testing.T) {
	b := membus.New(membus.Options{MaxDeadLetters: 3})
	defer b.Close()
	for i := range 5 {
		if err := b.PublishRaw(context.Background(), "v", []byte(fmt.Sprint("bad ", i))); err != nil {
			t.Fatal(err)
		}
	}
	dead := b.DeadLetters()
	if len(dead) != 3 || b.DeadLettered() != 5 {
		t.Fatalf("%d dead letters kept, %d counted; want 3 and 5", len(dead), b.DeadLettered())
	}
	for i, d := range dead {
		if want := fmt.Sprint("bad ", i+2); string(d.Body) != want {
			t.Errorf("dead letter %d = %q, want %q", i, d.Body, want)
		}
	}
}

func BenchmarkRoundTrip(b *testing.B) {
	for _, n := range []int{1, 100, 500} {
		b.Run(fmt.Sprint("batch=", n), func(b *testing.B) {
			bus := membus.New(membus.Options{})
			defer bus.Close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go bus.Consume(ctx, func(context.Context, []signals.Event) error { return nil })
			events := bustest.Events("bench", 10, (n+9)/10, time.Now())[:n]
			b.ReportAllocs()
			for b.Loop() {
				if err := bus.Publish(ctx, events); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
