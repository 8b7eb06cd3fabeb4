package embedded

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/storage"
	"github.com/kairoshq/kairos/internal/fileperm/filepermtest"
)

// commitVisitor commits one event of visitor id.
func commitVisitor(t testing.TB, s *Store, id string) {
	t.Helper()
	err := s.Commit(context.Background(), engine.Commit{
		Events:   []engine.EventRef{{Visitor: id, ID: "e-" + id}},
		Visitors: []engine.VisitorUpdate{{ID: id, Append: []engine.HistoryEvent{{ID: "e-" + id, Type: "view", Item: "i1", Time: time.Now()}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
}

// hasVisitor reports whether s holds a history for id.
func hasVisitor(t testing.TB, s *Store, id string) bool {
	t.Helper()
	vs, err := s.Visitors(context.Background(), []string{id})
	if err != nil {
		t.Fatal(err)
	}
	return len(vs[0].History) > 0
}

// dirState lists the files of dir with their sizes and modification times.
func dirState(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		out[p] = fmt.Sprintf("%d %v %v", fi.Size(), fi.ModTime().UnixNano(), fi.Mode())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestOpenReadOnlyBesideWriter: a running Store holds the lock; a
// read-only Store opened beside it sees everything written so far,
// refuses writes and changes nothing on disk.
func TestOpenReadOnlyBesideWriter(t *testing.T) {
	dir := t.TempDir()
	w := mustOpen(t, dir, testConfig())
	if _, err := Open(dir, testConfig()); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	ctx := context.Background()
	commitVisitor(t, w, "alice")
	secret := []byte(`"s3cret"`)
	if err := w.PutDoc(ctx, "secrets", "promo", secret, storage.Create); err != nil {
		t.Fatal(err)
	}
	if err := w.PutBlob(ctx, "model/current", []byte("snapshot")); err != nil {
		t.Fatal(err)
	}
	before := dirState(t, dir)

	r, err := OpenReadOnly(dir, testConfig())
	if err != nil {
		t.Fatalf("OpenReadOnly beside the writer: %v", err)
	}
	if !hasVisitor(t, r, "alice") {
		t.Error("read-only store misses the writer's visitor")
	}
	if got, err := r.Doc(ctx, "secrets", "promo"); err != nil || !slices.Equal(got, secret) {
		t.Errorf("Doc = %s, %v; want the writer's %s", got, err, secret)
	}
	if b, err := r.Blob(ctx, "model/current"); err != nil || string(b) != "snapshot" {
		t.Errorf("Blob = %q, %v", b, err)
	}
	err = r.Commit(ctx, engine.Commit{Visitors: []engine.VisitorUpdate{{ID: "bob"}}})
	if !errors.Is(err, ErrReadOnly) || !errors.Is(err, engine.ErrUnavailable) {
		t.Errorf("Commit on the read-only store: %v, want ErrReadOnly", err)
	}
	if err := r.PutBlob(ctx, "x", nil); !errors.Is(err, ErrReadOnly) {
		t.Errorf("PutBlob on the read-only store: %v, want ErrReadOnly", err)
	}
	if err := r.Ping(ctx); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Ping: %v, want ErrReadOnly", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(before, dirState(t, dir)) {
		t.Errorf("the read-only store changed the directory:\nbefore %v\nafter  %v", before, dirState(t, dir))
	}
	// The writer is unaffected.
	commitVisitor(t, w, "carol")
	if !hasVisitor(t, w, "carol") {
		t.Error("writer lost a write")
	}
}

// TestOpenReadOnlyTornTail: a record being written (half of it on disk)
// is left out, and the log is not truncated.
func TestOpenReadOnlyTornTail(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, testConfig())
	commitVisitor(t, s, "alice")
	s.abandon()
	seqs, err := listWALs(dir)
	if err != nil || len(seqs) == 0 {
		t.Fatalf("logs %v, %v", seqs, err)
	}
	path := filepath.Join(dir, walName(seqs[len(seqs)-1]))
	b := sealFrame(encodeCommit(newFrame(nil), 1, nil, []engine.VisitorUpdate{{ID: "bob"}}))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(b[:len(b)/2])
	f.Close()
	before := dirState(t, dir)
	r, err := OpenReadOnly(dir, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !hasVisitor(t, r, "alice") {
		t.Error("the complete record before the torn one is missing")
	}
	if !maps.Equal(before, dirState(t, dir)) {
		t.Error("OpenReadOnly truncated the log")
	}
	if _, err := OpenReadOnly(filepath.Join(dir, "missing"), testConfig()); err == nil {
		t.Error("OpenReadOnly of a missing directory succeeded")
	}
}

// TestOpenReadOnlyDuringCompactions: a writer commits visitors and
// compacts every KiB while read-only stores are opened in a loop; each one
// opens (starting over when a compaction removed a log it was about to
// read) and sees at least every visitor committed before it was opened.
func TestOpenReadOnlyDuringCompactions(t *testing.T) {
	const opens, maxVisitors = 60, 10000
	dir := t.TempDir()
	w := mustOpen(t, dir, Config{Sync: SyncNever, CompactBytes: 1024})
	var committed atomic.Int64
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for i := range maxVisitors {
			select {
			case <-stop:
				return
			default:
			}
			commitVisitor(t, w, fmt.Sprintf("v%d", i))
			committed.Store(int64(i + 1))
			runtime.Gosched()
		}
	}()
	defer func() { close(stop); <-done }()
	for range opens {
		n := int(committed.Load())
		r, err := OpenReadOnly(dir, testConfig())
		if err != nil {
			t.Fatalf("OpenReadOnly during compactions: %v", err)
		}
		for i := range n {
			if !hasVisitor(t, r, fmt.Sprintf("v%d", i)) {
				t.Fatalf("visitor v%d committed before the open is missing (%d committed)", i, n)
			}
		}
		r.Close()
	}
	t.Logf("%d read-only opens while %d visitors were committed", opens, committed.Load())
}

// TestFileModes: the directory, the logs, the snapshot, the lock and the
// blobs are private (0700/0600); files an older version left 0644 are
// made private on Open.
func TestFileModes(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permission bits")
	}
	dir := filepath.Join(t.TempDir(), "data", "state")
	s, err := Open(dir, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	commitVisitor(t, s, "alice")
	if err := s.PutDoc(context.Background(), "secrets", "promo", []byte(`"x"`), storage.Create); err != nil {
		t.Fatal(err)
	}
	if err := s.PutBlob(context.Background(), "model/current", []byte("m")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil { // compacts: writes the snapshot
		t.Fatal(err)
	}
	checkPrivate := func() {
		t.Helper()
		n := len(filepermtest.Check(t, filepath.Dir(dir)))
		if _, err := os.Stat(filepath.Join(dir, snapName)); err != nil {
			t.Errorf("no snapshot: %v", err)
		}
		if n < 6 { // data, state, LOCK, snapshot, log, blobs, the blob
			t.Errorf("only %d entries checked", n)
		}
	}
	checkPrivate()

	// An older version's directory: 0755 and 0644 everywhere.
	filepermtest.Loosen(t, dir, nil)
	s = mustOpen(t, dir, testConfig())
	if !hasVisitor(t, s, "alice") {
		t.Error("state lost")
	}
	s.Close()
	checkPrivate()
}
