package experiments_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/experiments"
	"github.com/kairoshq/kairos/engine/storage"
	"github.com/kairoshq/kairos/engine/storage/storagetest"
	"github.com/kairoshq/kairos/internal/errs"
	"github.com/kairoshq/kairos/internal/testutil"
	"github.com/kairoshq/kairos/signals"
)

var ctx = context.Background()

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

var testSecret = []byte("0123456789abcdef0123456789abcdef")

// links is an in-memory engine.LinkStore.
type links struct {
	mu sync.Mutex
	m  map[string]string
}

func (l *links) Link(_ context.Context, anon, user string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.m[anon] = user
	return nil
}

func (l *links) Resolve(_ context.Context, ids []string) ([]string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = l.m[id]
	}
	return out, nil
}

func (l *links) Linked(_ context.Context, user string) ([]string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for a, u := range l.m {
		if u == user {
			out = append(out, a)
		}
	}
	slices.Sort(out)
	return out, nil
}

func (l *links) Unlink(_ context.Context, user string) ([]string, error) {
	ids, _ := l.Linked(context.Background(), user)
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range ids {
		delete(l.m, id)
	}
	return ids, nil
}

var _ experiments.Identities = (*links)(nil)

// harness runs an experiments engine over the reference store, with a
// publisher that plays the bus and the engine: published events, and
// those the test sends, are de-duplicated by id, identity links are
// recorded, every event is kept in order (the archive) and the batch is
// given to React.
type harness struct {
	t      testing.TB
	clock  *testutil.Clock
	store  *experiments.BackendStore
	back   *staleBackend
	links  *links
	e      *experiments.Engine
	mu     sync.Mutex
	seen   map[string]bool
	log    []signals.Event // the archive: every consumed event, in order
	pubErr error
	// hold keeps published events instead of delivering them.
	hold bool
	held []signals.Event
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	h := &harness{t: t, clock: testutil.NewClock(t0), back: &staleBackend{Mem: storagetest.NewMem(nil)}, links: &links{m: map[string]string{}}, seen: map[string]bool{}}
	h.store = experiments.NewStore(h.back)
	e, err := experiments.New(ctx, experiments.Config{Now: h.clock.Now, ReloadEvery: 10 * time.Millisecond, LookEvery: 15 * time.Minute},
		experiments.Deps{Backend: h.back, Publisher: h, Links: h.links, Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	h.e = e
	return h
}

// Publish implements signals.Publisher.
func (h *harness) Publish(ctx context.Context, evs []signals.Event) error {
	h.mu.Lock()
	err, hold := h.pubErr, h.hold
	if hold && err == nil {
		h.held = append(h.held, evs...)
	}
	h.mu.Unlock()
	if err != nil {
		return err
	}
	if !hold {
		h.deliver(evs...)
	}
	return nil
}

// deliver consumes events as the engine would and calls React.
func (h *harness) deliver(evs ...signals.Event) {
	h.mu.Lock()
	var changes []engine.VisitorChange
	for _, ev := range evs {
		if h.seen[ev.ID] {
			continue
		}
		h.seen[ev.ID] = true
		if ev.Time.IsZero() {
			ev.Time = signals.Timestamp{Time: h.clock.Now()}
		}
		h.log = append(h.log, ev)
		if ev.User != "" && ev.Visitor != ev.User && ev.Visitor != engine.UserKey(ev.User) {
			h.links.Link(ctx, ev.Visitor, ev.User)
		}
		key := ev.Visitor
		if ev.User != "" {
			key = engine.UserKey(ev.User)
		} else if u, _ := h.links.Resolve(ctx, []string{ev.Visitor}); u[0] != "" {
			key = engine.UserKey(u[0])
		}
		changes = append(changes, engine.VisitorChange{Visitor: engine.Visitor{ID: key}, Fresh: []signals.Event{ev}})
	}
	h.mu.Unlock()
	if len(changes) > 0 {
		h.e.React(ctx, changes)
	}
}

func (h *harness) archive() []signals.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.log)
}

var evSeq int

// ev builds an event at the harness's clock.
func (h *harness) ev(typ signals.Type, visitor, user string, value float64) signals.Event {
	evSeq++
	return signals.Event{ID: fmt.Sprintf("e%d", evSeq), Type: typ, Visitor: visitor, User: user, Value: value,
		Time: signals.Timestamp{Time: h.clock.Now()}}
}

// put creates or replaces an experiment from JSON (a PUT to its id),
// failing the test on error.
func (h *harness) put(js string) experiments.Experiment {
	h.t.Helper()
	var def struct{ ID string }
	if err := json.Unmarshal([]byte(js), &def); err != nil {
		h.t.Fatal(err)
	}
	x, _, err := h.e.PutJSON(ctx, def.ID, []byte(js))
	if err != nil {
		h.t.Fatalf("PutJSON(%s): %v", js, err)
	}
	return x
}

// serve decides and exposes a request, failing the test on error.
func (h *harness) serve(r experiments.Request) experiments.Decision {
	h.t.Helper()
	d, ok, err := h.e.Decide(ctx, r)
	if err != nil || !ok {
		h.t.Fatalf("Decide(%+v) = %v, %v", r, ok, err)
	}
	if err := h.e.Expose(ctx, d); err != nil {
		h.t.Fatalf("Expose: %v", err)
	}
	return d
}

func offers(visitor string) experiments.Request {
	return experiments.Request{Surface: experiments.SurfaceOffers, Slot: "hero", Visitor: visitor}
}

func (h *harness) counts(id string) map[string]experiments.Counts {
	h.t.Helper()
	cs, err := h.store.ExperimentCounts(ctx, id)
	if err != nil {
		h.t.Fatal(err)
	}
	return cs
}

// heroJSON is a two-arm offers experiment on the hero slot.
const heroJSON = `{"id":"hero","target":{"surface":"offers","slot":"hero"},
 "variants":[{"name":"A","weight":0.5},{"name":"B","weight":0.5,"offer":"o2"}],"attribution_window":"1h"}`

func isInvalid(err error) bool { return errors.Is(err, engine.ErrInvalid) }

// staleBackend is the reference backend whose next Stale transactions
// that change unit records fail with a Conflict, as when another replica
// wrote those units in between (tests of the retry).
type staleBackend struct {
	*storagetest.Mem
	stale atomic.Int32
}

func (b *staleBackend) Apply(ctx context.Context, t storage.Txn) error {
	for _, op := range t.Ops {
		if n := b.stale.Load(); strings.HasSuffix(op.Key, "/un") && n > 0 && b.stale.CompareAndSwap(n, n-1) {
			return fmt.Errorf("stale: %w", errs.Conflict)
		}
	}
	return b.Mem.Apply(ctx, t)
}
