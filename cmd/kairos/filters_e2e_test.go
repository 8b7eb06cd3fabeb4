package main

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestFiltersEmbedded and TestFiltersRabbitRedis run kairos serve and
// check the effects of filter=, boost=, named filters and promotions: a
// filter returns only qualifying items and n of them, a boost changes
// the order, a bad expression is a 400 naming the position, a named
// filter works after PUT and is gone after DELETE, and a promotion
// claims its share of the slots.
func TestFiltersEmbedded(t *testing.T) {
	srv := startServer(t)
	testFilters(t, srv, srv)
}

func TestFiltersRabbitRedis(t *testing.T) {
	requireServices(t)
	flags := []string{"--amqp-url", amqpURL(), "--redis-url", redisURL(), "--namespace", testNamespace(t)}
	a := startServer(t, append(flags, "--replica", "a")...)
	b := startServer(t, append(flags, "--replica", "b")...)
	testFilters(t, a, a, b)
	// Replica b sees a's named filters: stored on Redis, reloaded when the
	// collection's version changes.
	a.secretJSON(t, http.MethodPut, "/v1/filters/shared", `{"filter": "category == \"cat0\""}`, http.StatusCreated)
	waitFor(t, 10*time.Second, "replica b to serve a's new filter", func() bool {
		return statusOf(t, b, "/v1/recommendations?visitor=filter-fan&n=3&filter_name=shared") == http.StatusOK
	})
	a.secretDo(t, http.MethodDelete, "/v1/filters/shared", http.StatusNoContent)
	waitFor(t, 10*time.Second, "replica b to drop a's deleted filter", func() bool {
		return statusOf(t, b, "/v1/recommendations?visitor=filter-fan&n=3&filter_name=shared") == http.StatusNotFound
	})
}

// statusOf returns the status of a GET of path with the secret key.
func statusOf(t *testing.T, srv *testServer, path string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, srv.base+path, nil)
	req.Header.Set("Authorization", "Bearer sk_test_0123456789abcdef")
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

type recItem struct {
	item     string
	promoted bool
}

func filteredRecs(t *testing.T, srv *testServer, q url.Values) []recItem {
	t.Helper()
	out := secretGet(t, srv.base+"/v1/recommendations?"+q.Encode())
	var items []recItem
	for _, it := range out["items"].([]any) {
		m := it.(map[string]any)
		p, _ := m["promoted"].(bool)
		items = append(items, recItem{m["item"].(string), p})
	}
	return items
}

func onSale(item string) bool {
	return strings.HasPrefix(item, "c2-") || strings.HasSuffix(item, "-item0")
}

// testFilters runs the checks on srv; consumers are the servers that
// apply its events (srv, or on RabbitMQ every replica of the namespace).
func testFilters(t *testing.T, srv *testServer, consumers ...*testServer) {
	base := clusterBatch("fb", 3, 20, 12, 12, 5)
	accepted := srv.postAll(t, base)
	// The catalog: cluster c's items in category cat<c>; cluster 2's
	// items and every item0 on sale (14 of 36).
	for c := range 3 {
		for i := range 12 {
			id := fmt.Sprintf("c%d-item%d", c, i)
			tags := `[]`
			if onSale(id) {
				tags = `["sale"]`
			}
			srv.secretJSON(t, http.MethodPut, "/v1/items/"+id, fmt.Sprintf(`{"id":%q,"category":"cat%d","tags":%s,"active":true}`, id, c, tags), http.StatusCreated)
		}
	}
	const v = "filter-fan"
	accepted += srv.postEvents(t, []map[string]any{
		{"id": v + "-1", "type": "click", "visitor": v, "item": "c1-item3"},
		{"id": v + "-2", "type": "click", "visitor": v, "item": "c1-item5"},
	})["accepted"].(float64)
	// Every event applied (on RabbitMQ they are consumed after the POST,
	// by either replica): the rankings compared below must not move under
	// the test.
	waitFor(t, 30*time.Second, "every event applied", func() bool { return appliedByAll(t, consumers...) >= accepted })
	waitFor(t, 15*time.Second, "the visitor's own recommendations", func() bool {
		s, _ := srv.recommend(t, v, 3)
		return s == "als"
	})
	_, plain := srv.recommend(t, v, 10)
	t.Logf("unfiltered: %v", plain)

	// A filter: 10 items, all on sale, though the c1 fan's ranking puts
	// c1 items first.
	got := filteredRecs(t, srv, url.Values{"visitor": {v}, "n": {"10"}, "filter": {`"sale" in tags`}})
	t.Logf(`filter="sale" in tags: %v`, got)
	if len(got) != 10 {
		t.Fatalf("%d items with the filter, want 10", len(got))
	}
	for _, r := range got {
		if !onSale(r.item) {
			t.Fatalf("the filter let %s through", r.item)
		}
	}
	// With rotation: the next list holds other qualifying items.
	rq := url.Values{"visitor": {v}, "n": {"4"}, "filter": {`"sale" in tags`}, "rotation": {"30m"}}
	r1, r2 := filteredRecs(t, srv, rq), filteredRecs(t, srv, rq)
	for _, r := range append(r1, r2...) {
		if !onSale(r.item) {
			t.Fatalf("filter with rotation let %s through", r.item)
		}
	}
	if len(r2) != 4 || r1[0].item == r2[0].item {
		t.Fatalf("filter with rotation: %v then %v", r1, r2)
	}
	// Fewer qualify than asked: all of them, nothing else.
	if got := filteredRecs(t, srv, url.Values{"visitor": {v}, "n": {"10"}, "filter": {`category == "cat0" && "sale" in tags`}}); len(got) != 1 || got[0].item != "c0-item0" {
		t.Fatalf("one qualifying item: %v", got)
	}
	// A boost lifts cat0 to the top.
	boosted := filteredRecs(t, srv, url.Values{"visitor": {v}, "n": {"5"}, "boost": {`category == "cat0" ? 1000 : 1`}})
	t.Logf("boost cat0: %v", boosted)
	if strings.HasPrefix(plain[0], "c0-") || !strings.HasPrefix(boosted[0].item, "c0-") {
		t.Fatalf("boost: unboosted top %s, boosted top %s", plain[0], boosted[0].item)
	}
	// An infinite boost lifts the most: the item comes first.
	last := plain[len(plain)-1]
	if inf := filteredRecs(t, srv, url.Values{"visitor": {v}, "n": {"5"}, "boost": {`id == "` + last + `" ? 1/0 : 1`}}); len(inf) != 5 || inf[0].item != last {
		t.Fatalf("boost 1/0 of %s: %v", last, inf)
	}
	// A bad expression: 400 naming the parameter and the position.
	req, _ := http.NewRequest(http.MethodGet, srv.base+"/v1/recommendations?"+url.Values{"visitor": {v}, "filter": {`category == `}}.Encode(), nil)
	req.Header.Set("Authorization", "Bearer sk_test_0123456789abcdef")
	bad := doJSON(t, req, http.StatusBadRequest)
	msg := bad["error"].(map[string]any)["message"].(string)
	t.Logf("bad filter: %s", msg)
	if !strings.HasPrefix(msg, "filter: ") || !strings.Contains(msg, "line 1, column") {
		t.Fatalf("bad filter message %q", msg)
	}

	// A named filter works after PUT, also on similar items, and is gone
	// after DELETE.
	srv.secretJSON(t, http.MethodPut, "/v1/filters/sale", `{"filter": "\"sale\" in tags"}`, http.StatusCreated)
	if got := filteredRecs(t, srv, url.Values{"visitor": {v}, "n": {"5"}, "filter_name": {"sale"}}); len(got) != 5 || !onSale(got[0].item) || !onSale(got[4].item) {
		t.Fatalf("filter_name=sale: %v", got)
	}
	sim := srv.secretJSON(t, http.MethodGet, "/v1/items/c1-item3/similar?n=3&filter_name=sale", "", http.StatusOK)
	for _, it := range sim["items"].([]any) {
		if id := it.(map[string]any)["item"].(string); !onSale(id) {
			t.Fatalf("similar with filter_name=sale: %s", id)
		}
	}
	srv.secretDo(t, http.MethodDelete, "/v1/filters/sale", http.StatusNoContent)
	srv.secretJSON(t, http.MethodGet, "/v1/recommendations?visitor="+v+"&filter_name=sale", "", http.StatusNotFound)

	// A promotion: 20 % of 10 slots for cat2 items, marked, spread, no
	// duplicates.
	srv.secretJSON(t, http.MethodPut, "/v1/filters/cat2-promo", `{"filter": "category == \"cat2\"", "share": 0.2}`, http.StatusCreated)
	got = filteredRecs(t, srv, url.Values{"visitor": {v}, "n": {"10"}, "filter_name": {"cat2-promo"}})
	t.Logf("promotion: %v", got)
	seen, promoted := map[string]bool{}, 0
	for _, r := range got {
		if seen[r.item] {
			t.Fatalf("%s twice", r.item)
		}
		seen[r.item] = true
		if r.promoted {
			promoted++
			if !strings.HasPrefix(r.item, "c2-") {
				t.Fatalf("promoted %s is not cat2", r.item)
			}
		}
	}
	if len(got) != 10 || promoted != 2 || got[0].promoted {
		t.Fatalf("%d items, %d promoted, first promoted %v: want 10, 2 spread", len(got), promoted, got[0].promoted)
	}
	list := srv.secretJSON(t, http.MethodGet, "/v1/filters", "", http.StatusOK)
	if fs := list["filters"].([]any); len(fs) != 1 || fs[0].(map[string]any)["name"] != "cat2-promo" {
		t.Fatalf("list: %v", list)
	}
}
