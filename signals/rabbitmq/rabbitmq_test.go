package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/kairoshq/kairos/signals"
	"github.com/kairoshq/kairos/signals/bustest"
	"github.com/kairoshq/kairos/signals/rabbitmq/rabbitmqtest"
)

// amqpURL returns the broker of the integration tests, skipping the test
// when it is unreachable (failing under CI=true).
func amqpURL(t testing.TB) string {
	t.Helper()
	url := os.Getenv("KAIROS_AMQP_URL")
	if url == "" {
		url = DefaultURL
	}
	conn, err := amqp.DialConfig(url, amqp.Config{Dial: amqp.DefaultDial(3 * time.Second)})
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("RabbitMQ at %s unreachable (CI=true): %v", redactURL(url), err)
		}
		t.Skipf("RabbitMQ at %s unreachable: %v", redactURL(url), err)
	}
	conn.Close()
	return url
}

// testLogger logs to t until the test ends (background goroutines may log
// later, which testing forbids).
func testLogger(t testing.TB) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() { w.mu.Lock(); w.done = true; w.mu.Unlock() })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done && testing.Verbose() {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

// testConfig returns a Config with a unique prefix and fast back-offs.
func testConfig(t testing.TB) Config {
	return Config{
		URL:          amqpURL(t),
		Prefix:       fmt.Sprintf("kt%08x", rand.Uint32()),
		RetryMin:     20 * time.Millisecond,
		RetryMax:     200 * time.Millisecond,
		ReconnectMin: 20 * time.Millisecond,
		ReconnectMax: 500 * time.Millisecond,
		Logger:       testLogger(t),
	}
}

// admin is a plain connection of a test, for injecting and inspecting
// messages and for deleting the topology at cleanup.
type admin struct {
	t    testing.TB
	conn *amqp.Connection
	ch   *amqp.Channel
	mu   sync.Mutex
	dead []signals.DeadLetter
}

func newAdmin(t testing.TB, url string) *admin {
	t.Helper()
	conn, ch := rabbitmqtest.ConfirmChannel(t, url)
	return &admin{t: t, conn: conn, ch: ch}
}

// deleteTopology removes every queue and exchange of prefix/replicas.
func (a *admin) deleteTopology(prefix string, replicas ...string) {
	ch, err := a.conn.Channel()
	if err != nil {
		a.t.Errorf("cleanup: %v", err)
		return
	}
	defer ch.Close()
	queues, exchanges := Topology(prefix, 0, replicas...)
	for _, q := range queues {
		if _, err := ch.QueueDelete(q, false, false, false); err != nil {
			a.t.Errorf("cleanup: delete queue %s: %v", q, err)
			return
		}
	}
	for _, ex := range exchanges {
		if err := ch.ExchangeDelete(ex, false, false); err != nil {
			a.t.Errorf("cleanup: delete exchange %s: %v", ex, err)
			return
		}
	}
}

// injectRaw publishes body to the events exchange of prefix, unvalidated.
func (a *admin) injectRaw(prefix string) func(ctx context.Context, key string, body []byte) error {
	return func(ctx context.Context, key string, body []byte) error {
		a.mu.Lock()
		defer a.mu.Unlock()
		dc, err := a.ch.PublishWithDeferredConfirmWithContext(ctx, newNames(prefix, "x").events, key, true, false,
			amqp.Publishing{ContentType: "application/json", DeliveryMode: amqp.Persistent, Body: body})
		if err != nil {
			return err
		}
		if ok, err := dc.WaitContext(ctx); err != nil || !ok {
			return fmt.Errorf("inject not confirmed: %v %v", ok, err)
		}
		return nil
	}
}

// deadLetters drains the dead-letter queue of prefix and returns every dead
// letter seen so far.
func (a *admin) deadLetters(prefix string) func(ctx context.Context) ([]signals.DeadLetter, error) {
	return func(ctx context.Context) ([]signals.DeadLetter, error) {
		a.mu.Lock()
		defer a.mu.Unlock()
		for {
			d, ok, err := a.ch.Get(newNames(prefix, "x").dead, true)
			if err != nil {
				return nil, err
			}
			if !ok {
				break
			}
			reason, _ := d.Headers["kairos-reason"].(string)
			key, _ := d.Headers["kairos-original-routing-key"].(string)
			a.dead = append(a.dead, signals.DeadLetter{Body: d.Body, Reason: reason, RoutingKey: key, Time: d.Timestamp})
		}
		return slices.Clone(a.dead), nil
	}
}

// newTestBus dials a Bus with cfg and closes it and deletes its topology
// at cleanup.
func newTestBus(t testing.TB, cfg Config, a *admin) *Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, err := Dial(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		b.Close()
		a.deleteTopology(b.cfg.Prefix, b.cfg.Replica)
	})
	return b
}

func newFixture(t *testing.T) bustest.Fixture {
	cfg := testConfig(t)
	a := newAdmin(t, cfg.URL)
	b := newTestBus(t, cfg, a)
	return bustest.Fixture{
		Bus:         b,
		InjectRaw:   a.injectRaw(cfg.Prefix),
		DeadLetters: a.deadLetters(cfg.Prefix),
		ArrayBodies: true,
	}
}

func TestContract(t *testing.T) { bustest.Run(t, newFixture) }

func TestConfig(t *testing.T) {
	c := Config{}.Defaults()
	if c.URL != DefaultURL || c.Prefix != "kairos" || c.Replica != "0" || c.Prefetch != 256 ||
		c.Linger != 2*time.Millisecond || c.PublishChannels != 4 || c.PublishFlights != 1 || c.Limits.MaxBatch != 500 ||
		c.MaxBatchEvents != 2048 || c.MaxMessageEvents != 500 || c.CallTimeout != 10*time.Second {
		t.Errorf("Defaults() = %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate(defaults) = %v", err)
	}
	if c := (Config{Limits: signals.Limits{MaxBatch: 5000}}).Defaults(); c.MaxBatchEvents != 5000 || c.MaxMessageEvents != 500 {
		t.Errorf("Defaults with MaxBatch 5000: MaxBatchEvents %d, MaxMessageEvents %d; want 5000, 500", c.MaxBatchEvents, c.MaxMessageEvents)
	}
	if c := (Config{Limits: signals.Limits{MaxBatch: 20}}).Defaults(); c.MaxBatchEvents != 2048 || c.MaxMessageEvents != 20 {
		t.Errorf("Defaults with MaxBatch 20: MaxBatchEvents %d, MaxMessageEvents %d; want 2048, 20", c.MaxBatchEvents, c.MaxMessageEvents)
	}
	if err := (Config{PublishChannels: 2, PublishFlights: 2}).Defaults().Validate(); err == nil || !strings.Contains(err.Error(), "PublishFlights 2: want 1..PublishChannels-1 (1)") {
		t.Errorf("Validate with 2 flights on 2 channels = %v", err)
	}
	bad := Config{URL: "http://x", Prefix: "a b", Replica: "r/1", Prefetch: -1, PublishChannels: 1000,
		RetryMin: time.Second, RetryMax: time.Millisecond, MaxBatchEvents: 100, MaxMessageEvents: 501, CallTimeout: -time.Second}.Defaults()
	err := bad.Validate()
	if err == nil {
		t.Fatal("Validate(bad) = nil")
	}
	for _, want := range []string{"URL:", `Prefix "a b"`, `Replica "r/1"`, "Prefetch -1", "PublishChannels 1000", "RetryMin 1s, RetryMax 1ms",
		"MaxBatchEvents 100: want >= Limits.MaxBatch (500)", "MaxMessageEvents 501: want 1..Limits.MaxBatch (500)", "CallTimeout -1s: want > 0"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate(bad) = %v\nwant it to mention %q", err, want)
		}
	}
	if _, err := Dial(context.Background(), Config{Prefetch: -5}); err == nil || !strings.Contains(err.Error(), "Prefetch -5") {
		t.Errorf("Dial with bad config = %v", err)
	}
}

func TestNames(t *testing.T) {
	n := newNames("kairos", "0")
	if n.events != "kairos.events" || n.partitioned != "kairos.events.partitioned" || n.dead != "kairos.events.dead" || n.queue != "kairos.engine.0" {
		t.Errorf("names = %+v", n)
	}
	if got := n.topic(signals.TopicUpdates); got != "kairos.updates" {
		t.Errorf("topic = %q", got)
	}
	if got := newNames("kt1", "a").topic(signals.TopicModels); got != "kt1.models" {
		t.Errorf("topic = %q", got)
	}
	if got := redactURL("amqp://user:secret@host:5672/vh"); strings.Contains(got, "secret") {
		t.Errorf("redactURL leaks the password: %s", got)
	}
}

func TestDialUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = Dial(ctx, Config{URL: "amqp://guest:guest@" + addr + "/", ReconnectMin: 10 * time.Millisecond})
	if !errors.Is(err, signals.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("Dial = %v, want a deadline error naming the refused connection", err)
	}
}

// killConnections closes the TCP connections under both links abruptly,
// as a broker crash or a network failure would.
func (b *Bus) killConnections() {
	for _, l := range []*link{b.pub, b.con} {
		l.mu.Lock()
		if l.netConn != nil {
			l.netConn.Close()
		}
		l.mu.Unlock()
	}
}

// TestReconnectNoConfirmedEventLost kills the connections while events are
// published and consumed: the Bus must reconnect by itself, publishes
// during the outage fail with ErrUnavailable, and every confirmed event
// must reach the handler.
func TestReconnectNoConfirmedEventLost(t *testing.T) {
	cfg := testConfig(t)
	a := newAdmin(t, cfg.URL)
	b := newTestBus(t, cfg, a)
	testReconnect(t, b, b.killConnections)
}

func testReconnect(t *testing.T, b *Bus, kill func()) {
	var (
		mu        sync.Mutex
		seen      = map[string]int{}
		order     = map[string][]string{} // visitor -> first-seen ids
		confirmed []signals.Event
		failures  []error
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	consumeDone := make(chan error, 1)
	go func() {
		consumeDone <- b.Consume(ctx, func(_ context.Context, batch []signals.Event) error {
			mu.Lock()
			defer mu.Unlock()
			for _, e := range batch {
				if seen[e.ID] == 0 {
					order[e.Visitor] = append(order[e.Visitor], e.ID)
				}
				seen[e.ID]++
			}
			return nil
		})
	}()
	stopPub := make(chan struct{})
	pubDone := make(chan struct{})
	okAfterKill := make(chan struct{})
	var killed sync.Once
	var killedAt time.Time
	go func() {
		defer close(pubDone)
		var afterKill sync.Once
		for i := 0; ; i++ {
			select {
			case <-stopPub:
				return
			default:
			}
			batch := bustest.Events(fmt.Sprintf("r%d", i), 10, 2, time.Now())
			pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
			err := b.Publish(pctx, batch)
			pcancel()
			mu.Lock()
			if err == nil {
				confirmed = append(confirmed, batch...)
				if !killedAt.IsZero() {
					afterKill.Do(func() { close(okAfterKill) })
				}
			} else {
				failures = append(failures, err)
			}
			mu.Unlock()
			time.Sleep(2 * time.Millisecond)
		}
	}()
	time.Sleep(300 * time.Millisecond)
	killed.Do(func() {
		kill()
		mu.Lock()
		killedAt = time.Now()
		mu.Unlock()
	})
	select {
	case <-okAfterKill:
	case <-time.After(30 * time.Second):
		t.Fatal("no publish succeeded within 30s of the connection loss")
	}
	time.Sleep(200 * time.Millisecond)
	close(stopPub)
	<-pubDone

	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		missing := 0
		for _, e := range confirmed {
			if seen[e.ID] == 0 {
				missing++
			}
		}
		n := len(confirmed)
		mu.Unlock()
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d confirmed events never reached the handler", missing, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, err := range failures {
		if !strings.Contains(err.Error(), signals.ErrUnavailable.Error()) {
			t.Errorf("publish during the outage failed with %v, want ErrUnavailable", err)
		}
	}
	redelivered := 0
	for _, n := range seen {
		if n > 1 {
			redelivered++
		}
	}
	t.Logf("%d events confirmed, %d publishes failed during the outage, %d events delivered twice", len(confirmed), len(failures), redelivered)
	// First-seen order of the confirmed events follows publish order.
	confirmedIDs := map[string]bool{}
	wantOrder := map[string][]string{}
	for _, e := range confirmed {
		confirmedIDs[e.ID] = true
		wantOrder[e.Visitor] = append(wantOrder[e.Visitor], e.ID)
	}
	for v, want := range wantOrder {
		var got []string
		for _, id := range order[v] {
			if confirmedIDs[id] {
				got = append(got, id)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("visitor %s: first-seen order %v, want %v", v, got, want)
		}
	}
	if err := b.Ready(context.Background()); err != nil {
		t.Errorf("Ready after reconnection: %v", err)
	}
	cancel()
	if err := <-consumeDone; err != nil {
		t.Errorf("Consume = %v", err)
	}
}

// TestReadyReportsOutage checks that Ready fails while the broker is
// unreachable and recovers by itself.
func TestReadyReportsOutage(t *testing.T) {
	cfg := testConfig(t)
	// A proxy in front of the broker lets the test cut the network.
	u, err := amqp.ParseURI(cfg.URL)
	if err != nil {
		t.Fatal(err)
	}
	p := newProxy(t, net.JoinHostPort(u.Host, strconv.Itoa(u.Port)))
	a := newAdmin(t, cfg.URL)
	_, port, _ := net.SplitHostPort(p.addr())
	u.Host = "127.0.0.1"
	u.Port, _ = strconv.Atoi(port)
	cfg.URL = u.String()
	b := newTestBus(t, cfg, a)
	if err := b.Ready(context.Background()); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	p.setDown(true)
	deadline := time.Now().Add(10 * time.Second)
	for b.Ready(context.Background()) == nil {
		if time.Now().After(deadline) {
			t.Fatal("Ready stayed nil with the broker unreachable")
		}
		time.Sleep(10 * time.Millisecond)
	}
	err = b.Ready(context.Background())
	if !strings.Contains(err.Error(), "bus unavailable") {
		t.Errorf("Ready = %v, want ErrUnavailable", err)
	}
	err = b.Publish(context.Background(), bustest.Events("down", 1, 1, time.Now()))
	if err == nil || !strings.Contains(err.Error(), "bus unavailable") {
		t.Errorf("Publish during the outage = %v, want ErrUnavailable", err)
	}
	p.setDown(false)
	deadline = time.Now().Add(20 * time.Second)
	for b.Ready(context.Background()) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("Ready did not recover: %v", b.Ready(context.Background()))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := b.Publish(context.Background(), bustest.Events("up", 1, 1, time.Now())); err != nil {
		t.Errorf("Publish after recovery: %v", err)
	}
}

// proxy forwards TCP connections to target until set down, which closes
// every connection and refuses new ones.
type proxy struct {
	t      testing.TB
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  []net.Conn
}

func newProxy(t testing.TB, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{t: t, ln: ln, target: target}
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.setDown(true) })
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) setDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for _, c := range p.conns {
			c.Close()
		}
		p.conns = nil
	}
}

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			c.Close()
			continue
		}
		u, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns = append(p.conns, c, u)
		p.mu.Unlock()
		go func() { io.Copy(u, c); u.Close() }()
		go func() { io.Copy(c, u); c.Close() }()
	}
}

// consistentHashAvailable reports whether the broker has the
// rabbitmq_consistent_hash_exchange plugin; without it the multi-replica
// tests skip (fail under CI=true, where scripts/services.sh enables it).
func consistentHashAvailable(t *testing.T, b *Bus) {
	t.Helper()
	if b.Partitioned() {
		return
	}
	msg := "the rabbitmq_consistent_hash_exchange plugin is not enabled (rabbitmq-plugins enable rabbitmq_consistent_hash_exchange)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// TestReplicasPartitionByVisitor runs two replicas: with the consistent
// hash exchange every visitor's events go to exactly one replica, and
// together the replicas get everything once. Replica a starts without the
// plugin (fallback binding), which must be removed when it restarts with
// it.
func TestReplicasPartitionByVisitor(t *testing.T) {
	cfg := testConfig(t)
	a := newAdmin(t, cfg.URL)

	fb := cfg
	fb.Replica, fb.hashType = "a", "x-kairos-no-such-type"
	old := newTestBus(t, fb, a)
	if old.Partitioned() {
		t.Fatal("Partitioned() with an unknown exchange type")
	}
	old.Close()

	ca, cb := cfg, cfg
	ca.Replica, cb.Replica = "a", "b"
	ba := newTestBus(t, ca, a)
	consistentHashAvailable(t, ba)
	bb := newTestBus(t, cb, a)

	type got struct {
		mu     sync.Mutex
		events map[string]string // id -> visitor
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	results := []*got{{events: map[string]string{}}, {events: map[string]string{}}}
	var wg sync.WaitGroup
	for i, bus := range []*Bus{ba, bb} {
		g := results[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			bus.Consume(ctx, func(_ context.Context, batch []signals.Event) error {
				g.mu.Lock()
				defer g.mu.Unlock()
				for _, e := range batch {
					g.events[e.ID] = e.Visitor
				}
				return nil
			})
		}()
	}
	events := bustest.Events("part", 200, 3, time.Now())
	pctx, pcancel := context.WithTimeout(ctx, 20*time.Second)
	defer pcancel()
	if err := ba.Publish(pctx, events); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		n := 0
		for _, g := range results {
			g.mu.Lock()
			n += len(g.events)
			g.mu.Unlock()
		}
		if n >= len(events) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events consumed", n, len(events))
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // let duplicates, if any, arrive
	cancel()
	wg.Wait()
	owner := map[string]int{}
	total := 0
	for i, g := range results {
		total += len(g.events)
		for _, v := range g.events {
			if o, ok := owner[v]; ok && o != i {
				t.Fatalf("visitor %s was delivered to both replicas", v)
			}
			owner[v] = i
		}
	}
	if total != len(events) {
		t.Errorf("replicas got %d events in total, want %d (each exactly once)", total, len(events))
	}
	na, nb := len(results[0].events), len(results[1].events)
	t.Logf("replica a: %d events, replica b: %d events", na, nb)
	// 200 visitors are too few for a tight check of the shares (the
	// binomial spread alone is ±3.5 points); only check that both
	// replicas take part. TestBindingWeightMigration checks shares.
	if na < len(events)/20 || nb < len(events)/20 {
		t.Errorf("unbalanced split: %d / %d", na, nb)
	}
}

// TestFallbackWithoutPlugin checks the single-replica fallback: the queue is
// bound to the events exchange directly and the stream works.
func TestFallbackWithoutPlugin(t *testing.T) {
	cfg := testConfig(t)
	cfg.hashType = "x-kairos-no-such-type"
	a := newAdmin(t, cfg.URL)
	b := newTestBus(t, cfg, a)
	if b.Partitioned() {
		t.Fatal("Partitioned() with an unknown exchange type")
	}
	if err := b.Ready(context.Background()); err != nil {
		t.Fatalf("Ready: %v (the failed declare must not break the connection)", err)
	}
	got := make(chan []signals.Event, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go b.Consume(ctx, func(_ context.Context, batch []signals.Event) error {
		got <- batch
		return nil
	})
	events := bustest.Events("fb", 1, 1, time.Now())
	if err := b.Publish(ctx, events); err != nil {
		t.Fatal(err)
	}
	select {
	case batch := <-got:
		if batch[0].ID != events[0].ID {
			t.Errorf("got %s, want %s", batch[0].ID, events[0].ID)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("event not consumed")
	}
}

// TestPublishUnroutable deletes the replica queue: a publish then has no
// queue to go to and must fail instead of being silently dropped.
func TestPublishUnroutable(t *testing.T) {
	cfg := testConfig(t)
	a := newAdmin(t, cfg.URL)
	b := newTestBus(t, cfg, a)
	if _, err := a.ch.QueueDelete(b.names.queue, false, false, false); err != nil {
		t.Fatal(err)
	}
	// Two visitors of two events each: two messages.
	err := b.Publish(context.Background(), bustest.Events("unroutable", 2, 2, time.Now()))
	if err == nil || !strings.Contains(err.Error(), "2 of 2 messages unroutable") || !strings.Contains(err.Error(), "bus unavailable") {
		t.Fatalf("Publish without a queue = %v, want an unroutable ErrUnavailable error", err)
	}
	// The channel stays usable: the next publish fails the same way,
	// without stale returns from the previous one.
	err = b.Publish(context.Background(), bustest.Events("unroutable2", 1, 1, time.Now()))
	if err == nil || !strings.Contains(err.Error(), "1 of 1 messages unroutable") {
		t.Fatalf("second Publish = %v", err)
	}
}

// TestConsumeSurvivesQueueDeletion deletes the queue under a running
// consumer: it must redeclare the topology and go on.
func TestConsumeSurvivesQueueDeletion(t *testing.T) {
	cfg := testConfig(t)
	a := newAdmin(t, cfg.URL)
	b := newTestBus(t, cfg, a)
	got := make(chan string, 10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go b.Consume(ctx, func(_ context.Context, batch []signals.Event) error {
		for _, e := range batch {
			got <- e.ID
		}
		return nil
	})
	first := bustest.Events("q1", 1, 1, time.Now())
	if err := b.Publish(ctx, first); err != nil {
		t.Fatal(err)
	}
	if id := <-got; id != first[0].ID {
		t.Fatalf("got %s", id)
	}
	if _, err := a.ch.QueueDelete(b.names.queue, false, false, false); err != nil {
		t.Fatal(err)
	}
	next := bustest.Events("q2", 1, 1, time.Now())
	deadline := time.Now().Add(20 * time.Second)
	for {
		// Until the consumer has redeclared the queue, publishes are
		// unroutable.
		if err := b.Publish(ctx, next); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the queue was never redeclared")
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case id := <-got:
		if id != next[0].ID {
			t.Errorf("got %s, want %s", id, next[0].ID)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("consumer did not resume")
	}
}

// TestHandlerFailureKeepsOrder fails the handler while later deliveries are
// already held by the consumer: they must not overtake the requeued batch.
func TestHandlerFailureKeepsOrder(t *testing.T) {
	for _, tt := range []struct {
		name                                   string
		maxMessageEvents, maxBatchEvents, maxB int
	}{
		{"messages of 3 events", 3, 0, 0},
		// Every second message overflows the batch and is carried over to
		// the next one.
		{"batches of one message", 7, 10, 10},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.Linger = -1 // small batches, many held deliveries
			cfg.Prefetch = 50
			cfg.MaxMessageEvents, cfg.MaxBatchEvents, cfg.Limits.MaxBatch = tt.maxMessageEvents, tt.maxBatchEvents, tt.maxB
			testHandlerFailureKeepsOrder(t, cfg)
		})
	}
}

func testHandlerFailureKeepsOrder(t *testing.T, cfg Config) {
	a := newAdmin(t, cfg.URL)
	b := newTestBus(t, cfg, a)
	events := bustest.Events("ord", 1, 200, time.Now())
	if err := b.Publish(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		calls int
		ok    []string
	)
	done := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go b.Consume(ctx, func(_ context.Context, batch []signals.Event) error {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if len(batch) > b.cfg.MaxBatchEvents {
			t.Errorf("batch of %d events, more than MaxBatchEvents %d", len(batch), b.cfg.MaxBatchEvents)
		}
		if calls == 1 || calls == 3 {
			return fmt.Errorf("failure %d", calls)
		}
		for _, e := range batch {
			ok = append(ok, e.ID)
		}
		if len(ok) >= len(events) {
			select {
			case <-done:
			default:
				close(done)
			}
		}
		return nil
	})
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("not all events handled")
	}
	mu.Lock()
	defer mu.Unlock()
	want := make([]string, len(events))
	for i, e := range events {
		want[i] = e.ID
	}
	if !slices.Equal(ok, want) {
		t.Errorf("successfully handled sequence differs from publish order (%d calls):\n got %v\nwant %v", calls, ok, want)
	}
}

// TestHandlerFailuresCountNoRedelivery fails the handler several times
// under a delivery-limit policy of 1 on the bus's quorum queues (RabbitMQ
// 4.0–4.2 drop a message returned to its queue more than 20 times, by
// default): the failed batch is handed to the handler again while its
// deliveries stay held, so the broker counts no redelivery and the event
// is handled in the end. Returning the batch to the queue on each failure
// (closing the channel) lost it after the second failure. The handler
// also changes the events it was given: the retry gets them as decoded.
func TestHandlerFailuresCountNoRedelivery(t *testing.T) {
	cfg := testConfig(t)
	a := newAdmin(t, cfg.URL)
	b := newTestBus(t, cfg, a)
	rabbitmqtest.DeliveryLimit(t, cfg.Prefix, 1)
	events := bustest.Events("limit", 1, 3, time.Now())
	if err := b.Publish(t.Context(), events); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	handled := make(chan []string, 1)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go b.Consume(ctx, func(_ context.Context, batch []signals.Event) error {
		ids := make([]string, len(batch))
		for i := range batch {
			ids[i] = batch[i].ID
			batch[i].ID = "changed by the handler"
		}
		if calls.Add(1) <= 4 {
			return fmt.Errorf("store down (call %d)", calls.Load())
		}
		handled <- ids
		return nil
	})
	select {
	case ids := <-handled:
		want := []string{events[0].ID, events[1].ID, events[2].ID}
		if !slices.Equal(ids, want) {
			t.Errorf("handled %v after %d failures, want %v", ids, calls.Load()-1, want)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("the events were not handled after %d handler failures: dropped by the delivery limit", calls.Load())
	}
}

func BenchmarkPublish(b *testing.B) {
	for _, n := range []int{1, 100, 500} {
		b.Run(fmt.Sprint("batch=", n), func(b *testing.B) {
			bus, _ := benchBus(b, nil)
			events := bustest.Events("bench", 50, (n+49)/50, time.Now())[:n]
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if err := bus.Publish(ctx, events); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkPublishConcurrent publishes batches of 100 from 8 goroutines
// (concurrent HTTP requests sharing the channel pool).
func BenchmarkPublishConcurrent(b *testing.B) {
	bus, _ := benchBus(b, nil)
	events := bustest.Events("bench", 50, 2, time.Now())
	b.ReportAllocs()
	start := time.Now()
	publishParallel(b, bus, events)
	b.ReportMetric(float64(len(events))*float64(b.N)/time.Since(start).Seconds(), "events/s")
}

// BenchmarkPublishConsume measures the end-to-end ingest rate: batches of
// 100 published and consumed (handler does nothing) through the broker.
func BenchmarkPublishConsume(b *testing.B) {
	bus, _ := benchBus(b, nil)
	events := bustest.Events("bench", 50, 2, time.Now())
	c := consumeCounting(b, bus)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := bus.Publish(ctx, events); err != nil {
			b.Fatal(err)
		}
	}
	want := len(events) * b.N
	c.wait(want)
	b.ReportMetric(float64(want)/b.Elapsed().Seconds(), "events/s")
}

// TestBlockedConnectionFailsFast simulates connection.blocked (a broker
// resource alarm, which cannot be raised on a shared test broker): Publish
// and Ready must report ErrUnavailable instead of hanging.
func TestBlockedConnectionFailsFast(t *testing.T) {
	cfg := testConfig(t)
	a := newAdmin(t, cfg.URL)
	b := newTestBus(t, cfg, a)
	setBlocked := func(reason string) {
		b.pub.mu.Lock()
		conn := b.pub.conn
		b.pub.mu.Unlock()
		b.pub.setBlocked(conn, reason)
	}
	setBlocked("low on disk")
	ctx := context.Background()
	err := b.Publish(ctx, bustest.Events("blk", 1, 1, time.Now()))
	if !errors.Is(err, signals.ErrUnavailable) || !strings.Contains(err.Error(), "low on disk") {
		t.Errorf("Publish while blocked = %v", err)
	}
	if err := b.Ready(ctx); !errors.Is(err, signals.ErrUnavailable) {
		t.Errorf("Ready while blocked = %v", err)
	}
	setBlocked("")
	if err := b.Publish(ctx, bustest.Events("blk2", 1, 1, time.Now())); err != nil {
		t.Errorf("Publish after unblock: %v", err)
	}
}

// TestBrokerClosesConnections closes the Bus's connections from the broker
// side with rabbitmqctl close_connection (connection.close 320
// CONNECTION_FORCED, as on a broker shutdown). Only this test's connections
// are closed (matched by their local ports), so parallel tests of others
// are unaffected. Skipped where rabbitmqctl cannot be used.
func TestBrokerClosesConnections(t *testing.T) {
	if _, err := exec.LookPath("rabbitmqctl"); err != nil {
		t.Skip("rabbitmqctl not installed")
	}
	cfg := testConfig(t)
	a := newAdmin(t, cfg.URL)
	b := newTestBus(t, cfg, a)
	pids := func() []string {
		ports := map[string]bool{}
		for _, l := range []*link{b.pub, b.con} {
			l.mu.Lock()
			if l.netConn != nil {
				_, port, _ := net.SplitHostPort(l.netConn.LocalAddr().String())
				ports[port] = true
			}
			l.mu.Unlock()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, "rabbitmqctl", "-q", "list_connections", "pid", "peer_port").Output()
		if err != nil {
			t.Skipf("rabbitmqctl list_connections: %v", err)
		}
		var pids []string
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			if len(f) == 2 && ports[f[1]] {
				pids = append(pids, f[0])
			}
		}
		return pids
	}
	if len(pids()) != 2 {
		t.Skip("rabbitmqctl does not list this test's connections")
	}
	testReconnect(t, b, func() {
		for _, pid := range pids() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			out, err := exec.CommandContext(ctx, "rabbitmqctl", "-q", "close_connection", pid, "kairos test").CombinedOutput()
			cancel()
			if err != nil {
				t.Errorf("rabbitmqctl close_connection %s: %v: %s", pid, err, out)
			}
		}
	})
}
