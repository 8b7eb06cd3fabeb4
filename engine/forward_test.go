package engine_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/signals"
)

// forwardingBus is an engine.Bus that records what the engine forwards
// (signals.Forwarder); it consumes nothing itself.
type forwardingBus struct {
	mu        sync.Mutex
	forwarded map[string][]string // routing key → event ids, in order
	fail      error
}

func (b *forwardingBus) Consume(ctx context.Context, _ signals.BatchHandler) error {
	<-ctx.Done()
	return nil
}
func (b *forwardingBus) Broadcast(context.Context, signals.Topic, []byte) error { return nil }
func (b *forwardingBus) Subscribe(ctx context.Context, _ signals.Topic, _ func([]byte)) error {
	<-ctx.Done()
	return nil
}
func (b *forwardingBus) Ready(context.Context) error { return nil }

func (b *forwardingBus) Forward(_ context.Context, key string, events []signals.Event) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fail != nil {
		return b.fail
	}
	if b.forwarded == nil {
		b.forwarded = map[string][]string{}
	}
	for _, ev := range events {
		b.forwarded[key] = append(b.forwarded[key], ev.ID)
	}
	return nil
}

// handleRouted hands batch to e as a keyed bus would: every event
// arrived by route.
func handleRouted(t *testing.T, e *engine.Engine, route signals.Route, batch ...signals.Event) error {
	t.Helper()
	routes := make([]signals.Route, len(batch))
	for i := range routes {
		routes[i] = route
	}
	return e.Handle(signals.WithRoutes(context.Background(), routes), batch)
}

func historyInOrder(t *testing.T, s engine.Store, key string) []string {
	t.Helper()
	var ids []string
	for _, h := range visitor(t, s, key).History {
		ids = append(ids, h.ID)
	}
	return ids
}

// A device's event that arrives on the device's partition after the
// device was linked is forwarded to the user's partition, not applied;
// arriving there, it is applied once, in time order among the user's
// events that came directly.
func TestEventOfLinkedDeviceIsForwardedToItsUser(t *testing.T) {
	store := openStore(t, t.TempDir())
	bus := &forwardingBus{}
	e := newEngine(t, store, bus)
	user := signals.Route{Key: engine.UserKey("bob")}
	// The phone's anonymous event, on its own partition.
	if err := handleRouted(t, e, signals.Route{Key: "phone"}, ev("a1", "view", "phone", "", "c0-item1", 0)); err != nil {
		t.Fatal(err)
	}
	// The identify, on the user's partition: link and merge.
	if err := handleRouted(t, e, user, ev("id1", "identify", "phone", "bob", "", time.Minute)); err != nil {
		t.Fatal(err)
	}
	// A later phone event that came directly (publisher knew the link).
	if err := handleRouted(t, e, user, ev("a3", "click", "phone", "", "c0-item3", 3*time.Minute)); err != nil {
		t.Fatal(err)
	}
	// An event published before the publisher knew: on the phone's partition.
	if err := handleRouted(t, e, signals.Route{Key: "phone"}, ev("a2", "view", "phone", "", "c0-item2", 2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got := bus.forwarded[engine.UserKey("bob")]; !slices.Equal(got, []string{"a2"}) {
		t.Fatalf("forwarded to bob's partition: %v, want [a2]", got)
	}
	if got, want := historyInOrder(t, store, engine.UserKey("bob")), []string{"a1", "id1", "a3"}; !slices.Equal(got, want) {
		t.Fatalf("bob's history before the forwarded event arrives: %v, want %v", got, want)
	}
	if v := visitor(t, store, "phone"); len(v.History) != 0 {
		t.Fatalf("the phone's anonymous state was written: %v", v.History)
	}
	// The forwarded event arrives on bob's partition (twice: a redelivery).
	fwd := signals.Route{Key: engine.UserKey("bob"), Forwarded: true}
	for range 2 {
		if err := handleRouted(t, e, fwd, ev("a2", "view", "phone", "", "c0-item2", 2*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := historyInOrder(t, store, engine.UserKey("bob")), []string{"a1", "id1", "a2", "a3"}; !slices.Equal(got, want) {
		t.Fatalf("bob's history: %v, want %v (the forwarded event in time order, once)", got, want)
	}
	if n := len(bus.forwarded[engine.UserKey("bob")]); n != 1 {
		t.Fatalf("forwarded %d times, want once", n)
	}
}

// When forwarding fails, the batch fails and nothing of it is applied,
// so that its redelivery forwards or applies every event once.
func TestFailedForwardFailsTheBatch(t *testing.T) {
	store := openStore(t, t.TempDir())
	bus := &forwardingBus{}
	e := newEngine(t, store, bus)
	if err := handleRouted(t, e, signals.Route{Key: engine.UserKey("bob")}, ev("id1", "identify", "phone", "bob", "", 0)); err != nil {
		t.Fatal(err)
	}
	bus.fail = errors.New("broker gone")
	err := handleRouted(t, e, signals.Route{Key: "phone"}, ev("a1", "view", "phone", "", "c0-item1", time.Minute), ev("o1", "view", "other", "", "c0-item1", time.Minute))
	if err == nil {
		t.Fatal("a batch whose forward failed was acknowledged")
	}
	if v := visitor(t, store, "other"); len(v.History) != 0 {
		t.Fatalf("part of a failed batch was applied: %v", v.History)
	}
	bus.fail = nil
	if err := handleRouted(t, e, signals.Route{Key: "phone"}, ev("a1", "view", "phone", "", "c0-item1", time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got := bus.forwarded[engine.UserKey("bob")]; !slices.Equal(got, []string{"a1"}) {
		t.Fatalf("forwarded after the redelivery: %v", got)
	}
}

// staleLinks resolves every id as not linked, as a consumer does that
// resolved its batch just before another replica linked the visitor.
type staleLinks struct{ engine.Store }

func (s staleLinks) Resolve(_ context.Context, ids []string) ([]string, error) {
	return make([]string, len(ids)), nil
}

// A consumer that resolved a device as anonymous after the device was
// linked and merged cannot commit to the device's state (it would be
// lost, or strand there): the store refuses it and the batch fails; it
// is redelivered and then forwarded.
func TestCommitToAMergedDeviceFailsTheBatch(t *testing.T) {
	store := openStore(t, t.TempDir())
	owner := newEngine(t, store, &forwardingBus{})
	if err := handleRouted(t, owner, signals.Route{Key: "phone"}, ev("a1", "view", "phone", "", "c0-item1", 0)); err != nil {
		t.Fatal(err)
	}
	if err := handleRouted(t, owner, signals.Route{Key: engine.UserKey("bob")}, ev("id1", "identify", "phone", "bob", "", time.Minute)); err != nil {
		t.Fatal(err)
	}
	stale := newEngine(t, staleLinks{store}, &forwardingBus{})
	err := handleRouted(t, stale, signals.Route{Key: "phone"}, ev("a2", "view", "phone", "", "c0-item2", 2*time.Minute))
	if !errors.Is(err, engine.ErrConflict) {
		t.Fatalf("commit to the merged device: err %v, want ErrConflict", err)
	}
	if v := visitor(t, store, "phone"); len(v.History) != 0 {
		t.Fatalf("the merged device's state was written: %v", v.History)
	}
}

// An event that arrived on a partition other than its key's (a producer
// published it through the consistent-hash exchange) is forwarded to its
// key's partition, not applied here; arriving there it is applied.
func TestForeignEventIsForwardedToItsKey(t *testing.T) {
	store := openStore(t, t.TempDir())
	bus := &forwardingBus{}
	e := newEngine(t, store, bus)
	if err := handleRouted(t, e, signals.Route{Key: "tablet", Foreign: true}, ev("f1", "view", "tablet", "", "c0-item1", 0)); err != nil {
		t.Fatal(err)
	}
	if got := bus.forwarded["tablet"]; !slices.Equal(got, []string{"f1"}) {
		t.Fatalf("forwarded: %v, want [f1] under tablet", bus.forwarded)
	}
	if v := visitor(t, store, "tablet"); len(v.History) != 0 {
		t.Fatalf("a foreign event was applied where it arrived: %v", v.History)
	}
	if err := handleRouted(t, e, signals.Route{Key: "tablet", Forwarded: true}, ev("f1", "view", "tablet", "", "c0-item1", 0)); err != nil {
		t.Fatal(err)
	}
	if got := historyInOrder(t, store, "tablet"); !slices.Equal(got, []string{"f1"}) {
		t.Fatalf("history after the forward arrived: %v, want [f1]", got)
	}
}
