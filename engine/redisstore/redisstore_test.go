package redisstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/redisstore/redistest"
	"github.com/kairoshq/kairos/engine/storage"
	"github.com/kairoshq/kairos/engine/storetest"
)

// TestDefaultURL: the tests' default server (redistest) is the store's.
func TestDefaultURL(t *testing.T) {
	if redistest.DefaultURL != DefaultURL {
		t.Errorf("redistest.DefaultURL = %q, redisstore.DefaultURL = %q", redistest.DefaultURL, DefaultURL)
	}
}

func mustOpen(tb testing.TB, cfg Config) *Store {
	tb.Helper()
	s, err := Open(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func TestContract(t *testing.T) {
	url := redistest.URL(t)
	storetest.Run(t, func(t *testing.T) engine.Store {
		return mustOpen(t, Config{URL: url, Prefix: redistest.Prefix(t, url)})
	})
}

func TestPersistence(t *testing.T) {
	url := redistest.URL(t)
	storetest.RunPersistence(t, func(t *testing.T) func(t *testing.T) engine.Store {
		prefix := redistest.Prefix(t, url)
		return func(t *testing.T) engine.Store { return mustOpen(t, Config{URL: url, Prefix: prefix}) }
	})
}

// TestReplicasShareRows runs ItemRows from two stores (as two engine
// replicas would) concurrently on the same prefix.
func TestReplicasShareRows(t *testing.T) {
	url := redistest.URL(t)
	prefix := redistest.Prefix(t, url)
	a := mustOpen(t, Config{URL: url, Prefix: prefix})
	b := mustOpen(t, Config{URL: url, Prefix: prefix})
	ids := make([]string, 200)
	for i := range ids {
		ids[i] = fmt.Sprintf("item-%d", i)
	}
	rev := make([]string, len(ids))
	for i := range ids {
		rev[i] = ids[len(ids)-1-i]
	}
	type res struct {
		rows []int32
		err  error
	}
	ch := make(chan res, 2)
	for _, st := range []struct {
		s   *Store
		ids []string
	}{{a, ids}, {b, rev}} {
		go func() {
			rows, err := st.s.ItemRows(context.Background(), st.ids)
			ch <- res{rows, err}
		}()
	}
	r1, r2 := <-ch, <-ch
	if r1.err != nil || r2.err != nil {
		t.Fatal(r1.err, r2.err)
	}
	got, err := a.ItemRows(t.Context(), ids)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int32]bool{}
	for _, r := range got {
		if r < 0 || int(r) >= len(ids) || seen[r] {
			t.Fatalf("rows %v are not a permutation of 0..%d", got, len(ids)-1)
		}
		seen[r] = true
	}
	rowIDs, err := b.RowIDs(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		if rowIDs[got[i]] != id {
			t.Fatalf("RowIDs[%d] = %s, want %s", got[i], rowIDs[got[i]], id)
		}
	}
}

func TestDedupWindowIsTheTTL(t *testing.T) {
	url := redistest.URL(t)
	prefix := redistest.Prefix(t, url)
	s := mustOpen(t, Config{URL: url, Prefix: prefix, DedupWindow: 1500 * time.Millisecond})
	ctx := t.Context()
	if err := s.Commit(ctx, engine.Commit{Events: storetest.MarksOf("v1", "e1")}); err != nil {
		t.Fatal(err)
	}
	ttl, err := s.Client().PTTL(ctx, prefix+":seen:{v1}:e1").Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= 0 || ttl > 1500*time.Millisecond {
		t.Fatalf("TTL of the mark is %v, want (0, 1.5s]", ttl)
	}
	// The mark disappears once its TTL has passed.
	deadline := time.Now().Add(10 * time.Second)
	for {
		seen, err := s.Seen(ctx, storetest.MarksOf("v1", "e1"))
		if err != nil {
			t.Fatal(err)
		}
		if !seen[0] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the mark is still seen 10s after a 1.5s window")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestKeyLayout(t *testing.T) {
	url := redistest.URL(t)
	prefix := redistest.Prefix(t, url)
	s := mustOpen(t, Config{URL: url, Prefix: prefix, HistoryLimit: 3})
	ctx := t.Context()
	err := s.Commit(ctx, engine.Commit{Events: storetest.MarksOf("v1", "e1"), Visitors: []engine.VisitorUpdate{
		{ID: "v1", Append: storetest.Events("x", 0, 5), Factors: []float32{1, 2}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := engine.ItemsOn(s).PutItem(ctx, storetest.Item("i1", 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ItemRows(ctx, []string{"i1"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveItemStates(ctx, []engine.ItemState{{Row: 0, Count: 1}}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutBlob(ctx, "engine/xtx", []byte{1}); err != nil {
		t.Fatal(err)
	}
	// The storage primitives.
	if err := s.PutDoc(ctx, "offers", "o1", []byte(`{}`), storage.Create); err != nil {
		t.Fatal(err)
	}
	var tx storage.Txn
	tx.Incr("caps:v1", "o1", 1)
	if err := s.Apply(ctx, tx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "promos:v1", 0, []byte("p"), 10, 0); err != nil {
		t.Fatal(err)
	}
	c := s.Client()
	want := map[string]string{
		":v:{v1}": "hash", ":h:{v1}": "string", ":seen:{v1}:e1": "string", ":d:{items}": "hash", ":d:{items}:ids": "zset", ":d:{items}:v": "string",
		":{rows}": "hash", ":{rows}:ids": "list", ":states:{s0}": "hash", ":blob:engine/xtx": "string",
		":format": "string", ":d:{offers}": "hash", ":d:{offers}:ids": "zset", ":d:{offers}:v": "string",
		":m:caps:v1": "hash", ":l:promos:v1": "zset",
	}
	keys, err := c.Keys(ctx, prefix+":*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != len(want) {
		t.Fatalf("keys %v, want %d keys", keys, len(want))
	}
	for suffix, typ := range want {
		if got := c.Type(ctx, prefix+suffix).Val(); got != typ {
			t.Errorf("%s%s is a %q, want %q", prefix, suffix, got, typ)
		}
	}
	// 5 events over a limit of 3 (slack 1): trimmed to 3.
	if n := c.HGet(ctx, prefix+":v:{v1}", "n").Val(); n != "3" {
		t.Errorf("history count is %s, want the limit 3", n)
	}
	h := c.Get(ctx, prefix+":h:{v1}").Val()
	evs, err := decodeHistory(h, 100)
	if err != nil || len(evs) != 3 || evs[0] != storetest.Event("x", 2) {
		t.Errorf("history string holds %d events from %+v (%v), want events 2..4", len(evs), evs, err)
	}
	if f := c.HGet(ctx, prefix+":v:{v1}", "f").Val(); f != "\x00\x00\x80\x3f\x00\x00\x00\x40" {
		t.Errorf("factors field is %q, want little-endian float32 1, 2", f)
	}
}

// TestHistoryTrim commits many small batches over a small limit: the
// stored history stays within the limit plus its slack, and reads always
// show the newest events.
func TestHistoryTrim(t *testing.T) {
	url := redistest.URL(t)
	prefix := redistest.Prefix(t, url)
	const limit = 20
	s := mustOpen(t, Config{URL: url, Prefix: prefix, HistoryLimit: limit})
	ctx := t.Context()
	r := rand.New(rand.NewPCG(5, 5))
	next := 0
	for range 60 {
		n := 1 + r.IntN(7)
		err := s.Commit(ctx, engine.Commit{Visitors: []engine.VisitorUpdate{
			{ID: "a", Append: storetest.Events("a", next, next+n)},
			{ID: "b", Append: storetest.Events("b", next, next+1)},
			{ID: "a", Append: storetest.Events("a", next+n, next+n+1)},
		}})
		if err != nil {
			t.Fatal(err)
		}
		next += n + 1
		count, err := s.Client().HGet(ctx, prefix+":v:{a}", "n").Int()
		if err != nil {
			t.Fatal(err)
		}
		if count > limit+limit/4 {
			t.Fatalf("stored history of %d events, want at most %d", count, limit+limit/4)
		}
		vs, err := s.Visitors(ctx, []string{"a"})
		if err != nil {
			t.Fatal(err)
		}
		want := storetest.Events("a", max(next-limit, 0), next)
		if len(vs[0].History) != len(want) || vs[0].History[0] != want[0] || vs[0].History[len(want)-1] != want[len(want)-1] {
			t.Fatalf("history of %d events from %s, want %d from %s", len(vs[0].History), vs[0].History[0].ID, len(want), want[0].ID)
		}
	}
}

func TestDecodeHistoryRejectsCorruption(t *testing.T) {
	var b []byte
	for i := range 3 {
		e := storetest.Event("c", i)
		b = appendHistoryFrame(b, &e)
	}
	for _, bad := range []string{string(b[:len(b)-1]), string(b) + "\x01\x00", string(b[:2])} {
		if _, err := decodeHistory(bad, 10); err == nil {
			t.Errorf("decodeHistory(%d bytes) accepted a damaged value", len(bad))
		}
	}
	evs, err := decodeHistory(string(b), 2)
	if err != nil || len(evs) != 2 || evs[0] != storetest.Event("c", 1) {
		t.Fatalf("decodeHistory(limit 2) = %v, %v", evs, err)
	}
}

func TestUnavailable(t *testing.T) {
	// Nothing listens on port 1.
	_, err := Open(t.Context(), Config{URL: "redis://127.0.0.1:1/0", DialTimeout: time.Second})
	if !errors.Is(err, engine.ErrUnavailable) {
		t.Fatalf("Open of an unreachable server: err %v, want ErrUnavailable", err)
	}
	url := redistest.URL(t)
	s := mustOpen(t, Config{URL: url, Prefix: redistest.Prefix(t, url)})
	s.Close()
	if _, err := s.Visitors(t.Context(), []string{"x"}); !errors.Is(err, engine.ErrUnavailable) {
		t.Fatalf("Visitors on a closed store: err %v, want ErrUnavailable", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).Defaults().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	err := Config{URL: "http://x", Prefix: "a b*", HistoryLimit: -1, DedupWindow: -time.Second, DialTimeout: -1, ReadTimeout: -1, WriteTimeout: -1, PoolSize: -1}.Defaults().Validate()
	for _, field := range []string{"URL", "Prefix", "HistoryLimit", "DedupWindow", "DialTimeout", "ReadTimeout", "WriteTimeout", "PoolSize"} {
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("Validate does not report %s: %v", field, err)
		}
	}
	if _, err := Open(t.Context(), Config{Prefix: "bad prefix"}); !errors.Is(err, engine.ErrInvalid) {
		t.Fatalf("Open with a bad config: err %v, want ErrInvalid", err)
	}
}

// TestWrongTypeIsAnError: a key of the prefix overwritten with another
// type (by someone else) makes Visitors fail, never return a silently
// empty visitor.
func TestWrongTypeIsAnError(t *testing.T) {
	url := redistest.URL(t)
	prefix := redistest.Prefix(t, url)
	s := mustOpen(t, Config{URL: url, Prefix: prefix})
	ctx := t.Context()
	if err := s.Client().RPush(ctx, prefix+":h:{v2}", "x").Err(); err != nil {
		t.Fatal(err)
	}
	_, err := s.Visitors(ctx, []string{"v1", "v2"})
	if err == nil || errors.Is(err, engine.ErrUnavailable) || errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("Visitors over a list-typed history key: err %v, want a plain server error", err)
	}
}
