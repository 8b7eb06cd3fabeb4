package history_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/kairoshq/kairos/model"
	"github.com/kairoshq/kairos/offline"
	"github.com/kairoshq/kairos/offline/archive"
	"github.com/kairoshq/kairos/offline/history"
	"github.com/kairoshq/kairos/signals"
	"github.com/kairoshq/kairos/signals/rabbitmq"
)

// plantedEvents: visitors in clusters view items of their own cluster
// (popular ones more often) over 10 days, seeded.
func plantedEvents(clusters, visitors, items, rounds int, base time.Time) []signals.Event {
	rng := rand.New(rand.NewPCG(11, 12))
	var evs []signals.Event
	for j := range rounds {
		for c := range clusters {
			for v := range visitors {
				i := int(float64(items) * math.Pow(rng.Float64(), 1.5))
				evs = append(evs, signals.Event{ID: fmt.Sprintf("p%d-%d-%d", j, c, v), Type: signals.TypeView,
					Visitor: fmt.Sprintf("c%d-v%d", c, v), Item: fmt.Sprintf("c%d-i%d", c, i),
					Time: signals.Timestamp{Time: base.Add(time.Duration(j) * 240 * time.Hour / time.Duration(rounds)).Add(time.Duration(v) * time.Second)}})
			}
		}
	}
	return evs
}

// consumeInto runs b's consumer, appending every batch to a new local
// archive in dir (what an engine replica does), until the test ends; it
// returns the count of events appended.
func consumeInto(t *testing.T, b *rabbitmq.Bus, dir string) *atomic.Int64 {
	t.Helper()
	arc, err := archive.Open(context.Background(), archive.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := b.Consume(ctx, func(ctx context.Context, batch []signals.Event) error {
			if err := arc.Append(ctx, batch); err != nil {
				return err
			}
			n.Add(int64(len(batch)))
			return nil
		}); err != nil {
			t.Errorf("consume: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait(); arc.Close() })
	return &n
}

// TestRetrainFromClusterHistoryEqualsSingleNode is the acceptance test
// of issue 12's "one history": events published once, consumed by two
// replicas (each with its own local archive, as today), archived from
// the stream by the elected archiver for a part and left in the stream
// for the rest; the same messages are also delivered to a single node
// (its own topology, bound to the cluster's exchange) that archives
// them locally. A retrain from the cluster's history (cold + stream)
// learns the same model as the single node's retrain from its archive.
func TestRetrainFromClusterHistoryEqualsSingleNode(t *testing.T) {
	c := newCluster(t)
	r0, r1 := c.bus(t, "0"), c.bus(t, "1")
	single := &cluster{url: c.url, prefix: c.prefix + "s"}
	t.Cleanup(func() { deleteTopology(t, single.url, single.prefix) })
	ctx := context.Background()
	dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	sb, err := rabbitmq.Dial(dctx, rabbitmq.Config{URL: c.url, Prefix: single.prefix, Replica: "0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close() })
	bindExchange(t, c.url, single.prefix+".events", c.prefix+".events")

	tmp := t.TempDir()
	n0, n1 := consumeInto(t, r0, filepath.Join(tmp, "r0")), consumeInto(t, r1, filepath.Join(tmp, "r1"))
	ns := consumeInto(t, sb, filepath.Join(tmp, "single"))

	evs := plantedEvents(3, 40, 30, 20, time.Now().Add(-11*24*time.Hour).Truncate(time.Second).UTC())
	cold := filepath.Join(tmp, "history")
	store := openStore(t)
	_, stop := startArchiver(t, history.ArchiverConfig{Dir: cold, Stream: c.stream, Store: store, Holder: "r0", LeaseTTL: time.Second})
	half := len(evs) * 6 / 10
	publish(t, r0, evs[:half])
	waitFor(t, "the first part archived", func() bool { return committed(t, cold) == uint64(half) })
	stop()
	publish(t, r1, evs[half:])
	all := int64(len(evs))
	waitFor(t, "every event consumed", func() bool { return n0.Load()+n1.Load() == all && ns.Load() == all })
	if n0.Load() == 0 || n1.Load() == 0 {
		t.Fatalf("replicas consumed %d and %d events: want both a share", n0.Load(), n1.Load())
	}

	h, err := history.NewReader(history.ReaderConfig{Dir: cold, Stream: c.stream})
	if err != nil {
		t.Fatal(err)
	}
	cfg := offline.RetrainConfig{Params: model.DefaultParams(), MinUsers: 20}
	cfg.Params.Factors, cfg.Params.Threads = 8, 1
	got, err := offline.Retrain(ctx, h, nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if st := h.Stats(); st.Cold != half || st.Tail != len(evs)-half {
		t.Fatalf("history read %d cold and %d tail events, want %d and %d", st.Cold, st.Tail, half, len(evs)-half)
	}
	want, err := offline.Retrain(ctx, archive.NewReader(filepath.Join(tmp, "single"), nil), nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got.Events != len(evs) || got.Events != want.Events || got.Users != want.Users || got.Items != want.Items || got.Interactions != want.Interactions {
		t.Fatalf("cluster history: %d events, %d users, %d items, %d pairs; single node: %d, %d, %d, %d",
			got.Events, got.Users, got.Items, got.Interactions, want.Events, want.Users, want.Items, want.Interactions)
	}
	gs, ws := got.Snapshot, want.Snapshot
	if len(gs.ItemIDs) != len(ws.ItemIDs) {
		t.Fatalf("%d items vs %d", len(gs.ItemIDs), len(ws.ItemIDs))
	}
	worst := 0.0
	for i, id := range gs.ItemIDs {
		if ws.ItemIDs[i] != id {
			t.Fatalf("item %d is %s in the cluster's model, %s in the single node's", i, id, ws.ItemIDs[i])
		}
		for f, x := range gs.Items.Row(i) {
			worst = max(worst, math.Abs(float64(x-ws.Items.Row(i)[f])))
		}
	}
	if worst > 1e-6 {
		t.Fatalf("item factors differ by up to %g", worst)
	}
	t.Logf("%d events (%d cold, %d from the stream), %d users, %d items: item factors equal (max difference %g); replicas consumed %d + %d",
		got.Events, half, len(evs)-half, got.Users, got.Items, worst, n0.Load(), n1.Load())
}

// bindExchange binds exchange dst to src with "#".
func bindExchange(t *testing.T, url, dst, src string) {
	t.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeBind(dst, "#", src, false, nil); err != nil {
		t.Fatal(err)
	}
}
