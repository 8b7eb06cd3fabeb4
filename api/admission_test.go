package api

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kairoshq/kairos/signals"
	"github.com/kairoshq/kairos/signals/membus"
)

// countingReader counts the bytes read from a request body.
type countingReader struct {
	r  io.Reader
	mu sync.Mutex
	n  int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.mu.Lock()
	c.n += n
	c.mu.Unlock()
	return n, err
}

func (c *countingReader) read() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// gatedConsumer consumes a membus and applies nothing until released.
type gatedConsumer struct {
	release chan struct{}
	mu      sync.Mutex
	applied []string
}

func (g *gatedConsumer) handle(_ context.Context, batch []signals.Event) error {
	<-g.release
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, e := range batch {
		g.applied = append(g.applied, e.ID)
	}
	return nil
}

func (g *gatedConsumer) ids() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Sorted(slices.Values(g.applied))
}

// waitFor polls cond; max only guards against a hang (no timing is
// asserted).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestEventAdmission: with MaxEventRequests event requests in flight (the
// engine blocked, so their publishes wait), further event requests of
// every event route are answered 503 with Retry-After at once, before
// their body is read and without reaching the publisher, and counted;
// the requests in flight are not disturbed: once the engine goes on they
// are answered 200 and every event they accepted is applied, and new
// requests are admitted again.
func TestEventAdmission(t *testing.T) {
	bus := membus.New(membus.Options{Now: func() time.Time { return testNow }})
	defer bus.Close()
	g := &gatedConsumer{release: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	consumed := make(chan error, 1)
	go func() { consumed <- bus.Consume(ctx, g.handle) }()
	defer func() {
		cancel()
		if err := <-consumed; err != nil {
			t.Errorf("Consume: %v", err)
		}
	}()
	release := sync.OnceFunc(func() { close(g.release) })
	defer release() // also when the test fails early
	h := newHarness(t, func(c *Config) { c.MaxEventRequests = 2; c.PublishTimeout = 10 * time.Second })
	h.s.deps.Publisher = bus

	// Two batches fill the bound; their publishes wait for the engine.
	answers := make([]*httptest.ResponseRecorder, 2)
	var inFlight sync.WaitGroup
	for i := range answers {
		body := "[" + evJSON(fmt.Sprintf("a%d", i)) + "," + evJSON(fmt.Sprintf("b%d", i)) + "]"
		inFlight.Add(1)
		go func() {
			defer inFlight.Done()
			answers[i] = h.do("POST", "/v1/events", body, "Authorization", "Bearer "+testPK)
		}()
	}
	waitFor(t, "two event requests read", func() bool { return metricValue(t, h.s.metrics.received) == 4 })

	// Beyond the bound: 503 + Retry-After, body unread, nothing published.
	body := &countingReader{r: strings.NewReader(batchJSON(3))}
	r := httptest.NewRequest("POST", "/v1/events", body)
	r.Header.Set("Authorization", "Bearer "+testPK)
	w := h.serve(r)
	wantError(t, w, 503, CodeUnavailable, "too many event requests at once", "nothing was accepted")
	if ra := w.Header().Get("Retry-After"); ra != "2" {
		t.Errorf("Retry-After %q, want 2", ra)
	}
	if n := body.read(); n != 0 {
		t.Errorf("%d bytes of the refused body were read", n)
	}
	w = h.do("GET", "/v1/pixel.gif?key="+testPK+"&visitor=v1&item=sku-1", "")
	if w.Code != 503 || w.Header().Get("Retry-After") != "2" || !strings.Contains(w.Header().Get("X-Kairos-Error"), "too many event requests") {
		t.Errorf("pixel beyond the bound: %d, Retry-After %q, X-Kairos-Error %q", w.Code, w.Header().Get("Retry-After"), w.Header().Get("X-Kairos-Error"))
	}
	checkGIF(t, w.Code, w.Header(), w.Body.Bytes())
	w = h.secret("POST", "/v1/identify", `{"anonymous_id":"v1","user_id":"u1"}`)
	wantError(t, w, 503, CodeUnavailable, "too many event requests at once")
	// Other routes are not bounded.
	if w := h.secret("GET", "/v1/items/sku-1", ""); w.Code == 503 {
		t.Errorf("GET /v1/items answered 503 while the event routes are full")
	}
	if h.s.events.inFlight() != 2 {
		t.Errorf("%d event requests in flight after the refusals, want 2", h.s.events.inFlight())
	}
	for route, want := range map[string]float64{"/v1/events": 1, "/v1/pixel.gif": 1, "/v1/identify": 1} {
		if got := metricValue(t, h.s.metrics.shed.WithLabelValues(route)); got != want {
			t.Errorf("kairos_event_requests_shed_total{route=%q} = %v, want %v", route, got, want)
		}
	}
	if got := metricValue(t, h.s.metrics.received); got != 4 {
		t.Errorf("received_total = %v, want 4 (the refused bodies were not read)", got)
	}
	if got := g.ids(); len(got) != 0 {
		t.Errorf("applied %v before the engine went on", got)
	}

	// The engine goes on: the two batches are answered and applied.
	release()
	inFlight.Wait()
	for i, w := range answers {
		resp := decode[EventsResponse](t, w)
		if w.Code != 200 || resp.Accepted != 2 {
			t.Errorf("batch %d: %d %s", i, w.Code, w.Body)
		}
	}
	want := []string{"a0", "a1", "b0", "b1"}
	if got := g.ids(); !slices.Equal(got, want) {
		t.Errorf("applied %v, want %v", got, want)
	}
	// Admitted again.
	if w := h.do("POST", "/v1/events", batchJSON(1), "Authorization", "Bearer "+testPK); w.Code != 200 {
		t.Errorf("after the engine went on: %d %s", w.Code, w.Body)
	}
	if n := h.s.events.inFlight(); n != 0 {
		t.Errorf("%d event requests in flight at rest", n)
	}
}

// TestEventAdmissionUnbounded: a negative MaxEventRequests admits every
// event request.
func TestEventAdmissionUnbounded(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxEventRequests = -1; c.PublishTimeout = time.Minute })
	h.pub.gate = make(chan struct{})
	var wg sync.WaitGroup
	codes := make([]int, 5)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = h.do("POST", "/v1/events", batchJSON(1), "Authorization", "Bearer "+testPK).Code
		}()
	}
	waitFor(t, "five publishes waiting", func() bool { return h.pub.waiting() == 5 })
	close(h.pub.gate)
	wg.Wait()
	for i, c := range codes {
		if c != 200 {
			t.Errorf("request %d: %d", i, c)
		}
	}
	if got := metricValue(t, h.s.metrics.shed); got != 0 {
		t.Errorf("shed %v requests with no bound", got)
	}
}
