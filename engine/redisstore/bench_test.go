package redisstore

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/redisstore/redistest"
	"github.com/kairoshq/kairos/engine/storage"
	"github.com/kairoshq/kairos/engine/storetest"
)

func benchStore(b *testing.B) *Store {
	url := redistest.URL(b)
	return mustOpen(b, Config{URL: url, Prefix: redistest.Prefix(b, url)})
}

// BenchmarkCommit: one batch of 256 events over 200 visitors (k = 64) per
// op: one MULTI/EXEC round trip.
func BenchmarkCommit(b *testing.B) { storetest.BenchCommit(b, benchStore(b)) }

func BenchmarkCommitParallel(b *testing.B) { storetest.BenchCommitParallel(b, benchStore(b)) }

// BenchmarkVisitors: one pipelined load of 200 visitors with k = 64
// factors and histories of 50 and 500 events.
func BenchmarkVisitors(b *testing.B) {
	for _, h := range []int{50, 500} {
		b.Run(fmt.Sprintf("history=%d", h), func(b *testing.B) {
			storetest.BenchVisitors(b, benchStore(b), h)
		})
	}
}

// BenchmarkSeen: one MGET of 256 event ids, half of them seen.
func BenchmarkSeen(b *testing.B) {
	s := benchStore(b)
	ids := make([]string, 256)
	for i := range ids {
		ids[i] = fmt.Sprintf("0190b7e2-6d0c-7a3e-9f1e-%012x", i)
	}
	if err := s.Commit(b.Context(), engineCommit(ids[:128])); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Seen(b.Context(), storetest.Marks(ids...)); err != nil {
			b.Fatal(err)
		}
	}
}

func engineCommit(ids []string) engine.Commit { return engine.Commit{Events: storetest.Marks(ids...)} }

// BenchmarkApply: one Txn of 200 ops (90 HINCRBY, 90 HINCRBYFLOAT, and an
// HSET and a PEXPIREAT on each of 10 maps of one hash tag) under one
// condition: one EVALSHA.
func BenchmarkApply(b *testing.B) {
	s := benchStore(b)
	var tx storage.Txn
	tx.IfAbsent("{bench}:lock", "held")
	at := time.Now().Add(time.Hour)
	for i := range 10 {
		k := fmt.Sprintf("{bench}:counts:%d", i)
		tx.Set(k, "updated", "1")
		for j := range 9 {
			tx.Incr(k, fmt.Sprintf("n%d", j), 1)
			tx.IncrFloat(k, fmt.Sprintf("v%d", j), 0.5)
		}
		tx.Expire(k, at)
	}
	if len(tx.Ops) != 200 {
		b.Fatalf("%d ops", len(tx.Ops))
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Apply(b.Context(), tx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApplyLazy: a Lazy Txn of 200 increments and expiries over 10
// maps without a common hash tag (the shape of engine/stats' counters):
// one MULTI/EXEC on one server, one script per slot on a cluster.
func BenchmarkApplyLazy(b *testing.B) {
	s := benchStore(b)
	tx := storage.Txn{Lazy: true}
	at := time.Now().Add(time.Hour)
	for i := range 10 {
		k := fmt.Sprintf("st:1h:i:sku-%d:1795442400", i)
		for j := range 9 {
			tx.Incr(k, fmt.Sprintf("n%d", j), 1)
			tx.IncrFloat(k, fmt.Sprintf("v%d", j), 0.5)
		}
		tx.Expire(k, at)
		tx.Expire(k, at)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Apply(b.Context(), tx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMaps: one pipelined read of 100 maps of 10 fields each.
func BenchmarkMaps(b *testing.B) {
	s := benchStore(b)
	keys := make([]string, 100)
	var tx storage.Txn
	for i := range keys {
		keys[i] = fmt.Sprintf("m:%d", i)
		for j := range 10 {
			tx.Set(keys[i], fmt.Sprintf("f%d", j), "12345")
		}
	}
	if err := s.Apply(b.Context(), tx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Maps(b.Context(), keys); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppend: one append of 200 bytes to a log keeping 100 entries,
// with a TTL, sequence numbers in Unix µs.
func BenchmarkAppend(b *testing.B) {
	s := benchStore(b)
	data := []byte(strings.Repeat("x", 200))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Append(b.Context(), "log", uint64(time.Now().UnixMicro()), data, 100, time.Hour); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDocs: a page of 100 documents of 200 bytes from the middle of
// a collection of n: ZRANGE BYLEX + HMGET in one script, O(log n + 100).
func BenchmarkDocs(b *testing.B) {
	for _, n := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			s := benchStore(b)
			ctx, coll := b.Context(), "items"
			doc := strings.Repeat("d", 200)
			for start := 0; start < n; start += 10_000 {
				_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
					for i := start; i < min(start+10_000, n); i++ {
						docPutScript.Run(ctx, p, []string{s.docsKey(coll), s.docIDsKey(coll), s.docsVerKey(coll)}, fmt.Sprintf("item-%07d", i), doc, "u")
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			after := fmt.Sprintf("item-%07d", n/2)
			b.ReportAllocs()
			for b.Loop() {
				ds, err := s.Docs(ctx, coll, after, 100)
				if err != nil || len(ds) != 100 {
					b.Fatal(len(ds), err)
				}
			}
		})
	}
}
