package engine_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/signals"
)

// memLinks adds an in-memory engine.LinkStore to a store (the adapters'
// own implementations pass engine/storetest's link contract).
type memLinks struct {
	engine.Store
	mu    sync.Mutex
	links map[string]string
}

func withLinks(s engine.Store) *memLinks { return &memLinks{Store: s, links: map[string]string{}} }

func (m *memLinks) Link(_ context.Context, anon, user string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.links[anon] = user
	return nil
}

func (m *memLinks) Resolve(_ context.Context, ids []string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = m.links[id]
	}
	return out, nil
}

func (m *memLinks) Linked(_ context.Context, user string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for a, u := range m.links {
		if u == user {
			out = append(out, a)
		}
	}
	slices.Sort(out)
	return out, nil
}

func (m *memLinks) Unlink(ctx context.Context, user string) ([]string, error) {
	ids, _ := m.Linked(ctx, user)
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, a := range ids {
		delete(m.links, a)
	}
	return ids, nil
}

func (m *memLinks) UnlinkDevice(_ context.Context, anon string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.links, anon)
	return nil
}

var _ engine.LinkStore = (*memLinks)(nil)

// pairMarks keeps the de-duplication marks by visitor and event id in a
// map (exactly, where the stores keep hashes or keys with a TTL).
type pairMarks struct {
	engine.Store
	mu    sync.Mutex
	marks map[engine.EventRef]bool
}

func (p *pairMarks) Seen(_ context.Context, refs []engine.EventRef) ([]bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]bool, len(refs))
	for i, r := range refs {
		out[i] = p.marks[r]
	}
	return out, nil
}

func (p *pairMarks) Commit(ctx context.Context, c engine.Commit) error {
	if err := p.Store.Commit(ctx, engine.Commit{Visitors: c.Visitors}); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range c.Events {
		p.marks[r] = true
	}
	return nil
}

func ev(id string, typ signals.Type, visitor, user, item string, at time.Duration) signals.Event {
	return signals.Event{ID: id, Type: typ, Visitor: visitor, User: user, Item: item, Time: signals.Timestamp{Time: t0.Add(at)}}
}

func historyIDs(t *testing.T, s engine.Store, key string) []string {
	t.Helper()
	var ids []string
	for _, h := range visitor(t, s, key).History {
		ids = append(ids, h.ID)
	}
	slices.Sort(ids)
	return ids
}

func TestIdentifyMergesHistories(t *testing.T) {
	for _, tc := range []struct {
		name    string
		batches [][]signals.Event
	}{
		{"identify after the anonymous events", [][]signals.Event{
			{ev("a1", "view", "phone", "", "c0-item1", 0), ev("a2", "click", "phone", "", "c0-item2", time.Minute)},
			{ev("id1", "identify", "phone", "bob", "", 2*time.Minute)},
		}},
		{"identify in the same batch, after", [][]signals.Event{
			{ev("a1", "view", "phone", "", "c0-item1", 0), ev("a2", "click", "phone", "", "c0-item2", time.Minute), ev("id1", "identify", "phone", "bob", "", 2*time.Minute)},
		}},
		{"identify before the anonymous events", [][]signals.Event{
			{ev("id1", "identify", "phone", "bob", "", 0)},
			{ev("a1", "view", "phone", "", "c0-item1", time.Minute), ev("a2", "click", "phone", "", "c0-item2", 2*time.Minute)},
		}},
		{"duplicate events in both histories", [][]signals.Event{
			{ev("a1", "view", "phone", "", "c0-item1", 0), ev("a2", "click", "phone", "", "c0-item2", time.Minute)},
			{ev("id1", "identify", "phone", "bob", "", 2*time.Minute)},
			{ev("a1", "view", "phone", "", "c0-item1", 0), ev("a2", "click", "phone", "bob", "c0-item2", time.Minute)}, // redelivered
		}},
	} {
		for _, marks := range []string{"the store's marks", "marks in a map"} {
			t.Run(tc.name+"/"+marks, func(t *testing.T) {
				var store engine.Store = withLinks(openStore(t, t.TempDir()))
				if marks != "the store's marks" {
					store = &pairMarks{Store: store, marks: map[engine.EventRef]bool{}}
				}
				testIdentifyMerges(t, store, tc.batches)
			})
		}
	}
}

// testIdentifyMerges handles batches after a base and checks that bob's
// state has the anonymous history once, and serves both ids.
func testIdentifyMerges(t *testing.T, store engine.Store, batches [][]signals.Event) {
	e := newEngine(t, store, nil)
	mustHandle(t, e, clusterEvents(2, 10, 5, 6, 13))
	for _, b := range batches {
		mustHandle(t, e, b)
	}
	if got, want := historyIDs(t, store, engine.UserKey("bob")), []string{"a1", "a2", "id1"}; !slices.Equal(got, want) {
		t.Fatalf("bob's history %v, want %v", got, want)
	}
	if v := visitor(t, store, "phone"); len(v.History) != 0 {
		t.Fatalf("the anonymous state remains: %v", v.History)
	}
	// Either id is served from the user's state, with factors.
	for _, r := range []engine.RecRequest{{Visitor: "phone", N: 3}, {Visitor: "laptop", User: "bob", N: 3}} {
		resp, err := e.Recommend(context.Background(), r)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Strategy != engine.StrategyALS || resp.Items[0].Item[:2] != "c0" {
			t.Fatalf("%+v gets %+v", r, resp)
		}
	}
}

func TestIdentifyMultiDeviceAndErasure(t *testing.T) {
	ctx := context.Background()
	store := withLinks(openStore(t, t.TempDir()))
	e := newEngine(t, store, nil)
	mustHandle(t, e, clusterEvents(2, 10, 5, 6, 14))
	mustHandle(t, e, []signals.Event{
		ev("p1", "view", "phone", "", "c1-item1", 0),
		ev("l1", "view", "laptop", "", "c1-item2", time.Minute),
		ev("p2", "identify", "phone", "ann", "", 2*time.Minute),
	})
	mustHandle(t, e, []signals.Event{ev("l2", "identify", "laptop", "ann", "", 3*time.Minute), ev("l3", "click", "laptop", "", "c1-item3", 4*time.Minute)})
	if got, want := historyIDs(t, store, engine.UserKey("ann")), []string{"l1", "l2", "l3", "p1", "p2"}; !slices.Equal(got, want) {
		t.Fatalf("ann's history %v, want %v", got, want)
	}
	if linked, _ := store.Linked(ctx, "ann"); !slices.Equal(linked, []string{"laptop", "phone"}) {
		t.Fatalf("linked %v", linked)
	}
	if err := e.EraseVisitor(ctx, "ann"); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{engine.UserKey("ann"), "phone", "laptop"} {
		if v := visitor(t, store, k); len(v.History) != 0 {
			t.Fatalf("%s survives the erasure of ann", k)
		}
	}
	if linked, _ := store.Linked(ctx, "ann"); len(linked) != 0 {
		t.Fatalf("links survive: %v", linked)
	}
	if resp := recommend(t, e, "phone", 3); resp.Strategy != engine.StrategyTrending {
		t.Fatalf("the erased phone is still personalised: %+v", resp)
	}
}

// failDelete makes DeleteVisitor fail while set.
type failDelete struct {
	*memLinks
	fail bool
}

func (f *failDelete) DeleteVisitor(ctx context.Context, id string) error {
	if f.fail {
		return engine.ErrUnavailable
	}
	return f.memLinks.DeleteVisitor(ctx, id)
}

func TestMergeAgainAfterAFailedDeleteDoesNotDoubleCount(t *testing.T) {
	store := &failDelete{memLinks: withLinks(openStore(t, t.TempDir())), fail: true}
	e := newEngine(t, store, nil)
	mustHandle(t, e, []signals.Event{ev("a1", "view", "phone", "", "x", 0), ev("a2", "view", "phone", "", "y", time.Minute)})
	mustHandle(t, e, []signals.Event{ev("id1", "identify", "phone", "cy", "", 2*time.Minute)})
	if v := visitor(t, store, "phone"); len(v.History) != 2 {
		t.Fatalf("the anonymous state should have survived the failed delete: %v", v.History)
	}
	store.fail = false
	// The next event of the phone merges the leftover state again.
	mustHandle(t, e, []signals.Event{ev("a3", "view", "phone", "", "z", 3*time.Minute)})
	if got, want := historyIDs(t, store, engine.UserKey("cy")), []string{"a1", "a2", "a3", "id1"}; !slices.Equal(got, want) {
		t.Fatalf("history %v, want %v (each event once)", got, want)
	}
}

func TestErasureIDsListLinkedDevices(t *testing.T) {
	store := withLinks(openStore(t, t.TempDir()))
	e := newEngine(t, store, nil)
	mustHandle(t, e, []signals.Event{ev("i1", "identify", "phone", "dan", "", 0), ev("i2", "identify", "tablet", "dan", "", time.Minute)})
	ids, err := e.ErasureIDs(context.Background(), "dan")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(ids)
	if want := []string{"dan", "phone", "tablet"}; !slices.Equal(ids, want) {
		t.Fatalf("ids %v, want %v", ids, want)
	}
}
