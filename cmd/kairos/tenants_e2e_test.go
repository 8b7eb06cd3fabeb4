package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/kairoshq/kairos/internal/redisconn"
)

const testAdminKey = "adm_test_0123456789abcdef"

// tenantTestServer is `kairos serve --admin-key` running in process.
type tenantTestServer struct {
	srv     *tenantServer
	cfg     serveConfig
	base    string
	cancel  context.CancelFunc
	done    chan error
	stopped bool
}

// startTenants starts kairos serve in multi-tenant mode (embedded unless
// flags say otherwise) on a free loopback port.
func startTenants(t *testing.T, flags ...string) *tenantTestServer {
	t.Helper()
	args := append([]string{"--admin-key", testAdminKey, "--log-level", "warn", "--publishable-rate", "100000",
		"--data-dir", t.TempDir(), "--blend-below", "1", "--amqp-url", "", "--redis-url", "", "--namespace", "kairos"}, flags...)
	cfg, err := parseServeConfig(args, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := newTenantServer(ctx, cfg, io.Discard)
	if err != nil {
		cancel()
		ln.Close()
		t.Fatal(err)
	}
	s.listener = ln
	ts := &tenantTestServer{srv: s, cfg: cfg, base: "http://" + ln.Addr().String(), cancel: cancel, done: make(chan error, 1)}
	go func() { ts.done <- s.Run(ctx) }()
	t.Cleanup(func() { ts.stop(t) })
	return ts
}

func (s *tenantTestServer) stop(t testing.TB) {
	if s.stopped {
		return
	}
	s.stopped = true
	s.cancel()
	if err := <-s.done; err != nil {
		t.Errorf("server stopped with %v", err)
	}
	s.srv.Close()
}

// do sends method path with key (Bearer; "" none) and body (nil: none),
// fails t unless the status is want, and decodes the JSON answer.
func (s *tenantTestServer) do(t testing.TB, method, path, key string, body any, want int) map[string]any {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, s.base+path, rd)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	b := sendExpect(t, req, want)
	var out map[string]any
	if len(b) > 0 {
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
	return out
}

// waitApplied waits until n events of tenant id are applied. With
// RabbitMQ they are consumed after the POST, and the shared partitions'
// dispatcher counts them once the tenant's engine applied them; embedded,
// the POST answers once they are applied.
func (s *tenantTestServer) waitApplied(t *testing.T, id string, n float64) {
	t.Helper()
	if s.cfg.AMQPURL == "" {
		return
	}
	waitFor(t, 30*time.Second, "every event of tenant "+id+" applied", func() bool {
		return metricValue(s.adminMetrics(t), `kairos_tenant_consumed_events_total{outcome="applied",tenant="`+id+`"}`) >= n
	})
}

// testTenant is a created tenant's keys.
type testTenant struct{ id, pk, sk string }

func (s *tenantTestServer) createTenant(t testing.TB, id string) testTenant {
	t.Helper()
	v := s.do(t, "POST", "/v1/tenants", testAdminKey, map[string]any{"id": id, "name": "Shop " + id}, http.StatusCreated)
	k := v["keys"].(map[string]any)
	return testTenant{id: id, pk: k["publishable_key"].(string), sk: k["secret_key"].(string)}
}

func (s *tenantTestServer) recs(t testing.TB, tt testTenant, visitor string) []string {
	t.Helper()
	v := s.do(t, "GET", "/v1/recommendations?n=4&visitor="+visitor, tt.sk, nil, http.StatusOK)
	var items []string
	for _, it := range v["items"].([]any) {
		items = append(items, it.(map[string]any)["item"].(string))
	}
	slices.Sort(items)
	return items
}

// tenantEvents: visitors u0..u29 each view i0 and three items of set;
// the probe visitor p views i0 only. The same visitor and item ids in
// every tenant, with a different co-occurrence of each.
func tenantEvents(tenant string, set []string) []map[string]any {
	var evs []map[string]any
	ts := time.Now().Add(-time.Hour)
	n := 0
	add := func(visitor, item string) {
		evs = append(evs, map[string]any{"id": fmt.Sprintf("%s-%d", tenant, n), "type": "click", "visitor": visitor, "item": item,
			"ts": ts.Add(time.Duration(n) * time.Millisecond).UnixMilli()})
		n++
	}
	for v := range 30 {
		visitor := fmt.Sprintf("u%d", v)
		add(visitor, "i0")
		for j := range 3 {
			add(visitor, set[(v+j)%len(set)])
		}
	}
	add("p", "i0")
	return evs
}

// TestTenantsIsolation is issue 17's acceptance on both stores: three
// tenants with the same visitor and item ids get different
// recommendations; a tenant's key never reaches another's data; with at
// most two tenants loaded, a sleeping tenant reloads from its store; a
// deleted tenant leaves no key, queue or file behind.
func TestTenantsIsolation(t *testing.T) {
	t.Run("embedded", func(t *testing.T) {
		s := startTenants(t, "--tenant-max-loaded", "2")
		testTenantsIsolation(t, s, "")
	})
	t.Run("rabbitmq+redis", func(t *testing.T) {
		requireServices(t)
		ns := tenantsTestNamespace(t, "a", "b", "c")
		s := startTenants(t, "--tenant-max-loaded", "2", "--amqp-url", amqpURL(), "--redis-url", redisURL(), "--namespace", ns, "--tenant-partitions", "2")
		testTenantsIsolation(t, s, ns)
	})
}

func testTenantsIsolation(t *testing.T, s *tenantTestServer, ns string) {
	sets := map[string][]string{"a": {"i1", "i2", "i3", "i4"}, "b": {"i5", "i6", "i7", "i8"}, "c": {"i1", "i3", "i5", "i7"}}
	tenants := map[string]testTenant{}
	for _, id := range []string{"a", "b", "c"} {
		tenants[id] = s.createTenant(t, id)
	}
	for _, id := range []string{"a", "b", "c"} {
		v := s.do(t, "POST", "/v1/events", tenants[id].pk, tenantEvents(id, sets[id]), http.StatusOK)
		if v["accepted"] != 121.0 {
			t.Fatalf("tenant %s: %v", id, v)
		}
	}
	for _, id := range []string{"a", "b", "c"} {
		s.waitApplied(t, id, 121)
	}
	got := map[string][]string{}
	for _, id := range []string{"a", "b", "c"} {
		waitFor(t, 30*time.Second, "recommendations of tenant "+id, func() bool {
			r := s.recs(t, tenants[id], "p")
			if len(r) == 0 {
				return false
			}
			for _, it := range r {
				if !slices.Contains(sets[id], it) {
					return false // still in flight, or leaked: checked below
				}
			}
			got[id] = r
			return true
		})
	}
	t.Logf("recommendations for the same visitor p: a %v, b %v, c %v", got["a"], got["b"], got["c"])
	if slices.Equal(got["a"], got["b"]) || slices.Equal(got["a"], got["c"]) || slices.Equal(got["b"], got["c"]) {
		t.Fatalf("tenants share recommendations: %v", got)
	}

	// A catalog item of b only: b's key sees it, a's key gets the 404 of
	// an item that does not exist.
	a, b, c := tenants["a"], tenants["b"], tenants["c"]
	s.do(t, "POST", "/v1/items", b.sk, map[string]any{"id": "only-b", "title": "B's"}, http.StatusCreated)
	s.do(t, "GET", "/v1/items/only-b", b.sk, nil, http.StatusOK)
	notB := s.do(t, "GET", "/v1/items/only-b", a.sk, nil, http.StatusNotFound)
	never := s.do(t, "GET", "/v1/items/never-created", a.sk, nil, http.StatusNotFound)
	if fmt.Sprint(notB["error"].(map[string]any)["code"]) != fmt.Sprint(never["error"].(map[string]any)["code"]) {
		t.Fatalf("another tenant's item answers %v, a missing item %v", notB, never)
	}
	// Tenant keys are not admin keys; publishable keys stay publishable.
	s.do(t, "GET", "/v1/tenants", a.sk, nil, http.StatusUnauthorized)
	s.do(t, "GET", "/v1/recommendations?visitor=p", a.pk, nil, http.StatusForbidden)

	// At most two tenants are loaded: a was evicted, and reloads from its
	// store with the same model.
	if s.srv.router.Pool().Loaded() > 2 {
		t.Fatalf("%d tenants loaded, max 2", s.srv.router.Pool().Loaded())
	}
	s.recs(t, b, "p")
	s.recs(t, c, "p")
	waitFor(t, 10*time.Second, "a unloaded", func() bool { return !s.srv.router.Pool().IsLoaded("a") })
	if r := s.recs(t, a, "p"); !slices.Equal(r, got["a"]) {
		t.Fatalf("tenant a after a reload: %v, before %v", r, got["a"])
	}

	// Deleting c removes every key, queue and file of it; its keys are
	// then unknown, and a and b are untouched.
	s.do(t, "DELETE", "/v1/tenants/c", testAdminKey, nil, http.StatusNoContent)
	s.do(t, "GET", "/v1/recommendations?visitor=p", c.sk, nil, http.StatusUnauthorized)
	assertTenantGone(t, s.cfg, "c")
	if r := s.recs(t, b, "p"); !slices.Equal(r, got["b"]) {
		t.Fatalf("tenant b after c's deletion: %v, before %v", r, got["b"])
	}
	list := s.do(t, "GET", "/v1/tenants", testAdminKey, nil, http.StatusOK)
	if n := len(list["tenants"].([]any)); n != 2 {
		t.Fatalf("%d tenants listed after a deletion, want 2", n)
	}
}

// assertTenantGone fails t if any file, Redis key or RabbitMQ queue or
// exchange of the tenant id remains.
func assertTenantGone(t *testing.T, cfg serveConfig, id string) {
	t.Helper()
	for _, l := range tenantLeftovers(t, cfg, id) {
		t.Errorf("left of the deleted tenant: %s", l)
	}
}

// tenantLeftovers lists the files, Redis keys, RabbitMQ queues and
// exchanges of the tenant id.
func tenantLeftovers(t *testing.T, cfg serveConfig, id string) []string {
	t.Helper()
	var out []string
	ns := tenantNamespace(cfg.Namespace, id)
	filepath.Walk(cfg.DataDir, func(path string, _ os.FileInfo, err error) error {
		rel, _ := filepath.Rel(cfg.DataDir, path)
		if err == nil && slices.Contains(strings.Split(rel, string(filepath.Separator)), id) {
			out = append(out, "file "+path)
		}
		return nil
	})
	if cfg.RedisURL != "" {
		rc, err := redisconn.New(cfg.RedisURL, redisconn.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		keys, _, err := rc.Scan(context.Background(), 0, ns+"*", 10000).Result()
		if err != nil {
			t.Fatal(err)
		}
		counts, _, err := rc.Scan(context.Background(), 0, cfg.Namespace+"*tenants:events:{"+id+"}*", 10000).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range append(keys, counts...) {
			out = append(out, "Redis key "+k)
		}
	}
	if cfg.AMQPURL != "" {
		conn, err := amqp.Dial(cfg.AMQPURL)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		names := []string{ns + ".events.dead", ns + ".engine." + cfg.Replica}
		for i := range max(cfg.Partitions, defaultPartitions) {
			names = append(names, fmt.Sprintf("%s.p.%d", ns, i))
		}
		for _, q := range names {
			ch, err := conn.Channel()
			if err != nil {
				t.Fatal(err)
			}
			_, err = ch.QueueDeclarePassive(q, true, false, false, false, nil)
			var ae *amqp.Error
			if !errors.As(err, &ae) || ae.Code != amqp.NotFound {
				out = append(out, fmt.Sprintf("queue %s (%v)", q, err))
				ch.Close()
			}
		}
		for _, x := range []string{ns + ".events", ns + ".events.partitioned", ns + ".updates"} {
			ch, err := conn.Channel()
			if err != nil {
				t.Fatal(err)
			}
			err = ch.ExchangeDeclarePassive(x, "fanout", true, false, false, false, nil)
			var ae *amqp.Error
			if !errors.As(err, &ae) || ae.Code != amqp.NotFound {
				out = append(out, fmt.Sprintf("exchange %s (%v)", x, err))
				ch.Close()
			}
		}
	}
	return out
}

// TestTenantCommand drives a multi-tenant kairos serve with the `kairos
// tenant` commands, and checks a quota set by them.
func TestTenantCommand(t *testing.T) {
	s := startTenants(t)
	kairos := func(want int, args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		args = append(args[:2:2], append([]string{"--url", s.base, "--admin-key", testAdminKey}, args[2:]...)...)
		if code := run(context.Background(), args, &out, &errb); code != want {
			t.Fatalf("kairos %s: exit %d (want %d)\n%s%s", strings.Join(args, " "), code, want, out.String(), errb.String())
		}
		return out.String() + errb.String()
	}
	out := kairos(0, "tenant", "create", "--id", "shop-a", "--name", "Shop A", "--events-per-day", "50", "--requests-per-second", "1000")
	var created struct {
		Keys struct {
			Publishable string `json:"publishable_key"`
			Secret      string `json:"secret_key"`
		}
	}
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.Keys.Secret == "" {
		t.Fatalf("tenant create printed %s (%v)", out, err)
	}
	if out := kairos(1, "tenant", "create", "--id", "shop-a"); !strings.Contains(out, `tenant "shop-a" exists`) {
		t.Fatalf("duplicate create: %s", out)
	}
	if out := kairos(0, "tenant", "list"); !strings.Contains(out, `"id": "shop-a"`) || strings.Contains(out, created.Keys.Secret) {
		t.Fatalf("tenant list: %s", out)
	}

	// The events quota: the batch that crosses it passes, the next is 429.
	evs := tenantEvents("q", []string{"i1", "i2"})
	s.do(t, "POST", "/v1/events", created.Keys.Publishable, evs[:60], http.StatusOK)
	v := s.do(t, "POST", "/v1/events", created.Keys.Publishable, evs[60:61], http.StatusTooManyRequests)
	if msg := v["error"].(map[string]any)["message"].(string); !strings.Contains(msg, "quota of 50 events per day") {
		t.Fatalf("429 message: %q", msg)
	}
	s.do(t, "GET", "/v1/recommendations?visitor=u1", created.Keys.Secret, nil, http.StatusOK)
	if out := kairos(0, "tenant", "get", "shop-a"); !strings.Contains(out, `"events_today": 60`) {
		t.Fatalf("tenant get: %s", out)
	}

	// The visitors quota: known visitors pass, a new one beyond it is 429.
	out = kairos(0, "tenant", "create", "--id", "shop-v", "--visitors", "2")
	var v2 struct {
		Keys struct {
			Publishable string `json:"publishable_key"`
		}
	}
	if err := json.Unmarshal([]byte(out), &v2); err != nil {
		t.Fatal(err)
	}
	ev := func(id, visitor string) []map[string]any {
		return []map[string]any{{"id": id, "type": "view", "visitor": visitor, "item": "i1"}}
	}
	s.do(t, "POST", "/v1/events", v2.Keys.Publishable, append(ev("e1", "x1"), ev("e2", "x2")...), http.StatusOK)
	v = s.do(t, "POST", "/v1/events", v2.Keys.Publishable, ev("e3", "x3"), http.StatusTooManyRequests)
	if msg := v["error"].(map[string]any)["message"].(string); !strings.Contains(msg, "quota of 2 visitors reached") {
		t.Fatalf("429 message: %q", msg)
	}
	s.do(t, "POST", "/v1/events", v2.Keys.Publishable, ev("e4", "x1"), http.StatusOK)

	kairos(0, "tenant", "suspend", "shop-a")
	s.do(t, "GET", "/v1/recommendations?visitor=u1", created.Keys.Secret, nil, http.StatusForbidden)
	kairos(0, "tenant", "resume", "shop-a")
	out = kairos(0, "tenant", "rotate", "shop-a")
	if strings.Contains(out, created.Keys.Secret) || !strings.Contains(out, `"secret_key": "sk_`) {
		t.Fatalf("tenant rotate: %s", out)
	}
	s.do(t, "GET", "/v1/recommendations?visitor=u1", created.Keys.Secret, nil, http.StatusUnauthorized)
	// With a grace, the old keys keep working (through the tenant's own
	// server, rebuilt with both pairs), the new ones too.
	var rotated struct {
		Keys struct {
			Secret string `json:"secret_key"`
		}
		Until string `json:"previous_keys_until"`
	}
	if err := json.Unmarshal([]byte(out), &rotated); err != nil {
		t.Fatal(err)
	}
	out = kairos(0, "tenant", "rotate", "shop-a", "--grace", "1h") // flags may follow the id
	if !strings.Contains(out, `"previous_keys_until"`) {
		t.Fatalf("tenant rotate --grace: %s", out)
	}
	s.do(t, "GET", "/v1/recommendations?visitor=u1", rotated.Keys.Secret, nil, http.StatusOK)
	var newest struct {
		Keys struct {
			Secret string `json:"secret_key"`
		}
	}
	if err := json.Unmarshal([]byte(out), &newest); err != nil {
		t.Fatal(err)
	}
	s.do(t, "GET", "/v1/recommendations?visitor=u1", newest.Keys.Secret, nil, http.StatusOK)
	kairos(0, "tenant", "delete", "shop-a")
	if out := kairos(1, "tenant", "get", "shop-a"); !strings.Contains(out, "not found") {
		t.Fatalf("tenant get after delete: %s", out)
	}
	assertTenantGone(t, s.cfg, "shop-a")
	if out := kairos(1, "tenant", "list", "--admin-key", "wrong_key_0123456789"); !strings.Contains(out, "unknown key") {
		t.Fatalf("wrong admin key: %s", out)
	}
}

// TestTenantAdminAPIDescribed sends every operation of the tenant admin
// API through the OpenAPI validator: each answer must match
// api/openapi.json, and every operation described must be exercised.
func TestTenantAdminAPIDescribed(t *testing.T) {
	s := startTenants(t)
	s.do(t, "GET", "/v1/tenants", "", nil, http.StatusUnauthorized)
	s.do(t, "POST", "/v1/tenants", testAdminKey, map[string]any{"id": "Bad"}, http.StatusBadRequest)
	a := s.createTenant(t, "a")
	s.do(t, "POST", "/v1/tenants", testAdminKey, map[string]any{"id": "a"}, http.StatusConflict)
	s.do(t, "GET", "/v1/tenants", testAdminKey, nil, http.StatusOK)
	s.do(t, "GET", "/v1/tenants/a", testAdminKey, nil, http.StatusOK)
	s.do(t, "GET", "/v1/tenants/zz", testAdminKey, nil, http.StatusNotFound)
	v := s.do(t, "PATCH", "/v1/tenants/a", testAdminKey, map[string]any{"name": "A", "quotas": map[string]any{"items": 5}}, http.StatusOK)
	if v["name"] != "A" || v["quotas"].(map[string]any)["items"] != 5.0 {
		t.Fatalf("patched: %v", v)
	}
	s.do(t, "POST", "/v1/tenants/a/suspend", testAdminKey, nil, http.StatusOK)
	s.do(t, "GET", "/v1/items/x", a.sk, nil, http.StatusForbidden)
	s.do(t, "POST", "/v1/tenants/a/resume", testAdminKey, nil, http.StatusOK)
	s.do(t, "GET", "/v1/items/x", a.sk, nil, http.StatusNotFound)
	s.do(t, "POST", "/v1/tenants/a/keys", testAdminKey, nil, http.StatusOK)
	s.do(t, "DELETE", "/v1/tenants/a", testAdminKey, nil, http.StatusNoContent)
	s.do(t, "DELETE", "/v1/tenants/a", testAdminKey, nil, http.StatusNotFound)
	checked := apiCheck.Checked()
	for _, op := range apiCheck.Operations() {
		if strings.Contains(op, "/v1/tenants") && checked[op] == 0 {
			t.Errorf("%s was not validated", op)
		}
	}
}

// TestTenantsPublicRoutes: without a key, a multi-tenant server serves
// the tracker, the OpenAPI description and the dashboard's pages, and
// 401 for everything else.
func TestTenantsPublicRoutes(t *testing.T) {
	s := startTenants(t)
	for _, c := range []struct {
		path string
		want int
	}{
		{"/tracker.js", http.StatusOK}, {"/openapi.json", http.StatusOK}, {"/dashboard", http.StatusOK},
		{"/healthz", http.StatusOK}, {"/readyz", http.StatusOK},
		{"/v1/items", http.StatusUnauthorized}, {"/v1/recommendations?visitor=v", http.StatusUnauthorized}, {"/metrics", http.StatusUnauthorized},
	} {
		resp, err := httpClient.Get(s.base + c.path)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("GET %s: %d, want %d", c.path, resp.StatusCode, c.want)
		}
	}

	// /metrics: the deployment's with the admin key (per-tenant labels),
	// the tenant's own server's with its secret key.
	a := s.createTenant(t, "a")
	s.do(t, "GET", "/v1/items/x", a.sk, nil, http.StatusNotFound)
	metrics := func(key string) string { return scrapeMetricsAs(t, s.base, key) }
	if m := metrics(testAdminKey); !strings.Contains(m, `kairos_tenant_requests_total{code="404",tenant="a"} 1`) {
		t.Errorf("the deployment's metrics lack tenant a's request:\n%s", m)
	}
	if m := metrics(a.sk); strings.Contains(m, "kairos_tenant_requests_total") || !strings.Contains(m, "kairos_http_requests_total") {
		t.Errorf("tenant a's metrics are not its own server's")
	}
}

// TestTenantsSurviveRestart: the registry and every tenant's state are
// durable on both stores — after a restart on the same data directory or
// namespace, the tenants' keys work and their recommendations are the same.
func TestTenantsSurviveRestart(t *testing.T) {
	for _, c := range []struct {
		name  string
		flags func(t *testing.T) []string
	}{
		{"embedded", func(t *testing.T) []string { return []string{"--data-dir", t.TempDir()} }},
		{"rabbitmq+redis", func(t *testing.T) []string {
			requireServices(t)
			ns := tenantsTestNamespace(t, "a", "b")
			return []string{"--data-dir", t.TempDir(), "--amqp-url", amqpURL(), "--redis-url", redisURL(), "--namespace", ns}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			flags := c.flags(t)
			s := startTenants(t, flags...)
			a, b := s.createTenant(t, "a"), s.createTenant(t, "b")
			s.do(t, "POST", "/v1/tenants/b/suspend", testAdminKey, nil, http.StatusOK)
			posted := s.do(t, "POST", "/v1/events", a.pk, tenantEvents("a", []string{"i1", "i2", "i3"}), http.StatusOK)
			s.waitApplied(t, "a", posted["accepted"].(float64))
			var before []string
			waitFor(t, 30*time.Second, "recommendations", func() bool {
				before = s.recs(t, a, "p")
				return len(before) == 3
			})
			s.stop(t)

			s2 := startTenants(t, flags...)
			if r := s2.recs(t, a, "p"); !slices.Equal(r, before) {
				t.Fatalf("after a restart: %v, before %v", r, before)
			}
			s2.do(t, "GET", "/v1/recommendations?visitor=p", b.sk, nil, http.StatusForbidden) // still suspended
			v := s2.do(t, "GET", "/v1/tenants", testAdminKey, nil, http.StatusOK)
			if n := len(v["tenants"].([]any)); n != 2 {
				t.Fatalf("%d tenants after a restart, want 2", n)
			}
		})
	}
}

// TestTenantsTwoReplicas: two multi-tenant replicas on one Redis and
// RabbitMQ share the registry — a tenant created on one serves on the
// other, and its deletion on one leaves no key, queue or file on either,
// though both had it loaded.
func TestTenantsTwoReplicas(t *testing.T) {
	requireServices(t)
	ns := tenantsTestNamespace(t, "a")
	flags := []string{"--amqp-url", amqpURL(), "--redis-url", redisURL(), "--namespace", ns}
	s1 := startTenants(t, append(flags, "--replica", "r1")...)
	s2 := startTenants(t, append(flags, "--replica", "r2")...)
	a := s1.createTenant(t, "a")
	waitFor(t, 10*time.Second, "the tenant on the second replica", func() bool {
		req, _ := http.NewRequest(http.MethodGet, s2.base+"/v1/items/x", nil)
		req.Header.Set("Authorization", "Bearer "+a.sk)
		resp, err := uncheckedClient.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusNotFound
	})
	set := []string{"i1", "i2", "i3"}
	s1.do(t, "POST", "/v1/events", a.pk, tenantEvents("a", set), http.StatusOK)
	for _, s := range []*tenantTestServer{s1, s2} {
		waitFor(t, 30*time.Second, "recommendations on "+s.base, func() bool {
			r := s.recs(t, a, "p")
			return len(r) == 3 && slices.Equal(r, set)
		})
	}
	if !s1.srv.router.Pool().IsLoaded("a") || !s2.srv.router.Pool().IsLoaded("a") {
		t.Fatal("the tenant is not loaded on both replicas")
	}
	s1.do(t, "DELETE", "/v1/tenants/a", testAdminKey, nil, http.StatusNoContent)
	waitFor(t, 10*time.Second, "the second replica to unload the deleted tenant", func() bool {
		return !s2.srv.router.Pool().IsLoaded("a")
	})
	s2.do(t, "GET", "/v1/recommendations?visitor=p", a.sk, nil, http.StatusUnauthorized)
	// The second replica purges again once its server (which saved its
	// state on the way out) is closed.
	deadline := time.Now().Add(10 * time.Second)
	for len(tenantLeftovers(t, s2.cfg, "a")) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	assertTenantGone(t, s1.cfg, "a")
	assertTenantGone(t, s2.cfg, "a")
}

// TestTenantItemsQuota: a tenant's items quota bounds its catalog through
// kairos serve: POST and a PUT that creates are refused at the bound, a
// PUT that replaces an entry is not; events naming other items are not
// catalog entries. A tenant with an origin kairos serve would refuse is
// not created.
func TestTenantItemsQuota(t *testing.T) {
	s := startTenants(t)
	s.do(t, "POST", "/v1/tenants", testAdminKey, map[string]any{"id": "bad", "allowed_origins": []string{"https://shop.example/"}}, http.StatusBadRequest)
	v := s.do(t, "POST", "/v1/tenants", testAdminKey, map[string]any{"id": "q", "quotas": map[string]any{"items": 2}}, http.StatusCreated)
	sk := v["keys"].(map[string]any)["secret_key"].(string)
	s.do(t, "POST", "/v1/events", sk, tenantEvents("q", []string{"e1", "e2", "e3"}), http.StatusOK)
	s.do(t, "POST", "/v1/items", sk, map[string]any{"id": "one", "title": "One"}, http.StatusCreated)
	s.do(t, "PUT", "/v1/items/two", sk, map[string]any{"title": "Two"}, http.StatusCreated)
	s.do(t, "POST", "/v1/items", sk, map[string]any{"id": "three"}, http.StatusTooManyRequests)
	s.do(t, "PUT", "/v1/items/three", sk, map[string]any{"title": "Three"}, http.StatusTooManyRequests)
	s.do(t, "PUT", "/v1/items/two", sk, map[string]any{"title": "Two, renamed"}, http.StatusOK)
	s.do(t, "DELETE", "/v1/items/one", sk, nil, http.StatusNoContent)
	s.do(t, "PUT", "/v1/items/three", sk, map[string]any{"title": "Three"}, http.StatusCreated)
}
