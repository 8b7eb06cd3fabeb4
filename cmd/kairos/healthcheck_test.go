package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestHealthcheckAgainstServe probes a real `kairos serve` on both stores
// through the healthcheck command, as the container's HEALTHCHECK does,
// then probes it again once it has stopped.
func TestHealthcheckAgainstServe(t *testing.T) {
	stores := []struct {
		name  string
		flags func(t *testing.T) []string
	}{
		{"embedded", func(*testing.T) []string { return nil }},
		{"rabbitmq-redis", func(t *testing.T) []string {
			requireServices(t)
			return []string{"--amqp-url", amqpURL(), "--redis-url", redisURL(), "--namespace", testNamespace(t)}
		}},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			srv := startServer(t, st.flags(t)...)
			addr := strings.TrimPrefix(srv.base, "http://")
			_, port, _ := net.SplitHostPort(addr)
			for _, tc := range []struct {
				name string
				args []string
				want string
			}{
				{"readyz by addr", []string{"--addr", addr}, `/readyz: {"status":"ready"}`},
				{"healthz by addr", []string{"--addr", addr, "--live"}, `/healthz: {"status":"ok"}`},
				{"wildcard addr probes loopback", []string{"--addr", "0.0.0.0:" + port}, `http://127.0.0.1:` + port + `/readyz: {"status":"ready"}`},
				{"url", []string{"--url", srv.base + "/healthz"}, `{"status":"ok"}`},
			} {
				t.Run(tc.name, func(t *testing.T) {
					code, stdout, stderr := runCmd(t, append([]string{"healthcheck"}, tc.args...)...)
					if code != 0 || !strings.Contains(stdout, tc.want) {
						t.Fatalf("exit %d, stdout %q (want %q), stderr %q", code, stdout, tc.want, stderr)
					}
				})
			}
			srv.stop(t)
			code, _, stderr := runCmd(t, "healthcheck", "--addr", addr)
			if code != 1 || !strings.Contains(stderr, "http://"+addr+"/readyz") || !strings.Contains(stderr, "connection refused") {
				t.Fatalf("stopped server: exit %d, stderr %q; want 1 naming the URL and the refused connection", code, stderr)
			}
		})
	}
}

// TestHealthcheckFailures checks that every way a probe can fail exits 1
// with a message naming the problem.
func TestHealthcheckFailures(t *testing.T) {
	notReady := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":{"code":"unavailable","message":"not ready: redis: connection refused"}}`, http.StatusServiceUnavailable)
	}))
	defer notReady.Close()
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // never answers; the probe's timeout ends it
	}))
	defer hanging.Close()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"not ready", []string{"--url", notReady.URL + "/readyz"}, "503 Service Unavailable"},
		{"no answer", []string{"--url", hanging.URL + "/readyz", "--timeout", "100ms"}, "no answer within 100ms"},
		{"bad addr", []string{"--addr", "localhost"}, `--addr "localhost": want host:port`},
		{"bad url", []string{"--url", "ftp://example.com/readyz"}, "want an absolute http(s) URL"},
		{"bad timeout", []string{"--timeout", "0s"}, "--timeout 0s must be > 0"},
		{"extra argument", []string{"now"}, `unexpected arguments ["now"]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCmd(t, append([]string{"healthcheck"}, tc.args...)...)
			if code != 1 || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want 1 and %q", code, stderr, tc.want)
			}
		})
	}
}
