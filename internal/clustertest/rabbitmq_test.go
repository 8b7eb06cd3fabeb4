package clustertest_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/kairoshq/kairos/internal/clustertest"
)

// TestRabbitQuorumQueueLeaderLoss declares a quorum queue on the 3-node
// RabbitMQ cluster, publishes to it with confirms (one publisher, at most
// ~200 messages/s) and consumes it, both connected to the queue's leader
// node; it kills -9 that node and checks that publishing and consuming go
// on through another node's URL, and that every confirmed message is
// delivered. The publish stall (longest gap between confirms) and the
// consume stall are logged.
func TestRabbitQuorumQueueLeaderLoss(t *testing.T) {
	c := clustertest.Get(t)
	c.WaitHealthy(t, time.Minute)
	name := fmt.Sprintf("clustertest.%016x", rand.Uint64())

	conn, ch := dial(t, c.AMQPURLs[0])
	if _, err := ch.QueueDeclare(name, true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
		t.Fatalf("declare quorum queue %s: %v", name, err)
	}
	conn.Close()
	t.Cleanup(func() { deleteQueue(t, c.AMQPURLs, name) })

	leader := queueLeader(t, c, 1, name)
	t.Logf("quorum queue %s: leader kairos-c%d@localhost", name, leader)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		mu          sync.Mutex
		confirmed   = map[int]bool{}
		confirmedAt []time.Time
		received    = map[int]int{}
		receivedAt  []time.Time
		failed      [2]int // publishes not confirmed, consumer connections that failed
	)
	var wg sync.WaitGroup
	pubCtx, stopPub := context.WithCancel(ctx)
	defer stopPub()
	wg.Add(2)
	go func() { // publisher
		defer wg.Done()
		cl := &client{urls: c.AMQPURLs, next: leader - 1}
		defer cl.close()
		for seq := 1; pubCtx.Err() == nil; {
			time.Sleep(5 * time.Millisecond)
			ok := cl.publish(pubCtx, name, seq)
			mu.Lock()
			if ok {
				confirmed[seq] = true
				confirmedAt = append(confirmedAt, time.Now())
				seq++
			} else if pubCtx.Err() == nil {
				failed[0]++
			}
			mu.Unlock()
		}
	}()
	go func() { // consumer
		defer wg.Done()
		cl := &client{urls: c.AMQPURLs, next: leader - 1}
		defer cl.close()
		for ctx.Err() == nil {
			deliveries, err := cl.consume(ctx, name)
			if err != nil {
				mu.Lock()
				failed[1]++
				mu.Unlock()
				time.Sleep(50 * time.Millisecond)
				continue
			}
			for d := range deliveries {
				seq, _ := strconv.Atoi(string(d.Body))
				mu.Lock()
				received[seq]++
				receivedAt = append(receivedAt, time.Now())
				mu.Unlock()
				_ = d.Ack(false)
			}
			cl.close()
		}
	}()
	counts := func() (int, int) { mu.Lock(); defer mu.Unlock(); return len(confirmedAt), len(receivedAt) }

	clustertest.WaitFor(t, 30*time.Second, "200 confirms before the kill", func() bool { n, _ := counts(); return n >= 200 })
	pubBefore, recBefore := counts()
	c.KillRabbit(t, leader)
	t.Logf("killed the leader kairos-c%d@localhost after %d confirms, %d deliveries", leader, pubBefore, recBefore)
	clustertest.WaitFor(t, 90*time.Second, "publishing and consuming to go on after the leader loss", func() bool {
		p, r := counts()
		return p >= pubBefore+200 && r >= recBefore+200
	})
	stopPub()
	mu.Lock()
	published := len(confirmedAt)
	pubStall := clustertest.LongestGap(confirmedAt)
	mu.Unlock()
	clustertest.WaitFor(t, 60*time.Second, "every confirmed message to be delivered", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for seq := range confirmed {
			if received[seq] == 0 {
				return false
			}
		}
		return true
	})
	cancel()
	wg.Wait()

	mu.Lock()
	dup := 0
	for _, n := range received {
		if n > 1 {
			dup++
		}
	}
	t.Logf("rabbitmq leader-loss stall: publish %v, consume %v (longest gaps between confirms / deliveries); %d confirmed, all delivered, %d redelivered; failed attempts: publishes %d, consumer connections %d",
		pubStall.Round(time.Millisecond), clustertest.LongestGap(receivedAt).Round(time.Millisecond), published, dup, failed[0], failed[1])
	mu.Unlock()

	survivor := leader%clustertest.RabbitNodes + 1
	if l := queueLeader(t, c, survivor, name); l == leader {
		t.Fatalf("leader still kairos-c%d@localhost after it was killed", l)
	} else {
		t.Logf("new leader kairos-c%d@localhost", l)
	}
	c.StartRabbit(t, leader)
	c.WaitHealthy(t, 2*time.Minute)
}

// client is one AMQP connection that moves to the next node's URL when it
// fails.
type client struct {
	urls []string
	next int
	conn *amqp.Connection
	ch   *amqp.Channel
}

func (cl *client) connect() error {
	if cl.ch != nil && !cl.ch.IsClosed() {
		return nil
	}
	cl.close()
	u := cl.urls[cl.next%len(cl.urls)]
	cl.next++
	conn, err := amqp.DialConfig(u, amqp.Config{Dial: amqp.DefaultDial(time.Second)})
	if err != nil {
		return fmt.Errorf("dial %s: %w", u, err)
	}
	ch, err := conn.Channel()
	if err != nil {
		conn.Close()
		return fmt.Errorf("channel on %s: %w", u, err)
	}
	cl.conn, cl.ch = conn, ch
	return nil
}

func (cl *client) close() {
	if cl.conn != nil {
		cl.conn.Close()
	}
	cl.conn, cl.ch = nil, nil
}

// publish publishes seq persistently with a confirm; false (and the
// connection closed) when it is not confirmed within 5 s.
func (cl *client) publish(ctx context.Context, queue string, seq int) bool {
	if err := cl.connect(); err != nil {
		return false
	}
	if cl.ch.Confirm(false) != nil { // idempotent on a confirm channel
		cl.close()
		return false
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	dc, err := cl.ch.PublishWithDeferredConfirmWithContext(pctx, "", queue, false, false, amqp.Publishing{
		DeliveryMode: amqp.Persistent,
		Body:         []byte(strconv.Itoa(seq)),
	})
	if err != nil {
		cl.close()
		return false
	}
	ok, err := dc.WaitContext(pctx)
	if err != nil || !ok {
		cl.close()
		return false
	}
	return true
}

// consume starts a consumer with manual acks on queue.
func (cl *client) consume(ctx context.Context, queue string) (<-chan amqp.Delivery, error) {
	if err := cl.connect(); err != nil {
		return nil, err
	}
	if err := cl.ch.Qos(100, 0, false); err != nil {
		cl.close()
		return nil, err
	}
	d, err := cl.ch.ConsumeWithContext(ctx, queue, "", false, false, false, false, nil)
	if err != nil {
		cl.close()
		return nil, err
	}
	return d, nil
}

func dial(t *testing.T, url string) (*amqp.Connection, *amqp.Channel) {
	t.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	ch, err := conn.Channel()
	if err != nil {
		conn.Close()
		t.Fatalf("channel on %s: %v", url, err)
	}
	return conn, ch
}

// queueLeader returns the node number of the leader of quorum queue name,
// as RabbitMQ node n reports it.
func queueLeader(t *testing.T, c *clustertest.Clusters, n int, name string) int {
	t.Helper()
	out := c.Rabbitmqctl(t, n, "list_queues", "name", "leader", "--no-table-headers")
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == name {
			l, err := clustertest.RabbitNode(f[1])
			if err != nil {
				t.Fatal(err)
			}
			return l
		}
	}
	t.Fatalf("queue %s not listed by node %d: %q", name, n, out)
	return 0
}

// deleteQueue deletes queue name through the first node that answers.
func deleteQueue(t *testing.T, urls []string, name string) {
	var errs []error
	for _, u := range urls {
		conn, err := amqp.Dial(u)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		defer conn.Close()
		ch, err := conn.Channel()
		if err == nil {
			_, err = ch.QueueDelete(name, false, false, false)
		}
		if err == nil {
			return
		}
		errs = append(errs, err)
	}
	t.Errorf("cleanup: delete queue %s: %v", name, errors.Join(errs...))
}

// TestRabbitLeadersBalanced declares quorum queues through node 1 only
// (as a replica that dials the first URL of its list does) and checks
// that their leaders are not all on node 1: clusters.sh configures
// queue_leader_locator = balanced, without which node 1 would lead every
// partition queue and do the work of the whole cluster.
func TestRabbitLeadersBalanced(t *testing.T) {
	c := clustertest.Get(t)
	c.WaitHealthy(t, time.Minute)
	prefix := fmt.Sprintf("clustertest.%016x", rand.Uint64())
	conn, ch := dial(t, c.AMQPURLs[0])
	defer conn.Close()
	var names []string
	for i := range 9 {
		name := prefix + "." + strconv.Itoa(i)
		if _, err := ch.QueueDeclare(name, true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
			t.Fatalf("declare quorum queue %s: %v", name, err)
		}
		names = append(names, name)
		t.Cleanup(func() { deleteQueue(t, c.AMQPURLs, name) })
	}
	leaders := map[int]int{}
	for _, name := range names {
		leaders[queueLeader(t, c, 1, name)]++
	}
	t.Logf("leaders of %d queues declared through node 1, by node: %v", len(names), leaders)
	if len(leaders) < 2 {
		t.Errorf("every leader is on node %v: want them spread over the nodes (queue_leader_locator = balanced)", leaders)
	}
}
