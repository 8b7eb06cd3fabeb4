package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/kairoshq/kairos/signals"
	"github.com/kairoshq/kairos/signals/bustest"
)

// testPartitions is the partition count of the tests: enough for every
// replica of a test to own several.
const testPartitions = 12

// partitionConfig is testConfig with partitions.
func partitionConfig(t testing.TB) Config {
	cfg := testConfig(t)
	cfg.Partitions = testPartitions
	return cfg
}

// deletePartitions deletes the partition queues of prefix at cleanup
// (newTestBus deletes the rest of the topology).
func deletePartitions(t testing.TB, a *admin, prefix string, n int) {
	t.Cleanup(func() {
		ch, err := a.conn.Channel()
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		defer ch.Close()
		for i := range n {
			if _, err := ch.QueueDelete(newNames(prefix, "x").partition(i), false, false, false); err != nil {
				t.Errorf("cleanup: delete partition %d: %v", i, err)
				return
			}
		}
	})
}

// TestPartitionsContract runs the bus contract on a single replica that
// owns every partition (no Assigner).
func TestPartitionsContract(t *testing.T) {
	bustest.Run(t, func(t *testing.T) bustest.Fixture {
		cfg := partitionConfig(t)
		a := newAdmin(t, cfg.URL)
		deletePartitions(t, a, cfg.Prefix, cfg.Partitions)
		b := newTestBus(t, cfg, a)
		consistentHashAvailable(t, b)
		return bustest.Fixture{
			Bus:         b,
			InjectRaw:   a.injectRaw(cfg.Prefix),
			DeadLetters: a.deadLetters(cfg.Prefix),
			ArrayBodies: true,
		}
	})
}

// TestPartitionsSpreadVisitors publishes one message for each of 2000
// visitors with no consumer: every partition queue gets a share, and each
// visitor's messages are in one partition.
func TestPartitionsSpreadVisitors(t *testing.T) {
	cfg := partitionConfig(t)
	a := newAdmin(t, cfg.URL)
	deletePartitions(t, a, cfg.Prefix, cfg.Partitions)
	b := newTestBus(t, cfg, a)
	consistentHashAvailable(t, b)
	const visitors = 2000
	events := bustest.Events("spread", visitors, 2, time.Now())
	if err := b.Publish(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	where := map[string]int{}
	messages := 0
	for i := range cfg.Partitions {
		msgs := a.getAll(b.names.partition(i))
		messages += len(msgs)
		here := map[string]bool{}
		for _, m := range msgs {
			res, err := signals.DecodeMessage(m.Body, time.Now(), b.cfg.Limits)
			if err != nil {
				t.Fatal(err)
			}
			keys := keysOf(&m, len(res.Events))
			if keys == nil {
				t.Fatalf("partition %d: a message without a routing key per event (header %s: %v)", i, headerKeys, m.Headers[headerKeys])
			}
			for k, e := range res.Events {
				if keys[k] != e.Visitor {
					t.Errorf("event %s of visitor %s keyed %q", e.ID, e.Visitor, keys[k])
				}
				if p, ok := where[e.Visitor]; ok && p != i {
					t.Errorf("visitor %s in partitions %d and %d", e.Visitor, p, i)
				}
				if p := PartitionOf(e.Visitor, cfg.Partitions); p != i {
					t.Errorf("visitor %s in partition %d, PartitionOf says %d", e.Visitor, i, p)
				}
				where[e.Visitor] = i
				here[e.Visitor] = true
			}
		}
		if len(here) < visitors/cfg.Partitions/3 {
			t.Errorf("partition %d got %d of %d visitors, want about %d", i, len(here), visitors, visitors/cfg.Partitions)
		}
	}
	if len(where) != visitors {
		t.Errorf("%d visitors found in the partitions, want %d", len(where), visitors)
	}
	// The events of many visitors share a message: one per partition
	// here (each holds fewer than MaxMessageEvents).
	if messages != cfg.Partitions {
		t.Errorf("%d events of %d visitors in %d messages, want one per partition (%d)", len(events), visitors, messages, cfg.Partitions)
	}
}

// chanAssigner is an Assigner the test drives.
type chanAssigner struct{ ch chan []int }

func (c chanAssigner) Assign(ctx context.Context, n int) <-chan []int {
	out := make(chan []int)
	go func() {
		defer close(out)
		for {
			select {
			case s := <-c.ch:
				select {
				case out <- s:
				case <-ctx.Done():
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// TestPartitionReassignment moves partitions between two replicas while
// events flow: every event is applied, in publish order per visitor, and
// a replica consumes only what it owns once the handoff is done.
func TestPartitionReassignment(t *testing.T) {
	cfg := partitionConfig(t)
	a := newAdmin(t, cfg.URL)
	deletePartitions(t, a, cfg.Prefix, cfg.Partitions)
	assigners := []chanAssigner{{make(chan []int, 1)}, {make(chan []int, 1)}}
	app := newApplier()
	var buses []*Bus
	for i, as := range assigners {
		c := cfg
		c.Replica, c.Assigner = "r"+strconv.Itoa(i), as
		buses = append(buses, newTestBus(t, c, a))
	}
	consistentHashAvailable(t, buses[0])
	const visitors = 40
	names := make([]string, visitors)
	for v := range names {
		names[v] = fmt.Sprintf("ra-v%d", v)
	}
	where := partitionsOf(buses[0], names)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, b := range buses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := b.Consume(ctx, app.handler(b.cfg.Replica)); err != nil {
				t.Errorf("Consume %s: %v", b.cfg.Replica, err)
			}
		}()
	}
	defer func() { cancel(); wg.Wait() }()
	even, odd := []int{}, []int{}
	for p := range cfg.Partitions {
		if p%2 == 0 {
			even = append(even, p)
		} else {
			odd = append(odd, p)
		}
	}
	all := append(slices.Clone(even), odd...)
	slices.Sort(all)
	steps := [][2][]int{{all, {}}, {even, odd}, {odd, even}, {{}, all}, {even, odd}}
	pub := newPublisher(buses[0], "ra", visitors)
	for _, st := range steps {
		// Tell both; the order of the two news varies as it would between
		// replicas.
		assigners[0].ch <- st[0]
		assigners[1].ch <- st[1]
		pub.publish(t, 5)
	}
	pub.publish(t, 5)
	app.waitAll(t, pub.sent())
	app.checkOrder(t, pub.sent())
	// After the last step, r1 alone consumes odd partitions: publish more
	// and check who applied them.
	app.reset()
	pub.publish(t, 3)
	app.waitAll(t, pub.sent())
	owner := map[int]string{}
	for _, p := range even {
		owner[p] = "r0"
	}
	for _, p := range odd {
		owner[p] = "r1"
	}
	for v, who := range app.appliedBy() {
		p := where[v]
		if who != owner[p] {
			t.Errorf("visitor %s (partition %d) applied by %s, want %s", v, p, who, owner[p])
		}
	}
}

// partitionsOf returns the partition of each visitor (PartitionOf).
func partitionsOf(b *Bus, visitors []string) map[string]int {
	where := map[string]int{}
	for _, v := range visitors {
		where[v] = PartitionOf(v, b.cfg.Partitions)
	}
	return where
}

// applier is a de-duplicating event sink shared by the replicas of a
// test, as the engine's store is: an event id is applied once, and the
// sink records the order of the applications per visitor and which
// replica applied each visitor's events.
type applier struct {
	mu      sync.Mutex
	seen    map[string]bool
	order   map[string][]string // visitor -> applied ids
	by      map[string]string   // visitor -> replica of the last application
	dead    map[string]bool     // replicas killed: their handler applies nothing more
	applied chan struct{}
}

func newApplier() *applier {
	return &applier{seen: map[string]bool{}, order: map[string][]string{}, by: map[string]string{},
		dead: map[string]bool{}, applied: make(chan struct{}, 1)}
}

func (ap *applier) handler(replica string) signals.BatchHandler {
	return func(_ context.Context, batch []signals.Event) error {
		ap.mu.Lock()
		defer ap.mu.Unlock()
		if ap.dead[replica] {
			return errors.New("replica killed")
		}
		for _, e := range batch {
			if ap.seen[e.ID] {
				continue
			}
			ap.seen[e.ID] = true
			ap.order[e.Visitor] = append(ap.order[e.Visitor], e.ID)
			ap.by[e.Visitor] = replica
		}
		select {
		case ap.applied <- struct{}{}:
		default:
		}
		return nil
	}
}

// kill makes replica's handler fail from now on (a batch in flight
// finishes first: they share the lock), as a killed process stops.
func (ap *applier) kill(replica string) {
	ap.mu.Lock()
	defer ap.mu.Unlock()
	ap.dead[replica] = true
}

func (ap *applier) reset() {
	ap.mu.Lock()
	defer ap.mu.Unlock()
	clear(ap.by)
}

func (ap *applier) appliedBy() map[string]string {
	ap.mu.Lock()
	defer ap.mu.Unlock()
	out := make(map[string]string, len(ap.by))
	for k, v := range ap.by {
		out[k] = v
	}
	return out
}

// waitAll waits until every event of sent is applied.
func (ap *applier) waitAll(t *testing.T, sent []signals.Event) {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		ap.mu.Lock()
		missing := 0
		for _, e := range sent {
			if !ap.seen[e.ID] {
				missing++
			}
		}
		ap.mu.Unlock()
		if missing == 0 {
			return
		}
		select {
		case <-ap.applied:
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			t.Fatalf("%d of %d events not applied within 60 s", missing, len(sent))
		}
	}
}

// checkOrder checks that each visitor's events were applied exactly in
// the order they were published.
func (ap *applier) checkOrder(t *testing.T, sent []signals.Event) {
	t.Helper()
	want := map[string][]string{}
	for _, e := range sent {
		want[e.Visitor] = append(want[e.Visitor], e.ID)
	}
	ap.mu.Lock()
	defer ap.mu.Unlock()
	bad := 0
	for v, ids := range want {
		if got := ap.order[v]; !slices.Equal(got, ids) {
			if bad++; bad <= 3 {
				t.Errorf("visitor %s: applied %v, published %v", v, got, ids)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d visitors applied out of order", bad, len(want))
	}
}

// publisher publishes rounds of one event per visitor, retrying a
// failed publish with the same events (same ids) until it is confirmed.
type publisher struct {
	b        *Bus
	prefix   string
	visitors int
	round    int
	mu       sync.Mutex
	all      []signals.Event
}

func newPublisher(b *Bus, prefix string, visitors int) *publisher {
	return &publisher{b: b, prefix: prefix, visitors: visitors}
}

// publishEvery publishes a round every interval in the background (each
// confirmed, with retries), calling confirmed after each, until the
// returned stop is called; stop waits for the last round and may be
// called more than once.
func (p *publisher) publishEvery(t *testing.T, interval time.Duration, confirmed func()) (stop func()) {
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-quit:
				return
			default:
			}
			p.publish(t, 1)
			if confirmed != nil {
				confirmed()
			}
			time.Sleep(interval)
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(quit) })
		<-done
	}
}

// publish publishes rounds rounds.
func (p *publisher) publish(t *testing.T, rounds int) {
	t.Helper()
	for range rounds {
		events := make([]signals.Event, p.visitors)
		for v := range p.visitors {
			events[v] = signals.Event{ID: fmt.Sprintf("%s-%d-%d", p.prefix, v, p.round), Type: signals.TypeView,
				Visitor: fmt.Sprintf("%s-v%d", p.prefix, v), Item: "i" + strconv.Itoa(p.round%7)}
		}
		p.round++
		for attempt := 0; ; attempt++ {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := p.b.Publish(ctx, events)
			cancel()
			if err == nil {
				break
			}
			if attempt == 100 || !errors.Is(err, signals.ErrUnavailable) {
				t.Fatalf("publish: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		p.mu.Lock()
		p.all = append(p.all, events...)
		p.mu.Unlock()
	}
}

func (p *publisher) sent() []signals.Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.all)
}

// TestMigrateFromReplicaQueue: events wait in the queue of a replica of
// the per-replica mode; the replica restarts with partitions. It stops
// the old queue's share at once (unbinds it), consumes what it holds,
// then deletes it, and consumes the partitions: every event is applied,
// each visitor's in publish order.
func TestMigrateFromReplicaQueue(t *testing.T) {
	for _, qt := range []string{QueueClassic, QueueQuorum} {
		t.Run(qt, func(t *testing.T) { testMigrateFromReplicaQueue(t, qt) })
	}
}

func testMigrateFromReplicaQueue(t *testing.T, queueType string) {
	old := testConfig(t)
	old.QueueType = queueType // classic: as an earlier release declared it
	a := newAdmin(t, old.URL)
	ob := newTestBus(t, old, a)
	consistentHashAvailable(t, ob)
	pub := newPublisher(ob, "mg", 30)
	pub.publish(t, 5) // into <prefix>.engine.0: nothing consumes it
	ob.Close()
	if n := queueLength(t, a, ob.names.queue); n != 5*30 {
		t.Fatalf("old queue holds %d messages, want %d", n, 5*30)
	}

	cfg := old
	cfg.Partitions = testPartitions
	// The dead-letter queue keeps its type (quorum would need it deleted
	// first: TestQueueTypeConflict).
	deletePartitions(t, a, cfg.Prefix, cfg.Partitions)
	b := newTestBus(t, cfg, a)
	pub.b = b
	pub.publish(t, 5) // into the partitions
	app := newApplier()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Consume(ctx, app.handler("0")) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Consume: %v", err)
		}
	}()
	pub.publish(t, 5)
	sent := pub.sent()
	app.waitAll(t, sent)
	// Within a visitor, the events of the old queue and those of the
	// partitions are not ordered with each other (see the package
	// documentation); within each, they are.
	oldPart, newPart := sent[:5*30], sent[5*30:]
	for _, part := range [][]signals.Event{oldPart, newPart} {
		app.mu.Lock()
		for _, e := range part {
			if !app.seen[e.ID] {
				t.Errorf("event %s not applied", e.ID)
			}
		}
		app.mu.Unlock()
	}
	checkSubOrder(t, app, oldPart)
	checkSubOrder(t, app, newPart)
	deadline := time.Now().Add(30 * time.Second)
	for queueExists(t, a, ob.names.queue) {
		if time.Now().After(deadline) {
			t.Fatalf("old queue %s not deleted 30 s after it was drained", ob.names.queue)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkSubOrder checks that the events of part, per visitor, were
// applied in their order (other events may come between).
func checkSubOrder(t *testing.T, app *applier, part []signals.Event) {
	t.Helper()
	want := map[string][]string{}
	for _, e := range part {
		want[e.Visitor] = append(want[e.Visitor], e.ID)
	}
	app.mu.Lock()
	defer app.mu.Unlock()
	for v, ids := range want {
		got := slices.DeleteFunc(slices.Clone(app.order[v]), func(id string) bool { return !slices.Contains(ids, id) })
		if !slices.Equal(got, ids) {
			t.Errorf("visitor %s: applied %v, want %v", v, got, ids)
		}
	}
}

// queueLength returns the ready messages of queue.
func queueLength(t *testing.T, a *admin, queue string) int {
	t.Helper()
	ch, err := a.conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	return q.Messages
}

// queueExists reports whether queue exists.
func queueExists(t *testing.T, a *admin, queue string) bool {
	t.Helper()
	ch, err := a.conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	_, err = ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err == nil {
		ch.Close()
		return true
	}
	var aerr *amqp.Error
	if errors.As(err, &aerr) && aerr.Code == amqp.NotFound {
		return false
	}
	t.Fatal(err)
	return false
}

// userRouter routes the visitors of links by their user.
type userRouter map[string]string

func (r userRouter) RouteKeys(_ context.Context, events []signals.Event) []string {
	keys := make([]string, len(events))
	for i, e := range events {
		keys[i] = e.Visitor
		if u := r[e.Visitor]; u != "" {
			keys[i] = signals.UserKeyPrefix + u
		}
	}
	return keys
}

// TestPublishRoutesByRouter: with a Router, the events of a user's two
// devices travel in one message with the user's routing key, so they land
// in one partition in order; other visitors keep their own keys.
func TestPublishRoutesByRouter(t *testing.T) {
	cfg := partitionConfig(t)
	cfg.Router = userRouter{"phone": "zoe", "laptop": "zoe"}
	a := newAdmin(t, cfg.URL)
	deletePartitions(t, a, cfg.Prefix, cfg.Partitions)
	b := newTestBus(t, cfg, a)
	consistentHashAvailable(t, b)
	var events []signals.Event
	for i, v := range []string{"phone", "tablet", "laptop", "phone"} {
		events = append(events, signals.Event{ID: fmt.Sprintf("rt-%d", i), Type: signals.TypeView, Visitor: v, Item: "i"})
	}
	if err := b.Publish(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	byKey := map[string][]string{}
	partOf := map[string]int{}
	for p := range cfg.Partitions {
		for _, d := range a.getAll(b.names.partition(p)) {
			res, err := signals.DecodeMessage(d.Body, time.Now(), b.cfg.Limits)
			if err != nil {
				t.Fatal(err)
			}
			keys := keysOf(&d, len(res.Events))
			for k, e := range res.Events {
				byKey[keys[k]] = append(byKey[keys[k]], e.ID)
				partOf[keys[k]] = p
			}
		}
	}
	if got, want := byKey["user:zoe"], []string{"rt-0", "rt-2", "rt-3"}; !slices.Equal(got, want) {
		t.Errorf("events routed by user:zoe: %v, want %v", got, want)
	}
	if got := byKey["tablet"]; !slices.Equal(got, []string{"rt-1"}) {
		t.Errorf("events routed by tablet: %v, want [rt-1]", got)
	}
	if len(byKey) != 2 {
		t.Errorf("routing keys %v, want user:zoe and tablet", byKey)
	}
	for k, p := range partOf {
		if want := PartitionOf(k, cfg.Partitions); p != want {
			t.Errorf("events keyed %s in partition %d, want %d", k, p, want)
		}
	}
}
