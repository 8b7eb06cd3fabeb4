package stats_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/stats"
	"github.com/kairoshq/kairos/engine/stats/statstest"
	"github.com/kairoshq/kairos/signals"
)

// fakeStore records the deltas of each AddCounts call and answers Counts
// from them (no expiry); err fails AddCounts.
type fakeStore struct {
	mu     sync.Mutex
	calls  [][]stats.Delta
	ctxErr []error
	err    error
	counts []stats.Point // answer of Counts, when set
	asked  [2]time.Time
}

func (f *fakeStore) AddCounts(ctx context.Context, ds []stats.Delta) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range ds {
		if err := ds[i].Check(); err != nil {
			return err
		}
	}
	f.calls = append(f.calls, slices.Clone(ds))
	f.ctxErr = append(f.ctxErr, ctx.Err())
	return f.err
}

func (f *fakeStore) Counts(_ context.Context, res stats.Resolution, sub stats.Subject, from, to time.Time) ([]stats.Point, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = [2]time.Time{from, to}
	return f.counts, f.err
}

var t0 = time.Date(2026, 11, 23, 14, 7, 30, 0, time.UTC)

func ev(id string, typ signals.Type, item, offer string, at time.Time, v float64) signals.Event {
	return signals.Event{ID: id, Type: typ, Visitor: "v", Item: item, Offer: offer, Time: signals.Timestamp{Time: at}, Value: v}
}

func newStats(t *testing.T, store stats.Store, mod func(*stats.Config)) *stats.Stats {
	t.Helper()
	cfg := stats.Config{Retention: stats.DefaultRetention(), Now: func() time.Time { return t0.Add(time.Minute) }}
	if mod != nil {
		mod(&cfg)
	}
	st, err := stats.New(store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// key of a delta without its counts.
type key struct {
	res   stats.Resolution
	sub   stats.Subject
	start int64
	typ   signals.Type
}

func byKey(t *testing.T, ds []stats.Delta) map[key]stats.Delta {
	t.Helper()
	m := map[key]stats.Delta{}
	for _, d := range ds {
		k := key{d.Res, d.Subject, d.Start, d.Type}
		if _, dup := m[k]; dup {
			t.Fatalf("two deltas for %+v: not aggregated", k)
		}
		m[k] = d
	}
	return m
}

func TestReact(t *testing.T) {
	f := &fakeStore{}
	st := newStats(t, f, nil)
	late := t0.Add(-31 * 24 * time.Hour) // its 15m bucket has expired, not its 1h one
	st.React(context.Background(), []engine.VisitorChange{
		{Fresh: []signals.Event{
			ev("1", signals.TypeView, "sku-1", "", t0, 0),
			ev("2", signals.TypeView, "sku-1", "", t0.Add(time.Second), 0),
			ev("3", signals.TypeDwell, "sku-1", "", t0, 1500),
			ev("4", signals.TypeView, "", "", t0, 0),                         // page view: not counted
			ev("5", signals.TypeConversion, "", "", t0, 99),                  // site-level conversion: not counted
			ev("6", signals.TypeClick, "", "o-1", t0, 0),                     // offer only
			ev("7", signals.TypeConversion, "sku-1", "o-1", t0, 20),          // both
			ev("8", signals.TypeView, "sku-1", "", t0.Add(8*time.Minute), 0), // next 15m bucket, same hour
		}},
		{Fresh: []signals.Event{
			ev("9", signals.TypeDwell, "sku-1", "", t0, 500),
			ev("10", signals.TypeView, "sku-2", "", late, 0),
		}},
	})
	if len(f.calls) != 1 {
		t.Fatalf("%d AddCounts calls, want 1", len(f.calls))
	}
	got := byKey(t, f.calls[0])
	q := func(at time.Time) int64 { return stats.Res15m.StartOf(at.Unix()) }
	h := func(at time.Time) int64 { return stats.Res1h.StartOf(at.Unix()) }
	d := func(at time.Time) int64 { return stats.Res1d.StartOf(at.Unix()) }
	sku1, sku2, o1 := stats.Item("sku-1"), stats.Item("sku-2"), stats.Offer("o-1")
	type want struct {
		count int64
		sum   float64
	}
	wants := map[key]want{
		{stats.Res15m, sku1, q(t0), signals.TypeView}:                      {2, 0},
		{stats.Res15m, sku1, q(t0.Add(8 * time.Minute)), signals.TypeView}: {1, 0},
		{stats.Res15m, sku1, q(t0), signals.TypeDwell}:                     {2, 2000},
		{stats.Res15m, sku1, q(t0), signals.TypeConversion}:                {1, 20},
		{stats.Res15m, o1, q(t0), signals.TypeClick}:                       {1, 0},
		{stats.Res15m, o1, q(t0), signals.TypeConversion}:                  {1, 20},
		{stats.Res1h, sku1, h(t0), signals.TypeView}:                       {3, 0},
		{stats.Res1h, sku1, h(t0), signals.TypeDwell}:                      {2, 2000},
		{stats.Res1h, sku1, h(t0), signals.TypeConversion}:                 {1, 20},
		{stats.Res1h, o1, h(t0), signals.TypeClick}:                        {1, 0},
		{stats.Res1h, o1, h(t0), signals.TypeConversion}:                   {1, 20},
		{stats.Res1h, sku2, h(late), signals.TypeView}:                     {1, 0},
		{stats.Res1d, sku1, d(t0), signals.TypeView}:                       {3, 0},
		{stats.Res1d, sku1, d(t0), signals.TypeDwell}:                      {2, 2000},
		{stats.Res1d, sku1, d(t0), signals.TypeConversion}:                 {1, 20},
		{stats.Res1d, o1, d(t0), signals.TypeClick}:                        {1, 0},
		{stats.Res1d, o1, d(t0), signals.TypeConversion}:                   {1, 20},
		{stats.Res1d, sku2, d(late), signals.TypeView}:                     {1, 0},
	}
	for k, w := range wants {
		g, ok := got[k]
		if !ok {
			t.Errorf("no delta for %v %v %v %v", k.res, k.sub, time.Unix(k.start, 0).UTC(), k.typ)
			continue
		}
		if g.Count != w.count || g.Sum != w.sum {
			t.Errorf("%v %v %v %v: count %d sum %v, want %d %v", k.res, k.sub, time.Unix(k.start, 0).UTC(), k.typ, g.Count, g.Sum, w.count, w.sum)
		}
		if want := stats.DefaultRetention().ExpireAt(k.res, k.start); g.ExpireAt != want {
			t.Errorf("%v %v: ExpireAt %d, want %d", k.res, k.sub, g.ExpireAt, want)
		}
	}
	for k := range got {
		if _, ok := wants[k]; !ok {
			t.Errorf("unexpected delta %v %v %v %v", k.res, k.sub, time.Unix(k.start, 0).UTC(), k.typ)
		}
	}
	// The deltas of one counter hash are next to each other.
	seen := map[key]bool{}
	ds := f.calls[0]
	for i, dl := range ds {
		k := key{dl.Res, dl.Subject, dl.Start, ""}
		if seen[k] && (i == 0 || key{ds[i-1].Res, ds[i-1].Subject, ds[i-1].Start, ""} != k) {
			t.Fatalf("deltas of %v %v %d are not consecutive", k.res, k.sub, k.start)
		}
		seen[k] = true
	}
}

func TestReactNothingToCount(t *testing.T) {
	f := &fakeStore{}
	st := newStats(t, f, nil)
	st.React(context.Background(), nil)
	st.React(context.Background(), []engine.VisitorChange{{Fresh: []signals.Event{ev("1", signals.TypeView, "", "", t0, 0)}}})
	if len(f.calls) != 0 {
		t.Fatalf("AddCounts called for nothing: %v", f.calls)
	}
}

// TestReactReusesMemory: the second batch's deltas do not include the
// first's.
func TestReactReusesMemory(t *testing.T) {
	f := &fakeStore{}
	st := newStats(t, f, nil)
	st.React(context.Background(), statstest.BenchBatch(1))
	st.React(context.Background(), []engine.VisitorChange{{Fresh: []signals.Event{ev("1", signals.TypeLike, "x", "", t0, 0)}}})
	if len(f.calls) != 2 || len(f.calls[1]) != 3 {
		t.Fatalf("second batch: %d deltas, want 3 (one per resolution)", len(f.calls[1]))
	}
	for _, d := range f.calls[1] {
		if d.Subject != stats.Item("x") || d.Type != signals.TypeLike || d.Count != 1 {
			t.Fatalf("second batch delta %+v", d)
		}
	}
}

func TestReactWriteFailure(t *testing.T) {
	f := &fakeStore{err: fmt.Errorf("fake: %w", engine.ErrUnavailable)}
	var logs bytes.Buffer
	reg := prometheus.NewRegistry()
	st := newStats(t, f, func(c *stats.Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		c.Registerer = reg
	})
	batch := []engine.VisitorChange{{Fresh: []signals.Event{ev("1", signals.TypeView, "sku-1", "", t0, 0)}}}
	st.React(context.Background(), batch)
	if !strings.Contains(logs.String(), "counters not written") || !strings.Contains(logs.String(), "unavailable") {
		t.Errorf("log %q", logs.String())
	}
	if v := counterValue(t, reg, "kairos_stats_write_errors_total"); v != 1 {
		t.Errorf("write errors %v, want 1", v)
	}
	// The next batch is written on its own (the lost counts are not retried).
	f.err = nil
	st.React(context.Background(), batch)
	if len(f.calls) != 2 || len(f.calls[1]) != 3 || f.calls[1][0].Count != 1 {
		t.Fatalf("after the failure: %v", f.calls)
	}
}

// counterValue returns the value of the registered counter named name.
func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestReactCancelledContext: the last batch of a shutdown (its context
// cancelled) still gets its counters written.
func TestReactCancelledContext(t *testing.T) {
	f := &fakeStore{}
	st := newStats(t, f, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	st.React(ctx, []engine.VisitorChange{{Fresh: []signals.Event{ev("1", signals.TypeView, "sku-1", "", t0, 0)}}})
	if len(f.calls) != 1 || f.ctxErr[0] != nil {
		t.Fatalf("calls %d, ctx err %v; want one write with a live context", len(f.calls), f.ctxErr)
	}
}

func TestSeries(t *testing.T) {
	h := func(i int) time.Time { return time.Date(2026, 11, 23, 10+i, 0, 0, 0, time.UTC) }
	f := &fakeStore{counts: []stats.Point{
		{Start: h(1), Counts: map[signals.Type]int64{signals.TypeView: 4}},
		{Start: h(3), Counts: map[signals.Type]int64{signals.TypeConversion: 1}, Sums: map[signals.Type]float64{signals.TypeConversion: 9.5}},
	}}
	st := newStats(t, f, func(c *stats.Config) { c.MaxPoints = 48 })
	ps, err := st.Series(context.Background(), stats.Item("sku-1"), stats.Res1h, h(0).Add(30*time.Minute), h(4).Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	// Buckets overlapping [10:30, 14:01): 10:00 … 14:00, empty ones included.
	if len(ps) != 5 {
		t.Fatalf("%d points, want 5: %v", len(ps), ps)
	}
	for i, p := range ps {
		if !p.Start.Equal(h(i)) || p.Start.Location() != time.UTC {
			t.Errorf("point %d starts %v, want %v", i, p.Start, h(i))
		}
	}
	if !f.asked[0].Equal(h(0)) || !f.asked[1].Equal(h(5)) {
		t.Errorf("store asked for [%v, %v), want [%v, %v)", f.asked[0], f.asked[1], h(0), h(5))
	}
	if ps[1].Counts[signals.TypeView] != 4 || ps[3].Revenue() != 9.5 || ps[0].Counts != nil || ps[2].Counts != nil || ps[4].Counts != nil {
		t.Errorf("points %v", ps)
	}

	bad := []struct {
		name     string
		sub      stats.Subject
		res      stats.Resolution
		from, to time.Time
		frag     string
	}{
		{"to before from", stats.Item("a"), stats.Res1h, h(2), h(1), "from, to: from 2026-11-23T12:00:00Z is not before to"},
		{"empty range", stats.Item("a"), stats.Res1h, h(2), h(2), "is not before"},
		{"too many points", stats.Item("a"), stats.Res15m, h(0), h(0).Add(12*time.Hour + time.Second), "49 buckets of 15m, more than the maximum 48"},
		{"resolution", stats.Item("a"), 0, h(0), h(1), "resolution"},
		{"empty id", stats.Item(""), stats.Res1h, h(0), h(1), "subject"},
		{"kind", stats.Subject{Kind: 'z', ID: "a"}, stats.Res1h, h(0), h(1), "subject"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := st.Series(context.Background(), tt.sub, tt.res, tt.from, tt.to)
			if !errors.Is(err, engine.ErrInvalid) || !strings.Contains(err.Error(), tt.frag) {
				t.Fatalf("err %v, want engine.ErrInvalid containing %q", err, tt.frag)
			}
		})
	}
	// Exactly MaxPoints is fine.
	if ps, err := st.Series(context.Background(), stats.Item("a"), stats.Res15m, h(0), h(12)); err != nil || len(ps) != 48 {
		t.Errorf("48 points: %d, %v", len(ps), err)
	}
	f.err = fmt.Errorf("fake: %w", engine.ErrUnavailable)
	if _, err := st.Series(context.Background(), stats.Item("a"), stats.Res1h, h(0), h(1)); !errors.Is(err, engine.ErrUnavailable) {
		t.Errorf("store error: %v", err)
	}
	f.err = nil
	f.counts = []stats.Point{{Start: h(9), Counts: map[signals.Type]int64{signals.TypeView: 1}}}
	if _, err := st.Series(context.Background(), stats.Item("a"), stats.Res1h, h(0), h(1)); err == nil {
		t.Error("a point outside the range from the store is not an error")
	}
}

func TestConfig(t *testing.T) {
	if _, err := stats.New(nil, stats.Config{}); err == nil {
		t.Error("nil store accepted")
	}
	_, err := stats.New(&fakeStore{}, stats.Config{MaxPoints: -1, WriteTimeout: -1, Retention: stats.Retention{Q15m: -time.Hour}})
	for _, f := range []string{"MaxPoints", "WriteTimeout", "negative"} {
		if err == nil || !strings.Contains(err.Error(), f) {
			t.Errorf("error %v does not name %s", err, f)
		}
	}
	st := newStats(t, &fakeStore{}, nil)
	if st.Retention() != stats.DefaultRetention() || st.MaxPoints() != stats.DefaultMaxPoints {
		t.Errorf("Retention %v, MaxPoints %d", st.Retention(), st.MaxPoints())
	}
}

// discard is a stats.Store that does nothing.
type discard struct{}

func (discard) AddCounts(context.Context, []stats.Delta) error { return nil }
func (discard) Counts(context.Context, stats.Resolution, stats.Subject, time.Time, time.Time) ([]stats.Point, error) {
	return nil, nil
}

// BenchmarkReact: the aggregation of one batch (256 events over ~100
// items, ~555 deltas) without a store write.
func BenchmarkReact(b *testing.B) { statstest.BenchReact(b, discard{}) }

// calls returns a copy of the recorded AddCounts calls.
func (f *fakeStore) recorded() [][]stats.Delta {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// With FlushEvery the counters of many batches are one write, made when a
// reader asks (Series) or at Flush — not in React.
func TestCoalescedWrites(t *testing.T) {
	f := &fakeStore{}
	st := newStats(t, f, func(c *stats.Config) { c.FlushEvery = time.Hour })
	for i := range 3 {
		st.React(context.Background(), []engine.VisitorChange{{Fresh: []signals.Event{ev(fmt.Sprint(i), signals.TypeView, "sku-1", "", t0, 0)}}})
	}
	if calls := f.recorded(); len(calls) != 0 {
		t.Fatalf("%d writes in React, want none before the period ends", len(calls))
	}
	if _, err := st.Series(context.Background(), stats.Item("sku-1"), stats.Res1h, t0.Add(-time.Hour), t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	calls := f.recorded()
	if len(calls) != 1 || len(calls[0]) != 3 {
		t.Fatalf("writes %v, want one of 3 deltas (one per resolution) before the read", calls)
	}
	for _, d := range calls[0] {
		if d.Subject != stats.Item("sku-1") || d.Type != signals.TypeView || d.Count != 3 {
			t.Fatalf("delta %+v, want the 3 views summed", d)
		}
	}
	st.Flush(context.Background()) // nothing held back: no write
	st.React(context.Background(), []engine.VisitorChange{{Fresh: []signals.Event{ev("4", signals.TypeClick, "sku-2", "", t0, 0)}}})
	st.Flush(context.Background())
	if calls := f.recorded(); len(calls) != 2 || len(calls[1]) != 3 || calls[1][0].Subject != stats.Item("sku-2") {
		t.Fatalf("after Flush: %v, want a second write of sku-2's click only", calls)
	}
}

// The coalesced write happens by itself once the period has passed.
func TestCoalescedWriteAfterThePeriod(t *testing.T) {
	f := &fakeStore{}
	st := newStats(t, f, func(c *stats.Config) { c.FlushEvery = 20 * time.Millisecond })
	st.React(context.Background(), []engine.VisitorChange{{Fresh: []signals.Event{ev("1", signals.TypeView, "sku-1", "", t0, 0)}}})
	deadline := time.Now().Add(5 * time.Second)
	for len(f.recorded()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the counters were not written within 5 s of a 20 ms period")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if calls := f.recorded(); len(calls) != 1 || calls[0][0].Count != 1 {
		t.Fatalf("writes %v, want one with the view", calls)
	}
}
