package rabbitmq

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kairoshq/kairos/signals"
	"github.com/kairoshq/kairos/signals/bustest"
)

// TestRoutesAndForward checks what the engine's one-writer rule needs of
// a partitioned bus: the handler learns each event's routing key, and an
// event forwarded under another key arrives marked forwarded, unchanged
// and in order.
func TestRoutesAndForward(t *testing.T) {
	cfg := partitionConfig(t)
	a := newAdmin(t, cfg.URL)
	deletePartitions(t, a, cfg.Prefix, cfg.Partitions)
	b := newTestBus(t, cfg, a)
	consistentHashAvailable(t, b)

	var (
		mu     sync.Mutex
		got    []signals.Event
		routes []signals.Route
	)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- b.Consume(ctx, func(hctx context.Context, batch []signals.Event) error {
			rs := signals.RoutesOf(hctx)
			if len(rs) != len(batch) {
				t.Errorf("batch of %d events with %d routes", len(batch), len(rs))
			}
			mu.Lock()
			defer mu.Unlock()
			got = append(got, batch...)
			routes = append(routes, rs...)
			return nil
		})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	direct := bustest.Events("fwd", 3, 2, time.Now())
	if err := b.Publish(context.Background(), direct); err != nil {
		t.Fatal(err)
	}
	old := bustest.Events("fwd-old", 1, 3, time.Now().Add(-time.Hour))
	if err := b.Forward(context.Background(), "user:someone", old); err != nil {
		t.Fatal(err)
	}
	want := len(direct) + len(old)
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= want || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != want {
		t.Fatalf("consumed %d events, want %d", len(got), want)
	}
	var forwarded []string
	for i, ev := range got {
		r := routes[i]
		switch {
		case r.Forwarded:
			if r.Key != "user:someone" {
				t.Errorf("forwarded event %s arrived with key %q", ev.ID, r.Key)
			}
			forwarded = append(forwarded, ev.ID)
		case r.Key != ev.Visitor:
			t.Errorf("event %s of %s arrived with key %q, want its visitor", ev.ID, ev.Visitor, r.Key)
		}
	}
	var wantIDs []string
	for _, ev := range old {
		wantIDs = append(wantIDs, ev.ID)
	}
	if !slices.Equal(forwarded, wantIDs) {
		t.Errorf("forwarded events arrived as %v, want %v (in order)", forwarded, wantIDs)
	}
	if err := b.Forward(context.Background(), "", old); err == nil {
		t.Error("Forward with an empty key succeeded")
	}
}
