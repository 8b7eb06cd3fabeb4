package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/promo"
	"github.com/kairoshq/kairos/engine/promo/promotest"
	"github.com/kairoshq/kairos/signals"
)

const (
	testSK     = "sk_demo_test_secret"
	testPK     = "pk_demo_test_public"
	testOrigin = "http://127.0.0.1:8080"
)

var testNow = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// fakeAPI records the shop's API calls and answers them: items exist once
// PUT, recommendations list the first n products, similar items the
// next ones.
type fakeAPI struct {
	mu    sync.Mutex
	calls []call
	items map[string]bool
	cat   *Catalog
}

type call struct {
	method, path, query, auth string
	body                      []byte
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Authorization"), body})
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method == "GET" && strings.HasSuffix(r.URL.Path, "/similar"):
		w.Write([]byte(`{"items":[{"item":"aud-02"},{"item":"aud-03"}]}`))
	case r.Method == "GET" && strings.HasPrefix(r.URL.Path, "/v1/items/"):
		if !f.items[strings.TrimPrefix(r.URL.Path, "/v1/items/")] {
			w.WriteHeader(404)
			w.Write([]byte(`{"error":{"code":"not_found","message":"no such item"}}`))
			return
		}
		w.Write([]byte(`{}`))
	case r.Method == "PUT" && strings.HasPrefix(r.URL.Path, "/v1/items/"):
		f.items[strings.TrimPrefix(r.URL.Path, "/v1/items/")] = true
		w.Write([]byte(`{}`))
	case r.URL.Path == "/v1/recommendations":
		strategy := "trending"
		if r.URL.Query().Get("visitor") == "v-cookie" {
			strategy = "als"
		}
		w.Write([]byte(`{"strategy":"` + strategy + `","items":[{"item":"snk-01"},{"item":"aud-02","because":["aud-01"]},{"item":"unknown"}]}`))
	default:
		w.Write([]byte(`{}`))
	}
}

func (f *fakeAPI) find(method, prefix string) []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []call
	for _, c := range f.calls {
		if c.method == method && strings.HasPrefix(c.path, prefix) {
			out = append(out, c)
		}
	}
	return out
}

func newShop(t *testing.T) (*Shop, *fakeAPI) {
	t.Helper()
	s, err := New(Config{SecretKey: testSK, PublishableKey: testPK, Origin: testOrigin + "/", Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeAPI{items: map[string]bool{}, cat: s.Catalog()}
	s.SetAPI(f)
	return s, f
}

func TestCatalog(t *testing.T) {
	c := NewCatalog(1)
	if len(c.Categories) != 6 || len(c.Products) != 6*PerCategory {
		t.Fatalf("%d categories, %d products", len(c.Categories), len(c.Products))
	}
	ids := map[string]bool{}
	titles := map[string]bool{}
	for _, p := range c.Products {
		if ids[p.ID] || titles[p.Title] {
			t.Errorf("duplicate %s %q", p.ID, p.Title)
		}
		ids[p.ID], titles[p.Title] = true, true
		if p.PriceCents < 1000 || p.Rating < 3.6 || p.Rating > 5 || p.Description == "" || colorHex[p.Color] == "" {
			t.Errorf("product %+v", p)
		}
		if got, ok := c.Product(p.ID); !ok || got.Title != p.Title {
			t.Errorf("Product(%s)", p.ID)
		}
	}
	if again := NewCatalog(1); !slices.EqualFunc(again.Products, c.Products, func(a, b Product) bool { return a == b }) {
		t.Error("the same seed made another catalog")
	}
	if other := NewCatalog(2); other.Products[0] == c.Products[0] && other.Products[1] == c.Products[1] {
		t.Error("another seed made the same catalog")
	}
}

func TestImagesAreWellFormedSVG(t *testing.T) {
	s, _ := newShop(t)
	paths := []string{"/shop/img/banner-audio.svg"}
	for _, p := range s.Catalog().Products {
		paths = append(paths, "/shop/img/"+p.ID+".svg", "/shop/img/"+p.ID+".svg?v=2")
	}
	for _, path := range paths {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		if w.Code != 200 || w.Header().Get("Content-Type") != "image/svg+xml" {
			t.Fatalf("%s: %d %s", path, w.Code, w.Header().Get("Content-Type"))
		}
		d := xml.NewDecoder(bytes.NewReader(w.Body.Bytes()))
		for {
			_, err := d.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: not well-formed XML: %v", path, err)
			}
		}
	}
	for _, path := range []string{"/shop/img/nope.svg", "/shop/img/aud-01.png", "/shop/img/banner-nope.svg"} {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		if w.Code != 404 {
			t.Errorf("%s: %d, want 404", path, w.Code)
		}
	}
}

func get(t *testing.T, s *Shop, path string, cookies ...*http.Cookie) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest("GET", path, nil)
	for _, c := range cookies {
		r.AddCookie(c)
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	return w
}

func TestPages(t *testing.T) {
	s, f := newShop(t)
	for _, tt := range []struct {
		path string
		want []string
	}{
		{"/", []string{`data-kairos-slot="hero"`, `id="recs"`, `data-kairos-item="snk-01"`, `Trending now`}},
		{"/shop/c/audio", []string{`data-kairos-slot="hero"`, `data-kairos-item="aud-01"`, `data-kairos-item="aud-10"`, "Audio"}},
		{"/shop/p/aud-01", []string{`data-kairos-slot="hero"`, `<meta name="kairos:item" content="aud-01">`, `id="gallery" data-kairos-item="aud-01"`,
			`data-kairos-item="aud-02"`, `id="add-to-cart"`}},
	} {
		w := get(t, s, tt.path)
		body := w.Body.String()
		if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") {
			t.Fatalf("%s: %d %s", tt.path, w.Code, body)
		}
		for _, frag := range append(tt.want, `<script src="/tracker.js" data-key="`+testPK+`" async>`) {
			if !strings.Contains(body, frag) {
				t.Errorf("%s lacks %s", tt.path, frag)
			}
		}
		if strings.Contains(body, testSK) {
			t.Fatalf("%s contains the secret key", tt.path)
		}
		if n := strings.Count(body, `data-kairos-slot="hero"`); n != 1 {
			t.Errorf("%s has %d hero slots, want 1", tt.path, n)
		}
	}
	for _, path := range []string{"/shop/p/nope", "/shop/c/nope", "/shop/elsewhere", "/index.html"} {
		if w := get(t, s, path); w.Code != 404 || strings.Contains(w.Body.String(), testSK) {
			t.Errorf("%s: %d, want 404", path, w.Code)
		}
	}
	for _, path := range []string{"/shop/static/site.css", "/shop/static/site.js", "/shop/static/favicon.svg"} {
		w := get(t, s, path)
		if w.Code != 200 || strings.Contains(w.Body.String(), testSK) {
			t.Errorf("%s: %d", path, w.Code)
		}
	}
	// Every API call of the back end carries the secret key.
	for _, c := range f.find("GET", "/") {
		if c.auth != "Bearer "+testSK {
			t.Errorf("%s %s with %q", c.method, c.path, c.auth)
		}
	}
}

func TestRecommendationsProxy(t *testing.T) {
	s, f := newShop(t)
	w := get(t, s, "/shop/api/recommendations?n=4&item=aud-01", &http.Cookie{Name: "kairos_vid", Value: "v-cookie"})
	var got struct {
		Visitor, Strategy string
		Items             []card
	}
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if got.Visitor != "v-cookie" || got.Strategy != "als" || len(got.Items) != 2 || got.Items[1].ID != "aud-02" || got.Items[1].Because == "" {
		t.Fatalf("answer %+v (unknown items are left out, because names the product)", got)
	}
	calls := f.find("GET", "/v1/recommendations")
	last := calls[len(calls)-1]
	if !strings.Contains(last.query, "visitor=v-cookie") || !strings.Contains(last.query, "item=aud-01") || !strings.Contains(last.query, "n=4") {
		t.Errorf("query %s", last.query)
	}
	// No cookie: no visitor, nothing asked.
	n := len(f.find("GET", "/v1/recommendations"))
	w = get(t, s, "/shop/api/recommendations")
	if !strings.Contains(w.Body.String(), `"items":[]`) || len(f.find("GET", "/v1/recommendations")) != n {
		t.Errorf("without a visitor: %s", w.Body)
	}
}

// memVisitors is a promo.Profiles of visitors the model does not know.
type memVisitors struct{}

func (memVisitors) VisitorFactors(context.Context, string, string) ([]float32, error) {
	return nil, nil
}

// replay feeds events to a promo engine one by one, as the engine would
// (history and a session per visitor), and returns the promotions fired.
func replay(t *testing.T, p *promo.Engine, store *promotest.Mem, evs []signals.Event) map[string][]promo.Promotion {
	t.Helper()
	hist := map[string][]engine.HistoryEvent{}
	sess := map[string]engine.Session{}
	for _, ev := range evs {
		v := ev.Visitor
		s := sess[v]
		if s.Start.IsZero() || ev.Time.Sub(s.Last) > 30*time.Minute {
			s = engine.Session{ID: ev.ID, Start: ev.Time.Time}
		}
		s.Last, s.Events = ev.Time.Time, s.Events+1
		sess[v] = s
		hist[v] = append(hist[v], engine.HistoryEvent{ID: ev.ID, Type: ev.Type, Item: ev.Item, Page: ev.Page, Value: ev.Value, Time: ev.Time.Time})
		p.React(context.Background(), []engine.VisitorChange{{Visitor: engine.Visitor{ID: v, History: slices.Clone(hist[v]), Session: s}, Fresh: []signals.Event{ev}}})
	}
	out := map[string][]promo.Promotion{}
	for v := range hist {
		ps, err := store.Promotions(context.Background(), v, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) > 0 {
			out[v] = ps
		}
	}
	return out
}

// TestSeed runs Seed against the fake API and checks what it sends: the
// catalog, offers, campaign and rules valid for the promo engine, and
// background traffic valid for the collector that fires no rule, while
// a visitor doing what the demo asks (2 s of dwell, two clicks; exit)
// does fire them.
func TestSeed(t *testing.T) {
	s, f := newShop(t)
	ctx := context.Background()
	if err := s.Seed(ctx); err != nil {
		t.Fatal(err)
	}
	if !s.Seeded() {
		t.Fatal("not seeded")
	}
	if n := len(f.find("PUT", "/v1/items/")); n != 60 {
		t.Fatalf("%d items put, want 60", n)
	}
	store := promotest.NewMem()
	clock := func() time.Time { return testNow }
	p, err := promo.New(ctx, promo.Config{Seed: 1, Now: clock}, promo.Deps{Store: store, Profiles: memVisitors{}})
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []promo.Kind{promo.KindOffer, promo.KindCampaign, promo.KindRule} {
		calls := f.find("PUT", "/v1/"+string(kind)+"/")
		if len(calls) == 0 {
			t.Fatalf("no %s put", kind)
		}
		for _, c := range calls {
			if _, _, err := p.PutJSON(ctx, kind, strings.TrimPrefix(c.path, "/v1/"+string(kind)+"/"), c.body); err != nil {
				t.Fatalf("%s %s: %v", kind, c.body, err)
			}
		}
	}
	var traffic []signals.Event
	for _, c := range f.find("POST", "/v1/events") {
		res, err := signals.DecodeBatch(bytes.NewReader(c.body), testNow, signals.Limits{})
		if err != nil || len(res.Rejected) > 0 {
			t.Fatalf("traffic batch: %v, rejected %+v", err, res.Rejected)
		}
		traffic = append(traffic, res.Accepted...)
	}
	if len(traffic) < 3000 {
		t.Fatalf("%d background events, want thousands", len(traffic))
	}
	if fired := replay(t, p, store, traffic); len(fired) > 0 {
		for v, ps := range fired {
			t.Fatalf("%d background visitors fired promotions, e.g. %s: %+v", len(fired), v, ps[0])
		}
	}

	at := func(d time.Duration) signals.Timestamp { return signals.Timestamp{Time: testNow.Add(d)} }
	page := testOrigin + "/shop/p/aud-01"
	fired := replay(t, p, store, []signals.Event{
		{ID: "u1", Type: "view", Visitor: "me", Item: "aud-01", Page: page, Time: at(0)},
		{ID: "u2", Type: "click", Visitor: "me", Item: "aud-01", Page: page, Time: at(time.Second)},
		{ID: "u3", Type: "dwell", Visitor: "me", Item: "aud-01", Page: page, Value: 2100, Time: at(3 * time.Second)},
		{ID: "u4", Type: "click", Visitor: "me", Item: "aud-01", Page: page, Time: at(4 * time.Second)},
		{ID: "x1", Type: "exit", Visitor: "leaver", Page: page, Time: at(0)},
	})
	if ps := fired["me"]; len(ps) != 1 || ps[0].Rule != "hero-interest" || ps[0].Slot != "hero" || !strings.HasPrefix(ps[0].Offer.Link, testOrigin+"/shop/c/") {
		t.Fatalf("dwell and two clicks fired %+v, want one hero-interest promotion in the hero slot", ps)
	}
	if ps := fired["leaver"]; len(ps) != 1 || ps[0].Offer.ID != "stay-10" {
		t.Fatalf("exit fired %+v, want stay-10", ps)
	}

	// A second seed (a restart) puts the definitions again but no traffic.
	posts := len(f.find("POST", "/v1/events"))
	if err := s.Seed(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(f.find("POST", "/v1/events")); n != posts {
		t.Fatalf("a second seed posted traffic again (%d batches, was %d)", n, posts)
	}
}

func TestConfig(t *testing.T) {
	for _, c := range []Config{
		{PublishableKey: testPK, Origin: testOrigin},
		{SecretKey: testSK, PublishableKey: testPK, Origin: "127.0.0.1:8080"},
		{SecretKey: testSK, PublishableKey: testPK, Origin: "http://127.0.0.1:8080/shop"},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}
