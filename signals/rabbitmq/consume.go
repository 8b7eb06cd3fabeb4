package rabbitmq

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/kairoshq/kairos/signals"
)

// errInterrupted ends a consume or subscribe session whose channel or
// connection failed; the caller starts a new one.
var errInterrupted = errors.New("session interrupted")

// Consume consumes this replica's share of the events and calls h with
// batches of whole messages of at most MaxBatchEvents events (each queue
// has up to Prefetch messages unacknowledged; a batch may take messages
// of several queues): after the first message it waits at most Linger
// for more. A batch holds whole messages (a message that would overflow
// MaxBatchEvents starts the next batch). Calls are sequential and keep
// queue order, and every queue has a single active consumer, so the
// events of a visitor reach h in publish order.
//
// Its share: with Config.Partitions = 0, the replica's queue
// <prefix>.engine.<replica>; otherwise the partition queues
// <prefix>.p.<i> that Config.Assigner gives it (all without an Assigner),
// changing with the assignment: between two batches, Consume cancels the
// consumers of the partitions it no longer owns (closing their channels,
// which returns what they prefetched to the queue, in order) and
// subscribes to the new ones (see the package documentation,
// "Partitions").
//
// A message body is one event object or an array of events
// (signals.DecodeMessage); each event is validated on its own. Valid
// events go to h; invalid ones never do: each is published to the
// dead-letter exchange <prefix>.events.dead on its own (see the package
// documentation), and a body that does not decode as a whole is
// dead-lettered whole. Dead letters are sent after h has accepted the
// batch (or right away when the batch holds no valid event), and the
// messages are acknowledged once the broker confirmed them.
//
// When h returns nil the batch's messages are acknowledged (basic.ack,
// multiple, per queue). When it fails, Consume waits a back-off
// (RetryMin, doubling up to RetryMax while failures continue) and calls h
// again with the same batch, its deliveries still held: nothing overtakes
// it, and the broker counts no redelivery (RabbitMQ 4.0–4.2 drop a
// quorum-queue message returned 20 times). Deliveries come again after a
// connection or channel loss, marked as redelivered: h must tolerate
// redeliveries (the engine de-duplicates by id).
//
// Consume returns nil when ctx is done, after finishing and acknowledging
// the batch in flight (h gets a context that is not cancelled with ctx);
// deliveries not yet handed to h go back to the queue. It waits out broker
// outages (reconnecting) and returns signals.ErrClosed after Close.
func (b *Bus) Consume(ctx context.Context, h signals.BatchHandler) error {
	if b.isClosed() {
		return signals.ErrClosed
	}
	s := &consumer{b: b, h: h, hctx: context.WithoutCancel(ctx), retry: b.cfg.RetryMin}
	if b.cfg.Partitions > 0 {
		defer s.startAssignment(ctx)() // stops it before Consume returns
	}
	for {
		if b.isClosed() {
			return signals.ErrClosed
		}
		ses, err := b.con.wait(ctx)
		if err != nil {
			if errors.Is(err, signals.ErrClosed) {
				return err
			}
			return nil // ctx done
		}
		err = s.session(ctx, ses)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, signals.ErrClosed):
			return err
		}
		b.log.LogAttrs(ctx, slog.LevelWarn, "consumer interrupted, resuming", slog.Any("err", err))
		if !sleep(ctx, jitter(b.cfg.ReconnectMin)) {
			return nil
		}
	}
}

// consumer is the state of one Consume call across sessions.
type consumer struct {
	b     *Bus
	h     signals.BatchHandler
	hctx  context.Context
	retry time.Duration // back-off after the next handler failure

	// With partitions (partition.go): the assignment (nil once closed)
	// and the partitions owned now (nil until the first assignment).
	assign <-chan []int
	owned  []int
	dirty  bool // owned changed since the session last synced its consumers
}

// sub is the consumer of one queue within a session: its own channel,
// and a goroutine forwarding its deliveries to the session's merged
// stream until stop is closed.
type sub struct {
	queue string
	part  int // the partition of queue, or -1 (the per-replica queue)
	ch    *amqp.Channel
	stop  chan struct{}
	done  chan struct{}
	last  time.Time // when the last delivery was handed to a batch (or the sub started)
}

// item is a delivery of a sub on the merged stream, or (closed) the news
// that the sub's delivery channel closed.
type item struct {
	s      *sub
	d      amqp.Delivery
	closed bool
}

// queueSession is one session's consumers, keyed by queue.
type queueSession struct {
	c      *consumer
	ses    session
	subs   map[string]*sub
	merged chan item
}

// subscribe starts consuming queue on a channel of its own.
func (q *queueSession) subscribe(queue string) error {
	b := q.c.b
	var (
		ch         *amqp.Channel
		deliveries <-chan amqp.Delivery
	)
	err := b.bounded(q.ses.nc, func() error {
		var err error
		if ch, err = q.ses.conn.Channel(); err != nil {
			return fmt.Errorf("open channel: %w", err)
		}
		if err := ch.Qos(b.cfg.Prefetch, 0, false); err != nil {
			return fmt.Errorf("qos: %w", err)
		}
		tag := fmt.Sprintf("kairos-%s-%08x", b.cfg.Replica, rand.Uint32())
		if deliveries, err = ch.Consume(queue, tag, false, false, false, false, nil); err != nil {
			return fmt.Errorf("consume %s: %w", queue, err)
		}
		return nil
	})
	if err != nil {
		if ch != nil {
			b.closeWithin(q.ses.nc, ch)
		}
		return err
	}
	sb := &sub{queue: queue, part: b.names.partitionOf(queue), ch: ch, stop: make(chan struct{}), done: make(chan struct{}), last: time.Now()}
	q.subs[queue] = sb
	go func() {
		defer close(sb.done)
		for {
			select {
			case d, ok := <-deliveries:
				it := item{s: sb, d: d, closed: !ok}
				select {
				case q.merged <- it:
				case <-sb.stop:
					return
				}
				if !ok {
					return
				}
			case <-sb.stop:
				return
			}
		}
	}()
	return nil
}

// unsubscribe stops the consumer of queue: its forwarder stops and its
// channel closes, which returns every delivery not acknowledged to the
// queue, in order. Its items still on the merged stream are stale: the
// session drops them.
func (q *queueSession) unsubscribe(queue string) {
	sb := q.subs[queue]
	if sb == nil {
		return
	}
	delete(q.subs, queue)
	close(sb.stop)
	<-sb.done
	q.c.b.closeWithin(q.ses.nc, sb.ch)
}

// closeAll unsubscribes every queue.
func (q *queueSession) closeAll() {
	for queue := range q.subs {
		q.unsubscribe(queue)
	}
}

// current reports whether it comes from a live sub of the session.
func (q *queueSession) current(it item) bool { return q.subs[it.s.queue] == it.s }

// sync subscribes to the queues the consumer wants and unsubscribes from
// the others.
func (q *queueSession) sync() error {
	want := q.c.queues()
	for queue := range q.subs {
		if !slices.Contains(want, queue) {
			q.unsubscribe(queue)
		}
	}
	for _, queue := range want {
		if q.subs[queue] == nil {
			if err := q.subscribe(queue); err != nil {
				return err
			}
		}
	}
	return nil
}

// session consumes the wanted queues on conn until ctx is done (nil), the
// Bus closes (ErrClosed) or a channel fails (errInterrupted).
func (s *consumer) session(ctx context.Context, ses session) error {
	b := s.b
	if err := b.bounded(ses.nc, func() error { return b.declareTopology(ses.conn, false) }); err != nil {
		return fmt.Errorf("%w: %w", errInterrupted, err)
	}
	q := &queueSession{c: s, ses: ses, subs: map[string]*sub{}, merged: make(chan item, b.cfg.Prefetch)}
	// Closing the channels (bounded) returns every unacknowledged
	// delivery to its queue, in order.
	defer q.closeAll()
	if err := q.sync(); err != nil {
		return fmt.Errorf("%w: %w", errInterrupted, err)
	}
	dl := &deadLetterer{b: b}
	var (
		batch  = make([]held, 0, b.cfg.Prefetch)
		carry  held // a delivery that did not fit into the last batch
		events = make([]signals.Event, 0, b.cfg.MaxBatchEvents)
		routes = make([]signals.Route, 0, b.cfg.MaxBatchEvents)
		dead   []deadLetter
		acks   = map[*sub]uint64{}
	)
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	defer linger.Stop()
	idle := time.NewTicker(drainCheck)
	defer idle.Stop()
	for {
		clear(batch) // drop the references to the last bodies
		batch = batch[:0]
		if ctx.Err() != nil {
			return nil
		}
		// Between batches: take a new assignment, drain the legacy queue.
		if changed, err := s.between(ctx, q); err != nil {
			return fmt.Errorf("%w: %w", errInterrupted, err)
		} else if changed && carry.decoded && !q.current(item{s: carry.s}) {
			carry = held{}
		}
		if carry.decoded {
			batch = append(batch, carry)
			carry = held{}
		} else {
			select {
			case <-ctx.Done():
				return nil
			case <-b.closing:
				return signals.ErrClosed
			case set, ok := <-s.assign:
				s.setAssignment(set, ok)
				continue
			case <-idle.C:
				continue
			case it := <-q.merged:
				if !q.current(it) {
					continue // a stale delivery of a cancelled consumer: requeued by its channel's close
				}
				if it.closed {
					return fmt.Errorf("%w: delivery channel of %s closed", errInterrupted, it.s.queue)
				}
				batch = append(batch, b.decode(it))
			}
		}
		n := len(batch[0].res.Events)
		if b.cfg.Linger > 0 {
			linger.Reset(b.cfg.Linger)
		}
		// The linger bounds the wait for deliveries still to come; those
		// already here join the batch even after it (decoding them takes
		// time, and a consumer behind its queues would otherwise cut its
		// batches by its own decoding speed).
		lingering := b.cfg.Linger > 0
	fill:
		for n < b.cfg.MaxBatchEvents {
			var it item
			if !lingering {
				select {
				case it = <-q.merged:
				default:
					break fill
				}
			} else {
				select {
				case it = <-q.merged:
				case <-linger.C:
					lingering = false
					continue
				case <-ctx.Done():
					break fill // hand over what we hold: it is the in-flight batch
				}
			}
			if !q.current(it) {
				continue
			}
			if it.closed {
				// The channel is gone: nothing of it can be acknowledged,
				// the broker redelivers the batch.
				return fmt.Errorf("%w: delivery channel of %s closed", errInterrupted, it.s.queue)
			}
			h := b.decode(it)
			if n+len(h.res.Events) > b.cfg.MaxBatchEvents {
				carry = h // the next batch starts with it
				break fill
			}
			batch = append(batch, h)
			n += len(h.res.Events)
		}
		linger.Stop()

		events = events[:0]
		clear(dead)
		dead = dead[:0]
		clear(acks)
		now := time.Now()
		routes = routes[:0]
		for i := range batch {
			events = append(events, batch[i].res.Events...)
			routes = batch[i].appendRoutes(routes, b.cfg.Partitions)
			dead = batch[i].appendDeadLetters(dead)
			acks[batch[i].s] = batch[i].d.DeliveryTag // tags rise per channel
			batch[i].s.last = now
		}
		if len(events) > 0 {
			if !s.handle(ctx, batch, events, routes) {
				if b.isClosed() {
					return signals.ErrClosed
				}
				return nil // ctx done: the channels' close returns the batch
			}
		}
		// Dead letters go out once the batch is through, so that a
		// handler failure (which returns the batch to the queue) does not
		// dead-letter the same events again on every retry.
		if err := dl.send(dead); err != nil {
			return fmt.Errorf("%w: dead-letter: %w", errInterrupted, err)
		}
		for sb, tag := range acks {
			if err := sb.ch.Ack(tag, true); err != nil {
				return fmt.Errorf("%w: ack %s: %w", errInterrupted, sb.queue, err)
			}
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// handle passes the batch's events to the handler until it succeeds
// (true) or ctx ends (false). After a failure it waits a back-off
// (RetryMin doubling to RetryMax) and tries again with the same
// deliveries held, unacknowledged: nothing overtakes the batch, and the
// broker does not count a redelivery. Returning the batch to its queue
// instead (closing the channel) counts one on every retry, and RabbitMQ
// 4.0–4.2 drops a quorum-queue message after 20 such returns (the default
// delivery-limit): a store outage of two minutes would lose events.
func (s *consumer) handle(ctx context.Context, batch []held, events []signals.Event, routes []signals.Route) bool {
	b := s.b
	for {
		err := s.h(signals.WithRoutes(s.hctx, routes), events)
		if err == nil {
			s.retry = b.cfg.RetryMin
			return true
		}
		wait := s.retry
		s.retry = min(2*s.retry, b.cfg.RetryMax)
		b.log.LogAttrs(ctx, slog.LevelWarn, "handler failed, the batch will be handled again",
			slog.Int("events", len(events)), slog.Int("messages", len(batch)), slog.Duration("after", wait), slog.Any("err", err))
		if !sleepOr(ctx, wait, b.closing) {
			return false
		}
		// The handler may have changed the events it was given: the
		// retry gets them again as decoded.
		events = events[:0]
		for i := range batch {
			events = append(events, batch[i].res.Events...)
		}
	}
}

// held is a delivery decoded for a batch.
type held struct {
	s       *sub // the consumer it came from
	d       amqp.Delivery
	res     signals.MessageResult
	err     error    // why the body as a whole does not decode
	keys    []string // the routing key of each event of the body (header kairos-keys), or nil
	decoded bool     // false for the zero held
}

// decode decodes the body of the delivery of it (signals.DecodeMessage).
func (b *Bus) decode(it item) held {
	res, err := signals.DecodeMessage(it.d.Body, time.Now(), b.cfg.Limits)
	return held{s: it.s, d: it.d, res: res, err: err, decoded: true,
		keys: keysOf(&it.d, len(res.Events)+len(res.Rejected))}
}

// appendRoutes appends the route of each of h's events to dst: its
// routing key (from the header kairos-keys of a partition-addressed
// message, else the message's routing key), whether it was forwarded or
// sent back, and whether it arrived on a partition other than its key's
// (Route.Foreign: a message routed by the consistent-hash exchange).
func (h *held) appendRoutes(dst []signals.Route, partitions int) []signals.Route {
	r := signals.Route{Key: h.d.RoutingKey}
	if f, ok := h.d.Headers[headerForwarded].(bool); ok && f {
		r.Forwarded = true
	}
	r.Attempt = headerInt(h.d.Headers[headerAttempt])
	if h.keys == nil {
		r.Foreign = h.s.part >= 0 && PartitionOf(r.Key, partitions) != h.s.part
		for range h.res.Events {
			dst = append(dst, r)
		}
		return dst
	}
	// The accepted events are the body's events but the rejected ones,
	// in order.
	rej := h.res.Rejected
	for i, k := range h.keys {
		if len(rej) > 0 && rej[0].Index == i {
			rej = rej[1:]
			continue
		}
		r.Key = k
		dst = append(dst, r)
	}
	return dst
}

// deadLetter is a message for the dead-letter exchange.
type deadLetter struct {
	key    string // the routing key of the original message
	reason string
	msg    amqp.Publishing
}

// appendDeadLetters appends the dead letters of h to dst: the whole
// message when its body does not decode or is a single invalid event,
// else one per invalid event of the array.
func (h *held) appendDeadLetters(dst []deadLetter) []deadLetter {
	d := &h.d
	whole := func(reason string) deadLetter {
		return deadLetter{key: d.RoutingKey, reason: reason, msg: amqp.Publishing{
			Headers:      deadHeaders(d, reason),
			ContentType:  d.ContentType,
			MessageId:    d.MessageId,
			Timestamp:    d.Timestamp,
			AppId:        d.AppId,
			DeliveryMode: amqp.Persistent,
			Body:         d.Body,
		}}
	}
	if h.err != nil {
		return append(dst, whole(h.err.Error()))
	}
	if !h.res.Array {
		for _, r := range h.res.Rejected {
			dst = append(dst, whole(r.Err.Error()))
		}
		return dst
	}
	for _, r := range h.res.Rejected {
		reason := r.Err.Error()
		key := d.RoutingKey
		if h.keys != nil {
			key = h.keys[r.Index]
		}
		headers := deadHeaders(d, reason)
		delete(headers, headerCount) // it counted the original message
		delete(headers, headerKeys)  // it keyed the original message's events
		headers["kairos-original-message-id"] = d.MessageId
		headers["kairos-event-index"] = int32(r.Index)
		id := r.ID
		if id == "" {
			id = d.MessageId
		}
		dst = append(dst, deadLetter{key: key, reason: reason, msg: amqp.Publishing{
			Headers:      headers,
			ContentType:  "application/json",
			MessageId:    id,
			Timestamp:    d.Timestamp,
			AppId:        d.AppId,
			DeliveryMode: amqp.Persistent,
			Body:         r.Raw,
		}})
	}
	return dst
}

// maxDeadHeaderBytes bounds the original headers a dead letter keeps
// (about: names and values): the broker refuses a publish whose header
// frame exceeds its frame_max (128 KiB) by closing the connection, so a
// message that came with headers near that size would never leave its
// queue, its batch redelivered forever.
const maxDeadHeaderBytes = 16 << 10

// deadHeaders returns a copy of the headers of m with the reason and the
// original routing key and exchange. Original headers beyond
// maxDeadHeaderBytes are left out, the smallest kept first, and
// kairos-headers-dropped counts them.
func deadHeaders(m *amqp.Delivery, reason string) amqp.Table {
	headers := make(amqp.Table, len(m.Headers)+6)
	names := slices.Collect(maps.Keys(m.Headers))
	size := func(k string) int { return len(k) + headerSize(m.Headers[k]) }
	slices.SortFunc(names, func(a, b string) int { return cmp.Or(cmp.Compare(size(a), size(b)), cmp.Compare(a, b)) })
	used, dropped := 0, 0
	for _, k := range names {
		if used += size(k); used > maxDeadHeaderBytes {
			dropped++
			continue
		}
		headers[k] = m.Headers[k]
	}
	if dropped > 0 {
		headers["kairos-headers-dropped"] = int32(dropped)
	}
	headers["kairos-reason"] = reason
	headers["kairos-original-routing-key"] = m.RoutingKey
	headers["kairos-original-exchange"] = m.Exchange
	return headers
}

// headerSize estimates the encoded size of a header value.
func headerSize(v any) int {
	switch x := v.(type) {
	case string:
		return len(x)
	case []byte:
		return len(x)
	case amqp.Table:
		n := 0
		for k, e := range x {
			n += len(k) + headerSize(e)
		}
		return n
	case []any:
		n := 0
		for _, e := range x {
			n += headerSize(e)
		}
		return n
	}
	return 9 // a number, a bool, a time, a decimal: a type byte and up to 8 bytes
}

// deadLetterer publishes dead letters to the dead-letter exchange through
// the publish connection's pool: the consume connection never publishes,
// so a broker resource alarm (which blocks publishing connections) never
// stalls consumption and acknowledgements.
type deadLetterer struct {
	b      *Bus
	logged time.Time // when a dead letter was last logged
	quiet  int       // dead letters not logged since
}

// send publishes letters and waits for their confirms (at most
// Config.CallTimeout).
func (d *deadLetterer) send(letters []deadLetter) error {
	if len(letters) == 0 {
		return nil
	}
	b := d.b
	keys := make([]string, len(letters))
	msgs := make([]amqp.Publishing, len(letters))
	for i := range letters {
		keys[i], msgs[i] = letters[i].key, letters[i].msg
	}
	err := b.call(b.ctx, "dead-letter", func(ctx context.Context, trouble <-chan struct{}) error {
		return b.publish(ctx, trouble, b.names.dead, keys, msgs, false)
	})
	if err != nil {
		return err
	}
	b.deadTotal.Add(uint64(len(letters)))
	d.log(letters, time.Now())
	return nil
}

// log logs the first of letters, with the number of dead letters not
// logged since the last line: at most one line a second, so that a
// producer sending junk cannot flood the log (the metric counts them all).
func (d *deadLetterer) log(letters []deadLetter, now time.Time) {
	if !d.logged.IsZero() && now.Sub(d.logged) < time.Second {
		d.quiet += len(letters)
		return
	}
	l := &letters[0]
	d.b.log.LogAttrs(d.b.ctx, slog.LevelWarn, "dead-lettered a message",
		slog.String("reason", l.reason), slog.String("message_id", shorten(l.msg.MessageId)), slog.Int("bytes", len(l.msg.Body)),
		slog.Int("more_not_logged", d.quiet+len(letters)-1))
	d.logged, d.quiet = now, 0
}

// DeadLettered returns how many messages this Bus dead-lettered (and the
// broker confirmed) since Dial, like membus.Bus.DeadLettered: kairos serve
// exports it as kairos_events_dead_lettered_total.
func (b *Bus) DeadLettered() uint64 { return b.deadTotal.Load() }

func shorten(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// Subscribe declares an exclusive, auto-delete, server-named queue bound
// to the fanout exchange of t and calls h with every message, in order,
// one at a time, acknowledging each after h returns. It returns nil when
// ctx is done and signals.ErrClosed after Close. After a connection loss
// it subscribes again (a new queue): messages broadcast in between are
// lost.
func (b *Bus) Subscribe(ctx context.Context, t signals.Topic, h func(msg []byte)) error {
	if b.isClosed() {
		return signals.ErrClosed
	}
	for {
		ses, err := b.con.wait(ctx)
		if err != nil {
			if errors.Is(err, signals.ErrClosed) {
				return err
			}
			return nil
		}
		err = b.subscribeOn(ctx, ses, t, h)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, signals.ErrClosed):
			return err
		}
		b.log.LogAttrs(ctx, slog.LevelWarn, "subscription interrupted, resuming",
			slog.String("topic", string(t)), slog.String("exchange", b.names.topic(t)), slog.Any("err", err))
		if !sleep(ctx, jitter(b.cfg.ReconnectMin)) {
			return nil
		}
	}
}

func (b *Bus) subscribeOn(ctx context.Context, ses session, t signals.Topic, h func([]byte)) error {
	ex := b.names.topic(t)
	var (
		ch         *amqp.Channel
		deliveries <-chan amqp.Delivery
	)
	err := b.bounded(ses.nc, func() error {
		var err error
		if ch, err = ses.conn.Channel(); err != nil {
			return fmt.Errorf("open channel: %w", err)
		}
		if err := ch.ExchangeDeclare(ex, amqp.ExchangeFanout, true, false, false, false, nil); err != nil {
			return fmt.Errorf("declare exchange %s: %w", ex, err)
		}
		q, err := ch.QueueDeclare("", false, true, true, false, nil)
		if err != nil {
			return fmt.Errorf("declare subscriber queue: %w", err)
		}
		if err := ch.QueueBind(q.Name, "", ex, false, nil); err != nil {
			return fmt.Errorf("bind subscriber queue: %w", err)
		}
		if err := ch.Qos(b.cfg.Prefetch, 0, false); err != nil {
			return fmt.Errorf("qos: %w", err)
		}
		if deliveries, err = ch.Consume(q.Name, "", false, true, false, false, nil); err != nil {
			return fmt.Errorf("consume %s: %w", q.Name, err)
		}
		return nil
	})
	if ch != nil {
		defer b.closeWithin(ses.nc, ch)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", errInterrupted, err)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-b.closing:
			return signals.ErrClosed
		case d, ok := <-deliveries:
			if !ok {
				return fmt.Errorf("%w: delivery channel closed", errInterrupted)
			}
			h(d.Body)
			if err := d.Ack(false); err != nil {
				return fmt.Errorf("%w: ack: %w", errInterrupted, err)
			}
		}
	}
}

// headerInt reads an integer header value (0 when absent or not an
// integer).
func headerInt(v any) int {
	switch n := v.(type) {
	case int32:
		return int(n)
	case int64:
		return int(n)
	case int16:
		return int(n)
	case int8:
		return int(n)
	case uint8:
		return int(n)
	case int:
		return n
	}
	return 0
}
