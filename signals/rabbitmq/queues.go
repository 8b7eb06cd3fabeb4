package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/kairoshq/kairos/internal/errs"
)

// Queue types of Config.QueueType.
const (
	// QueueQuorum is a replicated quorum queue (Raft over the cluster
	// nodes; RabbitMQ 3.8 and later). The default.
	QueueQuorum = "quorum"
	// QueueClassic is a classic queue, kept on one node: for a single
	// broker, or a broker older than 3.8.
	QueueClassic = "classic"
)

// ErrTopologyConflict matches the error of a declaration the broker
// refuses because the queue (or exchange) exists with other arguments
// (406 PRECONDITION_FAILED), for example a classic queue declared as a
// quorum queue. Retrying does not help: Dial returns it at once, and the
// message says what to do.
var ErrTopologyConflict = fmt.Errorf("rabbitmq: topology conflict: %w", errs.Conflict)

// quorumSince is the first broker version with quorum queues.
var quorumSince = [2]int{3, 8}

// queueTypeFor returns the queue type to declare on conn: the configured
// one, or classic (with a warning, once) when the configured type is
// quorum and the broker is older than 3.8.
func (b *Bus) queueTypeFor(conn *amqp.Connection) string {
	if b.cfg.QueueType != QueueQuorum {
		return b.cfg.QueueType
	}
	v, _ := conn.Properties["version"].(string)
	if major, minor, ok := parseVersion(v); ok && (major < quorumSince[0] || major == quorumSince[0] && minor < quorumSince[1]) {
		b.classicOnce.Do(func() {
			b.log.LogAttrs(b.ctx, slog.LevelWarn, "broker has no quorum queues: declaring classic queues",
				slog.String("broker_version", v))
		})
		return QueueClassic
	}
	return QueueQuorum
}

// parseVersion reads "major.minor[.patch…]".
func parseVersion(v string) (major, minor int, ok bool) {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return 0, 0, false
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	return major, minor, err1 == nil && err2 == nil
}

// declareQueue declares the durable queue name with args and the queue
// type of conn, explaining a refusal because the queue exists with other
// arguments (see explainConflict).
func (b *Bus) declareQueue(conn *amqp.Connection, ch *amqp.Channel, name string, args amqp.Table) error {
	qt := b.queueTypeFor(conn)
	all := make(amqp.Table, len(args)+1)
	for k, v := range args {
		all[k] = v
	}
	all["x-queue-type"] = qt
	if _, err := ch.QueueDeclare(name, true, false, false, false, all); err != nil {
		return explainConflict(name, qt, err)
	}
	return nil
}

// explainConflict turns a 406 PRECONDITION_FAILED of the declaration of
// queue name (of type qt) into an ErrTopologyConflict saying what to do;
// other errors are returned as they are.
func explainConflict(name, qt string, err error) error {
	var aerr *amqp.Error
	if !errors.As(err, &aerr) || aerr.Code != amqp.PreconditionFailed {
		return err
	}
	if strings.Contains(aerr.Reason, "x-queue-type") {
		other := QueueClassic
		if qt == QueueClassic {
			other = QueueQuorum
		}
		return fmt.Errorf("%w: queue %s exists as a %s queue, and this replica declares it as a %s queue "+
			"(RabbitMQ cannot change the type of a queue): either keep the %s type "+
			"(kairos serve --queue-type %s, KAIROS_QUEUE_TYPE=%s), or migrate: stop the consumers of %s, "+
			"let it drain (rabbitmqctl list_queues name messages), delete it "+
			"(rabbitmqctl delete_queue %s) and start again, which declares it as a %s queue "+
			"(see the rabbitmq package documentation, \"Migrating to quorum queues\"): %w",
			ErrTopologyConflict, name, other, qt, other, other, other, name, name, qt, err)
	}
	return fmt.Errorf("%w: queue %s exists with other arguments than this replica declares; "+
		"delete it (rabbitmqctl delete_queue %s, after draining it) or configure the replica as before: %w",
		ErrTopologyConflict, name, name, err)
}

// waitDial waits until l is up, like l.wait, but gives up at once when
// its set-up failed with ErrTopologyConflict (which retrying does not
// fix), returning that error.
func (l *link) waitDial(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-l.conflict:
			cancel()
		case <-ctx.Done():
		}
	}()
	_, err := l.wait(ctx)
	if err != nil {
		if lerr := l.lastErr(); errors.Is(lerr, ErrTopologyConflict) {
			return lerr
		}
	}
	return err
}

// noteSetupError records that a set-up failed with ErrTopologyConflict,
// for waitDial.
func (l *link) noteSetupError(err error) {
	if errors.Is(err, ErrTopologyConflict) {
		l.conflictOnce.Do(func() { close(l.conflict) })
	}
}
