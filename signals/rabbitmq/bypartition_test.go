package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/kairoshq/kairos/signals"
)

// PartitionOf is the wire contract between every publisher and consumer
// of a set of partitions: these values must never change.
func TestPartitionOfIsStable(t *testing.T) {
	golden := map[string][3]int{ // partitions of 16, 64 and 1024
		"":               {13, 17, 266},
		"v-17":           {15, 24, 901},
		"user:zoe":       {0, 0, 809},
		"acme/v-1":       {14, 44, 628},
		"visitor-000042": {10, 50, 695},
	}
	for key, want := range golden {
		for i, n := range []int{16, 64, 1024} {
			if got := PartitionOf(key, n); got != want[i] {
				t.Errorf("PartitionOf(%q, %d) = %d, want %d", key, n, got, want[i])
			}
		}
	}
}

// Keys spread evenly, and growing the number of partitions by one moves
// only the keys the new partition takes (jump consistent hashing).
func TestPartitionOfSpreadsAndMovesLittle(t *testing.T) {
	const keys, n = 64000, 16
	counts := make([]int, n)
	moved := 0
	for i := range keys {
		k := fmt.Sprintf("visitor-%d", i)
		p := PartitionOf(k, n)
		counts[p]++
		if q := PartitionOf(k, n+1); q != p {
			if q != n {
				t.Fatalf("key %s moved from %d to %d, not to the new partition %d", k, p, q, n)
			}
			moved++
		}
	}
	for p, c := range counts {
		if c < keys/n*9/10 || c > keys/n*11/10 {
			t.Errorf("partition %d holds %d of %d keys, want %d ± 10 %%", p, c, keys, keys/n)
		}
	}
	if want := keys / (n + 1); moved < want*8/10 || moved > want*12/10 {
		t.Errorf("%d keys moved to a 17th partition, want about %d", moved, want)
	}
}

// encodedFor returns events of the given visitors, encoded by b.
func encodedFor(t *testing.T, b *Bus, prefix string, visitors ...string) *encodedEvents {
	t.Helper()
	evs := make([]signals.Event, len(visitors))
	for i, v := range visitors {
		evs[i] = signals.Event{ID: fmt.Sprintf("%s-%d", prefix, i), Type: signals.TypeView, Visitor: v, Item: "i"}
	}
	x, err := b.encode(context.Background(), evs, time.Now(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// offlineBus is a Bus that is never dialled: enough to pack messages and
// drive a coalescer with a fake send.
func offlineBus(partitions, flights int) *Bus {
	cfg := Config{URL: "amqp://unused", Partitions: partitions, PublishChannels: flights + 1, PublishFlights: flights}.Defaults()
	b := &Bus{cfg: cfg, names: newNames(cfg.Prefix, "0"), closing: make(chan struct{})}
	b.coal = newCoalescer(b, false)
	return b
}

// Calls that arrive while every flight is busy share the next flight,
// at most maxFlights fly at once, and each call gets its own flight's
// result.
func TestCoalescerSharesFlights(t *testing.T) {
	b := offlineBus(4, 2)
	c := b.coal
	release := make(chan error)
	var (
		mu      sync.Mutex
		flights [][]string // the event ids of each flight
		active  int
		most    int
	)
	c.send = func(calls []*partitionCall) error {
		var ids []string
		for _, call := range calls {
			ids = append(ids, call.x.ids...)
		}
		mu.Lock()
		flights = append(flights, ids)
		active++
		most = max(most, active)
		mu.Unlock()
		err := <-release
		mu.Lock()
		active--
		mu.Unlock()
		return err
	}
	results := make(chan error, 12)
	publish := func(name string) {
		go func() { results <- c.publish(context.Background(), encodedFor(t, b, name, name+"-v")) }()
	}
	// Two calls take the two flights (one after the other: two calls that
	// arrive together may share the first flight, the second finding
	// nothing left to take); ten more wait for them.
	nFlights := func(n int) func() bool {
		return func() bool { mu.Lock(); defer mu.Unlock(); return len(flights) == n }
	}
	publish("a")
	waitFor(t, nFlights(1))
	publish("b")
	waitFor(t, nFlights(2))
	for i := range 10 {
		publish(fmt.Sprintf("w%d", i))
	}
	waitFor(t, func() bool { c.mu.Lock(); defer c.mu.Unlock(); return len(c.waiting) == 10 })
	broken := errors.New("broker said no")
	release <- broken // the first flight fails; its flight then takes all ten waiting calls
	waitFor(t, nFlights(3))
	release <- nil
	release <- nil
	var failed, ok int
	for range 12 {
		if err := <-results; errors.Is(err, broken) {
			failed++
		} else if err == nil {
			ok++
		}
	}
	if failed != 1 || ok != 11 {
		t.Errorf("%d calls failed and %d succeeded, want 1 and 11 (only the failed flight's call fails)", failed, ok)
	}
	if len(flights) != 3 || len(flights[2]) != 10 {
		t.Errorf("flights %v, want the ten waiting calls in the third", flights)
	}
	if most > 2 {
		t.Errorf("%d flights at once, want at most 2", most)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.flights != 0 || len(c.waiting) != 0 {
		t.Errorf("after the calls: %d flights, %d waiting; want none", c.flights, len(c.waiting))
	}
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not reached within 5s")
}

// A flight packs each partition's events into one message, keyed per
// event, within the bounds of a message's events and header.
func TestMessagesByPartition(t *testing.T) {
	b := offlineBus(4, 1)
	b.cfg.MaxMessageEvents = 3
	var visitors []string
	for i := range 40 {
		visitors = append(visitors, fmt.Sprintf("v%d", i))
	}
	x := encodedFor(t, b, "m", visitors...)
	call := &partitionCall{x: x, parts: make([]int, len(x.keys))}
	for i, k := range x.keys {
		call.parts[i] = PartitionOf(k, 4)
	}
	keys, msgs := b.messagesByPartition([]*partitionCall{call}, time.Now(), false)
	seen := 0
	for i, m := range msgs {
		res, err := signals.DecodeMessage(m.Body, time.Now(), b.cfg.Limits)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Events) > 3 {
			t.Errorf("message %d holds %d events, more than MaxMessageEvents 3", i, len(res.Events))
		}
		d := amqp.Delivery{Headers: m.Headers}
		ks := keysOf(&d, len(res.Events))
		for k, e := range res.Events {
			if ks[k] != e.Visitor || fmt.Sprint(PartitionOf(e.Visitor, 4)) != keys[i] {
				t.Errorf("event %s of %s keyed %q in the message to partition %s", e.ID, e.Visitor, ks[k], keys[i])
			}
			seen++
		}
	}
	if seen != 40 {
		t.Errorf("%d events in the messages, want 40", seen)
	}
	// Long keys: the header's bound splits messages too.
	b.cfg.MaxMessageEvents = 500
	n := 0
	for _, ch := range b.chunksWithKeys(200, func(int) int { return 100 }, func(int) int { return 1000 }) {
		if ch[1]-ch[0] > maxHeaderKeyBytes/1000 {
			t.Errorf("a message of %d keys of 1,000 bytes, more than %d bytes of keys", ch[1]-ch[0], maxHeaderKeyBytes)
		}
		n += ch[1] - ch[0]
	}
	if n != 200 {
		t.Errorf("chunks cover %d of 200 events", n)
	}
}

// The routes of a consumed message: per event from kairos-keys (skipping
// rejected events), never foreign; without the header, the routing key,
// foreign when it is not the key's partition.
func TestRoutesOfDeliveries(t *testing.T) {
	body := []byte(`[{"id":"a","type":"view","visitor":"v1","item":"i"},{"id":"b","type":"nope","visitor":"v2"},{"id":"c","type":"view","visitor":"v3","item":"i"}]`)
	res, err := signals.DecodeMessage(body, time.Now(), signals.Limits{})
	if err != nil || len(res.Events) != 2 || len(res.Rejected) != 1 {
		t.Fatalf("decode: %v %+v", err, res)
	}
	d := amqp.Delivery{RoutingKey: "2", Headers: amqp.Table{headerKeys: []any{"k1", "k2", "k3"}}}
	h := held{s: &sub{part: 2}, d: d, res: res, keys: keysOf(&d, 3)}
	got := h.appendRoutes(nil, 16)
	want := []signals.Route{{Key: "k1"}, {Key: "k3"}}
	if !slices.Equal(got, want) {
		t.Errorf("routes of a keyed message: %+v, want %+v", got, want)
	}
	one, _ := signals.DecodeMessage([]byte(`{"id":"x","type":"view","visitor":"v-17","item":"i"}`), time.Now(), signals.Limits{})
	for part, foreign := range map[int]bool{15: false, 3: true} { // PartitionOf("v-17", 16) = 15
		h := held{s: &sub{part: part}, d: amqp.Delivery{RoutingKey: "v-17"}, res: one}
		if r := h.appendRoutes(nil, 16); len(r) != 1 || r[0].Key != "v-17" || r[0].Foreign != foreign {
			t.Errorf("v-17 on partition %d: %+v, want foreign %v", part, r, foreign)
		}
	}
	h = held{s: &sub{part: -1}, d: amqp.Delivery{RoutingKey: "v-17"}, res: one}
	if r := h.appendRoutes(nil, 16); len(r) != 1 || r[0].Foreign {
		t.Errorf("on the per-replica queue: %+v, want not foreign", r)
	}
}

// Concurrent publishes (and forwards) of single events of different
// visitors share messages on the broker, and each event lands in its
// key's partition.
func TestConcurrentPublishesShareMessages(t *testing.T) {
	for _, forward := range []bool{false, true} {
		t.Run(map[bool]string{false: "Publish", true: "Forward"}[forward], func(t *testing.T) {
			testConcurrentCallsShareMessages(t, forward)
		})
	}
}

func testConcurrentCallsShareMessages(t *testing.T, forward bool) {
	cfg := partitionConfig(t)
	a := newAdmin(t, cfg.URL)
	deletePartitions(t, a, cfg.Prefix, cfg.Partitions)
	b := newTestBus(t, cfg, a)
	const calls = 200
	start := make(chan struct{})
	errs := make(chan error, calls)
	for i := range calls {
		go func() {
			<-start
			ev := signals.Event{ID: fmt.Sprintf("cc-%d", i), Type: signals.TypeView, Visitor: fmt.Sprintf("cc-v%d", i), Item: "i"}
			if forward {
				errs <- b.Forward(context.Background(), ev.Visitor, []signals.Event{ev})
				return
			}
			errs <- b.Publish(context.Background(), []signals.Event{ev})
		}()
	}
	close(start)
	for range calls {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	messages, events := 0, 0
	for p := range cfg.Partitions {
		for _, d := range a.getAll(b.names.partition(p)) {
			messages++
			if f, _ := d.Headers[headerForwarded].(bool); f != forward {
				t.Errorf("a message in partition %d marked forwarded %v, want %v", p, f, forward)
			}
			res, err := signals.DecodeMessage(d.Body, time.Now(), b.cfg.Limits)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range res.Events {
				events++
				if q := PartitionOf(e.Visitor, cfg.Partitions); q != p {
					t.Errorf("%s in partition %d, want %d", e.Visitor, p, q)
				}
			}
		}
	}
	t.Logf("%d single-event calls in %d messages", calls, messages)
	if events != calls {
		t.Errorf("%d events in the partitions, want %d", events, calls)
	}
	if messages > calls*3/4 {
		t.Errorf("%d concurrent calls sent %d messages: the flights did not share them", calls, messages)
	}
	if pm, pe := b.Packing(); pm != uint64(messages) || pe != calls {
		t.Errorf("Packing says %d messages of %d events, the partitions hold %d of %d", pm, pe, messages, calls)
	}
}

// Deleting Topology's queues and exchanges leaves nothing of a prefix on
// the broker, whatever the Bus declared (partitions, retries of both
// kinds, the history stream), so a tenant's erasure or a benchmark's
// clean-up is complete.
func TestTopologyNamesEverythingDeclared(t *testing.T) {
	ctl, err := exec.LookPath("rabbitmqctl")
	if err != nil || !brokerIsLocal(t) {
		t.Skip("needs rabbitmqctl for the broker under test")
	}
	cfg := partitionConfig(t)
	cfg.RetryDelay = time.Second
	cfg.Stream = StreamConfig{Enabled: true, MaxAge: time.Hour, MaxBytes: 64 << 20, SegmentBytes: 8 << 20}
	a := newAdmin(t, cfg.URL)
	b := newTestBus(t, cfg, a)
	if err := b.Publish(context.Background(), []signals.Event{{ID: "tp-1", Type: signals.TypeView, Visitor: "v", Item: "i"}}); err != nil {
		t.Fatal(err)
	}
	queues, exchanges := Topology(cfg.Prefix, cfg.Partitions, cfg.Defaults().Replica)
	ch, err := a.conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	for _, q := range queues {
		if _, err := ch.QueueDelete(q, false, false, false); err != nil {
			t.Fatalf("delete queue %s: %v", q, err)
		}
	}
	for _, x := range exchanges {
		if err := ch.ExchangeDelete(x, false, false); err != nil {
			t.Fatalf("delete exchange %s: %v", x, err)
		}
	}
	for _, what := range []string{"list_queues", "list_exchanges"} {
		out, err := exec.Command(ctl, what, "-q", "name").Output()
		if err != nil {
			t.Skipf("rabbitmqctl %s: %v", what, err)
		}
		for _, name := range strings.Fields(string(out)) {
			if strings.HasPrefix(name, cfg.Prefix+".") {
				t.Errorf("%s of the prefix left after deleting Topology's names: %s", strings.TrimPrefix(what, "list_"), name)
			}
		}
	}
}

// brokerIsLocal reports whether the broker under test is the local node
// on the default port, the one rabbitmqctl talks to.
func brokerIsLocal(t *testing.T) bool {
	u, err := url.Parse(amqpURL(t))
	if err != nil {
		return false
	}
	host, port := u.Hostname(), u.Port()
	return (host == "127.0.0.1" || host == "localhost") && (port == "" || port == "5672")
}
