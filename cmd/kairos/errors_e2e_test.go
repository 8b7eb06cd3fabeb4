package main

import (
	"net/http"
	"strings"
	"testing"
)

// TestErrorTextsNameTheResource: on both stores, a client reads which
// resource was not found, never the adapter's internal chain
// ("embedded: item: not found").
func TestErrorTextsNameTheResource(t *testing.T) {
	t.Run("embedded", func(t *testing.T) { testErrorTexts(t, startServer(t)) })
	t.Run("rabbitmq+redis", func(t *testing.T) {
		testErrorTexts(t, startServices(t))
	})
}

func testErrorTexts(t *testing.T, srv *testServer) {
	for _, c := range []struct{ method, path, want string }{
		{"GET", "/v1/items/sku-42", `item "sku-42" not found`},
		{"DELETE", "/v1/items/sku-42", `item "sku-42" not found`},
		{"GET", "/v1/items/sku-42/similar", `item "sku-42" has no interactions yet`},
		{"GET", "/v1/offers/o9", `offer "o9" not found`},
		{"DELETE", "/v1/rules/r9", `rule "r9" not found`},
		{"GET", "/v1/experiments/x9", `experiment "x9" not found`},
		{"GET", "/v1/experiments/x9/results", `experiment "x9" not found`},
	} {
		out := srv.secretJSON(t, c.method, c.path, "", http.StatusNotFound)
		msg := out["error"].(map[string]any)["message"].(string)
		if msg != c.want {
			t.Errorf("%s %s: message %q, want %q", c.method, c.path, msg, c.want)
		}
		if strings.Contains(msg, "embedded") || strings.Contains(msg, "redisstore") {
			t.Errorf("%s %s: message %q shows the store's internals", c.method, c.path, msg)
		}
	}
}
