package engine_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine"
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
