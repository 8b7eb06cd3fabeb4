package api

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/attention"
	"github.com/kairoshq/kairos/engine/attention/attentiontest"
	"github.com/kairoshq/kairos/signals"
)

// attentionHarness is a server whose Deps.Attention is a real
// attention.Attention over the in-memory store, holding some dwell, and
// whose Deps.Site answers "site <path>".
func attentionHarness(t *testing.T) *harness {
	t.Helper()
	h := newHarness(t, nil)
	a, err := attention.New(&attentiontest.Mem{}, attention.Config{MaxResults: 500})
	if err != nil {
		t.Fatal(err)
	}
	page := "https://shop.example/p/42?utm_source=mail"
	a.React(context.Background(), []engine.VisitorChange{{Fresh: []signals.Event{
		{Type: signals.TypeDwell, Visitor: "v", Page: page, Element: "item:42", Value: 3000},
		{Type: signals.TypeDwell, Visitor: "v", Page: page, Element: "offer:spring", Value: 1000},
		{Type: signals.TypeDwell, Visitor: "v", Page: page, Element: "reviews", Value: 1000},
	}}})
	site := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("site " + r.URL.Path))
	})
	h.s = h.server(nil, func(d *Deps) { d.Attention, d.Site = a, site })
	return h
}

func TestPageAttention(t *testing.T) {
	h := attentionHarness(t)
	target := "/v1/pages/attention?page=" + url.QueryEscape("https://SHOP.example/p/42#top")
	w := h.secret("GET", target, "")
	if w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if cc := w.Header().Get("Cache-Control"); !strings.Contains(cc, "no-store") {
		t.Errorf("Cache-Control %q", cc)
	}
	got := decode[attention.Heat](t, w)
	want := []attention.ElementHeat{
		{Element: "item:42", Item: "42", DwellMs: 3000, Share: 0.6, Rank: 1},
		{Element: "offer:spring", Offer: "spring", DwellMs: 1000, Share: 0.2, Rank: 2},
		{Element: "reviews", DwellMs: 1000, Share: 0.2, Rank: 2},
	}
	if got.Page != "https://shop.example/p/42" || got.TotalMs != 5000 || got.Count != 3 || len(got.Elements) != len(want) {
		t.Fatalf("answer %+v", got)
	}
	for i := range want {
		if got.Elements[i] != want[i] {
			t.Errorf("elements[%d] = %+v, want %+v", i, got.Elements[i], want[i])
		}
	}
	// The JSON names of the contract.
	for _, f := range []string{`"page":`, `"total_ms":5000`, `"elements":[`, `"element":"item:42"`, `"item":"42"`, `"dwell_ms":3000`, `"share":0.6`, `"rank":1`} {
		if !strings.Contains(w.Body.String(), f) {
			t.Errorf("body %s lacks %s", w.Body, f)
		}
	}
	if got := decode[attention.Heat](t, h.secret("GET", target+"&n=1", "")); len(got.Elements) != 1 || got.Count != 3 {
		t.Errorf("n=1: %+v", got)
	}
	if got := decode[attention.Heat](t, h.secret("GET", "/v1/pages/attention?page=/nowhere", "")); got.TotalMs != 0 || got.Elements == nil || len(got.Elements) != 0 {
		t.Errorf("unknown page: %+v, want no elements (an empty list)", got)
	}
}

func TestPageAttentionErrors(t *testing.T) {
	h := attentionHarness(t)
	for _, tt := range []struct {
		target   string
		status   int
		code     Code
		fragment string
	}{
		{"/v1/pages/attention", 400, CodeInvalid, "page: missing"},
		{"/v1/pages/attention?page=relative", 400, CodeInvalid, "page:"},
		{"/v1/pages/attention?page=/p&n=0", 400, CodeInvalid, "n: 0 is not in [1, 500]"},
		{"/v1/pages/attention?page=/p&n=x", 400, CodeInvalid, "n:"},
		{"/v1/pages/attention?page=/" + strings.Repeat("a", 2048), 400, CodeInvalid, "longer than 2048"},
	} {
		wantError(t, h.secret("GET", tt.target, ""), tt.status, tt.code, tt.fragment)
	}
	wantError(t, h.do("GET", "/v1/pages/attention?page=/p", "", "Authorization", "Bearer "+testPK, "Origin", allowed), 403, CodeForbidden, "secret key")
	// Without Deps.Attention: 404.
	wantError(t, newHarness(t, nil).secret("GET", "/v1/pages/attention?page=/p", ""), 404, CodeNotFound, "not configured")
}

func TestSite(t *testing.T) {
	h := attentionHarness(t)
	for _, path := range []string{"/", "/shop/p/sku-1", "/shop/img/a.svg"} {
		w := h.do("GET", path, "")
		if w.Code != 200 || w.Body.String() != "site "+path {
			t.Errorf("GET %s: %d %q", path, w.Code, w.Body)
		}
	}
	// API routes and unknown paths are not the site's.
	wantError(t, h.do("GET", "/v1/unknown", ""), 404, CodeNotFound)
	wantError(t, h.do("GET", "/elsewhere", ""), 404, CodeNotFound)
	// Without Deps.Site, / is a JSON 404.
	wantError(t, newHarness(t, nil).do("GET", "/", ""), 404, CodeNotFound, "--demo")
}
