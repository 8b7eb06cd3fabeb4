package redisstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kairoshq/kairos/engine/redisstore/redistest"
	"github.com/kairoshq/kairos/engine/storage"
	"github.com/kairoshq/kairos/engine/storage/storagetest"
	"github.com/kairoshq/kairos/internal/errs"
)

// TestStorageContract runs the contract suite of the storage primitives
// against the real server, a fresh prefix per subtest.
func TestStorageContract(t *testing.T) {
	url := redistest.URL(t)
	storagetest.Run(t, func(t *testing.T) storage.Backend {
		return mustOpen(t, Config{URL: url, Prefix: redistest.Prefix(t, url)})
	})
}

func testStore(t *testing.T) *Store {
	t.Helper()
	url := redistest.URL(t)
	return mustOpen(t, Config{URL: url, Prefix: redistest.Prefix(t, url)})
}

// TestLogSeqsExact: sequence numbers above 2^53 (where float64 scores and
// Lua numbers are no longer exact) and Unix-microsecond ones come back
// exactly, consecutive, and Entries pages on them exactly.
func TestLogSeqsExact(t *testing.T) {
	s := testStore(t)
	ctx := t.Context()
	for _, base := range []uint64{uint64(time.Date(2026, 12, 5, 6, 0, 0, 0, time.UTC).UnixMicro()), 1<<53 + 1, 1<<63 + 12345, math.MaxUint64 - 3} {
		k := storagetest.Name("log")
		var seqs []uint64
		for i := range 3 {
			seq, err := s.Append(ctx, k, base, []byte{'a' + byte(i)}, 10, time.Hour)
			if err != nil {
				t.Fatalf("append at %d: %v", base, err)
			}
			seqs = append(seqs, seq)
		}
		if seqs[0] != base || seqs[1] != base+1 || seqs[2] != base+2 {
			t.Fatalf("seqs from %d = %v, want %d, +1, +2", base, seqs, base)
		}
		es, err := s.Entries(ctx, k, base, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) != 1 || es[0].Seq != base+1 || string(es[0].Data) != "b" {
			t.Fatalf("entries after %d limit 1 = %v, want %d b", base, es, base+1)
		}
		if es, _ := s.Entries(ctx, k, base+2, 0); len(es) != 0 {
			t.Fatalf("entries after the last = %v", es)
		}
	}
}

// TestLogBinaryData: entries hold any bytes, including the ones a member
// format might use as separators.
func TestLogBinaryData(t *testing.T) {
	s := testStore(t)
	k := storagetest.Name("log")
	data := [][]byte{{}, {0, 0xff, ' ', '\n'}, []byte(strings.Repeat("x", 5000))}
	for _, d := range data {
		if _, err := s.Append(t.Context(), k, 0, d, 10, 0); err != nil {
			t.Fatal(err)
		}
	}
	es, err := s.Entries(t.Context(), k, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != len(data) {
		t.Fatalf("%d entries, want %d", len(es), len(data))
	}
	for i, e := range es {
		if string(e.Data) != string(data[i]) || e.Seq != uint64(i+1) {
			t.Fatalf("entry %d = %d %q, want %d %q", i, e.Seq, e.Data, i+1, data[i])
		}
	}
	if _, err := s.Append(t.Context(), k, 0, nil, 0, 0); !errors.Is(err, errs.Invalid) {
		t.Fatalf("append keeping 0: %v, want Invalid", err)
	}
}

// TestDocsPages: Docs pages through more documents than one script call
// returns, with and without a limit.
func TestDocsPages(t *testing.T) {
	s := testStore(t)
	ctx, coll := t.Context(), storagetest.Name("coll")
	const n = 2*docsPage + 7
	// Write through a pipeline of the same script the store uses.
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range n {
			docPutScript.Run(ctx, p, []string{s.docsKey(coll), s.docIDsKey(coll), s.docsVerKey(coll)}, fmt.Sprintf("%06d", i), strconv.Itoa(i), "u")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	all, err := s.Docs(ctx, coll, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != n {
		t.Fatalf("Docs = %d documents, want %d", len(all), n)
	}
	for i, d := range all {
		if d.ID != fmt.Sprintf("%06d", i) || string(d.JSON) != strconv.Itoa(i) {
			t.Fatalf("Docs[%d] = %s %s", i, d.ID, d.JSON)
		}
	}
	page, err := s.Docs(ctx, coll, "000010", docsPage+5)
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != docsPage+5 || page[0].ID != "000011" || page[len(page)-1].ID != fmt.Sprintf("%06d", 10+docsPage+5) {
		t.Fatalf("Docs after 000010, limit %d: %d docs from %s", docsPage+5, len(page), page[0].ID)
	}
	if v, _ := s.DocsVersion(ctx, coll); v != n {
		t.Fatalf("version after %d puts = %d", n, v)
	}
}

// TestApplyRedisSemantics covers what Redis could refuse half-way through
// a script: every such case is found before anything is applied.
func TestApplyRedisSemantics(t *testing.T) {
	s := testStore(t)
	ctx, k := t.Context(), storagetest.Name("map")
	var setup storage.Txn
	setup.Set(k, "big", strconv.FormatInt(math.MaxInt64-10, 10))
	setup.Set(k, "zero-padded", "01")
	setup.Set(k, "spaced", " 1.5")
	setup.Set(k, "x", "1.5")
	if err := s.Apply(ctx, setup); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		op   storage.Op
	}{
		{"overflow", storage.Op{Kind: storage.OpIncr, Key: k, Field: "big", Int: 100}},
		{"integer Redis does not parse", storage.Op{Kind: storage.OpIncr, Key: k, Field: "zero-padded", Int: 1}},
		{"float with a space", storage.Op{Kind: storage.OpIncrFloat, Key: k, Field: "spaced", Float: 1}},
		{"integer increment of a float", storage.Op{Kind: storage.OpIncr, Key: k, Field: "x", Int: 1}},
		{"infinite increment", storage.Op{Kind: storage.OpIncrFloat, Key: k, Field: "n", Float: math.Inf(1)}},
		{"result overflows float64", storage.Op{Kind: storage.OpIncrFloat, Key: k, Field: "x", Float: math.MaxFloat64}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tx storage.Txn
			tx.Set(k, "marker", "1")
			tx.Ops = append(tx.Ops, tc.op)
			if tc.op.Kind == storage.OpIncrFloat && tc.op.Float == math.MaxFloat64 {
				tx.IncrFloat(k, "x", math.MaxFloat64) // twice: beyond float64
			}
			if err := s.Apply(ctx, tx); !errors.Is(err, errs.Invalid) {
				t.Fatalf("Apply: %v, want Invalid", err)
			}
			if f, _ := s.Fields(ctx, k, []string{"marker"}); len(f) != 0 {
				t.Fatalf("an invalid txn applied its first op: %v", f)
			}
		})
	}
	// Within one txn, an increment sees the ops before it.
	var tx storage.Txn
	tx.Set(k, "n", "text")
	tx.Set(k, "n", "5")
	tx.Incr(k, "n", 2)
	tx.IncrFloat(k, "f", 0.5)
	tx.IncrFloat(k, "f", 0.5)
	tx.Incr(k, "f", 1) // "1" after the two float increments
	if err := s.Apply(ctx, tx); err != nil {
		t.Fatal(err)
	}
	if f, _ := s.Fields(ctx, k, []string{"n", "f"}); f["n"] != "7" || f["f"] != "2" {
		t.Fatalf("fields = %v, want n 7, f 2", f)
	}
	// A key of another type under the prefix (written by someone else)
	// is an Internal error.
	other := storagetest.Name("map")
	if err := s.rdb.Set(ctx, s.mapKey(other), "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	var wrong storage.Txn
	wrong.Set(k, "marker", "1")
	wrong.Set(other, "f", "v")
	if err := s.Apply(ctx, wrong); !errors.Is(err, errs.Internal) || !strings.Contains(err.Error(), "holds a string") {
		t.Fatalf("Apply to a string key: %v, want Internal naming the type", err)
	}
	if f, _ := s.Fields(ctx, k, []string{"marker"}); len(f) != 0 {
		t.Fatalf("a txn with a key of another type applied its first op: %v", f)
	}
	if _, err := s.Fields(ctx, other, []string{"f"}); !errors.Is(err, errs.Internal) || !strings.Contains(err.Error(), "WRONGTYPE") {
		t.Fatalf("Fields of a string key: %v, want Internal WRONGTYPE", err)
	}
}

// TestIncrFloatFormat: HINCRBYFLOAT formats differently from strconv
// ('g', -1; Redis computes in long double and prints up to 17 digits
// without an exponent), but what it writes parses back with
// strconv.ParseFloat to the float64 sum, or within an ulp or two of it.
func TestIncrFloatFormat(t *testing.T) {
	s := testStore(t)
	ctx := t.Context()
	for _, xs := range [][]float64{{0.1, 0.2}, {1e20, 1}, {1e-9, 2e-9}, {-3.25}, {1.5e300, 1.5e300}, {1, -1}} {
		k := storagetest.Name("map")
		var tx storage.Txn
		want := 0.0
		for _, x := range xs {
			tx.IncrFloat(k, "x", x)
			want += x
		}
		if err := s.Apply(ctx, tx); err != nil {
			t.Fatalf("%v: %v", xs, err)
		}
		f, _ := s.Fields(ctx, k, []string{"x"})
		got, err := strconv.ParseFloat(f["x"], 64)
		if err != nil {
			t.Fatalf("sum of %v stored as %q: %v", xs, f["x"], err)
		}
		if math.Abs(got-want) > 1e-15*math.Abs(want) {
			t.Fatalf("sum of %v = %q, want %v", xs, f["x"], want)
		}
	}
}

// TestApplyOneScript: a txn over many keys and conditions is one script
// call that declares every key it touches (KEYS), as Redis Cluster
// needs.
func TestApplyDeclaresKeys(t *testing.T) {
	s := testStore(t)
	ctx := t.Context()
	var tx storage.Txn
	keys := []string{storagetest.Name("{tag}map"), storagetest.Name("{tag}map")}
	tx.IfAbsent(keys[0], "lock")
	tx.Set(keys[0], "lock", "1")
	tx.Incr(keys[1], "n", 1)
	tx.Expire(keys[1], time.Now().Add(time.Hour))
	hook := &keysHook{}
	s.rdb.AddHook(hook)
	if err := s.Apply(ctx, tx); err != nil {
		t.Fatal(err)
	}
	got := hook.keys()
	want := []string{s.mapKey(keys[0]), s.mapKey(keys[1])}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("script KEYS = %v, want %v", got, want)
	}
	ttl, err := s.rdb.PTTL(ctx, s.mapKey(keys[1])).Result()
	if err != nil || ttl <= 0 {
		t.Fatalf("PTTL of the expiring map = %v %v", ttl, err)
	}
}

// keysHook records the KEYS of the EVALSHA/EVAL commands it sees.
type keysHook struct {
	mu   sync.Mutex
	seen [][]string
}

func (h *keysHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *keysHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		args := cmd.Args()
		if name := strings.ToLower(cmd.Name()); (name == "evalsha" || name == "eval") && len(args) > 2 {
			n, _ := args[2].(int)
			var ks []string
			for _, a := range args[3 : 3+n] {
				ks = append(ks, fmt.Sprint(a))
			}
			h.mu.Lock()
			h.seen = append(h.seen, ks)
			h.mu.Unlock()
		}
		return next(ctx, cmd)
	}
}
func (h *keysHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h *keysHook) keys() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.seen) == 0 {
		return nil
	}
	return h.seen[len(h.seen)-1]
}

// TestStorageUnavailable: a closed client, a server that does not answer
// (the read times out) and an expired context are errs.Unavailable.
func TestStorageUnavailable(t *testing.T) {
	s := testStore(t)
	s.Close()
	var tx storage.Txn
	tx.Set("k", "f", "v")
	if err := s.Apply(t.Context(), tx); !errors.Is(err, errs.Unavailable) {
		t.Fatalf("Apply on a closed store: %v, want Unavailable", err)
	}

	// A listener that accepts connections and never answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	mute := &Store{rdb: redis.NewClient(&redis.Options{Addr: ln.Addr().String(), ReadTimeout: 200 * time.Millisecond, MaxRetries: -1, Protocol: 2, DisableIdentity: true}), p: "mute:"}
	defer func() {
		mute.rdb.Close()
		ln.Close()
		wg.Wait()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()
	if err := mute.Apply(t.Context(), tx); !errors.Is(err, errs.Unavailable) {
		t.Fatalf("Apply on a server that does not answer: %v, want Unavailable", err)
	}
	if _, err := mute.Append(t.Context(), "l", 0, nil, 1, 0); !errors.Is(err, errs.Unavailable) {
		t.Fatalf("Append on a server that does not answer: %v, want Unavailable", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Millisecond)
	defer cancel()
	<-ctx.Done()
	if _, err := mute.Doc(ctx, "c", "id"); !errors.Is(err, errs.Unavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Doc with an expired context: %v, want Unavailable and DeadlineExceeded", err)
	}
	// The context's deadline bounds a call, not only the read timeout
	// (of a minute here), as Open configures the client.
	slow := &Store{rdb: redis.NewClient(&redis.Options{Addr: ln.Addr().String(), ReadTimeout: time.Minute, MaxRetries: -1, Protocol: 2, DisableIdentity: true, ContextTimeoutEnabled: true}), p: "mute:"}
	defer slow.rdb.Close()
	ctx2, cancel2 := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel2()
	if _, err := slow.DocsVersion(ctx2, "c"); !errors.Is(err, errs.Unavailable) {
		t.Fatalf("DocsVersion past its context's deadline: %v, want Unavailable", err)
	}
}

// TestFormat: the first open of an empty namespace writes the format key;
// a namespace of another format, or of the layout before formats, is
// refused with an error naming the prefix, the formats and the upgrade
// path.
func TestFormat(t *testing.T) {
	url := redistest.URL(t)
	ctx := t.Context()
	prefix := redistest.Prefix(t, url)
	s := mustOpen(t, Config{URL: url, Prefix: prefix})
	if v, err := s.rdb.Get(ctx, prefix+":format").Result(); err != nil || v != strconv.Itoa(Format) {
		t.Fatalf("format key = %q %v, want %d", v, err, Format)
	}
	var tx storage.Txn
	tx.Incr("n", "n", 1)
	if err := s.Apply(ctx, tx); err != nil {
		t.Fatal(err)
	}
	mustOpen(t, Config{URL: url, Prefix: prefix}) // a reopen accepts its own format

	// Concurrent first opens of an empty namespace all succeed.
	fresh := redistest.Prefix(t, url)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o, err := Open(ctx, Config{URL: url, Prefix: fresh})
			if err != nil {
				t.Errorf("concurrent first open: %v", err)
				return
			}
			o.Close()
		}()
	}
	wg.Wait()

	for _, tc := range []struct {
		name  string
		setup func(c redis.UniversalClient, p string) error
		found string
	}{
		{"old promo definitions", func(c redis.UniversalClient, p string) error {
			return c.HSet(ctx, p+":promo:offers", "o1", `{"id":"o1"}`).Err()
		}, ":promo:offers"},
		{"old stats counters", func(c redis.UniversalClient, p string) error {
			return c.HSet(ctx, p+":st:1h:i:sku-42:1795442400", "view", 3).Err()
		}, ":st:1h:i:sku-42:1795442400"},
		{"old attention", func(c redis.UniversalClient, p string) error {
			return c.HSet(ctx, p+":att:/home", "hero", 1200).Err()
		}, ":att:/home"},
		{"old experiments", func(c redis.UniversalClient, p string) error {
			return c.Set(ctx, p+":xp:version", 3, 0).Err()
		}, ":xp:version"},
		{"visitors without a format key", func(c redis.UniversalClient, p string) error {
			return c.HSet(ctx, p+":v:alice", "s", "x").Err()
		}, ":v:alice"},
		{"format 2 (before Redis Cluster)", func(c redis.UniversalClient, p string) error {
			return c.Set(ctx, p+":format", 2, 0).Err()
		}, `format "2"`},
		{"another format", func(c redis.UniversalClient, p string) error {
			return c.Set(ctx, p+":format", 9, 0).Err()
		}, `format "9"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := redistest.Prefix(t, url)
			if err := tc.setup(s.rdb, p); err != nil {
				t.Fatal(err)
			}
			_, err := Open(ctx, Config{URL: url, Prefix: p})
			if !errors.Is(err, errs.Invalid) {
				t.Fatalf("Open: %v, want Invalid", err)
			}
			for _, want := range []string{strconv.Quote(p), "format " + strconv.Itoa(Format), "kairos replay", "re-create the definitions", tc.found} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not name %q", err, want)
				}
			}
			if n, _ := s.rdb.Exists(ctx, p+":format").Result(); n != 0 && !strings.Contains(tc.name, "format") {
				t.Errorf("a refused open wrote the format key")
			}
		})
	}
}

// TestApplyLargeTxn: a txn incrementing more fields of one map than the
// script reads in one HMGET (and more than Lua's stack takes in one
// unpack) applies whole.
func TestApplyLargeTxn(t *testing.T) {
	s := testStore(t)
	ctx, k := t.Context(), storagetest.Name("map")
	var tx storage.Txn
	const n = 9000
	for i := range n {
		tx.Incr(k, strconv.Itoa(i), int64(i))
	}
	if err := s.Apply(ctx, tx); err != nil {
		t.Fatal(err)
	}
	m, err := s.Maps(ctx, []string{k})
	if err != nil {
		t.Fatal(err)
	}
	if len(m[0]) != n || m[0]["8999"] != "8999" || m[0]["1000"] != "1000" {
		t.Fatalf("map of %d fields, 8999 → %q", len(m[0]), m[0]["8999"])
	}
}
