package embedded

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine/storage"
	"github.com/kairoshq/kairos/engine/storage/storagetest"
	"github.com/kairoshq/kairos/internal/errs"
)

// TestStorageContract runs the contract suite of the storage primitives,
// on a fresh store per subtest, with each sync policy.
func TestStorageContract(t *testing.T) {
	for _, p := range []SyncPolicy{SyncNever, SyncAlways} {
		t.Run("sync="+p.String(), func(t *testing.T) {
			storagetest.Run(t, func(t *testing.T) storage.Backend {
				s := mustOpen(t, t.TempDir(), Config{Sync: p})
				t.Cleanup(func() { s.Close() })
				return s
			})
		})
	}
}

// TestStorageContractAfterReopen runs the suite on a store that is
// closed and reopened between subtests (its state comes back from the
// snapshot and the log).
func TestStorageContractAfterReopen(t *testing.T) {
	dir := t.TempDir()
	var s *Store
	storagetest.Run(t, func(t *testing.T) storage.Backend {
		if s != nil {
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		}
		s = mustOpen(t, dir, testConfig())
		return s
	})
	s.Close()
}

// primsDump is every primitive's content of a store, for comparisons.
type primsDump struct {
	Docs     map[string][]storage.Doc
	Versions map[string]int64
	Maps     map[string]map[string]string
	Logs     map[string][]storage.LogEntry
}

func dumpPrims(t *testing.T, s *Store, colls, keys []string) primsDump {
	t.Helper()
	ctx := context.Background()
	d := primsDump{Docs: map[string][]storage.Doc{}, Versions: map[string]int64{}, Maps: map[string]map[string]string{}, Logs: map[string][]storage.LogEntry{}}
	for _, c := range colls {
		docs, err := s.Docs(ctx, c, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		d.Docs[c] = docs
		if d.Versions[c], err = s.DocsVersion(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	ms, err := s.Maps(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range keys {
		d.Maps[k] = ms[i]
		es, err := s.Entries(ctx, k, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		d.Logs[k] = es
	}
	return d
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// fillPrims writes documents, maps (with expiries) and logs at the time
// of clk.
func fillPrims(t *testing.T, s *Store, clk *clock) {
	t.Helper()
	ctx := context.Background()
	must(t, s.PutDoc(ctx, "offers", "o1", []byte(`{"id":"o1"}`), storage.Create))
	must(t, s.PutDoc(ctx, "offers", "o2", []byte(`{"id":"o2"}`), storage.Create))
	must(t, s.PutDoc(ctx, "offers", "o1", []byte(`{"id":"o1","v":2}`), storage.Replace))
	must(t, s.PutDoc(ctx, "rules", "r1", []byte(`{}`), storage.Upsert))
	must(t, s.DeleteDoc(ctx, "rules", "r1"))
	var tx storage.Txn
	tx.Incr("counts", "views", 41)
	tx.Incr("counts", "views", 1)
	tx.IncrFloat("counts", "dwell", 2.5)
	tx.IncrFloat("counts", "big", 1e21) // "1e+21": a number whose text is no integer
	tx.Set("counts", "padded", "012")   // text that is no number's own text
	tx.Set("counts", "seven", "7")
	tx.Incr("counts", "seven", 1)
	tx.Set("caps:v1", "o1", "3")
	tx.Expire("caps:v1", clk.t.Add(time.Hour))
	tx.Set("short", "x", "1")
	tx.Expire("short", clk.t.Add(time.Minute))
	tx.Set("gone", "a", "1")
	must(t, s.Apply(ctx, tx))
	var del storage.Txn
	del.Del("gone", "a")
	del.Set("counts", "text", "hello")
	must(t, s.Apply(ctx, del))
	for i := range 5 {
		if _, err := s.Append(ctx, "promotions:v1", 100, []byte{byte('a' + i)}, 3, 2*time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Append(ctx, "log:short", 0, []byte("x"), 10, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "log:deleted", 0, []byte("x"), 10, 0); err != nil {
		t.Fatal(err)
	}
	must(t, s.Delete(ctx, []string{"log:deleted"}))
}

var (
	dumpColls = []string{"offers", "rules", "never"}
	dumpKeys  = []string{"counts", "caps:v1", "short", "gone", "promotions:v1", "log:short", "log:deleted"}
)

// TestPrimsPersistence: documents, versions, maps, expiries and logs with
// their sequence numbers come back after a close (snapshot) and after a
// crash (log replay), and expired maps and logs are absent after a reopen
// later and dropped at compaction.
func TestPrimsPersistence(t *testing.T) {
	for _, how := range []string{"close", "crash"} {
		t.Run(how, func(t *testing.T) {
			dir := t.TempDir()
			clk := &clock{t: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
			cfg := Config{Sync: SyncNever, Now: clk.now}
			s := mustOpen(t, dir, cfg)
			fillPrims(t, s, clk)
			want := dumpPrims(t, s, dumpColls, dumpKeys)
			if want.Versions["offers"] != 3 || want.Versions["rules"] != 2 || len(want.Docs["rules"]) != 0 {
				t.Fatalf("versions %v, docs %v", want.Versions, want.Docs)
			}
			if l := want.Logs["promotions:v1"]; len(l) != 3 || l[0].Seq != 102 || l[2].Seq != 104 || string(l[2].Data) != "e" {
				t.Fatalf("log = %v, want seqs 102..104", l)
			}
			if c := want.Maps["counts"]; c["views"] != "42" || c["dwell"] != "2.5" || c["big"] != "1e+21" || c["padded"] != "012" || c["seven"] != "8" {
				t.Fatalf("counts = %v", c)
			}
			if want.Maps["gone"] != nil || want.Logs["log:deleted"] != nil {
				t.Fatalf("maps %v logs %v", want.Maps, want.Logs)
			}
			reopen := func() {
				if how == "close" {
					must(t, s.Close())
				} else {
					s.abandon()
				}
				s = mustOpen(t, dir, cfg)
			}
			reopen()
			if got := dumpPrims(t, s, dumpColls, dumpKeys); !reflect.DeepEqual(got, want) {
				t.Fatalf("after reopen:\n got %+v\nwant %+v", got, want)
			}
			// The sequence of a log goes on after the reopen.
			seq, err := s.Append(context.Background(), "promotions:v1", 0, []byte("f"), 3, 2*time.Hour)
			must(t, err)
			if seq != 105 {
				t.Fatalf("seq after reopen = %d, want 105", seq)
			}

			// Two minutes later the short map and log have expired.
			clk.t = clk.t.Add(2 * time.Minute)
			reopen()
			got := dumpPrims(t, s, dumpColls, dumpKeys)
			if got.Maps["short"] != nil || got.Logs["log:short"] != nil {
				t.Fatalf("expired map %v, log %v read back", got.Maps["short"], got.Logs["log:short"])
			}
			if got.Maps["caps:v1"]["o1"] != "3" || got.Maps["counts"]["views"] != "42" {
				t.Fatalf("live maps lost: %v", got.Maps)
			}
			s.mu.RLock()
			_, shortMap := s.st.kv["short"]
			_, shortLog := s.st.logs["log:short"]
			s.mu.RUnlock()
			if shortMap || shortLog {
				t.Fatalf("expired map (%v) or log (%v) kept in memory after the reopen", shortMap, shortLog)
			}
			must(t, s.Close())
		})
	}
}

// TestPrimsExpiryReplay: a transaction on a map applied before its
// expiry replays as it was applied, whatever the clock at the replay (the
// record holds the result, not the ops).
func TestPrimsExpiryReplay(t *testing.T) {
	dir := t.TempDir()
	clk := &clock{t: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
	cfg := Config{Sync: SyncNever, Now: clk.now}
	ctx := context.Background()
	s := mustOpen(t, dir, cfg)
	var tx storage.Txn
	tx.Incr("k", "n", 5)
	tx.Expire("k", clk.t.Add(time.Minute))
	must(t, s.Apply(ctx, tx))
	var inc storage.Txn
	inc.Incr("k", "n", 1)
	must(t, s.Apply(ctx, inc)) // before the expiry: 6, expiring
	clk.t = clk.t.Add(2 * time.Minute)
	must(t, s.Apply(ctx, inc)) // after: a new map, 1, never expiring
	_, err := s.Append(ctx, "l", 7, []byte("a"), 5, time.Minute)
	must(t, err)
	clk.t = clk.t.Add(2 * time.Minute)
	seq, err := s.Append(ctx, "l", 0, []byte("b"), 5, time.Minute) // the log expired: starts over
	must(t, err)
	if seq != 1 {
		t.Fatalf("append to an expired log: seq %d, want 1", seq)
	}
	s.abandon()
	clk.t = clk.t.Add(time.Hour)
	s = mustOpen(t, dir, cfg)
	defer s.Close()
	f, err := s.Fields(ctx, "k", []string{"n"})
	must(t, err)
	if f["n"] != "1" {
		t.Fatalf("after replay n = %q, want 1 (a new map after the expiry)", f["n"])
	}
	es, err := s.Entries(ctx, "l", 0, 0)
	must(t, err)
	if len(es) != 0 {
		t.Fatalf("log expired an hour ago reads %v", es)
	}
}

// TestPrimsNothingWritten: a failed condition, an invalid op, a failed
// create or a delete of nothing write no record.
func TestPrimsNothingWritten(t *testing.T) {
	s := mustOpen(t, t.TempDir(), testConfig())
	defer s.Close()
	ctx := context.Background()
	var setup storage.Txn
	setup.Set("k", "s", "text")
	must(t, s.Apply(ctx, setup))
	must(t, s.PutDoc(ctx, "c", "a", []byte("1"), storage.Create))
	size := func() int64 {
		s.mu.RLock()
		defer s.mu.RUnlock()
		return s.walSize
	}
	before := size()
	var cond storage.Txn
	cond.IfAbsent("k", "s")
	cond.Set("k", "t", "1")
	if err := s.Apply(ctx, cond); !errors.Is(err, errs.Conflict) {
		t.Fatalf("failed condition: %v", err)
	}
	var bad storage.Txn
	bad.Set("k", "u", "1")
	bad.Incr("k", "s", 1)
	if err := s.Apply(ctx, bad); !errors.Is(err, errs.Invalid) {
		t.Fatalf("invalid op: %v", err)
	}
	if err := s.PutDoc(ctx, "c", "a", []byte("2"), storage.Create); !errors.Is(err, errs.Conflict) {
		t.Fatalf("create of an existing doc: %v", err)
	}
	if err := s.DeleteDoc(ctx, "c", "zz"); !errors.Is(err, errs.NotFound) {
		t.Fatalf("delete of a missing doc: %v", err)
	}
	must(t, s.Delete(ctx, []string{"nothing", "here"}))
	must(t, s.Apply(ctx, storage.Txn{}))
	if got := size(); got != before {
		t.Fatalf("refused writes grew the log from %d to %d bytes", before, got)
	}
	if _, err := s.Append(ctx, "l", 0, nil, 0, 0); !errors.Is(err, errs.Invalid) {
		t.Fatalf("append keeping 0: %v", err)
	}
	if err := s.PutDoc(ctx, "", "a", nil, storage.Upsert); !errors.Is(err, errs.Invalid) {
		t.Fatalf("put doc without collection: %v", err)
	}
}

// TestPrimsSnapshotIsolation: a snapshot taken by compaction keeps the
// maps, documents and logs as they were when it was taken, while writes
// go on (copy on write).
func TestPrimsSnapshotIsolation(t *testing.T) {
	s := mustOpen(t, t.TempDir(), testConfig())
	defer s.Close()
	ctx := context.Background()
	var tx storage.Txn
	tx.Incr("k", "n", 1)
	tx.Set("k", "s", "a")
	must(t, s.Apply(ctx, tx))
	must(t, s.PutDoc(ctx, "c", "a", []byte("1"), storage.Upsert))
	_, err := s.Append(ctx, "l", 0, []byte("1"), 2, 0)
	must(t, err)
	s.mu.Lock()
	snap := s.st.clone()
	s.mu.Unlock()
	var tx2 storage.Txn
	tx2.Incr("k", "n", 1)
	tx2.Del("k", "s")
	must(t, s.Apply(ctx, tx2))
	must(t, s.PutDoc(ctx, "c", "b", []byte("2"), storage.Upsert))
	for range 3 {
		_, err := s.Append(ctx, "l", 0, []byte("x"), 2, 0)
		must(t, err)
	}
	if got := texts(snap.kv["k"]); !reflect.DeepEqual(got, map[string]string{"n": "1", "s": "a"}) {
		t.Fatalf("snapshot's map changed: %v", got)
	}
	if c := snap.colls["c"]; len(c.docs) != 1 || len(c.ids) != 1 || c.version != 1 {
		t.Fatalf("snapshot's collection changed: %v %v %d", c.docs, c.ids, c.version)
	}
	if l := snap.logs["l"].entries; len(l) != 1 || l[0].Seq != 1 || string(l[0].Data) != "1" {
		t.Fatalf("snapshot's log changed: %v", l)
	}
	if f, _ := s.Fields(ctx, "k", []string{"n", "s"}); !reflect.DeepEqual(f, map[string]string{"n": "2"}) {
		t.Fatalf("live map = %v", f)
	}
}

// TestApplyFieldOpMatchesReference: the embedded store's ops have the
// semantics of storagetest.ApplyOp, whatever kind holds the current
// value (text as set or read from disk, or the number an increment
// left), over sequences of two ops.
func TestApplyFieldOpMatchesReference(t *testing.T) {
	ops := []storage.Op{
		{Kind: storage.OpSet, Value: "v"}, {Kind: storage.OpSet, Value: ""}, {Kind: storage.OpSet, Value: "12"},
		{Kind: storage.OpIncr, Int: 3}, {Kind: storage.OpIncr, Int: -7}, {Kind: storage.OpIncr, Int: math.MaxInt64},
		{Kind: storage.OpIncrFloat, Float: 0.1}, {Kind: storage.OpIncrFloat, Float: -2.5e300}, {Kind: storage.OpIncrFloat, Float: 1e6},
		{Kind: storage.OpIncrFloat, Float: 2}, {Kind: storage.OpIncrFloat, Float: math.Inf(1)},
		{Kind: storage.OpDel}, {Kind: storage.OpExpire + 1}, {Kind: 200},
	}
	values := []*string{nil, ptr("0"), ptr("12"), ptr("-3"), ptr("012"), ptr("1.5"), ptr("3.0"), ptr("1e+06"), ptr("text"), ptr(""),
		ptr("1e400"), ptr("NaN"), ptr("+Inf"), ptr("9223372036854775807"), ptr("9007199254740993"), ptr("-0")}
	for _, v := range values {
		for _, parsed := range []bool{false, true} {
			for _, op1 := range ops {
				for _, op2 := range ops {
					name := fmt.Sprintf("%+v then %+v on %v (parsed %v)", op1, op2, v, parsed)
					ref := map[string]string{}
					var cur value
					if v != nil {
						ref["f"], cur = *v, textValue(*v)
						if parsed {
							cur = parseValue(*v)
						}
						if got := cur.text(); got != *v {
							t.Fatalf("value of %q reads %q", *v, got)
						}
					}
					ok := v != nil
					for _, op := range []storage.Op{op1, op2} {
						op.Key, op.Field = "k", "f"
						refErr := storagetest.ApplyOp(ref, op)
						got, exists, err := applyFieldOp(cur, ok, &op)
						if (err == nil) != (refErr == nil) || err != nil && (errors.Is(err, errs.Invalid) != errors.Is(refErr, errs.Invalid)) {
							t.Fatalf("%s: error %v, reference %v", name, err, refErr)
						}
						if err != nil {
							break
						}
						cur, ok = got, exists
						want, wantOK := ref["f"]
						if ok != wantOK || ok && (cur.text() != want || !cur.is(want) || parseValue(want).text() != want) {
							t.Fatalf("%s = %q %v, reference %q %v", name, cur.text(), ok, want, wantOK)
						}
					}
				}
			}
		}
	}
}

// texts returns the fields of m as text.
func texts(m *kvMap) map[string]string {
	out := make(map[string]string, len(m.fields))
	for f, v := range m.fields {
		out[f] = v.text()
	}
	return out
}

func ptr(s string) *string { return &s }

// copyDir copies a fixture directory (flat) to a temporary one.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// TestOldFormatRefused: directories written by the code before storage
// format 2 (testdata/format1-*: a snapshot with its log, and a log alone
// as a crash leaves it) are refused by Open and OpenReadOnly with an
// error naming the directory, the formats and the upgrade path, and left
// as they were.
func TestOldFormatRefused(t *testing.T) {
	for _, fixture := range []string{"format1-snapshot", "format1-wal"} {
		t.Run(fixture, func(t *testing.T) {
			dir := copyDir(t, filepath.Join("testdata", fixture))
			before := dirState(t, dir)
			for name, open := range map[string]func(string, Config) (*Store, error){"Open": Open, "OpenReadOnly": OpenReadOnly} {
				s, err := open(dir, testConfig())
				if err == nil {
					s.Close()
					t.Fatalf("%s of a format 1 directory succeeded", name)
				}
				if !errors.Is(err, ErrFormat) || !errors.Is(err, errs.Invalid) {
					t.Fatalf("%s: error %v, want ErrFormat (Invalid)", name, err)
				}
				for _, want := range []string{dir, "format 1", "format 2", "kairos replay", "export the definitions"} {
					if !strings.Contains(err.Error(), want) {
						t.Fatalf("%s: error %q does not name %q", name, err, want)
					}
				}
			}
			after := dirState(t, dir)
			delete(after, filepath.Join(dir, lockName))
			if !reflect.DeepEqual(before, after) {
				t.Fatalf("a refused open changed the directory: %v → %v", before, after)
			}
		})
	}
}

// TestFormatMarker: a new directory gets the marker of this format and
// opens again; a marker of another version or a damaged one is refused.
func TestFormatMarker(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, testConfig())
	must(t, s.Close())
	b, err := os.ReadFile(filepath.Join(dir, formatName))
	must(t, err)
	if string(b) != "kairos-embedded 2\n" {
		t.Fatalf("marker = %q", b)
	}
	s = mustOpen(t, dir, testConfig())
	must(t, s.Close())
	ro, err := OpenReadOnly(t.TempDir(), testConfig())
	must(t, err) // an empty directory reads as an empty store
	ro.Close()
	for _, marker := range []string{"kairos-embedded 3\n", "something else\n"} {
		must(t, os.WriteFile(filepath.Join(dir, formatName), []byte(marker), 0o600))
		_, err := Open(dir, testConfig())
		if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), dir) {
			t.Fatalf("marker %q: error %v, want ErrFormat naming the directory", marker, err)
		}
	}
}

// TestPrimsReadOnly: a read-only Store beside a writer reads its
// documents, maps and logs and refuses their writes.
func TestPrimsReadOnly(t *testing.T) {
	dir := t.TempDir()
	clk := &clock{t: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
	s := mustOpen(t, dir, Config{Sync: SyncNever, Now: clk.now})
	defer s.Close()
	fillPrims(t, s, clk)
	ro, err := OpenReadOnly(dir, Config{Now: clk.now})
	must(t, err)
	defer ro.Close()
	if got, want := dumpPrims(t, ro, dumpColls, dumpKeys), dumpPrims(t, s, dumpColls, dumpKeys); !reflect.DeepEqual(got, want) {
		t.Fatalf("read-only:\n got %+v\nwant %+v", got, want)
	}
	var tx storage.Txn
	tx.Set("k", "f", "v")
	if err := ro.Apply(context.Background(), tx); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("Apply on a read-only store: %v", err)
	}
	if _, err := ro.Append(context.Background(), "l", 0, nil, 1, 0); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("Append on a read-only store: %v", err)
	}
}

// TestPrimsCompactionUnderWrites: compactions (a tiny CompactBytes) while
// transactions and appends go on lose nothing (run with -race).
func TestPrimsCompactionUnderWrites(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Config{Sync: SyncNever, CompactBytes: 1 << 10})
	ctx := context.Background()
	const workers, each = 4, 200
	done := make(chan error, workers)
	for w := range workers {
		go func() {
			for i := range each {
				var tx storage.Txn
				tx.Incr("ctr", "n", 1)
				tx.Set(fmt.Sprintf("w%d", w), fmt.Sprintf("f%d", i), "x")
				if err := s.Apply(ctx, tx); err != nil {
					done <- err
					return
				}
				if _, err := s.Append(ctx, "log", 0, []byte("x"), workers*each, 0); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range workers {
		must(t, <-done)
	}
	must(t, s.Close())
	s = mustOpen(t, dir, testConfig())
	defer s.Close()
	ms, err := s.Maps(ctx, []string{"ctr", "w0", "w3"})
	must(t, err)
	if ms[0]["n"] != strconv.Itoa(workers*each) || len(ms[1]) != each || len(ms[2]) != each {
		t.Fatalf("after compactions under writes: ctr %v, %d and %d fields", ms[0], len(ms[1]), len(ms[2]))
	}
	es, err := s.Entries(ctx, "log", 0, 0)
	must(t, err)
	if len(es) != workers*each || es[len(es)-1].Seq != workers*each {
		t.Fatalf("log has %d entries, last seq %d", len(es), es[len(es)-1].Seq)
	}
}

// TestPrimsRecordsCutShort: every record of the primitives cut short is
// an error (never a panic, never applied in part silently).
func TestPrimsRecordsCutShort(t *testing.T) {
	st := newState(testConfig().Defaults())
	st.applyPutDoc("c", "a", []byte(`{"a":1}`))
	var tx txnStage
	ops := []storage.Op{
		{Kind: storage.OpIncr, Key: "k", Field: "n", Int: 3},
		{Kind: storage.OpSet, Key: "k2", Field: "s", Value: "v"},
		{Kind: storage.OpDel, Key: "k2", Field: "s"},
		{Kind: storage.OpExpire, Key: "k", At: time.Unix(100, 0)},
	}
	must(t, tx.stage(st, ops, 1))
	tx.apply(st)
	st.applyAppend("l", false, 7, 3, 0, []byte("data"))
	records := [][]byte{
		encodePutDoc(nil, "c", "a", []byte(`{}`)),
		encodeDeleteDoc(nil, "c", "a"),
		encodeTxn(nil, &tx),
		encodeLogAppend(nil, "l", false, 8, 3, 5, []byte("x")),
		encodeDeleteKeys(nil, []string{"k", "l"}),
		encodeDocs(nil, "c", 4, st.colls["c"], st.colls["c"].ids),
		encodeMapState(nil, "k", st.kv["k"], true, []string{"n"}),
		encodeLogState(nil, "l", st.logs["l"]),
	}
	for _, rec := range records {
		for n := 2; n < len(rec); n++ {
			p := rec[:n]
			if p[0] == recPutDoc || p[0] == recLogAppend {
				continue // their last field runs to the end of the record
			}
			if err := newState(testConfig().Defaults()).apply(p, 10); err == nil {
				t.Fatalf("record type %d cut to %d of %d bytes applied without an error", p[0], n, len(rec))
			}
		}
		if err := newState(testConfig().Defaults()).apply(rec, 10); err != nil {
			t.Fatalf("record type %d: %v", rec[0], err)
		}
	}
}

// TestLazyTxn: a lazy transaction is visible at once and durable after
// the next synced write (a reopen sees it).
func TestLazyTxn(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	cfg.Sync = SyncAlways
	s := mustOpen(t, dir, cfg)
	ctx := context.Background()
	var lazy storage.Txn
	lazy.Lazy = true
	lazy.Incr("counters", "n", 3)
	if err := s.Apply(ctx, lazy); err != nil {
		t.Fatal(err)
	}
	if f, err := s.Fields(ctx, "counters", []string{"n"}); err != nil || f["n"] != "3" {
		t.Fatalf("lazy txn not visible: %v, %v", f, err)
	}
	if err := s.PutDoc(ctx, "c", "d", []byte(`{}`), storage.Upsert); err != nil { // a synced write
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, dir, cfg)
	if f, err := s.Fields(ctx, "counters", []string{"n"}); err != nil || f["n"] != "3" {
		t.Fatalf("lazy txn after reopen: %v, %v", f, err)
	}
}

// TestMapTxnValueKinds: a recMapTxn logs an increment's result as the
// number it is, and replays it as a value of the same text; a record that
// holds numbers as text (as logged before numbers were logged as such)
// replays to the same values.
func TestMapTxnValueKinds(t *testing.T) {
	vals := []value{intValue(42), intValue(-7), floatValue(2.5), floatValue(1e21), floatValue(math.Copysign(0, -1)),
		floatValue(math.Inf(1)), floatValue(math.NaN()), floatValue(5), textValue("012"), textValue("x")}
	tx := txnStage{keys: []txnKey{{key: "k"}}}
	for i, v := range vals {
		tx.fields = append(tx.fields, txnField{k: 0, field: strconv.Itoa(i), val: v})
	}
	asText := func(b []byte) []byte { // the record with every value as its text
		b = append(b, recMapTxn, 1)
		b = appendStr(b, "k")
		b = append(b, 0, byte(len(vals)))
		for i, v := range vals {
			b = appendStr(append(b, 0), strconv.Itoa(i))
			b = appendStr(append(b, fieldText), v.text())
		}
		return b
	}
	for name, rec := range map[string][]byte{"numbers": encodeTxn(nil, &tx), "text": asText(nil)} {
		t.Run(name, func(t *testing.T) {
			st := newState(Config{}.Defaults())
			if err := st.applyPrim(rec[0], &reader{b: rec[1:]}); err != nil {
				t.Fatal(err)
			}
			m := st.kv["k"]
			if m == nil || len(m.fields) != len(vals) {
				t.Fatalf("map = %+v, want %d fields", m, len(vals))
			}
			for i, v := range vals {
				got := m.fields[strconv.Itoa(i)]
				if got.text() != v.text() || !got.is(v.text()) {
					t.Errorf("field %d = %q, want %q", i, got.text(), v.text())
				}
				gi, gok := got.int()
				wi, wok := v.int()
				if gi != wi || gok != wok {
					t.Errorf("field %d int() = %d, %v; want %d, %v", i, gi, gok, wi, wok)
				}
			}
		})
	}
}

// TestApplyRevisitedKeys: transactions that come back to a key after
// others (maps that exist and maps they create, staged by two different
// indexes, txnStage.key) leave the maps the reference backend leaves, and
// fail where it fails; so do they after a reopen.
func TestApplyRevisitedKeys(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
	dir := t.TempDir()
	s := mustOpen(t, dir, Config{Sync: SyncNever, Now: clk.now})
	ref := storagetest.NewMem(clk.now)
	keys := []string{"a", "b", "c", "d", "e", "f"}
	rng := rand.New(rand.NewPCG(5, 6))
	for n := range 300 {
		var tx storage.Txn
		for range 1 + rng.IntN(20) {
			k, f := keys[rng.IntN(len(keys))], fmt.Sprintf("f%d", rng.IntN(3))
			switch rng.IntN(5) {
			case 0:
				tx.Set(k, f, fmt.Sprint(rng.IntN(5)))
			case 1:
				tx.Del(k, f)
			case 2:
				tx.IncrFloat(k, f, 0.5)
			default:
				tx.Incr(k, f, int64(rng.IntN(7))-3)
			}
		}
		if rng.IntN(10) == 0 {
			tx.Set(keys[rng.IntN(len(keys))], "t", "text") // later increments of "t" fail
		}
		errGot, errWant := s.Apply(ctx, tx), ref.Apply(ctx, tx)
		if (errGot == nil) != (errWant == nil) {
			t.Fatalf("txn %d %+v: error %v, reference %v", n, tx.Ops, errGot, errWant)
		}
		if n%50 == 49 {
			must(t, s.Close())
			s = mustOpen(t, dir, Config{Sync: SyncNever, Now: clk.now})
		}
		got, err := s.Maps(ctx, keys)
		must(t, err)
		want, err := ref.Maps(ctx, keys)
		must(t, err)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("after txn %d %+v:\n got %v\nwant %v", n, tx.Ops, got, want)
		}
	}
	must(t, s.Close())
}
