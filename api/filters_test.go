package api

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/filter"
	"github.com/kairoshq/kairos/engine/storage/storagetest"
)

// TestFilterParams checks that filter=, boost= and filter_name= reach
// the engine compiled, that a bad expression is a 400 naming the
// parameter and the position, and the CRUD of /v1/filters.
func TestFilterParams(t *testing.T) {
	h := newHarness(t, nil)
	store := filter.NewStore(storagetest.NewMem(nil), filter.NewCompiler(8), filter.StoreConfig{})
	h.s = h.server(nil, func(d *Deps) { d.Filters = store })
	q := url.Values{"visitor": {"v1"}, "n": {"3"}, "filter": {`"sale" in tags`}, "boost": {`category == "a" ? 2 : 1`}}
	if w := h.secret(http.MethodGet, "/v1/recommendations?"+q.Encode(), ""); w.Code != 200 {
		t.Fatalf("filtered recommendations: %d %s", w.Code, w.Body)
	}
	if r := h.rec.last; r.Filter == nil || r.Filter.Source() != `"sale" in tags` || r.Boost == nil || r.Promote != nil {
		t.Fatalf("engine request %+v", r)
	}
	// A compile error: 400 with the parameter and the position.
	bad := url.Values{"visitor": {"v1"}, "filter": {`category == `}}
	w := h.secret(http.MethodGet, "/v1/recommendations?"+bad.Encode(), "")
	if e := apiError(t, w); w.Code != 400 || !strings.HasPrefix(e.Message, "filter: ") || !strings.Contains(e.Message, "line 1, column") {
		t.Fatalf("bad filter: %d %+v", w.Code, e)
	}
	bad = url.Values{"visitor": {"v1"}, "boost": {`"x"`}}
	if w := h.secret(http.MethodGet, "/v1/recommendations?"+bad.Encode(), ""); w.Code != 400 || !strings.Contains(apiError(t, w).Message, "boost: ") {
		t.Fatalf("bad boost: %d %s", w.Code, w.Body)
	}
	// Named filters.
	if w := h.secret(http.MethodGet, "/v1/recommendations?visitor=v1&filter_name=sale", ""); w.Code != 404 {
		t.Fatalf("unknown filter_name: %d %s", w.Code, w.Body)
	}
	if w := h.secret(http.MethodPut, "/v1/filters/sale", `{"filter": "\"sale\" in", "share": 0.2}`); w.Code != 400 || !strings.Contains(apiError(t, w).Message, "column") {
		t.Fatalf("bad stored filter: %d %s", w.Code, w.Body)
	}
	if w := h.secret(http.MethodPut, "/v1/filters/sale", `{"filter": "\"sale\" in tags", "share": 0.2}`); w.Code != 201 {
		t.Fatalf("put: %d %s", w.Code, w.Body)
	}
	if w := h.secret(http.MethodPut, "/v1/filters/sale", `{"name": "sale", "filter": "\"sale\" in tags", "boost": "2", "share": 0.2}`); w.Code != 200 {
		t.Fatalf("replace: %d %s", w.Code, w.Body)
	}
	if w := h.secret(http.MethodPut, "/v1/filters/shoes", `{"filter": "category == \"shoes\""}`); w.Code != 201 {
		t.Fatalf("put shoes: %d %s", w.Code, w.Body)
	}
	if got := decode[filter.Named](t, h.secret(http.MethodGet, "/v1/filters/sale", "")); got.Boost != "2" || got.Share != 0.2 {
		t.Fatalf("get: %+v", got)
	}
	if l := decode[FilterList](t, h.secret(http.MethodGet, "/v1/filters", "")); len(l.Filters) != 2 || l.Filters[0].Name != "sale" {
		t.Fatalf("list: %+v", l)
	}
	if w := h.secret(http.MethodGet, "/v1/recommendations?visitor=v1&filter_name=sale&n=10", ""); w.Code != 200 {
		t.Fatalf("filter_name: %d %s", w.Code, w.Body)
	}
	if p := h.rec.last.Promote; p == nil || p.Share != 0.2 || p.FilterExpr == nil {
		t.Fatalf("promotion not passed: %+v", h.rec.last)
	}
	// Without a share the named filter combines with filter=.
	q = url.Values{"visitor": {"v1"}, "filter_name": {"shoes"}, "filter": {"active"}}
	if w := h.secret(http.MethodGet, "/v1/recommendations?"+q.Encode(), ""); w.Code != 200 {
		t.Fatalf("filter_name+filter: %d %s", w.Code, w.Body)
	}
	if r := h.rec.last; r.Promote != nil || r.Filter == nil || !strings.Contains(r.Filter.Source(), "shoes") || !strings.Contains(r.Filter.Source(), "active") {
		t.Fatalf("combined filter: %+v", r.Filter)
	}
	// Similar items take the parameters too.
	h.rec.similar = map[string][]engine.Rec{"sku": {{Item: "a"}}}
	if w := h.secret(http.MethodGet, "/v1/items/sku/similar?filter_name=shoes&boost=2", ""); w.Code != 200 {
		t.Fatalf("similar: %d %s", w.Code, w.Body)
	}
	if w := h.secret(http.MethodGet, "/v1/items/sku/similar?filter=%28", ""); w.Code != 400 {
		t.Fatalf("similar bad filter: %d %s", w.Code, w.Body)
	}
	if w := h.secret(http.MethodDelete, "/v1/filters/sale", ""); w.Code != 204 {
		t.Fatalf("delete: %d %s", w.Code, w.Body)
	}
	if w := h.secret(http.MethodDelete, "/v1/filters/sale", ""); w.Code != 404 {
		t.Fatalf("delete twice: %d", w.Code)
	}
	if w := h.secret(http.MethodGet, "/v1/filters/sale", ""); w.Code != 404 {
		t.Fatalf("get deleted: %d", w.Code)
	}
	if w := h.secret(http.MethodGet, "/v1/recommendations?visitor=v1&filter_name=sale", ""); w.Code != 404 {
		t.Fatalf("deleted filter_name: %d %s", w.Code, w.Body)
	}
	if w := h.secret(http.MethodPut, "/v1/filters/bad%20name", `{"filter": "active"}`); w.Code != 400 {
		t.Fatalf("bad name: %d %s", w.Code, w.Body)
	}
}
