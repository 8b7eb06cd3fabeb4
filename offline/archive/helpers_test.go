package archive

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/kairoshq/kairos/internal/testutil"
	"github.com/kairoshq/kairos/signals"
)

func TestMain(m *testing.M) {
	if os.Getenv(crashChildEnv) != "" {
		crashChild() // the writer process of TestCrashKill9; never returns
	}
	goleak.VerifyTestMain(m)
}

// t0 is a fixed test epoch: 2026-11-23 14:10 UTC.
var t0 = time.Date(2026, 11, 23, 14, 10, 0, 0, time.UTC)

var eventTypes = []signals.Type{signals.TypeView, signals.TypeClick, signals.TypeDwell, signals.TypeAddToCart}

// mkEvent returns a realistic event (about 200 bytes of JSON).
func mkEvent(rng *rand.Rand, id, visitor string, ts time.Time) signals.Event {
	e := signals.Event{
		ID:      id,
		Type:    eventTypes[rng.IntN(len(eventTypes))],
		Visitor: visitor,
		Item:    fmt.Sprintf("sku-%05d", rng.IntN(20000)),
		Time:    signals.Timestamp{Time: ts.UTC().Truncate(time.Millisecond)},
		Session: "s-" + visitor,
		Page:    fmt.Sprintf("https://shop.example.com/p/%d?ref=home&utm_source=news", rng.IntN(5000)),
	}
	if e.Type == signals.TypeDwell {
		e.Value = float64(rng.IntN(5000))
		e.Element = "item:" + e.Item
	}
	if rng.IntN(4) == 0 {
		e.Props = map[string]string{"device": "mobile", "ab": "b"}
	}
	return e
}

// mkBatch returns n events with ids prefix-0..n-1 over a few visitors.
func mkBatch(rng *rand.Rand, prefix string, n int, ts time.Time) []signals.Event {
	out := make([]signals.Event, n)
	for i := range out {
		out[i] = mkEvent(rng, fmt.Sprintf("%s-%d", prefix, i), fmt.Sprintf("v%d", rng.IntN(50)), ts.Add(time.Duration(i)*time.Millisecond))
	}
	return out
}

func testOptions(t testing.TB, clock *testutil.Clock) Options {
	t.Helper()
	o := Options{Dir: t.TempDir(), SyncInterval: 5 * time.Millisecond}
	if clock != nil {
		o.Now = clock.Now
	}
	return o
}

func mustOpen(t testing.TB, o Options) *Archive {
	t.Helper()
	a, err := Open(context.Background(), o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return a
}

func mustClose(t testing.TB, a *Archive) {
	t.Helper()
	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func mustAppend(t testing.TB, a *Archive, events []signals.Event) {
	t.Helper()
	if err := a.Append(context.Background(), events); err != nil {
		t.Fatalf("Append: %v", err)
	}
}

// scanner is what Archive and Reader have in common.
type eventScanner interface {
	ScanRecords(ctx context.Context, q Query, fn func(Record) error) error
}

func mustScan(t testing.TB, s eventScanner, q Query) []Record {
	t.Helper()
	var out []Record
	if err := s.ScanRecords(context.Background(), q, func(r Record) error {
		out = append(out, r)
		return nil
	}); err != nil {
		t.Fatalf("ScanRecords: %v", err)
	}
	return out
}

func eventsOf(recs []Record) []signals.Event {
	out := make([]signals.Event, len(recs))
	for i, r := range recs {
		out[i] = r.Event
	}
	return out
}

// jsonLines encodes events the way a comparison should see them.
func jsonLines(t testing.TB, events []signals.Event) []string {
	t.Helper()
	out := make([]string, len(events))
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // as the archive writes them
	for i := range events {
		b.Reset()
		if err := enc.Encode(&events[i]); err != nil {
			t.Fatal(err)
		}
		out[i] = strings.TrimSuffix(b.String(), "\n")
	}
	return out
}

// sameEvents reports whether got and want hold the same events, in any
// order.
func assertSameEvents(t testing.TB, got, want []signals.Event) {
	t.Helper()
	g, w := jsonLines(t, got), jsonLines(t, want)
	slices.Sort(g)
	slices.Sort(w)
	if len(g) != len(w) {
		t.Fatalf("got %d events, want %d", len(g), len(w))
	}
	for i := range g {
		if g[i] != w[i] {
			t.Fatalf("event mismatch:\n got  %s\n want %s", g[i], w[i])
		}
	}
}
