package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

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

func TestClusterBlobChunksSpreadOverMasters(t *testing.T) {
	// A chunked blob's chunks hash to slots of their own: 30 chunks land
	// on all three masters, and the blob reads back whole.
	s := clusterStore(t)
	s.blobChunk = 1000
	ctx := t.Context()
	data := randomBytes(30_000, 5)
	if err := s.PutBlob(ctx, "model/current", data); err != nil {
		t.Fatal(err)
	}
	_, m := chunkTTLs(t, s, "model/current")
	cc := s.Client().(*redis.ClusterClient)
	masters := map[string]bool{}
	for i := range m.Chunks {
		node, err := cc.MasterForKey(ctx, s.chunkKey("model/current", m.Gen, i))
		if err != nil {
			t.Fatal(err)
		}
		masters[node.Options().Addr] = true
	}
	if m.Chunks != 30 || len(masters) != 3 {
		t.Errorf("%d chunks on %d masters, want 30 on 3", m.Chunks, len(masters))
	}
	readBack(t, s, "model/current", data)
}

// TestClusterCommitSurvivesMasterFailover kills -9 (by PID) the master of
// some visitors' slots under a bounded commit load (one writer, a commit
// of 3 visitors every 5 ms, each acknowledged only once a replica has it:
// WaitReplicas 1, and a read of them), and checks that commits and reads
// stall during the failover and then succeed (none fails), that no acknowledged commit is lost and none is applied
// twice (every acknowledged event is in its visitor's history exactly
// once, and Seen), and that the killed node rejoins as a replica. The
// stall is logged.
func TestClusterCommitSurvivesMasterFailover(t *testing.T) {
	c := clustertest.Get(t)
	c.WaitHealthy(t, time.Minute)
	url := c.RedisURL
	s := mustOpen(t, Config{URL: url, Prefix: redistest.Prefix(t, url), WaitReplicas: 1, WaitTimeout: 500 * time.Millisecond,
		FailoverTimeout: 30 * time.Second, DialTimeout: 500 * time.Millisecond})
	ctx := t.Context()
	cc := s.Client().(*redis.ClusterClient)
	const nvis = 60
	visitors := make([]string, nvis)
	for i := range visitors {
		visitors[i] = fmt.Sprintf("fo-visitor-%d", i)
	}
	m, err := cc.MasterForKey(ctx, s.visitorKey(visitors[0]))
	if err != nil {
		t.Fatal(err)
	}
	victimAddr := m.Options().Addr
	victim, err := clustertest.RedisNode(victimAddr)
	if err != nil {
		t.Fatal(err)
	}
	onVictim := map[string]bool{}
	for _, v := range visitors {
		if m, err := cc.MasterForKey(ctx, s.visitorKey(v)); err == nil && m.Options().Addr == victimAddr {
			onVictim[v] = true
		}
	}

	var (
		mu       sync.Mutex
		acked    = map[string][]string{} // visitor → acknowledged event ids, in order
		okAt     []time.Time
		victimOK []time.Time // acknowledged commits touching the victim's slots
		failures int
		lastErr  error
		// readFailures counts Visitors calls that failed: reads are
		// retried by the hook through the failover, so none should.
		readFailures int
	)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			var cm engine.Commit
			touchesVictim := false
			for j := range 3 {
				v := visitors[(3*n+j)%nvis]
				ev := storetest.Event(v, n)
				cm.Visitors = append(cm.Visitors, engine.VisitorUpdate{ID: v, Append: []engine.HistoryEvent{ev}})
				cm.Events = append(cm.Events, engine.EventRef{Visitor: v, ID: ev.ID})
				touchesVictim = touchesVictim || onVictim[v]
			}
			cctx, cancel := context.WithTimeout(ctx, 40*time.Second)
			err := s.Commit(cctx, cm)
			// A read of the same visitors through the retry hook.
			_, rerr := s.Visitors(cctx, []string{cm.Visitors[0].ID, cm.Visitors[1].ID, cm.Visitors[2].ID})
			cancel()
			mu.Lock()
			if rerr != nil {
				readFailures++
				t.Logf("read %d failed: %v", n, rerr)
			}
			if err == nil {
				for _, r := range cm.Events {
					acked[r.Visitor] = append(acked[r.Visitor], r.ID)
				}
				okAt = append(okAt, time.Now())
				if touchesVictim {
					victimOK = append(victimOK, time.Now())
				}
			} else {
				failures++
				if lastErr == nil || failures%20 == 0 {
					t.Logf("commit %d failed at %s: %v", n, time.Now().Format("15:04:05.000"), err)
				}
				lastErr = err
			}
			mu.Unlock()
		}
	}()
	stopWriter := func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		<-done
	}
	defer stopWriter()
	count := func(ts *[]time.Time, after time.Time) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, at := range *ts {
			if at.After(after) {
				n++
			}
		}
		return n
	}
	clustertest.WaitFor(t, 20*time.Second, "100 commits before the kill", func() bool { return count(&okAt, time.Time{}) >= 100 })

	killedAt := time.Now()
	c.KillRedis(t, victim)
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			c.StartRedis(t, victim)
			c.WaitHealthy(t, 2*time.Minute)
		}
	})
	t.Logf("killed master %s (%d of %d visitors) after %d commits", victimAddr, len(onVictim), nvis, count(&okAt, time.Time{}))
	clustertest.WaitFor(t, 60*time.Second, "commits to the killed master's visitors to resume", func() bool {
		return count(&victimOK, killedAt.Add(time.Second)) >= 50
	})
	stopWriter()

	mu.Lock()
	stall := clustertest.LongestGap(victimOK)
	t.Logf("commit stall on the failed-over slots: %v (longest gap between acknowledged commits touching them); %d commits acknowledged, %d failed (last: %v)",
		stall.Round(time.Millisecond), len(okAt), failures, lastErr)
	mu.Unlock()
	if readFailures > 0 {
		t.Errorf("%d reads failed during the failover, want none (retried)", readFailures)
	}
	if m, err := cc.MasterForKey(ctx, s.visitorKey(visitors[0])); err != nil || m.Options().Addr == victimAddr {
		t.Fatalf("after the failover the visitors' slots are still on %s (%v)", victimAddr, err)
	}

	// Nothing acknowledged is lost or applied twice.
	vs, err := s.Visitors(ctx, visitors)
	if err != nil {
		t.Fatal(err)
	}
	var refs []engine.EventRef
	for _, v := range vs {
		have := map[string]int{}
		for _, h := range v.History {
			have[h.ID]++
		}
		for _, id := range acked[v.ID] {
			if have[id] != 1 {
				t.Errorf("acknowledged event %s of %s is %d times in its history, want once", id, v.ID, have[id])
			}
			refs = append(refs, engine.EventRef{Visitor: v.ID, ID: id})
		}
	}
	seen, err := s.Seen(ctx, refs)
	if err != nil {
		t.Fatal(err)
	}
	lost := 0
	for _, b := range seen {
		if !b {
			lost++
		}
	}
	if lost > 0 {
		t.Errorf("%d acknowledged marks of %d lost", lost, len(refs))
	}

	// The killed node comes back as a replica.
	c.StartRedis(t, victim)
	restarted = true
	node := redis.NewClient(&redis.Options{Addr: victimAddr})
	defer node.Close()
	clustertest.WaitFor(t, 60*time.Second, "the killed master to rejoin as a replica", func() bool {
		role, err := node.Do(ctx, "ROLE").Slice()
		return err == nil && len(role) > 0 && role[0] == "slave"
	})
	c.WaitHealthy(t, 2*time.Minute)
	if _, err := s.Visitors(ctx, visitors); err != nil {
		t.Fatalf("Visitors after the rejoin: %v", err)
	}
}
