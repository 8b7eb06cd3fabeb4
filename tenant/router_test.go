package tenant

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine/storage"
	"github.com/kairoshq/kairos/engine/storage/storagetest"
	"github.com/kairoshq/kairos/signals"
)

const testAdmin = "admin_0123456789abcdef"

// fakeInstance answers every request with its tenant id and the key it
// saw; it counts its items.
type fakeInstance struct {
	release chan struct{} // closed to end the /slow requests
	maps    storage.Maps
	id      string
	items   int
	closed  bool
	stopped atomic.Bool
	// consume, when set, is called by Consume.
	consume func(id string, ctx context.Context, batch []signals.Event) error
}

func (f *fakeInstance) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-f.release
			writeJSON(w, http.StatusOK, map[string]string{"tenant": f.id})
			return
		}
		if r.URL.Path == "/v1/events" {
			b, _ := io.ReadAll(r.Body)
			var evs []any
			_ = json.Unmarshal(b, &evs)
			writeJSON(w, http.StatusAccepted, map[string]any{"accepted": len(evs)})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"tenant": f.id})
	})
}
func (f *fakeInstance) Items(context.Context) (int, error) { return f.items, nil }
func (f *fakeInstance) HasItem(_ context.Context, id string) (bool, error) {
	return id == "held", nil
}
func (f *fakeInstance) Maps() storage.Maps          { return f.maps }
func (f *fakeInstance) Close(context.Context) error { f.closed = true; return nil }
func (f *fakeInstance) Stopped() bool               { return f.stopped.Load() }
func (f *fakeInstance) Consume(ctx context.Context, batch []signals.Event) error {
	if f.consume == nil {
		return nil
	}
	return f.consume(f.id, ctx, batch)
}

type fakeLoader struct {
	release chan struct{}
	consume func(id string, ctx context.Context, batch []signals.Event) error
	mu      sync.Mutex
	stores  map[string]*storagetest.Mem
	loads   map[string]int
	purged  []string
	items   int
	insts   []*fakeInstance
}

func (l *fakeLoader) Load(_ context.Context, t Tenant) (Instance, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.loads == nil {
		l.loads = map[string]int{}
	}
	l.loads[t.ID]++
	if l.stores == nil {
		l.stores = map[string]*storagetest.Mem{}
	}
	if l.stores[t.ID] == nil {
		l.stores[t.ID] = storagetest.NewMem(nil)
	}
	f := &fakeInstance{id: t.ID, items: l.items, maps: l.stores[t.ID], release: l.release, consume: l.consume}
	l.insts = append(l.insts, f)
	return f, nil
}

func (l *fakeLoader) Purge(_ context.Context, id string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.purged = append(l.purged, id)
	return nil
}

func (l *fakeLoader) loadCount(id string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.loads[id]
}

type fixture struct {
	r      *Router
	loader *fakeLoader
	srv    *httptest.Server
	now    time.Time
}

func newFixture(t *testing.T, maxLoaded int) *fixture {
	t.Helper()
	return newFixtureWith(t, Config{MaxLoaded: maxLoaded})
}

// newFixtureWith builds the router with cfg (its registry, loader, admin
// key and clock set here).
func newFixtureWith(t *testing.T, cfg Config) *fixture {
	t.Helper()
	f := &fixture{loader: &fakeLoader{}, now: time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)}
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return f.now }
	reg := NewRegistry(storagetest.NewMem(clock), clock)
	cfg.AdminKey, cfg.Registry, cfg.Loader, cfg.Now = testAdmin, reg, f.loader, clock
	r, err := NewRouter(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.r = r
	f.srv = httptest.NewServer(r)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) do(t *testing.T, method, path, key, body string, want int) map[string]any {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, want, b)
	}
	var v map[string]any
	_ = json.Unmarshal(b, &v)
	return v
}

func (f *fixture) create(t *testing.T, spec string) (id, pk, sk string) {
	t.Helper()
	v := f.do(t, "POST", "/v1/tenants", testAdmin, spec, http.StatusCreated)
	keys := v["keys"].(map[string]any)
	return v["id"].(string), keys["publishable_key"].(string), keys["secret_key"].(string)
}

func TestAdminAPI(t *testing.T) {
	f := newFixture(t, 0)
	// The admin API needs the admin key, in the header.
	f.do(t, "GET", "/v1/tenants", "", "", http.StatusUnauthorized)
	f.do(t, "GET", "/v1/tenants", "wrong_key_0123456789", "", http.StatusUnauthorized)
	f.do(t, "GET", "/v1/tenants?key="+testAdmin, "", "", http.StatusUnauthorized)

	id, pk, sk := f.create(t, `{"id":"shop-a","name":"Shop A","quotas":{"items":10}}`)
	if id != "shop-a" || !strings.HasPrefix(pk, "pk_") || !strings.HasPrefix(sk, "sk_") {
		t.Fatalf("created %q %q %q", id, pk, sk)
	}
	f.do(t, "POST", "/v1/tenants", testAdmin, `{"id":"shop-a"}`, http.StatusConflict)
	f.do(t, "POST", "/v1/tenants", testAdmin, `{"id":"Bad Id"}`, http.StatusBadRequest)
	f.do(t, "POST", "/v1/tenants", testAdmin, `{"bogus":1}`, http.StatusBadRequest)
	// Origins are checked as kairos serve checks them: a tenant whose
	// server cannot be built is refused, not created to answer 503.
	for _, o := range []string{`"https://shop.example/"`, `"javascript:alert(1)"`, `""`, `"not a url"`} {
		e := f.do(t, "POST", "/v1/tenants", testAdmin, `{"id":"bad-origin","allowed_origins":[`+o+`]}`, http.StatusBadRequest)
		if msg := fmt.Sprint(e["error"]); !strings.Contains(msg, "allowed_origins[0]") {
			t.Errorf("origin %s: %s", o, msg)
		}
	}
	gen, _, _ := f.create(t, ``)
	if !ValidID(gen) {
		t.Fatalf("generated id %q is not valid", gen)
	}

	// Listings never show the secret key.
	list := f.do(t, "GET", "/v1/tenants", testAdmin, "", http.StatusOK)
	b, _ := json.Marshal(list)
	if strings.Contains(string(b), sk) {
		t.Fatalf("listing shows a secret key: %s", b)
	}
	if n := len(list["tenants"].([]any)); n != 2 {
		t.Fatalf("%d tenants listed, want 2", n)
	}
	one := f.do(t, "GET", "/v1/tenants/shop-a", testAdmin, "", http.StatusOK)
	if one["name"] != "Shop A" || one["status"] != "active" || one["secret_key_hint"] != sk[:7]+"…" {
		t.Fatalf("tenant: %v", one)
	}
	f.do(t, "GET", "/v1/tenants/nope", testAdmin, "", http.StatusNotFound)

	// A tenant's key is not the admin key.
	f.do(t, "GET", "/v1/tenants", sk, "", http.StatusUnauthorized)

	// Suspend, resume.
	f.do(t, "GET", "/v1/recommendations", sk, "", http.StatusOK)
	f.do(t, "POST", "/v1/tenants/shop-a/suspend", testAdmin, "", http.StatusOK)
	f.do(t, "GET", "/v1/recommendations", sk, "", http.StatusForbidden)
	if f.r.pool.IsLoaded("shop-a") {
		t.Fatal("suspended tenant still loaded")
	}
	f.do(t, "POST", "/v1/tenants/shop-a/resume", testAdmin, "", http.StatusOK)
	f.do(t, "GET", "/v1/recommendations", sk, "", http.StatusOK)

	// Rotation: the old keys stop working, the new ones work.
	rot := f.do(t, "POST", "/v1/tenants/shop-a/keys", testAdmin, "", http.StatusOK)
	nsk := rot["keys"].(map[string]any)["secret_key"].(string)
	if nsk == sk {
		t.Fatal("rotation kept the secret key")
	}
	f.do(t, "GET", "/v1/recommendations", sk, "", http.StatusUnauthorized)
	f.do(t, "GET", "/v1/recommendations", nsk, "", http.StatusOK)

	// Patch quotas; a bad origin is refused.
	f.do(t, "PATCH", "/v1/tenants/shop-a", testAdmin, `{"allowed_origins":["https://shop.example/"]}`, http.StatusBadRequest)
	p := f.do(t, "PATCH", "/v1/tenants/shop-a", testAdmin, `{"quotas":{"items":3}}`, http.StatusOK)
	if p["quotas"].(map[string]any)["items"] != 3.0 {
		t.Fatalf("patched: %v", p)
	}

	// Delete: purged, keys refused like any unknown key, gone from the list.
	f.do(t, "DELETE", "/v1/tenants/shop-a", testAdmin, "", http.StatusNoContent)
	if len(f.loader.purged) == 0 || slices.ContainsFunc(f.loader.purged, func(id string) bool { return id != "shop-a" }) {
		t.Fatalf("purged %v", f.loader.purged)
	}
	unknown := f.do(t, "GET", "/v1/recommendations", nsk, "", http.StatusUnauthorized)
	other := f.do(t, "GET", "/v1/recommendations", "sk_neverissued000000000000000000000", "", http.StatusUnauthorized)
	if fmt.Sprint(unknown) != fmt.Sprint(other) {
		t.Fatalf("a deleted tenant's key answers %v, an unknown key %v", unknown, other)
	}
	f.do(t, "GET", "/v1/tenants/shop-a", testAdmin, "", http.StatusNotFound)
	f.do(t, "DELETE", "/v1/tenants/shop-a", testAdmin, "", http.StatusNotFound)

	// A request that resolved the key before the deletion does not load
	// the tenant again; a new tenant of the same id loads.
	if _, _, err := f.r.pool.Acquire(context.Background(), Tenant{ID: "shop-a"}); err != errBlocked {
		t.Fatalf("acquire of a deleted tenant: %v", err)
	}
	_, _, sk2 := f.create(t, `{"id":"shop-a"}`)
	f.do(t, "GET", "/v1/recommendations", sk2, "", http.StatusOK)
}

func TestKeysResolveToTheirTenant(t *testing.T) {
	f := newFixture(t, 0)
	_, pkA, skA := f.create(t, `{"id":"a"}`)
	_, pkB, skB := f.create(t, `{"id":"b"}`)
	for _, c := range []struct{ key, want string }{{skA, "a"}, {skB, "b"}} {
		if got := f.do(t, "GET", "/v1/items", c.key, "", http.StatusOK)["tenant"]; got != c.want {
			t.Errorf("key of %s reached %v", c.want, got)
		}
	}
	// Publishable keys in the query and in the body of an events batch.
	for _, c := range []struct {
		path, body, want string
	}{
		{"/v1/pixel.gif?key=" + pkA, "", "a"},
		{"/v1/pixel.gif?key=" + pkB, "", "b"},
	} {
		if got := f.do(t, "GET", c.path, "", c.body, http.StatusOK)["tenant"]; got != c.want {
			t.Errorf("%s reached %v, want %s", c.path, got, c.want)
		}
	}
	v := f.do(t, "POST", "/v1/events", "", `{"key":"`+pkB+`","events":[]}`, http.StatusAccepted)
	if v["accepted"] == nil {
		t.Fatalf("body key not resolved: %v", v)
	}
	f.do(t, "GET", "/v1/items", "", "", http.StatusUnauthorized)
	f.do(t, "GET", "/v1/items", "sk_"+strings.Repeat("x", 32), "", http.StatusUnauthorized)
	f.do(t, "GET", "/healthz", "", "", http.StatusOK)
	f.do(t, "GET", "/readyz", "", "", http.StatusOK)
}

func TestLazyLoadingAndLRU(t *testing.T) {
	f := newFixture(t, 2)
	keys := map[string]string{}
	for _, id := range []string{"a", "b", "c"} {
		_, _, sk := f.create(t, `{"id":"`+id+`"}`)
		keys[id] = sk
	}
	if f.r.pool.Loaded() != 0 {
		t.Fatal("tenants loaded before any request")
	}
	f.do(t, "GET", "/v1/items", keys["a"], "", http.StatusOK)
	f.do(t, "GET", "/v1/items", keys["b"], "", http.StatusOK)
	f.do(t, "GET", "/v1/items", keys["a"], "", http.StatusOK) // a is now the most recent
	f.do(t, "GET", "/v1/items", keys["c"], "", http.StatusOK) // evicts b
	f.r.pool.wg.Wait()
	if f.r.pool.Loaded() != 2 || !f.r.pool.IsLoaded("a") || f.r.pool.IsLoaded("b") || !f.r.pool.IsLoaded("c") {
		t.Fatalf("loaded a=%v b=%v c=%v (%d)", f.r.pool.IsLoaded("a"), f.r.pool.IsLoaded("b"), f.r.pool.IsLoaded("c"), f.r.pool.Loaded())
	}
	f.do(t, "GET", "/v1/items", keys["b"], "", http.StatusOK) // reloaded
	if n := f.loader.loadCount("b"); n != 2 {
		t.Fatalf("b loaded %d times, want 2", n)
	}
	if n := f.loader.loadCount("a"); n != 1 {
		t.Fatalf("a loaded %d times, want 1", n)
	}
	f.r.pool.wg.Wait()
	closed := 0
	for _, in := range f.loader.insts {
		if in.closed {
			closed++
		}
	}
	if closed != 2 { // b, then a or c
		t.Fatalf("%d instances closed, want 2", closed)
	}
}

func TestQuotas(t *testing.T) {
	f := newFixture(t, 0)
	_, _, skA := f.create(t, `{"id":"a","quotas":{"requests_per_second":2,"events_per_day":5,"items":1}}`)
	_, _, skB := f.create(t, `{"id":"b"}`)

	// Rate: a burst of 2×2 tokens, then 429 with Retry-After; b unaffected.
	for range 4 {
		f.do(t, "GET", "/v1/recommendations", skA, "", http.StatusOK)
	}
	v := f.do(t, "GET", "/v1/recommendations", skA, "", http.StatusTooManyRequests)
	if msg := v["error"].(map[string]any)["message"].(string); !strings.Contains(msg, "2 requests/s") {
		t.Fatalf("message %q", msg)
	}
	for range 10 {
		f.do(t, "GET", "/v1/recommendations", skB, "", http.StatusOK)
	}
	f.now = f.now.Add(10 * time.Second)

	// Events per day: 3 + 3 accepted (the batch crossing the quota
	// passes), then refused until the next UTC day.
	f.do(t, "POST", "/v1/events", skA, `[{},{},{}]`, http.StatusAccepted)
	f.do(t, "POST", "/v1/events", skA, `[{},{},{}]`, http.StatusAccepted)
	v = f.do(t, "POST", "/v1/events", skA, `[{}]`, http.StatusTooManyRequests)
	if msg := v["error"].(map[string]any)["message"].(string); !strings.Contains(msg, "5 events per day") {
		t.Fatalf("message %q", msg)
	}
	if got := f.do(t, "GET", "/v1/tenants/a", testAdmin, "", http.StatusOK)["events_today"]; got != 6.0 {
		t.Fatalf("events_today %v, want 6", got)
	}
	f.now = f.now.Add(24 * time.Hour)
	f.do(t, "POST", "/v1/events", skA, `[{}]`, http.StatusAccepted)

	// Items: the fake catalog holds 0, then 1 (the quota).
	f.do(t, "POST", "/v1/items", skA, `{}`, http.StatusOK)
	f.loader.mu.Lock()
	for _, in := range f.loader.insts {
		in.items = 1
	}
	f.loader.mu.Unlock()
	v = f.do(t, "POST", "/v1/items", skA, `{}`, http.StatusTooManyRequests)
	if msg := v["error"].(map[string]any)["message"].(string); !strings.Contains(msg, "1 catalog items") {
		t.Fatalf("message %q", msg)
	}
	// A PUT creating an entry is held to it too; one replacing an entry
	// is not.
	f.now = f.now.Add(10 * time.Second) // past the rate quota
	v = f.do(t, "PUT", "/v1/items/new-one", skA, `{}`, http.StatusTooManyRequests)
	if msg := v["error"].(map[string]any)["message"].(string); !strings.Contains(msg, "1 catalog items") {
		t.Fatalf("PUT of a new item: %q", msg)
	}
	f.do(t, "PUT", "/v1/items/held", skA, `{}`, http.StatusOK)
	f.do(t, "POST", "/v1/items", skB, `{}`, http.StatusOK)
}

func TestMetricsLabelsAreBounded(t *testing.T) {
	m := newMetrics(nil, 2)
	got := []string{m.label("a"), m.label("b"), m.label("c"), m.label("a")}
	if fmt.Sprint(got) != "[a b other a]" {
		t.Fatalf("labels %v", got)
	}
}

// TestFailedInstanceIsReloaded: a tenant whose server stopped on its own
// is loaded again on its next request.
func TestFailedInstanceIsReloaded(t *testing.T) {
	f := newFixture(t, 0)
	_, _, sk := f.create(t, `{"id":"a"}`)
	f.do(t, "GET", "/v1/items", sk, "", http.StatusOK)
	f.loader.mu.Lock()
	first := f.loader.insts[0]
	f.loader.mu.Unlock()
	first.stopped.Store(true)
	f.do(t, "GET", "/v1/items", sk, "", http.StatusOK)
	f.r.pool.wg.Wait()
	if n := f.loader.loadCount("a"); n != 2 || !first.closed {
		t.Fatalf("loads %d (want 2), failed instance closed %v", n, first.closed)
	}
	f.do(t, "GET", "/v1/items", sk, "", http.StatusOK)
	if n := f.loader.loadCount("a"); n != 2 {
		t.Fatalf("loads %d after a healthy request, want 2", n)
	}
}

func TestVisitorsQuota(t *testing.T) {
	f := newFixture(t, 0)
	_, pk, sk := f.create(t, `{"id":"a","quotas":{"visitors":3}}`)
	f.do(t, "POST", "/v1/events", sk, `[{"visitor":"v1"},{"visitor":"v2"},{"visitor":"v1"}]`, http.StatusAccepted)
	f.do(t, "POST", "/v1/events", sk, `{"events":[{"visitor":"v3"}]}`, http.StatusAccepted)
	v := f.do(t, "POST", "/v1/events", sk, `[{"visitor":"v1"},{"visitor":"v4"}]`, http.StatusTooManyRequests)
	if msg := v["error"].(map[string]any)["message"].(string); !strings.Contains(msg, "quota of 3 visitors reached (3 known)") {
		t.Fatalf("message %q", msg)
	}
	f.do(t, "POST", "/v1/events", sk, `[{"visitor":"v1"},{"visitor":"v3"}]`, http.StatusAccepted) // known ones pass
	f.do(t, "GET", "/v1/pixel.gif?key="+pk+"&visitor=v2", "", "", http.StatusOK)
	f.do(t, "GET", "/v1/pixel.gif?key="+pk+"&visitor=v9", "", "", http.StatusTooManyRequests)
	// An identify names a device: a new one is held to the quota too.
	f.do(t, "POST", "/v1/identify", sk, `{"anonymous_id":"v1","user_id":"u1"}`, http.StatusOK)
	f.do(t, "POST", "/v1/identify", sk, `{"anonymous_id":"v7","user_id":"u1"}`, http.StatusTooManyRequests)
	// The count is in the tenant's store: it survives a reload.
	f.r.pool.Unload(context.Background(), "a")
	f.do(t, "POST", "/v1/events", sk, `[{"visitor":"v5"}]`, http.StatusTooManyRequests)
}

// TestMaxInFlight: a tenant flooding with slow requests gets 429 beyond
// the bound at once; another tenant is served meanwhile.
func TestMaxInFlight(t *testing.T) {
	f := newFixtureWith(t, Config{MaxInFlight: 2})
	f.loader.release = make(chan struct{})
	_, _, skA := f.create(t, `{"id":"a"}`)
	_, _, skB := f.create(t, `{"id":"b"}`)
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/slow", nil)
			req.Header.Set("Authorization", "Bearer "+skA)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("slow request: %d", resp.StatusCode)
			}
		}()
	}
	for f.r.quotas.get("a", Quotas{}).inFlight.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	v := f.do(t, "GET", "/v1/items", skA, "", http.StatusTooManyRequests)
	if msg := v["error"].(map[string]any)["message"].(string); !strings.Contains(msg, "2 requests in flight") {
		t.Fatalf("message %q", msg)
	}
	f.do(t, "GET", "/v1/items", skB, "", http.StatusOK)
	close(f.loader.release)
	wg.Wait()
	f.do(t, "GET", "/v1/items", skA, "", http.StatusOK)
}

// TestEventsPerSecond: the events-per-second quota is charged with the
// events each request accepted; once overdrawn, event requests get 429
// with Retry-After before reaching the tenant's server, until the debt is
// earned back; other requests and other tenants pass.
func TestEventsPerSecond(t *testing.T) {
	f := newFixture(t, 0)
	_, _, skA := f.create(t, `{"id":"a","quotas":{"events_per_second":10}}`)
	_, _, skB := f.create(t, `{"id":"b"}`)
	batch := func(n int) string { return "[" + strings.TrimSuffix(strings.Repeat("{},", n), ",") + "]" }

	f.do(t, "POST", "/v1/events", skA, batch(8), http.StatusAccepted)  // 10 → 2
	f.do(t, "POST", "/v1/events", skA, batch(22), http.StatusAccepted) // 2 → -20: passes, overdraws
	v := f.do(t, "POST", "/v1/events", skA, batch(1), http.StatusTooManyRequests)
	if msg := v["error"].(map[string]any)["message"].(string); !strings.Contains(msg, "10 events/s") {
		t.Fatalf("message %q", msg)
	}
	f.do(t, "GET", "/v1/recommendations", skA, "", http.StatusOK) // not an event request
	f.do(t, "POST", "/v1/events", skB, batch(100), http.StatusAccepted)
	f.now = f.now.Add(time.Second) // -20 → -10
	f.do(t, "POST", "/v1/events", skA, batch(1), http.StatusTooManyRequests)
	f.now = f.now.Add(time.Second) // → 0
	f.do(t, "POST", "/v1/events", skA, batch(1), http.StatusAccepted)
	f.now = f.now.Add(time.Hour) // refills to one second's worth, no more
	f.do(t, "POST", "/v1/events", skA, batch(11), http.StatusAccepted)
	f.do(t, "POST", "/v1/events", skA, batch(1), http.StatusTooManyRequests)
}

// TestKeyRotationGrace: a rotation with a grace keeps the old keys valid
// until it ends (then they are unknown keys); the deployment's default
// grace applies when the rotation does not say; a second rotation ends
// the first one's grace at once.
func TestKeyRotationGrace(t *testing.T) {
	f := newFixtureWith(t, Config{KeyGrace: time.Minute})
	_, pk, sk := f.create(t, `{"id":"shop-a"}`)

	rot := f.do(t, "POST", "/v1/tenants/shop-a/keys", testAdmin, `{"grace_seconds":3600}`, http.StatusOK)
	nsk := rot["keys"].(map[string]any)["secret_key"].(string)
	if rot["previous_keys_until"] == nil {
		t.Fatalf("no previous_keys_until in %v", rot)
	}
	f.do(t, "GET", "/v1/recommendations", sk, "", http.StatusOK)
	f.do(t, "GET", "/v1/recommendations?key="+pk, "", "", http.StatusOK)
	f.do(t, "GET", "/v1/recommendations", nsk, "", http.StatusOK)
	f.now = f.now.Add(59 * time.Minute)
	f.do(t, "GET", "/v1/recommendations", sk, "", http.StatusOK)
	f.now = f.now.Add(time.Minute)
	f.do(t, "GET", "/v1/recommendations", sk, "", http.StatusUnauthorized)
	f.do(t, "GET", "/v1/recommendations", nsk, "", http.StatusOK)
	if g := f.do(t, "GET", "/v1/tenants/shop-a", testAdmin, "", http.StatusOK); g["previous_keys_until"] != nil {
		t.Errorf("previous_keys_until shown after the grace: %v", g)
	}

	// The default grace (a minute), then a rotation without grace ends it.
	rot = f.do(t, "POST", "/v1/tenants/shop-a/keys", testAdmin, "", http.StatusOK)
	nsk2 := rot["keys"].(map[string]any)["secret_key"].(string)
	f.now = f.now.Add(30 * time.Second)
	f.do(t, "GET", "/v1/recommendations", nsk, "", http.StatusOK)
	f.do(t, "POST", "/v1/tenants/shop-a/keys", testAdmin, `{"grace_seconds":0}`, http.StatusOK)
	f.do(t, "GET", "/v1/recommendations", nsk, "", http.StatusUnauthorized)
	f.do(t, "GET", "/v1/recommendations", nsk2, "", http.StatusUnauthorized)
	f.do(t, "POST", "/v1/tenants/shop-a/keys", testAdmin, `{"grace_seconds":-1}`, http.StatusBadRequest)
}

// TestEventsPerDayShared: two replicas sharing the deployment's store
// count a tenant's events per day together: what one accepted counts
// against the other's quota once shared (every QuotaSyncEvery), and the
// counts go with the tenant.
func TestEventsPerDayShared(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	docs, counters := storagetest.NewMem(clock), storagetest.NewMem(clock)
	reg := NewRegistry(docs, clock)
	var routers []*Router
	var srvs []*httptest.Server
	for range 2 {
		r, err := NewRouter(Config{AdminKey: testAdmin, Registry: reg, Loader: &fakeLoader{}, Counters: counters, Now: clock})
		if err != nil {
			t.Fatal(err)
		}
		routers = append(routers, r)
		srv := httptest.NewServer(r)
		t.Cleanup(srv.Close)
		srvs = append(srvs, srv)
	}
	f := &fixture{r: routers[0], srv: srvs[0]}
	_, _, sk := f.create(t, `{"id":"a","quotas":{"events_per_day":10}}`)
	f2 := &fixture{r: routers[1], srv: srvs[1]}
	if err := routers[1].Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	sync := func() { // two rounds: each replica adds its own, then reads everyone's
		t.Helper()
		for range 2 {
			for _, r := range routers {
				if err := r.quotas.sync(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	f.do(t, "POST", "/v1/events", sk, `[{},{},{},{},{},{}]`, http.StatusAccepted)
	sync()
	f2.do(t, "POST", "/v1/events", sk, `[{},{},{},{},{},{}]`, http.StatusAccepted) // 6 < 10: crosses
	f2.do(t, "POST", "/v1/events", sk, `[{}]`, http.StatusTooManyRequests)
	sync()
	f.do(t, "POST", "/v1/events", sk, `[{}]`, http.StatusTooManyRequests)
	if got := f.do(t, "GET", "/v1/tenants/a", testAdmin, "", http.StatusOK)["events_today"]; got != 12.0 {
		t.Fatalf("events_today %v, want 12 (both replicas)", got)
	}
	// A replica that never saw the tenant reads the shared count first.
	r3, err := NewRouter(Config{AdminKey: testAdmin, Registry: reg, Loader: &fakeLoader{}, Counters: counters, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	if err := r3.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv3 := httptest.NewServer(r3)
	t.Cleanup(srv3.Close)
	f3 := &fixture{r: r3, srv: srv3}
	// Its admin view shows the shared count before any request (a
	// restarted replica showed 0).
	if got := f3.do(t, "GET", "/v1/tenants/a", testAdmin, "", http.StatusOK)["events_today"]; got != 12.0 {
		t.Fatalf("events_today on a replica that served no request %v, want 12", got)
	}
	f3.do(t, "POST", "/v1/events", sk, `[{}]`, http.StatusTooManyRequests)
	// The next UTC day starts from 0.
	now = now.Add(24 * time.Hour)
	f.do(t, "POST", "/v1/events", sk, `[{}]`, http.StatusAccepted)
	// Deleting the tenant deletes its counts.
	f.do(t, "DELETE", "/v1/tenants/a", testAdmin, "", http.StatusNoContent)
	m, err := counters.Maps(context.Background(), []string{eventsKey("a")})
	if err != nil || m[0] != nil {
		t.Fatalf("counts of the deleted tenant: %v %v", m, err)
	}
}

// TestEventsPerSecondReserves: admission reserves a request's average
// events, so requests in flight together cannot all pass before the
// first is charged.
func TestEventsPerSecondReserves(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	q := &quotaState{now: func() time.Time { return now }}
	r, _, ok := q.eventsAllowed(1000)
	if !ok {
		t.Fatal("first request refused")
	}
	q.settleEvents(100, r, 1000) // the average is 100 from now on
	now = now.Add(time.Second)   // full again: 1000
	passed := 0
	for range 50 { // in flight together: none settled yet
		if _, _, ok := q.eventsAllowed(1000); ok {
			passed++
		}
	}
	if passed != 11 { // 1000, 900, …, 0 pass; -100 does not
		t.Fatalf("%d concurrent requests of 100 events passed a quota of 1000 events/s, want 11", passed)
	}
}
