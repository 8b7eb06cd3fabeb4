package rabbitmq

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine/storage/storagetest"
	"github.com/kairoshq/kairos/internal/clustertest"
	"github.com/kairoshq/kairos/signals"
)

// clusterConfig is a partitioned, quorum Config on the local 3-node
// RabbitMQ cluster (KAIROS_CLUSTER_TESTS=1), listing node first first.
func clusterConfig(t *testing.T, c *clustertest.Clusters, first int) Config {
	cfg := testConfig(t)
	var urls []string
	for k := range clustertest.RabbitNodes {
		urls = append(urls, c.AMQPURLs[(first-1+k)%clustertest.RabbitNodes])
	}
	cfg.URL = strings.Join(urls, ",")
	cfg.Partitions = testPartitions
	cfg.QueueType = QueueQuorum
	return cfg
}

// gaps records event times and reports the longest gap between two.
type gaps struct {
	mu   sync.Mutex
	last time.Time
	max  time.Duration
	at   time.Time // when the longest gap ended
}

func (g *gaps) mark() {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := time.Now()
	if !g.last.IsZero() && now.Sub(g.last) > g.max {
		g.max, g.at = now.Sub(g.last), now
	}
	g.last = now
}

func (g *gaps) longest() time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.max
}

// TestClusterNodeLoss publishes with confirms and consumes through the
// Bus on the 3-node cluster, connected to node 1, and kills node 1 (kill
// -9) meanwhile: the Bus fails over to another node, no confirmed event
// is lost, consumption continues, each visitor's events are applied in
// order. The publish and consume stalls are logged.
func TestClusterNodeLoss(t *testing.T) {
	c := clustertest.Get(t)
	c.WaitHealthy(t, 2*time.Minute)
	cfg := clusterConfig(t, c, 1)
	a := newAdmin(t, c.AMQPURLs[1]) // survives the loss of node 1
	deletePartitions(t, a, cfg.Prefix, cfg.Partitions)
	b := newTestBus(t, cfg, a)
	app := newApplier()
	var consumed gaps
	handler := app.handler("r0")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- b.Consume(ctx, func(ctx context.Context, batch []signals.Event) error {
			consumed.mark()
			return handler(ctx, batch)
		})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Consume: %v", err)
		}
	}()
	pub := newPublisher(b, "nl", 20)
	var confirmed gaps
	stopPublishing := pub.publishEvery(t, 5*time.Millisecond, confirmed.mark)
	app.waitAll(t, pub.sent())
	restarted := false
	defer func() {
		if !restarted {
			c.StartRabbit(t, 1)
			c.WaitHealthy(t, 2*time.Minute)
		}
	}()
	killedAt := time.Now()
	c.KillRabbit(t, 1)
	// Publish and consume on for a while after the failover.
	before := len(pub.sent())
	deadline := time.Now().Add(60 * time.Second)
	for len(pub.sent()) < before+200 {
		if time.Now().After(deadline) {
			t.Fatalf("fewer than 200 events confirmed within 60 s of the node loss")
		}
		time.Sleep(50 * time.Millisecond)
	}
	app.waitAll(t, pub.sent())
	t.Logf("node 1 killed: publish stall %v, consume stall %v (the Bus is now on URL %d); 200 more events confirmed and applied %v after the kill",
		confirmed.longest().Round(time.Millisecond), consumed.longest().Round(time.Millisecond), b.pub.urlIndex(), time.Since(killedAt).Round(time.Millisecond))
	c.StartRabbit(t, 1)
	c.WaitHealthy(t, 2*time.Minute)
	restarted = true
	stopPublishing()
	sent := pub.sent()
	app.waitAll(t, sent)
	app.checkOrder(t, sent)
	t.Logf("%d events confirmed, all applied once, in order per visitor", len(sent))
}

// TestClusterReplicaTakeover is TestPartitionTakeover on the 3-node
// cluster, each replica connected to another node first.
func TestClusterReplicaTakeover(t *testing.T) {
	c := clustertest.Get(t)
	c.WaitHealthy(t, 2*time.Minute)
	base := clusterConfig(t, c, 1)
	a := newAdmin(t, c.AMQPURLs[0])
	deletePartitions(t, a, base.Prefix, base.Partitions)
	const ttl = 3 * time.Second
	store := storagetest.NewMem(nil)
	app := newApplier()
	var reps []*replica
	for i := range 3 {
		cfg := clusterConfig(t, c, i+1)
		cfg.Prefix = base.Prefix
		reps = append(reps, startReplica(t, cfg, a, store, fmt.Sprintf("r%d", i), app, ttl))
	}
	runTakeover(t, reps, app, ttl, func(name string) *replica {
		cfg := clusterConfig(t, c, 3)
		cfg.Prefix = base.Prefix
		return startReplica(t, cfg, a, store, name, app, ttl)
	})
}
