package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestServeHTTPFlags: the api.Config settings that kairos serve exposes,
// from flags and from KAIROS_* variables (the flag wins).
func TestServeHTTPFlags(t *testing.T) {
	for _, name := range []string{"REQUIRE_ORIGIN", "TRUSTED_PROXIES", "METRICS_PUBLIC", "MAX_STREAMS", "MAX_STREAMS_PER_VISITOR"} {
		t.Setenv("KAIROS_"+name, "")
	}
	c, err := parseServeConfig([]string{"--data-dir", t.TempDir()}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.RequireOrigin || c.MetricsPublic || len(c.TrustedProxies) != 0 || c.MaxStreams != 10000 || c.MaxStreamsPerVisitor != 8 {
		t.Errorf("defaults: %+v", c)
	}
	c, err = parseServeConfig([]string{"--data-dir", t.TempDir(), "--require-origin", "--metrics-public",
		"--trusted-proxies", " 10.0.0.0/8, 192.0.2.10 ,2001:db8::/32", "--max-streams", "100", "--max-streams-per-visitor", "3"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !c.RequireOrigin || !c.MetricsPublic || fmt.Sprint(c.TrustedProxies) != "[10.0.0.0/8 192.0.2.10 2001:db8::/32]" ||
		c.MaxStreams != 100 || c.MaxStreamsPerVisitor != 3 {
		t.Errorf("flags: %+v", c)
	}
	t.Setenv("KAIROS_REQUIRE_ORIGIN", "true")
	t.Setenv("KAIROS_TRUSTED_PROXIES", "172.16.0.0/12")
	t.Setenv("KAIROS_METRICS_PUBLIC", "1")
	t.Setenv("KAIROS_MAX_STREAMS", "50")
	t.Setenv("KAIROS_MAX_STREAMS_PER_VISITOR", "2")
	c, err = parseServeConfig([]string{"--data-dir", t.TempDir(), "--max-streams", "60"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !c.RequireOrigin || !c.MetricsPublic || fmt.Sprint(c.TrustedProxies) != "[172.16.0.0/12]" || c.MaxStreams != 60 || c.MaxStreamsPerVisitor != 2 {
		t.Errorf("environment: %+v", c)
	}
}

// TestServeHTTPFlagsInvalid: every problem is reported at once, each
// naming the flag and the bad value.
func TestServeHTTPFlagsInvalid(t *testing.T) {
	t.Setenv("KAIROS_METRICS_PUBLIC", "maybe")
	_, err := parseServeConfig([]string{"--data-dir", t.TempDir(),
		"--trusted-proxies", "10.0.0.0/33,proxy.example,10.1.2.3/8,198.51.100.77", "--max-streams", "2", "--max-streams-per-visitor", "3"}, io.Discard)
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, want := range []string{
		`$KAIROS_METRICS_PUBLIC: strconv.ParseBool: parsing "maybe"`,
		`--trusted-proxies: "10.0.0.0/33" is not a CIDR`,
		`--trusted-proxies: "proxy.example" is neither a CIDR nor an IP address`,
		`--trusted-proxies: "10.1.2.3/8" has bits set beyond its /8 mask (did you mean 10.0.0.0/8?)`,
		"--max-streams-per-visitor 3 is larger than --max-streams 2",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q", want)
		}
	}
	if strings.Contains(msg, "198.51.100.77") {
		t.Errorf("a valid proxy address is reported")
	}
	if t.Failed() {
		t.Logf("error:\n%s", msg)
	}
	t.Setenv("KAIROS_METRICS_PUBLIC", "")
	if _, err := parseServeConfig([]string{"--data-dir", t.TempDir(), "--max-streams", "0"}, io.Discard); err == nil ||
		!strings.Contains(err.Error(), "--max-streams 0 and --max-streams-per-visitor 8 must be >= 1") {
		t.Errorf("--max-streams 0: %v", err)
	}
}

// TestServeTrustedProxies runs kairos serve (embedded) with a
// publishable rate of one request per 5 s per client IP, and checks whose
// address the limit counts: behind a trusted proxy (the test connects
// from 127.0.0.1, listed in --trusted-proxies) each X-Forwarded-For
// client has its own bucket; without --trusted-proxies, or with a proxy
// range that does not hold the peer, X-Forwarded-For is ignored and every
// request counts against the peer. The server without trusted proxies
// also has --require-origin and --metrics-public.
func TestServeTrustedProxies(t *testing.T) {
	post := func(t *testing.T, srv *testServer, xff string, status int) {
		t.Helper()
		req, _ := http.NewRequest("POST", srv.base+"/v1/events",
			strings.NewReader(`[{"id":"e-`+xff+`","type":"view","visitor":"v1","item":"i1"}]`))
		req.Header.Set("Authorization", "Bearer pk_test_0123456789abcdef")
		req.Header.Set("Origin", "https://shop.example")
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != status {
			t.Fatalf("POST /v1/events from %q: %d %s, want %d", xff, resp.StatusCode, body, status)
		}
		if status == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
			t.Errorf("429 without Retry-After")
		}
	}
	limited := []string{"--publishable-rate", "0.2", "--allowed-origins", "https://shop.example"} // burst 1

	t.Run("trusted proxy", func(t *testing.T) {
		srv := startServer(t, append(limited, "--trusted-proxies", "10.0.0.0/8,127.0.0.1/32")...)
		post(t, srv, "203.0.113.1", 200)
		post(t, srv, "203.0.113.1", 429)
		post(t, srv, "203.0.113.2", 200)
		post(t, srv, "198.51.100.4, 203.0.113.2", 429) // the right-most untrusted address is the client
		post(t, srv, "198.51.100.4, 10.1.1.1", 200)    // 10.1.1.1 is a trusted hop: 198.51.100.4 is the client
		post(t, srv, "", 200)                          // the proxy itself
		post(t, srv, "", 429)
		resp, err := httpClient.Get(srv.base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("/metrics without a key: %d, want 401", resp.StatusCode)
		}
	})
	t.Run("no trusted proxy", func(t *testing.T) {
		srv := startServer(t, append(limited, "--require-origin", "--metrics-public")...)
		// --require-origin: no Origin nor Referer is refused (before the
		// rate limit takes a token).
		req, _ := http.NewRequest("POST", srv.base+"/v1/events", strings.NewReader(`[]`))
		req.Header.Set("Authorization", "Bearer pk_test_0123456789abcdef")
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("no Origin with --require-origin: %d, want 403", resp.StatusCode)
		}
		post(t, srv, "203.0.113.1", 200)
		post(t, srv, "203.0.113.2", 429) // the peer's bucket
		post(t, srv, "", 429)

		// --metrics-public: /metrics without a key.
		resp, err = httpClient.Get(srv.base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), "kairos_promotion_streams_open 0\n") {
			t.Errorf("/metrics without a key: %d\n%.300s", resp.StatusCode, body)
		}
	})
	t.Run("proxy range without the peer", func(t *testing.T) {
		srv := startServer(t, append(limited, "--trusted-proxies", "10.0.0.0/8")...)
		post(t, srv, "203.0.113.1", 200)
		post(t, srv, "203.0.113.2", 429)
	})
}

// TestServeStreamLimits runs kairos serve (embedded) with
// --max-streams 2 --max-streams-per-visitor 1: a visitor's second stream
// and the server's third are answered 503 with Retry-After; closing a
// stream frees its place.
func TestServeStreamLimits(t *testing.T) {
	srv := startServer(t, "--max-streams", "2", "--max-streams-per-visitor", "1", "--allowed-origins", "https://shop.example")
	open := func(visitor string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.base+"/v1/promotions/stream?visitor="+visitor+"&key=pk_test_0123456789abcdef", nil)
		req.Header.Set("Origin", "https://shop.example")
		resp, err := (&http.Client{Transport: &http.Transport{}}).Do(req) // a connection of its own
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	refused := func(visitor, limit string) {
		t.Helper()
		resp := open(visitor)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), limit) {
			t.Fatalf("stream of %s: %d, Retry-After %q, %s; want 503 naming %q", visitor, resp.StatusCode, resp.Header.Get("Retry-After"), body, limit)
		}
	}
	a := open("v1")
	if a.StatusCode != 200 {
		t.Fatalf("first stream: %d", a.StatusCode)
	}
	refused("v1", "limit of 1 open streams per visitor")
	if b := open("v2"); b.StatusCode != 200 {
		t.Fatalf("v2's stream: %d", b.StatusCode)
	}
	refused("v3", "the server's limit of 2 open streams")
	a.Body.Close()
	waitFor(t, 5*time.Second, "the closed stream's place", func() bool {
		resp := open("v3")
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}
