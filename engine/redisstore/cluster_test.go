package redisstore

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/redisstore/redistest"
	"github.com/kairoshq/kairos/engine/storage"
	"github.com/kairoshq/kairos/engine/storage/storagetest"
	"github.com/kairoshq/kairos/engine/storetest"
	"github.com/kairoshq/kairos/internal/clustertest"
	"github.com/kairoshq/kairos/internal/errs"
	"github.com/kairoshq/kairos/internal/redisconn"
)

// The tests of this file run on the local Redis Cluster
// (scripts/clusters.sh: 3 masters, 3 replicas on 127.0.0.1:7001-7006),
// only with KAIROS_CLUSTER_TESTS=1 (internal/clustertest).

// clusterStore opens a store on the local cluster under a fresh prefix
// (its keys deleted on cleanup, on every master).
func clusterStore(t *testing.T) *Store {
	t.Helper()
	url := clustertest.Get(t).RedisURL
	return mustOpen(t, Config{URL: url, Prefix: redistest.Prefix(t, url)})
}

func TestClusterContract(t *testing.T) {
	url := clustertest.Get(t).RedisURL
	storetest.Run(t, func(t *testing.T) engine.Store {
		s := mustOpen(t, Config{URL: url, Prefix: redistest.Prefix(t, url)})
		if !s.Cluster() {
			t.Fatalf("a store on %s is not on a cluster", url)
		}
		return s
	})
}

func TestClusterPersistence(t *testing.T) {
	url := clustertest.Get(t).RedisURL
	storetest.RunPersistence(t, func(t *testing.T) func(t *testing.T) engine.Store {
		prefix := redistest.Prefix(t, url)
		return func(t *testing.T) engine.Store { return mustOpen(t, Config{URL: url, Prefix: prefix}) }
	})
}

func TestClusterStorageContract(t *testing.T) {
	url := clustertest.Get(t).RedisURL
	storagetest.Run(t, func(t *testing.T) storage.Backend {
		return mustOpen(t, Config{URL: url, Prefix: redistest.Prefix(t, url)})
	})
}

// TestClusterApplyAcrossSlots: a Txn whose maps are in different slots is
// refused, naming its keys, and applies nothing; with a common hash tag
// it applies.
func TestClusterApplyAcrossSlots(t *testing.T) {
	s := clusterStore(t)
	ctx := t.Context()
	var tx storage.Txn
	tx.Set("caps:alice", "o1", "1")
	tx.Set("caps:bob", "o1", "1")
	err := s.Apply(ctx, tx)
	if !errors.Is(err, errs.Invalid) || !strings.Contains(err.Error(), "caps:alice") || !strings.Contains(err.Error(), "caps:bob") || !strings.Contains(err.Error(), "hash tag") {
		t.Fatalf("Apply across slots: %v, want Invalid naming both keys and the hash tag rule", err)
	}
	ms, err := s.Maps(ctx, []string{"caps:alice", "caps:bob"})
	if err != nil || ms[0] != nil || ms[1] != nil {
		t.Fatalf("a refused Txn wrote %v (%v)", ms, err)
	}
	tx = storage.Txn{}
	tx.Set("{alice}:caps", "o1", "1")
	tx.Incr("{alice}:cool", "r1", 2)
	if err := s.Apply(ctx, tx); err != nil {
		t.Fatalf("Apply with one hash tag: %v", err)
	}
	// A Lazy Txn of increments may span slots: applied per slot.
	lazy := storage.Txn{Lazy: true}
	for i := range 50 {
		lazy.Incr(fmt.Sprintf("count:%d", i), "n", int64(i))
	}
	if err := s.Apply(ctx, lazy); err != nil {
		t.Fatalf("Lazy Apply across slots: %v", err)
	}
	keys := make([]string, 50)
	for i := range keys {
		keys[i] = fmt.Sprintf("count:%d", i)
	}
	ms, err = s.Maps(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range ms {
		if want := fmt.Sprint(i); (i == 0 && m != nil && m["n"] != "0") || (i > 0 && m["n"] != want) {
			t.Fatalf("count:%d = %v, want n=%s", i, m, want)
		}
	}
}

// TestClusterKeyPlacement: a visitor's hash, history and marks are in one
// slot (as the server computes it: CLUSTER KEYSLOT), and the visitors
// and item-state shards of a commit are spread over every master.
func TestClusterKeyPlacement(t *testing.T) {
	s := clusterStore(t)
	ctx := t.Context()
	cc := s.Client().(*redis.ClusterClient)
	var c engine.Commit
	for i := range 60 {
		id := fmt.Sprintf("visitor-%d", i)
		evs := storetest.Events(id, 0, 2)
		c.Visitors = append(c.Visitors, engine.VisitorUpdate{ID: id, Append: evs})
		c.Events = append(c.Events, engine.EventRef{Visitor: id, ID: evs[0].ID}, engine.EventRef{Visitor: id, ID: evs[1].ID})
	}
	if err := s.Commit(ctx, c); err != nil {
		t.Fatal(err)
	}
	masters := map[string]bool{}
	for _, r := range c.Events {
		keys := []string{s.visitorKey(r.Visitor), s.historyKey(r.Visitor), s.seenKey(r)}
		for _, k := range keys {
			slot, err := cc.ClusterKeySlot(ctx, k).Result()
			if err != nil {
				t.Fatal(err)
			}
			if int(slot) != redisconn.KeySlot(keys[0]) {
				t.Fatalf("key %s in slot %d, the visitor's hash %s in %d", k, slot, keys[0], redisconn.KeySlot(keys[0]))
			}
			if n, err := cc.Exists(ctx, k).Result(); err != nil || n != 1 {
				t.Fatalf("key %s: exists %d (%v)", k, n, err)
			}
		}
		m, err := cc.MasterForKey(ctx, keys[0])
		if err != nil {
			t.Fatal(err)
		}
		masters[m.Options().Addr] = true
	}
	if len(masters) != 3 {
		t.Errorf("60 visitors on %d masters, want 3", len(masters))
	}
	shards := map[string]bool{}
	for sh := range StateShards {
		m, err := cc.MasterForKey(ctx, s.statesKey(sh))
		if err != nil {
			t.Fatal(err)
		}
		shards[m.Options().Addr] = true
	}
	if len(shards) != 3 {
		t.Errorf("%d item-state shards on %d masters, want 3", StateShards, len(shards))
	}
}
