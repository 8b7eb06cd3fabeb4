package history_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine/storage"
	"github.com/kairoshq/kairos/offline/archive"
	"github.com/kairoshq/kairos/offline/history"
	"github.com/kairoshq/kairos/signals"
)

var base = time.Now().Add(-48 * time.Hour).Truncate(time.Second).UTC()

// historyIDs reads the history of dir (+ stream) and returns the ids in
// order, failing on a duplicate.
func historyIDs(t *testing.T, dir string, s history.Stream) ([]string, history.ReadStats) {
	t.Helper()
	r, err := history.NewReader(history.ReaderConfig{Dir: dir, Stream: s})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	seen := map[string]bool{}
	if err := r.Scan(context.Background(), time.Time{}, time.Time{}, func(e signals.Event) error {
		if seen[e.ID] {
			t.Fatalf("event %s delivered twice", e.ID)
		}
		seen[e.ID] = true
		ids = append(ids, e.ID)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return ids, r.Stats()
}

// streamOrder returns the ids of the stream's events in its order.
func streamOrder(t *testing.T, s history.Stream) []string {
	t.Helper()
	var ids []string
	if err := s.Read(context.Background(), 0, func(batch []signals.StreamMessage) error {
		for _, m := range batch {
			if m.Fence {
				continue
			}
			res, err := signals.DecodeMessage(m.Body, m.Published, signals.Limits{})
			if err != nil {
				return err
			}
			for _, e := range res.Events {
				ids = append(ids, e.ID)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return ids
}

// coldIDs counts the events in the archive of dir, duplicates included.
func coldIDs(t *testing.T, dir string) map[string]int {
	t.Helper()
	n := map[string]int{}
	if err := archive.NewReader(dir, nil).Scan(context.Background(), time.Time{}, time.Time{}, func(e signals.Event) error {
		n[e.ID]++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestArchiverCopiesTheStreamAndCommits(t *testing.T) {
	c := newCluster(t)
	b := c.bus(t, "0")
	dir := filepath.Join(t.TempDir(), "history")
	store := openStore(t)
	evs := genEvents("a", 300, 7, base)
	publish(t, b, evs[:200])

	// Before any archiver: the stream is the whole history.
	ids, st := historyIDs(t, dir, c.stream)
	if len(ids) != 200 || st.Tail != 200 || st.Cold != 0 {
		t.Fatalf("stream only: %d events (%+v), want 200 from the tail", len(ids), st)
	}

	a, stop := startArchiver(t, history.ArchiverConfig{Dir: dir, Stream: c.stream, Store: store, Holder: "r0", LeaseTTL: time.Second})
	waitFor(t, "200 events archived", func() bool { return committed(t, dir) == 200 })
	publish(t, b, evs[200:])
	waitFor(t, "300 events archived", func() bool { return committed(t, dir) == 300 })
	stop()
	if s := a.Stats(); s.Leading || s.Events != 300 || s.Terms != 1 {
		t.Fatalf("archiver stats after stop %+v", s)
	}
	if h, _ := history.Holder(context.Background(), store, history.DefaultLeaseKey); h != "" {
		t.Fatalf("lease still held by %q after stop", h)
	}
	cold := coldIDs(t, dir)
	for _, e := range evs {
		if cold[e.ID] != 1 {
			t.Fatalf("event %s archived %d times", e.ID, cold[e.ID])
		}
	}
	cp, _, _ := history.ReadCheckpoint(dir)
	if cp.Holder != "r0" || cp.Seq == 0 {
		t.Fatalf("checkpoint %+v", cp)
	}
	ids, st = historyIDs(t, dir, c.stream)
	if len(ids) != 300 || st.Cold != 300 || st.Tail != 0 {
		t.Fatalf("cold + tail: %d events (%+v), want 300 cold", len(ids), st)
	}
	order := streamOrder(t, c.stream)
	for i, id := range ids {
		if id != order[i] {
			t.Fatalf("event %d is %s, want %s (the stream's order)", i, id, order[i])
		}
	}
}

// deadStore fails every call once killed: an archiver whose replica is
// cut off (or killed) can no longer renew or release its lease.
type deadStore struct {
	history.Store
	dead atomic.Bool
}

var errDead = errors.New("store unreachable (test)")

func (d *deadStore) Apply(ctx context.Context, t storage.Txn) error {
	if d.dead.Load() {
		return errDead
	}
	return d.Store.Apply(ctx, t)
}

func (d *deadStore) Entries(ctx context.Context, key string, after uint64, limit int) ([]storage.LogEntry, error) {
	if d.dead.Load() {
		return nil, errDead
	}
	return d.Store.Entries(ctx, key, after, limit)
}

func TestTakeoverLosesNothingAndDuplicatesNothing(t *testing.T) {
	c := newCluster(t)
	b := c.bus(t, "0")
	dir := filepath.Join(t.TempDir(), "history")
	store := openStore(t)
	evs := genEvents("t", 600, 13, base)

	cut := &deadStore{Store: store}
	a, _ := startArchiver(t, history.ArchiverConfig{Dir: dir, Stream: c.stream, Store: cut, Holder: "r0", LeaseTTL: 900 * time.Millisecond})
	publish(t, b, evs[:250])
	waitFor(t, "r0 archives 250 events", func() bool { return committed(t, dir) == 250 })

	// r0 loses the store: it cannot renew, steps down after its TTL and
	// cannot release the lease; r1 takes over when the lease expires.
	cut.dead.Store(true)
	waitFor(t, "r0 steps down", func() bool { return !a.Stats().Leading })
	publish(t, b, evs[250:400])
	// r0 had appended 250..399 but died before committing: orphans.
	orphan, err := archive.Open(context.Background(), archive.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := orphan.Append(context.Background(), evs[250:400]); err != nil {
		t.Fatal(err)
	}
	orphan.Close()

	b1, stop1 := startArchiver(t, history.ArchiverConfig{Dir: dir, Stream: c.stream, Store: store, Holder: "r1", LeaseTTL: 900 * time.Millisecond})
	publish(t, b, evs[400:])
	waitFor(t, "r1 archives the rest", func() bool { return committed(t, dir) == 600 })
	stop1() // its counters are final
	if s := b1.Stats(); s.Events != 350 {
		t.Fatalf("r1 archived %d events, want 350 (from the committed offset on)", s.Events)
	}
	cold := coldIDs(t, dir)
	dups := 0
	for _, e := range evs {
		switch n := cold[e.ID]; {
		case n == 0:
			t.Fatalf("event %s lost", e.ID)
		case n > 1:
			dups++
		}
	}
	if dups != 150 {
		t.Fatalf("%d events twice in the cold tier, want the 150 orphans", dups)
	}
	ids, st := historyIDs(t, dir, c.stream)
	if len(ids) != len(evs) || st.Duplicates != 150 {
		t.Fatalf("history: %d events, %d duplicates dropped; want %d and 150", len(ids), st.Duplicates, len(evs))
	}
}

func TestErasureFiltersBothTiers(t *testing.T) {
	c := newCluster(t)
	b := c.bus(t, "0")
	dir := filepath.Join(t.TempDir(), "history")
	store := openStore(t)
	evs := genEvents("x", 100, 5, base) // visitors v0..v4
	_, stop := startArchiver(t, history.ArchiverConfig{Dir: dir, Stream: c.stream, Store: store, Holder: "r0", LeaseTTL: 600 * time.Millisecond})
	publish(t, b, evs)
	waitFor(t, "100 archived", func() bool { return committed(t, dir) == 100 })

	// v0 erased through the store's log: the archiver records the
	// tombstone in the cold tier.
	if err := history.RequestErasure(context.Background(), store, "", "v0"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the erasure applied", erasuresApplied(t, dir, store, 1))
	stop()
	nextSecond(time.Now())

	// v1's events still in the stream's tail, then v1 erased, then a new
	// event of v1 (a returning visitor) a second later.
	tail := genEvents("y", 10, 5, base.Add(time.Hour))
	publish(t, b, tail)
	arc, err := archive.Open(context.Background(), archive.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	erasedAt := time.Now()
	if err := arc.Erase(context.Background(), "v1"); err != nil {
		t.Fatal(err)
	}
	arc.Close()
	nextSecond(erasedAt)
	back := signals.Event{ID: "back", Type: signals.TypeView, Visitor: "v1", Item: "i1", Time: signals.Timestamp{Time: base.Add(2 * time.Hour)}}
	publish(t, b, []signals.Event{back})

	ids, st := historyIDs(t, dir, c.stream)
	want := map[string]bool{"back": true}
	for _, e := range evs {
		if e.Visitor != "v0" && e.Visitor != "v1" {
			want[e.ID] = true
		}
	}
	for _, e := range tail { // v0 returned after its erasure
		if e.Visitor != "v1" {
			want[e.ID] = true
		}
	}
	got := map[string]bool{}
	for _, id := range ids {
		got[id] = true
		if !want[id] {
			t.Errorf("erased event %s read", id)
		}
	}
	for id := range want {
		if !got[id] {
			t.Errorf("event %s missing", id)
		}
	}
	if st.Erased != 42 { // v0's and v1's 20 each in the cold tier, y-1 and y-6 in the tail
		t.Errorf("%d events erased, want v0's and v1's 40 in the cold tier and v1's 2 in the tail", st.Erased)
	}
}

// nextSecond waits until the clock is in a later second than t: publish
// times (AMQP timestamps) have whole seconds.
func nextSecond(t time.Time) {
	for !time.Now().Truncate(time.Second).After(t) {
		time.Sleep(50 * time.Millisecond)
	}
}
