package history_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/kairoshq/kairos/internal/clustertest"
	"github.com/kairoshq/kairos/offline/history"
	"github.com/kairoshq/kairos/signals"
	"github.com/kairoshq/kairos/signals/rabbitmq"
)

// TestStreamSurvivesNodeStop declares the history stream on the 3-node
// RabbitMQ cluster (replicated on every node), publishes through node 1,
// kills node 2 (kill -9), publishes more (a stream keeps accepting with a
// majority of its replicas), and reads the whole history through node 3:
// every confirmed event is there once. Node 2 is restarted before the
// test ends. Opt-in: KAIROS_CLUSTER_TESTS=1.
func TestStreamSurvivesNodeStop(t *testing.T) {
	cl := clustertest.Get(t)
	cl.WaitHealthy(t, time.Minute)
	prefix := fmt.Sprintf("khc%08x", rand.Uint32())
	t.Cleanup(func() { deleteTopology(t, cl.AMQPURLs[0], prefix) })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := rabbitmq.Dial(ctx, rabbitmq.Config{URL: cl.AMQPURLs[0], Prefix: prefix,
		Stream: rabbitmq.StreamConfig{Enabled: true, MaxAge: time.Hour, MaxBytes: 64 << 20, SegmentBytes: 8 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	evs := genEvents(prefix, 400, 17, time.Now().Add(-time.Hour))
	publish(t, b, evs[:200])

	cl.KillRabbit(t, 2)
	t.Cleanup(func() { cl.StartRabbit(t, 2); cl.WaitHealthy(t, 2*time.Minute) })
	publish(t, b, evs[200:])

	s, err := rabbitmq.NewStreamReader(rabbitmq.StreamReaderConfig{URL: cl.AMQPURLs[2], Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	r, err := history.NewReader(history.ReaderConfig{Dir: t.TempDir() + "/none", Stream: s})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	if err := r.Scan(context.Background(), time.Time{}, time.Time{}, func(e signals.Event) error { ids[e.ID] = true; return nil }); err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if !ids[e.ID] {
			t.Fatalf("event %s confirmed but not in the stream read through node 3", e.ID)
		}
	}
	if st := r.Stats(); st.Tail != len(evs) {
		t.Fatalf("read %d events, want %d once each (%+v)", st.Tail, len(evs), st)
	}
}
