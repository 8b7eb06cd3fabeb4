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

// TestPublishKeysAndRetry checks the two calls of the multi-tenant
// consumer: PublishKeys routes each event by the key given (in order per
// key), and Retry sends events back through the retry queue: they return
// after the delay, on their key's partition, marked forwarded with their
// attempt, in order.
func TestPublishKeysAndRetry(t *testing.T) {
	cfg := partitionConfig(t)
	cfg.RetryDelay = 300 * time.Millisecond
	a := newAdmin(t, cfg.URL)
	deletePartitions(t, a, cfg.Prefix, cfg.Partitions)
	b := newTestBus(t, cfg, a)
	consistentHashAvailable(t, b)

	type arrival struct {
		ev signals.Event
		r  signals.Route
		at time.Time
	}
	var (
		mu  sync.Mutex
		got []arrival
	)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- b.Consume(ctx, func(hctx context.Context, batch []signals.Event) error {
			rs := signals.RoutesOf(hctx)
			mu.Lock()
			defer mu.Unlock()
			for i, ev := range batch {
				got = append(got, arrival{ev, rs[i], time.Now()})
			}
			return nil
		})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	waitFor := func(n int) []arrival {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			mu.Lock()
			out := slices.Clone(got)
			mu.Unlock()
			if len(out) >= n || time.Now().After(deadline) {
				return out
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	evs := bustest.Events("keys", 2, 3, time.Now())
	keys := make([]string, len(evs))
	for i, ev := range evs {
		keys[i] = "shop-a/" + ev.Visitor
	}
	if err := b.PublishKeys(context.Background(), evs, keys); err != nil {
		t.Fatal(err)
	}
	if err := b.PublishKeys(context.Background(), evs, keys[:1]); err == nil {
		t.Error("PublishKeys with fewer keys than events succeeded")
	}
	first := waitFor(len(evs))
	if len(first) != len(evs) {
		t.Fatalf("consumed %d events, want %d", len(first), len(evs))
	}
	for i, g := range first {
		if g.r.Key != "shop-a/"+g.ev.Visitor || g.r.Forwarded || g.r.Attempt != 0 {
			t.Errorf("event %s arrived with route %+v, want key shop-a/%s, not forwarded", g.ev.ID, g.r, g.ev.Visitor)
		}
		if i > 0 && first[i-1].ev.Visitor == g.ev.Visitor && first[i-1].ev.ID > g.ev.ID {
			t.Errorf("events of %s out of order: %s after %s", g.ev.Visitor, g.ev.ID, first[i-1].ev.ID)
		}
	}

	retried := evs[:3]
	sent := time.Now()
	if err := b.Retry(context.Background(), "shop-a/x", retried, 2); err != nil {
		t.Fatal(err)
	}
	all := waitFor(len(evs) + len(retried))
	back := all[len(evs):]
	if len(back) != len(retried) {
		t.Fatalf("%d retried events came back, want %d", len(back), len(retried))
	}
	for i, g := range back {
		if g.ev.ID != retried[i].ID {
			t.Errorf("retried event %d is %s, want %s (in order)", i, g.ev.ID, retried[i].ID)
		}
		if g.r.Key != "shop-a/x" || !g.r.Forwarded || g.r.Attempt != 2 {
			t.Errorf("retried event %s arrived with route %+v, want key shop-a/x, forwarded, attempt 2", g.ev.ID, g.r)
		}
		if d := g.at.Sub(sent); d < cfg.RetryDelay {
			t.Errorf("retried event %s came back after %v, before the retry delay %v", g.ev.ID, d, cfg.RetryDelay)
		}
	}
	cfg2 := cfg
	cfg2.RetryDelay = 0
	if err := (&Bus{cfg: cfg2}).Retry(context.Background(), "k", retried, 1); err == nil {
		t.Error("Retry without a retry queue succeeded")
	}
}
