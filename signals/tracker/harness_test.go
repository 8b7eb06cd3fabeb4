package tracker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kairoshq/kairos/signals"
	"github.com/kairoshq/kairos/signals/tracker"
	"github.com/kairoshq/kairos/signals/tracker/browsertest"
)

const testKey = "pk_test_123"

// wireEvent is an event as the tracker sent it (ts kept as a JSON number to
// check that it is epoch ms).
type wireEvent struct {
	ID       string            `json:"id"`
	Type     string            `json:"type"`
	Visitor  string            `json:"visitor"`
	User     string            `json:"user"`
	UserHash string            `json:"user_hash"`
	Item     string            `json:"item"`
	Offer    string            `json:"offer"`
	Token    string            `json:"token"`
	TS       json.Number       `json:"ts"`
	Value    float64           `json:"value"`
	Session  string            `json:"session"`
	Page     string            `json:"page"`
	Element  string            `json:"element"`
	Referrer string            `json:"referrer"`
	Source   string            `json:"source"`
	Props    map[string]string `json:"props"`

	req *eventsRequest
}

func (e wireEvent) ms() int64 {
	v, _ := e.TS.Int64()
	return v
}

// eventsRequest is one POST /v1/events the fake Kairos server received.
type eventsRequest struct {
	at          time.Time
	status      int
	mode        string // Sec-Fetch-Mode: "cors" for fetch, "no-cors" for sendBeacon
	contentType string
	origin      string
	auth        string
	key         string
	events      []wireEvent
	rejected    []signals.Rejection
}

// subscriber is one connection to the fake promotion stream.
type subscriber struct {
	visitor, key, lastEventID string
	frames                    chan string
	drop                      chan struct{}
	closed                    chan struct{}
}

// kairos is a fake Kairos server: it serves /tracker.js, records event
// batches (validating them with signals.DecodeBatch) and serves a
// scriptable promotion stream. It answers CORS for the site's origin.
type kairos struct {
	srv        *httptest.Server
	siteOrigin string

	mu         sync.Mutex
	requests   []*eventsRequest
	failNext   int
	preflights int
	subs       []*subscriber
}

func newKairos(t *testing.T) *kairos {
	t.Helper()
	k := &kairos{}
	mux := http.NewServeMux()
	mux.Handle("GET /tracker.js", tracker.Handler())
	mux.HandleFunc("POST /v1/events", k.events)
	mux.HandleFunc("OPTIONS /", func(w http.ResponseWriter, r *http.Request) {
		k.mu.Lock()
		k.preflights++
		k.mu.Unlock()
		k.cors(w, r)
		w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /v1/promotions/stream", k.stream)
	k.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		k.srv.CloseClientConnections()
		k.srv.Close()
	})
	return k
}

func (k *kairos) cors(w http.ResponseWriter, r *http.Request) {
	if o := r.Header.Get("Origin"); o != "" && o == k.siteOrigin {
		w.Header().Set("Access-Control-Allow-Origin", o)
		w.Header().Add("Vary", "Origin")
	}
}

func (k *kairos) events(w http.ResponseWriter, r *http.Request) {
	k.cors(w, r)
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	req := &eventsRequest{at: time.Now(), mode: r.Header.Get("Sec-Fetch-Mode"),
		contentType: r.Header.Get("Content-Type"), origin: r.Header.Get("Origin"),
		auth: r.Header.Get("Authorization")}
	var body struct {
		Key    string      `json:"key"`
		Events []wireEvent `json:"events"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&body); err != nil {
		req.status = 400
	} else {
		req.key = body.Key
		req.events = body.Events
		for i := range req.events {
			req.events[i].req = req
		}
		res, err := signals.DecodeBatch(bytes.NewReader(raw), time.Now(), signals.Limits{})
		if err != nil {
			req.status = 400
		} else {
			req.rejected = res.Rejected
		}
	}
	k.mu.Lock()
	if req.status == 0 && k.failNext > 0 {
		k.failNext--
		req.status = http.StatusServiceUnavailable
	}
	if req.status == 0 {
		req.status = http.StatusOK
	}
	k.requests = append(k.requests, req)
	k.mu.Unlock()
	w.WriteHeader(req.status)
	fmt.Fprintf(w, `{"accepted":%d}`, len(req.events))
}

func (k *kairos) stream(w http.ResponseWriter, r *http.Request) {
	k.cors(w, r)
	s := &subscriber{visitor: r.URL.Query().Get("visitor"), key: r.URL.Query().Get("key"),
		lastEventID: r.Header.Get("Last-Event-ID"),
		frames:      make(chan string, 16), drop: make(chan struct{}), closed: make(chan struct{})}
	defer close(s.closed)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	fl := w.(http.Flusher)
	_, _ = io.WriteString(w, "retry: 200\n\n")
	fl.Flush()
	k.mu.Lock()
	k.subs = append(k.subs, s)
	k.mu.Unlock()
	for {
		select {
		case f := <-s.frames:
			_, _ = io.WriteString(w, f)
			fl.Flush()
		case <-s.drop:
			return
		case <-r.Context().Done():
			return
		}
	}
}

// reset forgets what was recorded.
func (k *kairos) reset() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.requests, k.failNext, k.preflights, k.subs = nil, 0, 0, nil
}

func (k *kairos) fail(n int) {
	k.mu.Lock()
	k.failNext = n
	k.mu.Unlock()
}

func (k *kairos) allRequests() []*eventsRequest {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.requests)
}

// received returns the events of visitor from the requests answered 200 (or
// from all requests, with all), in arrival order.
func (k *kairos) received(visitor string, all bool) []wireEvent {
	var out []wireEvent
	for _, r := range k.allRequests() {
		if r.status != 200 && !all {
			continue
		}
		for _, e := range r.events {
			if visitor == "" || e.Visitor == visitor {
				out = append(out, e)
			}
		}
	}
	return out
}

// waitEvents waits until at least n accepted events of visitor satisfy
// match, and returns them.
func (k *kairos) waitEvents(t *testing.T, visitor string, n int, match func(wireEvent) bool) []wireEvent {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var got []wireEvent
		for _, e := range k.received(visitor, false) {
			if match(e) {
				got = append(got, e)
			}
		}
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %d events of visitor %s; have %d matching; all events: %s",
				n, visitor, len(got), summary(k.received(visitor, true)))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func summary(es []wireEvent) string {
	var b strings.Builder
	for _, e := range es {
		fmt.Fprintf(&b, "\n  %s item=%q offer=%q el=%q value=%v user=%q", e.Type, e.Item, e.Offer, e.Element, e.Value, e.User)
	}
	return b.String()
}

func ofType(typ string) func(wireEvent) bool {
	return func(e wireEvent) bool { return e.Type == typ }
}

// waitSub waits for the n-th (1-based) stream connection of visitor.
func (k *kairos) waitSub(t *testing.T, visitor string, n int) *subscriber {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		k.mu.Lock()
		var mine []*subscriber
		for _, s := range k.subs {
			if s.visitor == visitor {
				mine = append(mine, s)
			}
		}
		k.mu.Unlock()
		if len(mine) >= n {
			return mine[n-1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for stream connection %d of visitor %s (have %d)", n, visitor, len(mine))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// openStreams counts the stream connections still open.
func (k *kairos) openStreams() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := 0
	for _, s := range k.subs {
		select {
		case <-s.closed:
		default:
			n++
		}
	}
	return n
}

// waitOpenStreams waits until exactly n stream connections are open.
func (k *kairos) waitOpenStreams(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for k.openStreams() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d promotion streams open, want %d", k.openStreams(), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (k *kairos) subCount(visitor string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := 0
	for _, s := range k.subs {
		if visitor == "" || s.visitor == visitor {
			n++
		}
	}
	return n
}

// promotionFrame is an SSE frame with a promotion event.
func promotionFrame(sseID string, p map[string]any) string {
	data, err := json.Marshal(p)
	if err != nil {
		panic(err)
	}
	return "id: " + sseID + "\nevent: promotion\ndata: " + string(data) + "\n\n"
}

// site serves the pages of a shop on another origin than Kairos.
type site struct {
	srv *httptest.Server
}

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Test shop</title>
{{if .Item}}<meta name="kairos:item" content="{{.Item}}">{{end}}
<script>
window.__errors = [];
addEventListener('error', function (e) { __errors.push(String(e.message)); });
addEventListener('unhandledrejection', function (e) { __errors.push('unhandled rejection: ' + e.reason); });
window.__promos = [];
document.addEventListener('kairos:promotion', function (e) {
  __promos.push({id: e.detail.promotion.id, tag: e.detail.element.tagName, via: 'event'});
});
window.__hooked = [];
// Calls queued before the tracker loads.
window.kairos = window.kairos || [];
kairos.push(['on', 'promotion', function (p, el) { __hooked.push({id: p.id, rendered: el.getAttribute('data-kairos-rendered-at')}); }]);
</script>
{{if .Tracker}}<script src="{{.Kairos}}/tracker.js" data-key="{{.Key}}" {{if .OptIn}}data-consent="required" {{end}}{{if .FlushMs}}data-flush-ms="{{.FlushMs}}" {{end}}{{if .Defer}}defer{{else}}async{{end}}></script>
{{if .Twice}}<script src="{{.Kairos}}/tracker.js" data-key="{{.Key}}" async></script>{{end}}{{end}}
<style>
body { margin: 0; font: 16px sans-serif; }
.card { width: 200px; height: 150px; padding: 8px; box-sizing: border-box; }
</style>
</head><body>
{{if .Slot}}<div data-kairos-slot="hero" id="hero" style="height:120px;background:#eef">Default hero</div>{{end}}
<div style="display:flex;gap:40px;padding:20px">
  <div class="card" id="item42" data-kairos-item="42" style="background:#fdd">Item 42</div>
  <div class="card" id="item43" data-kairos-item="43" style="background:#dfd">Item 43</div>
  <div class="card" id="offer7" data-kairos-offer="7" data-kairos-item="44" data-kairos-token="tok-7" style="background:#ddf">Offer 7</div>
</div>
<div style="height:4000px;background:linear-gradient(#fff,#ccc)">Long content</div>
<a id="away" href="/blank">away</a>
</body></html>`))

// mobileTmpl is a phone page: a vertical list of marked cards 300 px tall
// (m1 at 0-300, m2 at 300-600, m3 at 2100-2400) in a long page.
var mobileTmpl = template.Must(template.New("mobile").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Mobile shop</title>
<script>
window.__errors = [];
addEventListener('error', function (e) { __errors.push(String(e.message)); });
</script>
<script src="{{.Kairos}}/tracker.js" data-key="{{.Key}}" data-promotions="off" async></script>
<style>body { margin: 0; font: 16px sans-serif; } .card { height: 300px; box-sizing: border-box; }</style>
</head><body>
<div class="card" id="m1" data-kairos-item="m1" style="background:#fdd">m1</div>
<div class="card" id="m2" data-kairos-item="m2" style="background:#dfd">m2</div>
<div style="height:1500px">gap</div>
<div class="card" id="m3" data-kairos-item="m3" style="background:#ddf">m3</div>
<div style="height:3000px">end</div>
</body></html>`))

func newSite(t *testing.T, k *kairos) *site {
	t.Helper()
	s := &site{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /page", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		item := "sku-1"
		if q.Has("noitem") {
			item = ""
		}
		err := pageTmpl.Execute(w, map[string]any{
			"Item": item, "Tracker": !q.Has("notracker"), "Kairos": k.srv.URL, "Key": testKey,
			"Defer": q.Has("defer"), "Twice": q.Has("twice"), "Slot": !q.Has("noslot"), "OptIn": q.Has("optin"),
			"FlushMs": q.Get("flushms"),
		})
		if err != nil {
			panic(err)
		}
	})
	mux.HandleFunc("GET /mobile", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := mobileTmpl.Execute(w, map[string]any{"Kairos": k.srv.URL, "Key": testKey}); err != nil {
			panic(err)
		}
	})
	mux.HandleFunc("GET /start", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>start</title><a id="go" href="/page?%s">go</a>`, template.HTMLEscapeString(r.URL.RawQuery))
	})
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>%s</title><p>%s</p>`, template.HTMLEscapeString(r.URL.Path), template.HTMLEscapeString(r.URL.Path))
	})
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	k.siteOrigin = s.srv.URL
	return s
}

// env is what every subtest uses.
type env struct {
	b    *browsertest.Browser
	k    *kairos
	site *site
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// fresh leaves the current page, forgets the site's cookies and storage
// (a new visitor) and the recorded requests.
func (e *env) fresh(t *testing.T) {
	t.Helper()
	ctx := ctxT(t)
	if err := e.b.Navigate(ctx, e.site.srv.URL+"/blank"); err != nil {
		t.Fatal(err)
	}
	if err := e.b.ClearSiteData(ctx, e.site.srv.URL); err != nil {
		t.Fatal(err)
	}
	if _, err := e.b.Logs(ctx); err != nil { // drain the console
		t.Fatal(err)
	}
	e.k.reset()
}

// load opens /page?query and returns the visitor id once the tracker runs.
func (e *env) load(t *testing.T, query string) string {
	t.Helper()
	ctx := ctxT(t)
	if err := e.b.Navigate(ctx, e.site.srv.URL+"/page?"+query); err != nil {
		t.Fatal(err)
	}
	return e.visitor(t)
}

func (e *env) visitor(t *testing.T) string {
	t.Helper()
	v, err := e.b.WaitFor(ctxT(t), `return window.kairos && kairos.visitor && kairos.visitor()`)
	if err != nil {
		t.Fatal(err)
	}
	var id string
	if err := json.Unmarshal(v, &id); err != nil {
		t.Fatal(err)
	}
	return id
}

func (e *env) exec(t *testing.T, dst any, script string, args ...any) {
	t.Helper()
	ctx := ctxT(t)
	if dst == nil {
		if _, err := e.b.Execute(ctx, script, args...); err != nil {
			t.Fatalf("%s: %v", script, err)
		}
		return
	}
	if err := e.b.ExecuteTo(ctx, dst, script, args...); err != nil {
		t.Fatalf("%s: %v", script, err)
	}
}

func (e *env) waitJS(t *testing.T, script string, args ...any) json.RawMessage {
	t.Helper()
	v, err := e.b.WaitFor(ctxT(t), script, args...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// toBack opens another tab in front of the page, so that the page is
// hidden; front closes that tab and brings the page to the front again.
func (e *env) toBack(t *testing.T, ctx context.Context) (front func()) {
	t.Helper()
	h0, err := e.b.WindowHandle(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h1, err := e.b.NewTab(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.b.SwitchTo(ctx, h1); err != nil {
		t.Fatal(err)
	}
	return func() {
		t.Helper()
		if err := e.b.CloseWindow(ctx); err != nil {
			t.Fatal(err)
		}
		if err := e.b.SwitchTo(ctx, h0); err != nil {
			t.Fatal(err)
		}
	}
}

func (e *env) perform(t *testing.T, s *browsertest.InputSource) {
	t.Helper()
	if err := e.b.Perform(ctxT(t), s); err != nil {
		t.Fatal(err)
	}
}

func (e *env) element(t *testing.T, css string) browsertest.Element {
	t.Helper()
	el, err := e.b.FindElement(ctxT(t), css)
	if err != nil {
		t.Fatalf("%s: %v", css, err)
	}
	return el
}

// checkClean fails the test when the page recorded script errors, or the
// console has SEVERE messages other than failed network requests, or the
// server rejected an event for another reason than the missing item of an
// offer-only event (see the package doc of the report).
func (e *env) checkClean(t *testing.T) {
	t.Helper()
	ctx := ctxT(t)
	var errs []string
	if err := e.b.ExecuteTo(ctx, &errs, `return window.__errors || []`); err == nil && len(errs) > 0 {
		t.Errorf("page errors: %q", errs)
	}
	logs, err := e.b.Logs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range logs {
		if l.Level == "SEVERE" && l.Source != "network" {
			t.Errorf("console error: %s (%s)", l.Message, l.Source)
		}
	}
	for _, r := range e.k.allRequests() {
		if r.status == 400 {
			t.Errorf("a batch was malformed for signals.DecodeBatch")
		}
		for _, rj := range r.rejected {
			ev := r.events[rj.Index]
			if rj.Field == "item" && ev.Item == "" && (ev.Offer != "" || ev.Type == "view") {
				// The schema requires item on views and clicks; a page
				// without an item and a promotion's offer have none.
				t.Logf("known schema gap: signals.DecodeBatch rejects a %s without item (offer %q, page %s): %s", ev.Type, ev.Offer, ev.Page, rj.Reason)
				continue
			}
			t.Errorf("signals.DecodeBatch rejected event %d (%s): %s: %s", rj.Index, ev.Type, rj.Field, rj.Reason)
		}
	}
}

// median returns the median of xs (sorted in place).
func median(xs []float64) float64 {
	slices.Sort(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

func atof(t *testing.T, raw json.RawMessage) float64 {
	t.Helper()
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		var f float64
		if err := json.Unmarshal(raw, &f); err != nil {
			t.Fatalf("not a number: %s", raw)
		}
		return f
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("not a number: %s", raw)
	}
	return f
}
