package rabbitmq

import (
	"context"
	"fmt"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
)

// TestBindingWeightMigration starts replicas on queues bound the way
// earlier releases did (weight "10") and checks the shares of 1000
// visitors as the replicas restart with this release: a migrated queue
// takes 100 buckets against 10, then equal shares once both are migrated,
// and a restart on migrated queues changes no visitor's replica.
func TestBindingWeightMigration(t *testing.T) {
	cfg := testConfig(t)
	a := newAdmin(t, cfg.URL)
	ca, cb := cfg, cfg
	ca.Replica, cb.Replica = "a", "b"
	ba := newTestBus(t, ca, a)
	consistentHashAvailable(t, ba)
	bb := newTestBus(t, cb, a)
	qa, qb, ex := ba.names.queue, bb.names.queue, ba.names.partitioned
	// Rebind both queues as the earlier release did.
	for _, q := range []string{qa, qb} {
		if err := a.ch.QueueUnbind(q, bindingWeight, ex, nil); err != nil {
			t.Fatal(err)
		}
		if err := a.ch.QueueBind(q, legacyWeight, ex, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = fmt.Sprintf("visitor-%d", i)
	}
	// route publishes one message per key and returns the queue of each.
	route := func() map[string]string {
		t.Helper()
		a.mu.Lock()
		dcs := make([]*amqp.DeferredConfirmation, len(keys))
		for i, k := range keys {
			dc, err := a.ch.PublishWithDeferredConfirmWithContext(context.Background(), ex, k, true, false, amqp.Publishing{Body: []byte("{}")})
			if err != nil {
				a.mu.Unlock()
				t.Fatal(err)
			}
			dcs[i] = dc
		}
		for _, dc := range dcs {
			if ok, err := dc.WaitContext(context.Background()); !ok || err != nil {
				a.mu.Unlock()
				t.Fatalf("publish not confirmed: %v", err)
			}
		}
		a.mu.Unlock()
		owner := map[string]string{}
		for _, q := range []string{qa, qb} {
			for _, d := range a.getAll(q) {
				owner[d.RoutingKey] = q
			}
		}
		if len(owner) != len(keys) {
			t.Fatalf("%d of %d keys routed", len(owner), len(keys))
		}
		return owner
	}
	share := func(owner map[string]string) int {
		n := 0
		for _, q := range owner {
			if q == qa {
				n++
			}
		}
		return n
	}
	restart := func(old *Bus, c Config) *Bus {
		t.Helper()
		old.Close()
		return newTestBus(t, c, a)
	}
	if n := share(route()); n < 400 || n > 600 {
		t.Fatalf("old bindings: replica a has %d of 1000 visitors, want about 500", n)
	}
	ba = restart(ba, ca)
	if n := share(route()); n < 800 {
		t.Errorf("a migrated, b not: replica a has %d of 1000 visitors, want about 909 (100 of 110 buckets)", n)
	}
	restart(bb, cb)
	before := route()
	if n := share(before); n < 400 || n > 600 {
		t.Errorf("both migrated: replica a has %d of 1000 visitors, want about 500", n)
	}
	restart(ba, ca)
	after := route()
	moved := 0
	for k, q := range before {
		if after[k] != q {
			moved++
		}
	}
	if moved != 0 {
		t.Errorf("a restart on migrated queues moved %d of 1000 visitors to another replica", moved)
	}
}
