package api

import (
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
)

func TestAuth(t *testing.T) {
	const (
		sk      = "Bearer " + testSK
		pk      = "Bearer " + testPK
		events  = "/v1/events"
		recs    = "/v1/recommendations?visitor=v1"
		pixelOK = "/v1/pixel.gif?visitor=v1&item=i1&id=p1"
	)
	body := batchJSON(1)
	bodyKey := func(key string) string { return `{"key":"` + key + `","events":` + body + `}` }
	tests := []struct {
		name         string
		method, path string
		body         string
		headers      []string
		status       int
		code         Code   // for JSON errors
		msg          string // message fragment
	}{
		{"healthz needs no key", "GET", "/healthz", "", nil, 200, "", ""},
		{"readyz needs no key", "GET", "/readyz", "", nil, 200, "", ""},
		{"metrics without key", "GET", "/metrics", "", nil, 401, CodeUnauthorized, "missing key"},
		{"metrics with secret key", "GET", "/metrics", "", []string{"Authorization", sk}, 200, "", ""},
		{"metrics with publishable key", "GET", "/metrics", "", []string{"Authorization", pk}, 403, CodeForbidden, "needs the secret key"},

		{"secret route: missing key", "GET", recs, "", nil, 401, CodeUnauthorized, "missing key"},
		{"secret route: wrong key", "GET", recs, "", []string{"Authorization", "Bearer sk_wrong_wrong_wrong"}, 401, CodeUnauthorized, "unknown key"},
		{"secret route: not bearer", "GET", recs, "", []string{"Authorization", "Basic dXNlcjpwdw=="}, 401, CodeUnauthorized, "malformed Authorization"},
		{"secret route: empty bearer", "GET", recs, "", []string{"Authorization", "Bearer "}, 401, CodeUnauthorized, "malformed Authorization"},
		{"secret route: secret key", "GET", recs, "", []string{"Authorization", sk}, 200, "", ""},
		{"secret route: lower-case scheme", "GET", recs, "", []string{"Authorization", "bearer " + testSK}, 200, "", ""},
		{"secret route: rotated second key", "GET", recs, "", []string{"Authorization", "Bearer " + testSK2}, 200, "", ""},
		{"secret route: publishable key", "GET", recs, "", []string{"Authorization", pk}, 403, CodeForbidden, "needs the secret key"},
		{"secret route: publishable key in query", "GET", recs + "&key=" + testPK, "", nil, 401, CodeUnauthorized, "takes the key only in the header"},
		{"secret route: secret key in query is refused as leaked", "GET", recs + "&key=" + testSK, "", nil, 401, CodeUnauthorized, "not in the key query parameter (it would leak"},
		{"items: unknown key in query", "GET", "/v1/items?key=sk_nope_nope_nope", "", nil, 401, CodeUnauthorized, "takes the key only in the header"},
		{"items: publishable key", "GET", "/v1/items", "", []string{"Authorization", pk, "Origin", allowed}, 403, CodeForbidden, "needs the secret key"},

		{"events: no key", "POST", events, body, nil, 401, CodeUnauthorized, "missing key"},
		{"events: wrong header key", "POST", events, body, []string{"Authorization", "Bearer pk_nope_nope_nope"}, 401, CodeUnauthorized, "unknown key"},
		{"events: publishable key, allowed origin", "POST", events, body, []string{"Authorization", pk, "Origin", allowed}, 200, "", ""},
		{"events: publishable key, allowed subdomain", "POST", events, body, []string{"Authorization", pk, "Origin", "https://www.shop.example"}, 200, "", ""},
		{"events: publishable key, disallowed origin", "POST", events, body, []string{"Authorization", pk, "Origin", "https://evil.example"}, 403, CodeForbidden, `origin "https://evil.example"`},
		{"events: publishable key, origin null", "POST", events, body, []string{"Authorization", pk, "Origin", "null"}, 403, CodeForbidden, "not allowed"},
		{"events: publishable key, no origin", "POST", events, body, []string{"Authorization", pk}, 200, "", ""},
		{"events: publishable key, allowed referer", "POST", events, body, []string{"Authorization", pk, "Referer", allowed + "/p/42?x=1"}, 200, "", ""},
		{"events: publishable key, disallowed referer", "POST", events, body, []string{"Authorization", pk, "Referer", "http://shop.example/p/42"}, 403, CodeForbidden, "Referer"},
		{"events: key in query", "POST", events + "?key=" + testPK, body, []string{"Origin", allowed}, 200, "", ""},
		{"events: key in query, disallowed origin", "POST", events + "?key=" + testPK, body, []string{"Origin", "https://evil.example"}, 403, CodeForbidden, "not allowed"},
		{"events: key in body", "POST", events, bodyKey(testPK), []string{"Origin", allowed, "Content-Type", "text/plain;charset=UTF-8"}, 200, "", ""},
		{"events: wrong key in body", "POST", events, bodyKey("pk_nope_nope_nope"), []string{"Origin", allowed}, 401, CodeUnauthorized, "unknown key"},
		{"events: key in body, disallowed origin", "POST", events, bodyKey(testPK), []string{"Origin", "https://evil.example"}, 403, CodeForbidden, "not allowed"},
		{"events: secret key in body", "POST", events, bodyKey(testSK), nil, 401, CodeUnauthorized, "only in the Authorization header"},
		{"events: secret key in query", "POST", events + "?key=" + testSK, body, nil, 401, CodeUnauthorized, "only in the Authorization header"},
		{"events: secret key, any origin", "POST", events, body, []string{"Authorization", sk, "Origin", "https://evil.example"}, 200, "", ""},
		{"events: header wins over body key", "POST", events, bodyKey("pk_nope_nope_nope"), []string{"Authorization", pk}, 200, "", ""},
		{"events: secret key in body beside the header's", "POST", events, bodyKey(testSK), []string{"Authorization", pk, "Origin", allowed}, 401, CodeUnauthorized, "not in the key member of the body (it would leak"},

		{"pixel: key in query", "GET", pixelOK + "&key=" + testPK, "", []string{"Referer", allowed + "/"}, 200, "", ""},
		{"pixel: no key", "GET", pixelOK, "", nil, 401, "", ""},
		{"pixel: disallowed referer", "GET", pixelOK + "&key=" + testPK, "", []string{"Referer", "https://evil.example/"}, 403, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			w := h.do(tt.method, tt.path, tt.body, tt.headers...)
			if tt.code != "" {
				wantError(t, w, tt.status, tt.code, tt.msg)
			} else if w.Code != tt.status {
				t.Fatalf("status %d, want %d; body %q", w.Code, tt.status, w.Body.String())
			}
			if tt.status == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
				t.Errorf("401 without WWW-Authenticate")
			}
			if tt.status >= 400 && len(h.pub.events()) != 0 {
				t.Errorf("events published on a refused request: %v", h.pub.events())
			}
		})
	}
}

func TestAuthRequireOriginAndMetricsPublic(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.RequireOrigin = true; c.MetricsPublic = true })
	w := h.do("POST", "/v1/events", batchJSON(1), "Authorization", "Bearer "+testPK)
	wantError(t, w, 403, CodeForbidden, "needs an Origin or Referer")
	if w := h.do("POST", "/v1/events", batchJSON(1), "Authorization", "Bearer "+testPK, "Origin", allowed); w.Code != 200 {
		t.Errorf("with an allowed origin: status %d: %s", w.Code, w.Body)
	}
	if w := h.do("GET", "/metrics", ""); w.Code != 200 {
		t.Errorf("public metrics: status %d", w.Code)
	}
}

func TestRoutesAccess(t *testing.T) {
	h := newHarness(t, nil)
	want := map[string]string{
		"GET /healthz": "public", "GET /readyz": "public", "GET /metrics": "secret", "GET /tracker.js": "public",
		"GET /openapi.json": "public", "GET /tracker.d.ts": "public",
		"POST /v1/events": "publishable", "GET /v1/pixel.gif": "publishable",
		"GET /v1/recommendations": "secret", "GET /v1/items/:id/similar": "secret",
		"GET /v1/items": "secret", "POST /v1/items": "secret", "GET /v1/items/:id": "secret",
		"PUT /v1/items/:id": "secret", "DELETE /v1/items/:id": "secret", "DELETE /v1/visitors/:id": "secret", "POST /v1/identify": "secret",
		"GET /v1/stats/items/:id": "secret", "GET /v1/stats/offers/:id": "secret",
		"GET /v1/offers": "publishable", "POST /v1/offers": "secret", "GET /v1/offers/:id": "secret",
		"PUT /v1/offers/:id": "secret", "DELETE /v1/offers/:id": "secret",
		"GET /v1/campaigns": "secret", "POST /v1/campaigns": "secret", "GET /v1/campaigns/:id": "secret",
		"PUT /v1/campaigns/:id": "secret", "DELETE /v1/campaigns/:id": "secret",
		"GET /v1/rules": "secret", "POST /v1/rules": "secret", "GET /v1/rules/:id": "secret",
		"PUT /v1/rules/:id": "secret", "DELETE /v1/rules/:id": "secret",
		"GET /v1/promotions/stream": "publishable", "GET /v1/pages/attention": "secret",
		"GET /": "public", "GET /shop/*": "public",
		"GET /v1/dashboard/summary": "secret", "GET /dashboard": "public", "GET /dashboard/*": "public",
		"GET /v1/experiments": "secret", "POST /v1/experiments": "secret", "GET /v1/experiments/:id": "secret",
		"PUT /v1/experiments/:id": "secret", "DELETE /v1/experiments/:id": "secret", "GET /v1/experiments/:id/results": "secret", "GET /v1/holdout/results": "secret",
		"GET /v1/filters": "secret", "GET /v1/filters/:id": "secret", "PUT /v1/filters/:id": "secret", "DELETE /v1/filters/:id": "secret",
	}
	got := map[string]string{}
	for _, r := range h.s.Routes() {
		got[r.Method+" "+r.Path] = r.Access
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("routes:\n got %v\nwant %v", got, want)
	}
}

func TestCORS(t *testing.T) {
	h := newHarness(t, nil)
	t.Run("preflight allowed", func(t *testing.T) {
		for _, path := range []string{"/v1/events", "/v1/pixel.gif"} {
			w := h.do("OPTIONS", path, "", "Origin", allowed, "Access-Control-Request-Method", "POST",
				"Access-Control-Request-Headers", "authorization,content-type")
			if w.Code != http.StatusNoContent {
				t.Fatalf("%s: status %d, want 204: %s", path, w.Code, w.Body)
			}
			hd := w.Header()
			if got := hd.Get("Access-Control-Allow-Origin"); got != allowed {
				t.Errorf("%s: Allow-Origin %q", path, got)
			}
			if got := hd.Get("Access-Control-Allow-Headers"); !strings.Contains(got, "Authorization") || !strings.Contains(got, "Content-Type") {
				t.Errorf("%s: Allow-Headers %q", path, got)
			}
			if got := hd.Get("Access-Control-Max-Age"); got == "" {
				t.Errorf("%s: no Max-Age", path)
			}
			if !strings.Contains(hd.Get("Vary"), "Origin") {
				t.Errorf("%s: no Vary: Origin", path)
			}
		}
		w := h.do("OPTIONS", "/v1/events", "", "Origin", allowed)
		if got := w.Header().Get("Access-Control-Allow-Methods"); !strings.Contains(got, "POST") || strings.Contains(got, "GET") {
			t.Errorf("events Allow-Methods %q", got)
		}
	})
	t.Run("preflight disallowed origin", func(t *testing.T) {
		w := h.do("OPTIONS", "/v1/events", "", "Origin", "https://evil.example", "Access-Control-Request-Method", "POST")
		wantError(t, w, 403, CodeForbidden, "not allowed")
		if got := w.Header().Get("Access-Control-Allow-Origin"); got != "" {
			t.Errorf("Allow-Origin %q on a refused preflight", got)
		}
	})
	t.Run("preflight without origin", func(t *testing.T) {
		wantError(t, h.do("OPTIONS", "/v1/events", ""), 403, CodeForbidden, "without an Origin")
	})
	t.Run("secret routes answer no CORS", func(t *testing.T) {
		w := h.do("OPTIONS", "/v1/recommendations", "", "Origin", allowed, "Access-Control-Request-Method", "GET")
		if got := w.Header().Get("Access-Control-Allow-Origin"); got != "" {
			t.Errorf("Allow-Origin %q on a secret route", got)
		}
		w = h.do("GET", "/v1/recommendations?visitor=v", "", "Origin", allowed, "Authorization", "Bearer "+testSK)
		if got := w.Header().Get("Access-Control-Allow-Origin"); got != "" || w.Code != 200 {
			t.Errorf("status %d, Allow-Origin %q on a secret route", w.Code, got)
		}
	})
	t.Run("errors are readable by the page", func(t *testing.T) {
		w := h.do("POST", "/v1/events", batchJSON(1), "Origin", allowed)
		wantError(t, w, 401, CodeUnauthorized)
		if got := w.Header().Get("Access-Control-Allow-Origin"); got != allowed {
			t.Errorf("Allow-Origin %q on a 401 from an allowed origin", got)
		}
		if got := w.Header().Get("Access-Control-Expose-Headers"); !strings.Contains(got, "Retry-After") {
			t.Errorf("Expose-Headers %q", got)
		}
	})
}

func TestOriginSet(t *testing.T) {
	o := newOriginSet([]string{"https://Shop.example", "https://*.cdn.example", "http://localhost:3000"})
	tests := []struct {
		origin string
		want   bool
	}{
		{"https://shop.example", true},
		{"HTTPS://SHOP.EXAMPLE", true},
		{"http://shop.example", false},
		{"https://shop.example:8443", false},
		{"https://a.cdn.example", true},
		{"https://a.b.cdn.example", true},
		{"https://cdn.example", false},
		{"https://evilcdn.example", false},
		{"http://a.cdn.example", false},
		{"https://x.cdn.example/path", false},
		{"http://localhost:3000", true},
		{"null", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := o.allowed(tt.origin); got != tt.want {
			t.Errorf("allowed(%q) = %v, want %v", tt.origin, got, tt.want)
		}
	}
	any := newOriginSet([]string{"*"})
	if !any.allowed("https://whatever.example") || any.allowed("null") {
		t.Errorf("* must allow any origin but null")
	}
	if newOriginSet(nil).allowed(allowed) {
		t.Errorf("empty list allows an origin")
	}
}

func TestRateLimit(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.PublishableRate = RateLimit{Rate: 0.001, Burst: 2}
		c.SecretRate = RateLimit{Rate: 0.01, Burst: 1}
	})
	pixel := func(ip string) *http.Request {
		r := req("GET", "/v1/pixel.gif?visitor=v&item=i&key="+testPK, "")
		r.RemoteAddr = ip + ":5555"
		return r
	}
	for i := 0; i < 2; i++ {
		if w := h.serve(pixel("192.0.2.1")); w.Code != 200 {
			t.Fatalf("request %d: status %d", i, w.Code)
		}
	}
	w := h.serve(pixel("192.0.2.1"))
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("third pixel: status %d, want 429", w.Code)
	}
	if got := w.Header().Get("X-Kairos-Error"); !strings.HasPrefix(got, "rate_limited: ") {
		t.Errorf("pixel X-Kairos-Error %q", got)
	}
	ra, err := strconv.Atoi(w.Header().Get("Retry-After"))
	if err != nil || ra < 900 || ra > 1000 { // one token per 1000 s
		t.Errorf("Retry-After %q, want about 1000", w.Header().Get("Retry-After"))
	}
	if w := h.serve(pixel("192.0.2.2")); w.Code != 200 {
		t.Errorf("another client IP shares the bucket: status %d", w.Code)
	}

	// JSON answer, and one bucket per secret key (rotation).
	if w := h.secret("GET", "/v1/recommendations?visitor=v", ""); w.Code != 200 {
		t.Fatalf("first secret request: status %d", w.Code)
	}
	w = h.secret("GET", "/v1/recommendations?visitor=v", "")
	wantError(t, w, http.StatusTooManyRequests, CodeRateLimited, "rate limit of 0.01 requests/s (burst 1)")
	if w.Header().Get("Retry-After") == "" {
		t.Errorf("429 without Retry-After")
	}
	if w := h.do("GET", "/v1/recommendations?visitor=v", "", "Authorization", "Bearer "+testSK2); w.Code != 200 {
		t.Errorf("second secret key shares the first one's bucket: status %d", w.Code)
	}
}

func TestRateLimitUnlimited(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.SecretRate = RateLimit{Rate: math.Inf(1)} })
	for i := 0; i < 50; i++ {
		if w := h.secret("GET", "/healthz", ""); w.Code != 200 {
			t.Fatalf("request %d: status %d", i, w.Code)
		}
		if w := h.secret("GET", "/v1/recommendations?visitor=v", ""); w.Code != 200 {
			t.Fatalf("request %d: status %d", i, w.Code)
		}
	}
	if n := len(h.s.limits.buckets); n != 0 {
		t.Errorf("%d buckets kept for an unlimited key", n)
	}
}

func TestLimiterBounded(t *testing.T) {
	l := newLimiter(DefaultSecretRate, RateLimit{Rate: 1, Burst: 5}, 10)
	ip := ""
	l.ip = func(echo.Context) string { return ip }
	e := echo.New()
	now := time.Unix(1e9, 0)
	for i := 0; i < 100; i++ {
		ip = fmt.Sprintf("198.51.100.%d", i)
		c := e.NewContext(req("GET", "/", ""), nil)
		if err := l.take(c, principal{kindPublishable, 0}, now); err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		if n := len(l.buckets); n > 10 {
			t.Fatalf("%d buckets, more than the maximum 10", n)
		}
	}
	// A bucket that refilled is dropped first: after 5 s every bucket is
	// full again, so one eviction empties the table.
	l.evict(now.Add(5 * time.Second))
	if n := len(l.buckets); n != 0 {
		t.Errorf("%d full buckets left after eviction", n)
	}
}

// TestClientIP: X-Forwarded-For names the client only when the peer is a
// trusted proxy (Config.TrustedProxies, or any private/loopback peer with
// TrustProxy); the right-most untrusted address wins.
func TestClientIP(t *testing.T) {
	const xff = "203.0.113.9, 198.51.100.7, 192.0.2.7"
	for _, tt := range []struct {
		name string
		cfg  func(*Config)
		peer string
		xff  string
		want string
	}{
		{"no proxy configured", nil, "192.0.2.5", xff, "192.0.2.5"},
		{"peer in a trusted CIDR", func(c *Config) { c.TrustedProxies = []string{"192.0.2.0/24"} }, "192.0.2.5", xff, "198.51.100.7"},
		{"two trusted hops", func(c *Config) { c.TrustedProxies = []string{"192.0.2.0/24", "198.51.100.7"} }, "192.0.2.5", xff, "203.0.113.9"},
		{"peer not trusted", func(c *Config) { c.TrustedProxies = []string{"10.0.0.0/8"} }, "192.0.2.5", xff, "192.0.2.5"},
		{"trusted peer, no header", func(c *Config) { c.TrustedProxies = []string{"192.0.2.0/24"} }, "192.0.2.5", "", "192.0.2.5"},
		{"trusted peer, garbage header", func(c *Config) { c.TrustedProxies = []string{"192.0.2.0/24"} }, "192.0.2.5", "not-an-ip", "192.0.2.5"},
		{"IPv6 proxy", func(c *Config) { c.TrustedProxies = []string{"2001:db8::/32"} }, "[2001:db8::1]", "203.0.113.9", "203.0.113.9"},
		{"TrustProxy: private peer", func(c *Config) { c.TrustProxy = true }, "10.1.2.3", "203.0.113.9", "203.0.113.9"},
		{"TrustProxy: public peer", func(c *Config) { c.TrustProxy = true }, "192.0.2.5", "203.0.113.9", "192.0.2.5"},
		{"TrustedProxies alone does not trust private peers", func(c *Config) { c.TrustedProxies = []string{"192.0.2.0/24"} }, "10.1.2.3", "203.0.113.9", "10.1.2.3"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.cfg)
			r := req("GET", "/healthz", "")
			r.RemoteAddr = tt.peer + ":5555"
			if tt.xff != "" {
				r.Header.Set("X-Forwarded-For", tt.xff)
			}
			if got := h.s.e.NewContext(r, httptest.NewRecorder()).RealIP(); got != tt.want {
				t.Errorf("client IP %q, want %q", got, tt.want)
			}
		})
	}
}
