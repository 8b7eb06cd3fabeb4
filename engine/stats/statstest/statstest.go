// Package statstest is the contract test suite of the stats.Store port:
// engine/redisstore and engine/embedded run it from their own tests, so
// both keep the same guarantees.
//
// Run checks, each in its own subtest on a fresh store:
//
//   - counts and sums round-trip per type, and add up within one call and
//     across calls; types (and buckets) without counts are left out;
//   - Counts returns the buckets whose start is in [from, to), ascending,
//     without empty ones, and keeps resolutions, subjects, kinds (an item
//     and an offer with the same id) and ids with ':' apart;
//   - a bucket whose ExpireAt has passed is not returned; one that expires
//     later, or never (0), is;
//   - a malformed delta fails the whole call with engine.ErrInvalid and
//     nothing is added; a cancelled context adds nothing;
//   - concurrent AddCounts lose nothing; a call of 3,000 deltas works.
//
// Deltas use bucket starts a few days before the current time, so that a
// real clock can be used.
package statstest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/stats"
	"github.com/kairoshq/kairos/signals"
)

// Run runs the contract suite as subtests of t. open returns a new, empty
// store for each subtest (and registers its cleanup with t).
func Run(t *testing.T, open func(t *testing.T) stats.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s stats.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"Accumulates", testAccumulates},
		{"RangeAndOrder", testRange},
		{"KeysApart", testKeysApart},
		{"Expiry", testExpiry},
		{"Invalid", testInvalid},
		{"Cancelled", testCancelled},
		{"Concurrent", testConcurrent},
		{"Large", testLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open(t)) })
	}
}

// Base returns the start of an hour three days before now: a bucket start
// at every resolution up to 1h, comfortably in the past and far from any
// expiry the suite sets.
func Base() time.Time {
	return time.Now().UTC().Add(-72 * time.Hour).Truncate(24 * time.Hour)
}

// D builds a delta of one event type in the bucket of res holding t.
func D(res stats.Resolution, sub stats.Subject, t time.Time, typ signals.Type, count int64, sum float64) stats.Delta {
	return stats.Delta{Res: res, Subject: sub, Start: res.StartOf(t.Unix()), Type: typ, Count: count, Sum: sum}
}

// MustAdd calls AddCounts and fails the test on error.
func MustAdd(tb testing.TB, s stats.Store, deltas ...stats.Delta) {
	tb.Helper()
	if err := s.AddCounts(context.Background(), deltas); err != nil {
		tb.Fatalf("AddCounts: %v", err)
	}
}

// MustCounts calls Counts and fails the test on error.
func MustCounts(tb testing.TB, s stats.Store, res stats.Resolution, sub stats.Subject, from, to time.Time) []stats.Point {
	tb.Helper()
	ps, err := s.Counts(context.Background(), res, sub, from, to)
	if err != nil {
		tb.Fatalf("Counts(%v, %v, %v, %v): %v", res, sub, from, to, err)
	}
	return ps
}

// Pt builds an expected point: counts as type, count pairs; sums as a
// map (nil: none).
func Pt(start time.Time, sums map[signals.Type]float64, counts ...any) stats.Point {
	p := stats.Point{Start: start.UTC(), Sums: sums}
	for i := 0; i+1 < len(counts); i += 2 {
		if p.Counts == nil {
			p.Counts = map[signals.Type]int64{}
		}
		p.Counts[counts[i].(signals.Type)] = int64(counts[i+1].(int))
	}
	return p
}

// Equal fails the test unless got equals want (sums compared within 1e-9
// relative error).
func Equal(tb testing.TB, what string, got, want []stats.Point) {
	tb.Helper()
	if len(got) != len(want) {
		tb.Fatalf("%s: %d points, want %d:\n got %s\nwant %s", what, len(got), len(want), format(got), format(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		ok := g.Start.Equal(w.Start) && g.Start.Location() == time.UTC && reflect.DeepEqual(nz(g.Counts), nz(w.Counts)) && len(g.Sums) == len(w.Sums)
		for k, v := range w.Sums {
			gv, has := g.Sums[k]
			ok = ok && has && math.Abs(gv-v) <= 1e-9*math.Max(1, math.Abs(v))
		}
		if !ok {
			tb.Fatalf("%s: point %d:\n got %s\nwant %s", what, i, format(got[i:i+1]), format(want[i:i+1]))
		}
	}
}

func nz[M ~map[K]V, K comparable, V any](m M) M {
	if len(m) == 0 {
		return nil
	}
	return m
}

func format(ps []stats.Point) string {
	s := "["
	for i, p := range ps {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprintf("{%s %v %v}", p.Start.Format(time.RFC3339), p.Counts, p.Sums)
	}
	return s + "]"
}

const (
	view  = signals.TypeView
	click = signals.TypeClick
	dwell = signals.TypeDwell
	conv  = signals.TypeConversion
)

func testRoundTrip(t *testing.T, s stats.Store) {
	b := Base()
	sub := stats.Item("sku-1")
	MustAdd(t, s,
		D(stats.Res1h, sub, b, view, 12, 0),
		D(stats.Res1h, sub, b, click, 3, 0),
		D(stats.Res1h, sub, b, dwell, 2, 1500.5),
		D(stats.Res1h, sub, b, conv, 1, 49.99),
	)
	got := MustCounts(t, s, stats.Res1h, sub, b, b.Add(time.Hour))
	Equal(t, "one bucket", got, []stats.Point{
		Pt(b, map[signals.Type]float64{dwell: 1500.5, conv: 49.99}, view, 12, click, 3, dwell, 2, conv, 1),
	})
	if r := got[0].Revenue(); math.Abs(r-49.99) > 1e-9 {
		t.Errorf("Revenue %v, want 49.99", r)
	}
	if d := got[0].DwellMs(); d != 1500.5 {
		t.Errorf("DwellMs %v, want 1500.5", d)
	}
	if got := MustCounts(t, s, stats.Res1h, stats.Item("nobody"), b, b.Add(time.Hour)); len(got) != 0 {
		t.Errorf("unknown subject: %s, want no points", format(got))
	}
}

func testAccumulates(t *testing.T, s stats.Store) {
	b := Base()
	sub := stats.Item("sku-1")
	// Twice the same counter within one call, then again in a second call.
	MustAdd(t, s, D(stats.Res15m, sub, b, view, 2, 0), D(stats.Res15m, sub, b, view, 3, 0), D(stats.Res15m, sub, b, conv, 1, 10))
	MustAdd(t, s, D(stats.Res15m, sub, b, view, 1, 0), D(stats.Res15m, sub, b, conv, 2, 0.25), D(stats.Res15m, sub, b, click, 0, 0))
	got := MustCounts(t, s, stats.Res15m, sub, b, b.Add(15*time.Minute))
	// A zero count adds nothing: types without events are absent.
	Equal(t, "accumulated", got, []stats.Point{Pt(b, map[signals.Type]float64{conv: 10.25}, view, 6, conv, 3)})
	MustAdd(t, s, D(stats.Res15m, sub, b.Add(15*time.Minute), click, 0, 0))
	if got := MustCounts(t, s, stats.Res15m, sub, b.Add(15*time.Minute), b.Add(time.Hour)); len(got) != 0 {
		t.Errorf("a bucket of zero counts is returned: %s", format(got))
	}
}

func testRange(t *testing.T, s stats.Store) {
	b := Base()
	sub := stats.Item("sku-1")
	var ds []stats.Delta
	for i := range 6 {
		if i == 2 {
			continue // an empty bucket in the middle
		}
		ds = append(ds, D(stats.Res1h, sub, b.Add(time.Duration(i)*time.Hour), view, int64(i+1), 0))
	}
	MustAdd(t, s, ds...)
	h := func(i int) time.Time { return b.Add(time.Duration(i) * time.Hour) }
	Equal(t, "all", MustCounts(t, s, stats.Res1h, sub, b.Add(-time.Hour), h(10)), []stats.Point{
		Pt(h(0), nil, view, 1), Pt(h(1), nil, view, 2), Pt(h(3), nil, view, 4), Pt(h(4), nil, view, 5), Pt(h(5), nil, view, 6),
	})
	// [from, to): the bucket starting at to is out, the one at from is in.
	Equal(t, "[1h, 4h)", MustCounts(t, s, stats.Res1h, sub, h(1), h(4)), []stats.Point{Pt(h(1), nil, view, 2), Pt(h(3), nil, view, 4)})
	// from inside a bucket: that bucket's start is before from, so it is out.
	Equal(t, "[1h+1s, 4h+1s)", MustCounts(t, s, stats.Res1h, sub, h(1).Add(time.Second), h(4).Add(time.Second)), []stats.Point{
		Pt(h(3), nil, view, 4), Pt(h(4), nil, view, 5),
	})
	if got := MustCounts(t, s, stats.Res1h, sub, h(6), h(9)); len(got) != 0 {
		t.Errorf("after the data: %s", format(got))
	}
	if got := MustCounts(t, s, stats.Res1h, sub, h(2), h(3)); len(got) != 0 {
		t.Errorf("the empty bucket: %s", format(got))
	}
}

func testKeysApart(t *testing.T, s stats.Store) {
	b := Base()
	subs := []stats.Subject{
		stats.Item("a"), stats.Item("a:1"), stats.Item("a:1:2"), stats.Offer("a"), stats.Offer("a:1"),
		stats.Item("sku/ü 1"), stats.Item("1"),
	}
	var ds []stats.Delta
	for i, sub := range subs {
		for _, res := range stats.Resolutions() {
			ds = append(ds, D(res, sub, b, view, int64(100*i+int(res)), 0))
		}
	}
	MustAdd(t, s, ds...)
	for i, sub := range subs {
		for _, res := range stats.Resolutions() {
			got := MustCounts(t, s, res, sub, b, b.Add(res.Duration()))
			Equal(t, fmt.Sprintf("%v at %v", sub, res), got, []stats.Point{Pt(b, nil, view, 100*i+int(res))})
		}
	}
}

func testExpiry(t *testing.T, s stats.Store) {
	b := Base()
	now := time.Now().Unix()
	// Deltas of one resolution and start share their ExpireAt (see
	// stats.Delta), hence two buckets.
	past := D(stats.Res15m, stats.Item("gone"), b, view, 1, 0)
	past.ExpireAt = now - 10
	later := b.Add(15 * time.Minute)
	soon := D(stats.Res15m, stats.Item("kept"), later, view, 2, 0)
	soon.ExpireAt = now + 3600
	never := D(stats.Res1d, stats.Item("kept"), b, view, 3, 0)
	MustAdd(t, s, past, soon, never)
	if got := MustCounts(t, s, stats.Res15m, stats.Item("gone"), b, b.Add(time.Hour)); len(got) != 0 {
		t.Errorf("expired bucket returned: %s", format(got))
	}
	Equal(t, "expiring later", MustCounts(t, s, stats.Res15m, stats.Item("kept"), b, b.Add(time.Hour)), []stats.Point{Pt(later, nil, view, 2)})
	Equal(t, "never expiring", MustCounts(t, s, stats.Res1d, stats.Item("kept"), b, b.Add(24*time.Hour)), []stats.Point{Pt(b, nil, view, 3)})
}

func testInvalid(t *testing.T, s stats.Store) {
	b := Base()
	good := D(stats.Res1h, stats.Item("sku-1"), b, view, 1, 0)
	bad := []struct {
		name string
		mod  func(*stats.Delta)
	}{
		{"resolution", func(d *stats.Delta) { d.Res = 0 }},
		{"kind", func(d *stats.Delta) { d.Subject.Kind = 'x' }},
		{"empty id", func(d *stats.Delta) { d.Subject.ID = "" }},
		{"misaligned start", func(d *stats.Delta) { d.Start += 60 }},
		{"empty type", func(d *stats.Delta) { d.Type = "" }},
		{"negative count", func(d *stats.Delta) { d.Count = -1 }},
		{"NaN sum", func(d *stats.Delta) { d.Sum = math.NaN() }},
		{"negative expiry", func(d *stats.Delta) { d.ExpireAt = -1 }},
	}
	for _, tt := range bad {
		d := good
		tt.mod(&d)
		err := s.AddCounts(context.Background(), []stats.Delta{good, d})
		if !errors.Is(err, engine.ErrInvalid) {
			t.Errorf("%s: err %v, want engine.ErrInvalid", tt.name, err)
		}
	}
	if got := MustCounts(t, s, stats.Res1h, stats.Item("sku-1"), b, b.Add(time.Hour)); len(got) != 0 {
		t.Errorf("a failed call added counts: %s", format(got))
	}
	if err := s.AddCounts(context.Background(), nil); err != nil {
		t.Errorf("no deltas: %v", err)
	}
	if _, err := s.Counts(context.Background(), 0, stats.Item("x"), b, b.Add(time.Hour)); !errors.Is(err, engine.ErrInvalid) {
		t.Errorf("Counts with an invalid resolution: %v, want engine.ErrInvalid", err)
	}
}

func testCancelled(t *testing.T, s stats.Store) {
	b := Base()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.AddCounts(ctx, []stats.Delta{D(stats.Res1h, stats.Item("sku-1"), b, view, 1, 0)}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled AddCounts: %v, want context.Canceled", err)
	}
	if got := MustCounts(t, s, stats.Res1h, stats.Item("sku-1"), b, b.Add(time.Hour)); len(got) != 0 {
		t.Errorf("a cancelled call added counts: %s", format(got))
	}
}

func testConcurrent(t *testing.T, s stats.Store) {
	b := Base()
	const workers, calls = 4, 25
	var g errgroup.Group
	for w := range workers {
		g.Go(func() error {
			for i := range calls {
				ds := []stats.Delta{
					D(stats.Res15m, stats.Item("hot"), b, view, 1, 0),
					D(stats.Res15m, stats.Item("hot"), b, dwell, 1, 10),
					D(stats.Res15m, stats.Item(fmt.Sprintf("w%d", w)), b.Add(time.Duration(i%4)*15*time.Minute), click, 1, 0),
				}
				if err := s.AddCounts(context.Background(), ds); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	Equal(t, "hot", MustCounts(t, s, stats.Res15m, stats.Item("hot"), b, b.Add(time.Hour)), []stats.Point{
		Pt(b, map[signals.Type]float64{dwell: 10 * workers * calls}, view, workers*calls, dwell, workers*calls),
	})
	q := func(i int) time.Time { return b.Add(time.Duration(i) * 15 * time.Minute) }
	for w := range workers {
		Equal(t, fmt.Sprintf("w%d", w), MustCounts(t, s, stats.Res15m, stats.Item(fmt.Sprintf("w%d", w)), b, b.Add(time.Hour)), []stats.Point{
			Pt(q(0), nil, click, calls/4+1), Pt(q(1), nil, click, calls/4), Pt(q(2), nil, click, calls/4), Pt(q(3), nil, click, calls/4),
		})
	}
}

func testLarge(t *testing.T, s stats.Store) {
	b := Base()
	var ds []stats.Delta
	for i := range 1000 {
		for _, typ := range []signals.Type{view, click, dwell} {
			ds = append(ds, D(stats.Res1h, stats.Item(fmt.Sprintf("sku-%04d", i)), b.Add(time.Duration(i%24)*time.Hour), typ, int64(i+1), float64(i)/2))
		}
	}
	MustAdd(t, s, ds...)
	for _, i := range []int{0, 1, 500, 999} {
		at := b.Add(time.Duration(i%24) * time.Hour)
		want := Pt(at, map[signals.Type]float64{view: float64(i) / 2, click: float64(i) / 2, dwell: float64(i) / 2}, view, i+1, click, i+1, dwell, i+1)
		if i == 0 {
			want.Sums = nil
		}
		Equal(t, fmt.Sprintf("sku-%04d", i), MustCounts(t, s, stats.Res1h, stats.Item(fmt.Sprintf("sku-%04d", i)), b, b.Add(24*time.Hour)), []stats.Point{want})
	}
}
