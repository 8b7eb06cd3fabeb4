package embedded

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/stats"
	"github.com/kairoshq/kairos/engine/stats/statstest"
	"github.com/kairoshq/kairos/signals"
)

func TestCountsContract(t *testing.T) {
	statstest.Run(t, func(t *testing.T) stats.Store { return mustOpen(t, t.TempDir(), testConfig()) })
}

// fakeClock is a settable clock for Config.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var countsT0 = time.Date(2026, 11, 23, 14, 7, 0, 0, time.UTC)

// countsEvents are three events of item sku-1 (and one of offer o1) at
// countsT0.
func countsEvents() []engine.VisitorChange {
	at := signals.Timestamp{Time: countsT0}
	return []engine.VisitorChange{{Fresh: []signals.Event{
		{ID: "e1", Type: signals.TypeView, Visitor: "v", Item: "sku-1", Time: at},
		{ID: "e2", Type: signals.TypeDwell, Visitor: "v", Item: "sku-1", Value: 1200, Time: at},
		{ID: "e3", Type: signals.TypeConversion, Visitor: "v", Item: "sku-1", Offer: "o1", Value: 25.5, Time: at},
	}}}
}

func wantSku1(at time.Time) []stats.Point {
	return []stats.Point{statstest.Pt(at, map[signals.Type]float64{signals.TypeDwell: 1200, signals.TypeConversion: 25.5},
		signals.TypeView, 1, signals.TypeDwell, 1, signals.TypeConversion, 1)}
}

// TestCountsRetention runs stats.Stats over the store with a fake clock:
// each resolution's bucket is returned until its end + retention, hidden
// after, dropped by the prune and gone after a reopen; daily buckets kept
// forever stay.
func TestCountsRetention(t *testing.T) {
	clock := &fakeClock{t: countsT0.Add(time.Minute)}
	dir := t.TempDir()
	cfg := testConfig()
	cfg.Now = clock.Now
	s := mustOpen(t, dir, cfg)
	ret := stats.Retention{Q15m: 2 * time.Hour, H1: 24 * time.Hour}
	st, err := stats.New(s, stats.Config{Retention: ret, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	st.React(context.Background(), countsEvents())

	q := countsT0.Truncate(15 * time.Minute) // 14:00
	h := countsT0.Truncate(time.Hour)        // 14:00
	d := countsT0.Truncate(24 * time.Hour)
	check := func(what string, res stats.Resolution, start time.Time, kept bool) {
		t.Helper()
		got := statstest.MustCounts(t, s, res, stats.Item("sku-1"), start, start.Add(res.Duration()))
		if kept {
			statstest.Equal(t, what, got, wantSku1(start))
		} else if len(got) != 0 {
			t.Fatalf("%s: expired bucket returned: %v", what, got)
		}
	}
	check("15m fresh", stats.Res15m, q, true)
	check("1h fresh", stats.Res1h, h, true)
	check("1d fresh", stats.Res1d, d, true)
	statstest.Equal(t, "offer", statstest.MustCounts(t, s, stats.Res1h, stats.Offer("o1"), h, h.Add(time.Hour)),
		[]stats.Point{statstest.Pt(h, map[signals.Type]float64{signals.TypeConversion: 25.5}, signals.TypeConversion, 1)})

	// The 15-minute bucket [14:00, 14:15) expires at 14:15 + 2h.
	clock.t = q.Add(15*time.Minute + 2*time.Hour - time.Second)
	check("15m one second before expiry", stats.Res15m, q, true)
	clock.Add(time.Second)
	check("15m at expiry", stats.Res15m, q, false)
	check("1h still", stats.Res1h, h, true)
	groups := len(s.st.counts)
	s.pruneCounts()
	if got := len(s.st.counts); got != groups-1 {
		t.Errorf("prune: %d buckets, want %d (the expired 15m one dropped)", got, groups-1)
	}

	// A late event for the expired 15m bucket is not counted there.
	st.React(context.Background(), countsEvents())
	check("15m late event", stats.Res15m, q, false)

	clock.t = h.Add(time.Hour + 24*time.Hour)
	check("1h at expiry", stats.Res1h, h, false)
	clock.Add(365 * 24 * time.Hour)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, dir, cfg)
	if len(s.st.counts) != 1 {
		t.Errorf("after reopen a year later: %d buckets, want 1 (the daily one)", len(s.st.counts))
	}
	got := statstest.MustCounts(t, s, stats.Res1d, stats.Item("sku-1"), d, d.Add(24*time.Hour))
	// The daily bucket counted both batches.
	statstest.Equal(t, "1d forever", got, []stats.Point{statstest.Pt(d, map[signals.Type]float64{signals.TypeDwell: 2400, signals.TypeConversion: 51},
		signals.TypeView, 2, signals.TypeDwell, 2, signals.TypeConversion, 2)})
}

// TestCountsPersistence: counters survive a crash (log replay), a Close
// (snapshot) and a snapshot followed by more log.
func TestCountsPersistence(t *testing.T) {
	dir := t.TempDir()
	b := statstest.Base()
	add := func(s *Store, n int64) {
		t.Helper()
		var ds []stats.Delta
		for i := range 3 {
			ds = append(ds, statstest.D(stats.Res15m, stats.Item("sku:"+string(rune('a'+i))), b, signals.TypeView, n, 0))
			ds = append(ds, statstest.D(stats.Res15m, stats.Offer("o"), b, signals.TypeDwell, n, float64(n)*100))
		}
		ds = append(ds, statstest.D(stats.Res1d, stats.Item("sku:a"), b, signals.TypeView, n, 0))
		statstest.MustAdd(t, s, ds...)
	}
	check := func(s *Store, n int) {
		t.Helper()
		statstest.Equal(t, "item", statstest.MustCounts(t, s, stats.Res15m, stats.Item("sku:b"), b, b.Add(time.Hour)),
			[]stats.Point{statstest.Pt(b, nil, signals.TypeView, n)})
		statstest.Equal(t, "offer", statstest.MustCounts(t, s, stats.Res15m, stats.Offer("o"), b, b.Add(time.Hour)),
			[]stats.Point{statstest.Pt(b, map[signals.Type]float64{signals.TypeDwell: float64(3 * n * 100)}, signals.TypeDwell, 3*n)})
		statstest.Equal(t, "day", statstest.MustCounts(t, s, stats.Res1d, stats.Item("sku:a"), b, b.Add(24*time.Hour)),
			[]stats.Point{statstest.Pt(b, nil, signals.TypeView, n)})
	}
	s, err := Open(dir, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	add(s, 1)
	s.abandon() // a crash: no compaction, the log only
	s, err = Open(dir, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	check(s, 1)
	add(s, 2)
	if err := s.Close(); err != nil { // compaction: a snapshot
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, snapName)); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	check(s, 3)
	add(s, 4)
	s.abandon() // snapshot + log
	s = mustOpen(t, dir, testConfig())
	check(s, 7)
}

// TestCountsCompaction writes counters while compactions run in the
// background (a tiny threshold): nothing is lost or doubled.
func TestCountsCompaction(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Sync: SyncNever, CompactBytes: 1024}
	s := mustOpen(t, dir, cfg)
	b := statstest.Base()
	const calls = 300
	for i := range calls {
		statstest.MustAdd(t, s,
			statstest.D(stats.Res1h, stats.Item("hot"), b, signals.TypeView, 1, 0),
			statstest.D(stats.Res1h, stats.Item("hot"), b, signals.TypeConversion, 1, 0.5),
			statstest.D(stats.Res1h, stats.Item("cold"), b.Add(time.Duration(i%24)*time.Hour), signals.TypeClick, 1, 0),
		)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, dir, cfg)
	statstest.Equal(t, "hot", statstest.MustCounts(t, s, stats.Res1h, stats.Item("hot"), b, b.Add(time.Hour)), []stats.Point{
		statstest.Pt(b, map[signals.Type]float64{signals.TypeConversion: calls * 0.5}, signals.TypeView, calls, signals.TypeConversion, calls),
	})
	got := statstest.MustCounts(t, s, stats.Res1h, stats.Item("cold"), b, b.Add(24*time.Hour))
	if len(got) != 24 {
		t.Fatalf("cold: %d buckets, want 24", len(got))
	}
	for i, p := range got {
		if want := int64(calls / 24); p.Counts[signals.TypeClick] < want || p.Counts[signals.TypeClick] > want+1 {
			t.Errorf("cold bucket %d: %v", i, p.Counts)
		}
	}
}

// TestCountsRecordRoundTrip encodes deltas as a log record and decodes
// them back.
func TestCountsRecordRoundTrip(t *testing.T) {
	ds := statstest.BenchDeltas(t, 3)
	ds[0].Sum = -0.5 // a sum of any sign survives
	p := encodeCounts(nil, ds)
	got, err := decodeCounts(&reader{b: p[1:]})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(ds) {
		t.Fatalf("%d deltas, want %d", len(got), len(ds))
	}
	for i := range ds {
		if got[i] != ds[i] {
			t.Fatalf("delta %d: %+v, want %+v", i, got[i], ds[i])
		}
	}
	// A truncated record is corrupt, not a panic.
	for n := 1; n < len(p); n += 37 {
		if _, err := decodeCounts(&reader{b: p[1:n]}); err == nil {
			t.Fatalf("record cut at %d bytes decoded", n)
		}
	}
}

// BenchmarkReact: stats.Stats.React of one batch (256 events over ~100
// items) with the embedded store (default sync policy: AddCounts does not
// fsync).
func BenchmarkReact(b *testing.B) { statstest.BenchReact(b, benchStore(b, Config{})) }

// BenchmarkAddCounts: the embedded write of one batch's deltas alone.
func BenchmarkAddCounts(b *testing.B) { statstest.BenchAdd(b, benchStore(b, Config{})) }
