// Package attentiontest is the contract test suite of the attention.Store
// port, and Mem, an in-memory reference store. engine/redisstore and
// engine/embedded run Run from their own tests, so both keep the same
// guarantees.
//
// Run checks, each in its own subtest on a fresh store:
//
//   - dwell adds up per (page, element), within one call and across
//     calls, and pages are kept apart (also pages and elements with ':'
//     and spaces);
//   - an unknown page is an empty slice;
//   - a page's elements are bounded by MaxElements: the dwell of further
//     new elements goes to attention.OtherElement, existing ones keep
//     counting;
//   - a page whose expiry has passed reads as empty; one that expires
//     later, or never, does not;
//   - a malformed write fails with engine.ErrInvalid and adds nothing; a
//     cancelled context adds nothing;
//   - concurrent writes lose nothing, and concurrent writers adding new
//     elements to one page (replicas) keep its MaxElements bound exact.
package attentiontest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/attention"
)

// Run runs the contract suite as subtests of t. open returns a new, empty
// store for each subtest (and registers its cleanup with t).
func Run(t *testing.T, open func(t *testing.T) attention.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s attention.Store)
	}{
		{"Accumulates", testAccumulates},
		{"Unknown", testUnknown},
		{"Bounded", testBounded},
		{"Expiry", testExpiry},
		{"Invalid", testInvalid},
		{"Cancelled", testCancelled},
		{"Concurrent", testConcurrent},
		{"BoundedConcurrent", testBoundedConcurrent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open(t)) })
	}
}

// MustAdd adds the deltas (MaxElements 100, no expiry), failing t on error.
func MustAdd(tb testing.TB, s attention.Store, deltas ...attention.Delta) {
	tb.Helper()
	if err := s.AddDwell(context.Background(), attention.Write{Deltas: deltas, MaxElements: 100}); err != nil {
		tb.Fatalf("AddDwell: %v", err)
	}
}

// MustPage returns the page's totals as a map, failing t on error.
func MustPage(tb testing.TB, s attention.Store, page string) map[string]int64 {
	tb.Helper()
	els, err := s.PageDwell(context.Background(), page)
	if err != nil {
		tb.Fatalf("PageDwell(%q): %v", page, err)
	}
	if els == nil {
		tb.Fatalf("PageDwell(%q) = nil, want a (possibly empty) slice", page)
	}
	m := map[string]int64{}
	for _, e := range els {
		if _, dup := m[e.Element]; dup {
			tb.Fatalf("PageDwell(%q): element %q twice", page, e.Element)
		}
		m[e.Element] = e.Ms
	}
	return m
}

func wantPage(tb testing.TB, s attention.Store, page string, want map[string]int64) {
	tb.Helper()
	if got := MustPage(tb, s, page); !maps.Equal(got, want) {
		tb.Fatalf("page %q = %v, want %v", page, got, want)
	}
}

const (
	pageA = "https://shop.example/p/42"
	pageB = "https://shop.example/p/42/"
)

func testAccumulates(t *testing.T, s attention.Store) {
	MustAdd(t, s,
		attention.Delta{Page: pageA, Element: "item:42", Ms: 1200},
		attention.Delta{Page: pageA, Element: "offer:o 1", Ms: 300},
		attention.Delta{Page: pageA, Element: "item:42", Ms: 800},
		attention.Delta{Page: pageB, Element: "item:42", Ms: 5},
		attention.Delta{Page: "/p:1", Element: "hero:banner", Ms: 7},
	)
	MustAdd(t, s, attention.Delta{Page: pageA, Element: "item:42", Ms: 1000})
	wantPage(t, s, pageA, map[string]int64{"item:42": 3000, "offer:o 1": 300})
	wantPage(t, s, pageB, map[string]int64{"item:42": 5})
	wantPage(t, s, "/p:1", map[string]int64{"hero:banner": 7})
}

func testUnknown(t *testing.T, s attention.Store) {
	wantPage(t, s, "https://shop.example/never", map[string]int64{})
}

func testBounded(t *testing.T, s attention.Store) {
	ctx := context.Background()
	add := func(deltas ...attention.Delta) {
		t.Helper()
		if err := s.AddDwell(ctx, attention.Write{Deltas: deltas, MaxElements: 2}); err != nil {
			t.Fatal(err)
		}
	}
	add(attention.Delta{Page: pageA, Element: "a", Ms: 1}, attention.Delta{Page: pageA, Element: "b", Ms: 2},
		attention.Delta{Page: pageA, Element: "c", Ms: 4})
	add(attention.Delta{Page: pageA, Element: "a", Ms: 10}, attention.Delta{Page: pageA, Element: "d", Ms: 20},
		attention.Delta{Page: pageB, Element: "d", Ms: 1})
	wantPage(t, s, pageA, map[string]int64{"a": 11, "b": 2, attention.OtherElement: 24})
	wantPage(t, s, pageB, map[string]int64{"d": 1})
}

func testExpiry(t *testing.T, s attention.Store) {
	ctx := context.Background()
	for _, w := range []attention.Write{
		{Deltas: []attention.Delta{{Page: "past", Element: "x", Ms: 1}}, MaxElements: 10, ExpireAt: time.Now().Add(-time.Hour)},
		{Deltas: []attention.Delta{{Page: "future", Element: "x", Ms: 2}}, MaxElements: 10, ExpireAt: time.Now().Add(time.Hour)},
		{Deltas: []attention.Delta{{Page: "never", Element: "x", Ms: 3}}, MaxElements: 10},
	} {
		if err := s.AddDwell(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	wantPage(t, s, "past", map[string]int64{})
	wantPage(t, s, "future", map[string]int64{"x": 2})
	wantPage(t, s, "never", map[string]int64{"x": 3})
}

func testInvalid(t *testing.T, s attention.Store) {
	ctx := context.Background()
	ok := attention.Delta{Page: pageA, Element: "item:1", Ms: 5}
	for name, w := range map[string]attention.Write{
		"empty page":     {Deltas: []attention.Delta{ok, {Element: "x", Ms: 1}}, MaxElements: 10},
		"empty element":  {Deltas: []attention.Delta{ok, {Page: pageA, Ms: 1}}, MaxElements: 10},
		"zero ms":        {Deltas: []attention.Delta{ok, {Page: pageA, Element: "x"}}, MaxElements: 10},
		"no max element": {Deltas: []attention.Delta{ok}},
	} {
		if err := s.AddDwell(ctx, w); !errors.Is(err, engine.ErrInvalid) {
			t.Errorf("%s: %v, want engine.ErrInvalid", name, err)
		}
	}
	wantPage(t, s, pageA, map[string]int64{})
}

func testCancelled(t *testing.T, s attention.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.AddDwell(ctx, attention.Write{Deltas: []attention.Delta{{Page: pageA, Element: "x", Ms: 1}}, MaxElements: 10}); err == nil {
		t.Error("AddDwell with a cancelled context succeeded")
	}
	wantPage(t, s, pageA, map[string]int64{})
}

func testConcurrent(t *testing.T, s attention.Store) {
	const workers, rounds = 4, 25
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				MustAdd(t, s, attention.Delta{Page: pageA, Element: "shared", Ms: 1},
					attention.Delta{Page: pageA, Element: fmt.Sprintf("w%d", w), Ms: int64(r + 1)})
			}
		})
	}
	wg.Wait()
	want := map[string]int64{"shared": workers * rounds}
	for w := range workers {
		want[fmt.Sprintf("w%d", w)] = rounds * (rounds + 1) / 2
	}
	wantPage(t, s, pageA, want)
}

func testBoundedConcurrent(t *testing.T, s attention.Store) {
	const workers, each, maxEl = 8, 6, 10
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				err := s.AddDwell(context.Background(), attention.Write{MaxElements: maxEl, Deltas: []attention.Delta{
					{Page: pageA, Element: fmt.Sprintf("w%d-%d", w, i), Ms: 2},
				}})
				if err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	got := MustPage(t, s, pageA)
	var total int64
	for el, ms := range got {
		total += ms
		if el != attention.OtherElement && ms != 2 {
			t.Errorf("element %s = %d ms, want 2", el, ms)
		}
	}
	if len(got) != maxEl+1 || total != 2*workers*each || got[attention.OtherElement] != 2*(workers*each-maxEl) {
		t.Errorf("page has %d entries (want %d elements and %s), %d ms in all (want %d), other %d ms: %v",
			len(got), maxEl, attention.OtherElement, total, 2*workers*each, got[attention.OtherElement], got)
	}
}

// Mem is an in-memory attention.Store (the reference implementation of
// the contract; for tests). The zero value is ready.
type Mem struct {
	mu    sync.Mutex
	pages map[string]*memPage
	// Now is the clock of expiries (nil: time.Now).
	Now func() time.Time
}

type memPage struct {
	els      map[string]int64
	expireAt time.Time
}

// Interface guard.
var _ attention.Store = (*Mem)(nil)

func (m *Mem) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

// AddDwell implements attention.Store.
func (m *Mem) AddDwell(ctx context.Context, w attention.Write) error {
	if err := w.Check(); err != nil {
		return fmt.Errorf("attentiontest: add dwell: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.pages == nil {
		m.pages = map[string]*memPage{}
	}
	now := m.now()
	for _, d := range w.Deltas {
		p := m.pages[d.Page]
		if p == nil || (!p.expireAt.IsZero() && !now.Before(p.expireAt)) {
			p = &memPage{els: map[string]int64{}}
			m.pages[d.Page] = p
		}
		el := d.Element
		if _, ok := p.els[el]; !ok && el != attention.OtherElement {
			n := len(p.els)
			if _, ok := p.els[attention.OtherElement]; ok {
				n--
			}
			if n >= w.MaxElements {
				el = attention.OtherElement
			}
		}
		p.els[el] += d.Ms
		p.expireAt = w.ExpireAt
	}
	return nil
}

// PageDwell implements attention.Store.
func (m *Mem) PageDwell(ctx context.Context, page string) ([]attention.ElementDwell, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []attention.ElementDwell{}
	p := m.pages[page]
	if p == nil || (!p.expireAt.IsZero() && !m.now().Before(p.expireAt)) {
		return out, nil
	}
	for _, el := range slices.Sorted(maps.Keys(p.els)) {
		out = append(out, attention.ElementDwell{Element: el, Ms: p.els[el]})
	}
	return out, nil
}
