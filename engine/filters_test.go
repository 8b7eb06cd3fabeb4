package engine_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/filter"
	"github.com/kairoshq/kairos/signals"
)

func compiled(t *testing.T, src string, kind filter.Kind) *filter.Expr {
	t.Helper()
	x, err := filter.Compile("filter", src, kind)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// TestFilterBoostPromote checks the engine's use of expressions: a
// selective filter returns n qualifying items (none other), a boost
// reorders, a promotion claims its share of the slots, marked, without
// duplicates, and a catalog change is seen by the next request.
func TestFilterBoostPromote(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t, openStore(t, t.TempDir()), nil)
	mustHandle(t, e, clusterEvents(3, 30, 15, 12, 1))
	// Catalog: every item of cluster 2 and item 0 of each cluster on sale.
	for c := range 3 {
		for i := range 15 {
			it := engine.Item{ID: fmt.Sprintf("c%d-item%d", c, i), Category: fmt.Sprintf("cat%d", c), Active: true}
			if c == 2 || i == 0 {
				it.Tags = []string{"sale"}
			}
			if _, err := e.PutItem(ctx, it); err != nil {
				t.Fatal(err)
			}
		}
	}
	mustHandle(t, e, []signals.Event{
		{ID: "n1", Type: signals.TypeClick, Visitor: "fan", Item: "c1-item3", Time: signals.Timestamp{Time: t0.Add(2 * time.Hour)}},
		{ID: "n2", Type: signals.TypeClick, Visitor: "fan", Item: "c1-item5", Time: signals.Timestamp{Time: t0.Add(2 * time.Hour)}},
	})
	sale := compiled(t, `"sale" in tags`, filter.Bool)
	// A c1 fan asking for sale items gets 10 of them (15 + 2 qualify),
	// although the fold-in ranks the c1 items first.
	resp := recommend(t, e, "fan", 10, func(r *engine.RecRequest) { r.Filter = sale })
	if len(resp.Items) != 10 {
		t.Fatalf("%d items with a selective filter, want 10: %+v", len(resp.Items), resp.Items)
	}
	for _, r := range resp.Items {
		if !strings.HasPrefix(r.Item, "c2-") && !strings.HasSuffix(r.Item, "-item0") {
			t.Fatalf("filter kept %s", r.Item)
		}
	}
	// More than qualify: all of them.
	only := compiled(t, `id in ["c0-item1", "c0-item2"]`, filter.Bool)
	if resp := recommend(t, e, "fan", 10, func(r *engine.RecRequest) { r.Filter = only }); len(resp.Items) != 2 {
		t.Fatalf("%d items when 2 qualify", len(resp.Items))
	}
	// A boost on cat0 lifts c0 items to the top of the fan's list.
	plain := recommend(t, e, "fan", 5)
	boosted := recommend(t, e, "fan", 5, func(r *engine.RecRequest) {
		r.Boost = compiled(t, `category == "cat0" ? 1000 : 1`, filter.Number)
	})
	if strings.HasPrefix(plain.Items[0].Item, "c0-") || !strings.HasPrefix(boosted.Items[0].Item, "c0-") {
		t.Fatalf("boost: plain top %s, boosted top %s", plain.Items[0].Item, boosted.Items[0].Item)
	}
	// A promotion of share 0.2 of 10 slots: 2 promoted sale items of c2.
	promo := &filter.Compiled{Named: filter.Named{Name: "c2", Share: 0.2}, FilterExpr: compiled(t, `category == "cat2"`, filter.Bool)}
	resp = recommend(t, e, "fan", 10, func(r *engine.RecRequest) { r.Promote = promo })
	seen := map[string]bool{}
	promoted := 0
	for _, r := range resp.Items {
		if seen[r.Item] {
			t.Fatalf("%s twice", r.Item)
		}
		seen[r.Item] = true
		if r.Promoted {
			promoted++
			if !strings.HasPrefix(r.Item, "c2-") {
				t.Fatalf("promoted %s outside the promotion's filter", r.Item)
			}
		}
	}
	if len(resp.Items) != 10 || promoted != 2 || resp.Items[0].Promoted {
		t.Fatalf("%d items, %d promoted (first promoted: %v), want 10 and 2 spread", len(resp.Items), promoted, resp.Items[0].Promoted)
	}
	// A catalog change is seen by the next request with the same filter.
	if _, err := e.PutItem(ctx, engine.Item{ID: "c0-item1", Category: "cat0", Tags: []string{"sale"}, Active: true}); err != nil {
		t.Fatal(err)
	}
	resp = recommend(t, e, "fan", 20, func(r *engine.RecRequest) { r.Filter = sale })
	found := false
	for _, r := range resp.Items {
		found = found || r.Item == "c0-item1"
	}
	if !found || len(resp.Items) != 18 {
		t.Fatalf("after the catalog change: %d items, c0-item1 in them: %v", len(resp.Items), found)
	}
	// Similar items with a filter.
	sim, err := e.SimilarTo(ctx, engine.SimilarRequest{Item: "c1-item3", N: 3, Filter: compiled(t, `category == "cat0"`, filter.Bool)})
	if err != nil || len(sim) != 3 {
		t.Fatalf("similar filtered: %v %v", sim, err)
	}
	for _, r := range sim {
		if !strings.HasPrefix(r.Item, "c0-") {
			t.Fatalf("similar kept %s", r.Item)
		}
	}
	// Trending (a stranger) honours the filter too.
	if resp := recommend(t, e, "stranger", 5, func(r *engine.RecRequest) { r.Filter = sale }); len(resp.Items) != 5 {
		t.Fatalf("stranger: %d sale items", len(resp.Items))
	}
}
