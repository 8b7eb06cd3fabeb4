package experimentstest_test

import (
	"context"
	"io"
	"testing"

	"github.com/kairoshq/kairos/engine/embedded"
	"github.com/kairoshq/kairos/engine/experiments"
	"github.com/kairoshq/kairos/engine/experiments/experimentstest"
	"github.com/kairoshq/kairos/engine/redisstore"
	"github.com/kairoshq/kairos/engine/redisstore/redistest"
	"github.com/kairoshq/kairos/engine/storage"
)

// The suite on experiments.BackendStore over the real backends: the
// embedded store and Redis (the storage primitives of each).

func openEmbedded(t *testing.T, dir string) *embedded.Store {
	t.Helper()
	s, err := embedded.Open(dir, embedded.Config{Sync: embedded.SyncNever})
	if err != nil {
		t.Fatalf("open embedded: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openRedis(t *testing.T, url, prefix string) *redisstore.Store {
	t.Helper()
	s, err := redisstore.Open(context.Background(), redisstore.Config{URL: url, Prefix: prefix})
	if err != nil {
		t.Fatalf("open redis: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// closer is the experiments store over a backend that closes.
type closer struct {
	*experiments.BackendStore
	io.Closer
}

func TestEmbeddedBackend(t *testing.T) {
	experimentstest.RunBackend(t, func(t *testing.T) storage.Backend { return openEmbedded(t, t.TempDir()) })
	experimentstest.RunPersistence(t, func(t *testing.T) func(t *testing.T) experimentstest.Closer {
		dir := t.TempDir()
		return func(t *testing.T) experimentstest.Closer {
			s := openEmbedded(t, dir)
			return closer{experiments.NewStore(s), s}
		}
	})
}

func TestRedisBackend(t *testing.T) {
	url := redistest.URL(t)
	experimentstest.RunBackend(t, func(t *testing.T) storage.Backend { return openRedis(t, url, redistest.Prefix(t, url)) })
	experimentstest.RunPersistence(t, func(t *testing.T) func(t *testing.T) experimentstest.Closer {
		prefix := redistest.Prefix(t, url)
		return func(t *testing.T) experimentstest.Closer {
			s := openRedis(t, url, prefix)
			return closer{experiments.NewStore(s), s}
		}
	})
}
