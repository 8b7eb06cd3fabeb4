package archive

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/kairoshq/kairos/internal/testutil"
	"github.com/kairoshq/kairos/signals"
)

// TestCompactAfterReopenInSameHour is the offline `kairos archive
// compact`: the server erased a user and two of its devices and stopped
// within the hour; opening the archive again in that hour makes the
// segment active again, and Compact must seal and rewrite it all the same.
func TestCompactAfterReopenInSameHour(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	clock := testutil.NewClock(t0)
	o := testOptions(t, clock)
	erased := []string{"u-42", "dev-a", "dev-b"}
	kept := []string{"alice", "bob"}
	var batch []signals.Event
	n := 0
	for range 4 {
		for _, v := range append(append([]string(nil), erased...), kept...) {
			batch = append(batch, mkEvent(rng, fmt.Sprintf("e%d", n), v, clock.Now()))
			n++
		}
	}
	a := mustOpen(t, o) // the server
	mustAppend(t, a, batch)
	for _, v := range erased {
		if err := a.Erase(context.Background(), v); err != nil {
			t.Fatal(err)
		}
	}
	mustClose(t, a) // the server stops: the segment is sealed

	clock.Add(10 * time.Minute) // still the same hour
	a = mustOpen(t, o)          // kairos archive compact
	if s := a.Segments(); len(s) != 1 || s[0].Sealed || s[0].Events != int64(len(batch)) {
		t.Fatalf("segments on open %+v: want the segment active again", s)
	}
	res, err := a.Compact(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	name := segmentName(hourOf(t0))
	want := CompactResult{Tombstones: 3, SealedActive: name, Segments: 1, Scanned: 1, Rewritten: 1, EventsGone: 12,
		BytesBefore: res.BytesBefore, BytesAfter: res.BytesAfter}
	if res != want || res.BytesAfter >= res.BytesBefore {
		t.Fatalf("Compact = %+v, want %+v", res, want)
	}
	mustClose(t, a)

	// Run again in the same hour: the reopened segment remembers it was
	// compacted against the three tombstones, and is left alone.
	a = mustOpen(t, o)
	if res, err := a.Compact(context.Background()); err != nil || res.SealedActive != "" || res.Scanned != 0 {
		t.Fatalf("second Compact = %+v, %v: want nothing to do", res, err)
	}
	mustClose(t, a)

	raw := decompressFile(t, filepath.Join(o.Dir, segmentDir, name))
	for _, v := range erased {
		if strings.Contains(raw, v) {
			t.Errorf("the segment file still holds %s's events", v)
		}
	}
	for _, v := range kept {
		if c := strings.Count(raw, `"visitor":"`+v+`"`); c != 4 {
			t.Errorf("%d events of %s left, want 4", c, v)
		}
	}
	if err := NewReader(o.Dir, nil).Verify(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestCompactSkipsSegmentReopenedMeanwhile: a segment an append reopens
// while Compact rewrites it is left alone and counted in Skipped.
func TestCompactSkipsSegmentReopenedMeanwhile(t *testing.T) {
	rng := rand.New(rand.NewPCG(33, 34))
	clock := testutil.NewClock(t0)
	a := mustOpen(t, testOptions(t, clock))
	defer mustClose(t, a)
	b := mkBatch(rng, "a", 200, t0)
	mustAppend(t, a, b)
	if err := a.Erase(context.Background(), b[0].Visitor); err != nil {
		t.Fatal(err)
	}
	if err := a.requestSeal(context.Background()); err != nil {
		t.Fatal(err)
	}
	seg := a.Segments()[0]
	// The writer reopens the segment (an append of the same hour) between
	// Compact's snapshot of the index and its rename.
	mustAppend(t, a, mkBatch(rng, "b", 1, t0))
	c := compactorFor(t, a)
	if _, _, err := c.segment(context.Background(), seg, 1); err != errGone {
		t.Fatalf("compacting a reopened segment: %v, want errGone", err)
	}
	if _, err := os.Stat(filepath.Join(a.segDir, seg.Name+".tmp")); !os.IsNotExist(err) {
		t.Errorf("temporary file left behind: %v", err)
	}
	if s := a.Segments(); len(s) != 1 || s[0].Sealed || s[0].Events != 201 {
		t.Fatalf("segments %+v", s)
	}
}

// compactorFor returns a compactor of a, as Compact builds it.
func compactorFor(t *testing.T, a *Archive) *compactor {
	t.Helper()
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(true))
	if err != nil {
		t.Fatal(err)
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { enc.Close(); dec.Close() })
	return &compactor{a: a, enc: enc, dec: dec}
}

// TestReaderSegmentsCountActive: `kairos archive ls` beside a running
// writer shows the active segment's real counts, up to its last complete
// record.
func TestReaderSegmentsCountActive(t *testing.T) {
	rng := rand.New(rand.NewPCG(35, 36))
	clock := testutil.NewClock(t0)
	o := testOptions(t, clock)
	a := mustOpen(t, o)
	mustAppend(t, a, mkBatch(rng, "a", 30, t0))
	clock.Add(time.Hour)
	mustAppend(t, a, mkBatch(rng, "b", 20, clock.Now()))
	mustAppend(t, a, mkBatch(rng, "c", 5, clock.Now()))
	check := func() {
		t.Helper()
		got, err := NewReader(o.Dir, nil).Segments(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		want := a.Segments()
		if len(got) != 2 || len(want) != 2 {
			t.Fatalf("Reader.Segments %+v, Archive.Segments %+v", got, want)
		}
		for i := range got {
			if !got[i].Hour.Equal(want[i].Hour) || got[i].Events != want[i].Events || got[i].Records != want[i].Records ||
				got[i].Bytes != want[i].Bytes || got[i].FirstSeq != want[i].FirstSeq || got[i].LastSeq != want[i].LastSeq ||
				!got[i].MinTime.Equal(want[i].MinTime) || !got[i].MaxTime.Equal(want[i].MaxTime) || got[i].Sealed != want[i].Sealed {
				t.Errorf("segment %d: reader %+v\n    writer %+v", i, got[i], want[i])
			}
		}
		if got[1].Events != 25 || got[1].Sealed {
			t.Errorf("active segment %+v: want 25 events, unsealed", got[1])
		}
	}
	check()
	// A record being written (half of it on disk) is not counted.
	f, err := os.OpenFile(filepath.Join(o.Dir, segmentDir, a.Segments()[1].Name), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	hdr := make([]byte, headerSize)
	putHeader(hdr, header{dataLen: 100, count: 1, seq: a.LastSeq() + 1})
	f.Write(hdr[:headerSize/2])
	f.Close()
	check()
	mustClose(t, a)
}

// TestFileModes: the archive directory and its files are private
// (0700/0600), also after a compaction; an older version's 0755/0644 files
// are made private on Open.
func TestFileModes(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permission bits")
	}
	rng := rand.New(rand.NewPCG(37, 38))
	clock := testutil.NewClock(t0)
	o := testOptions(t, clock)
	o.Dir = filepath.Join(o.Dir, "data", "archive")
	a := mustOpen(t, o)
	b := mkBatch(rng, "a", 50, t0)
	mustAppend(t, a, b)
	if err := a.Erase(context.Background(), b[0].Visitor); err != nil {
		t.Fatal(err)
	}
	if res, err := a.Compact(context.Background()); err != nil || res.Rewritten != 1 {
		t.Fatalf("Compact = %+v, %v", res, err)
	}
	mustAppend(t, a, mkBatch(rng, "b", 5, t0))
	check := func() {
		t.Helper()
		n := 0
		err := filepath.WalkDir(filepath.Dir(o.Dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			fi, _ := d.Info()
			want := fs.FileMode(0o600)
			if d.IsDir() {
				want = 0o700
			}
			if fi.Mode().Perm() != want {
				t.Errorf("%s: mode %v, want %v", p, fi.Mode().Perm(), want)
			}
			n++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if n != 7 { // data, archive, LOCK, index.json, tombstones.ndjson, segments, the segment
			t.Errorf("%d entries checked, want 7", n)
		}
	}
	check()
	mustClose(t, a)
	err := filepath.WalkDir(o.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.Chmod(p, 0o755)
		}
		return os.Chmod(p, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	a = mustOpen(t, o)
	defer mustClose(t, a)
	check()
}

// TestEraseHashAtCoversEventsInFlight records an erasure requested
// elsewhere at a given time: the visitor's events archived before are
// erased, so are those archived later with a ts at or before the request
// (they were on their way), not those after it (the visitor came back);
// recording it again, or an older request, writes nothing; Compact
// removes exactly the erased events, in a segment written after the
// tombstone too.
func TestEraseHashAtCoversEventsInFlight(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	clock := testutil.NewClock(t0)
	o := testOptions(t, clock)
	a := mustOpen(t, o)
	defer mustClose(t, a)
	ctx := context.Background()
	at := clock.Now().Add(-time.Second) // requested on another replica a second ago
	mustAppend(t, a, []signals.Event{mkEvent(rng, "1", "bob", at.Add(-time.Minute)), mkEvent(rng, "2", "ann", at)})
	h := sha256.Sum256([]byte("bob"))
	key := hex.EncodeToString(h[:])
	if done, err := a.EraseHashAt(ctx, key, at); err != nil || !done {
		t.Fatalf("EraseHashAt = %v, %v", done, err)
	}
	for _, again := range []time.Time{at, at.Add(-time.Hour)} {
		if done, err := a.EraseHashAt(ctx, key, again); err != nil || done {
			t.Fatalf("EraseHashAt(%v) again = %v, %v: want nothing recorded", again, done, err)
		}
	}
	clock.Add(time.Hour) // the next events go to a new segment
	mustAppend(t, a, []signals.Event{
		mkEvent(rng, "3", "bob", at.Add(-time.Millisecond)), // published before the erasure, archived after
		mkEvent(rng, "4", "bob", at),
		mkEvent(rng, "5", "bob", at.Add(time.Millisecond)), // bob comes back
	})
	var got []string
	for _, r := range mustScan(t, a, Query{}) {
		got = append(got, r.Event.ID)
	}
	if want := []string{"2", "5"}; !slices.Equal(got, want) {
		t.Fatalf("scan after EraseHashAt: %v, want %v", got, want)
	}
	if _, err := a.EraseHashAt(ctx, "zz", at); err == nil {
		t.Fatal("EraseHashAt of a bad hash succeeded")
	}
	res, err := a.Compact(ctx)
	if err != nil || res.Tombstones != 1 || res.EventsGone != 3 {
		t.Fatalf("Compact = %+v, %v: want bob's 3 erased events removed against 1 tombstone", res, err)
	}
	var all strings.Builder
	for _, s := range a.Segments() {
		all.WriteString(decompressFile(t, filepath.Join(o.Dir, segmentDir, s.Name)))
	}
	for id, want := range map[string]bool{"1": false, "2": true, "3": false, "4": false, "5": true} {
		if got := strings.Contains(all.String(), `"id":"`+id+`"`); got != want {
			t.Errorf("event %s in the files after Compact: %v, want %v", id, got, want)
		}
	}
}
