package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/kairoshq/kairos/api"
	"github.com/kairoshq/kairos/api/openapitest"
	"github.com/kairoshq/kairos/internal/redisconn"
)

// TestMain lets the test binary act as the kairos binary: with
// KAIROS_E2E_CHILD set it runs the command line in KAIROS_E2E_ARGS (tab
// separated) and exits, so crash tests can kill a real server process.
func TestMain(m *testing.M) {
	if os.Getenv("KAIROS_E2E_CHILD") != "" {
		os.Exit(run(context.Background(), strings.Split(os.Getenv("KAIROS_E2E_ARGS"), "\t"), os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func amqpURL() string  { return envOr("KAIROS_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/") }
func redisURL() string { return envOr("KAIROS_REDIS_URL", "redis://127.0.0.1:6379/0") }

// requireServices skips (or, under CI=true, fails) when RabbitMQ or Redis
// cannot be reached; tests and benchmarks alike.
func requireServices(t testing.TB) {
	t.Helper()
	var problems []string
	if c, err := amqp.Dial(amqpURL()); err != nil {
		problems = append(problems, fmt.Sprintf("RabbitMQ at %s: %v", amqpURL(), err))
	} else {
		c.Close()
	}
	rc, err := redisconn.New(redisURL(), redisconn.Options{})
	if err == nil {
		err = rc.Ping(context.Background()).Err()
		rc.Close()
	}
	if err != nil {
		problems = append(problems, fmt.Sprintf("Redis at %s: %v", redisURL(), err))
	}
	if len(problems) == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("services unreachable under CI=true: %s", strings.Join(problems, "; "))
	}
	t.Skipf("services unreachable: %s", strings.Join(problems, "; "))
}

// testNamespace returns a unique namespace and removes its RabbitMQ
// objects and Redis keys when the test ends.
func testNamespace(t *testing.T) string {
	t.Helper()
	ns := fmt.Sprintf("kt%d", rand.Uint32())
	t.Cleanup(func() { cleanNamespace(t, ns) })
	return ns
}

// tenantsTestNamespace returns a fresh namespace for a multi-tenant
// server whose Redis keys and RabbitMQ queues and exchanges — the tenants
// ids' own and the shared partitions' — are deleted when the test ends.
func tenantsTestNamespace(t *testing.T, ids ...string) string {
	t.Helper()
	ns := testNamespace(t)
	t.Cleanup(func() {
		for _, id := range ids {
			cleanNamespace(t, tenantNamespace(ns, id))
		}
		cleanNamespace(t, sharedBusPrefix(ns))
	})
	return ns
}

func cleanNamespace(t *testing.T, ns string) {
	deleteRedisPrefix(redisURL(), ns)
	deleteNamespaceQueues(amqpURL(), ns)
}

// testServer is a running in-process app.
type testServer struct {
	app    *app
	base   string
	cancel context.CancelFunc
	done   chan error
	// unchecked sends postEvents and recommend without the OpenAPI
	// validation (for latency measurements, which it would inflate).
	unchecked bool
}

// client is httpClient, or without validation when s.unchecked.
func (s *testServer) client() *http.Client {
	if s.unchecked {
		return uncheckedClient
	}
	return httpClient
}

// startServer starts `kairos serve` in process with the given extra flags
// on a free loopback port, with fixed keys.
func startServer(t *testing.T, flags ...string) *testServer {
	t.Helper()
	return startServerWith(t, nil, flags...)
}

// startServerWith is startServer with the parsed configuration changed by
// mod (nil: unchanged), e.g. to set its clock.
func startServerWith(t *testing.T, mod func(*serveConfig), flags ...string) *testServer {
	t.Helper()
	// Embedded unless flags say otherwise: the test script exports
	// KAIROS_AMQP_URL and KAIROS_REDIS_URL, which would otherwise apply.
	args := append([]string{"--secret-key", "sk_test_0123456789abcdef", "--publishable-key", "pk_test_0123456789abcdef", "--log-level", "warn", "--publishable-rate", "100000",
		"--data-dir", t.TempDir(), "--blend-below", "1", "--amqp-url", "", "--redis-url", "", "--namespace", "kairos"}, flags...)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return startServeWith(t, args, ln, mod)
}

// startServices starts kairos serve with flags on RabbitMQ and Redis
// (requireServices) under a namespace of its own.
func startServices(t *testing.T, flags ...string) *testServer {
	t.Helper()
	requireServices(t)
	ns := testNamespace(t)
	return startServer(t, append([]string{"--amqp-url", amqpURL(), "--redis-url", redisURL(), "--namespace", ns}, flags...)...)
}

// startServe starts `kairos serve args` in process, listening on ln (nil:
// the listener the app opens on --addr), and stops it on cleanup.
func startServe(tb testing.TB, args []string, ln net.Listener) *testServer {
	tb.Helper()
	return startServeWith(tb, args, ln, nil)
}

// startServeWith is startServe with the parsed configuration changed by
// mod (nil: unchanged).
func startServeWith(tb testing.TB, args []string, ln net.Listener, mod func(*serveConfig)) *testServer {
	tb.Helper()
	cfg, err := parseServeConfig(args, io.Discard)
	if err != nil {
		tb.Fatal(err)
	}
	if mod != nil {
		mod(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := newApp(ctx, cfg, io.Discard, io.Discard)
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	if ln != nil {
		a.listener = ln
	}
	s := &testServer{app: a, base: "http://" + a.listener.Addr().String(), cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- a.Run(ctx) }()
	tb.Cleanup(func() { s.stop(tb) })
	return s
}

// stop shuts the server down gracefully (idempotent).
func (s *testServer) stop(t testing.TB) {
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.cancel = nil
	if err := <-s.done; err != nil {
		t.Errorf("server stopped with %v", err)
	}
	s.app.Close()
}

func (s *testServer) postEvents(t *testing.T, events any) map[string]any {
	t.Helper()
	b, _ := json.Marshal(events)
	req, _ := http.NewRequest(http.MethodPost, s.base+"/v1/events", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer pk_test_0123456789abcdef")
	req.Header.Set("Content-Type", "application/json")
	return doJSONWith(t, s.client(), req, http.StatusOK)
}

// postAll posts events in batches of 500 (the API's batch limit), fails
// the test when a batch has nothing accepted, and returns the number of
// events accepted.
func (s *testServer) postAll(t *testing.T, events []map[string]any) (accepted float64) {
	t.Helper()
	for start := 0; start < len(events); start += 500 {
		out := s.postEvents(t, events[start:min(start+500, len(events))])
		if out["accepted"].(float64) == 0 {
			t.Fatalf("nothing accepted: %v", out)
		}
		accepted += out["accepted"].(float64)
	}
	return accepted
}

func (s *testServer) recommend(t *testing.T, visitor string, n int) (strategy string, items []string) {
	t.Helper()
	return s.recommendUser(t, visitor, "", n)
}

func (s *testServer) recommendUser(t *testing.T, visitor, user string, n int) (strategy string, items []string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/v1/recommendations?visitor=%s&user=%s&n=%d", s.base, visitor, user, n), nil)
	req.Header.Set("Authorization", "Bearer sk_test_0123456789abcdef")
	out := doJSONWith(t, s.client(), req, http.StatusOK)
	for _, it := range out["items"].([]any) {
		items = append(items, it.(map[string]any)["item"].(string))
	}
	return out["strategy"].(string), items
}

// apiCheck validates every exchange of httpClient against the API's
// OpenAPI description: an undescribed route or an answer the description
// does not allow fails the request (and so the test).
var apiCheck = func() *openapitest.Validator {
	v, err := openapitest.New(api.OpenAPI())
	if err != nil {
		panic(err)
	}
	return v
}()

var httpClient = &http.Client{Timeout: 10 * time.Second, Transport: apiCheck.Transport(nil)}

// uncheckedClient is httpClient without the validation.
var uncheckedClient = &http.Client{Timeout: 10 * time.Second}

// secretDo sends method path (no body) with the secret key through
// httpClient, fails t unless the answer has status want, and returns its
// body.
func (s *testServer) secretDo(t *testing.T, method, path string, want int) []byte {
	t.Helper()
	req, _ := http.NewRequest(method, s.base+path, nil)
	req.Header.Set("Authorization", "Bearer sk_test_0123456789abcdef")
	return sendExpect(t, req, want)
}

// sendExpect sends req with httpClient (validated against
// api/openapi.json), fails t unless the answer has status want, and
// returns its body.
func sendExpect(t testing.TB, req *http.Request, want int) []byte {
	t.Helper()
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d %s (want %d)", req.Method, req.URL.Path, resp.StatusCode, b, want)
	}
	return b
}

// waitTrending waits until a visitor without events gets the trending
// list: trending's top list is refreshed apart from the commits, so it
// holds events posted before only a moment later.
func (s *testServer) waitTrending(t *testing.T, visitor string) {
	t.Helper()
	waitFor(t, 10*time.Second, "a visitor without events to get trending", func() bool {
		st, _ := s.recommend(t, visitor, 5)
		return st == "trending"
	})
}

func doJSON(t *testing.T, req *http.Request, want int) map[string]any {
	t.Helper()
	return doJSONWith(t, httpClient, req, want)
}

func doJSONWith(t *testing.T, c *http.Client, req *http.Request, want int) map[string]any {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d %s (want %d)", req.Method, req.URL.Path, resp.StatusCode, body, want)
	}
	var out map[string]any
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("%s %s: %v in %s", req.Method, req.URL.Path, err, body)
	}
	return out
}

// clusterBatch returns events of visitors base-c<cluster>-<i> viewing and
// clicking items c<cluster>-<j> of their own cluster.
func clusterBatch(prefix string, clusters, visitors, items, per int, seed uint64) []map[string]any {
	rng := rand.New(rand.NewPCG(seed, 9))
	var evs []map[string]any
	now := time.Now().Add(-time.Hour)
	n := 0
	for c := range clusters {
		for v := range visitors {
			for j := range per {
				typ := "view"
				if j%3 == 0 {
					typ = "click"
				}
				evs = append(evs, map[string]any{
					"id": fmt.Sprintf("%s-%d", prefix, n), "type": typ, "visitor": fmt.Sprintf("%s-c%d-%d", prefix, c, v),
					"item": fmt.Sprintf("c%d-item%d", c, rng.IntN(items)), "ts": now.Add(time.Duration(n) * time.Millisecond).UnixMilli(),
				})
				n++
			}
		}
	}
	return evs
}

// queueExists reports whether the queue q is declared on the broker of
// amqpURL (a passive declare on a channel of its own).
func queueExists(t *testing.T, q string) bool {
	t.Helper()
	conn, err := amqp.Dial(amqpURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	_, err = ch.QueueDeclarePassive(q, true, false, false, false, nil)
	var ae *amqp.Error
	if errors.As(err, &ae) && ae.Code == amqp.NotFound {
		return false
	}
	if err != nil {
		t.Fatalf("declare %s passively: %v", q, err)
	}
	return true
}
