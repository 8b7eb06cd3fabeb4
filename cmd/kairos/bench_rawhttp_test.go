package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestRawHTTP: the load generator's client reuses its connections, reads
// Content-Length and chunked answers whole, reports a non-2xx answer as an
// error, and dials again after the server closes a connection.
func TestRawHTTP(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer sk" {
			http.Error(w, "no key", http.StatusUnauthorized)
			return
		}
		switch r.URL.Query().Get("kind") {
		case "chunked":
			for i := range 3 {
				fmt.Fprintf(w, "part %d %s\n", i, strings.Repeat("x", 5000))
				w.(http.Flusher).Flush()
			}
		case "close":
			w.Header().Set("Connection", "close")
			fmt.Fprint(w, "bye")
		case "fail":
			http.Error(w, "broken", http.StatusServiceUnavailable)
		default:
			fmt.Fprint(w, `{"ok":true}`)
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	ctx := context.Background()

	rc, err := newRawHTTP(srv.URL, http.Header{"Authorization": {"Bearer sk"}}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.close()
	for range 5 {
		if err := rc.do(ctx, rc.request("/?kind=plain")); err != nil {
			t.Fatalf("plain: %v", err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("5 sequential requests used %d connections, want 1 (keep-alive)", n)
	}
	if err := rc.do(ctx, rc.request("/?kind=chunked")); err != nil {
		t.Fatalf("chunked: %v", err)
	}
	if err := rc.do(ctx, rc.request("/?kind=plain")); err != nil || conns.Load() != 1 {
		t.Fatalf("after a chunked answer: err %v, connections %d (want the same one)", err, conns.Load())
	}
	if err := rc.do(ctx, rc.request("/?kind=fail")); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("503 answer: err %v, want status 503", err)
	}
	if err := rc.do(ctx, rc.request("/?kind=close")); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := rc.do(ctx, rc.request("/?kind=plain")); err != nil || conns.Load() != 2 {
		t.Fatalf("after the server closed: err %v, connections %d (want a second one)", err, conns.Load())
	}

	noKey, err := newRawHTTP(srv.URL, nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer noKey.close()
	if err := noKey.do(ctx, noKey.request("/")); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("no key: err %v, want status 401", err)
	}
	if _, err := newRawHTTP("https://example.com", nil, time.Second); err == nil {
		t.Fatal("https accepted by the raw client")
	}
}

// TestBenchHTTPRaw: `kairos bench http` with the raw client sends the
// recommendation query it is given, at the rate asked, and counts what it
// measured.
func TestBenchHTTPRaw(t *testing.T) {
	var mu sync.Mutex
	visitors := map[string]bool{}
	var bad atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.URL.Path != "/v1/recommendations" || q.Get("n") != "7" || q.Get("filter") != `category == "bags"` ||
			r.Header.Get("Authorization") != "Bearer sk_x" {
			bad.Add(1)
		}
		mu.Lock()
		visitors[q.Get("visitor")] = true
		mu.Unlock()
		fmt.Fprint(w, `{"items":[]}`)
	}))
	defer srv.Close()
	var out, errb bytes.Buffer
	args := []string{"--url", srv.URL, "--key", "sk_x", "--rate", "400", "--duration", "1s", "--warmup", "100ms",
		"--visitors", "5", "--n", "7", "--filter", `category == "bags"`}
	if err := runBenchHTTP(context.Background(), args, &out, &errb); err != nil {
		t.Fatalf("bench http: %v (%s)", err, errb.String())
	}
	var res httpBenchResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("result %q: %v", out.String(), err)
	}
	if res.Requests < 300 || res.Errors != 0 || res.P99ms <= 0 || res.P50ms > res.P99ms {
		t.Fatalf("result %+v: want ~400 requests, no errors, 0 < p50 ≤ p99", res)
	}
	if bad.Load() != 0 {
		t.Fatalf("%d requests without the path, n, filter or key asked for", bad.Load())
	}
	if len(visitors) != 5 {
		t.Fatalf("visitors seen %v, want v0…v4", visitors)
	}
	if err := runBenchHTTP(context.Background(), []string{"--client", "curl"}, &out, &errb); err == nil {
		t.Fatal("--client curl accepted")
	}
}

// TestBenchHTTPTimeline: --timeline slices the run by scheduled start;
// the slices hold every measured request, and a stall of the server shows
// in the slice it happened in.
func TestBenchHTTPTimeline(t *testing.T) {
	var stalled atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if stalled.Load() {
			time.Sleep(60 * time.Millisecond)
		}
		fmt.Fprint(w, `{}`)
	}))
	defer srv.Close()
	go func() { // 100 ms of warm-up, then a stall 400–550 ms into the measurement
		time.Sleep(500 * time.Millisecond)
		stalled.Store(true)
		time.Sleep(150 * time.Millisecond)
		stalled.Store(false)
	}()
	var out, errb bytes.Buffer
	args := []string{"--url", srv.URL, "--rate", "300", "--duration", "1s", "--warmup", "100ms", "--timeline", "100ms"}
	if err := runBenchHTTP(context.Background(), args, &out, &errb); err != nil {
		t.Fatalf("bench http: %v (%s)", err, errb.String())
	}
	var res httpBenchResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("result %q: %v", out.String(), err)
	}
	n, worst := 0, 0.0
	for i, b := range res.Timeline {
		n += b.Requests
		worst = max(worst, b.Maxms)
		if i > 0 && b.AtS <= res.Timeline[i-1].AtS || b.Requests == 0 || b.P99ms > b.Maxms {
			t.Fatalf("slice %d %+v after %+v: want increasing starts, requests, p99 ≤ max", i, b, res.Timeline[max(0, i-1)])
		}
	}
	if len(res.Timeline) < 8 || n != res.Requests-res.Errors || worst != res.Maxms {
		t.Fatalf("%d slices with %d requests and max %v ms; the run: %d requests, max %v ms", len(res.Timeline), n, worst, res.Requests, res.Maxms)
	}
	if worst < 50 {
		t.Fatalf("no slice shows the 60 ms stall: %+v", res.Timeline)
	}
}

// An empty URL flag (an unset shell variable) is an error naming the
// flag, not a silent run against the defaults that leaves its queues and
// keys behind.
func TestBenchIngestRefusesEmptyURLs(t *testing.T) {
	for _, flag := range []string{"--amqp-url", "--redis-url"} {
		var stderr strings.Builder
		code := run(context.Background(), []string{"bench", "ingest", flag, ""}, io.Discard, &stderr)
		if code == 0 || !strings.Contains(stderr.String(), flag+" is empty") {
			t.Errorf("bench ingest %s \"\": exit %d, stderr %q; want an error naming the flag", flag, code, stderr.String())
		}
	}
}
