package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/storage"
	"github.com/kairoshq/kairos/signals"
)

func TestTrending(t *testing.T) {
	e := newEngine(t, openStore(t, t.TempDir()), nil)
	if got := e.Trending(5); len(got) != 0 {
		t.Fatalf("fresh engine: %+v, want none", got)
	}
	now := t0.Add(time.Hour) // testConfig's clock
	ev := func(id string, typ signals.Type, item string, at time.Time) signals.Event {
		return signals.Event{ID: id, Type: typ, Visitor: "v-" + id, Item: item, Time: signals.Timestamp{Time: at}}
	}
	mustHandle(t, e, []signals.Event{
		ev("1", signals.TypeView, "a", now),
		ev("2", signals.TypeClick, "b", now),
		ev("3", signals.TypeView, "b", now),
		ev("4", signals.TypeClick, "c", now.Add(-24*time.Hour)), // one half-life ago: 2 → 1
		ev("5", signals.TypeClick, "c", now.Add(-24*time.Hour)),
		ev("6", signals.TypeImpression, "d", now), // weight 0: not trending
	})
	if _, err := e.PutItem(context.Background(), engine.Item{ID: "b", Title: "Bee", Category: "bugs", Active: true}); err != nil {
		t.Fatal(err)
	}
	got := e.Trending(10)
	want := []engine.Rec{{Item: "b", Score: 3, Title: "Bee", Category: "bugs"}, {Item: "c", Score: 2}, {Item: "a", Score: 1}}
	if len(got) != len(want) {
		t.Fatalf("Trending(10) = %+v, want %+v", got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Item != w.Item || g.Title != w.Title || g.Category != w.Category || math.Abs(float64(g.Score-w.Score)) > 1e-4 {
			t.Errorf("[%d] = %+v, want %+v", i, g, w)
		}
	}
	if got := e.Trending(1); len(got) != 1 || got[0].Item != "b" {
		t.Errorf("Trending(1) = %+v, want b", got)
	}
	if got := e.Trending(0); got != nil {
		t.Errorf("Trending(0) = %+v, want nil", got)
	}
	// An inactive item is left out.
	if _, err := e.PutItem(context.Background(), engine.Item{ID: "b", Title: "Bee", Active: false}); err != nil {
		t.Fatal(err)
	}
	if got := e.Trending(10); len(got) != 2 || got[0].Item != "c" || got[1].Item != "a" {
		t.Errorf("after deactivating b: %+v, want c, a", got)
	}
}

// TestTrendingSharedThroughTheStore: a replica serves its own trending
// counts plus its peers' (fields of the store map engine:trending), and
// adopts the counts of a peer that has not saved for long (a replica
// gone), deleting its field, so that they stay counted once.
func TestTrendingSharedThroughTheStore(t *testing.T) {
	store := openStore(t, t.TempDir())
	now := t0.Add(time.Hour) // testConfig's clock
	first := newEngine(t, store, nil)
	mustHandle(t, first, []signals.Event{
		{ID: "1", Type: signals.TypeView, Visitor: "v1", Item: "x", Time: signals.Timestamp{Time: now}},
		{ID: "2", Type: signals.TypeView, Visitor: "v2", Item: "y", Time: signals.Timestamp{Time: now}},
	})
	if err := first.SaveState(context.Background()); err != nil {
		t.Fatal(err)
	}
	field := func(saved time.Time, x, y float32) string {
		return fmt.Sprintf(`{"half_life":%d,"epoch":%q,"scores":[%v,%v],"ids":["x","y"],"saved":%q}`,
			int64(24*time.Hour), now.Format(time.RFC3339Nano), x, y, saved.Format(time.RFC3339Nano))
	}
	var txn storage.Txn
	txn.Set("engine:trending", "gone", field(now.Add(-2*time.Hour), 10, 0))
	txn.Set("engine:trending", "alive", field(now, 0, 20))
	if err := store.Apply(context.Background(), txn); err != nil {
		t.Fatal(err)
	}
	e := newEngine(t, store, nil) // the replica "0" again
	scores := func() map[string]float32 {
		out := map[string]float32{}
		for _, r := range e.Trending(5) {
			out[r.Item] = r.Score
		}
		return out
	}
	if got := scores(); math.Abs(float64(got["x"]-11)) > 1e-3 || math.Abs(float64(got["y"]-21)) > 1e-3 {
		t.Errorf("trending %v, want x 11 (1 own + 10 adopted), y 21 (1 own + 20 of a peer)", got)
	}
	if err := e.SaveState(context.Background()); err != nil {
		t.Fatal(err)
	}
	m, err := store.Maps(context.Background(), []string{"engine:trending"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m[0]["gone"]; ok || m[0]["alive"] == "" {
		t.Errorf("fields %v: want gone adopted (deleted), alive kept", slices.Sorted(maps.Keys(m[0])))
	}
	if own := m[0]["0"]; !strings.Contains(own, `"scores":[11,1]`) {
		t.Errorf("replica 0 shares %s, want its own and the adopted counts (x 11, y 1)", own)
	}
}

// TestSegmentTrendingSharedThroughTheStore: a campaign's trending counted
// on one replica serves the campaign's visitors on another, and a replica
// that starts again gets its own segments back from its field.
func TestSegmentTrendingSharedThroughTheStore(t *testing.T) {
	ctx := context.Background()
	store := openStore(t, t.TempDir())
	now := t0.Add(time.Hour) // testConfig's clock
	replica := func(name string) *engine.Engine {
		cfg := testConfig()
		cfg.Replica = name
		e, err := engine.New(ctx, cfg, store, nil)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	ev := func(id, item, campaign string) signals.Event {
		e := signals.Event{ID: id, Type: signals.TypeClick, Visitor: "v-" + id, Item: item, Time: signals.Timestamp{Time: now}}
		if campaign != "" {
			e.Props = map[string]string{"utm_campaign": campaign}
		}
		return e
	}
	a, b := replica("a"), replica("b")
	var onA, onB []signals.Event
	for i := range 30 { // spring's visitors, all consumed by a
		onA = append(onA, ev(fmt.Sprintf("a%d", i), fmt.Sprintf("spring-%d", min(i%5, 3)), "spring"))
	}
	for i := range 100 { // everyone else's, on b: b's own trending is theirs
		onB = append(onB, ev(fmt.Sprintf("b%d", i), fmt.Sprintf("other-%d", i%3), ""))
	}
	for i := range 4 { // b knows the spring items (the catalog's rows)
		onB = append(onB, ev(fmt.Sprintf("k%d", i), fmt.Sprintf("spring-%d", i), ""))
	}
	mustHandle(t, a, onA)
	mustHandle(t, b, onB)
	// spring's visitors get spring's items: spring-3 (12 events), then
	// two of spring-0..2 (6 each).
	springTop := func(e *engine.Engine) []string {
		var out []string
		for _, r := range recommend(t, e, "new", 3, func(r *engine.RecRequest) { r.Campaign = "spring" }).Items {
			out = append(out, r.Item)
		}
		return out
	}
	springOnly := func(items []string) bool {
		return len(items) == 3 && items[0] == "spring-3" && !slices.ContainsFunc(items, func(id string) bool { return !strings.HasPrefix(id, "spring-") })
	}
	if got := springTop(a); !springOnly(got) {
		t.Fatalf("a, which consumed spring's events, gives spring's visitors %v", got)
	}
	if got := springTop(b); springOnly(got) {
		t.Fatalf("b ranks spring's items %v before any sharing", got)
	}
	for _, e := range []*engine.Engine{a, b, a} {
		if err := e.SaveState(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := springTop(b); !springOnly(got) {
		t.Errorf("b's spring visitors get %v, want spring-3 and two other spring items (a's campaign counts)", got)
	}
	// A saves again: its share is its own 30 events, not b's echo of them.
	m, err := store.Maps(ctx, []string{"engine:trending"})
	if err != nil {
		t.Fatal(err)
	}
	if own := m[0]["a"]; !strings.Contains(own, `"campaign:spring":{"events":30,`) {
		t.Errorf("a shares %s, want its own 30 spring events", own)
	}
	if own := m[0]["b"]; strings.Contains(own, "campaign:spring") {
		t.Errorf("b shares %s, want no spring events of its own", own)
	}
	// a again, after a restart: its own spring counts come back.
	if got := springTop(replica("a")); !springOnly(got) {
		t.Errorf("a restarted: spring visitors get %v, want spring's items", got)
	}
}

// TestTiedSegmentTrendingIsServed: a young campaign whose few items all
// have the same count still gives its visitors those items (its spread is
// 0, which only matters when trending is blended with something).
func TestTiedSegmentTrendingIsServed(t *testing.T) {
	e := newEngine(t, openStore(t, t.TempDir()), nil)
	now := t0.Add(time.Hour) // testConfig's clock
	var evs []signals.Event
	for i := range 30 {
		evs = append(evs, signals.Event{ID: fmt.Sprintf("s%d", i), Type: signals.TypeClick, Visitor: fmt.Sprintf("v%d", i),
			Item: fmt.Sprintf("spring-%d", i%3), Props: map[string]string{"utm_campaign": "spring"}, Time: signals.Timestamp{Time: now}})
	}
	mustHandle(t, e, evs)
	r := recommend(t, e, "new", 3, func(r *engine.RecRequest) { r.Campaign = "spring" })
	var got []string
	for _, it := range r.Items {
		got = append(got, it.Item)
	}
	slices.Sort(got)
	if r.Strategy != engine.StrategyTrending || !slices.Equal(got, []string{"spring-0", "spring-1", "spring-2"}) {
		t.Fatalf("spring's visitor gets %s %v, want trending: spring-0..2", r.Strategy, got)
	}
}

// TestSegmentShareKeepsTheTop: a replica shares at most 1,000 items per
// segment, its highest.
func TestSegmentShareKeepsTheTop(t *testing.T) {
	ctx := context.Background()
	store := openStore(t, t.TempDir())
	e := newEngine(t, store, nil)
	now := t0.Add(time.Hour) // testConfig's clock
	var evs []signals.Event
	for i := range 1100 {
		evs = append(evs, signals.Event{ID: fmt.Sprintf("e%d", i), Type: signals.TypeView, Visitor: fmt.Sprintf("v%d", i),
			Item: fmt.Sprintf("i%d", i), Props: map[string]string{"utm_campaign": "wide"}, Time: signals.Timestamp{Time: now}})
	}
	for i := range 5 { // i7 is the campaign's top
		evs = append(evs, signals.Event{ID: fmt.Sprintf("top%d", i), Type: signals.TypeClick, Visitor: fmt.Sprintf("t%d", i),
			Item: "i7", Props: map[string]string{"utm_campaign": "wide"}, Time: signals.Timestamp{Time: now}})
	}
	mustHandle(t, e, evs)
	if err := e.SaveState(ctx); err != nil {
		t.Fatal(err)
	}
	m, err := store.Maps(ctx, []string{"engine:trending"})
	if err != nil {
		t.Fatal(err)
	}
	var own struct {
		Segments map[string]struct {
			Events int
			IDs    []string
		}
	}
	if err := json.Unmarshal([]byte(m[0]["0"]), &own); err != nil {
		t.Fatal(err)
	}
	wide := own.Segments["campaign:wide"]
	if wide.Events != 1105 || len(wide.IDs) != 1000 || wide.IDs[0] != "i7" {
		t.Fatalf("campaign wide shared with %d events and %d items, first %v; want 1105, 1000, i7", wide.Events, len(wide.IDs), wide.IDs[:min(1, len(wide.IDs))])
	}
}
