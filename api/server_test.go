package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/signals"
)

func TestHealth(t *testing.T) {
	h := newHarness(t, nil)
	if w := h.do("GET", "/healthz", ""); w.Code != 200 || w.Body.String() != `{"status":"ok"}` {
		t.Errorf("healthz: %d %s", w.Code, w.Body)
	}
	if w := h.do("GET", "/readyz", ""); w.Code != 200 || w.Body.String() != `{"status":"ready"}` {
		t.Errorf("readyz: %d %s", w.Code, w.Body)
	}
	h.chk.err = fmt.Errorf("rabbitmq: %w: connection refused", signals.ErrUnavailable)
	w := h.do("GET", "/readyz", "")
	wantError(t, w, 503, CodeUnavailable, "not ready: rabbitmq: bus unavailable: connection refused")
	if w.Header().Get("Retry-After") == "" {
		t.Errorf("503 without Retry-After")
	}
	// Health stays up while not ready.
	if w := h.do("GET", "/healthz", ""); w.Code != 200 {
		t.Errorf("healthz while not ready: %d", w.Code)
	}
}

func TestMetricsExposition(t *testing.T) {
	h := newHarness(t, nil)
	h.secret("POST", "/v1/events", `[`+evJSON("a")+`,{"id":"b","type":"dwell","visitor":"v","item":"i","value":-1},`+evJSON("a")+`]`)
	h.do("GET", "/v1/pixel.gif?type=click&visitor=v&key="+testPK, "") // item missing
	h.secret("GET", "/v1/recommendations?visitor=v", "")
	h.secret("GET", "/v1/items/nope", "")
	h.do("GET", "/nowhere", "")
	h.do("FOO", "/v1/items", "")
	w := h.secret("GET", "/metrics", "")
	if w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
	body := w.Body.String()
	for _, want := range []string{
		`kairos_http_requests_total{code="200",method="POST",route="/v1/events"} 1`,
		`kairos_http_requests_total{code="400",method="GET",route="/v1/pixel.gif"} 1`,
		`kairos_http_requests_total{code="200",method="GET",route="/v1/recommendations"} 1`,
		`kairos_http_requests_total{code="404",method="GET",route="/v1/items/:id"} 1`,
		`kairos_http_requests_total{code="404",method="GET",route="unmatched"} 1`,
		`kairos_http_requests_total{code="405",method="other",route="unmatched"} 1`,
		`kairos_http_request_duration_seconds_bucket{route="/v1/recommendations",le="+Inf"} 1`,
		`kairos_http_requests_in_flight 1`, // the /metrics request itself
		`kairos_events_received_total 4`,
		`kairos_events_accepted_total 1`,
		`kairos_events_rejected_total{reason="value"} 1`,
		`kairos_events_rejected_total{reason="duplicate"} 1`,
		`kairos_events_rejected_total{reason="item"} 1`,
		`kairos_events_publish_duration_seconds_count{result="ok"} 1`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("exposition lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("exposition:\n%s", body)
	}
}

func TestMetricsSharedRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	engineMetric := prometheus.NewCounter(prometheus.CounterOpts{Name: "kairos_engine_events_applied_total", Help: "test"})
	reg.MustRegister(engineMetric)
	engineMetric.Add(7)
	h := newHarness(t, func(c *Config) { c.Registry = reg })
	if w := h.secret("GET", "/metrics", ""); !strings.Contains(w.Body.String(), "kairos_engine_events_applied_total 7\n") {
		t.Errorf("the engine's metric is not served:\n%s", w.Body)
	}
	// A second server on the same registry is refused.
	_, err := New(h.cfg, Deps{Publisher: h.pub, Recommender: h.rec, Catalog: h.cat, Checker: h.chk})
	if err == nil || !strings.Contains(err.Error(), "register metrics") {
		t.Errorf("second registration: %v", err)
	}
}

func TestRequestID(t *testing.T) {
	h := newHarness(t, nil)
	if got := h.do("GET", "/healthz", "", "X-Request-Id", "trace-42.a:b_c").Header().Get("X-Request-Id"); got != "trace-42.a:b_c" {
		t.Errorf("kept id %q", got)
	}
	a := h.do("GET", "/healthz", "", "X-Request-Id", "bad id\twith spaces").Header().Get("X-Request-Id")
	b := h.do("GET", "/healthz", "").Header().Get("X-Request-Id")
	if a == "" || a == b || strings.ContainsAny(a, " \t") {
		t.Errorf("generated ids %q %q", a, b)
	}
}

func TestErrorOf(t *testing.T) {
	tests := []struct {
		err    error
		status int
		code   Code
	}{
		{invalidf("x"), 400, CodeInvalid},
		{fmt.Errorf("wrap: %w", newError(409, CodeConflict, "c")), 409, CodeConflict},
		{echo.ErrNotFound, 404, CodeNotFound},
		{echo.ErrMethodNotAllowed, 405, CodeMethodNotAllowed},
		{echo.ErrUnsupportedMediaType, 415, CodeInvalid},
		{echo.NewHTTPError(http.StatusBadGateway), 500, CodeInternal},
		{echo.ErrUnauthorized, 401, CodeUnauthorized},
		{echo.ErrForbidden, 403, CodeForbidden},
		{echo.ErrTooManyRequests, 429, CodeRateLimited},
		{echo.ErrServiceUnavailable, 503, CodeUnavailable},
		{echo.NewHTTPError(http.StatusGatewayTimeout), 504, CodeTimeout},
		{echo.NewHTTPError(http.StatusFound), 500, CodeInternal},
		{&http.MaxBytesError{Limit: 1 << 20}, 413, CodeTooLarge},
		{fmt.Errorf("x: %w", signals.ErrBatchTooLarge), 413, CodeTooLarge},
		{fmt.Errorf("x: %w", engine.ErrNotFound), 404, CodeNotFound},
		{fmt.Errorf("%w: n: 0 is not in [1, 100]", engine.ErrInvalid), 400, CodeInvalid},
		{&signals.FieldError{Field: "ts", Reason: "r"}, 400, CodeInvalid},
		{fmt.Errorf("x: %w", signals.ErrUnavailable), 503, CodeUnavailable},
		{signals.ErrClosed, 503, CodeUnavailable},
		{fmt.Errorf("x: %w", engine.ErrUnavailable), 503, CodeUnavailable},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), 504, CodeTimeout},
		{context.Canceled, 499, CodeCanceled},
		{errors.New("other"), 500, CodeInternal},
	}
	for _, tt := range tests {
		got := errorOf(tt.err)
		if got.Status != tt.status || got.Code != tt.code || got.Message == "" {
			t.Errorf("errorOf(%v) = %d %s %q, want %d %s", tt.err, got.Status, got.Code, got.Message, tt.status, tt.code)
		}
	}
	// The code says the kind: the message does not repeat it.
	for err, want := range map[error]string{
		fmt.Errorf("%w: id: missing", engine.ErrInvalid):        "id: missing",
		fmt.Errorf("%w: item \"a\" exists", engine.ErrConflict): `item "a" exists`,
	} {
		if got := errorOf(err).Message; got != want {
			t.Errorf("errorOf(%v).Message = %q, want %q", err, got, want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := testConfig().Defaults().Validate(); err != nil {
		t.Fatalf("test config: %v", err)
	}
	if err := (Config{}).Validate(); err == nil || !strings.Contains(err.Error(), "SecretKeys: at least one") {
		t.Errorf("empty config: %v", err)
	}
	bad := Config{
		Addr:              "localhost",
		SecretKeys:        []string{"short", "pk_looks_publishable_1", "sk_has space in it_1"},
		PublishableKeys:   []string{"sk_looks_secret_key_1", "pk_looks_publishable_1"},
		AllowedOrigins:    []string{"https://shop.example/", "ftp://x", "https://a.*.example", "*", "https://*.ok.example"},
		MaxBodyBytes:      -1,
		MaxBatch:          10,
		EventLimits:       signals.Limits{MaxBatch: 20, MaxIDBytes: 300},
		DefaultResults:    50,
		MaxResults:        20,
		SecretRate:        RateLimit{Rate: -1, Burst: -2},
		RequestTimeout:    -time.Second,
		TrustedProxies:    []string{"10.0.0.0/8", "192.0.2.10", "10.1.2.3/8", "2001:db8::/32", "proxy.example", "300.0.0.1/24", "fe80::1%eth0"},
		MaxStreams:        4,
		MaxVisitorStreams: 5,
	}
	err := bad.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, want := range []string{
		`Addr "localhost"`,
		"SecretKeys[0]: 5 bytes long, shorter than the minimum 16",
		`SecretKeys[1]: starts with "pk_"`,
		"SecretKeys[2]: only printable ASCII",
		`PublishableKeys[0]: starts with "sk_"`,
		"PublishableKeys[1]: the same key is already in SecretKeys[1]",
		`AllowedOrigins[0] "https://shop.example/": an origin has no path`,
		`AllowedOrigins[1] "ftp://x"`,
		`AllowedOrigins[2] "https://a.*.example"`,
		"MaxBodyBytes is negative",
		"EventLimits.MaxBatch (20) differs from MaxBatch (10)",
		"EventLimits: limits: MaxIDBytes 300 exceeds 255",
		"DefaultResults (50) is larger than MaxResults (20)",
		"SecretRate.Rate must be a non-negative number",
		"SecretRate.Burst is negative",
		"RequestTimeout is negative",
		`TrustedProxies[2]: "10.1.2.3/8" has bits set beyond its /8 mask (did you mean 10.0.0.0/8?)`,
		`TrustedProxies[4]: "proxy.example" is neither a CIDR nor an IP address`,
		`TrustedProxies[5]: "300.0.0.1/24" is not a CIDR`,
		`TrustedProxies[6]: "fe80::1%eth0" is neither a CIDR nor an IP address`,
		"MaxVisitorStreams (5) is larger than MaxStreams (4)",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q", want)
		}
	}
	for _, ok := range []string{"TrustedProxies[0]", "TrustedProxies[1]", "TrustedProxies[3]"} {
		if strings.Contains(msg, ok) {
			t.Errorf("valid trusted proxy %s reported", ok)
		}
	}
	if negative := (Config{SecretKeys: []string{testSK}, MaxStreams: -1, MaxVisitorStreams: -2}).Validate(); negative == nil ||
		!strings.Contains(negative.Error(), "MaxStreams is negative (-1)") || !strings.Contains(negative.Error(), "MaxVisitorStreams is negative (-2)") {
		t.Errorf("negative stream limits: %v", negative)
	}
	if strings.Contains(msg, "AllowedOrigins[3]") || strings.Contains(msg, "AllowedOrigins[4]") {
		t.Errorf("valid origin patterns reported: %s", msg)
	}
	if t.Failed() {
		t.Logf("error:\n%s", msg)
	}
}

func TestNewChecksDeps(t *testing.T) {
	_, err := New(testConfig(), Deps{Publisher: &fakePublisher{}})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"Recommender is nil", "Catalog is nil", "Checker is nil"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestParseKeyList(t *testing.T) {
	if got := fmt.Sprint(ParseKeyList(" sk_a , sk_b,,")); got != "[sk_a sk_b]" {
		t.Errorf("got %s", got)
	}
	if got := ParseKeyList(""); got != nil {
		t.Errorf("empty: %v", got)
	}
}

// TestServeShutdown serves on a real socket: a request in flight when the
// context ends is finished, then Serve returns nil; no goroutine leaks
// (TestMain).
func TestServeShutdown(t *testing.T) {
	h := newHarness(t, nil)
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	h.rec.hook = func(context.Context) {
		once.Do(func() { close(entered) })
		<-release
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- h.s.ServeListener(ctx, ln) }()
	base := "http://" + ln.Addr().String()

	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	type result struct {
		status int
		body   string
		err    error
	}
	inflight := make(chan result, 1)
	go func() {
		r, _ := http.NewRequest("GET", base+"/v1/recommendations?visitor=v&n=2", nil)
		r.Header.Set("Authorization", "Bearer "+testSK)
		resp, err := client.Do(r)
		if err != nil {
			inflight <- result{err: err}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		inflight <- result{status: resp.StatusCode, body: string(b)}
	}()
	<-entered
	if h.s.Addr() == nil || h.s.Addr().String() != ln.Addr().String() {
		t.Errorf("Addr() = %v while serving", h.s.Addr())
	}
	cancel() // shut down while the request is in flight
	time.Sleep(20 * time.Millisecond)
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Errorf("still accepting connections during shutdown")
	}
	close(release)
	res := <-inflight
	if res.err != nil || res.status != 200 || !strings.Contains(res.body, `"i1"`) {
		t.Errorf("in-flight request: %d %q %v", res.status, res.body, res.err)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

func TestShutdownTimeout(t *testing.T) {
	h := newHarness(t, nil)
	release := make(chan struct{})
	entered := make(chan struct{})
	var once sync.Once
	h.rec.hook = func(ctx context.Context) {
		once.Do(func() { close(entered) })
		<-release
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- h.s.ServeListener(context.Background(), ln) }()
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	done := make(chan struct{})
	go func() {
		defer close(done)
		r, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+"/v1/recommendations?visitor=v", nil)
		r.Header.Set("Authorization", "Bearer "+testSK)
		if resp, err := client.Do(r); err == nil {
			resp.Body.Close()
		}
	}()
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err = h.s.Shutdown(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want a deadline error", err)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve after Shutdown: %v", err)
	}
	close(release)
	<-done
}

func TestServeListenError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	h := newHarness(t, func(c *Config) { c.Addr = ln.Addr().String() })
	if err := h.s.Serve(context.Background()); err == nil || !strings.Contains(err.Error(), "api: listen") {
		t.Errorf("Serve on a used port: %v", err)
	}
}

// TestBadQueryNamed: a query that does not parse (a bad escape, too many
// parameters) is a 400 that says so, not a "missing" parameter.
func TestBadQueryNamed(t *testing.T) {
	h := newHarness(t, nil)
	wantError(t, h.secret("GET", "/v1/recommendations?visitor=%ZZ", ""), 400, CodeInvalid, "query: ", "%ZZ")
	many := "visitor=v" + strings.Repeat("&x=1", 10001)
	wantError(t, h.secret("GET", "/v1/recommendations?"+many, ""), 400, CodeInvalid, "query: ")
}

// TestCompressedBodyNamed: a compressed body is refused with a message
// that names the encoding, not as a malformed batch.
func TestCompressedBodyNamed(t *testing.T) {
	h := newHarness(t, nil)
	w := h.do("POST", "/v1/events", batchJSON(1), "Authorization", "Bearer "+testSK, "Content-Encoding", "gzip")
	wantError(t, w, 400, CodeInvalid, `Content-Encoding "gzip" is not supported`)
	if len(h.pub.events()) != 0 {
		t.Fatal("events published")
	}
	if w := h.do("POST", "/v1/events", batchJSON(1), "Authorization", "Bearer "+testSK, "Content-Encoding", "identity"); w.Code != 200 {
		t.Fatalf("identity: %d %s", w.Code, w.Body)
	}
}
