package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/internal/errs"
	"github.com/kairoshq/kairos/signals"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	testSK  = "sk_test_secret_key_0001"
	testSK2 = "sk_test_secret_key_0002" // rotation: the second secret key
	testPK  = "pk_test_publishable_0001"
	allowed = "https://shop.example"
)

// testNow is the server clock in tests.
var testNow = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

// fakePublisher records published batches; err, when set, fails Publish;
// block, when set, makes Publish wait for ctx; gate, when set, makes it
// wait until gate is closed.
type fakePublisher struct {
	mu      sync.Mutex
	batches [][]signals.Event
	err     error
	block   bool
	gate    chan struct{}
	wait    int // calls waiting at the gate
}

func (p *fakePublisher) Publish(ctx context.Context, events []signals.Event) error {
	p.mu.Lock()
	err, block, gate := p.err, p.block, p.gate
	p.mu.Unlock()
	if block {
		<-ctx.Done()
		return fmt.Errorf("fake: %w", ctx.Err())
	}
	if gate != nil {
		p.mu.Lock()
		p.wait++
		p.mu.Unlock()
		<-gate
	}
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.batches = append(p.batches, append([]signals.Event(nil), events...))
	p.mu.Unlock()
	return nil
}

// waiting is the number of calls that reached the gate.
func (p *fakePublisher) waiting() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.wait
}

func (p *fakePublisher) events() []signals.Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []signals.Event
	for _, b := range p.batches {
		out = append(out, b...)
	}
	return out
}

// fakeRecommender answers with resp (Items: one per n, named i0, i1, …
// when resp is zero) and records the last request.
type fakeRecommender struct {
	mu      sync.Mutex
	last    engine.RecRequest
	calls   int
	err     error
	similar map[string][]engine.Rec
	hook    func(ctx context.Context) // called first, if set
}

func (f *fakeRecommender) Recommend(ctx context.Context, r engine.RecRequest) (engine.RecResponse, error) {
	if f.hook != nil {
		f.hook(ctx)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.last, f.calls = r, f.calls+1
	if f.err != nil {
		return engine.RecResponse{}, f.err
	}
	resp := engine.RecResponse{Visitor: r.Visitor, Strategy: engine.StrategyALS}
	for i := 0; i < r.N; i++ {
		resp.Items = append(resp.Items, engine.Rec{Item: fmt.Sprintf("i%d", i), Score: float32(r.N - i)})
	}
	return resp, nil
}

func (f *fakeRecommender) SimilarTo(ctx context.Context, r engine.SimilarRequest) ([]engine.Rec, error) {
	item, n := r.Item, r.N
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	recs, ok := f.similar[item]
	if !ok {
		return nil, fmt.Errorf("fake: similar %q: %w", item, engine.ErrNotFound)
	}
	return recs[:min(n, len(recs))], nil
}

// fakeCatalog is an in-memory catalog with the engine's contract.
type fakeCatalog struct {
	mu    sync.Mutex
	items map[string]engine.Item
	now   time.Time
}

func (f *fakeCatalog) PutItem(ctx context.Context, it engine.Item) (engine.Item, error) {
	return f.put(it, false)
}

func (f *fakeCatalog) CreateItem(ctx context.Context, it engine.Item) (engine.Item, error) {
	return f.put(it, true)
}

func (f *fakeCatalog) put(it engine.Item, create bool) (engine.Item, error) {
	if it.ID == "" {
		return engine.Item{}, fmt.Errorf("fake: %w: id: missing", engine.ErrInvalid)
	}
	if len(it.Title) > 100 {
		return engine.Item{}, fmt.Errorf("fake: %w: title: longer than 100 bytes", engine.ErrInvalid)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.items == nil {
		f.items = map[string]engine.Item{}
	}
	f.now = f.now.Add(time.Second)
	it.Created, it.Updated = f.now, f.now
	if old, ok := f.items[it.ID]; ok {
		if create {
			return engine.Item{}, errs.New(errs.Conflict, "item %q already exists: use PUT /v1/items/{id} to replace it", it.ID)
		}
		it.Created = old.Created
	}
	f.items[it.ID] = it
	return it, nil
}

func (f *fakeCatalog) Item(ctx context.Context, id string) (engine.Item, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	it, ok := f.items[id]
	if !ok {
		return engine.Item{}, fmt.Errorf("fake: item %q: %w", id, engine.ErrNotFound)
	}
	return it, nil
}

func (f *fakeCatalog) DeleteItem(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.items[id]; !ok {
		return fmt.Errorf("fake: item %q: %w", id, engine.ErrNotFound)
	}
	delete(f.items, id)
	return nil
}

func (f *fakeCatalog) Items(ctx context.Context, after string, limit int) ([]engine.Item, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for id := range f.items {
		if id > after {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	var out []engine.Item
	for _, id := range ids[:min(limit, len(ids))] {
		out = append(out, f.items[id])
	}
	return out, nil
}

type fakeChecker struct{ err error }

func (f *fakeChecker) Ready(ctx context.Context) error { return f.err }

// harness is a server over fakes.
type harness struct {
	tb  testing.TB
	s   *Server
	cfg Config
	pub *fakePublisher
	rec *fakeRecommender
	cat *fakeCatalog
	chk *fakeChecker
	log *bytes.Buffer
}

// testConfig is the configuration of newHarness before mod.
func testConfig() Config {
	return Config{
		SecretKeys:      []string{testSK, testSK2},
		PublishableKeys: []string{testPK},
		AllowedOrigins:  []string{allowed, "https://*.shop.example"},
		Registry:        prometheus.NewRegistry(),
		Now:             func() time.Time { return testNow },
	}
}

func newHarness(tb testing.TB, mod func(*Config)) *harness {
	tb.Helper()
	h := &harness{tb: tb, pub: &fakePublisher{}, rec: &fakeRecommender{}, cat: &fakeCatalog{now: testNow}, chk: &fakeChecker{}, log: &bytes.Buffer{}}
	cfg := testConfig()
	cfg.Logger = slog.New(slog.NewJSONHandler(&lockedWriter{w: h.log}, nil))
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg, Deps{Publisher: h.pub, Recommender: h.rec, Catalog: h.cat, Checker: h.chk})
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	h.s, h.cfg = s, s.cfg
	return h
}

// server returns a server of h's config changed by cfgMod, with a fresh
// registry, and of h's fakes as dependencies changed by depsMod (each
// mod may be nil).
func (h *harness) server(cfgMod func(*Config), depsMod func(*Deps)) *Server {
	h.tb.Helper()
	cfg := h.cfg
	cfg.Registry = nil // a fresh registry for the second server
	if cfgMod != nil {
		cfgMod(&cfg)
	}
	d := Deps{Publisher: h.pub, Recommender: h.rec, Catalog: h.cat, Checker: h.chk}
	if depsMod != nil {
		depsMod(&d)
	}
	s, err := New(cfg, d)
	if err != nil {
		h.tb.Fatal(err)
	}
	return s
}

// serveLoopback serves s (ServeListener) on a free loopback port and
// returns its address and stop, which ends the serving and waits for it
// (an error of ServeListener fails tb).
func serveLoopback(tb testing.TB, s *Server) (addr string, stop func()) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.ServeListener(ctx, ln) }()
	return ln.Addr().String(), func() {
		cancel()
		if err := <-served; err != nil {
			tb.Errorf("ServeListener: %v", err)
		}
	}
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// req builds a request; headers are name, value pairs.
func req(method, target, body string, headers ...string) *http.Request {
	var r *http.Request
	if body == "" {
		r = httptest.NewRequest(method, target, nil)
	} else {
		r = httptest.NewRequest(method, target, strings.NewReader(body))
	}
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Set(headers[i], headers[i+1])
	}
	return r
}

// serve serves a request and checks the exchange against the OpenAPI
// description (not while fuzzing or benchmarking).
func (h *harness) serve(r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	switch h.tb.(type) {
	case *testing.F, *testing.B:
		h.s.Handler().ServeHTTP(w, r)
	default:
		openAPIValidator(h.tb).Handler(h.tb, h.s.Handler()).ServeHTTP(w, r)
	}
	return w
}

// do serves a request with the given headers.
func (h *harness) do(method, target, body string, headers ...string) *httptest.ResponseRecorder {
	return h.serve(req(method, target, body, headers...))
}

// secret serves a request with the secret key.
func (h *harness) secret(method, target, body string) *httptest.ResponseRecorder {
	return h.do(method, target, body, "Authorization", "Bearer "+testSK)
}

// apiError decodes an error answer; it fails the test if the body is not
// {"error": {"code", "message"}}.
func apiError(tb testing.TB, w *httptest.ResponseRecorder) ErrorBody {
	tb.Helper()
	var b struct {
		Error *ErrorBody `json:"error"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil || b.Error == nil {
		tb.Fatalf("status %d: body is not a JSON error: %q (%v)", w.Code, w.Body.String(), err)
	}
	if b.Error.Code == "" || b.Error.Message == "" {
		tb.Fatalf("error without code or message: %q", w.Body.String())
	}
	return *b.Error
}

// wantError checks status, code and that the message contains each of
// the fragments.
func wantError(tb testing.TB, w *httptest.ResponseRecorder, status int, code Code, fragments ...string) {
	tb.Helper()
	if w.Code != status {
		tb.Fatalf("status %d, want %d; body %s", w.Code, status, w.Body.String())
	}
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		tb.Errorf("Content-Type %q, want JSON", ct)
	}
	e := apiError(tb, w)
	if e.Code != code {
		tb.Errorf("code %q, want %q (message %q)", e.Code, code, e.Message)
	}
	for _, f := range fragments {
		if !strings.Contains(e.Message, f) {
			tb.Errorf("message %q does not contain %q", e.Message, f)
		}
	}
}

func decode[T any](tb testing.TB, w *httptest.ResponseRecorder) T {
	tb.Helper()
	var v T
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		tb.Fatalf("status %d: decode %T: %v; body %q", w.Code, v, err, w.Body.String())
	}
	return v
}

// evJSON is a valid view event.
func evJSON(id string) string {
	return `{"id":"` + id + `","type":"view","visitor":"v1","item":"sku-1","ts":"2026-11-23T09:59:00Z"}`
}

func batchJSON(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = evJSON(fmt.Sprintf("e%d", i))
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// metricValue returns the value of a counter or gauge (or the sum over
// the series of a vector).
func metricValue(tb testing.TB, c prometheus.Collector) float64 {
	tb.Helper()
	ch := make(chan prometheus.Metric, 64)
	go func() { c.Collect(ch); close(ch) }()
	var sum float64
	for m := range ch {
		var d dto.Metric
		if err := m.Write(&d); err != nil {
			tb.Fatalf("write metric: %v", err)
		}
		switch {
		case d.Counter != nil:
			sum += d.Counter.GetValue()
		case d.Gauge != nil:
			sum += d.Gauge.GetValue()
		default:
			tb.Fatalf("not a counter or gauge: %v", m.Desc())
		}
	}
	return sum
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
