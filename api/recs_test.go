package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/kairoshq/kairos/engine"
)

func TestRecommendations(t *testing.T) {
	tests := []struct {
		name   string
		query  string
		want   engine.RecRequest // when status is 200
		status int
		msg    string // error message fragment
	}{
		{"defaults", "visitor=v1", engine.RecRequest{Visitor: "v1", N: 10, ExcludeSeen: true}, 200, ""},
		{"every parameter", "visitor=v1&n=5&exclude_seen=false&category=shoes&explain=true",
			engine.RecRequest{Visitor: "v1", N: 5, Category: "shoes", Explain: true}, 200, ""},
		{"context parameters", "visitor=v1&exact=true&item=sku-1&utm_campaign=spring&device=mobile&referrer=https%3A%2F%2Fwww.google.com%2F",
			engine.RecRequest{Visitor: "v1", N: 10, ExcludeSeen: true, Exact: true, Item: "sku-1", Campaign: "spring", Device: "mobile", Referrer: "https://www.google.com/"}, 200, ""},
		{"referrer too long", "visitor=v&referrer=" + strings.Repeat("r", 2049), engine.RecRequest{}, 400, "referrer: must be valid UTF-8, at most 2048 bytes"},
		{"first of repeated values", "visitor=a&visitor=b&n=3&n=4", engine.RecRequest{Visitor: "a", N: 3, ExcludeSeen: true}, 200, ""},
		{"unknown parameters ignored", "visitor=v&colour=red", engine.RecRequest{Visitor: "v", N: 10, ExcludeSeen: true}, 200, ""},
		{"n at the maximum", "visitor=v&n=100", engine.RecRequest{Visitor: "v", N: 100, ExcludeSeen: true}, 200, ""},
		{"missing visitor", "n=5", engine.RecRequest{}, 400, "visitor: missing"},
		{"n not a number", "visitor=v&n=abc", engine.RecRequest{}, 400, `n: "abc" is not an integer`},
		{"n zero", "visitor=v&n=0", engine.RecRequest{}, 400, "n: 0 is not in [1, 100]"},
		{"n negative", "visitor=v&n=-3", engine.RecRequest{}, 400, "n: -3 is not in [1, 100]"},
		{"n huge", "visitor=v&n=1000000", engine.RecRequest{}, 400, "n: 1000000 is not in [1, 100]"},
		{"n overflow", "visitor=v&n=99999999999999999999999", engine.RecRequest{}, 400, "n: "},
		{"n float", "visitor=v&n=2.5", engine.RecRequest{}, 400, `n: "2.5" is not an integer`},
		{"exclude_seen not a boolean", "visitor=v&exclude_seen=maybe", engine.RecRequest{}, 400, `exclude_seen: "maybe" is not a boolean`},
		{"explain not a boolean", "visitor=v&explain=yes", engine.RecRequest{}, 400, `explain: "yes" is not a boolean`},
		{"visitor too long", "visitor=" + strings.Repeat("v", 201), engine.RecRequest{}, 400, "visitor: 201 bytes long, more than the maximum 200"},
		{"visitor with control character", "visitor=a%00b", engine.RecRequest{}, 400, "visitor: contains control character"},
		{"category not UTF-8", "visitor=v&category=%ff", engine.RecRequest{}, 400, "category: not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			w := h.secret("GET", "/v1/recommendations?"+tt.query, "")
			if tt.status != 200 {
				wantError(t, w, tt.status, CodeInvalid, tt.msg)
				if h.rec.calls != 0 {
					t.Errorf("the recommender was called")
				}
				return
			}
			if w.Code != 200 {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			if h.rec.last != tt.want {
				t.Errorf("request %+v, want %+v", h.rec.last, tt.want)
			}
			resp := decode[engine.RecResponse](t, w)
			if resp.Visitor != tt.want.Visitor || len(resp.Items) != tt.want.N || resp.Items[0].Item != "i0" {
				t.Errorf("response %+v", resp)
			}
			if cc := w.Header().Get("Cache-Control"); !strings.Contains(cc, "no-store") {
				t.Errorf("Cache-Control %q", cc)
			}
		})
	}
}

func TestRecommendationsEngineErrors(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status int
		code   Code
		msg    string
		logged bool
	}{
		{"invalid", fmt.Errorf("engine: recommend: %w: category: unknown category \"x\"", engine.ErrInvalid), 400, CodeInvalid, `category: unknown category "x"`, false},
		{"not found", fmt.Errorf("engine: %w", engine.ErrNotFound), 404, CodeNotFound, "not found", false},
		{"store unavailable", fmt.Errorf("redisstore: %w", engine.ErrUnavailable), 503, CodeUnavailable, "unavailable; retry later", false},
		{"deadline", fmt.Errorf("engine: score: %w", context.DeadlineExceeded), 504, CodeTimeout, "deadline", false},
		{"unexpected", errors.New("index out of sync"), 500, CodeInternal, "internal error (request id ", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.rec.err = tt.err
			w := h.secret("GET", "/v1/recommendations?visitor=v", "")
			wantError(t, w, tt.status, tt.code, tt.msg)
			if tt.status == 503 && w.Header().Get("Retry-After") == "" {
				t.Errorf("503 without Retry-After")
			}
			if tt.status == 500 && strings.Contains(w.Body.String(), "index out of sync") {
				t.Errorf("internal error details leak to the client: %s", w.Body)
			}
			id := w.Header().Get("X-Request-Id")
			logged := strings.Contains(h.log.String(), `"request_id":"`+id+`"`)
			if logged != tt.logged {
				t.Errorf("logged: %v, want %v; log: %s", logged, tt.logged, h.log)
			}
		})
	}
}

func TestRequestTimeout(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.RequestTimeout = 10_000_000 }) // 10 ms
	h.rec.hook = func(ctx context.Context) {
		<-ctx.Done()
		h.rec.err = ctx.Err()
	}
	wantError(t, h.secret("GET", "/v1/recommendations?visitor=v", ""), http.StatusGatewayTimeout, CodeTimeout)
}

func TestPanicIsInternal(t *testing.T) {
	h := newHarness(t, nil)
	h.rec.hook = func(context.Context) { panic("kaboom") }
	w := h.secret("GET", "/v1/recommendations?visitor=v", "")
	wantError(t, w, 500, CodeInternal, "request id")
	if !strings.Contains(h.log.String(), "kaboom") || !strings.Contains(h.log.String(), w.Header().Get("X-Request-Id")) {
		t.Errorf("panic not logged with the request id: %s", h.log)
	}
	// The server still serves.
	h.rec.hook = nil
	if w := h.secret("GET", "/v1/recommendations?visitor=v", ""); w.Code != 200 {
		t.Errorf("after a panic: status %d", w.Code)
	}
}

func TestSimilar(t *testing.T) {
	h := newHarness(t, nil)
	h.rec.similar = map[string][]engine.Rec{
		"sku-1": {{Item: "sku-2", Score: 0.9}, {Item: "sku-3", Score: 0.5}},
		"a/b c": {{Item: "x", Score: 1}},
		"empty": nil,
	}
	tests := []struct {
		name   string
		path   string
		status int
		items  []string
		msg    string
	}{
		{"default n", "/v1/items/sku-1/similar", 200, []string{"sku-2", "sku-3"}, ""},
		{"n=1", "/v1/items/sku-1/similar?n=1", 200, []string{"sku-2"}, ""},
		{"escaped id", "/v1/items/a%2Fb%20c/similar", 200, []string{"x"}, ""},
		{"no similar items", "/v1/items/empty/similar", 200, []string{}, ""},
		{"unknown item", "/v1/items/nope/similar", 404, nil, "not found"},
		{"bad n", "/v1/items/sku-1/similar?n=0", 400, nil, "n: 0 is not in [1, 100]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := h.secret("GET", tt.path, "")
			if tt.status != 200 {
				code := CodeInvalid
				if tt.status == 404 {
					code = CodeNotFound
				}
				wantError(t, w, tt.status, code, tt.msg)
				return
			}
			if w.Code != 200 {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			resp := decode[SimilarResponse](t, w)
			var got []string
			for _, r := range resp.Items {
				got = append(got, r.Item)
			}
			if resp.Items == nil || fmt.Sprint(got) != fmt.Sprint(tt.items) {
				t.Errorf("items %v (%s), want %v", got, w.Body, tt.items)
			}
		})
	}
}
