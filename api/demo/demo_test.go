package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
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
		if r.URL.Query().Get("visitor") != trendingVisitor {
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

// visitorCookies loads a page and returns the visitor cookies the shop
// set, and the visitor id.
func visitorCookies(t *testing.T, s *Shop, cookies ...*http.Cookie) ([]*http.Cookie, string) {
	t.Helper()
	w := get(t, s, "/shop/c/audio", cookies...)
	got := w.Result().Cookies()
	var id string
	for _, c := range got {
		if c.Name == visitorCookie {
			id = c.Value
		}
	}
	return got, id
}

func TestRecommendationsProxy(t *testing.T) {
	s, f := newShop(t)
	cookies, visitor := visitorCookies(t, s)
	if len(cookies) != 2 || visitor == "" {
		t.Fatalf("cookies %v", cookies)
	}
	w := get(t, s, "/shop/api/recommendations?n=4&item=aud-01", cookies...)
	var got struct {
		Visitor, Strategy string
		Items             []card
	}
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if got.Visitor != visitor || got.Strategy != "als" || len(got.Items) != 2 || got.Items[1].ID != "aud-02" || got.Items[1].Because == "" {
		t.Fatalf("answer %+v (unknown items are left out, because names the product)", got)
	}
	calls := f.find("GET", "/v1/recommendations")
	last := calls[len(calls)-1]
	if !strings.Contains(last.query, "visitor="+visitor) || !strings.Contains(last.query, "item=aud-01") || !strings.Contains(last.query, "n=4") {
		t.Errorf("query %s", last.query)
	}
	// No cookie: no visitor, nothing asked.
	n := len(f.find("GET", "/v1/recommendations"))
	w = get(t, s, "/shop/api/recommendations")
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"items":[]`) || len(f.find("GET", "/v1/recommendations")) != n {
		t.Errorf("without a visitor: %d %s", w.Code, w.Body)
	}
}

// TestRecommendationsProxyRefusesForeignVisitors: the proxy asks Kairos
// with the secret key, so it asks only about visitor ids the shop minted
// and signed; a cookie naming any other visitor, a user, or carrying
// another visitor's (or another shop's) signature is 403 and nothing is
// asked.
func TestRecommendationsProxyRefusesForeignVisitors(t *testing.T) {
	s, f := newShop(t)
	mine, _ := visitorCookies(t, s)
	sigOf := func(cs []*http.Cookie) string {
		for _, c := range cs {
			if c.Name == signatureCookie {
				return c.Value
			}
		}
		t.Fatal("no signature cookie")
		return ""
	}
	other, err := New(Config{SecretKey: "sk_another_shop_key", PublishableKey: testPK, Origin: testOrigin})
	if err != nil {
		t.Fatal(err)
	}
	forged := other.signer.sign("victim")
	for _, tt := range []struct {
		name    string
		cookies []*http.Cookie
	}{
		{"no signature", []*http.Cookie{{Name: visitorCookie, Value: "victim"}}},
		{"another visitor's signature", []*http.Cookie{{Name: visitorCookie, Value: "victim"}, {Name: signatureCookie, Value: sigOf(mine)}}},
		{"another shop's signature", []*http.Cookie{{Name: visitorCookie, Value: "victim"}, {Name: signatureCookie, Value: forged}}},
		{"a user", []*http.Cookie{{Name: visitorCookie, Value: "user:u-42"}, {Name: signatureCookie, Value: s.signer.sign("user:u-42")}}},
		{"garbage signature", []*http.Cookie{{Name: visitorCookie, Value: "victim"}, {Name: signatureCookie, Value: "!!"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := len(f.find("GET", "/v1/recommendations"))
			w := get(t, s, "/shop/api/recommendations", tt.cookies...)
			if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "not issued by this shop") {
				t.Errorf("%d %s, want 403", w.Code, w.Body)
			}
			if len(f.find("GET", "/v1/recommendations")) != n {
				t.Errorf("Kairos was asked about a foreign visitor")
			}
			// A page replaces the cookie with a minted one.
			cs, id := visitorCookies(t, s, tt.cookies...)
			if id == "" || id == "victim" || strings.HasPrefix(id, "user:") || len(cs) != 2 {
				t.Errorf("page kept or set %v", cs)
			}
		})
	}
}

// TestVisitorCookie: a page mints a visitor id (the tracker's format) in
// kairos_vid, readable by the tracker, with its signature in an HttpOnly
// cookie, and keeps them once set; the 404 page too.
func TestVisitorCookie(t *testing.T) {
	s, _ := newShop(t)
	w := get(t, s, "/")
	cs := w.Result().Cookies()
	if len(cs) != 2 {
		t.Fatalf("cookies %v", cs)
	}
	byName := map[string]*http.Cookie{}
	for _, c := range cs {
		byName[c.Name] = c
		if c.Path != "/" || c.MaxAge < 300*24*3600 || c.SameSite != http.SameSiteLaxMode {
			t.Errorf("cookie %s: %v", c.Name, c)
		}
	}
	vid, sig := byName[visitorCookie], byName[signatureCookie]
	if vid == nil || sig == nil || vid.HttpOnly || !sig.HttpOnly {
		t.Fatalf("want %s readable by scripts and %s HttpOnly: %v", visitorCookie, signatureCookie, cs)
	}
	if ok, _ := regexp.MatchString(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, vid.Value); !ok {
		t.Errorf("visitor id %q is not a UUID v4", vid.Value)
	}
	if w := get(t, s, "/shop/p/aud-01", vid, sig); len(w.Result().Cookies()) != 0 {
		t.Errorf("a signed visitor got new cookies %v", w.Result().Cookies())
	}
	w = get(t, s, "/shop/nowhere")
	if w.Code != 404 || len(w.Result().Cookies()) != 2 {
		t.Errorf("404 page: %d, cookies %v", w.Code, w.Result().Cookies())
	}
	_, other := visitorCookies(t, s)
	if other == vid.Value {
		t.Errorf("two visitors got the same id %s", other)
	}
}

// TestProxyRateLimits: the shop calls the API at most ClientRate for one
// client and TotalRate in all; beyond, the proxy answers 429 with
// Retry-After and pages render without asking.
func TestProxyRateLimits(t *testing.T) {
	s, err := New(Config{SecretKey: testSK, PublishableKey: testPK, Origin: testOrigin, Now: func() time.Time { return testNow },
		ClientRate: Rate{PerSecond: 0.5, Burst: 2}, TotalRate: Rate{PerSecond: 0.1, Burst: 4},
		ClientIP: func(r *http.Request) string { return r.Header.Get("X-Test-Client") }})
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeAPI{items: map[string]bool{}, cat: s.Catalog()}
	s.SetAPI(f)
	cookies, _ := visitorCookies(t, s) // the category page asks nothing
	as := func(client, path string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", path, nil)
		r.Header.Set("X-Test-Client", client)
		for _, c := range cookies {
			r.AddCookie(c)
		}
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		return w
	}
	apiCalls := func() int { return len(f.find("GET", "/v1/")) }
	for i := range 2 {
		if w := as("a", "/shop/api/recommendations"); w.Code != 200 {
			t.Fatalf("a's request %d: %d %s", i, w.Code, w.Body)
		}
	}
	w := as("a", "/shop/api/recommendations")
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "2" || !strings.Contains(w.Body.String(), "too many requests") {
		t.Fatalf("a's third request: %d, Retry-After %q, %s; want 429 after 2 s", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
	// A page over a's budget renders without trending, asking nothing.
	n := apiCalls()
	if w := as("a", "/"); w.Code != 200 || apiCalls() != n || strings.Contains(w.Body.String(), `data-kairos-item="snk-01"`) {
		t.Errorf("home over the budget: %d, %d API calls", w.Code, apiCalls()-n)
	}
	if w := as("a", "/shop/p/aud-01"); w.Code != 200 || apiCalls() != n || !strings.Contains(w.Body.String(), `data-kairos-item="aud-02"`) {
		t.Errorf("product page over the budget: %d, %d API calls (want the category's products as similar)", w.Code, apiCalls()-n)
	}
	// Another client has its own budget, within the shop's total (4).
	for i := range 2 {
		if w := as("b", "/shop/api/recommendations"); w.Code != 200 {
			t.Fatalf("b's request %d: %d %s", i, w.Code, w.Body)
		}
	}
	if w := as("c", "/shop/api/recommendations"); w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "10" {
		t.Errorf("c beyond the shop's total: %d, Retry-After %q; want 429 after 10 s", w.Code, w.Header().Get("Retry-After"))
	}
	if n := len(f.find("GET", "/v1/recommendations")); n != 4 {
		t.Errorf("%d recommendation calls, want 4 (the total burst)", n)
	}
}

// TestSecurityHeaders: every answer of the shop carries the CSP, nosniff
// and frame headers; static files are served, directories never listed.
func TestSecurityHeaders(t *testing.T) {
	s, _ := newShop(t)
	for _, path := range []string{"/", "/shop/c/audio", "/shop/p/aud-01", "/shop/img/aud-01.svg", "/shop/static/site.js",
		"/shop/api/status", "/shop/api/recommendations", "/nowhere", "/shop/static/"} {
		h := get(t, s, path).Header()
		csp := h.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "script-src 'self';", "connect-src 'self'", "frame-ancestors 'none'",
			"img-src 'self' " + testOrigin + ";", "object-src 'none'", "base-uri 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-eval") || strings.Contains(strings.SplitN(strings.SplitN(csp, "script-src", 2)[1], ";", 2)[0], "unsafe-inline") {
			t.Errorf("%s: CSP allows inline script or eval: %q", path, csp)
		}
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s: nosniff %q, frame options %q", path, h.Get("X-Content-Type-Options"), h.Get("X-Frame-Options"))
		}
	}
	for _, path := range []string{"/shop/static/", "/shop/static", "/shop/static/..", "/shop/static/./", "/shop/img/", "/shop/static/nope.js"} {
		w := get(t, s, path)
		if loc := w.Header().Get("Location"); w.Code/100 == 3 && loc != "" { // the mux cleans the path first
			w = get(t, s, loc)
		}
		if w.Code != 404 || strings.Contains(w.Body.String(), `href="site.css"`) {
			t.Errorf("%s: %d, want the 404 page and no listing\n%.300s", path, w.Code, w.Body)
		}
	}
	w := get(t, s, "/shop/static/site.js")
	if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/javascript") || !strings.Contains(w.Body.String(), "loadRecs") {
		t.Errorf("site.js: %d %q", w.Code, w.Header().Get("Content-Type"))
	}
	// Pages have no inline script (the CSP would block it).
	body := get(t, s, "/shop/p/aud-01").Body.String()
	if regexp.MustCompile(`<script(?:\s[^>]*)?>[^<]`).MatchString(body) || regexp.MustCompile(`\son[a-z]+=`).MatchString(body) {
		t.Errorf("inline script in the product page")
	}
}

// memVisitors is a promo.Profiles of visitors the model does not know.
type memVisitors struct{}

func (memVisitors) VisitorFactors(context.Context, string, string) ([]float32, error) {
	return nil, nil
}

// replay feeds events to a promo engine one by one, as the engine would
// (history and a session per visitor), and returns the promotions fired.
func replay(t *testing.T, p *promo.Engine, store *promo.BackendStore, evs []signals.Event) map[string][]promo.Promotion {
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
