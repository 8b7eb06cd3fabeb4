package promo_test

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/promo"
	"github.com/kairoshq/kairos/engine/promo/promotest"
	"github.com/kairoshq/kairos/internal/testutil"
	"github.com/kairoshq/kairos/signals"
)

// t0 is the tests' clock start.
var t0 = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

const k = 4 // factors in tests

// fakeModel has item factors and a catalog.
type fakeModel struct {
	factors map[string][]float32
	items   map[string]engine.Item
}

func (m *fakeModel) Affinity(x []float32, items []string) (float32, bool) {
	var sum float32
	n := 0
	for _, id := range items {
		y, ok := m.factors[id]
		if !ok {
			continue
		}
		var s float32
		for i := range y {
			s += x[i] * y[i]
		}
		sum += s
		n++
	}
	if n == 0 {
		return 0, false
	}
	return sum / float32(n), true
}

func (m *fakeModel) CachedItem(id string) (engine.Item, bool) {
	it, ok := m.items[id]
	return it, ok
}

func (m *fakeModel) Items(ctx context.Context, after string, limit int) ([]engine.Item, error) {
	var ids []string
	for id := range m.items {
		if id > after {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	ids = ids[:min(len(ids), limit)]
	out := make([]engine.Item, len(ids))
	for i, id := range ids {
		out[i] = m.items[id]
	}
	return out, nil
}

// fakeVisitors keeps visitors' factors (a promo.Profiles).
type fakeVisitors struct {
	mu sync.Mutex
	m  map[string][]float32
}

func (f *fakeVisitors) VisitorFactors(ctx context.Context, visitor, user string) ([]float32, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if user != "" {
		return f.m[engine.UserKey(user)], nil
	}
	return f.m[visitor], nil
}
func (f *fakeVisitors) set(id string, x []float32) { f.mu.Lock(); f.m[id] = x; f.mu.Unlock() }

// recorder is a signals.Broadcaster that keeps messages.
type recorder struct {
	mu   sync.Mutex
	msgs map[signals.Topic][][]byte
}

func (r *recorder) Broadcast(ctx context.Context, t signals.Topic, msg []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.msgs == nil {
		r.msgs = map[signals.Topic][][]byte{}
	}
	r.msgs[t] = append(r.msgs[t], slices.Clone(msg))
	return nil
}

func (r *recorder) promotions(tb testing.TB) []promo.Promotion {
	tb.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []promo.Promotion
	for _, m := range r.msgs[signals.TopicPromotions] {
		var p promo.Promotion
		if err := json.Unmarshal(m, &p); err != nil {
			tb.Fatalf("broadcast %s: %v", m, err)
		}
		out = append(out, p)
	}
	return out
}

// env is an Engine over fakes.
type env struct {
	e     *promo.Engine
	store *promo.BackendStore
	clock *testutil.Clock
	model *fakeModel
	vis   *fakeVisitors
	bus   *recorder
	hist  map[string][]engine.HistoryEvent
	sess  map[string]engine.Session
	n     int
}

func newEnv(tb testing.TB, mod func(*promo.Config)) *env {
	tb.Helper()
	return newEnvWith(tb, promotest.NewMem(), mod)
}

// newEnvWith is newEnv on a given store (possibly holding counters).
func newEnvWith(tb testing.TB, store *promo.BackendStore, mod func(*promo.Config)) *env {
	tb.Helper()
	v := &env{
		store: store, clock: testutil.NewClock(t0),
		model: &fakeModel{factors: map[string][]float32{}, items: map[string]engine.Item{}},
		vis:   &fakeVisitors{m: map[string][]float32{}}, bus: &recorder{},
		hist: map[string][]engine.HistoryEvent{}, sess: map[string]engine.Session{},
	}
	cfg := promo.Config{Factors: k, Seed: 42, Now: v.clock.Now}
	if mod != nil {
		mod(&cfg)
	}
	e, err := promo.New(context.Background(), cfg, promo.Deps{Store: v.store, Profiles: v.vis, Model: v.model, Broadcaster: v.bus})
	if err != nil {
		tb.Fatalf("promo.New: %v", err)
	}
	v.e = e
	return v
}

// put stores a definition from JSON, failing on error.
func (v *env) put(tb testing.TB, kind promo.Kind, body string) {
	tb.Helper()
	if _, _, err := v.e.PutJSON(context.Background(), kind, "", []byte(body)); err != nil {
		tb.Fatalf("put %s %s: %v", kind, body, err)
	}
}

// ev makes an event of visitor at the clock's time plus off.
func (v *env) ev(visitor string, typ signals.Type, off time.Duration, mod ...func(*signals.Event)) signals.Event {
	v.n++
	e := signals.Event{ID: "e" + itoa(v.n), Type: typ, Visitor: visitor, Time: signals.Timestamp{Time: v.clock.Now().Add(off)}}
	for _, m := range mod {
		m(&e)
	}
	return e
}

func itoa(n int) string { return strconv.Itoa(n) }

func item(id string) func(*signals.Event)    { return func(e *signals.Event) { e.Item = id } }
func offer(id string) func(*signals.Event)   { return func(e *signals.Event) { e.Offer = id } }
func page(u string) func(*signals.Event)     { return func(e *signals.Event) { e.Page = u } }
func value(x float64) func(*signals.Event)   { return func(e *signals.Event) { e.Value = x } }
func token(t string) func(*signals.Event)    { return func(e *signals.Event) { e.Token = t } }
func element(el string) func(*signals.Event) { return func(e *signals.Event) { e.Element = el } }

// react feeds one visitor's batch to the engine as the engine would:
// history grows, the session window (30 min gap) advances.
func (v *env) react(tb testing.TB, visitor string, evs ...signals.Event) {
	tb.Helper()
	s := v.sess[visitor]
	for _, e := range evs {
		t := e.Time.Time
		if s.Last.IsZero() || t.Sub(s.Last) > 30*time.Minute {
			s = engine.Session{ID: "s" + e.ID, Start: t, Last: t, Events: 1}
		} else {
			if t.After(s.Last) {
				s.Last = t
			}
			s.Events++
		}
		v.hist[visitor] = append(v.hist[visitor], engine.HistoryEvent{ID: e.ID, Type: e.Type, Item: e.Item, Offer: e.Offer, Page: e.Page, Value: e.Value, Time: t})
	}
	v.sess[visitor] = s
	v.vis.mu.Lock()
	x := v.vis.m[visitor]
	v.vis.mu.Unlock()
	ch := engine.VisitorChange{
		Visitor: engine.Visitor{ID: visitor, Factors: x, Session: s, History: slices.Clone(v.hist[visitor])},
		Fresh:   evs,
	}
	v.e.React(context.Background(), []engine.VisitorChange{ch})
}

// fired returns the promotions logged for visitor.
func (v *env) fired(tb testing.TB, visitor string) []promo.Promotion {
	tb.Helper()
	ps, err := v.store.Promotions(context.Background(), visitor, 0, 1000)
	if err != nil {
		tb.Fatal(err)
	}
	return ps
}
