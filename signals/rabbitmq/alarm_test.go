package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kairoshq/kairos/signals"
	"github.com/kairoshq/kairos/signals/bustest"
	"github.com/kairoshq/kairos/signals/rabbitmq/rabbitmqtest"
)

// blockedNow reports whether the broker blocks the publish connection.
func (b *Bus) blockedNow() bool {
	b.pub.mu.Lock()
	defer b.pub.mu.Unlock()
	return b.pub.blocked != ""
}

// waitUntil polls cond until it holds; max only guards against a hang.
func waitUntil(t *testing.T, max time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(max)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %v waiting for %s", max, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// alarmCall is the outcome of one Publish call of TestMemoryAlarm.
type alarmCall struct {
	ids          []string
	err          error
	whileBlocked bool // the call returned while the broker blocked the connection
}

// TestMemoryAlarm raises a real memory alarm on the broker (a low memory
// watermark, restored by the broker itself after a few seconds and by
// the test's cleanup) while publishers run: the calls in flight when the
// broker blocks the connection, and every call while it is blocked,
// return ErrUnavailable before the broker unblocks it (nothing waits for
// the alarm to end); Ready says the broker blocks the connection; after
// the alarm the pool publishes again on every channel, every
// acknowledged event is consumed, and consumption goes on.
func TestMemoryAlarm(t *testing.T) {
	cfg := testConfig(t)
	a := newAdmin(t, cfg.URL)
	b := newTestBus(t, cfg, a)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var mu sync.Mutex
	consumed := map[string]bool{}
	consDone := make(chan error, 1)
	go func() {
		consDone <- b.Consume(ctx, func(_ context.Context, evs []signals.Event) error {
			mu.Lock()
			defer mu.Unlock()
			for _, e := range evs {
				consumed[e.ID] = true
			}
			return nil
		})
	}()
	defer func() { cancel(); <-consDone }()
	allConsumed := func(ids []string) func() bool {
		return func() bool {
			mu.Lock()
			defer mu.Unlock()
			for _, id := range ids {
				if !consumed[id] {
					return false
				}
			}
			return true
		}
	}
	// The pool works and the consumer is up before the alarm.
	first := bustest.Events("before", 2, 3, time.Now())
	if err := b.Publish(ctx, first); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 30*time.Second, "the first events to be consumed", allConsumed(eventIDs(first)))

	// Publishers in closed loops, more than the pool's channels.
	stop := make(chan struct{})
	var (
		callsMu sync.Mutex
		calls   []alarmCall
		pubs    sync.WaitGroup
	)
	for p := range 2 * b.cfg.PublishChannels {
		pubs.Add(1)
		go func() {
			defer pubs.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				evs := bustest.Events(fmt.Sprintf("p%d-%d", p, n), 2, 2, time.Now())
				err := b.Publish(ctx, evs)
				c := alarmCall{ids: eventIDs(evs), err: err, whileBlocked: b.blockedNow()}
				callsMu.Lock()
				calls = append(calls, c)
				callsMu.Unlock()
				time.Sleep(5 * time.Millisecond) // a steady trickle, not a flood

			}
		}()
	}

	restore := rabbitmqtest.MemoryAlarm(t, 4*time.Second)
	defer restore()
	waitUntil(t, 30*time.Second, "Ready to report the blocked connection", func() bool {
		err := b.Ready(ctx)
		return err != nil && strings.Contains(err.Error(), "the broker blocks the publish connection (resource alarm")
	})
	if err := b.Ready(ctx); !errors.Is(err, signals.ErrUnavailable) {
		t.Errorf("Ready while blocked = %v, want ErrUnavailable", err)
	}
	// While blocked, calls fail at once: they return before the unblock.
	err := b.Publish(ctx, bustest.Events("during", 1, 1, time.Now()))
	blocked := b.blockedNow()
	if !errors.Is(err, signals.ErrUnavailable) || !strings.Contains(err.Error(), "resource alarm") || !blocked {
		t.Errorf("Publish while blocked = %v (returned while still blocked: %v), want ErrUnavailable naming the resource alarm before the unblock", err, blocked)
	}
	err = b.Broadcast(ctx, signals.TopicUpdates, []byte("x"))
	blocked = b.blockedNow()
	if !errors.Is(err, signals.ErrUnavailable) || !blocked {
		t.Errorf("Broadcast while blocked = %v (returned while still blocked: %v), want ErrUnavailable before the unblock", err, blocked)
	}

	waitUntil(t, 60*time.Second, "the broker to unblock the connection", func() bool { return b.Ready(ctx) == nil })
	close(stop)
	pubsDone := make(chan struct{})
	go func() { pubs.Wait(); close(pubsDone) }()
	select {
	case <-pubsDone:
	case <-time.After(60 * time.Second):
		t.Fatal("a Publish call still hangs a minute after the alarm")
	}

	var acked []string
	failedWhileBlocked := 0
	for _, c := range calls {
		switch {
		case c.err == nil:
			acked = append(acked, c.ids...)
		case c.whileBlocked && errors.Is(c.err, signals.ErrUnavailable):
			failedWhileBlocked++
		}
	}
	// The broker blocks the connection on a publish of ours, held unread:
	// that call was in flight and must have returned during the block.
	if failedWhileBlocked == 0 {
		t.Error("no Publish call returned ErrUnavailable while the broker blocked the connection")
	}
	t.Logf("%d events acknowledged around the alarm, %d calls refused while blocked", len(acked), failedWhileBlocked)

	// The pool recovered: every channel publishes again, concurrently.
	var after []string
	var wg sync.WaitGroup
	errs := make(chan error, 2*b.cfg.PublishChannels)
	for i := range 2 * b.cfg.PublishChannels {
		evs := bustest.Events(fmt.Sprintf("after%d", i), 2, 3, time.Now())
		after = append(after, eventIDs(evs)...)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- b.Publish(ctx, evs)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Publish after the alarm: %v", err)
		}
	}
	// Nothing acknowledged is lost, and the consumer goes on.
	waitUntil(t, 60*time.Second, "every acknowledged event to be consumed", allConsumed(append(acked, after...)))
}

func eventIDs(evs []signals.Event) []string {
	ids := make([]string, len(evs))
	for i := range evs {
		ids[i] = evs[i].ID
	}
	return ids
}
