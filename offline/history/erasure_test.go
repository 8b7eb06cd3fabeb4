package history_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/kairoshq/kairos/offline/archive"
	"github.com/kairoshq/kairos/offline/history"
	"github.com/kairoshq/kairos/signals"
)

// visitorEvents makes n events of visitor, ids tag-0…, ts from base.
func visitorEvents(tag, visitor string, n int, at time.Time) []signals.Event {
	evs := make([]signals.Event, n)
	for i := range evs {
		evs[i] = signals.Event{ID: tag + "-" + string(rune('a'+i)), Type: signals.TypeView, Visitor: visitor, Item: "i1",
			Time: signals.Timestamp{Time: at.Add(time.Duration(i) * time.Second)}}
	}
	return evs
}

// readIDs reads r's history into a set.
func readIDs(t *testing.T, r *history.Reader) map[string]bool {
	t.Helper()
	got := map[string]bool{}
	if err := r.Scan(context.Background(), time.Time{}, time.Time{}, func(e signals.Event) error {
		got[e.ID] = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

// checkErased fails unless every id of kept is in got and none of gone.
func checkErased(t *testing.T, what string, got map[string]bool, gone, kept []signals.Event) {
	t.Helper()
	for _, e := range gone {
		if got[e.ID] {
			t.Errorf("%s: %s, published before its visitor's erasure, was read", what, e.ID)
		}
	}
	for _, e := range kept {
		if !got[e.ID] {
			t.Errorf("%s: %s, published after its visitor's erasure, is missing", what, e.ID)
		}
	}
}

// TestErasureKeepsEventsPublishedAfterIt: an erasure covers the visitor's
// events published up to the request (to the second of the stream's
// publish times), not up to the moment the archiver gets to record it (a
// lease tick, seconds later): events the visitor sends once DELETE has
// answered are kept, in the cold tier and in the stream's tail; events
// published before it are erased even when the archiver copies them
// after the request.
func TestErasureKeepsEventsPublishedAfterIt(t *testing.T) {
	c := newCluster(t)
	b := c.bus(t, "0")
	dir := filepath.Join(t.TempDir(), "history")
	store := openStore(t)
	const ttl = 9 * time.Second // a lease tick every 3 s
	erasures := func(n int) func() bool { return erasuresApplied(t, dir, store, n) }

	// A running archiver: v0's events archived, v0 erased, v0 back a
	// second later (before the archiver's next tick).
	_, stop := startArchiver(t, history.ArchiverConfig{Dir: dir, Stream: c.stream, Store: store, Holder: "r0", LeaseTTL: ttl})
	before0 := visitorEvents("b0", "v0", 3, base)
	publish(t, b, before0)
	waitFor(t, "v0's events archived", func() bool { return committed(t, dir) == 3 })
	eraseThenNextSecond(t, store, "v0")
	after0 := visitorEvents("a0", "v0", 2, base.Add(time.Hour))
	publish(t, b, after0)
	waitFor(t, "v0's new events archived", func() bool { return committed(t, dir) == 5 })
	waitFor(t, "v0's erasure recorded", erasures(1))
	stop()

	// No archiver: v1's events in the stream, v1 erased, v1 back; a
	// reader made now reads them from the tail while the next archiver
	// copies them and records the erasure.
	before1 := visitorEvents("b1", "v1", 3, base)
	publish(t, b, before1)
	eraseThenNextSecond(t, store, "v1")
	after1 := visitorEvents("a1", "v1", 2, base.Add(time.Hour))
	publish(t, b, after1)
	tailReader, err := history.NewReader(history.ReaderConfig{Dir: dir, Stream: c.stream})
	if err != nil {
		t.Fatal(err)
	}
	_, stop = startArchiver(t, history.ArchiverConfig{Dir: dir, Stream: c.stream, Store: store, Holder: "r1", LeaseTTL: ttl})
	waitFor(t, "v1's events archived", func() bool { return committed(t, dir) == 10 })
	waitFor(t, "v1's erasure recorded", erasures(2))
	stop()

	gone := append(append([]signals.Event{}, before0...), before1...)
	kept := append(append([]signals.Event{}, after0...), after1...)
	cold, err := history.NewReader(history.ReaderConfig{Dir: dir, Stream: c.stream})
	if err != nil {
		t.Fatal(err)
	}
	checkErased(t, "cold tier", readIDs(t, cold), gone, kept)
	if st := cold.Stats(); st.Tail != 0 {
		t.Fatalf("the history was read from the tail (%+v), want the cold tier", st)
	}
	got := readIDs(t, tailReader)
	checkErased(t, "stream's tail", got, before1, after1)
	checkErased(t, "cold part of the tail reader", got, before0, after0)
	if st := tailReader.Stats(); st.Tail != 2 || st.Cold != 2 || st.Erased != 6 {
		t.Fatalf("tail reader: %+v, want v1's 2 new events from the tail and v0's 2 from the cold tier, 6 erased (v0's 3 cold, v1's 3 in the tail)", st)
	}
}

// TestReaderAppliesPendingErasures: while no archiver runs (killed, or
// every replica with --history-archiver=false), erasure requests stay in
// the store's log; a Reader given the store applies them to both tiers.
func TestReaderAppliesPendingErasures(t *testing.T) {
	c := newCluster(t)
	b := c.bus(t, "0")
	dir := filepath.Join(t.TempDir(), "history")
	store := openStore(t)

	// gap-v's first events archived; then the archiver is gone.
	cold := visitorEvents("gap-cold", "gap-v", 2, base)
	other := visitorEvents("other", "w", 2, base)
	_, stop := startArchiver(t, history.ArchiverConfig{Dir: dir, Stream: c.stream, Store: store, Holder: "r0", LeaseTTL: time.Second})
	publish(t, b, append(append([]signals.Event{}, cold...), other...))
	waitFor(t, "archived", func() bool { return committed(t, dir) == 4 })
	stop()

	tail := visitorEvents("gap-tail", "gap-v", 2, base.Add(time.Minute))
	publish(t, b, tail)
	eraseThenNextSecond(t, store, "gap-v")
	back := visitorEvents("gap-back", "gap-v", 1, base.Add(time.Hour))
	publish(t, b, back)

	r, err := history.NewReader(history.ReaderConfig{Dir: dir, Stream: c.stream, Erasures: store})
	if err != nil {
		t.Fatal(err)
	}
	got := readIDs(t, r)
	checkErased(t, "with the store", got, append(append([]signals.Event{}, cold...), tail...), back)
	for _, e := range other {
		if !got[e.ID] {
			t.Errorf("%s of another visitor missing", e.ID)
		}
	}
	if st := r.Stats(); st.Erased != 4 || st.Pending != 1 || st.Cold != 2 || st.Tail != 1 {
		t.Errorf("stats %+v, want 4 erased (2 cold, 2 tail) by 1 pending request; 2 cold and 1 tail event read", st)
	}
}

// TestReadStatsCountTheWholeHistory: the summary `kairos replay` and
// `kairos retrain` print counts the events a tombstone erased in the cold
// tier (not only in the stream's tail), and a retrain's second pass, cut
// at the last record the first pass delivered, does not hide the
// duplicates after it.
func TestReadStatsCountTheWholeHistory(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	arc, err := archive.Open(ctx, archive.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	evs := genEvents("s", 20, 4, base) // v0: s-0, s-4, s-8, s-12, s-16
	if err := arc.Append(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if err := arc.Append(ctx, evs[10:]); err != nil { // appended twice (an archiver takeover)
		t.Fatal(err)
	}
	if err := arc.Erase(ctx, "v0"); err != nil {
		t.Fatal(err)
	}
	if err := arc.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := history.NewReader(history.ReaderConfig{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	var last uint64
	n := 0
	if err := r.ScanRecords(ctx, archive.Query{}, func(rec archive.Record) error { n++; last = max(last, rec.Seq); return nil }); err != nil {
		t.Fatal(err)
	}
	want := history.ReadStats{Cold: 15, Duplicates: 8, Erased: 7}
	if st := r.Stats(); n != 15 || st != want {
		t.Fatalf("first pass: %d events, %+v; want 15, %+v", n, st, want)
	}
	if err := r.ScanRecords(ctx, archive.Query{UntilSeq: last}, func(archive.Record) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if st := r.Stats(); st != want {
		t.Fatalf("after the pass cut at record %d: %+v; want the whole history's %+v", last, st, want)
	}
}
