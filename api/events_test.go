package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/gif"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kairoshq/kairos/signals"
	"github.com/kairoshq/kairos/signals/membus"
)

func TestEvents(t *testing.T) {
	type rej struct {
		index  int
		id     string
		field  string
		reason string // fragment
	}
	one := func(fields string) string {
		return `[{"id":"x","type":"dwell","visitor":"v1","item":"i1"` + fields + `}]`
	}
	tests := []struct {
		name     string
		body     string
		status   int
		accepted []string
		rejected []rej
	}{
		{"all valid", batchJSON(3), 200, []string{"e0", "e1", "e2"}, nil},
		{"empty batch", "[]", 200, nil, nil},
		{"object form", `{"events":` + batchJSON(2) + `}`, 200, []string{"e0", "e1"}, nil},
		{"some rejected", `[` + evJSON("a") + `,{"id":"b","type":"hover","visitor":"v"},` + evJSON("c") + `]`, 200,
			[]string{"a", "c"}, []rej{{1, "b", "type", `unknown type "hover"`}}},
		{"all rejected", `[{"id":"b","type":"view","item":"i"}]`, 400, nil, []rej{{0, "b", "visitor", "missing"}}},
		{"unknown type", one(`,"type":"hover"`), 400, nil, []rej{{0, "x", "type", "unknown type"}}},
		{"missing visitor", `[{"id":"m","type":"view","item":"i"}]`, 400, nil, []rej{{0, "m", "visitor", "missing"}}},
		{"NaN as string", one(`,"value":"NaN"`), 400, nil, []rej{{0, "x", "value", "NaN is not a number"}}},
		{"negative value", one(`,"value":-5`), 400, nil, []rej{{0, "x", "value", "-5 is negative"}}},
		{"huge value", one(`,"value":1e12`), 400, nil, []rej{{0, "x", "value", "above the maximum 3600000"}}},
		{"ts far in the future", one(`,"ts":"2030-01-01T00:00:00Z"`), 400, nil, []rej{{0, "x", "ts", "in the future"}}},
		{"duplicate id", `[` + evJSON("a") + `,` + evJSON("a") + `]`, 200, []string{"a"}, []rej{{1, "a", "id", "duplicate id"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			w := h.secret("POST", "/v1/events", tt.body)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			resp := decode[EventsResponse](t, w)
			if resp.Accepted != len(tt.accepted) || fmt.Sprint(resp.IDs) != fmt.Sprint(nonNil(tt.accepted)) {
				t.Errorf("accepted %d %v, want %v", resp.Accepted, resp.IDs, tt.accepted)
			}
			if resp.IDs == nil || resp.Rejected == nil {
				t.Errorf("ids and rejected must be arrays, not null: %s", w.Body)
			}
			if len(resp.Rejected) != len(tt.rejected) {
				t.Fatalf("rejected %+v, want %+v", resp.Rejected, tt.rejected)
			}
			for i, want := range tt.rejected {
				got := resp.Rejected[i]
				if got.Index != want.index || got.ID != want.id || got.Field != want.field || !strings.Contains(got.Reason, want.reason) {
					t.Errorf("rejected[%d] = %+v, want %+v", i, got, want)
				}
			}
			if tt.status == 400 {
				if resp.Error == nil || resp.Error.Code != CodeInvalid {
					t.Errorf("all rejected without an invalid error: %s", w.Body)
				}
			} else if resp.Error != nil {
				t.Errorf("error on a %d: %+v", w.Code, resp.Error)
			}
			var published []string
			for _, e := range h.pub.events() {
				published = append(published, e.ID)
			}
			if fmt.Sprint(published) != fmt.Sprint(tt.accepted) {
				t.Errorf("published %v, want %v", published, tt.accepted)
			}
			m := h.s.metrics
			if got := metricValue(t, m.received); got != float64(len(tt.accepted)+len(tt.rejected)) {
				t.Errorf("received_total %v", got)
			}
			if got := metricValue(t, m.accepted); got != float64(len(tt.accepted)) {
				t.Errorf("accepted_total %v", got)
			}
		})
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func TestEventsNormalize(t *testing.T) {
	h := newHarness(t, nil)
	w := h.secret("POST", "/v1/events", `[{"id":"a","type":"view","visitor":"v","item":"i"},{"id":"b","type":"view","visitor":"v","item":"i","ts":1795428000123}]`)
	if w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	evs := h.pub.events()
	if len(evs) != 2 {
		t.Fatalf("published %d events", len(evs))
	}
	if !evs[0].Time.Equal(testNow) {
		t.Errorf("missing ts became %v, want the server clock %v", evs[0].Time, testNow)
	}
	if want := time.UnixMilli(1795428000123).UTC(); !evs[1].Time.Equal(want) {
		t.Errorf("epoch ms ts = %v, want %v", evs[1].Time, want)
	}
}

func TestEventsBadBodies(t *testing.T) {
	big := `[` + evJSON("a") + `,` + `{"id":"b","type":"view","visitor":"v","item":"i","page":"` + strings.Repeat("x", 2<<20) + `"}]`
	tests := []struct {
		name      string
		body      string
		chunked   bool // no Content-Length
		status    int
		code      Code
		fragments []string
	}{
		{"malformed JSON", `[{"id":"a"`, false, 400, CodeInvalid, []string{"malformed batch", "byte"}},
		{"not an array", `"hello"`, false, 400, CodeInvalid, []string{"malformed batch"}},
		{"empty body", ``, false, 400, CodeInvalid, []string{"malformed batch"}},
		{"2 MiB body", big, false, 413, CodeTooLarge, []string{"1048576 bytes (1 MiB)"}},
		{"2 MiB body, chunked", big, true, 413, CodeTooLarge, []string{"1048576 bytes (1 MiB)"}},
		{"501 events", batchJSON(501), false, 413, CodeTooLarge, []string{"more than 500 events"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			r := req("POST", "/v1/events", tt.body, "Authorization", "Bearer "+testSK)
			if tt.chunked {
				r.ContentLength = -1
				r.Body = io.NopCloser(io.MultiReader(strings.NewReader(tt.body)))
			}
			wantError(t, h.serve(r), tt.status, tt.code, tt.fragments...)
			if n := len(h.pub.events()); n != 0 {
				t.Errorf("%d events published", n)
			}
		})
	}
	t.Run("500 events pass", func(t *testing.T) {
		h := newHarness(t, nil)
		if w := h.secret("POST", "/v1/events", batchJSON(500)); w.Code != 200 {
			t.Fatalf("status %d: %.200s", w.Code, w.Body)
		}
	})
}

// failingReader fails after its content.
type failingReader struct{ r io.Reader }

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, errors.New("connection reset")
	}
	return n, err
}

func TestEventsBodyReadError(t *testing.T) {
	h := newHarness(t, nil)
	r := req("POST", "/v1/events", "", "Authorization", "Bearer "+testSK)
	r.Body = io.NopCloser(&failingReader{strings.NewReader("[" + evJSON("a"))})
	r.ContentLength = -1
	wantError(t, h.serve(r), 400, CodeInvalid, "reading the request body", "connection reset")
}

func TestEventsPublishFailure(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		block   bool
		status  int
		code    Code
		logged  bool
		message string
	}{
		{"bus unavailable", fmt.Errorf("rabbitmq: nack: %w", signals.ErrUnavailable), false, 503, CodeUnavailable, false, "outcome unknown"},
		{"bus closed", signals.ErrClosed, false, 503, CodeUnavailable, false, "outcome unknown"},
		{"publish timeout", nil, true, 503, CodeUnavailable, false, "retry the whole batch"},
		{"any other failure", errors.New("boom"), false, 503, CodeUnavailable, false, "outcome unknown"},
		{"bus refuses validated events", fmt.Errorf("membus: %w", &signals.FieldError{Field: "ts", Reason: "skew"}), false, 500, CodeInternal, true, "request id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(c *Config) { c.PublishTimeout = 20 * time.Millisecond })
			h.pub.err, h.pub.block = tt.err, tt.block
			w := h.secret("POST", "/v1/events", batchJSON(3)+" ")
			wantError(t, w, tt.status, tt.code, tt.message)
			if strings.Contains(w.Body.String(), `"accepted"`) || strings.Contains(w.Body.String(), `"ids"`) {
				t.Errorf("a failed publish reports events: %s", w.Body)
			}
			if tt.status == 503 && w.Header().Get("Retry-After") != "2" {
				t.Errorf("Retry-After %q, want 2", w.Header().Get("Retry-After"))
			}
			m := h.s.metrics
			if got := metricValue(t, m.accepted); got != 0 {
				t.Errorf("accepted_total %v after a failed publish", got)
			}
			if got := metricValue(t, m.rejected.WithLabelValues("unavailable")); got != 3 {
				t.Errorf("rejected_total{unavailable} = %v, want 3", got)
			}
			id := w.Header().Get("X-Request-Id")
			logged := strings.Contains(h.log.String(), id)
			if logged != tt.logged {
				t.Errorf("logged with request id %s: %v, want %v; log %s", id, logged, tt.logged, h.log)
			}
		})
	}
}

// TestEventsMembus runs the collector against the in-process bus with a
// consumer: a 200 means the consumer applied the batch, and a consumer
// error is a 503.
func TestEventsMembus(t *testing.T) {
	bus := membus.New(membus.Options{Now: func() time.Time { return testNow }})
	defer bus.Close()
	var mu sync.Mutex
	var got []string
	fail := false
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- bus.Consume(ctx, func(ctx context.Context, batch []signals.Event) error {
			mu.Lock()
			defer mu.Unlock()
			if fail {
				return errors.New("store down")
			}
			for _, e := range batch {
				got = append(got, e.ID)
			}
			return nil
		})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Consume: %v", err)
		}
	}()
	h := newHarness(t, nil)
	h.s.deps.Publisher = bus
	w := h.do("POST", "/v1/events", `{"key":"`+testPK+`","events":`+batchJSON(2)+`}`, "Origin", allowed)
	if w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	mu.Lock()
	if fmt.Sprint(got) != "[e0 e1]" {
		t.Errorf("consumed %v", got)
	}
	fail = true
	mu.Unlock()
	w = h.do("POST", "/v1/events", `{"key":"`+testPK+`","events":`+batchJSON(2)+`}`, "Origin", allowed)
	wantError(t, w, 503, CodeUnavailable, "outcome unknown", "retry the whole batch with the same ids")
}

func TestPixel(t *testing.T) {
	const base = "/v1/pixel.gif?key=" + testPK
	tests := []struct {
		name    string
		query   string
		status  int
		errHead string // X-Kairos-Error prefix
		check   func(t *testing.T, e signals.Event)
	}{
		{"view", "&visitor=v1&item=sku-1&id=p1&page=https%3A%2F%2Fshop.example%2Fp%2F1", 200, "", func(t *testing.T, e signals.Event) {
			if e.ID != "p1" || e.Type != signals.TypeView || e.Visitor != "v1" || e.Item != "sku-1" || e.Page != "https://shop.example/p/1" {
				t.Errorf("event %+v", e)
			}
			if !e.Time.Equal(testNow) {
				t.Errorf("ts %v, want the server clock", e.Time)
			}
		}},
		{"click with ts and value", "&type=click&visitor=v1&item=i&ts=2026-11-23T09:00:00Z&value=2", 200, "", func(t *testing.T, e signals.Event) {
			if e.Type != signals.TypeClick || e.Value != 2 || !e.Time.Equal(testNow.Add(-time.Hour)) {
				t.Errorf("event %+v", e)
			}
			if !strings.HasPrefix(e.ID, "px-") || len(e.ID) != 35 {
				t.Errorf("derived id %q", e.ID)
			}
		}},
		{"impression of an offer", "&type=impression&visitor=v1&offer=o1&token=t", 200, "", nil},
		{"missing visitor", "&item=i", 400, "invalid: visitor: missing", nil},
		{"page view without item", "&visitor=v", 200, "", nil},
		{"click without item or offer", "&type=click&visitor=v", 400, "invalid: item: missing (a click needs an item or an offer)", nil},
		{"other type", "&type=like&visitor=v&item=i", 400, `invalid: type: the pixel records view, click or impression, not \"like\"`, nil},
		{"bad ts", "&visitor=v&item=i&ts=yesterday", 400, "invalid: ts: ", nil},
		{"ts far in the future", "&visitor=v&item=i&ts=2031-01-01T00:00:00Z", 400, "invalid: ts: 2031-01-01T00:00:00.000Z is more than 10m0s in the future", nil},
		{"bad value", "&visitor=v&item=i&value=abc", 400, `invalid: value: \"abc\" is not a number`, nil},
		{"NaN value", "&visitor=v&item=i&value=NaN", 400, "invalid: value: NaN is not a number", nil},
		{"negative value", "&visitor=v&item=i&value=-1", 400, "invalid: value: -1 is negative", nil},
		{"non-ASCII in error", "&visitor=v&item=i&type=%C3%A9t%C3%A9", 400, `invalid: type: the pixel records view, click or impression, not \"\u00e9t\u00e9\"`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			w := h.do("GET", base+tt.query, "")
			checkGIF(t, w.Code, w.Header(), w.Body.Bytes())
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d (X-Kairos-Error %q)", w.Code, tt.status, w.Header().Get("X-Kairos-Error"))
			}
			if got := w.Header().Get("X-Kairos-Error"); !strings.HasPrefix(got, tt.errHead) || (tt.errHead == "") != (got == "") {
				t.Errorf("X-Kairos-Error %q, want prefix %q", got, tt.errHead)
			}
			evs := h.pub.events()
			if tt.status != 200 {
				if len(evs) != 0 {
					t.Errorf("published %v", evs)
				}
				return
			}
			if len(evs) != 1 {
				t.Fatalf("published %d events", len(evs))
			}
			if tt.check != nil {
				tt.check(t, evs[0])
			}
		})
	}
}

func checkGIF(t *testing.T, status int, h http.Header, body []byte) {
	t.Helper()
	if len(body) != 43 || !bytes.Equal(body, transparentGIF) {
		t.Fatalf("status %d: body is not the 43-byte GIF: %q", status, body)
	}
	if ct := h.Get("Content-Type"); ct != "image/gif" {
		t.Errorf("Content-Type %q", ct)
	}
	if cc := h.Get("Cache-Control"); !strings.Contains(cc, "no-store") || !strings.Contains(cc, "no-cache") {
		t.Errorf("Cache-Control %q", cc)
	}
	if h.Get("Pragma") != "no-cache" || h.Get("Expires") != "0" {
		t.Errorf("Pragma %q, Expires %q", h.Get("Pragma"), h.Get("Expires"))
	}
}

func TestPixelGIFDecodes(t *testing.T) {
	img, err := gif.Decode(bytes.NewReader(transparentGIF))
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 1 || b.Dy() != 1 {
		t.Errorf("size %v", b)
	}
	if _, _, _, a := img.At(0, 0).RGBA(); a != 0 {
		t.Errorf("pixel alpha %d, want transparent", a)
	}
}

func TestPixelErrorsAreGIFs(t *testing.T) {
	h := newHarness(t, nil)
	w := h.do("GET", "/v1/pixel.gif?visitor=v&item=i", "")
	checkGIF(t, w.Code, w.Header(), w.Body.Bytes())
	if w.Code != 401 || !strings.HasPrefix(w.Header().Get("X-Kairos-Error"), "unauthorized: missing key") {
		t.Errorf("status %d, X-Kairos-Error %q", w.Code, w.Header().Get("X-Kairos-Error"))
	}
	h.pub.err = signals.ErrUnavailable
	w = h.do("GET", "/v1/pixel.gif?visitor=v&item=i&key="+testPK, "")
	checkGIF(t, w.Code, w.Header(), w.Body.Bytes())
	if w.Code != 503 || w.Header().Get("Retry-After") == "" || !strings.HasPrefix(w.Header().Get("X-Kairos-Error"), "unavailable: ") {
		t.Errorf("status %d, Retry-After %q, X-Kairos-Error %q", w.Code, w.Header().Get("Retry-After"), w.Header().Get("X-Kairos-Error"))
	}
}

func TestPixelID(t *testing.T) {
	q := func(s string) url.Values {
		v, err := url.ParseQuery(s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	a := pixelID(q("visitor=v&item=i&key=pk_1"))
	if b := pixelID(q("item=i&key=pk_2&visitor=v")); a != b {
		t.Errorf("order or key changes the id: %s %s", a, b)
	}
	if b := pixelID(q("visitor=v&item=i&cb=123")); a == b {
		t.Errorf("a cache buster does not change the id")
	}
	if b := pixelID(q("visitor=v&item=j")); a == b {
		t.Errorf("another item gives the same id")
	}
	// Same URL twice: same event id, so the engine de-duplicates.
	h := newHarness(t, nil)
	for i := 0; i < 2; i++ {
		if w := h.do("GET", "/v1/pixel.gif?visitor=v&item=i&key="+testPK, ""); w.Code != 200 {
			t.Fatalf("status %d", w.Code)
		}
	}
	evs := h.pub.events()
	if len(evs) != 2 || evs[0].ID != evs[1].ID {
		t.Errorf("re-delivered pixel ids differ: %+v", evs)
	}
}
