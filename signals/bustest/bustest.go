package bustest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kairoshq/kairos/signals"
)

// Fixture is what an implementation's test hands to Run for each subtest.
type Fixture struct {
	// Bus is a fresh bus, isolated from other fixtures (its own queues);
	// the fixture's cleanup (t.Cleanup) closes it.
	Bus signals.Bus
	// Sync is true when Publish runs the handler synchronously and returns
	// its error instead of the broker redelivering the batch (membus).
	Sync bool
	// InjectRaw publishes body unvalidated with routing key key, the way a
	// foreign producer could, so that poison messages can be tested.
	InjectRaw func(ctx context.Context, key string, body []byte) error
	// DeadLetters returns every message dead-lettered so far, oldest
	// first.
	DeadLetters func(ctx context.Context) ([]signals.DeadLetter, error)
	// ArrayBodies is true when a message body may also be a JSON array of
	// events (signals.DecodeMessage): InjectRaw then accepts arrays, whose
	// valid events are delivered and whose invalid events are
	// dead-lettered one by one (signals/rabbitmq). False when InjectRaw
	// takes one event object only (signals/membus, which carries events,
	// not messages).
	ArrayBodies bool
}

// Run runs the contract suite as subtests of t; newFixture is called once
// per subtest.
func Run(t *testing.T, newFixture func(t *testing.T) Fixture) {
	t.Run("RoundTrip", func(t *testing.T) { testRoundTrip(t, newFixture(t)) })
	t.Run("HandlerErrorRedelivers", func(t *testing.T) { testHandlerError(t, newFixture(t)) })
	t.Run("PoisonIsDeadLettered", func(t *testing.T) { testPoison(t, newFixture(t)) })
	t.Run("LongVisitorStreamKeepsOrder", func(t *testing.T) { testLongStream(t, newFixture(t)) })
	t.Run("ArrayBodies", func(t *testing.T) {
		f := newFixture(t)
		if !f.ArrayBodies {
			t.Skip("the bus does not carry message bodies of several events")
		}
		testArrayBodies(t, f)
	})
	t.Run("InvalidEventsOfAnArrayAreDeadLetteredOneByOne", func(t *testing.T) {
		f := newFixture(t)
		if !f.ArrayBodies {
			t.Skip("the bus does not carry message bodies of several events")
		}
		testArrayPoison(t, f)
	})
	t.Run("BroadcastReachesEverySubscriber", func(t *testing.T) { testBroadcast(t, newFixture(t)) })
	t.Run("GracefulStopAcksInFlightBatch", func(t *testing.T) { testGracefulStop(t, newFixture(t)) })
	t.Run("PublishRefusesInvalidEvents", func(t *testing.T) { testPublishInvalid(t, newFixture(t)) })
	t.Run("Close", func(t *testing.T) { testClose(t, newFixture(t)) })
}

// waitTimeout bounds every wait of the suite.
const waitTimeout = 20 * time.Second

// Events returns n events per visitor for the given number of visitors,
// interleaved (v0 e0, v1 e0, ..., v0 e1, ...), with ids and visitor ids
// prefixed by prefix, normalized at now. Types and values vary so that the
// fields are exercised.
func Events(prefix string, visitors, n int, now time.Time) []signals.Event {
	var out []signals.Event
	types := []signals.Type{signals.TypeView, signals.TypeClick, signals.TypeDwell, signals.TypeLike, signals.TypeAddToCart, signals.TypeConversion}
	for i := range n {
		for v := range visitors {
			e := signals.Event{
				ID:      fmt.Sprintf("%s-e-%d-%d", prefix, v, i),
				Type:    types[(i+v)%len(types)],
				Visitor: fmt.Sprintf("%s-v-%d", prefix, v),
				Item:    fmt.Sprintf("item-%d", (i*7+v)%13),
				Time:    signals.Timestamp{Time: now.Add(time.Duration(i) * time.Millisecond)},
				Session: "s-1",
				Page:    "https://shop.example/p/" + fmt.Sprint(i),
			}
			if e.Type == signals.TypeDwell {
				e.Value = float64(300 + 10*i)
				e.Element = "item:" + e.Item
			}
			if e.Type == signals.TypeConversion {
				e.Value = 19.99
				e.Props = map[string]string{"currency": "EUR"}
			}
			e.Normalize(now)
			out = append(out, e)
		}
	}
	return out
}

// recorder is a BatchHandler that records what it handled successfully and
// fails when fail says so.
type recorder struct {
	t        *testing.T
	mu       sync.Mutex
	handled  []signals.Event // successfully handled, in order
	attempts map[string]int  // id -> handler calls that included it
	calls    int
	inFlight atomic.Int32
	fail     func(call int, batch []signals.Event) error
	changed  chan struct{} // capacity 1, signalled after each call
}

func newRecorder(t *testing.T) *recorder {
	return &recorder{t: t, attempts: map[string]int{}, changed: make(chan struct{}, 1)}
}

func (r *recorder) handle(ctx context.Context, batch []signals.Event) error {
	if n := r.inFlight.Add(1); n != 1 {
		r.t.Errorf("%d concurrent handler calls", n)
	}
	defer r.inFlight.Add(-1)
	if len(batch) == 0 {
		r.t.Error("handler called with an empty batch")
	}
	r.mu.Lock()
	r.calls++
	call := r.calls
	for _, e := range batch {
		r.attempts[e.ID]++
	}
	fail := r.fail
	r.mu.Unlock()
	var err error
	if fail != nil {
		err = fail(call, batch)
	}
	r.mu.Lock()
	if err == nil {
		r.handled = append(r.handled, batch...)
	}
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
	return err
}

// waitFor waits until cond (called with r.mu held) is true.
func (r *recorder) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		r.mu.Lock()
		ok := cond()
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-r.changed:
		case <-tick.C:
		case <-deadline.C:
			r.mu.Lock()
			n := len(r.handled)
			r.mu.Unlock()
			t.Fatalf("timed out after %v waiting for %s (%d events handled)", waitTimeout, what, n)
		}
	}
}

// hasIDs reports whether all ids were handled; call with r.mu held.
func (r *recorder) hasIDs(ids ...string) bool {
	seen := make(map[string]bool, len(r.handled))
	for _, e := range r.handled {
		seen[e.ID] = true
	}
	for _, id := range ids {
		if !seen[id] {
			return false
		}
	}
	return true
}

func (r *recorder) snapshot() []signals.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.handled)
}

// consume runs f.Bus.Consume in a goroutine; the returned stop function
// cancels it and checks that it returns nil.
func consume(t *testing.T, bus signals.Bus, h signals.BatchHandler) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- bus.Consume(ctx, h) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Consume returned %v after its context ended, want nil", err)
				}
			case <-time.After(waitTimeout):
				t.Errorf("Consume did not return within %v after its context ended", waitTimeout)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func ids(events []signals.Event) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.ID
	}
	return out
}

func runID() string { return fmt.Sprintf("t%08x", rand.Uint32()) }

// publish publishes events and fails the test on error.
func publish(t *testing.T, bus signals.Bus, events []signals.Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := bus.Publish(ctx, events); err != nil {
		t.Fatalf("Publish: %v", err)
	}
}

// checkPerVisitorOrder checks that got holds, for each visitor, the events
// of want in want's order (got may hold other events too).
func checkPerVisitorOrder(t *testing.T, got, want []signals.Event) {
	t.Helper()
	wanted := map[string]bool{}
	wantBy := map[string][]string{}
	for _, e := range want {
		wanted[e.ID] = true
		wantBy[e.Visitor] = append(wantBy[e.Visitor], e.ID)
	}
	gotBy := map[string][]string{}
	for _, e := range got {
		if wanted[e.ID] {
			gotBy[e.Visitor] = append(gotBy[e.Visitor], e.ID)
		}
	}
	for v, w := range wantBy {
		if !slices.Equal(gotBy[v], w) {
			t.Errorf("visitor %s: handled %v, want %v", v, gotBy[v], w)
		}
	}
}

func testRoundTrip(t *testing.T, f Fixture) {
	now := time.Now()
	rec := newRecorder(t)
	stop := consume(t, f.Bus, rec.handle)
	const publishers = 4
	events := Events(runID(), 8, 30, now)
	// Each publisher owns the visitors v with v%publishers == p and
	// publishes their events in order, in batches of up to 13 events.
	var wg sync.WaitGroup
	errs := make(chan error, publishers)
	for p := range publishers {
		var mine []signals.Event
		for _, e := range events {
			var v int
			fmt.Sscanf(e.Visitor[strings.LastIndexByte(e.Visitor, '-')+1:], "%d", &v)
			if v%publishers == p {
				mine = append(mine, e)
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			for len(mine) > 0 {
				n := min(len(mine), 1+len(mine)%13)
				if err := f.Bus.Publish(ctx, mine[:n]); err != nil {
					errs <- err
					return
				}
				mine = mine[n:]
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Publish: %v", err)
	}
	all := ids(events)
	rec.waitFor(t, "all events", func() bool { return rec.hasIDs(all...) })
	stop()
	got := rec.snapshot()
	if len(got) != len(events) {
		t.Errorf("handled %d events, want %d (each once)", len(got), len(events))
	}
	byID := map[string]signals.Event{}
	for _, e := range events {
		byID[e.ID] = e
	}
	for _, e := range got {
		w := byID[e.ID]
		if !e.Time.Equal(w.Time.Time) {
			t.Errorf("event %s: ts %v, want %v", e.ID, e.Time, w.Time)
		}
		e.Time, w.Time = signals.Timestamp{}, signals.Timestamp{}
		if !reflect.DeepEqual(e, w) {
			t.Errorf("event changed in transit:\n got %+v\nwant %+v", e, w)
		}
	}
	checkPerVisitorOrder(t, got, events)
}

var errBoom = errors.New("boom: store unavailable")

func testHandlerError(t *testing.T, f Fixture) {
	events := Events(runID(), 1, 3, time.Now())
	bad := events[1].ID
	rec := newRecorder(t)
	rec.fail = func(call int, batch []signals.Event) error {
		rec.mu.Lock()
		n := rec.attempts[bad]
		rec.mu.Unlock()
		if n == 1 && slices.ContainsFunc(batch, func(e signals.Event) bool { return e.ID == bad }) {
			return errBoom
		}
		return nil
	}
	consume(t, f.Bus, rec.handle)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	err := f.Bus.Publish(ctx, events)
	if f.Sync {
		if !errors.Is(err, errBoom) {
			t.Fatalf("synchronous Publish = %v, want the handler's error", err)
		}
		// The client retries the whole batch.
		publish(t, f.Bus, events)
	} else if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	rec.waitFor(t, "redelivery", func() bool { return rec.hasIDs(ids(events)...) })
	rec.mu.Lock()
	attempts := rec.attempts[bad]
	rec.mu.Unlock()
	if attempts < 2 {
		t.Errorf("event %s was tried %d times, want >= 2", bad, attempts)
	}
	got := rec.snapshot()
	// Order of first successful handling per visitor.
	var first []signals.Event
	seen := map[string]bool{}
	for _, e := range got {
		if !seen[e.ID] {
			seen[e.ID] = true
			first = append(first, e)
		}
	}
	checkPerVisitorOrder(t, first, events)
}

func testPoison(t *testing.T, f Fixture) {
	if f.InjectRaw == nil || f.DeadLetters == nil {
		t.Fatal("the fixture must provide InjectRaw and DeadLetters")
	}
	id := runID()
	visitor := id + "-v"
	rec := newRecorder(t)
	consume(t, f.Bus, rec.handle)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	poison := []struct{ body, reason string }{
		{`this is not json`, "must be a JSON object"},
		{`{"id":"` + id + `-p1","type":"hover","visitor":"` + visitor + `"}`, `type: unknown type "hover"`},
		{`{"id":"` + id + `-p2","type":"dwell","visitor":"` + visitor + `","item":"i","value":"NaN"}`, "value: NaN is not a number"},
		{`{"id":"` + id + `-p3","type":"view","visitor":"` + visitor + `","item":"i","value":NaN}`, "value: NaN is not a number"},
		// A client may not name a user's state as its visitor, nor send
		// ids that JSON decoding would change or that display as others.
		{`{"id":"` + id + `-p4","type":"like","visitor":"user:alice","item":"i"}`, `visitor: the prefix "user:" is reserved`},
		{`{"id":"` + id + `-p5","type":"like","visitor":"` + visitor + "\xff" + `","item":"i"}`, "visitor: not valid UTF-8 (byte 0xff"},
		{`{"id":"` + id + `-p6","type":"like","visitor":"` + visitor + `","item":"i\u202e"}`, "item: contains bidirectional control character U+202E"},
	}
	good := Events(id, 1, 2, time.Now())
	goodRaw := `{"id":"` + id + `-raw","type":"like","visitor":"` + visitor + `","item":"i"}`
	for _, p := range poison[:2] {
		if err := f.InjectRaw(ctx, visitor, []byte(p.body)); err != nil {
			t.Fatalf("InjectRaw: %v", err)
		}
	}
	publish(t, f.Bus, good[:1])
	for _, p := range poison[2:] {
		if err := f.InjectRaw(ctx, visitor, []byte(p.body)); err != nil {
			t.Fatalf("InjectRaw: %v", err)
		}
	}
	if err := f.InjectRaw(ctx, visitor, []byte(goodRaw)); err != nil {
		t.Fatalf("InjectRaw: %v", err)
	}
	publish(t, f.Bus, good[1:])
	rec.waitFor(t, "the valid events after the poison", func() bool { return rec.hasIDs(good[0].ID, id+"-raw", good[1].ID) })
	for _, e := range rec.snapshot() {
		if strings.Contains(e.ID, "-p") {
			t.Errorf("poison message %s reached the handler", e.ID)
		}
	}
	checkDeadLetters(t, f, visitor, poison)
	// A bus that counts its dead letters (kairos_events_dead_lettered_total)
	// counted these (at least once each).
	if c, ok := f.Bus.(interface{ DeadLettered() uint64 }); ok {
		if n := c.DeadLettered(); n < uint64(len(poison)) {
			t.Errorf("DeadLettered() = %d, want at least %d", n, len(poison))
		}
	}
}

// checkDeadLetters waits for len(want) dead letters and checks each one's
// body, reason (a substring) and routing key.
func checkDeadLetters(t *testing.T, f Fixture, key string, want []struct{ body, reason string }) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	var dead []signals.DeadLetter
	deadline := time.Now().Add(waitTimeout)
	for {
		var err error
		dead, err = f.DeadLetters(ctx)
		if err != nil {
			t.Fatalf("DeadLetters: %v", err)
		}
		if len(dead) >= len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(dead) != len(want) {
		t.Fatalf("%d dead letters, want %d: %+v", len(dead), len(want), dead)
	}
	for i, w := range want {
		d := dead[i]
		if string(d.Body) != w.body || !strings.Contains(d.Reason, w.reason) || d.RoutingKey != key {
			t.Errorf("dead letter %d = {body %q reason %q key %q}, want body %q, reason containing %q, key %q",
				i, d.Body, d.Reason, d.RoutingKey, w.body, w.reason, key)
		}
	}
}

// testLongStream publishes more events of one visitor than fit into one
// message, together with a few other visitors: all arrive once, in order.
func testLongStream(t *testing.T, f Fixture) {
	now := time.Now()
	id := runID()
	long := Events(id+"l", 1, 1100, now)
	others := Events(id+"o", 3, 7, now)
	rec := newRecorder(t)
	stop := consume(t, f.Bus, rec.handle)
	publish(t, f.Bus, append(slices.Clone(long[:600]), others...))
	publish(t, f.Bus, long[600:])
	all := append(slices.Clone(long), others...)
	rec.waitFor(t, "all events", func() bool { return rec.hasIDs(ids(all)...) })
	stop()
	got := rec.snapshot()
	if len(got) != len(all) {
		t.Errorf("handled %d events, want %d (each once)", len(got), len(all))
	}
	checkPerVisitorOrder(t, got, all)
}

// rawEvent returns the JSON of a valid like event.
func rawEvent(id, visitor string) string {
	return `{"id":"` + id + `","type":"like","visitor":"` + visitor + `","item":"i"}`
}

// testArrayBodies injects array bodies and single-object bodies, as
// server-side producers may: every event arrives, in order.
func testArrayBodies(t *testing.T, f Fixture) {
	id := runID()
	v, w := id+"-v", id+"-w"
	rec := newRecorder(t)
	stop := consume(t, f.Bus, rec.handle)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	bodies := []string{
		"[" + rawEvent(id+"-1", v) + "," + rawEvent(id+"-2", v) + ",\n" + rawEvent(id+"-3", v) + "]",
		rawEvent(id+"-4", v), // the single-object form
		"[" + rawEvent(id+"-5", v) + "]",
		// The visitor of an event may differ from the routing key.
		"[" + rawEvent(id+"-6", w) + "," + rawEvent(id+"-7", v) + "]",
	}
	for _, body := range bodies {
		if err := f.InjectRaw(ctx, v, []byte(body)); err != nil {
			t.Fatalf("InjectRaw: %v", err)
		}
	}
	var want []string
	for i := 1; i <= 7; i++ {
		want = append(want, fmt.Sprintf("%s-%d", id, i))
	}
	rec.waitFor(t, "the injected events", func() bool { return rec.hasIDs(want...) })
	stop()
	// One routing key: one queue, so the order is the injection order.
	if got := ids(rec.snapshot()); !slices.Equal(got, want) {
		t.Errorf("handled %v, want %v", got, want)
	}
	for _, e := range rec.snapshot() {
		if e.ID == id+"-6" && e.Visitor != w {
			t.Errorf("event %s has visitor %s, want %s", e.ID, e.Visitor, w)
		}
	}
	dead, err := f.DeadLetters(ctx)
	if err != nil {
		t.Fatalf("DeadLetters: %v", err)
	}
	if len(dead) != 0 {
		t.Errorf("dead letters %+v, want none", dead)
	}
}

// testArrayPoison injects an array mixing valid and invalid events: the
// valid ones are delivered, each invalid one is dead-lettered on its own;
// an array that does not parse is dead-lettered whole.
func testArrayPoison(t *testing.T, f Fixture) {
	id := runID()
	v := id + "-v"
	rec := newRecorder(t)
	consume(t, f.Bus, rec.handle)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	hover := `{"id":"` + id + `-p1","type":"hover","visitor":"` + v + `"}`
	nan := `{"id":"` + id + `-p2","type":"dwell","visitor":"` + v + `","item":"i","value":NaN}`
	noItem := `{"id":"` + id + `-p3","type":"like","visitor":"` + v + `"}`
	mixed := "[" + rawEvent(id+"-1", v) + "," + hover + "," + rawEvent(id+"-2", v) + "," + nan + ",  1 ," + noItem + "]"
	broken := "[" + rawEvent(id+"-x", v) + `,{"id":"` + id + `-y"`
	for _, body := range []string{mixed, broken} {
		if err := f.InjectRaw(ctx, v, []byte(body)); err != nil {
			t.Fatalf("InjectRaw: %v", err)
		}
	}
	good := Events(id, 1, 1, time.Now())
	publish(t, f.Bus, good)
	rec.waitFor(t, "the valid events", func() bool { return rec.hasIDs(id+"-1", id+"-2", good[0].ID) })
	// Order holds per visitor only: the good event's visitor may be
	// consumed from another queue (a bus with partitions).
	var ofV []string
	for _, e := range rec.snapshot() {
		if e.Visitor == v {
			ofV = append(ofV, e.ID)
		}
	}
	if want := []string{id + "-1", id + "-2"}; !slices.Equal(ofV, want) || len(rec.snapshot()) != 3 {
		t.Errorf("handled %v (of visitor %s: %v), want %v and %s", ids(rec.snapshot()), v, ofV, want, good[0].ID)
	}
	checkDeadLetters(t, f, v, []struct{ body, reason string }{
		{hover, `type: unknown type "hover"`},
		{nan, "value: NaN is not a number"},
		{"1", "must be a JSON object, got number"},
		{noItem, "item: missing"},
		{broken, "unexpected end of body"},
	})
}

func testBroadcast(t *testing.T, f Fixture) {
	type sub struct {
		mu   sync.Mutex
		msgs []string
		done chan error
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	topics := []signals.Topic{signals.TopicUpdates, signals.TopicUpdates, signals.TopicUpdates, signals.TopicModels}
	subs := make([]*sub, len(topics))
	for i, topic := range topics {
		s := &sub{done: make(chan error, 1)}
		subs[i] = s
		go func() {
			s.done <- f.Bus.Subscribe(ctx, topic, func(msg []byte) {
				s.mu.Lock()
				s.msgs = append(s.msgs, string(msg))
				s.mu.Unlock()
			})
		}()
	}
	received := func(s *sub, pred func(string) bool) []string {
		s.mu.Lock()
		defer s.mu.Unlock()
		var out []string
		for _, m := range s.msgs {
			if pred(m) {
				out = append(out, m)
			}
		}
		return out
	}
	isProbe := func(m string) bool { return strings.HasPrefix(m, "probe") }
	// A subscription takes effect asynchronously: probe until every
	// subscriber has seen a probe of its topic.
	deadline := time.Now().Add(waitTimeout)
	for n := 0; ; n++ {
		ready := true
		for _, s := range subs {
			ready = ready && len(received(s, isProbe)) > 0
		}
		if ready {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("subscribers never received a probe")
		}
		for _, topic := range []signals.Topic{signals.TopicUpdates, signals.TopicModels} {
			if err := f.Bus.Broadcast(ctx, topic, []byte(fmt.Sprintf("probe-%d", n))); err != nil {
				t.Fatalf("Broadcast: %v", err)
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	var want []string
	buf := make([]byte, 0, 16)
	for i := range 20 {
		buf = fmt.Appendf(buf[:0], "update-%02d", i)
		if err := f.Bus.Broadcast(ctx, signals.TopicUpdates, buf); err != nil {
			t.Fatalf("Broadcast: %v", err)
		}
		copy(buf, "XXXXXX") // the bus must have copied msg
		want = append(want, fmt.Sprintf("update-%02d", i))
	}
	if err := f.Bus.Broadcast(ctx, signals.TopicModels, []byte("model-1")); err != nil {
		t.Fatalf("Broadcast: %v", err)
	}
	isData := func(m string) bool { return !isProbe(m) }
	for i, s := range subs {
		wantHere := want
		if topics[i] == signals.TopicModels {
			wantHere = []string{"model-1"}
		}
		for time.Now().Before(deadline) && len(received(s, isData)) < len(wantHere) {
			time.Sleep(10 * time.Millisecond)
		}
		if got := received(s, isData); !slices.Equal(got, wantHere) {
			t.Errorf("subscriber %d of %s got %q, want %q", i, topics[i], got, wantHere)
		}
	}
	cancel()
	for i, s := range subs {
		select {
		case err := <-s.done:
			if err != nil {
				t.Errorf("Subscribe %d returned %v after its context ended, want nil", i, err)
			}
		case <-time.After(waitTimeout):
			t.Fatalf("Subscribe %d did not return after its context ended", i)
		}
	}
}

func testGracefulStop(t *testing.T, f Fixture) {
	id := runID()
	first := Events(id+"a", 1, 5, time.Now())
	later := Events(id+"b", 1, 1, time.Now())
	entered := make(chan []signals.Event, 1)
	release := make(chan struct{})
	rec := newRecorder(t)
	rec.fail = func(call int, batch []signals.Event) error {
		if call == 1 {
			entered <- slices.Clone(batch)
			<-release
		}
		return nil
	}
	stop := consume(t, f.Bus, rec.handle)
	pubDone := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		pubDone <- f.Bus.Publish(ctx, first)
	}()
	var inFlight []signals.Event
	select {
	case inFlight = <-entered:
	case <-time.After(waitTimeout):
		t.Fatal("handler never called")
	}
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	time.Sleep(50 * time.Millisecond) // let Consume see the cancellation mid-batch
	select {
	case <-stopped:
		t.Fatal("Consume returned before the in-flight batch finished")
	default:
	}
	close(release)
	select {
	case <-stopped:
	case <-time.After(waitTimeout):
		t.Fatal("Consume did not return after the in-flight batch finished")
	}
	if err := <-pubDone; err != nil {
		t.Fatalf("Publish: %v", err)
	}
	// A new consumer must not see the in-flight batch again (it was
	// acknowledged), but must get everything else.
	rec2 := newRecorder(t)
	consume(t, f.Bus, rec2.handle)
	pubDone2 := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		pubDone2 <- f.Bus.Publish(ctx, later)
	}()
	inFlightIDs := ids(inFlight)
	var rest []string
	for _, e := range first {
		if !slices.Contains(inFlightIDs, e.ID) {
			rest = append(rest, e.ID)
		}
	}
	rec2.waitFor(t, "the events after the stop", func() bool { return rec2.hasIDs(append(rest, later[0].ID)...) })
	if err := <-pubDone2; err != nil {
		t.Fatalf("Publish: %v", err)
	}
	for _, e := range rec2.snapshot() {
		if slices.Contains(inFlightIDs, e.ID) {
			t.Errorf("event %s of the acknowledged in-flight batch was redelivered", e.ID)
		}
	}
}

func testPublishInvalid(t *testing.T, f Fixture) {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	events := Events(runID(), 1, 2, time.Now())
	events[1].Visitor = ""
	err := f.Bus.Publish(ctx, events)
	if !errors.Is(err, signals.ErrInvalid) || !strings.Contains(err.Error(), "visitor: missing") {
		t.Fatalf("Publish of an invalid event = %v, want an error matching ErrInvalid naming visitor", err)
	}
	// Nothing was delivered: a consumer sees only the next valid batch.
	rec := newRecorder(t)
	consume(t, f.Bus, rec.handle)
	next := Events(runID(), 1, 1, time.Now())
	publish(t, f.Bus, next)
	rec.waitFor(t, "the next batch", func() bool { return rec.hasIDs(next[0].ID) })
	if got := ids(rec.snapshot()); !slices.Equal(got, ids(next)) {
		t.Errorf("handled %v, want only %v", got, ids(next))
	}
}

func testClose(t *testing.T, f Fixture) {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := f.Bus.Ready(ctx); err != nil {
		t.Fatalf("Ready on a fresh bus: %v", err)
	}
	consumeDone := make(chan error, 1)
	go func() { consumeDone <- f.Bus.Consume(ctx, func(context.Context, []signals.Event) error { return nil }) }()
	subDone := make(chan error, 1)
	go func() { subDone <- f.Bus.Subscribe(ctx, signals.TopicPromotions, func([]byte) {}) }()
	time.Sleep(100 * time.Millisecond)
	if err := f.Bus.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for name, ch := range map[string]chan error{"Consume": consumeDone, "Subscribe": subDone} {
		select {
		case err := <-ch:
			if !errors.Is(err, signals.ErrClosed) {
				t.Errorf("%s after Close returned %v, want ErrClosed", name, err)
			}
		case <-time.After(waitTimeout):
			t.Errorf("%s did not return after Close", name)
		}
	}
	if err := f.Bus.Ready(ctx); err == nil {
		t.Error("Ready after Close = nil")
	}
	if err := f.Bus.Publish(ctx, Events(runID(), 1, 1, time.Now())); !errors.Is(err, signals.ErrClosed) {
		t.Errorf("Publish after Close = %v, want ErrClosed", err)
	}
	if err := f.Bus.Broadcast(ctx, signals.TopicUpdates, []byte("x")); !errors.Is(err, signals.ErrClosed) {
		t.Errorf("Broadcast after Close = %v, want ErrClosed", err)
	}
	if err := f.Bus.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
