package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/promo"
	"github.com/kairoshq/kairos/engine/promo/promotest"
	"github.com/kairoshq/kairos/signals"
	"github.com/kairoshq/kairos/signals/membus"
)

// fakeVisitors is a promo.Profiles of visitors the model does not know.
type fakeVisitors struct{}

func (fakeVisitors) VisitorFactors(context.Context, string, string) ([]float32, error) {
	return nil, nil
}

// promoHarness is a server with a real promo engine over the in-memory
// store and the in-process bus, listening on a loopback port (streams
// need a real connection).
type promoHarness struct {
	*harness
	eng   *promo.Engine
	store *promo.BackendStore
	bus   *membus.Bus
	srv   *httptest.Server
	n     int
}

// newPromoHarness builds it; broadcast false leaves the promo engine
// without a Broadcaster (streams then see promotions at heartbeats).
func newPromoHarness(t *testing.T, broadcast bool, heartbeat time.Duration) *promoHarness {
	t.Helper()
	return newPromoHarnessWith(t, broadcast, heartbeat, nil)
}

// newPromoHarnessWith is newPromoHarness with the configuration changed
// by mod.
func newPromoHarnessWith(t *testing.T, broadcast bool, heartbeat time.Duration, mod func(*Config)) *promoHarness {
	t.Helper()
	h := &promoHarness{harness: newHarness(t, mod), store: promotest.NewMem(), bus: membus.New(membus.Options{})}
	deps := promo.Deps{Store: h.store, Profiles: fakeVisitors{}}
	if broadcast {
		deps.Broadcaster = h.bus
	}
	eng, err := promo.New(context.Background(), promo.Config{Seed: 1}, deps)
	if err != nil {
		t.Fatal(err)
	}
	h.eng = eng
	s := h.server(nil, func(d *Deps) { d.Offers, d.Definitions, d.Promotions, d.Subscriber = eng, eng, eng, h.bus })
	s.streams.heartbeat = heartbeat
	h.s = s
	h.srv = httptest.NewServer(openAPIValidator(t).Handler(t, s.Handler()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		h.srv.Close()
		h.bus.Close()
	})
	for _, d := range []struct{ path, body string }{
		{"/v1/offers", `{"id":"o1","title":"Wait!","body":"10% off today","image":"https://cdn.example/o1.png","link":"https://shop.example/sale","items":["sku-1"],"slot":"exit"}`},
		{"/v1/rules", `{"id":"r1","cooldown":"0s","when":{"count":{"type":"view","within":"batch"}},"then":{"offer":"o1"}}`},
	} {
		if w := h.secret("POST", d.path, d.body); w.Code != http.StatusCreated {
			t.Fatalf("POST %s: %d %s", d.path, w.Code, w.Body)
		}
	}
	return h
}

// fire makes the rule fire once for visitor: a batch with one view.
func (h *promoHarness) fire(visitor string) {
	h.n++
	now := time.Now()
	ev := signals.Event{ID: fmt.Sprintf("e%d", h.n), Type: signals.TypeView, Visitor: visitor, Time: signals.Timestamp{Time: now}}
	h.eng.React(context.Background(), []engine.VisitorChange{{
		Visitor: engine.Visitor{ID: visitor, Session: engine.Session{Start: now, Last: now, Events: 1},
			History: []engine.HistoryEvent{{ID: ev.ID, Type: ev.Type, Time: now}}},
		Fresh: []signals.Event{ev},
	}})
}

// sseEvent is one server-sent event.
type sseEvent struct{ id, event, data string }

// stream is an open promotion stream.
type stream struct {
	resp     *http.Response
	events   chan sseEvent
	comments chan string
	cancel   context.CancelFunc
	done     chan struct{}
}

// open connects a stream for visitor with the publishable key; header
// pairs are added to the request.
func (h *promoHarness) open(t *testing.T, visitor string, header ...string) *stream {
	t.Helper()
	return openAt(t, h.srv.URL, h.srv.Client(), visitor, header...)
}

// openAt opens a stream on the server at base.
func openAt(t *testing.T, base string, client *http.Client, visitor string, header ...string) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/promotions/stream?visitor="+visitor+"&key="+testPK, nil)
	r.Header.Set("Origin", allowed)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	resp, err := client.Do(r)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		t.Fatalf("stream: status %d: %s", resp.StatusCode, b)
	}
	s := &stream{resp: resp, events: make(chan sseEvent, 100), comments: make(chan string, 100), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer close(s.events)
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.data != "" || ev.event != "" {
					s.events <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, ":"):
				select {
				case s.comments <- line:
				default:
				}
			case strings.HasPrefix(line, "id: "):
				ev.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.event = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[6:]
			}
		}
	}()
	t.Cleanup(s.close)
	return s
}

func (s *stream) close() {
	s.cancel()
	<-s.done
	s.resp.Body.Close()
}

// next waits for the next event.
func (s *stream) next(t *testing.T) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-s.events:
		if !ok {
			t.Fatal("stream ended")
		}
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5 s")
	}
	return sseEvent{}
}

// none checks that no event arrives for a while.
func (s *stream) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case ev, ok := <-s.events:
		if ok {
			t.Fatalf("unexpected event %+v", ev)
		}
	case <-time.After(d):
	}
}

// trackerPromotion is what signals/tracker/tracker.js reads of an event.
type trackerPromotion struct {
	ID    string `json:"id"`
	Offer struct {
		ID, Title, Body, Image, Link, Item string
	} `json:"offer"`
	Slot  string `json:"slot"`
	Token string `json:"token"`
	Rule  string `json:"rule"`
}

func decodePromotion(t *testing.T, ev sseEvent) trackerPromotion {
	t.Helper()
	if ev.event != "promotion" {
		t.Fatalf("event type %q, want promotion", ev.event)
	}
	var p trackerPromotion
	if err := json.Unmarshal([]byte(ev.data), &p); err != nil {
		t.Fatalf("data %s: %v", ev.data, err)
	}
	if p.ID != ev.id {
		t.Fatalf("data id %q differs from the event id %q", p.ID, ev.id)
	}
	return p
}

func TestPromotionStreamPayload(t *testing.T) {
	h := newPromoHarness(t, true, 0)
	s := h.open(t, "v1")
	h.fire("v1")
	p := decodePromotion(t, s.next(t))
	if p.Offer.ID != "o1" || p.Offer.Title != "Wait!" || p.Offer.Body != "10% off today" || p.Offer.Image != "https://cdn.example/o1.png" ||
		p.Offer.Link != "https://shop.example/sale" || p.Offer.Item != "sku-1" || p.Slot != "exit" || p.Rule != "r1" || p.Token == "" {
		t.Errorf("promotion %+v", p)
	}
	if tok, err := h.eng.Signer().Verify(p.Token); err != nil || tok.Offer != "o1" || !tok.Matches("v1") {
		t.Errorf("token %q: %+v, %v", p.Token, tok, err)
	}
	if ct := s.resp.Header.Get("Content-Type"); ct != "text/event-stream; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if got := s.resp.Header.Get("Access-Control-Allow-Origin"); got != allowed {
		t.Errorf("CORS origin %q", got)
	}
	// Another visitor's promotions are not on this stream.
	h.fire("v2")
	s.none(t, 200*time.Millisecond)
}

// TestPromotionStreamReconnect: receive 2, disconnect, 3 more fire,
// reconnect with Last-Event-ID: exactly the 3 missing ones arrive, in
// order, none twice; then live ones again.
func TestPromotionStreamReconnect(t *testing.T) {
	h := newPromoHarness(t, true, 0)
	s := h.open(t, "v")
	h.fire("v")
	h.fire("v")
	first := []trackerPromotion{decodePromotion(t, s.next(t)), decodePromotion(t, s.next(t))}
	s.close()

	var missed []string
	for range 3 {
		h.fire("v")
	}
	logged, _ := h.store.Promotions(context.Background(), "v", 0, 100)
	for _, p := range logged[2:] {
		missed = append(missed, p.ID)
	}
	if len(logged) != 5 || logged[1].ID != first[1].ID {
		t.Fatalf("log %d promotions, second %s; received %s", len(logged), logged[1].ID, first[1].ID)
	}

	for _, how := range []string{"header", "query"} {
		t.Run(how, func(t *testing.T) {
			var r *stream
			if how == "header" {
				r = h.open(t, "v", "Last-Event-ID", first[1].ID)
			} else {
				r = h.open(t, "v&last_event_id="+first[1].ID)
			}
			var got []string
			for range 3 {
				got = append(got, decodePromotion(t, r.next(t)).ID)
			}
			if strings.Join(got, ",") != strings.Join(missed, ",") {
				t.Fatalf("after reconnecting: %v, want %v", got, missed)
			}
			r.none(t, 200*time.Millisecond)
			r.close()
		})
	}

	// A new page (no Last-Event-ID) replays the unexpired promotions; live
	// ones follow, each once.
	r := h.open(t, "v")
	for i := range 5 {
		if id := decodePromotion(t, r.next(t)).ID; id != logged[i].ID {
			t.Fatalf("replay %d: %s, want %s", i, id, logged[i].ID)
		}
	}
	h.fire("v")
	next := decodePromotion(t, r.next(t))
	if next.ID <= logged[4].ID {
		t.Fatalf("live promotion %s after %s", next.ID, logged[4].ID)
	}
	r.none(t, 200*time.Millisecond)
}

// TestPromotionStreamHeartbeat: comments keep the connection alive, and a
// promotion whose broadcast was lost (no broadcaster) arrives with the
// next heartbeat's read of the log.
func TestPromotionStreamHeartbeat(t *testing.T) {
	h := newPromoHarness(t, false, 50*time.Millisecond)
	s := h.open(t, "v")
	select {
	case c := <-s.comments:
		if c != ": ping" {
			t.Errorf("comment %q", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no heartbeat")
	}
	h.fire("v")
	decodePromotion(t, s.next(t))
	s.none(t, 200*time.Millisecond)
}

func TestPromotionStreamErrors(t *testing.T) {
	h := newPromoHarness(t, true, 0)
	get := func(target string, header ...string) *http.Response {
		t.Helper()
		r, _ := http.NewRequest("GET", h.srv.URL+target, nil)
		for i := 0; i+1 < len(header); i += 2 {
			r.Header.Set(header[i], header[i+1])
		}
		resp, err := h.srv.Client().Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	tests := []struct {
		target string
		header []string
		status int
	}{
		{"/v1/promotions/stream?key=" + testPK, nil, 400},                                                  // no visitor
		{"/v1/promotions/stream?visitor=v&key=" + testPK, []string{"Last-Event-ID", "abc"}, 400},           // malformed id
		{"/v1/promotions/stream?visitor=v&key=" + testPK, []string{"Origin", "https://evil.example"}, 403}, // origin
		{"/v1/promotions/stream?visitor=v", nil, 401},                                                      // no key
		{"/v1/promotions/stream?visitor=v&key=" + testSK, nil, 401},                                        // secret key in a URL
	}
	for _, tt := range tests {
		if resp := get(tt.target, tt.header...); resp.StatusCode != tt.status {
			t.Errorf("%s %v: status %d, want %d", tt.target, tt.header, resp.StatusCode, tt.status)
		}
	}
	// Without the promo dependencies the route answers 404.
	plain := newHarness(t, nil)
	w := plain.do("GET", "/v1/promotions/stream?visitor=v&key="+testPK, "")
	wantError(t, w, 404, CodeNotFound, "not configured")
}

// TestPromotionStreamShutdown: Shutdown ends open streams at once, so the
// graceful shutdown does not wait for them.
func TestPromotionStreamShutdown(t *testing.T) {
	h := newPromoHarness(t, true, 0)
	addr, stop := serveLoopback(t, h.s)
	var wg sync.WaitGroup
	for i := range 3 {
		r, _ := http.NewRequest("GET", fmt.Sprintf("http://%s/v1/promotions/stream?visitor=v%d&key=%s", addr, i, testPK), nil)
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			io.Copy(io.Discard, resp.Body) // until the server ends the stream
			resp.Body.Close()
		})
	}
	start := time.Now()
	stop()
	wg.Wait()
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("shutdown with open streams took %v", d)
	}
	http.DefaultClient.CloseIdleConnections()
}

// TestPromotionStreamOutlivesTimeouts: a stream served by Serve stays
// open past Config.ReadTimeout, WriteTimeout and RequestTimeout, and
// still delivers.
func TestPromotionStreamOutlivesTimeouts(t *testing.T) {
	h := newPromoHarness(t, true, 0)
	s := h.server(func(c *Config) {
		c.ReadTimeout, c.WriteTimeout, c.RequestTimeout = 200*time.Millisecond, 200*time.Millisecond, 200*time.Millisecond
	}, func(d *Deps) { d.Offers, d.Definitions, d.Promotions, d.Subscriber = h.eng, h.eng, h.eng, h.bus })
	s.streams.heartbeat = 50 * time.Millisecond
	addr, stop := serveLoopback(t, s)
	defer stop()
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	st := openAt(t, "http://"+addr, client, "v")
	time.Sleep(700 * time.Millisecond) // past every timeout
	h.fire("v")
	decodePromotion(t, st.next(t))
	st.close()
}

// refusedStream opens a stream of visitor that must be refused: 503 with
// Retry-After and a JSON error containing msg.
func (h *promoHarness) refusedStream(t *testing.T, visitor, msg string) {
	t.Helper()
	r, _ := http.NewRequest("GET", h.srv.URL+"/v1/promotions/stream?visitor="+visitor+"&key="+testPK, nil)
	r.Header.Set("Origin", allowed)
	resp, err := h.srv.Client().Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	w := httptest.NewRecorder()
	w.Code, w.Body = resp.StatusCode, bytes.NewBuffer(body)
	maps.Copy(w.Header(), resp.Header)
	wantError(t, w, http.StatusServiceUnavailable, CodeUnavailable, msg)
	if ra := resp.Header.Get("Retry-After"); ra != "2" {
		t.Errorf("Retry-After %q, want 2 (Config.RetryAfter)", ra)
	}
}

// waitOpenStreams waits until the server counts n open streams (a closed
// client is noticed when its connection ends).
func (h *promoHarness) waitOpenStreams(t *testing.T, n float64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for metricValue(t, h.s.metrics.streamsOpen) != n {
		if time.Now().After(deadline) {
			t.Fatalf("open streams %v, want %v", metricValue(t, h.s.metrics.streamsOpen), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestPromotionStreamLimits: beyond MaxVisitorStreams for one visitor, or
// MaxStreams in all, a stream is refused at once with 503, Retry-After
// and the limit named; closing a stream frees its place; the metrics
// count open and refused streams.
func TestPromotionStreamLimits(t *testing.T) {
	h := newPromoHarnessWith(t, true, 0, func(c *Config) { c.MaxStreams, c.MaxVisitorStreams = 3, 2 })
	a1 := h.open(t, "a")
	h.open(t, "a")
	h.refusedStream(t, "a", "limit of 2 open streams per visitor")
	b1 := h.open(t, "b")
	h.refusedStream(t, "c", "the server's limit of 3 open streams")
	h.refusedStream(t, "b", "the server's limit of 3 open streams")
	h.waitOpenStreams(t, 3)
	refused := func(limit string) float64 { return metricValue(t, h.s.metrics.streamsRefused.WithLabelValues(limit)) }
	if v, s := refused(limitVisitor), refused(limitServer); v != 1 || s != 2 {
		t.Errorf("refused: visitor %v, server %v; want 1 and 2", v, s)
	}

	// Closing one of a's streams frees a place for anyone.
	a1.close()
	h.waitOpenStreams(t, 2)
	c1 := h.open(t, "c")
	h.refusedStream(t, "a", "the server's limit of 3 open streams")
	// Closing b's frees a place that a may take again (a has 1 of 2).
	b1.close()
	h.waitOpenStreams(t, 2)
	a3 := h.open(t, "a")
	h.refusedStream(t, "a", "limit of 2 open streams per visitor")

	// The streams still deliver.
	h.fire("c")
	decodePromotion(t, c1.next(t))
	h.fire("a")
	decodePromotion(t, a3.next(t))

	w := h.secret("GET", "/metrics", "")
	for _, want := range []string{
		"kairos_promotion_streams_open 3\n",
		`kairos_promotion_streams_refused_total{limit="server"} 3` + "\n",
		`kairos_promotion_streams_refused_total{limit="visitor"} 2` + "\n",
	} {
		if !strings.Contains(w.Body.String(), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
