package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kairoshq/kairos/api/openapitest"
)

var (
	validatorOnce sync.Once
	validator     *openapitest.Validator
	validatorErr  error
)

// openAPIValidator returns the validator of the embedded description,
// loaded once for the package's tests.
func openAPIValidator(tb testing.TB) *openapitest.Validator {
	tb.Helper()
	validatorOnce.Do(func() { validator, validatorErr = openapitest.New(OpenAPI()) })
	if validatorErr != nil {
		tb.Fatalf("the OpenAPI description: %v", validatorErr)
	}
	return validator
}

// TestOpenAPIDescribesEveryRoute checks that every route the echo server
// registers is described (HEAD as the GET of the path, CORS preflights as
// OPTIONS), that every described operation is registered, and that each
// operation's access matches the route table.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	v := openAPIValidator(t)
	h := newHarness(t, func(c *Config) { c.MetricsPublic = false })
	registered := map[string]bool{}
	for _, r := range h.s.e.Routes() {
		if strings.HasPrefix(r.Path, "/*") || r.Method == "echo_route_not_found" || r.Method == "echo_route_any" {
			continue // echo's own not-found/method-not-allowed handlers
		}
		path := openapitest.PathTemplate(r.Path)
		method := r.Method
		if method == http.MethodHead {
			if !v.Described(http.MethodGet, path) {
				t.Errorf("HEAD %s is registered but GET %s is not described", r.Path, path)
			}
			continue
		}
		registered[method+" "+path] = true
		if !v.Described(method, path) {
			t.Errorf("route %s %s is registered but not described in api/openapi.json (as %s %s)", r.Method, r.Path, method, path)
		}
	}
	ops := v.Operations()
	for _, op := range ops {
		if !registered[op] && !tenantOperation(v, op) {
			t.Errorf("operation %s is described in api/openapi.json but no such route is registered", op)
		}
	}
	access := map[string]string{}
	for _, r := range h.s.Routes() {
		access[r.Method+" "+openapitest.PathTemplate(r.Path)] = r.Access
	}
	for path, item := range v.Doc().Paths.Map() {
		for method, op := range item.Operations() {
			name := method + " " + path
			got, _ := op.Extensions["x-kairos-access"].(string)
			want, ok := access[name]
			if method == http.MethodOptions {
				want, ok = "public", true
			}
			if ok && got != want {
				t.Errorf("%s: x-kairos-access %q, the route table says %q", name, got, want)
			}
			if op.OperationID == "" {
				t.Errorf("%s: no operationId", name)
			}
		}
	}
	if len(ops) < 50 {
		t.Errorf("%d operations described, want every route", len(ops))
	}
	t.Logf("%d operations described, %d routes registered (HEAD excluded)", len(ops), len(registered))
}

// TestOpenAPIServed checks GET /openapi.json: public, cacheable, the
// embedded description, 304 on its ETag.
func TestOpenAPIServed(t *testing.T) {
	h := newHarness(t, nil)
	w := h.do("GET", "/openapi.json", "")
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/json" || !strings.Contains(w.Header().Get("Cache-Control"), "max-age=") {
		t.Fatalf("status %d, headers %v", w.Code, w.Header())
	}
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil || doc.OpenAPI != "3.1.0" || len(doc.Paths) == 0 {
		t.Fatalf("body: openapi %q, %d paths, err %v", doc.OpenAPI, len(doc.Paths), err)
	}
	etag := w.Header().Get("ETag")
	if w := h.do("GET", "/openapi.json", "", "If-None-Match", etag); w.Code != 304 {
		t.Fatalf("If-None-Match %s: status %d, want 304", etag, w.Code)
	}
	if w := h.do("HEAD", "/openapi.json", ""); w.Code != 200 || w.Header().Get("ETag") != etag {
		t.Fatalf("HEAD: status %d, headers %v", w.Code, w.Header())
	}
}

// TestOpenAPIValidatorCatches checks that the validator the tests run
// under fails an answer the description does not allow, an undescribed
// route, and an invalid request answered 200.
func TestOpenAPIValidatorCatches(t *testing.T) {
	v := openAPIValidator(t)
	get := func(target string) *http.Request { r, _ := http.NewRequest("GET", "http://x"+target, nil); return r }
	jsonHdr := http.Header{"Content-Type": {"application/json"}}
	for _, c := range []struct {
		name   string
		r      *http.Request
		status int
		body   string
	}{
		{"body off its schema", get("/v1/recommendations?visitor=v1"), 200, `{"visitor":"v1","items":[]}`},
		{"undescribed status", get("/healthz"), 201, `{"status":"ok"}`},
		{"undescribed route", get("/v1/nothing"), 200, `{}`},
		{"invalid request answered 200", get("/v1/recommendations"), 200, `{"visitor":"v1","strategy":"als","items":[]}`},
	} {
		if err := v.Check(c.r, nil, c.status, jsonHdr, []byte(c.body)); err == nil {
			t.Errorf("%s: no error", c.name)
		}
	}
	if err := v.Check(get("/v1/nothing"), nil, 404, jsonHdr, []byte(`{"error":{"code":"not_found","message":"no route"}}`)); err != nil {
		t.Errorf("unknown route answered 404: %v", err)
	}
	if err := v.Check(get("/v1/items/sku%2F3"), nil, 200, jsonHdr, []byte(`{"id":"sku/3","active":true,"created":"2026-01-01T00:00:00Z","updated":"2026-01-01T00:00:00Z"}`)); err != nil {
		t.Errorf("item: %v", err)
	}
}

// TestOpenAPIDefinitionsUpsert runs the operations no other test of the
// package sends (PUT of offers and campaigns, the preflight of the
// promotion stream) through the validator.
func TestOpenAPIDefinitionsUpsert(t *testing.T) {
	h := newPromoHarness(t, true, time.Minute)
	for _, c := range []struct {
		path, body string
		want       int
	}{
		{"/v1/offers/o2", `{"title":"New","slot":"hero"}`, 201},
		{"/v1/offers/o2", `{"id":"o2","title":"Newer","slot":"hero","active":false}`, 200},
		{"/v1/campaigns/c1", `{"offers":["o1","o2"],"priority":3}`, 201},
		{"/v1/campaigns/c1", `{"offers":["o2"],"schedule":{"days":["sat","sun"],"tz":"Europe/Paris"}}`, 200},
		{"/v1/offers/o3", `{"slot":"hero","unknown":1}`, 400},
	} {
		if w := h.secret("PUT", c.path, c.body); w.Code != c.want {
			t.Errorf("PUT %s %s: %d %s, want %d", c.path, c.body, w.Code, w.Body, c.want)
		}
	}
	w := h.do("OPTIONS", "/v1/promotions/stream?visitor=v1", "", "Origin", allowed, "Access-Control-Request-Method", "GET")
	if w.Code != 204 || w.Header().Get("Access-Control-Allow-Origin") != allowed {
		t.Errorf("preflight: %d %v", w.Code, w.Header())
	}
}

// tenantOperation reports whether op ("METHOD /path") is one of the
// multi-tenant admin API's (x-kairos-access "admin"): package tenant's
// router serves those, and cmd/kairos's tenant tests validate them.
func tenantOperation(v *openapitest.Validator, op string) bool {
	method, path, _ := strings.Cut(op, " ")
	item := v.Doc().Paths.Value(path)
	if item == nil || item.GetOperation(method) == nil {
		return false
	}
	access, _ := item.GetOperation(method).Extensions["x-kairos-access"].(string)
	return access == "admin"
}
