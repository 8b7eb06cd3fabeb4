package embedded

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/storetest"
)

// testConfig is the configuration of the suite's stores: the defaults, but
// without fsync (the tests do not simulate power loss; the crash test
// below uses the default policy).
func testConfig() Config {
	return Config{Sync: SyncNever}
}

func mustOpen(t *testing.T, dir string, cfg Config) *Store {
	t.Helper()
	s, err := Open(dir, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) engine.Store {
		return mustOpen(t, t.TempDir(), testConfig())
	})
}

func TestContractSyncAlways(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	storetest.Run(t, func(t *testing.T) engine.Store {
		return mustOpen(t, t.TempDir(), Config{})
	})
}

func TestPersistence(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  Config
	}{
		{"default", Config{}},
		// A tiny compaction threshold: compactions run in the background
		// while the suite writes.
		{"frequent compaction", Config{Sync: SyncInterval, SyncEvery: time.Millisecond, CompactBytes: 1024}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			storetest.RunPersistence(t, func(t *testing.T) func(t *testing.T) engine.Store {
				dir := t.TempDir()
				return func(t *testing.T) engine.Store { return mustOpen(t, dir, tt.cfg) }
			})
		})
	}
}

// TestPersistenceWithoutClose reopens after abandon (no final compaction,
// no fsync): everything comes from the log.
func TestPersistenceWithoutClose(t *testing.T) {
	storetest.RunPersistence(t, func(t *testing.T) func(t *testing.T) engine.Store {
		dir := t.TempDir()
		return func(t *testing.T) engine.Store { return abandoning{mustOpen(t, dir, testConfig())} }
	})
}

// abandoning is a Store whose Close abandons it as a crash would.
type abandoning struct{ *Store }

func (a abandoning) Close() error { a.abandon(); return nil }

func TestHashIDMatchesFNV128a(t *testing.T) {
	for _, id := range []string{"", "a", "0190b7e2-6d0c-7a3e-9f1e-2b1c3d4e5f60", "événement"} {
		h := fnv.New128a()
		h.Write([]byte(id))
		var want idHash
		copy(want[:], h.Sum(nil))
		if got := hashID(id); got != want {
			t.Errorf("hashID(%q) = %x, want %x", id, got, want)
		}
	}
}

func TestLockedDir(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, testConfig())
	if _, err := Open(dir, testConfig()); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: err %v, want ErrLocked", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := mustOpen(t, dir, testConfig())
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).Defaults().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	err := Config{HistoryLimit: -1, DedupWindow: time.Millisecond, Sync: 9, SyncEvery: time.Microsecond, CompactBytes: 10}.Defaults().Validate()
	for _, field := range []string{"HistoryLimit", "DedupWindow", "Sync", "SyncEvery", "CompactBytes"} {
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("Validate does not report %s: %v", field, err)
		}
	}
	if _, err := Open(t.TempDir(), Config{HistoryLimit: -1}); !errors.Is(err, engine.ErrInvalid) {
		t.Fatalf("Open with a bad config: err %v, want ErrInvalid", err)
	}
}

// clock is a settable test clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestDedupWindowExpires(t *testing.T) {
	dir := t.TempDir()
	clk := &clock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	cfg := Config{Sync: SyncNever, DedupWindow: 8 * time.Hour, Now: clk.now}
	s := mustOpen(t, dir, cfg)
	ctx := t.Context()
	if err := s.Commit(ctx, engine.Commit{Events: storetest.Marks("old")}); err != nil {
		t.Fatal(err)
	}
	clk.t = clk.t.Add(4 * time.Hour)
	if err := s.Commit(ctx, engine.Commit{Events: storetest.Marks("mid")}); err != nil {
		t.Fatal(err)
	}
	check := func(s *Store, when string, want []bool) {
		t.Helper()
		got, err := s.Seen(ctx, storetest.Marks("old", "mid"))
		if err != nil {
			t.Fatal(err)
		}
		if got[0] != want[0] || got[1] != want[1] {
			t.Fatalf("%s: Seen(old, mid) = %v, want %v", when, got, want)
		}
	}
	check(s, "within the window", []bool{true, true})
	clk.t = clk.t.Add(4*time.Hour - time.Second) // old is 8h-1s old
	check(s, "just inside the window", []bool{true, true})
	clk.t = clk.t.Add(time.Hour + time.Second) // old is 9h old: past 9/8 of the window
	check(s, "old expired", []bool{false, true})
	// Expired marks are dropped from memory when a new bucket starts.
	if err := s.Commit(ctx, engine.Commit{Events: storetest.Marks("new")}); err != nil {
		t.Fatal(err)
	}
	if n := s.st.seen.len(); n != 2 {
		t.Fatalf("%d marks held, want 2 (mid, new)", n)
	}
	// The window holds across a reopen (replayed from the log, then from
	// a snapshot).
	s.abandon()
	s = mustOpen(t, dir, cfg)
	check(s, "after replay", []bool{false, true})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, dir, cfg)
	check(s, "after snapshot", []bool{false, true})
	clk.t = clk.t.Add(5 * time.Hour)
	check(s, "mid expired", []bool{false, false})
}

// commitN commits one visitor event n.
func commitN(t *testing.T, s *Store, n int) {
	t.Helper()
	err := s.Commit(t.Context(), engine.Commit{
		Events:   storetest.Marks(storetest.Event("t", n).ID),
		Visitors: []engine.VisitorUpdate{{ID: "v", Append: []engine.HistoryEvent{storetest.Event("t", n)}}},
	})
	if err != nil {
		t.Fatal(err)
	}
}

func historyLen(t *testing.T, s *Store) int {
	t.Helper()
	vs, err := s.Visitors(t.Context(), []string{"v"})
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range vs[0].History {
		if e != storetest.Event("t", i) {
			t.Fatalf("history[%d] = %+v", i, e)
		}
	}
	return len(vs[0].History)
}

func walPath(t *testing.T, dir string) string {
	t.Helper()
	seqs, err := listWALs(dir)
	if err != nil || len(seqs) == 0 {
		t.Fatalf("no log in %s: %v", dir, err)
	}
	return filepath.Join(dir, walName(seqs[len(seqs)-1]))
}

func TestTornTail(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, path string)
		want   int // events that survive of 3
	}{
		{"last record cut short", func(t *testing.T, path string) {
			fi, _ := os.Stat(path)
			if err := os.Truncate(path, fi.Size()-5); err != nil {
				t.Fatal(err)
			}
		}, 2},
		{"header cut short", func(t *testing.T, path string) {
			appendBytes(t, path, []byte{1, 2, 3})
		}, 3},
		{"garbage after the last record", func(t *testing.T, path string) {
			appendBytes(t, path, []byte("garbage that is not a record at all"))
		}, 3},
		{"zeroed tail", func(t *testing.T, path string) {
			appendBytes(t, path, make([]byte, 4096))
		}, 3},
		{"flipped byte in the last record", func(t *testing.T, path string) {
			b, _ := os.ReadFile(path)
			b[len(b)-3] ^= 0x40
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := mustOpen(t, dir, testConfig())
			for n := range 3 {
				commitN(t, s, n)
			}
			s.abandon()
			tt.damage(t, walPath(t, dir))
			s = mustOpen(t, dir, testConfig())
			if got := historyLen(t, s); got != tt.want {
				t.Fatalf("history has %d events after recovery, want %d", got, tt.want)
			}
			// The log goes on after the truncation point.
			commitN(t, s, tt.want)
			s.abandon()
			s = mustOpen(t, dir, testConfig())
			if got := historyLen(t, s); got != tt.want+1 {
				t.Fatalf("history has %d events after a second recovery, want %d", got, tt.want+1)
			}
		})
	}
}

func appendBytes(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

func TestCorruptionIsAnError(t *testing.T) {
	t.Run("snapshot", func(t *testing.T) {
		dir := t.TempDir()
		s := mustOpen(t, dir, testConfig())
		commitN(t, s, 0)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, snapName)
		b, _ := os.ReadFile(path)
		b[len(b)/2] ^= 1
		os.WriteFile(path, b, 0o644)
		if _, err := Open(dir, testConfig()); !errors.Is(err, errCorruptSnapshot) {
			t.Fatalf("Open with a damaged snapshot: err %v, want errCorruptSnapshot", err)
		}
	})
	t.Run("log before the last", func(t *testing.T) {
		dir := t.TempDir()
		s := mustOpen(t, dir, testConfig())
		commitN(t, s, 0)
		commitN(t, s, 1)
		s.abandon()
		first := walPath(t, dir)
		// A later log exists: a bad record in an earlier one cannot be a
		// torn write.
		seqs, _ := listWALs(dir)
		if err := os.WriteFile(filepath.Join(dir, walName(seqs[0]+1)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Stat(first)
		os.Truncate(first, fi.Size()-2)
		if _, err := Open(dir, testConfig()); !errors.Is(err, errCorruptRecord) {
			t.Fatalf("Open: err %v, want errCorruptRecord", err)
		}
	})
}

func TestCompactionRemovesOldLogs(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Config{Sync: SyncNever, CompactBytes: 4096})
	for n := range 200 {
		commitN(t, s, n)
	}
	if err := s.compact(); err != nil {
		t.Fatal(err)
	}
	seqs, _ := listWALs(dir)
	if len(seqs) != 1 {
		t.Fatalf("logs after compaction: %v, want one", seqs)
	}
	if _, err := os.Stat(filepath.Join(dir, snapName)); err != nil {
		t.Fatal(err)
	}
	commitN(t, s, 200)
	s.abandon()
	s = mustOpen(t, dir, testConfig())
	if got := historyLen(t, s); got != 201 {
		t.Fatalf("history has %d events, want 201", got)
	}
}

func TestHistoryLimitShrinksOnReopen(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, testConfig())
	for n := range 10 {
		commitN(t, s, n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, dir, Config{Sync: SyncNever, HistoryLimit: 4})
	vs, _ := s.Visitors(t.Context(), []string{"v"})
	if len(vs[0].History) != 4 || vs[0].History[0] != storetest.Event("t", 6) {
		t.Fatalf("history %+v, want events 6..9", vs[0].History)
	}
}

func TestClosedStore(t *testing.T) {
	s := mustOpen(t, t.TempDir(), testConfig())
	s.Close()
	ctx := t.Context()
	if err := s.Commit(ctx, engine.Commit{Events: storetest.Marks("x")}); !errors.Is(err, engine.ErrUnavailable) {
		t.Fatalf("Commit after Close: err %v, want ErrUnavailable", err)
	}
	if _, err := s.Visitors(ctx, []string{"x"}); !errors.Is(err, engine.ErrUnavailable) {
		t.Fatalf("Visitors after Close: err %v", err)
	}
	if err := s.Ping(ctx); !errors.Is(err, engine.ErrUnavailable) {
		t.Fatalf("Ping after Close: err %v", err)
	}
	if err := s.PutBlob(ctx, "x", nil); !errors.Is(err, engine.ErrUnavailable) {
		t.Fatalf("PutBlob after Close: err %v", err)
	}
}

// TestCloseDuringCommits closes the store while committers run: each
// Commit either succeeds, and is there after a reopen, or fails with
// ErrUnavailable.
func TestCloseDuringCommits(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Config{})
	const workers = 4
	acked := make([][]string, workers)
	done := make(chan struct{})
	for w := range workers {
		go func() {
			defer func() { done <- struct{}{} }()
			for n := 0; ; n++ {
				id := fmt.Sprintf("w%d-%d", w, n)
				err := s.Commit(context.Background(), engine.Commit{Events: storetest.Marks(id)})
				if errors.Is(err, engine.ErrUnavailable) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				acked[w] = append(acked[w], id)
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for range workers {
		<-done
	}
	s = mustOpen(t, dir, Config{})
	total := 0
	for _, ids := range acked {
		seen, err := s.Seen(t.Context(), storetest.Marks(ids...))
		if err != nil {
			t.Fatal(err)
		}
		for i, b := range seen {
			if !b {
				t.Fatalf("acknowledged %s lost across Close", ids[i])
			}
		}
		total += len(ids)
	}
	if total == 0 {
		t.Fatal("no commit succeeded before Close")
	}
}

// TestSeenKeepsEarlierIDOnlyMarks: marks are per visitor, and a mark of
// an event id alone, as earlier versions wrote them, is still seen (for
// any visitor) until it expires, so an upgrade applies no event twice.
func TestSeenKeepsEarlierIDOnlyMarks(t *testing.T) {
	s := mustOpen(t, t.TempDir(), Config{})
	defer s.Close()
	s.mu.Lock()
	s.st.seen.add(hashID("old-1"), s.now())
	s.mu.Unlock()
	if err := s.Commit(t.Context(), engine.Commit{Events: []engine.EventRef{{Visitor: "a", ID: "new-1"}}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Seen(t.Context(), []engine.EventRef{{Visitor: "b", ID: "old-1"}, {Visitor: "a", ID: "new-1"}, {Visitor: "b", ID: "new-1"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []bool{true, true, false}; !slices.Equal(got, want) {
		t.Fatalf("seen %v, want %v", got, want)
	}
}
