// Package backends opens the real store backends for tests: the embedded
// store in a directory and Redis (through redistest: skipped when Redis
// does not answer, a failure under CI=true), each closed on the test's
// cleanup.
package backends

import (
	"context"
	"testing"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/embedded"
	"github.com/kairoshq/kairos/engine/redisstore"
	"github.com/kairoshq/kairos/engine/redisstore/redistest"
)

// Names are the backends Each runs on, in order.
var Names = []string{"embedded", "redis"}

// Each runs f in a subtest per backend (named after it) on a fresh store.
func Each(t *testing.T, f func(t *testing.T, store engine.Store)) {
	t.Helper()
	for _, name := range Names {
		t.Run(name, func(t *testing.T) { f(t, Open(t, name)) })
	}
}

// Open returns a fresh store of the backend name ("embedded" in a
// temporary directory, "redis" under a key prefix of its own).
func Open(t testing.TB, name string) engine.Store {
	t.Helper()
	switch name {
	case "embedded":
		return OpenEmbedded(t, t.TempDir())
	case "redis":
		url := redistest.URL(t)
		return OpenRedis(t, url, redistest.Prefix(t, url))
	}
	t.Fatalf("unknown backend %q", name)
	return nil
}

// OpenEmbedded opens the embedded store in dir, without fsync.
func OpenEmbedded(t testing.TB, dir string) *embedded.Store {
	t.Helper()
	s, err := embedded.Open(dir, embedded.Config{Sync: embedded.SyncNever})
	if err != nil {
		t.Fatalf("open embedded: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// OpenRedis opens the Redis store at url under prefix.
func OpenRedis(t testing.TB, url, prefix string) *redisstore.Store {
	t.Helper()
	s, err := redisstore.Open(context.Background(), redisstore.Config{URL: url, Prefix: prefix})
	if err != nil {
		t.Fatalf("open redis: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
