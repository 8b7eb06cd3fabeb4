package storagetest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine/storage"
	"github.com/kairoshq/kairos/internal/errs"
	"github.com/kairoshq/kairos/internal/testutil"
)

var unique atomic.Int64

// Name returns a name unique in the test process, for keys and
// collections of a shared backend.
func Name(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano(), unique.Add(1))
}

// Group returns n unique keys that share one hash tag ("{map-…}:0",
// "{map-…}:1", …), as the maps of one Txn must (storage.Txn).
func Group(prefix string, n int) []string {
	tag := Name(prefix)
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("{%s}:%d", tag, i)
	}
	return out
}

// Run runs the contract suite of the storage primitives against the
// backends open returns (a fresh or shared one per subtest: the suite
// uses unique keys and collections). Expiry follows the wall clock.
func Run(t *testing.T, open func(t *testing.T) storage.Backend) {
	tests := []struct {
		name string
		fn   func(t *testing.T, b storage.Backend)
	}{
		{"docs/put-modes", testPutModes},
		{"docs/paging", testDocsPaging},
		{"docs/version", testDocsVersion},
		{"docs/concurrent-create", testConcurrentCreate},
		{"maps/ops", testMapOps},
		{"maps/conditions", testConditions},
		{"maps/invalid-op-applies-nothing", testInvalidOp},
		{"maps/expiry", testMapExpiry},
		{"maps/delete", testDelete},
		{"maps/concurrent-incr", testConcurrentIncr},
		{"maps/compare-and-set", testCompareAndSet},
		{"maps/lazy-increments", testLazyIncrements},
		{"logs/append", testLogAppend},
		{"logs/keep-and-min-seq", testLogKeep},
		{"logs/expiry", testLogExpiry},
		{"cancelled", testCancelled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantKind(t *testing.T, what string, err, kind error) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("%s: got error %v, want one of kind %v", what, err, kind)
	}
}

func testPutModes(t *testing.T, b storage.Backend) {
	ctx, coll := ctxT(t), Name("coll")
	wantKind(t, "replace of a missing doc", b.PutDoc(ctx, coll, "a", []byte(`{"v":1}`), storage.Replace), errs.NotFound)
	must(t, b.PutDoc(ctx, coll, "a", []byte(`{"v":1}`), storage.Create))
	wantKind(t, "create of an existing doc", b.PutDoc(ctx, coll, "a", []byte(`{"v":2}`), storage.Create), errs.Conflict)
	got, err := b.Doc(ctx, coll, "a")
	must(t, err)
	if string(got) != `{"v":1}` {
		t.Fatalf("a failed create changed the doc: %s", got)
	}
	must(t, b.PutDoc(ctx, coll, "a", []byte(`{"v":3}`), storage.Replace))
	must(t, b.PutDoc(ctx, coll, "a", []byte(`{"v":4}`), storage.Upsert))
	must(t, b.PutDoc(ctx, coll, "b", []byte(`{"v":5}`), storage.Upsert))
	if got, _ := b.Doc(ctx, coll, "a"); string(got) != `{"v":4}` {
		t.Fatalf("doc a = %s, want v 4", got)
	}
	_, err = b.Doc(ctx, coll, "zz")
	wantKind(t, "doc of a missing id", err, errs.NotFound)
	_, err = b.Doc(ctx, Name("other"), "a")
	wantKind(t, "doc of another collection", err, errs.NotFound)
	must(t, b.DeleteDoc(ctx, coll, "a"))
	wantKind(t, "delete of a deleted doc", b.DeleteDoc(ctx, coll, "a"), errs.NotFound)
	_, err = b.Doc(ctx, coll, "a")
	wantKind(t, "doc after delete", err, errs.NotFound)
	must(t, b.PutDoc(ctx, coll, "a", []byte(`{}`), storage.Create))
}

func testDocsPaging(t *testing.T, b storage.Backend) {
	ctx, coll := ctxT(t), Name("coll")
	for i := 9; i >= 0; i-- {
		must(t, b.PutDoc(ctx, coll, fmt.Sprintf("id-%02d", i), []byte(strconv.Itoa(i)), storage.Upsert))
	}
	all, err := b.Docs(ctx, coll, "", 0)
	must(t, err)
	if len(all) != 10 {
		t.Fatalf("Docs: %d docs, want 10", len(all))
	}
	for i, d := range all {
		if d.ID != fmt.Sprintf("id-%02d", i) || string(d.JSON) != strconv.Itoa(i) {
			t.Fatalf("Docs[%d] = %s %s, want id-%02d %d (ascending ids)", i, d.ID, d.JSON, i, i)
		}
	}
	page, err := b.Docs(ctx, coll, "id-03", 4)
	must(t, err)
	if len(page) != 4 || page[0].ID != "id-04" || page[3].ID != "id-07" {
		t.Fatalf("Docs after id-03 limit 4 = %v, want id-04..id-07", ids(page))
	}
	rest, err := b.Docs(ctx, coll, "id-07", 100)
	must(t, err)
	if len(rest) != 2 {
		t.Fatalf("last page = %v, want id-08 id-09", ids(rest))
	}
	none, err := b.Docs(ctx, Name("empty"), "", 0)
	must(t, err)
	if len(none) != 0 {
		t.Fatalf("Docs of an empty collection = %v", ids(none))
	}
}

func ids(ds []storage.Doc) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out
}

func testDocsVersion(t *testing.T, b storage.Backend) {
	ctx, coll, other := ctxT(t), Name("coll"), Name("coll")
	v0, err := b.DocsVersion(ctx, coll)
	must(t, err)
	if v0 != 0 {
		t.Fatalf("version of a new collection = %d, want 0", v0)
	}
	must(t, b.PutDoc(ctx, coll, "a", []byte(`1`), storage.Upsert))
	v1, _ := b.DocsVersion(ctx, coll)
	must(t, b.PutDoc(ctx, coll, "a", []byte(`2`), storage.Upsert))
	v2, _ := b.DocsVersion(ctx, coll)
	if v1 == v0 || v2 == v1 {
		t.Fatalf("versions %d %d %d do not change with every put", v0, v1, v2)
	}
	_ = b.PutDoc(ctx, coll, "a", []byte(`3`), storage.Create) // conflict
	if v, _ := b.DocsVersion(ctx, coll); v != v2 {
		t.Fatalf("a failed create changed the version %d → %d", v2, v)
	}
	must(t, b.PutDoc(ctx, other, "a", []byte(`1`), storage.Upsert))
	if v, _ := b.DocsVersion(ctx, coll); v != v2 {
		t.Fatalf("a put of another collection changed the version %d → %d", v2, v)
	}
	must(t, b.DeleteDoc(ctx, coll, "a"))
	if v, _ := b.DocsVersion(ctx, coll); v == v2 {
		t.Fatal("delete did not change the version")
	}
}

func testConcurrentCreate(t *testing.T, b storage.Backend) {
	ctx, coll := ctxT(t), Name("coll")
	const n = 16
	won := testutil.Wins(t, n, errs.Conflict, func(i int) error {
		return b.PutDoc(ctx, coll, "x", []byte(strconv.Itoa(i)), storage.Create)
	})
	if won != 1 {
		t.Fatalf("%d of %d concurrent creates succeeded, want exactly 1", won, n)
	}
}

func testMapOps(t *testing.T, b storage.Backend) {
	g := Group("map", 2)
	ctx, k1, k2 := ctxT(t), g[0], g[1]
	var tx storage.Txn
	tx.Set(k1, "s", "hello")
	tx.Incr(k1, "n", 3)
	tx.Incr(k1, "n", -1)
	tx.IncrFloat(k1, "x", 0.25)
	tx.IncrFloat(k2, "x", 1.5)
	tx.Set(k2, "gone", "1")
	tx.Del(k2, "gone")
	must(t, b.Apply(ctx, tx))
	got, err := b.Maps(ctx, []string{k1, Name("absent"), k2})
	must(t, err)
	if len(got) != 3 || got[1] != nil {
		t.Fatalf("Maps = %v, want 3 results with nil for the absent key", got)
	}
	if got[0]["s"] != "hello" || got[0]["n"] != "2" || got[0]["x"] != "0.25" || len(got[0]) != 3 {
		t.Fatalf("map 1 = %v, want s hello, n 2, x 0.25", got[0])
	}
	if got[2]["x"] != "1.5" || len(got[2]) != 1 {
		t.Fatalf("map 2 = %v, want only x 1.5", got[2])
	}
	f, err := b.Fields(ctx, k1, []string{"n", "missing"})
	must(t, err)
	if len(f) != 1 || f["n"] != "2" {
		t.Fatalf("Fields = %v, want only n 2", f)
	}
	var del storage.Txn
	del.Del(k2, "x")
	must(t, b.Apply(ctx, del))
	if got, _ := b.Maps(ctx, []string{k2}); got[0] != nil {
		t.Fatalf("a map without fields = %v, want absent", got[0])
	}
	var again storage.Txn
	again.IncrFloat(k1, "x", 0.5)
	must(t, b.Apply(ctx, again))
	f, _ = b.Fields(ctx, k1, []string{"x"})
	if x, _ := strconv.ParseFloat(f["x"], 64); x != 0.75 {
		t.Fatalf("x = %q, want 0.75", f["x"])
	}
}

func testConditions(t *testing.T, b storage.Backend) {
	g := Group("map", 2)
	ctx, k, other := ctxT(t), g[0], g[1]
	var create storage.Txn
	create.IfAbsent(k, "owner")
	create.Set(k, "owner", "a")
	create.Incr(other, "n", 1)
	must(t, b.Apply(ctx, create))
	wantKind(t, "second create-if-absent", b.Apply(ctx, create), errs.Conflict)
	if f, _ := b.Fields(ctx, other, []string{"n"}); f["n"] != "1" {
		t.Fatalf("a failed txn applied its ops: n = %q, want 1", f["n"])
	}
	var cas storage.Txn
	cas.IfEquals(k, "owner", "b")
	cas.Set(k, "owner", "c")
	wantKind(t, "compare with a wrong value", b.Apply(ctx, cas), errs.Conflict)
	var cas2 storage.Txn
	cas2.IfEquals(k, "owner", "a")
	cas2.IfAbsent(other, "m")
	cas2.Set(k, "owner", "c")
	must(t, b.Apply(ctx, cas2))
	if f, _ := b.Fields(ctx, k, []string{"owner"}); f["owner"] != "c" {
		t.Fatalf("owner = %q, want c", f["owner"])
	}
	var absentMap storage.Txn
	absentMap.IfEquals(Name("nomap"), "f", "")
	wantKind(t, "equality on a missing field", b.Apply(ctx, absentMap), errs.Conflict)
}

func testInvalidOp(t *testing.T, b storage.Backend) {
	ctx, k := ctxT(t), Name("map")
	var setup storage.Txn
	setup.Set(k, "s", "text")
	must(t, b.Apply(ctx, setup))
	var bad storage.Txn
	bad.Incr(k, "n", 1)
	bad.Incr(k, "s", 1)
	wantKind(t, "incr of a text field", b.Apply(ctx, bad), errs.Invalid)
	if f, _ := b.Fields(ctx, k, []string{"n"}); len(f) != 0 {
		t.Fatalf("an invalid txn applied its first op: %v", f)
	}
	wantKind(t, "unknown op", b.Apply(ctx, storage.Txn{Ops: []storage.Op{{Kind: 99, Key: k, Field: "f"}}}), errs.Invalid)
}

func testMapExpiry(t *testing.T, b storage.Backend) {
	g := Group("map", 2)
	ctx, past, future := ctxT(t), g[0], g[1]
	var tx storage.Txn
	tx.Incr(past, "n", 1)
	tx.Expire(past, time.Now().Add(-time.Second))
	tx.Incr(future, "n", 1)
	tx.Expire(future, time.Now().Add(time.Hour))
	must(t, b.Apply(ctx, tx))
	got, err := b.Maps(ctx, []string{past, future})
	must(t, err)
	if got[0] != nil {
		t.Fatalf("a map that expired reads %v, want absent", got[0])
	}
	if got[1]["n"] != "1" {
		t.Fatalf("a map expiring in an hour reads %v, want n 1", got[1])
	}
	if f, _ := b.Fields(ctx, past, []string{"n"}); len(f) != 0 {
		t.Fatalf("Fields of an expired map = %v", f)
	}
}

func testDelete(t *testing.T, b storage.Backend) {
	ctx, k, lk := ctxT(t), Name("map"), Name("log")
	var tx storage.Txn
	tx.Set(k, "a", "1")
	must(t, b.Apply(ctx, tx))
	_, err := b.Append(ctx, lk, 1, []byte("x"), 10, 0)
	must(t, err)
	must(t, b.Delete(ctx, []string{k, lk, Name("absent")}))
	if got, _ := b.Maps(ctx, []string{k}); got[0] != nil {
		t.Fatalf("deleted map reads %v", got[0])
	}
	if es, _ := b.Entries(ctx, lk, 0, 0); len(es) != 0 {
		t.Fatalf("deleted log has %d entries", len(es))
	}
}

func testConcurrentIncr(t *testing.T, b storage.Backend) {
	ctx, k := ctxT(t), Name("map")
	const workers, each = 8, 50
	concurrently(t, workers, each, func() error {
		var tx storage.Txn
		tx.Incr(k, "n", 1)
		tx.IncrFloat(k, "x", 0.5)
		return b.Apply(ctx, tx)
	})
	f, err := b.Fields(ctx, k, []string{"n", "x"})
	must(t, err)
	if f["n"] != strconv.Itoa(workers*each) || f["x"] != strconv.Itoa(workers*each/2) {
		t.Fatalf("after %d concurrent increments: %v", workers*each, f)
	}
}

// testCompareAndSet: concurrent read-modify-write loops guarded by a
// condition lose no update.
func testCompareAndSet(t *testing.T, b storage.Backend) {
	ctx, k := ctxT(t), Name("map")
	const workers, each = 4, 20
	concurrently(t, workers, each, func() error {
		for {
			f, err := b.Fields(ctx, k, []string{"v"})
			if err != nil {
				return err
			}
			var tx storage.Txn
			n := 0
			if s, ok := f["v"]; ok {
				n, _ = strconv.Atoi(s)
				tx.IfEquals(k, "v", s)
			} else {
				tx.IfAbsent(k, "v")
			}
			tx.Set(k, "v", strconv.Itoa(n+1))
			if err := b.Apply(ctx, tx); !errors.Is(err, errs.Conflict) {
				return err // nil: applied
			}
		}
	})
	if f, _ := b.Fields(ctx, k, []string{"v"}); f["v"] != strconv.Itoa(workers*each) {
		t.Fatalf("compare-and-set counter = %q, want %d", f["v"], workers*each)
	}
}

// concurrently calls fn each times in each of workers goroutines and
// waits for them; an error of fn is a test error and stops its worker.
func concurrently(t *testing.T, workers, each int, fn func() error) {
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				if err := fn(); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func testLogAppend(t *testing.T, b storage.Backend) {
	ctx, k := ctxT(t), Name("log")
	var seqs []uint64
	for i := range 5 {
		s, err := b.Append(ctx, k, 0, []byte{byte('a' + i)}, 100, time.Hour)
		must(t, err)
		seqs = append(seqs, s)
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i] != seqs[i-1]+1 {
			t.Fatalf("seqs %v are not consecutive", seqs)
		}
	}
	es, err := b.Entries(ctx, k, seqs[1], 2)
	must(t, err)
	if len(es) != 2 || es[0].Seq != seqs[2] || string(es[0].Data) != "c" || string(es[1].Data) != "d" {
		t.Fatalf("Entries after the 2nd, limit 2 = %v", es)
	}
	all, _ := b.Entries(ctx, k, 0, 0)
	if len(all) != 5 {
		t.Fatalf("Entries = %d, want 5", len(all))
	}
	if none, _ := b.Entries(ctx, Name("nolog"), 0, 0); len(none) != 0 {
		t.Fatalf("entries of a missing log: %v", none)
	}
}

func testLogKeep(t *testing.T, b storage.Backend) {
	ctx, k := ctxT(t), Name("log")
	s1, err := b.Append(ctx, k, 1000, []byte("a"), 3, 0)
	must(t, err)
	if s1 != 1000 {
		t.Fatalf("first seq = %d, want minSeq 1000", s1)
	}
	s2, _ := b.Append(ctx, k, 10, []byte("b"), 3, 0)
	if s2 != 1001 {
		t.Fatalf("seq below the last = %d, want last + 1 = 1001", s2)
	}
	s3, _ := b.Append(ctx, k, 5000, []byte("c"), 3, 0)
	if s3 != 5000 {
		t.Fatalf("seq = %d, want minSeq 5000", s3)
	}
	_, _ = b.Append(ctx, k, 0, []byte("d"), 3, 0)
	es, _ := b.Entries(ctx, k, 0, 0)
	if len(es) != 3 || string(es[0].Data) != "b" || es[2].Seq != 5001 {
		t.Fatalf("after 4 appends keeping 3: %v, want b c d (5001 last)", es)
	}
	seen := sync.Map{}
	concurrently(t, 8, 1, func() error {
		s, err := b.Append(ctx, k, 0, []byte("z"), 100, 0)
		if err == nil {
			if _, dup := seen.LoadOrStore(s, true); dup {
				t.Errorf("seq %d given twice", s)
			}
		}
		return err
	})
}

func testLogExpiry(t *testing.T, b storage.Backend) {
	ctx, k := ctxT(t), Name("log")
	_, err := b.Append(ctx, k, 0, []byte("a"), 10, 200*time.Millisecond)
	must(t, err)
	deadline := time.Now().Add(10 * time.Second)
	for {
		es, err := b.Entries(ctx, k, 0, 0)
		must(t, err)
		if len(es) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("a log with a 200 ms ttl still holds %d entries after 10 s", len(es))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func testCancelled(t *testing.T, b storage.Backend) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var tx storage.Txn
	k := Name("map")
	tx.Set(k, "a", "1")
	if err := b.Apply(ctx, tx); err == nil {
		t.Fatal("Apply with a cancelled context succeeded")
	}
	if err := b.PutDoc(ctx, Name("coll"), "a", []byte("1"), storage.Upsert); err == nil {
		t.Fatal("PutDoc with a cancelled context succeeded")
	}
	if got, _ := b.Maps(context.Background(), []string{k}); got[0] != nil {
		t.Fatalf("a cancelled Apply was applied: %v", got[0])
	}
}

// testLazyIncrements: a Lazy Txn of increments and expiries is applied
// and visible at once, like any other, and an increment of a text field
// in one is still Invalid.
func testLazyIncrements(t *testing.T, b storage.Backend) {
	ctx, k1, k2 := ctxT(t), Name("map"), Name("map")
	for range 3 {
		tx := storage.Txn{Lazy: true}
		tx.Incr(k1, "n", 2)
		tx.IncrFloat(k1, "v", 0.5)
		tx.Incr(k2, "n", 1)
		tx.Expire(k1, time.Now().Add(time.Hour))
		tx.Expire(k2, time.Now().Add(-time.Second))
		must(t, b.Apply(ctx, tx))
	}
	got, err := b.Maps(ctx, []string{k1, k2})
	must(t, err)
	if got[0]["n"] != "6" || got[0]["v"] != "1.5" {
		t.Fatalf("after 3 lazy txns: %v, want n 6, v 1.5", got[0])
	}
	if got[1] != nil {
		t.Fatalf("a map a lazy txn made expire reads %v", got[1])
	}
	var text storage.Txn
	text.Set(k1, "s", "text")
	must(t, b.Apply(ctx, text))
	bad := storage.Txn{Lazy: true}
	bad.Incr(k1, "s", 1)
	wantKind(t, "lazy increment of a text field", b.Apply(ctx, bad), errs.Invalid)
}
