package rabbitmq

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/kairoshq/kairos/signals"
	"github.com/kairoshq/kairos/signals/bustest"
)

// getAll takes every message of queue (nothing may consume it). It
// consumes rather than gets: quorum queues with a single active consumer
// refuse basic.get.
func (a *admin) getAll(queue string) []amqp.Delivery {
	a.t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	ch, err := a.conn.Channel()
	if err != nil {
		a.t.Fatalf("get from %s: %v", queue, err)
	}
	defer ch.Close()
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		a.t.Fatalf("get from %s: %v", queue, err)
	}
	if q.Messages == 0 {
		return nil
	}
	deliveries, err := ch.Consume(queue, "", true, false, false, false, nil)
	if err != nil {
		a.t.Fatalf("get from %s: %v", queue, err)
	}
	out := make([]amqp.Delivery, 0, q.Messages)
	timeout := time.After(10 * time.Second)
	for len(out) < q.Messages {
		select {
		case d := <-deliveries:
			out = append(out, d)
		case <-timeout:
			a.t.Fatalf("get from %s: %d of %d messages in 10 s", queue, len(out), q.Messages)
		}
	}
	return out
}

// TestPublishWireFormat reads the published messages off the queue: one
// message per visitor and chunk, in order, with the documented properties.
func TestPublishWireFormat(t *testing.T) {
	tests := []struct {
		name     string
		maxCount int
		maxBytes int
	}{
		{"count cap", 3, 0},
		{"byte cap", 0, 700},
		{"defaults", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.MaxMessageEvents, cfg.Limits.MaxBatchBytes = tt.maxCount, tt.maxBytes
			a := newAdmin(t, cfg.URL)
			b := newTestBus(t, cfg, a)
			maxCount, maxBytes := b.cfg.MaxMessageEvents, b.cfg.Limits.MaxBatchBytes
			// v0: 7 events, v1: 1, v2: 2, interleaved.
			var events []signals.Event
			for _, e := range bustest.Events("wire", 3, 7, time.Now()) {
				if e.Visitor == "wire-v-0" || (e.Visitor == "wire-v-1" && len(events) < 3) || (e.Visitor == "wire-v-2" && len(events) < 6) {
					events = append(events, e)
				}
			}
			if err := b.Publish(context.Background(), events); err != nil {
				t.Fatal(err)
			}
			msgs := a.getAll(b.names.queue)
			var (
				got      []signals.Event
				visitors []string // routing keys in message order
			)
			for i, m := range msgs {
				res, err := signals.DecodeMessage(m.Body, time.Now(), signals.Limits{})
				if err != nil || len(res.Rejected) > 0 {
					t.Fatalf("message %d %s: %v %+v", i, m.Body, err, res.Rejected)
				}
				n := len(res.Events)
				if n < 1 || n > maxCount || (n > 1 && len(m.Body) > maxBytes) {
					t.Errorf("message %d: %d events, %d bytes; caps %d events, %d bytes", i, n, len(m.Body), maxCount, maxBytes)
				}
				if res.Array != (n > 1) {
					t.Errorf("message %d: %d events, array form %v (a single event is a bare object)", i, n, res.Array)
				}
				first := res.Events[0]
				if m.RoutingKey != first.Visitor || m.MessageId != first.ID || m.ContentType != "application/json" ||
					m.DeliveryMode != amqp.Persistent || m.Headers[headerCount] != int32(n) {
					t.Errorf("message %d: key %q id %q type %q mode %d count %v; want key %q id %q, application/json, persistent, count %d",
						i, m.RoutingKey, m.MessageId, m.ContentType, m.DeliveryMode, m.Headers[headerCount], first.Visitor, first.ID, n)
				}
				if typ, ok := m.Headers[headerType]; ok != (n == 1) || (ok && typ != string(first.Type)) {
					t.Errorf("message %d of %d events: kairos-type header %v", i, n, typ)
				}
				for _, e := range res.Events {
					if e.Visitor != m.RoutingKey {
						t.Errorf("message %d for %s holds an event of %s", i, m.RoutingKey, e.Visitor)
					}
				}
				// Greedy packing: a message is cut only where the next event
				// of its visitor would not fit.
				if i+1 < len(msgs) && msgs[i+1].RoutingKey == m.RoutingKey {
					next, _ := signals.DecodeMessage(msgs[i+1].Body, time.Now(), signals.Limits{})
					nextLen := len(msgs[i+1].Body)
					if next.Array {
						nextLen = encodedLen(t, next.Events[0])
					}
					size := len(m.Body)
					if n == 1 {
						size += 2 // it would become an array
					}
					if n < maxCount && size+1+nextLen <= maxBytes {
						t.Errorf("message %d (%d events, %d bytes) was cut although the next event (%d bytes) fits", i, n, len(m.Body), nextLen)
					}
				}
				if len(visitors) == 0 || visitors[len(visitors)-1] != m.RoutingKey {
					visitors = append(visitors, m.RoutingKey)
				}
				got = append(got, res.Events...)
			}
			// Visitors in order of first appearance, each visitor's events
			// in slice order, every event once.
			if want := []string{"wire-v-0", "wire-v-1", "wire-v-2"}; !slices.Equal(visitors, want) {
				t.Errorf("message routing keys %v, want the runs %v", visitors, want)
			}
			var want []signals.Event
			for _, v := range []string{"wire-v-0", "wire-v-1", "wire-v-2"} {
				for _, e := range events {
					if e.Visitor == v {
						want = append(want, e)
					}
				}
			}
			if len(got) != len(want) {
				t.Fatalf("%d events on the wire, want %d", len(got), len(want))
			}
			for i := range want {
				if got[i].ID != want[i].ID || !got[i].Time.Equal(want[i].Time.Time) {
					t.Errorf("event %d on the wire is %s at %v, want %s at %v", i, got[i].ID, got[i].Time, want[i].ID, want[i].Time)
				}
			}
			if tt.name == "count cap" && len(msgs) != 5 { // v0: 3+3+1, v1: 1, v2: 2
				t.Errorf("%d messages, want 5", len(msgs))
			}
			if tt.name == "defaults" && len(msgs) != 3 {
				t.Errorf("%d messages, want 3 (one per visitor)", len(msgs))
			}
		})
	}
}

// encodedLen is the length of e as Publish encodes it.
func encodedLen(t *testing.T, e signals.Event) int {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(&e); err != nil {
		t.Fatal(err)
	}
	return buf.Len() - 1
}

// TestPublishRefusesOversizedEvent: an event whose JSON exceeds
// Limits.MaxEventBytes would be dead-lettered by every consumer, so
// Publish refuses it, and sends nothing.
func TestPublishRefusesOversizedEvent(t *testing.T) {
	cfg := testConfig(t)
	cfg.Limits.MaxEventBytes = 400
	a := newAdmin(t, cfg.URL)
	b := newTestBus(t, cfg, a)
	events := bustest.Events("big", 1, 3, time.Now())
	events[2].Page = "https://shop.example/" + strings.Repeat("p", 400)
	err := b.Publish(context.Background(), events)
	if !errors.Is(err, signals.ErrInvalid) || !strings.Contains(err.Error(), "event 2: event is") || !strings.Contains(err.Error(), "more than the maximum 400") {
		t.Fatalf("Publish = %v, want an ErrInvalid error for event 2", err)
	}
	if msgs := a.getAll(b.names.queue); len(msgs) != 0 {
		t.Errorf("%d messages published", len(msgs))
	}
}

// TestArrayDeadLetterProperties checks the properties of the dead letter of
// one invalid event of an array.
func TestArrayDeadLetterProperties(t *testing.T) {
	cfg := testConfig(t)
	a := newAdmin(t, cfg.URL)
	b := newTestBus(t, cfg, a)
	bad := `{"id":"dl-2","type":"like","visitor":"v"}`
	body := `[{"id":"dl-1","type":"like","visitor":"v","item":"i"},` + bad + `]`
	publishConfirmed(t, a, b.names.events, "v", amqp.Publishing{
		ContentType: "application/json", MessageId: "msg-1", AppId: "shop",
		Headers: amqp.Table{headerCount: int32(2), "x-shop": "s1"}, Body: []byte(body)})
	batch, dead := consumeUntilDeadLetter(t, a, b)
	if len(batch) != 1 || batch[0].ID != "dl-1" {
		t.Errorf("handled %+v, want dl-1 only", batch)
	}
	d := dead[0]
	h := d.Headers
	if string(d.Body) != bad || d.MessageId != "dl-2" || d.RoutingKey != "v" || d.AppId != "shop" || d.DeliveryMode != amqp.Persistent ||
		h["kairos-reason"] != "item: missing (required for like)" || h["kairos-original-routing-key"] != "v" ||
		h["kairos-original-exchange"] != b.names.events || h["kairos-original-message-id"] != "msg-1" ||
		h["kairos-event-index"] != int32(1) || h["x-shop"] != "s1" || h[headerCount] != nil {
		t.Errorf("dead letter: body %s, id %q, key %q, app %q, mode %d, headers %v", d.Body, d.MessageId, d.RoutingKey, d.AppId, d.DeliveryMode, h)
	}
}

// TestBatchesBoundedByMaxBatchEvents queues messages of 250 events and
// checks that batches hold whole messages and at most MaxBatchEvents
// events.
func TestBatchesBoundedByMaxBatchEvents(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxBatchEvents = 600
	cfg.Linger = 300 * time.Millisecond // every queued message makes it into a batch
	a := newAdmin(t, cfg.URL)
	b := newTestBus(t, cfg, a)
	var all []signals.Event
	for i := range 5 {
		events := bustest.Events(fmt.Sprint("bound", i), 1, 250, time.Now())
		if err := b.Publish(context.Background(), events); err != nil {
			t.Fatal(err)
		}
		all = append(all, events...)
	}
	var (
		mu    sync.Mutex
		sizes []int
		got   []signals.Event
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- b.Consume(ctx, func(_ context.Context, batch []signals.Event) error {
			mu.Lock()
			defer mu.Unlock()
			sizes = append(sizes, len(batch))
			got = append(got, batch...)
			return nil
		})
	}()
	for deadline := time.Now().Add(20 * time.Second); ; {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= len(all) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events handled", n, len(all))
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Consume = %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(sizes, []int{500, 500, 250}) {
		t.Errorf("batch sizes %v, want [500 500 250] (two whole messages of 250 per batch of at most 600)", sizes)
	}
	for i := range all {
		if got[i].ID != all[i].ID {
			t.Fatalf("event %d is %s, want %s", i, got[i].ID, all[i].ID)
		}
	}
}

// TestDeadLetterOfHugeHeaders: an invalid message whose headers are near
// the broker's frame size is dead-lettered without them (a copy would be
// refused by the broker, which closes the connection: the batch came back
// forever), and the valid message after it is handled.
func TestDeadLetterOfHugeHeaders(t *testing.T) {
	cfg := testConfig(t)
	a := newAdmin(t, cfg.URL)
	b := newTestBus(t, cfg, a)
	publish := func(body, id string, headers amqp.Table) {
		t.Helper()
		publishConfirmed(t, a, b.names.events, "v-hpc", amqp.Publishing{ContentType: "application/json", MessageId: id, Headers: headers, Body: []byte(body)})
	}
	publish(`{"id":"hpc1","type":"view","visitor":"user:hpc","item":"i"}`, "m-hpc1", amqp.Table{"x-pad": strings.Repeat("p", 130850), "x-shop": "s1"})
	publish(`{"id":"hpc2","type":"view","visitor":"v-hpc","item":"i"}`, "m-hpc2", nil)
	batch, dead := consumeUntilDeadLetter(t, a, b)
	if len(batch) != 1 || batch[0].ID != "hpc2" {
		t.Errorf("handled %+v, want hpc2 only (the valid message after the huge one)", batch)
	}
	h := dead[0].Headers
	if h["kairos-headers-dropped"] != int32(1) || h["x-pad"] != nil || h["x-shop"] != "s1" || !strings.Contains(fmt.Sprint(h["kairos-reason"]), "reserved") {
		t.Errorf("dead letter headers: dropped %v, x-shop %v, reason %v, x-pad kept %v", h["kairos-headers-dropped"], h["x-shop"], h["kairos-reason"], h["x-pad"] != nil)
	}
}

// TestDeadLettersLoggedAtMostOnceASecond: a flood of dead letters is one
// log line a second, the next line counting those not logged.
func TestDeadLettersLoggedAtMostOnceASecond(t *testing.T) {
	var buf bytes.Buffer
	d := &deadLetterer{b: &Bus{log: slog.New(slog.NewJSONHandler(&buf, nil)), ctx: context.Background()}}
	letter := []deadLetter{{reason: "id: missing", msg: amqp.Publishing{MessageId: "m", Body: []byte("{}")}}}
	t0 := time.Unix(1_800_000_000, 0)
	for i := range 1000 {
		d.log(letter, t0.Add(time.Duration(i)*time.Millisecond)) // 1,000 in one second
	}
	d.log(letter, t0.Add(1500*time.Millisecond))
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"more_not_logged":0`) || !strings.Contains(lines[1], `"more_not_logged":999`) {
		t.Fatalf("%d lines: %q", len(lines), lines)
	}
}

// publishConfirmed publishes msg to exchange with key through the admin
// channel and waits for the broker's confirm.
func publishConfirmed(t *testing.T, a *admin, exchange, key string, msg amqp.Publishing) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	dc, err := a.ch.PublishWithDeferredConfirmWithContext(context.Background(), exchange, key, true, false, msg)
	if err == nil {
		_, err = dc.WaitContext(context.Background())
	}
	if err != nil {
		t.Fatal(err)
	}
}

// consumeUntilDeadLetter consumes with b until a batch is handled and its
// queue of dead letters holds one, and returns the first batch and the
// dead letters (it fails t after 20 s each, or when there is not exactly
// one dead letter).
func consumeUntilDeadLetter(t *testing.T, a *admin, b *Bus) ([]signals.Event, []amqp.Delivery) {
	t.Helper()
	got := make(chan []signals.Event, 4)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- b.Consume(ctx, func(_ context.Context, batch []signals.Event) error {
			got <- slices.Clone(batch)
			return nil
		})
	}()
	var batch []signals.Event
	select {
	case batch = <-got:
	case <-time.After(20 * time.Second):
		t.Fatal("nothing handled")
	}
	var dead []amqp.Delivery
	for deadline := time.Now().Add(20 * time.Second); len(dead) == 0 && time.Now().Before(deadline); {
		dead = a.getAll(b.names.dead)
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Consume = %v", err)
	}
	if len(dead) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dead))
	}
	return batch, dead
}
