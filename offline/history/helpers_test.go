package history_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/kairoshq/kairos/engine/embedded"
	"github.com/kairoshq/kairos/engine/storage"
	"github.com/kairoshq/kairos/offline/history"
	"github.com/kairoshq/kairos/signals"
	"github.com/kairoshq/kairos/signals/rabbitmq"
)

// amqpURL returns the broker of the tests, skipping when it is
// unreachable (failing under CI=true).
func amqpURL(t testing.TB) string {
	t.Helper()
	url := os.Getenv("KAIROS_AMQP_URL")
	if url == "" {
		url = rabbitmq.DefaultURL
	}
	conn, err := amqp.DialConfig(url, amqp.Config{Dial: amqp.DefaultDial(3 * time.Second)})
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("RabbitMQ unreachable (CI=true): %v", err)
		}
		t.Skipf("RabbitMQ unreachable: %v", err)
	}
	conn.Close()
	return url
}

// cluster is a broker topology of a unique prefix with the history
// stream, deleted at cleanup.
type cluster struct {
	url, prefix string
	stream      *rabbitmq.StreamReader
}

func newCluster(t testing.TB) *cluster {
	t.Helper()
	c := &cluster{url: amqpURL(t), prefix: fmt.Sprintf("kh%08x", rand.Uint32())}
	t.Cleanup(func() { deleteTopology(t, c.url, c.prefix) })
	var err error
	if c.stream, err = rabbitmq.NewStreamReader(rabbitmq.StreamReaderConfig{URL: c.url, Prefix: c.prefix}); err != nil {
		t.Fatal(err)
	}
	return c
}

// bus dials a replica of the cluster (the stream enabled).
func (c *cluster) bus(t testing.TB, replica string) *rabbitmq.Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, err := rabbitmq.Dial(ctx, rabbitmq.Config{URL: c.url, Prefix: c.prefix, Replica: replica,
		Stream: rabbitmq.StreamConfig{Enabled: true, MaxAge: time.Hour, MaxBytes: 256 << 20, SegmentBytes: 16 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// deleteTopology removes the queues and exchanges of prefix (replicas 0
// to 3, and the single-node reference's).
func deleteTopology(t testing.TB, url, prefix string) {
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	queues := []string{rabbitmq.StreamName(prefix), prefix + ".events.dead"}
	for r := range 4 {
		queues = append(queues, fmt.Sprintf("%s.engine.%d", prefix, r))
	}
	for _, q := range queues {
		if _, err := ch.QueueDelete(q, false, false, false); err != nil {
			t.Errorf("cleanup: delete queue %s: %v", q, err)
			return
		}
	}
	for _, ex := range []string{".events", ".events.partitioned", ".events.dead", ".updates", ".models", ".promotions"} {
		if err := ch.ExchangeDelete(prefix+ex, false, false); err != nil {
			t.Errorf("cleanup: delete exchange %s: %v", prefix+ex, err)
			return
		}
	}
}

// openStore opens an embedded store (the lease and the erasure log).
func openStore(t testing.TB) *embedded.Store {
	t.Helper()
	s, err := embedded.Open(t.TempDir(), embedded.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// startArchiver runs an archiver until the returned stop is called (or
// the test ends).
func startArchiver(t testing.TB, cfg history.ArchiverConfig) (*history.Archiver, func()) {
	t.Helper()
	a, err := history.NewArchiver(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("archiver %s: %v", cfg.Holder, err)
		}
	}
	t.Cleanup(stop)
	return a, stop
}

// waitFor polls cond until it holds, failing the test after a generous
// bound (a hang, not a speed check).
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// committed returns the events the checkpoint of dir counts.
func committed(t testing.TB, dir string) uint64 {
	cp, _, err := history.ReadCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	return cp.Events
}

// genEvents makes n events of a few visitors, ids prefixed with tag, ts
// increasing from base.
func genEvents(tag string, n, visitors int, base time.Time) []signals.Event {
	evs := make([]signals.Event, n)
	for i := range evs {
		evs[i] = signals.Event{ID: fmt.Sprintf("%s-%d", tag, i), Type: signals.TypeView, Visitor: fmt.Sprintf("v%d", i%visitors),
			Item: fmt.Sprintf("i%d", i%11), Time: signals.Timestamp{Time: base.Add(time.Duration(i) * time.Second)}}
	}
	return evs
}

// publish publishes evs in batches of 50, retrying a batch the broker
// refused for a while (signals.ErrUnavailable: a resource alarm raised by
// another test on the shared broker, a cluster electing a new stream
// leader); a batch refused for a minute fails the test.
func publish(t testing.TB, b *rabbitmq.Bus, evs []signals.Event) {
	t.Helper()
	for i := 0; i < len(evs); i += 50 {
		deadline := time.Now().Add(60 * time.Second)
		for {
			err := b.Publish(context.Background(), evs[i:min(i+50, len(evs))])
			if err == nil {
				break
			}
			if !errors.Is(err, signals.ErrUnavailable) || time.Now().After(deadline) {
				t.Fatal(err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// erasuresApplied returns a condition: the cold tier's checkpoint has
// applied the first n entries of the store's erasure log (sequence
// numbers are request times, so the n-th entry's is read from the log).
func erasuresApplied(t testing.TB, dir string, store storage.Logs, n int) func() bool {
	return func() bool {
		entries, err := store.Entries(context.Background(), history.DefaultErasureLog, 0, n)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) < n {
			return false
		}
		cp, _, _ := history.ReadCheckpoint(dir)
		return cp.Erasures == entries[n-1].Seq
	}
}

// eraseThenNextSecond requests the erasure of visitor in the store's log
// and waits until the clock is in the next second (publish times have
// whole seconds: an event sent then is after the erasure).
func eraseThenNextSecond(t testing.TB, store storage.Logs, visitor string) {
	t.Helper()
	requested := time.Now()
	if err := history.RequestErasure(context.Background(), store, "", visitor); err != nil {
		t.Fatal(err)
	}
	nextSecond(requested)
}
