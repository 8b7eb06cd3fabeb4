package api

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/kairoshq/kairos/engine/promo"
	"github.com/kairoshq/kairos/signals"
)

func TestOffersRanking(t *testing.T) {
	h := newPromoHarness(t, true, 0)
	h.secret("POST", "/v1/offers", `{"id":"o2","title":"Hero","slot":"hero"}`)
	h.secret("POST", "/v1/offers", `{"id":"o3","title":"Hero 2","slot":"hero"}`)
	pub := func(target string, header ...string) (*httptest.ResponseRecorder, OfferListResponse) {
		t.Helper()
		w := h.do("GET", target, "", append([]string{"Authorization", "Bearer " + testPK, "Origin", allowed}, header...)...)
		var l OfferListResponse
		if w.Code == 200 {
			l = decode[OfferListResponse](t, w)
		}
		return w, l
	}
	w, l := pub("/v1/offers?visitor=v-17&slot=hero&n=5")
	if w.Code != 200 || l.Visitor != "v-17" || l.Slot != "hero" || len(l.Offers) != 2 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	for _, o := range l.Offers {
		if o.Slot != "hero" || o.Token == "" || (o.ID != "o2" && o.ID != "o3") {
			t.Errorf("offer %+v", o)
		}
		if tok, err := h.eng.Signer().Verify(o.Token); err != nil || tok.Offer != o.ID || !tok.Matches("v-17") {
			t.Errorf("token of %s: %+v %v", o.ID, tok, err)
		}
	}
	if cc := w.Header().Get("Cache-Control"); cc != "private, no-store" {
		t.Errorf("Cache-Control %q", cc)
	}
	if _, l := pub("/v1/offers?visitor=v-17&n=1"); len(l.Offers) != 1 {
		t.Errorf("n=1 over every slot: %+v", l.Offers)
	}
	if _, l := pub("/v1/offers?visitor=v-17&slot=nowhere"); l.Offers == nil || len(l.Offers) != 0 {
		t.Errorf("empty slot: %+v (want an empty array)", l.Offers)
	}
	tests := []struct {
		target, want string
		status       int
	}{
		{"/v1/offers?visitor=v&n=0", "n: 0 is not in [1, 100]", 400},
		{"/v1/offers?visitor=v&n=x", `n: "x" is not an integer`, 400},
		{"/v1/offers?visitor=v&slot=a%20b", `slot: "a b" is not a slot name`, 400},
		{"/v1/offers?visitor=" + strings.Repeat("x", 201), "visitor: 201 bytes long", 400},
		{"/v1/offers?slot=hero", "listing offers needs the secret key", 403},
	}
	for _, tt := range tests {
		w, _ := pub(tt.target)
		if w.Code != tt.status || !strings.Contains(apiError(t, w).Message, tt.want) {
			t.Errorf("%s: %d %s, want %d %q", tt.target, w.Code, w.Body, tt.status, tt.want)
		}
	}
	// The publishable key may not write.
	w = h.do("POST", "/v1/offers", `{"id":"x","slot":"s"}`, "Authorization", "Bearer "+testPK, "Origin", allowed)
	wantError(t, w, 403, CodeForbidden)
}

// OfferListResponse decodes GET /v1/offers?visitor= in tests.
type OfferListResponse = promo.OfferList

func TestDefinitionsCRUD(t *testing.T) {
	h := newPromoHarness(t, true, 0)
	// Create, conflict, read, list.
	w := h.secret("POST", "/v1/campaigns", `{"id":"bf","name":"Black Friday","offers":["o1"],"priority":5,"schedule":{"days":["fri"],"tz":"Europe/Paris"}}`)
	if w.Code != 201 || w.Header().Get("Location") != "/v1/campaigns/bf" {
		t.Fatalf("create campaign: %d %s %v", w.Code, w.Body, w.Header())
	}
	w = h.secret("POST", "/v1/campaigns", `{"id":"bf","offers":["o1"]}`)
	wantError(t, w, 409, CodeConflict, `campaign "bf" already exists`)
	w = h.secret("GET", "/v1/campaigns/bf", "")
	c := decode[promo.Campaign](t, w)
	if c.Name != "Black Friday" || c.Priority != 5 || !c.Active || c.Created.IsZero() {
		t.Errorf("campaign %+v", c)
	}
	if l := decode[CampaignList](t, h.secret("GET", "/v1/campaigns", "")); len(l.Campaigns) != 1 {
		t.Errorf("campaigns %+v", l)
	}
	// Offers list with stats (secret).
	w = h.secret("GET", "/v1/offers", "")
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"stats":{"impressions":0,"clicks":0,"conversions":0}`) {
		t.Errorf("offer list: %d %s", w.Code, w.Body)
	}
	// Validation errors name the JSON path.
	w = h.secret("PUT", "/v1/rules/r2", `{"when":{"all":[{"exit":{}},{"count":{"type":"view","within":"10x"}}]},"then":{"slot":"exit"}}`)
	wantError(t, w, 400, CodeInvalid, `rules[r2].when.all[1].count.within: "10x" is not a duration`)
	w = h.secret("PUT", "/v1/rules/r2", `{"id":"r3","when":{"exit":{}},"then":{"slot":"exit"}}`)
	wantError(t, w, 400, CodeInvalid, `"r3" differs from "r2"`)
	w = h.secret("PUT", "/v1/rules/r2", `{"when":{"exit":{}},"then":{"offer":"missing"}}`)
	wantError(t, w, 400, CodeInvalid, `rules[r2].then.offer: offer "missing" does not exist`)
	w = h.secret("POST", "/v1/rules", `{"when":{"exit":{}},"then":{"slot":"exit"}}`)
	wantError(t, w, 400, CodeInvalid, "rule.id: missing")
	w = h.secret("POST", "/v1/offers", `not json`)
	wantError(t, w, 400, CodeInvalid, "offer: must be an object")
	w = h.secret("POST", "/v1/offers", ``)
	wantError(t, w, 400, CodeInvalid, "empty body")
	w = h.secret("POST", "/v1/offers", `{"id":"big","slot":"s","body":"`+strings.Repeat("x", 70<<10)+`"}`)
	wantError(t, w, 413, CodeTooLarge)
	// PUT creates, then replaces.
	if w = h.secret("PUT", "/v1/rules/r2", `{"when":{"exit":{}},"then":{"slot":"exit"}}`); w.Code != 201 {
		t.Errorf("PUT new rule: %d %s", w.Code, w.Body)
	}
	if w = h.secret("PUT", "/v1/rules/r2", `{"when":{"exit":{}},"then":{"slot":"exit","campaign":"bf"},"cooldown":"2h"}`); w.Code != 200 ||
		!strings.Contains(w.Body.String(), `"cooldown":"2h"`) {
		t.Errorf("PUT existing rule: %d %s", w.Code, w.Body)
	}
	// Deleting what is named elsewhere is a conflict.
	w = h.secret("DELETE", "/v1/offers/o1", "")
	wantError(t, w, 409, CodeConflict, "campaigns[bf].offers[0]", "rules[r1].then.offer")
	w = h.secret("DELETE", "/v1/campaigns/bf", "")
	wantError(t, w, 409, CodeConflict, "rules[r2].then.campaign")
	for _, path := range []string{"/v1/rules/r2", "/v1/rules/r1", "/v1/campaigns/bf", "/v1/offers/o1"} {
		if w := h.secret("DELETE", path, ""); w.Code != 204 {
			t.Errorf("DELETE %s: %d %s", path, w.Code, w.Body)
		}
		wantError(t, h.secret("GET", path, ""), 404, CodeNotFound)
		wantError(t, h.secret("DELETE", path, ""), 404, CodeNotFound)
	}
	if l := decode[RuleList](t, h.secret("GET", "/v1/rules", "")); l.Rules == nil || len(l.Rules) != 0 {
		t.Errorf("rules left: %+v", l)
	}
	// Without the promo dependencies: 404.
	plain := newHarness(t, nil)
	for _, path := range []string{"/v1/offers", "/v1/campaigns", "/v1/rules/x", "/v1/offers?visitor=v"} {
		wantError(t, plain.secret("GET", path, ""), http.StatusNotFound, CodeNotFound, "not configured")
	}
}

func FuzzOfferQuery(f *testing.F) {
	for _, s := range []string{"visitor=v&slot=hero&n=3", "visitor=&n=1", "visitor=v&n=-1", "visitor=v&slot=a:b.c_d-e&n=100",
		"visitor=%00&slot=%ff", "n=1e3&visitor=v", "visitor=v&visitor=w&n=2&n=x", "slot=" + strings.Repeat("s", 60) + "&visitor=v",
		"visitor=user:alice&slot=hero", "visitor=v%E2%80%AE"} {
		f.Add(s)
	}
	s, err := New(testConfig(), Deps{Publisher: &fakePublisher{}, Recommender: &fakeRecommender{}, Catalog: &fakeCatalog{}, Checker: &fakeChecker{}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		r, err := s.parseOfferQuery(q)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error %v is %T, not *Error", err, err)
			}
			return
		}
		if _, reserved := signals.ReservedPrefix(r.Visitor); reserved || !signals.ValidID(r.Visitor, 200) {
			t.Fatalf("accepted visitor %q", r.Visitor)
		}
		if r.Visitor == "" || len(r.Visitor) > 200 || r.Visitor != q.Get("visitor") || r.Slot != q.Get("slot") ||
			r.N < 1 || r.N > s.cfg.MaxResults {
			t.Fatalf("accepted %q as %+v", raw, r)
		}
	})
}
