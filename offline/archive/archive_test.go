package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kairoshq/kairos/internal/testutil"
	"github.com/kairoshq/kairos/signals"
)

func TestRoundTrip(t *testing.T) {
	for _, policy := range []SyncPolicy{SyncAlways, SyncInterval, SyncNone} {
		t.Run(string(policy), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			clock := testutil.NewClock(t0)
			o := testOptions(t, clock)
			o.Sync = policy
			a := mustOpen(t, o)

			// Several goroutines append concurrently (group commit).
			var want []signals.Event
			batches := make([][]signals.Event, 40)
			for i := range batches {
				batches[i] = mkBatch(rng, fmt.Sprintf("b%d", i), 1+rng.IntN(200), t0.Add(-time.Duration(i)*time.Minute))
				want = append(want, batches[i]...)
			}
			// An event without time gets the clock's.
			noTime := signals.Event{ID: "no-time", Type: signals.TypeView, Visitor: "v0", Item: "i"}
			batches = append(batches, []signals.Event{noTime})
			noTime.Time = signals.Timestamp{Time: t0}
			want = append(want, noTime)

			var wg sync.WaitGroup
			errs := make(chan error, len(batches))
			for _, b := range batches {
				wg.Go(func() { errs <- a.Append(context.Background(), b) })
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatalf("Append: %v", err)
				}
			}
			st := a.Stats()
			if st.Events != uint64(len(want)) || st.Records == 0 || st.Records > st.LastSeq {
				t.Fatalf("stats %+v, want %d events", st, len(want))
			}
			if policy == SyncAlways && st.Syncs < 1 {
				t.Fatalf("SyncAlways made %d fsyncs", st.Syncs)
			}

			// The open archive sees everything acknowledged.
			assertSameEvents(t, eventsOf(mustScan(t, a, Query{})), want)
			mustClose(t, a)

			// After Close: a Reader, and a reopened Archive.
			assertSameEvents(t, eventsOf(mustScan(t, NewReader(o.Dir, nil), Query{})), want)
			a = mustOpen(t, o)
			assertSameEvents(t, eventsOf(mustScan(t, a, Query{})), want)
			mustClose(t, a)
			if err := NewReader(o.Dir, nil).Verify(context.Background()); err != nil {
				t.Fatalf("Verify: %v", err)
			}
		})
	}
}

func TestScanOrderAndSeq(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	clock := testutil.NewClock(t0)
	a := mustOpen(t, testOptions(t, clock))
	defer mustClose(t, a)
	var want []string
	for i := range 20 {
		b := mkBatch(rng, fmt.Sprintf("b%02d", i), 10, t0)
		mustAppend(t, a, b)
		for _, e := range b {
			want = append(want, e.ID)
		}
		clock.Add(7 * time.Minute) // crosses hours
	}
	recs := mustScan(t, a, Query{})
	var got []string
	var prev uint64
	for _, r := range recs {
		got = append(got, r.Event.ID)
		if r.Seq < prev {
			t.Fatalf("sequence went back: %d after %d", r.Seq, prev)
		}
		prev = r.Seq
	}
	if !slices.Equal(got, want) {
		t.Fatalf("scan order differs from append order:\n got  %v\n want %v", got[:10], want[:10])
	}
	if prev != a.LastSeq() {
		t.Fatalf("last record seq %d, LastSeq %d", prev, a.LastSeq())
	}
}

func TestQueryFilters(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	clock := testutil.NewClock(t0)
	a := mustOpen(t, testOptions(t, clock))
	defer mustClose(t, a)

	// Hour 14: events of 14:xx and a late one from yesterday.
	late := mkEvent(rng, "late", "v1", t0.Add(-24*time.Hour))
	mustAppend(t, a, []signals.Event{mkEvent(rng, "a1", "v1", t0), late})
	cut := a.LastSeq()
	clock.Add(time.Hour)
	mustAppend(t, a, []signals.Event{mkEvent(rng, "b1", "v1", t0.Add(time.Hour)), mkEvent(rng, "b2", "v2", t0.Add(time.Hour+time.Second))})
	clock.Add(time.Hour)
	mustAppend(t, a, []signals.Event{mkEvent(rng, "c1", "v1", t0.Add(2*time.Hour))})

	tests := []struct {
		name string
		q    Query
		want []string
	}{
		{"all", Query{}, []string{"a1", "late", "b1", "b2", "c1"}},
		{"from", Query{From: t0.Add(time.Hour)}, []string{"b1", "b2", "c1"}},
		{"to exclusive", Query{To: t0.Add(time.Hour + time.Second)}, []string{"a1", "late", "b1"}},
		{"late event by ts", Query{From: t0.Add(-25 * time.Hour), To: t0.Add(-23 * time.Hour)}, []string{"late"}},
		{"window", Query{From: t0.Add(time.Hour), To: t0.Add(2 * time.Hour)}, []string{"b1", "b2"}},
		{"after seq", Query{AfterSeq: cut}, []string{"b1", "b2", "c1"}},
		{"until seq", Query{UntilSeq: cut}, []string{"a1", "late"}},
		{"empty window", Query{From: t0.Add(10 * time.Hour)}, nil},
		{"sub-millisecond from", Query{From: t0.Add(time.Hour + time.Second - time.Microsecond)}, []string{"b2", "c1"}},
	}
	for _, r := range []struct {
		name string
		s    eventScanner
	}{{"archive", a}, {"reader", NewReader(a.Dir(), nil)}} {
		for _, tt := range tests {
			t.Run(r.name+"/"+tt.name, func(t *testing.T) {
				var got []string
				for _, rec := range mustScan(t, r.s, tt.q) {
					got = append(got, rec.Event.ID)
				}
				if !slices.Equal(got, tt.want) {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
			})
		}
	}

	// Scan with plain time bounds, and an error from fn stops the scan.
	stop := errors.New("stop")
	n := 0
	err := a.Scan(context.Background(), time.Time{}, time.Time{}, func(signals.Event) error {
		n++
		if n == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 2 {
		t.Fatalf("Scan = %v after %d events, want stop after 2", err, n)
	}
}

func TestHourRollOver(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	clock := testutil.NewClock(time.Date(2026, 11, 23, 14, 59, 59, 0, time.UTC))
	o := testOptions(t, clock)
	a := mustOpen(t, o)
	defer mustClose(t, a)

	mustAppend(t, a, mkBatch(rng, "a", 30, clock.Now()))
	clock.Add(2 * time.Second) // 15:00:01
	mustAppend(t, a, mkBatch(rng, "b", 20, clock.Now()))

	segs := a.Segments()
	if len(segs) != 2 {
		t.Fatalf("segments %+v, want 2", segs)
	}
	if segs[0].Name != "20261123T14.ndjson.zst" || !segs[0].Sealed || segs[0].Events != 30 || segs[0].SHA256 == "" {
		t.Fatalf("first segment %+v", segs[0])
	}
	if segs[1].Name != "20261123T15.ndjson.zst" || segs[1].Sealed || segs[1].Events != 20 {
		t.Fatalf("second segment %+v", segs[1])
	}
	idx, err := readIndex(o.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(idx.Segments) != 1 || idx.Segments[0].Name != segs[0].Name || idx.Segments[0].SHA256 != segs[0].SHA256 {
		t.Fatalf("index %+v", idx)
	}

	// An idle writer seals on its own once the hour has passed.
	clock.Add(time.Hour)
	deadline := time.Now().Add(10 * time.Second)
	for !a.Segments()[1].Sealed {
		if time.Now().After(deadline) {
			t.Fatalf("idle segment not sealed: %+v", a.Segments())
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The next append creates the segment of the new hour.
	mustAppend(t, a, mkBatch(rng, "c", 1, clock.Now()))
	if s := a.Segments(); len(s) != 3 || s[2].Name != "20261123T16.ndjson.zst" {
		t.Fatalf("segments after idle roll %+v", s)
	}
}

func TestReopenSameHourAndClockBack(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	clock := testutil.NewClock(t0)
	o := testOptions(t, clock)
	var want []signals.Event

	a := mustOpen(t, o)
	b := mkBatch(rng, "a", 10, t0)
	want = append(want, b...)
	mustAppend(t, a, b)
	seq := a.LastSeq()
	mustClose(t, a) // seals 14

	clock.Add(10 * time.Minute) // still 14: the sealed segment is reopened
	a = mustOpen(t, o)
	if a.LastSeq() != seq {
		t.Fatalf("LastSeq after reopen %d, want %d", a.LastSeq(), seq)
	}
	b = mkBatch(rng, "b", 10, t0)
	want = append(want, b...)
	mustAppend(t, a, b)
	if a.LastSeq() <= seq {
		t.Fatalf("sequence did not advance: %d", a.LastSeq())
	}
	if s := a.Segments(); len(s) != 1 || s[0].Sealed || s[0].Events != 20 {
		t.Fatalf("segments %+v, want one active segment of 20 events", s)
	}
	clock.Add(time.Hour) // 15
	b = mkBatch(rng, "c", 5, t0)
	want = append(want, b...)
	mustAppend(t, a, b)
	mustClose(t, a)

	clock.Set(t0) // the clock went back to 14: append to the newest (15) segment
	a = mustOpen(t, o)
	b = mkBatch(rng, "d", 5, t0)
	want = append(want, b...)
	mustAppend(t, a, b)
	s := a.Segments()
	if len(s) != 2 || s[1].Name != "20261123T15.ndjson.zst" || s[1].Events != 10 {
		t.Fatalf("segments %+v", s)
	}
	assertSameEvents(t, eventsOf(mustScan(t, a, Query{})), want)
	mustClose(t, a)
	if err := NewReader(o.Dir, nil).Verify(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// copyDir copies the archive files of src to a new directory: the state a
// crash would leave (the writer is not closed).
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestTornTail(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	clock := testutil.NewClock(t0)
	o := testOptions(t, clock)
	a := mustOpen(t, o)
	defer mustClose(t, a)

	var batches [][]signals.Event
	for i := range 5 {
		b := mkBatch(rng, fmt.Sprintf("b%d", i), 50, t0)
		batches = append(batches, b)
		mustAppend(t, a, b) // one record each (sequential appends)
	}
	seg := a.Segments()[0]
	if seg.Records != 5 {
		t.Fatalf("want 5 records, got %+v", seg)
	}
	// Record boundaries, from the file.
	data, err := os.ReadFile(filepath.Join(o.Dir, segmentDir, seg.Name))
	if err != nil {
		t.Fatal(err)
	}
	var ends []int64
	rr := newRecordReader(bytes.NewReader(data))
	for {
		h, err := rr.next()
		if err != nil {
			break
		}
		if err := rr.skip(h); err != nil {
			t.Fatal(err)
		}
		ends = append(ends, rr.off)
	}
	last := ends[3] // start of the last record

	tests := []struct {
		name      string
		mutate    func([]byte) []byte
		wantBatch int   // complete batches that must remain
		wantTrunc int64 // bytes Open must drop
	}{
		{"intact", func(b []byte) []byte { return b }, 5, 0},
		{"mid header", func(b []byte) []byte { return b[:last+10] }, 4, 10},
		{"header only", func(b []byte) []byte { return b[:last+headerSize] }, 4, headerSize},
		{"mid data", func(b []byte) []byte { return b[:last+headerSize+20] }, 4, headerSize + 20},
		{"one byte short", func(b []byte) []byte { return b[:len(b)-1] }, 4, int64(len(data)) - 1 - last},
		{"zeros appended", func(b []byte) []byte { return append(b, make([]byte, 4096)...) }, 5, 4096},
		{"garbage in last record", func(b []byte) []byte {
			c := slices.Clone(b)
			c[last+headerSize+5] ^= 0xff
			return c
		}, 4, int64(len(data)) - last},
		{"torn second record", func(b []byte) []byte { return b[:ends[0]+3] }, 1, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := copyDir(t, o.Dir)
			os.Remove(filepath.Join(dir, lockName))
			p := filepath.Join(dir, segmentDir, seg.Name)
			if err := os.WriteFile(p, tt.mutate(slices.Clone(data)), 0o644); err != nil {
				t.Fatal(err)
			}
			o2 := o
			o2.Dir = dir
			b, err := Open(context.Background(), o2)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if got := b.Stats().Truncated; got != tt.wantTrunc {
				t.Errorf("truncated %d bytes, want %d", got, tt.wantTrunc)
			}
			var want []signals.Event
			for _, bt := range batches[:tt.wantBatch] {
				want = append(want, bt...)
			}
			assertSameEvents(t, eventsOf(mustScan(t, b, Query{})), want)
			// Appending after the repair continues cleanly.
			extra := mkBatch(rng, "extra", 3, t0)
			mustAppend(t, b, extra)
			mustClose(t, b)
			assertSameEvents(t, eventsOf(mustScan(t, NewReader(dir, nil), Query{})), append(want, extra...))
			if err := NewReader(dir, nil).Verify(context.Background()); err != nil {
				t.Fatalf("Verify: %v", err)
			}
		})
	}
}

func TestCorruptSealedSegment(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	clock := testutil.NewClock(t0)
	o := testOptions(t, clock)
	a := mustOpen(t, o)
	for i := range 3 {
		mustAppend(t, a, mkBatch(rng, fmt.Sprintf("b%d", i), 50, t0))
	}
	mustClose(t, a)
	p := filepath.Join(o.Dir, segmentDir, segmentName(t0))
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x55 // a flipped bit in the middle of a sealed segment
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	r := NewReader(o.Dir, nil)
	err = r.ScanRecords(context.Background(), Query{}, func(Record) error { return nil })
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("scan of a corrupt sealed segment: %v, want ErrCorrupt", err)
	}
	if err := r.Verify(context.Background()); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Verify: %v, want ErrCorrupt", err)
	}
}

func TestIndexRebuild(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	clock := testutil.NewClock(t0)
	o := testOptions(t, clock)
	a := mustOpen(t, o)
	for i := range 4 {
		mustAppend(t, a, mkBatch(rng, fmt.Sprintf("b%d", i), 25, t0.Add(time.Duration(i)*time.Hour)))
		clock.Add(time.Hour)
	}
	mustClose(t, a)
	orig, err := readIndex(o.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(orig.Segments) != 4 {
		t.Fatalf("index has %d segments", len(orig.Segments))
	}
	strip := func(s []SegmentInfo) []SegmentInfo {
		s = slices.Clone(s)
		for i := range s {
			s[i].SealedAt = time.Time{}
		}
		return s
	}

	tests := []struct {
		name   string
		damage func(t *testing.T)
	}{
		{"missing index", func(t *testing.T) { os.Remove(filepath.Join(o.Dir, indexName)) }},
		{"stale entry", func(t *testing.T) {
			idx := orig.clone()
			idx.Segments[1].Bytes = 7
			if err := writeIndex(o.Dir, idx); err != nil {
				t.Fatal(err)
			}
		}},
		{"entry of a missing file", func(t *testing.T) {
			idx := orig.clone()
			idx.put(SegmentInfo{Name: "20200101T00.ndjson.zst", Hour: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), Events: 3, Bytes: 100})
			if err := writeIndex(o.Dir, idx); err != nil {
				t.Fatal(err)
			}
		}},
		{"interrupted compaction", func(t *testing.T) {
			idx := orig.clone()
			idx.Compacting = idx.Segments[2].Name
			idx.Segments[2].Events = 1
			if err := writeIndex(o.Dir, idx); err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(o.Dir, segmentDir, idx.Compacting+".tmp"), []byte("partial"), 0o644)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.damage(t)
			a := mustOpen(t, o)
			mustClose(t, a)
			got, err := readIndex(o.Dir)
			if err != nil {
				t.Fatal(err)
			}
			if g, w := strip(got.Segments), strip(orig.Segments); !slices.Equal(g, w) {
				t.Fatalf("rebuilt index\n got  %+v\n want %+v", g, w)
			}
			if got.Compacting != "" || got.LastSeq != orig.LastSeq {
				t.Fatalf("index header %+v", got)
			}
			if m, _ := filepath.Glob(filepath.Join(o.Dir, segmentDir, "*.tmp")); len(m) != 0 {
				t.Fatalf("temporary files left: %v", m)
			}
		})
	}
}

func TestEraseAndCompact(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	clock := testutil.NewClock(t0)
	o := testOptions(t, clock)
	a := mustOpen(t, o)

	ev := func(id, visitor string) signals.Event { return mkEvent(rng, id, visitor, clock.Now()) }
	mustAppend(t, a, []signals.Event{ev("1", "alice"), ev("2", "bob"), ev("3", "carol"), ev("4", "bob")})
	clock.Add(time.Hour)
	mustAppend(t, a, []signals.Event{ev("5", "bob"), ev("6", "alice")})
	clock.Add(time.Hour)
	mustAppend(t, a, []signals.Event{ev("7", "bob")}) // the active segment

	if err := a.Erase(context.Background(), "bob"); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, a, []signals.Event{ev("8", "bob")}) // bob comes back after the erasure

	ids := func(s eventScanner) []string {
		var out []string
		for _, r := range mustScan(t, s, Query{}) {
			out = append(out, r.Event.ID)
		}
		return out
	}
	want := []string{"1", "3", "6", "8"}
	if got := ids(a); !slices.Equal(got, want) {
		t.Fatalf("after Erase: %v, want %v", got, want)
	}
	if got := ids(NewReader(o.Dir, nil)); !slices.Equal(got, want) {
		t.Fatalf("Reader after Erase: %v, want %v", got, want)
	}
	tomb, err := os.ReadFile(filepath.Join(o.Dir, tombstoneName))
	if err != nil || bytes.Contains(tomb, []byte("bob")) || len(bytes.Split(bytes.TrimSpace(tomb), []byte("\n"))) != 1 {
		t.Fatalf("tombstone file %q (%v): want one line without the raw id", tomb, err)
	}

	res, err := a.Compact(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// The active segment holds bob's event 7 (before the erasure): it is
	// sealed and compacted too.
	if res.Tombstones != 1 || res.SealedActive != "20261123T16.ndjson.zst" || res.Segments != 3 || res.Scanned != 3 ||
		res.Rewritten != 3 || res.Removed != 0 || res.Skipped != 0 || res.EventsGone != 4 || res.BytesAfter >= res.BytesBefore {
		t.Fatalf("Compact = %+v", res)
	}
	// bob's pre-erasure events are gone from the files.
	if segs := a.Segments(); len(segs) != 3 || !segs[2].Sealed {
		t.Fatalf("segments after Compact %+v: want three sealed", segs)
	}
	var all strings.Builder
	for _, s := range a.Segments() {
		raw := decompressFile(t, filepath.Join(o.Dir, segmentDir, s.Name))
		all.WriteString(raw)
		for _, id := range []string{"2", "4", "5", "7"} {
			if strings.Contains(raw, `"id":"`+id+`"`) {
				t.Fatalf("segment %s still holds bob's event %s", s.Name, id)
			}
		}
		if int64(strings.Count(raw, "\n")) != s.Events {
			t.Fatalf("segment %s: %d lines, index says %d", s.Name, strings.Count(raw, "\n"), s.Events)
		}
	}
	for _, id := range want {
		if !strings.Contains(all.String(), `"id":"`+id+`"`) {
			t.Fatalf("event %s is missing from the files", id)
		}
	}
	if got := ids(a); !slices.Equal(got, want) {
		t.Fatalf("after Compact: %v, want %v", got, want)
	}
	if res, err := a.Compact(context.Background()); err != nil || res.Scanned != 0 || res.SealedActive != "" {
		t.Fatalf("second Compact = %+v, %v: want nothing to scan", res, err)
	}
	// The next append of the same hour reopens the sealed segment.
	mustAppend(t, a, []signals.Event{ev("9", "dave")})
	if segs := a.Segments(); len(segs) != 3 || segs[2].Sealed || segs[2].Events != 2 {
		t.Fatalf("segments after an append %+v: want the third reopened with 2 events", segs)
	}
	if got, want := ids(a), append(want, "9"); !slices.Equal(got, want) {
		t.Fatalf("after the append: %v, want %v", got, want)
	}

	// Erase the only visitor of a segment: Compact removes the file.
	if err := a.Erase(context.Background(), "alice"); err != nil {
		t.Fatal(err)
	}
	res, err = a.Compact(context.Background())
	if err != nil || res.Removed != 1 || res.SealedActive == "" {
		t.Fatalf("Compact = %+v, %v: want the second segment removed, the reopened third sealed", res, err)
	}
	mustClose(t, a)

	// Tombstones survive a restart.
	clock.Add(time.Hour)
	a = mustOpen(t, o)
	defer mustClose(t, a)
	want = []string{"3", "8", "9"}
	if got := ids(a); !slices.Equal(got, want) {
		t.Fatalf("after reopen: %v, want %v", got, want)
	}
	res, err = a.Compact(context.Background())
	if err != nil || res.EventsGone != 0 || res.Scanned != 0 || res.Segments != 2 {
		t.Fatalf("Compact after reopen = %+v, %v: want nothing left to scan", res, err)
	}
	if err := NewReader(o.Dir, nil).Verify(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := a.Erase(context.Background(), ""); err == nil {
		t.Fatal("Erase of an empty id succeeded")
	}
}

func TestTombstoneTornTail(t *testing.T) {
	clock := testutil.NewClock(t0)
	o := testOptions(t, clock)
	a := mustOpen(t, o)
	mustAppend(t, a, []signals.Event{{ID: "1", Type: "view", Visitor: "x", Time: signals.Timestamp{Time: t0}}})
	if err := a.Erase(context.Background(), "x"); err != nil {
		t.Fatal(err)
	}
	mustClose(t, a)
	p := filepath.Join(o.Dir, tombstoneName)
	f, _ := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"visitor_sha256":"ab`) // a crash during the next Erase
	f.Close()
	a = mustOpen(t, o)
	if n := len(mustScan(t, a, Query{})); n != 0 {
		t.Fatalf("erased visitor visible after repair: %d events", n)
	}
	mustClose(t, a)
	b, _ := os.ReadFile(p)
	if bytes.Count(b, []byte("\n")) != 1 || b[len(b)-1] != '\n' {
		t.Fatalf("tombstone file not repaired: %q", b)
	}
	// A damaged line that is not the last is an error, never ignored.
	os.WriteFile(p, append([]byte("not json\n"), b...), 0o644)
	if _, err := Open(context.Background(), o); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open with a damaged tombstone: %v, want ErrCorrupt", err)
	}
}

func TestRetention(t *testing.T) {
	rng := rand.New(rand.NewPCG(19, 20))
	clock := testutil.NewClock(t0)
	o := testOptions(t, clock)
	o.Retention = 3 * time.Hour
	a := mustOpen(t, o)
	defer mustClose(t, a)
	for i := range 3 { // hours 14, 15, 16
		mustAppend(t, a, mkBatch(rng, fmt.Sprintf("h%d", i), 5, clock.Now()))
		clock.Add(time.Hour)
	}
	// At 17:10 with 3 h retention the cut-off is 14:10: hour 14 ends after it.
	if n, err := a.ApplyRetention(context.Background(), clock.Now()); err != nil || n != 0 {
		t.Fatalf("ApplyRetention = %d, %v; want 0", n, err)
	}
	// At 18:00 the cut-off is 15:00: hour 14 is wholly older.
	n, err := a.ApplyRetention(context.Background(), time.Date(2026, 11, 23, 18, 0, 0, 0, time.UTC))
	if err != nil || n != 1 {
		t.Fatalf("ApplyRetention = %d, %v; want 1", n, err)
	}
	if _, err := os.Stat(filepath.Join(o.Dir, segmentDir, "20261123T14.ndjson.zst")); !os.IsNotExist(err) {
		t.Fatalf("expired segment still on disk: %v", err)
	}
	for _, r := range mustScan(t, a, Query{}) {
		if strings.HasPrefix(r.Event.ID, "h0-") {
			t.Fatalf("expired event %s still scanned", r.Event.ID)
		}
	}
	// The roll-over applies it in the background: at 20:10, hours up to 16 go.
	clock.Set(time.Date(2026, 11, 23, 20, 10, 0, 0, time.UTC))
	mustAppend(t, a, mkBatch(rng, "late", 1, clock.Now()))
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := a.Segments()
		if len(s) == 1 && s[0].Name == "20261123T20.ndjson.zst" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("background retention did not run: %+v", s)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Sequence numbers do not restart although old segments are gone.
	seq := a.LastSeq()
	mustClose(t, a)
	a = mustOpen(t, o)
	defer mustClose(t, a)
	if a.LastSeq() != seq {
		t.Fatalf("LastSeq after reopen %d, want %d", a.LastSeq(), seq)
	}
}

func TestOptionsValidate(t *testing.T) {
	ok := Options{Dir: "x"}.Defaults()
	if err := ok.Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	if ok.Sync != SyncInterval || ok.Retention != 0 || ok.SyncInterval != 100*time.Millisecond {
		t.Fatalf("unexpected defaults %+v", ok)
	}
	tests := []struct {
		name   string
		mutate func(*Options)
		want   []string
	}{
		{"no dir", func(o *Options) { o.Dir = "" }, []string{"Dir"}},
		{"bad policy", func(o *Options) { o.Sync = "sometimes" }, []string{"Sync"}},
		{"short retention", func(o *Options) { o.Retention = time.Minute }, []string{"Retention"}},
		{"several", func(o *Options) { o.Level = 9; o.QueueLength = -1; o.MaxRecordBytes = 10 }, []string{"Level", "QueueLength", "MaxRecordBytes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := ok
			tt.mutate(&o)
			err := o.Validate()
			if !errors.Is(err, ErrInvalidOptions) {
				t.Fatalf("Validate = %v, want ErrInvalidOptions", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %s", err, w)
				}
			}
		})
	}
	if _, err := ParseSyncPolicy("always"); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseSyncPolicy("never"); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("ParseSyncPolicy(never) = %v", err)
	}
	if _, err := Open(context.Background(), Options{}); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("Open without Dir = %v", err)
	}
}

func TestLifecycleErrors(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	o := testOptions(t, testutil.NewClock(t0))
	a := mustOpen(t, o)
	if _, err := Open(context.Background(), o); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	// An event that is not JSON-encodable rejects the whole batch.
	bad := mkBatch(rng, "bad", 3, t0)
	bad[1].Value = math.NaN()
	if err := a.Append(context.Background(), bad); !errors.Is(err, ErrInvalidEvent) {
		t.Fatalf("Append with NaN = %v, want ErrInvalidEvent", err)
	}
	huge := mkBatch(rng, "huge", 1, t0)
	huge[0].Page = strings.Repeat("x", 300<<10)
	if err := a.Append(context.Background(), huge); !errors.Is(err, ErrInvalidEvent) {
		t.Fatalf("Append of a 300 KiB event = %v, want ErrInvalidEvent", err)
	}
	if n := len(mustScan(t, a, Query{})); n != 0 {
		t.Fatalf("%d events archived from rejected batches", n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := a.Append(ctx, mkBatch(rng, "c", 1, t0)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Append with a cancelled ctx = %v", err)
	}
	if err := a.Append(context.Background(), nil); err != nil {
		t.Fatalf("empty Append = %v", err)
	}
	mustClose(t, a)
	if err := a.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	if err := a.Append(context.Background(), mkBatch(rng, "late", 1, t0)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close = %v, want ErrClosed", err)
	}
	if err := a.Erase(context.Background(), "v"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Erase after Close = %v, want ErrClosed", err)
	}
	if _, err := a.Compact(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Compact after Close = %v, want ErrClosed", err)
	}
	// The lock is released: the directory opens again.
	mustClose(t, mustOpen(t, o))
}

func TestBackPressure(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	// A clock that blocks stalls the writer goroutine (it reads the clock
	// for every write), so the queue fills up.
	gate := make(chan struct{})
	entered := make(chan struct{})
	var mu sync.Mutex
	armed := false
	now := func() time.Time {
		mu.Lock()
		stall := armed
		armed = false // only the first write after arming stalls
		mu.Unlock()
		if stall {
			close(entered)
			<-gate
		}
		return t0
	}
	o := testOptions(t, nil)
	o.Now, o.QueueLength, o.SyncInterval = now, 1, time.Hour
	a := mustOpen(t, o)
	mu.Lock()
	armed = true
	mu.Unlock()

	ba, bb, bc := mkBatch(rng, "a", 1, t0), mkBatch(rng, "b", 1, t0), mkBatch(rng, "c", 1, t0)
	first := make(chan error, 2)
	go func() { first <- a.Append(context.Background(), ba) }()
	<-entered // the writer holds the first batch and is stuck
	go func() { first <- a.Append(context.Background(), bb) }()
	// The queue (1) holds "b" once the goroutine got there; a further
	// Append must block until its context ends, never drop.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	deadline := time.Now().Add(5 * time.Second)
	for len(a.reqs) < 1 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if err := a.Append(ctx, bc); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Append on a full queue = %v, want DeadlineExceeded", err)
	}
	close(gate)
	for range 2 {
		if err := <-first; err != nil {
			t.Fatalf("queued Append = %v", err)
		}
	}
	var ids []string
	for _, r := range mustScan(t, a, Query{}) {
		ids = append(ids, r.Event.ID)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"a-0", "b-0"}) {
		t.Fatalf("archived %v, want a-0 and b-0 only", ids)
	}
	mustClose(t, a)
}

func TestRecordSplitting(t *testing.T) {
	rng := rand.New(rand.NewPCG(25, 26))
	o := testOptions(t, testutil.NewClock(t0))
	o.MaxRecordBytes = 4 << 10
	a := mustOpen(t, o)
	defer mustClose(t, a)
	b := mkBatch(rng, "small", 200, t0) // ~45 KiB: about a dozen records
	big := mkEvent(rng, "big", "v1", t0)
	big.Page = strings.Repeat("p", 10<<10) // larger than a record: a record of its own
	b = append(b, big)
	mustAppend(t, a, b)
	recs := mustScan(t, a, Query{})
	assertSameEvents(t, eventsOf(recs), b)
	seqs := map[uint64]int{}
	for _, r := range recs {
		seqs[r.Seq]++
	}
	if len(seqs) < 10 || seqs[recs[len(recs)-1].Seq] != 1 {
		t.Fatalf("records: %d (events per record %v)", len(seqs), seqs)
	}
	if s := a.Segments()[0]; s.Records != int64(len(seqs)) {
		t.Fatalf("segment says %d records, scan saw %d", s.Records, len(seqs))
	}
}
