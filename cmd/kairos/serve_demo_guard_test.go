package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// startDemoWith starts kairos serve --demo (embedded) on a free loopback
// port with extra flags; seeded waits for the shop to seed.
func startDemoWith(t *testing.T, seeded bool, flags ...string) *testServer {
	t.Helper()
	args := append([]string{"--secret-key", "sk_test_0123456789abcdef", "--publishable-key", "pk_test_0123456789abcdef", "--log-level", "error",
		"--data-dir", t.TempDir(), "--amqp-url", "", "--redis-url", "", "--namespace", "kairos", "--addr", "127.0.0.1:0", "--demo"}, flags...)
	srv := startServe(t, args, nil)
	waitFor(t, 30*time.Second, "the shop to serve", func() bool {
		resp, err := httpClient.Get(srv.base + "/shop/api/status")
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return !seeded || strings.Contains(string(b), `"seeded":true`)
	})
	return srv
}

// shopGet gets a shop path as client (X-Forwarded-For) with cookies.
func shopGet(t *testing.T, srv *testServer, path, client string, cookies []*http.Cookie) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.base+path, nil)
	if client != "" {
		req.Header.Set("X-Forwarded-For", client)
	}
	for _, c := range cookies {
		req.AddCookie(c)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// TestDemoShopKeepsSecretKeyBucket: the demo shop's back end calls the
// API with a key of its own, so a flood of shop requests (and the seed)
// cannot drain the site's secret key's rate bucket. With --secret-rate 1
// (a bucket of 2), the site's key still has both tokens after the flood.
func TestDemoShopKeepsSecretKeyBucket(t *testing.T) {
	srv := startDemoWith(t, false, "--secret-rate", "1")
	resp, _ := shopGet(t, srv, "/", "", nil)
	cookies := resp.Cookies()
	for range 20 {
		shopGet(t, srv, "/shop/api/recommendations?n=4", "", cookies)
		shopGet(t, srv, "/shop/p/aud-01", "", cookies)
	}
	for range 2 {
		req, _ := http.NewRequest("GET", srv.base+"/v1/recommendations?visitor=v1", nil)
		req.Header.Set("Authorization", "Bearer sk_test_0123456789abcdef")
		doJSON(t, req, http.StatusOK) // fails the test on a 429
	}
}

// TestDemoShopGuards runs kairos serve --demo behind a trusted proxy:
// the shop's answers carry the CSP, nosniff and frame headers, static
// assets are never listed, its recommendation proxy refuses a cookie
// that names another visitor or a user, and bounds each client (the
// X-Forwarded-For client of the trusted proxy) on its own.
func TestDemoShopGuards(t *testing.T) {
	srv := startDemoWith(t, true, "--trusted-proxies", "127.0.0.1/32")
	resp, page := shopGet(t, srv, "/", "203.0.113.1", nil)
	h := resp.Header
	if resp.StatusCode != 200 || !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") ||
		!strings.Contains(h.Get("Content-Security-Policy"), "script-src 'self';") || h.Get("X-Content-Type-Options") != "nosniff" || h.Get("X-Frame-Options") != "DENY" {
		t.Errorf("GET /: %d, headers %v", resp.StatusCode, h)
	}
	if !strings.Contains(page, `data-key="pk_test_0123456789abcdef"`) {
		t.Fatalf("page without the tracker")
	}
	if resp, body := shopGet(t, srv, "/shop/static/", "", nil); resp.StatusCode != 404 || strings.Contains(body, `href="site.css"`) {
		t.Errorf("/shop/static/: %d (a listing?)\n%.300s", resp.StatusCode, body)
	}
	cookies := resp.Cookies()
	if len(cookies) != 2 {
		t.Fatalf("visitor cookies %v", cookies)
	}

	// A cookie naming someone else.
	for _, forged := range []string{"demo-bg-001", "user:u-1"} {
		fc := []*http.Cookie{{Name: "kairos_vid", Value: forged}, cookies[1]}
		if cookies[1].Name != "kairos_demo_vsig" {
			fc[1] = cookies[0]
		}
		if resp, body := shopGet(t, srv, "/shop/api/recommendations", "203.0.113.1", fc); resp.StatusCode != http.StatusForbidden {
			t.Errorf("forged visitor %q: %d %s, want 403", forged, resp.StatusCode, body)
		}
	}

	// Client 203.0.113.1 exhausts its budget (burst 40 at 10/s, one spent on
	// the page); client
	// 203.0.113.2, behind the same proxy, is served.
	limited := 0
	for i := range 80 {
		resp, body := shopGet(t, srv, "/shop/api/recommendations?n=4", "203.0.113.1", cookies)
		if resp.StatusCode == http.StatusTooManyRequests {
			if resp.Header.Get("Retry-After") == "" || i < 39 { // the page took one token
				t.Fatalf("429 after %d requests, Retry-After %q", i, resp.Header.Get("Retry-After"))
			}
			limited++
			break
		}
		if resp.StatusCode != 200 || !strings.Contains(body, `"strategy"`) {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, body)
		}
	}
	if limited == 0 {
		t.Fatal("80 requests of one client were all served")
	}
	if resp, body := shopGet(t, srv, "/shop/api/recommendations?n=4", "203.0.113.2", cookies); resp.StatusCode != 200 {
		t.Errorf("another client behind the proxy: %d %s", resp.StatusCode, body)
	}
}
