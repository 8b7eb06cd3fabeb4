package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/kairoshq/kairos/signals"
)

// MaxPartitions bounds Config.Partitions.
const MaxPartitions = 1024

// drainCheck is how long the queue of the per-replica mode must have
// delivered nothing before a replica with partitions checks whether it is
// empty, and how often an idle session looks.
const drainCheck = 2 * time.Second

// Assigner says which partitions a replica consumes (Config.Assigner);
// engine/membership implements it with leases on the store.
type Assigner interface {
	// Assign returns a channel of the sorted partitions of 0..n-1 this
	// replica owns: a first set once known, then a new set whenever it
	// changes, until ctx is done (then the channel is closed).
	Assign(ctx context.Context, n int) <-chan []int
}

// Router gives the routing key of each event of a Publish call
// (Config.Router); engine.Router routes by resolved identity (the user
// once the visitor is linked).
type Router interface {
	// RouteKeys returns one routing key per event. The events of one
	// visitor in one call must get the same key (their order is kept only
	// within a key).
	RouteKeys(ctx context.Context, events []signals.Event) []string
}

// partitionOf returns the partition whose queue is named queue, or -1.
func (n names) partitionOf(queue string) int {
	rest, ok := strings.CutPrefix(queue, n.prefix+".p.")
	if !ok {
		return -1
	}
	i, err := strconv.Atoi(rest)
	if err != nil || i < 0 || strconv.Itoa(i) != rest {
		return -1
	}
	return i
}

// partition returns the name of partition queue i.
func (n names) partition(i int) string { return n.prefix + ".p." + strconv.Itoa(i) }

// startAssignment starts following the assignment of partitions: from
// the Assigner, or all of them without one. The returned function stops
// the Assigner and waits until it has closed its channel (a membership
// then has given up its lease).
func (s *consumer) startAssignment(ctx context.Context) (stop func()) {
	b := s.b
	if b.cfg.Assigner == nil {
		s.owned = make([]int, b.cfg.Partitions)
		for i := range s.owned {
			s.owned[i] = i
		}
		s.dirty = true
		return func() {}
	}
	actx, cancel := context.WithCancel(ctx)
	ch := b.cfg.Assigner.Assign(actx, b.cfg.Partitions)
	s.assign = ch
	return func() {
		cancel()
		for range ch {
		}
	}
}

// setAssignment records a set received from the assignment channel (ok
// false: the channel closed, the last set stays).
func (s *consumer) setAssignment(set []int, ok bool) {
	if !ok {
		s.assign = nil
		return
	}
	s.owned, s.dirty = set, true
	s.b.log.LogAttrs(s.b.ctx, slog.LevelInfo, "consuming partitions", slog.Any("partitions", set))
}

// queues returns the queues the consumer wants now.
func (s *consumer) queues() []string {
	b := s.b
	if b.cfg.Partitions == 0 {
		return []string{b.names.queue}
	}
	qs := make([]string, 0, len(s.owned)+1)
	for _, p := range s.owned {
		qs = append(qs, b.names.partition(p))
	}
	if b.legacy.Load() {
		qs = append(qs, b.names.queue)
	}
	return qs
}

// between runs between two batches of a session: it takes a new
// assignment if one is waiting, retires the drained queue of the
// per-replica mode, and makes the session's consumers match. It reports
// whether the consumers may have changed.
func (s *consumer) between(ctx context.Context, q *queueSession) (bool, error) {
	select {
	case set, ok := <-s.assign:
		s.setAssignment(set, ok)
	default:
	}
	changed := s.dirty
	s.dirty = false
	if s.b.legacy.Load() {
		if sb := q.subs[s.b.names.queue]; sb != nil && time.Since(sb.last) >= drainCheck {
			s.retireLegacy(ctx, q)
			changed = true
		}
	}
	if !changed {
		return false, nil
	}
	return true, q.sync()
}

// retireLegacy stops consuming the queue of the per-replica mode, and
// deletes it when it is empty (every delivery was acknowledged: the batch
// in flight is done). It is unbound already (declarePartitions), so
// nothing arrives any more; when it still holds messages, sync consumes
// it again.
func (s *consumer) retireLegacy(ctx context.Context, q *queueSession) {
	b := s.b
	name := b.names.queue
	q.unsubscribe(name)
	err := b.bounded(q.ses.nc, func() error {
		ch, err := q.ses.conn.Channel()
		if err != nil {
			return fmt.Errorf("open channel: %w", err)
		}
		defer ch.Close()
		st, err := ch.QueueDeclarePassive(name, true, false, false, false, nil)
		if err != nil {
			return fmt.Errorf("inspect %s: %w", name, err)
		}
		if st.Messages > 0 {
			return nil
		}
		// Not with if-empty: quorum queues refuse it with a connection
		// error. The queue is unbound, so it stays empty.
		if _, err := ch.QueueDelete(name, false, false, false); err != nil {
			return fmt.Errorf("delete %s: %w", name, err)
		}
		b.legacy.Store(false)
		return nil
	})
	var aerr *amqp.Error
	switch {
	case errors.As(err, &aerr) && aerr.Code == amqp.NotFound:
		b.legacy.Store(false) // deleted by someone else
	case err != nil:
		b.log.LogAttrs(ctx, slog.LevelWarn, "queue of the per-replica mode not retired; retrying", slog.String("queue", name), slog.Any("err", err))
	case !b.legacy.Load():
		b.log.LogAttrs(ctx, slog.LevelInfo, "queue of the per-replica mode drained and deleted", slog.String("queue", name))
	}
}

// declarePartitions declares the partition queues, binds each to the
// exchange of partition-addressed messages under its number, and binds
// them to the consistent-hash exchange with equal weights (hash true), or,
// without the plugin, partition 0 alone directly to the events exchange
// (every event published there goes to it, and is forwarded). It then
// unbinds this replica's queue of the per-replica mode, if there is one,
// so that it receives nothing more and can be drained.
func (b *Bus) declarePartitions(conn *amqp.Connection, ch *amqp.Channel, hash bool) error {
	n := b.names
	for i := range b.cfg.Partitions {
		q := n.partition(i)
		if err := b.declareQueue(conn, ch, q, amqp.Table{"x-single-active-consumer": true}); err != nil {
			return fmt.Errorf("declare queue %s: %w", q, err)
		}
	}
	if err := b.declareByPartition(conn, ch); err != nil {
		return err
	}
	first := n.partition(0)
	if hash {
		if err := ch.ExchangeDeclare(n.partitioned, b.hashType, true, false, false, false, nil); err != nil {
			return fmt.Errorf("declare exchange %s: %w", n.partitioned, err)
		}
		if err := ch.ExchangeBind(n.partitioned, "#", n.events, false, nil); err != nil {
			return fmt.Errorf("bind exchange %s to %s: %w", n.partitioned, n.events, err)
		}
		for i := range b.cfg.Partitions {
			q := n.partition(i)
			if err := ch.QueueBind(q, bindingWeight, n.partitioned, false, nil); err != nil {
				return fmt.Errorf("bind queue %s to %s: %w", q, n.partitioned, err)
			}
		}
		// The direct binding of a run without the plugin.
		if err := ch.QueueUnbind(first, "#", n.events, nil); err != nil {
			return fmt.Errorf("unbind queue %s from %s: %w", first, n.events, err)
		}
	} else {
		b.fallbackOnce.Do(func() {
			b.log.LogAttrs(b.ctx, slog.LevelWarn, "consistent-hash exchange unavailable: binding partition 0 alone to the events exchange (events published there by other producers go to it and are forwarded to their partitions); enable the rabbitmq_consistent_hash_exchange plugin to spread them",
				slog.String("exchange_type", b.hashType), slog.String("queue", first))
		})
		if err := ch.QueueBind(first, "#", n.events, false, nil); err != nil {
			return fmt.Errorf("bind queue %s to %s: %w", first, n.events, err)
		}
	}
	b.partitioned.Store(hash)
	return b.unbindLegacy(conn, ch, hash)
}

// declareByPartition declares the exchange of partition-addressed
// messages (see "Partition-addressed publishing"), binds each partition
// queue to it under its number and the history stream (when enabled)
// under "#", and, with a retry delay, the partition-addressed retry
// exchange and queue, which dead-letters to it.
func (b *Bus) declareByPartition(conn *amqp.Connection, ch *amqp.Channel) error {
	n := b.names
	if err := ch.ExchangeDeclare(n.byPartition, amqp.ExchangeTopic, true, false, false, false, nil); err != nil {
		return fmt.Errorf("declare exchange %s: %w", n.byPartition, err)
	}
	for i := range b.cfg.Partitions {
		if err := ch.QueueBind(n.partition(i), strconv.Itoa(i), n.byPartition, false, nil); err != nil {
			return fmt.Errorf("bind queue %s to %s: %w", n.partition(i), n.byPartition, err)
		}
	}
	if b.cfg.Stream.Enabled {
		name := StreamName(b.cfg.Prefix)
		if err := ch.QueueBind(name, "#", n.byPartition, false, nil); err != nil {
			return fmt.Errorf("bind stream %s to %s: %w", name, n.byPartition, err)
		}
	}
	if b.cfg.RetryDelay <= 0 {
		return nil
	}
	if err := ch.ExchangeDeclare(n.retryByPart, amqp.ExchangeTopic, true, false, false, false, nil); err != nil {
		return fmt.Errorf("declare exchange %s: %w", n.retryByPart, err)
	}
	if err := b.declareQueue(conn, ch, n.retryByPart, amqp.Table{
		"x-message-ttl": b.cfg.RetryDelay.Milliseconds(), "x-dead-letter-exchange": n.byPartition}); err != nil {
		return fmt.Errorf("declare queue %s: %w", n.retryByPart, err)
	}
	if err := ch.QueueBind(n.retryByPart, "#", n.retryByPart, false, nil); err != nil {
		return fmt.Errorf("bind queue %s: %w", n.retryByPart, err)
	}
	return nil
}

// unbindLegacy removes the bindings of this replica's queue of the
// per-replica mode (<prefix>.engine.<replica>) when it exists, and marks
// it to be drained and deleted by Consume.
func (b *Bus) unbindLegacy(conn *amqp.Connection, ch *amqp.Channel, hash bool) error {
	n := b.names
	// A passive declaration of a missing queue closes its channel: use
	// one of its own.
	probe, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("open channel: %w", err)
	}
	_, err = probe.QueueDeclarePassive(n.queue, true, false, false, false, nil)
	var aerr *amqp.Error
	if errors.As(err, &aerr) && aerr.Code == amqp.NotFound {
		b.legacy.Store(false)
		return nil
	}
	probe.Close()
	if err != nil {
		return fmt.Errorf("inspect queue %s: %w", n.queue, err)
	}
	if hash {
		for _, w := range []string{bindingWeight, legacyWeight} {
			if err := ch.QueueUnbind(n.queue, w, n.partitioned, nil); err != nil {
				return fmt.Errorf("unbind queue %s from %s: %w", n.queue, n.partitioned, err)
			}
		}
	}
	if err := ch.QueueUnbind(n.queue, "#", n.events, nil); err != nil {
		return fmt.Errorf("unbind queue %s from %s: %w", n.queue, n.events, err)
	}
	if !b.legacy.Swap(true) {
		b.log.LogAttrs(b.ctx, slog.LevelInfo, "draining the queue of the per-replica mode before deleting it", slog.String("queue", n.queue))
	}
	return nil
}
