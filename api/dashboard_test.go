package api

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kairoshq/kairos/api/dashboard"
	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/promo"
)

// fakeTrending returns the first n of its items and records n.
type fakeTrending struct {
	items []engine.Rec
	n     int
}

func (f *fakeTrending) Trending(n int) []engine.Rec {
	f.n = n
	return f.items[:min(n, len(f.items))]
}

// fakeOfferDefs lists fixed offers (the promo engine's List shape).
type fakeOfferDefs struct{ offers []any }

func (f *fakeOfferDefs) PutJSON(context.Context, promo.Kind, string, []byte) (any, bool, error) {
	return nil, false, errors.New("fake: read only")
}
func (f *fakeOfferDefs) Get(promo.Kind, string) (any, error) { return nil, engine.ErrNotFound }
func (f *fakeOfferDefs) List(kind promo.Kind) ([]any, error) {
	if kind != promo.KindOffer {
		return []any{}, nil
	}
	return f.offers, nil
}
func (f *fakeOfferDefs) Delete(context.Context, promo.Kind, string) error { return engine.ErrNotFound }

func offerDetail(id string, active bool, impressions, clicks, conversions int64) promo.OfferDetail {
	return promo.OfferDetail{Offer: promo.Offer{ID: id, Title: "Offer " + id, Slot: "hero", Active: active},
		Stats: promo.OfferStats{Impressions: impressions, Clicks: clicks, Conversions: conversions}}
}

// dashHarness is a server with the dashboard's dependencies; applied,
// when set, is registered as the engine's applied-events counter.
func dashHarness(t *testing.T, applied prometheus.Counter, deps func(*Deps)) *harness {
	t.Helper()
	h := newHarness(t, nil)
	cfg := h.cfg
	cfg.Registry = prometheus.NewRegistry()
	if applied != nil {
		cfg.Registry.MustRegister(applied)
	}
	d := Deps{Publisher: h.pub, Recommender: h.rec, Catalog: h.cat, Checker: h.chk}
	if deps != nil {
		deps(&d)
	}
	s, err := New(cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	h.s, h.cfg = s, s.cfg
	return h
}

func TestDashboardFilesArePublic(t *testing.T) {
	h := newHarness(t, nil)
	for _, tt := range []struct {
		path, contentType, contains string
	}{
		{"/dashboard", "text/html; charset=utf-8", `<script src="/dashboard/dashboard.js" defer></script>`},
		{"/dashboard/", "text/html; charset=utf-8", `id="login-form"`},
		{"/dashboard/dashboard.js", "text/javascript; charset=utf-8", "sessionStorage"},
		{"/dashboard/dashboard.css", "text/css; charset=utf-8", ".panel"},
		{"/dashboard/favicon.svg", "image/svg+xml", "<svg"},
	} {
		t.Run(tt.path, func(t *testing.T) {
			w := h.do("GET", tt.path, "")
			if w.Code != http.StatusOK || w.Header().Get("Content-Type") != tt.contentType || !strings.Contains(w.Body.String(), tt.contains) {
				t.Fatalf("status %d, Content-Type %q, body has %q: %v", w.Code, w.Header().Get("Content-Type"), tt.contains, strings.Contains(w.Body.String(), tt.contains))
			}
			if got := w.Header().Get("Content-Security-Policy"); got != dashboard.ContentSecurityPolicy {
				t.Errorf("Content-Security-Policy %q", got)
			}
			if strings.Contains(w.Body.String(), testSK) {
				t.Errorf("a key in the page")
			}
		})
	}
	// Unknown files are the API's JSON 404, and no key opens them either.
	for _, p := range []string{"/dashboard/nope.js", "/dashboard/static/index.html", "/dashboard/a/b.js"} {
		wantError(t, h.do("GET", p, ""), 404, CodeNotFound, "the dashboard is at /dashboard")
	}
	wantError(t, h.do("GET", "/dashboardx", ""), 404, CodeNotFound)
}

func TestDashboardSummaryAuth(t *testing.T) {
	h := dashHarness(t, nil, nil)
	wantError(t, h.do("GET", "/v1/dashboard/summary", ""), 401, CodeUnauthorized, "missing key")
	wantError(t, h.do("GET", "/v1/dashboard/summary", "", "Authorization", "Bearer "+testPK, "Origin", allowed), 403, CodeForbidden, "secret key")
	wantError(t, h.do("GET", "/v1/dashboard/summary?key="+testSK, ""), 401, CodeUnauthorized, "rotate it")
	wantError(t, h.do("GET", "/v1/dashboard/summary", "", "Authorization", "Bearer sk_unknown_key_00000001"), 401, CodeUnauthorized, "unknown key")
	w := h.do("GET", "/v1/dashboard/summary", "", "Authorization", "Bearer "+testSK2, "Origin", allowed) // a rotated key works
	if w.Code != http.StatusOK {
		t.Fatalf("secret key: %d %s", w.Code, w.Body)
	}
	if got := w.Header().Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("Allow-Origin %q: the summary is a secret route", got)
	}
	if got := w.Header().Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control %q", got)
	}
	// Without the optional dependencies: empty lists, no applied counter.
	s := decode[DashboardSummary](t, w)
	if s.TopItems == nil || len(s.TopItems) != 0 || s.Offers == nil || len(s.Offers) != 0 || s.Events.Applied != nil || !s.Time.Equal(testNow) {
		t.Errorf("summary without deps: %+v", s)
	}
	if body := w.Body.String(); !strings.Contains(body, `"top_items":[]`) || !strings.Contains(body, `"applied":null`) || !strings.Contains(body, `"model":null`) {
		t.Errorf("body %s", body)
	}
}

func TestDashboardSummary(t *testing.T) {
	applied := prometheus.NewCounter(prometheus.CounterOpts{Name: "kairos_engine_events_applied_total", Help: "test"})
	applied.Add(41)
	tr := &fakeTrending{items: []engine.Rec{{Item: "sku-2", Score: 9.5, Title: "Two", Category: "c"}, {Item: "sku-1", Score: 3}, {Item: "sku-3", Score: 1}}}
	defs := &fakeOfferDefs{offers: []any{
		offerDetail("o-new", true, 0, 0, 0),
		offerDetail("o-big", true, 200, 30, 4),
		offerDetail("o-off", false, 50, 1, 0),
		offerDetail("o-tie", true, 50, 5, 1),
		"not an offer", // skipped
	}}
	h := dashHarness(t, applied, func(d *Deps) { d.Trending, d.Definitions = tr, defs })
	// Traffic: 2 accepted and 1 rejected in one batch, 1 accepted pixel.
	h.do("POST", "/v1/events", `[`+evJSON("a")+`,{"id":"b","type":"dwell","visitor":"v","item":"i","value":-1},`+evJSON("c")+`]`,
		"Authorization", "Bearer "+testPK, "Origin", allowed)
	h.do("GET", "/v1/pixel.gif?visitor=v&item=sku-1&key="+testPK, "")
	// POST /v1/identify publishes an identify event: received and accepted.
	if w := h.secret("POST", "/v1/identify", `{"anonymous_id":"v","user_id":"u-1"}`); w.Code != 200 {
		t.Fatalf("identify: %d %s", w.Code, w.Body)
	}

	s := decode[DashboardSummary](t, h.secret("GET", "/v1/dashboard/summary?n=3", ""))
	if s.Events.Received != 5 || s.Events.Accepted != 4 || s.Events.Rejected != 1 || s.Events.Applied == nil || *s.Events.Applied != 41 {
		t.Errorf("events %+v (applied %v), want received 5, accepted 4, rejected 1, applied 41", s.Events, s.Events.Applied)
	}
	if s.Events.Received != s.Events.Accepted+s.Events.Rejected {
		t.Errorf("received %d ≠ accepted %d + rejected %d", s.Events.Received, s.Events.Accepted, s.Events.Rejected)
	}
	if tr.n != 3 || len(s.TopItems) != 3 || s.TopItems[0].Item != "sku-2" || s.TopItems[0].Title != "Two" {
		t.Errorf("top items %+v (n %d)", s.TopItems, tr.n)
	}
	wantOffers := []struct {
		id  string
		ctr float64 // NaN: null
	}{{"o-big", 0.15}, {"o-off", 0.02}, {"o-tie", 0.1}}
	if s.OffersCount != 4 || len(s.Offers) != len(wantOffers) {
		t.Fatalf("offers %+v, count %d: want %d of 4", s.Offers, s.OffersCount, len(wantOffers))
	}
	for i, w := range wantOffers {
		o := s.Offers[i]
		if o.ID != w.id || o.CTR == nil || math.Abs(*o.CTR-w.ctr) > 1e-12 {
			t.Errorf("offers[%d] = %+v (ctr %v), want %s with CTR %v", i, o, o.CTR, w.id, w.ctr)
		}
	}
	if o := s.Offers[1]; o.Active || o.Impressions != 50 || o.Clicks != 1 || o.Slot != "hero" || o.Title != "Offer o-off" {
		t.Errorf("inactive offer %+v", o)
	}

	// Every offer with n large enough; one without impressions has a null CTR.
	w := h.secret("GET", "/v1/dashboard/summary", "")
	s = decode[DashboardSummary](t, w)
	if len(s.Offers) != 4 || s.Offers[3].ID != "o-new" || s.Offers[3].CTR != nil || !strings.Contains(w.Body.String(), `"ctr":null`) {
		t.Errorf("offers %+v", s.Offers)
	}
	if tr.n != DefaultResults {
		t.Errorf("default n %d, want %d", tr.n, DefaultResults)
	}
	wantError(t, h.secret("GET", "/v1/dashboard/summary?n=0", ""), 400, CodeInvalid, "n: 0 is not in [1, 100]")
	wantError(t, h.secret("GET", "/v1/dashboard/summary?n=x", ""), 400, CodeInvalid, "n:")
}

// fakeModel answers the summary's model member, or fails.
type fakeModel struct {
	n   int
	err error
}

func (f *fakeModel) DashboardModel(_ context.Context, n int) (DashboardModel, error) {
	f.n = n
	t := 2.5
	return DashboardModel{Generation: 3, Version: 42, Params: map[string]int{"factors": 64}, RetrainEvery: "24h0m0s", Refusals: 1,
		Retrains: []DashboardRetrain{{Decision: "rejected: worse than the live model", Label: "refused_worse", Reason: "NDCG@10 0.1 vs live 0.3",
			Figures: []DashboardFigures{{Model: "retrained", Users: 60, NDCG10: 0.1}, {Model: "popularity", Users: 60, NDCG10: 0.05}}, TPopularity: &t}}}, f.err
}

func TestDashboardSummaryModel(t *testing.T) {
	fm := &fakeModel{}
	h := dashHarness(t, nil, func(d *Deps) { d.Model = fm })
	w := h.secret("GET", "/v1/dashboard/summary?n=4", "")
	s := decode[DashboardSummary](t, w)
	if fm.n != 4 || s.Model == nil || s.Model.Generation != 3 || len(s.Model.Retrains) != 1 || s.Model.Retrains[0].Label != "refused_worse" {
		t.Fatalf("model %+v (n %d)", s.Model, fm.n)
	}
	if body := w.Body.String(); !strings.Contains(body, `"t_live":null`) || !strings.Contains(body, `"t_popularity":2.5`) || !strings.Contains(body, `"figures":[{"model":"retrained"`) {
		t.Errorf("body %s", body)
	}
	fm.err = errors.New("store down")
	if w := h.secret("GET", "/v1/dashboard/summary", ""); w.Code != http.StatusInternalServerError {
		t.Errorf("a failing model reader: %d %s, want 500", w.Code, w.Body)
	}
}
