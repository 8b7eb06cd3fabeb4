// Package backendtest opens every storage.Backend of the project — the
// in-memory reference (storagetest.Mem), engine/embedded and
// engine/redisstore — for the tests of the stores written on the
// primitives (promo, stats, attention, experiments), so that each runs
// its contract suite on every backend from one place.
//
// The embedded store runs in a fresh temporary directory; Redis under a
// fresh key prefix of the test server (redistest: skipped when the
// server does not answer, a failure under CI=true), and of the local
// Redis Cluster with KAIROS_CLUSTER_TESTS=1.
package backendtest

import (
	"context"
	"io"
	"testing"

	"github.com/kairoshq/kairos/engine/embedded"
	"github.com/kairoshq/kairos/engine/redisstore"
	"github.com/kairoshq/kairos/engine/redisstore/redistest"
	"github.com/kairoshq/kairos/engine/storage"
	"github.com/kairoshq/kairos/engine/storage/storagetest"
	"github.com/kairoshq/kairos/internal/clustertest"
)

// Closer is a backend that can be closed.
type Closer interface {
	storage.Backend
	io.Closer
}

// Kind is one backend: its name and how to create new backing data.
type Kind struct {
	Name string
	// New creates new, empty backing data for t and returns its opener:
	// every call opens a store on the same data (after the previous one
	// was closed). Stores opened are closed on t's cleanup too.
	New func(tb testing.TB) (open func(tb testing.TB) Closer)
}

// Kinds returns the backends: "mem", "embedded", "redis" and
// "redis-cluster" (the local Redis Cluster of scripts/clusters.sh: skipped
// unless KAIROS_CLUSTER_TESTS=1, see internal/clustertest).
func Kinds() []Kind {
	return []Kind{
		{"mem", func(t testing.TB) func(t testing.TB) Closer {
			m := storagetest.NewMem(nil)
			return func(t testing.TB) Closer { return nopCloser{m} }
		}},
		{"embedded", func(t testing.TB) func(t testing.TB) Closer {
			dir := t.TempDir()
			return func(t testing.TB) Closer {
				t.Helper()
				s, err := embedded.Open(dir, embedded.Config{Sync: embedded.SyncNever})
				if err != nil {
					t.Fatalf("embedded.Open: %v", err)
				}
				t.Cleanup(func() { s.Close() })
				return s
			}
		}},
		{"redis", func(t testing.TB) func(t testing.TB) Closer {
			return redisOpener(t, redistest.URL(t))
		}},
		{"redis-cluster", func(t testing.TB) func(t testing.TB) Closer {
			return redisOpener(t, clustertest.Get(t).RedisURL)
		}},
	}
}

// redisOpener returns the opener of a Redis store at url under a fresh
// prefix (its keys deleted on t's cleanup).
func redisOpener(t testing.TB, url string) func(t testing.TB) Closer {
	prefix := redistest.Prefix(t, url)
	return func(t testing.TB) Closer {
		t.Helper()
		s, err := redisstore.Open(context.Background(), redisstore.Config{URL: url, Prefix: prefix})
		if err != nil {
			t.Fatalf("redisstore.Open: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
}

// Open returns a new, empty backend of kind k (closed on tb's cleanup).
func (k Kind) Open(tb testing.TB) storage.Backend { return k.New(tb)(tb) }

// Run runs fn as a subtest per backend; open returns a new, empty
// backend (closed on t's cleanup).
func Run(t *testing.T, fn func(t *testing.T, open func(tb testing.TB) storage.Backend)) {
	for _, k := range Kinds() {
		t.Run(k.Name, func(t *testing.T) { fn(t, k.Open) })
	}
}

// Bench runs fn as a sub-benchmark "backend=<name>" per backend that
// keeps its data outside the process's maps (embedded and Redis; the
// in-memory reference is left out), on a new, empty backend.
func Bench(b *testing.B, fn func(b *testing.B, be storage.Backend)) {
	for _, k := range Kinds() {
		if k.Name == "mem" {
			continue
		}
		b.Run("backend="+k.Name, func(b *testing.B) { fn(b, k.Open(b)) })
	}
}

type nopCloser struct{ *storagetest.Mem }

func (nopCloser) Close() error { return nil }
