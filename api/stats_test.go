package api

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/stats"
	"github.com/kairoshq/kairos/signals"
)

// fakeStats answers Series with one point per bucket of the range (the
// second with counts) and records the last call.
type fakeStats struct {
	mu   sync.Mutex
	last struct {
		sub      stats.Subject
		res      stats.Resolution
		from, to time.Time
	}
	calls int
	err   error
}

func (f *fakeStats) MaxPoints() int { return 100 }

func (f *fakeStats) Series(_ context.Context, sub stats.Subject, res stats.Resolution, from, to time.Time) ([]stats.Point, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	f.last.sub, f.last.res, f.last.from, f.last.to = sub, res, from, to
	if f.err != nil {
		return nil, f.err
	}
	var out []stats.Point
	for t := res.Bucket(from); t.Before(to); t = t.Add(res.Duration()) {
		p := stats.Point{Start: t}
		if len(out) == 1 {
			p.Counts = map[signals.Type]int64{signals.TypeView: 12, signals.TypeClick: 3, signals.TypeConversion: 1, signals.TypeDwell: 2}
			p.Sums = map[signals.Type]float64{signals.TypeConversion: 49.5, signals.TypeDwell: 3000}
		}
		out = append(out, p)
	}
	return out, nil
}

func statsHarness(t *testing.T) (*harness, *fakeStats) {
	t.Helper()
	h := newHarness(t, nil)
	f := &fakeStats{}
	h.s = h.server(nil, func(d *Deps) { d.Stats = f })
	return h, f
}

func TestStatsEndpoint(t *testing.T) {
	h, f := statsHarness(t)
	w := h.secret("GET", "/v1/stats/items/sku-42", "")
	if w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	// Defaults: resolution 1h, the last 24 hours up to now (testNow, 10:00).
	if f.last.sub != stats.Item("sku-42") || f.last.res != stats.Res1h || !f.last.to.Equal(testNow) || !f.last.from.Equal(testNow.Add(-24*time.Hour)) {
		t.Fatalf("Series called with %+v", f.last)
	}
	got := decode[StatsResponse](t, w)
	if got.Item != "sku-42" || got.Offer != "" || got.Resolution != "1h" || len(got.Points) != 24 {
		t.Fatalf("answer %+v", got)
	}
	if !got.From.Equal(testNow.Add(-24*time.Hour)) || !got.To.Equal(testNow) {
		t.Errorf("from %v to %v", got.From, got.To)
	}
	p := got.Points[1]
	if p.Counts[signals.TypeView] != 12 || p.Counts[signals.TypeClick] != 3 || p.Revenue != 49.5 || p.DwellMs != 3000 {
		t.Errorf("point %+v", p)
	}
	// The JSON shape: "t" in RFC 3339 UTC, counts always an object.
	body := w.Body.String()
	for _, frag := range []string{
		`"points":[{"t":"2026-11-22T10:00:00Z","counts":{},"revenue":0,"dwell_ms":0},`,
		`{"t":"2026-11-22T11:00:00Z","counts":{"click":3,"conversion":1,"dwell":2,"view":12},"revenue":49.5,"dwell_ms":3000}`,
		`"from":"2026-11-22T10:00:00Z","to":"2026-11-23T10:00:00Z"`,
	} {
		if !strings.Contains(body, frag) {
			t.Errorf("body lacks %s:\n%s", frag, body)
		}
	}
	if cc := w.Header().Get("Cache-Control"); cc != "private, no-store" {
		t.Errorf("Cache-Control %q", cc)
	}
}

func TestStatsParams(t *testing.T) {
	h, f := statsHarness(t)
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name     string
		query    string
		sub      stats.Subject
		res      stats.Resolution
		from, to time.Time
		points   int
	}{
		{"15m default window", "?resolution=15m", stats.Item("sku-42"), stats.Res15m, testNow.Add(-24 * time.Hour), testNow, 96},
		{"1d default window: 30 days", "?resolution=1d", stats.Item("sku-42"), stats.Res1d, testNow.Add(-30 * 24 * time.Hour), testNow, 31},
		{"RFC 3339", "?from=2026-11-23T00:00:00Z&to=2026-11-23T06:30:00%2B01:00", stats.Item("sku-42"), stats.Res1h,
			at("2026-11-23T00:00:00Z"), at("2026-11-23T05:30:00Z"), 6},
		{"epoch ms", "?resolution=15m&from=1795392000000&to=1795395600000", stats.Item("sku-42"), stats.Res15m,
			time.UnixMilli(1795392000000), time.UnixMilli(1795395600000), 4},
		{"to inside a bucket: both partial buckets", "?resolution=15m&to=2026-11-23T10:00:01Z", stats.Item("sku-42"), stats.Res15m,
			at("2026-11-22T10:00:01Z"), at("2026-11-23T10:00:01Z"), 97},
		{"only to", "?to=2026-11-20T00:00:00Z", stats.Item("sku-42"), stats.Res1h, at("2026-11-19T00:00:00Z"), at("2026-11-20T00:00:00Z"), 24},
		{"only from", "?from=2026-11-23T08:00:00Z", stats.Item("sku-42"), stats.Res1h, at("2026-11-23T08:00:00Z"), testNow, 2},
		{"exactly the maximum", "?resolution=15m&from=2026-11-22T09:00:00Z&to=2026-11-23T10:00:00Z", stats.Item("sku-42"), stats.Res15m,
			at("2026-11-22T09:00:00Z"), testNow, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := h.secret("GET", "/v1/stats/items/sku-42"+tt.query, "")
			if w.Code != 200 {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			if f.last.sub != tt.sub || f.last.res != tt.res || !f.last.from.Equal(tt.from) || !f.last.to.Equal(tt.to) {
				t.Fatalf("Series(%v, %v, %v, %v), want (%v, %v, %v, %v)", f.last.sub, f.last.res, f.last.from, f.last.to, tt.sub, tt.res, tt.from, tt.to)
			}
			if got := decode[StatsResponse](t, w); len(got.Points) != tt.points {
				t.Errorf("%d points, want %d", len(got.Points), tt.points)
			}
		})
	}

	t.Run("offer", func(t *testing.T) {
		w := h.secret("GET", "/v1/stats/offers/spring%2F10?resolution=1d", "")
		if w.Code != 200 || f.last.sub != stats.Offer("spring/10") {
			t.Fatalf("status %d, subject %v: %s", w.Code, f.last.sub, w.Body)
		}
		if got := decode[StatsResponse](t, w); got.Offer != "spring/10" || got.Item != "" || got.Resolution != "1d" {
			t.Errorf("answer %+v", got)
		}
	})

	bad := []struct {
		name, path string
		frags      []string
	}{
		{"resolution", "/v1/stats/items/sku-42?resolution=5m", []string{"resolution", `"5m"`, "15m, 1h or 1d"}},
		{"from", "/v1/stats/items/sku-42?from=yesterday", []string{"from", `"yesterday"`, "RFC 3339"}},
		{"to", "/v1/stats/items/sku-42?to=2026-13-01", []string{"to:", "RFC 3339"}},
		{"to negative", "/v1/stats/items/sku-42?to=-5", []string{"to:", "out of range"}},
		{"from after to", "/v1/stats/items/sku-42?from=2026-11-23T12:00:00Z&to=2026-11-23T11:00:00Z", []string{"from: 2026-11-23T12:00:00Z is not before to 2026-11-23T11:00:00Z"}},
		{"from equals to", "/v1/stats/items/sku-42?from=1795392000000&to=1795392000000", []string{"is not before to"}},
		{"too many points", "/v1/stats/items/sku-42?resolution=15m&from=2026-11-22T08:59:59Z", []string{"from, to", "101 buckets of 15m", "maximum 100", "coarser resolution"}},
		{"id control character", "/v1/stats/items/sku%0A1", []string{"id:", "control character"}},
		{"id too long", "/v1/stats/items/" + strings.Repeat("x", 201), []string{"id:", "201 bytes"}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			calls := f.calls
			wantError(t, h.secret("GET", tt.path, ""), 400, CodeInvalid, tt.frags...)
			if f.calls != calls {
				t.Errorf("Series called for an invalid request")
			}
		})
	}
}

func TestStatsErrorsAndAccess(t *testing.T) {
	h, f := statsHarness(t)
	f.err = fmt.Errorf("fake: %w", engine.ErrUnavailable)
	wantError(t, h.secret("GET", "/v1/stats/items/sku-42", ""), 503, CodeUnavailable)
	f.err = fmt.Errorf("fake: %w: from, to: too wide", engine.ErrInvalid)
	wantError(t, h.secret("GET", "/v1/stats/items/sku-42", ""), 400, CodeInvalid, "too wide")
	f.err = nil
	wantError(t, h.do("GET", "/v1/stats/items/sku-42", ""), 401, CodeUnauthorized)
	wantError(t, h.do("GET", "/v1/stats/items/sku-42", "", "Authorization", "Bearer "+testPK, "Origin", allowed), 403, CodeForbidden, "needs the secret key")
	wantError(t, h.do("GET", "/v1/stats/offers/o1", "", "Authorization", "Bearer "+testPK), 403, CodeForbidden)
	wantError(t, h.secret("POST", "/v1/stats/items/sku-42", ""), 405, CodeMethodNotAllowed)

	// Without Deps.Stats the routes answer 404.
	plain := newHarness(t, nil)
	wantError(t, plain.secret("GET", "/v1/stats/items/sku-42", ""), 404, CodeNotFound, "stats are not configured")
	wantError(t, plain.secret("GET", "/v1/stats/offers/o1", ""), 404, CodeNotFound)
}
