package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine/membership"
	"github.com/kairoshq/kairos/engine/storage"
	"github.com/kairoshq/kairos/engine/storage/storagetest"
	"github.com/kairoshq/kairos/signals"
)

// killableMaps is a replica's view of the shared lease store: once
// killed, every call fails, as the store calls of a dead process stop
// (its lease is neither renewed nor deleted).
type killableMaps struct {
	store storage.Maps
	dead  atomic.Bool
}

func (k *killableMaps) Fields(ctx context.Context, key string, fields []string) (map[string]string, error) {
	if k.dead.Load() {
		return nil, errKilled
	}
	return k.store.Fields(ctx, key, fields)
}

func (k *killableMaps) Delete(ctx context.Context, keys []string) error {
	if k.dead.Load() {
		return errKilled
	}
	return k.store.Delete(ctx, keys)
}

var errKilled = errors.New("replica killed")

func (k *killableMaps) Apply(ctx context.Context, t storage.Txn) error {
	if k.dead.Load() {
		return errKilled
	}
	return k.store.Apply(ctx, t)
}

func (k *killableMaps) Maps(ctx context.Context, keys []string) ([]map[string]string, error) {
	if k.dead.Load() {
		return nil, errKilled
	}
	return k.store.Maps(ctx, keys)
}

// replica is one engine replica of a takeover test: a Bus consuming the
// partitions its membership assigns.
type replica struct {
	name   string
	bus    *Bus
	member *membership.Membership
	maps   *killableMaps
	cancel context.CancelFunc
	done   chan struct{}
}

// startReplica dials a Bus for name with a membership on store and
// starts consuming into app.
func startReplica(t *testing.T, cfg Config, a *admin, store storage.Maps, name string, app *applier, ttl time.Duration) *replica {
	t.Helper()
	km := &killableMaps{store: store}
	m, err := membership.New(membership.Config{Maps: km, Replica: name, TTL: ttl, Interval: ttl / 4, Logger: cfg.Logger})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Replica, cfg.Assigner = name, m
	r := &replica{name: name, bus: newTestBus(t, cfg, a), member: m, maps: km, done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		defer close(r.done)
		if err := r.bus.Consume(ctx, app.handler(name)); err != nil && !errors.Is(err, signals.ErrClosed) {
			t.Errorf("Consume %s: %v", name, err)
		}
	}()
	t.Cleanup(func() { cancel(); <-r.done })
	return r
}

// kill stops the replica as kill -9 would: its handler applies nothing
// more, its lease stays until it runs out, its connections drop (the
// broker returns its unacknowledged deliveries to the queues).
func (r *replica) kill(app *applier) {
	app.kill(r.name)
	r.maps.dead.Store(true)
	r.bus.killConnections()
	r.bus.Close()
}

// TestPartitionTakeover runs three replicas with leases on a shared
// store under a steady stream of events, kills one, then starts a
// fourth: the killed replica's partitions are consumed by the others
// within TTL plus a renewal interval, the new one takes its share, every
// event is applied once, and each visitor's events in publish order. The
// partitions' idle window after the kill is logged.
func TestPartitionTakeover(t *testing.T) {
	cfg := partitionConfig(t)
	a := newAdmin(t, cfg.URL)
	deletePartitions(t, a, cfg.Prefix, cfg.Partitions)
	const ttl = 2 * time.Second
	store := storagetest.NewMem(nil)
	app := newApplier()
	var reps []*replica
	for i := range 3 {
		reps = append(reps, startReplica(t, cfg, a, store, fmt.Sprintf("r%d", i), app, ttl))
	}
	consistentHashAvailable(t, reps[0].bus)
	runTakeover(t, reps, app, ttl, func(name string) *replica { return startReplica(t, cfg, a, store, name, app, ttl) })
}

// runTakeover streams events through three replicas, kills the third,
// checks that its visitors are taken over within 10 s, starts a fourth
// with start and waits for its share, then checks that every event was
// applied once, in order per visitor.
func runTakeover(t *testing.T, reps []*replica, app *applier, ttl time.Duration, start func(name string) *replica) {
	pub := newPublisher(reps[0].bus, "tk", 60)
	stopPublishing := pub.publishEvery(t, 10*time.Millisecond, nil)
	defer stopPublishing()
	// Wait until every replica applies events (each owns partitions), and
	// sees the three, and what was published by then is applied: the
	// replicas have taken their shares.
	app.waitReplicas(t, "r0", "r1", "r2")
	for _, r := range reps {
		waitMembers(t, r.member, 3)
	}
	app.waitAll(t, pub.sent())
	app.waitAll(t, pub.sent())
	victim := reps[2]
	victims := app.visitorsOf(victim.name)
	if len(victims) == 0 {
		t.Fatalf("replica %s owns no visitor's partition", victim.name)
	}
	killedAt := time.Now()
	victim.kill(app)
	taken := app.waitVisitorsMoved(t, victims, victim.name, killedAt)
	t.Logf("takeover: the %d visitors of the killed replica applied again by the others %v after the kill (lease TTL %v)",
		len(victims), taken.Round(time.Millisecond), ttl)
	if taken > 10*time.Second {
		t.Errorf("takeover took %v, want within 10 s", taken)
	}
	start("r3")
	app.waitReplicas(t, "r3")
	stopPublishing()
	sent := pub.sent()
	app.waitAll(t, sent)
	app.checkOrder(t, sent)
	t.Logf("%d events of %d visitors applied once each, in order", len(sent), 60)
}

// waitMembers waits until m sees n live replicas.
func waitMembers(t *testing.T, m *membership.Membership, n int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for len(m.Members()) != n {
		if time.Now().After(deadline) {
			t.Fatalf("membership sees %v, want %d replicas", m.Members(), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitReplicas waits until each of names has applied events since the
// last call.
func (ap *applier) waitReplicas(t *testing.T, names ...string) {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		ap.mu.Lock()
		missing := slices.Clone(names)
		for _, by := range ap.by {
			missing = slices.DeleteFunc(missing, func(n string) bool { return n == by })
		}
		ap.mu.Unlock()
		if len(missing) == 0 {
			return
		}
		select {
		case <-ap.applied:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("replicas %v applied nothing within 60 s", missing)
		}
	}
}

// visitorsOf returns the visitors whose latest events replica applied.
func (ap *applier) visitorsOf(replica string) []string {
	ap.mu.Lock()
	defer ap.mu.Unlock()
	var vs []string
	for v, by := range ap.by {
		if by == replica {
			vs = append(vs, v)
		}
	}
	return vs
}

// waitVisitorsMoved waits until every visitor of vs has events applied
// by a replica other than from, and returns how long after since the
// last of them moved.
func (ap *applier) waitVisitorsMoved(t *testing.T, vs []string, from string, since time.Time) time.Duration {
	t.Helper()
	deadline := time.After(60 * time.Second)
	moved := map[string]time.Time{}
	for {
		ap.mu.Lock()
		for _, v := range vs {
			if _, ok := moved[v]; !ok && ap.by[v] != from {
				moved[v] = time.Now()
			}
		}
		ap.mu.Unlock()
		if len(moved) == len(vs) {
			var last time.Time
			for _, at := range moved {
				if at.After(last) {
					last = at
				}
			}
			return last.Sub(since)
		}
		select {
		case <-ap.applied:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatalf("%d of %d visitors of %s not taken over within 60 s", len(vs)-len(moved), len(vs), from)
		}
	}
}
