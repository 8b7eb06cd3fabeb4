package rabbitmq

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/kairoshq/kairos/internal/errs"
)

// declaredType finds the type of queue q (a passive declaration does not
// tell it): it redeclares q with each type on a fresh channel, and the
// broker accepts only the queue's own.
func declaredType(t *testing.T, a *admin, q string, args amqp.Table) string {
	t.Helper()
	var found []string
	for _, qt := range []string{QueueQuorum, QueueClassic} {
		ch, err := a.conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		all := amqp.Table{"x-queue-type": qt}
		for k, v := range args {
			all[k] = v
		}
		if _, err := ch.QueueDeclare(q, true, false, false, false, all); err == nil {
			found = append(found, qt)
			ch.Close()
		}
	}
	if len(found) != 1 {
		t.Fatalf("queue %s: accepted as %v, want exactly one type", q, found)
	}
	return found[0]
}

func TestQueueTypes(t *testing.T) {
	for _, qt := range []string{"", QueueQuorum, QueueClassic} {
		t.Run("type="+qt, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.QueueType = qt
			a := newAdmin(t, cfg.URL)
			b := newTestBus(t, cfg, a)
			want := qt
			if want == "" {
				want = QueueQuorum
			}
			if got := declaredType(t, a, b.names.queue, amqp.Table{"x-single-active-consumer": true}); got != want {
				t.Errorf("replica queue is %s, want %s", got, want)
			}
			dead := amqp.Table{"x-max-length": int64(b.cfg.DeadLetterMaxLength), "x-overflow": "drop-head"}
			if got := declaredType(t, a, b.names.dead, dead); got != want {
				t.Errorf("dead-letter queue is %s, want %s", got, want)
			}
		})
	}
}

// TestQueueTypeConflict: queues left classic by an earlier release makes Dial (quorum) fail at once with ErrTopologyConflict and
// a message saying how to keep or migrate it; with --queue-type classic
// it works.
func TestQueueTypeConflict(t *testing.T) {
	cfg := testConfig(t)
	a := newAdmin(t, cfg.URL)
	n := newNames(cfg.Prefix, cfg.Defaults().Replica)
	q := n.queue
	// The queues of an earlier release: classic.
	if _, err := a.ch.QueueDeclare(q, true, false, false, false, amqp.Table{"x-single-active-consumer": true}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.ch.QueueDeclare(n.dead, true, false, false, false, amqp.Table{
		"x-max-length": int64(DefaultDeadLetterMaxLength), "x-overflow": "drop-head"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.deleteTopology(cfg.Prefix, cfg.Defaults().Replica) })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := Dial(ctx, cfg)
	if !errors.Is(err, ErrTopologyConflict) || !errors.Is(err, errs.Conflict) {
		t.Fatalf("Dial = %v, want ErrTopologyConflict", err)
	}
	if ctx.Err() != nil {
		t.Fatalf("Dial waited for its context instead of failing at once: %v", err)
	}
	for _, want := range []string{n.dead, "classic queue", "--queue-type classic", "KAIROS_QUEUE_TYPE=classic", "rabbitmqctl delete_queue " + n.dead} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	cfg.QueueType = QueueClassic
	b, err := Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("Dial with QueueType classic on the classic queue: %v", err)
	}
	b.Close()
}

func TestQueueTypeValidate(t *testing.T) {
	err := Config{QueueType: "stream"}.Defaults().Validate()
	if err == nil || !strings.Contains(err.Error(), `QueueType "stream"`) {
		t.Fatalf("Validate = %v, want a QueueType error", err)
	}
}

func TestParseVersion(t *testing.T) {
	for _, c := range []struct {
		v            string
		major, minor int
		ok           bool
	}{{"3.10.8", 3, 10, true}, {"4.0.1", 4, 0, true}, {"3.7", 3, 7, true}, {"", 0, 0, false}, {"x.y", 0, 0, false}} {
		major, minor, ok := parseVersion(c.v)
		if major != c.major || minor != c.minor || ok != c.ok {
			t.Errorf("parseVersion(%q) = %d, %d, %v; want %d, %d, %v", c.v, major, minor, ok, c.major, c.minor, c.ok)
		}
	}
}
