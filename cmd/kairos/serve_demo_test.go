package main

import (
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestDemoOrigins(t *testing.T) {
	for _, tt := range []struct {
		addr string
		want []string
	}{
		{"127.0.0.1:8080", []string{"http://127.0.0.1:8080", "http://localhost:8080"}},
		{"[::1]:8080", []string{"http://[::1]:8080", "http://localhost:8080"}},
		{"192.0.2.7:9000", []string{"http://192.0.2.7:9000"}},
		{"0.0.0.0:8080", []string{"http://localhost:8080", "http://127.0.0.1:8080"}},
	} {
		a, err := net.ResolveTCPAddr("tcp", tt.addr)
		if err != nil {
			t.Fatal(err)
		}
		got := demoOrigins(a)
		if len(got) < len(tt.want) || !slices.Equal(got[:len(tt.want)], tt.want) {
			t.Errorf("demoOrigins(%s) = %v, want %v first", tt.addr, got, tt.want)
		}
	}
}

func TestDemoBlendDefault(t *testing.T) {
	t.Setenv("KAIROS_BLEND_KAPPA", "")
	for _, tt := range []struct {
		args []string
		want float64
	}{
		{nil, 8},
		{[]string{"--demo"}, demoBlendKappa},
		{[]string{"--demo", "--blend-kappa", "5"}, 5},
	} {
		c, err := parseServeConfig(append([]string{"--data-dir", t.TempDir()}, tt.args...), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if c.Blend.Kappa != tt.want {
			t.Errorf("%v: κ = %v, want %v", tt.args, c.Blend.Kappa, tt.want)
		}
	}
}

// TestDemoEmbedded runs kairos serve --demo embedded: the shop is at /,
// seeded, the tracker's publishable key is accepted from the shop's own
// origin without --allowed-origins, and the dwell the page sends shows
// in GET /v1/pages/attention.
func TestDemoEmbedded(t *testing.T) {
	srv := startDemoEmbedded(t)
	resp, err := httpClient.Get(srv.base + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), `data-key="pk_test_0123456789abcdef"`) || strings.Contains(string(page), "sk_test") {
		t.Fatalf("GET /: %d\n%s", resp.StatusCode, page)
	}

	// The seeded background traffic has dwell on the page already.
	pageURL := srv.base + "/shop/p/aud-01?utm_source=test"
	heatOf := func() map[string]float64 {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.base+"/v1/pages/attention?page="+url.QueryEscape(pageURL), nil)
		req.Header.Set("Authorization", "Bearer sk_test_0123456789abcdef")
		heat := doJSON(t, req, http.StatusOK)
		if heat["page"] != srv.base+"/shop/p/aud-01" {
			t.Fatalf("page %v: want the URL without its query", heat["page"])
		}
		out := map[string]float64{"total": heat["total_ms"].(float64)}
		for _, e := range heat["elements"].([]any) {
			el := e.(map[string]any)
			out[el["element"].(string)] = el["dwell_ms"].(float64)
		}
		return out
	}
	var before map[string]float64
	waitFor(t, 10*time.Second, "the background dwell to be counted", func() bool {
		before = heatOf()
		return before["total"] > 0
	})

	// The page's events, as the tracker sends them from the shop's origin.
	body := `{"key":"pk_test_0123456789abcdef","events":[{"id":"d1","type":"dwell","visitor":"v1","item":"aud-01","element":"item:aud-01","value":2400,"page":"` + pageURL + `"},
		{"id":"d2","type":"dwell","visitor":"v1","item":"aud-02","element":"item:aud-02","value":600,"page":"` + pageURL + `"}]}`
	req, _ := http.NewRequest("POST", srv.base+"/v1/events", strings.NewReader(body))
	req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	req.Header.Set("Origin", srv.base)
	doJSON(t, req, http.StatusOK)
	req, _ = http.NewRequest("POST", srv.base+"/v1/events", strings.NewReader(body))
	req.Header.Set("Origin", "https://elsewhere.example")
	if resp, err := httpClient.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("another origin: %v %v, want 403", resp, err)
	}
	var after map[string]float64
	waitFor(t, 10*time.Second, "the dwell in the attention heat", func() bool {
		after = heatOf()
		return after["total"] >= before["total"]+3000
	})
	if after["total"] != before["total"]+3000 || after["item:aud-01"] != before["item:aud-01"]+2400 || after["item:aud-02"] != before["item:aud-02"]+600 {
		t.Fatalf("heat before %v, after %v: want +2400 on item:aud-01, +600 on item:aud-02", before, after)
	}
}
