package rabbitmq

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/kairoshq/kairos/signals"
)

// Headers of the messages on the events exchange.
const (
	headerCount = "kairos-count" // number of events in the body (int32)
	headerType  = "kairos-type"  // the event type, on single-event messages
	// headerForwarded marks messages a consumer forwarded to the
	// partition of their state (Forward); its value is true.
	headerForwarded = "kairos-forwarded"
	// headerAttempt counts the times a consumer sent the message's events
	// back for a later try (Retry; int32).
	headerAttempt = "kairos-attempt"
)

// maxInFlight bounds the messages one Publish call has unconfirmed at a
// time; it is also the capacity of each channel's returns buffer, which
// must hold every return of a round (the client library blocks its reader
// on a full returns channel).
const maxInFlight = 1024

// pubChan is a slot of the publisher pool: a confirm-mode channel on the
// publish connection of generation gen (nil until first used).
type pubChan struct {
	ch      *amqp.Channel
	gen     uint64
	returns chan amqp.Return
}

// acquire takes a slot of the pool and makes sure it holds an open
// confirm-mode channel on the current publish connection. It fails fast
// (signals.ErrUnavailable) while the connection is down or blocked, and
// gives up when trouble closes (the session it was called for is blocked
// or lost).
func (b *Bus) acquire(ctx context.Context, trouble <-chan struct{}) (*pubChan, error) {
	var pc *pubChan
	select {
	case pc = <-b.pool:
	case <-ctx.Done():
		return nil, fmt.Errorf("rabbitmq: waiting for a publish channel: %w", ctx.Err())
	case <-trouble:
		return nil, b.pub.troubleErr("waiting for a publish channel")
	case <-b.closing:
		return nil, signals.ErrClosed
	}
	s, err := b.pub.current()
	if err != nil {
		b.pool <- pc
		return nil, err
	}
	if pc.ch != nil && pc.gen == s.gen && !pc.ch.IsClosed() {
		return pc, nil
	}
	if pc.ch != nil {
		b.closeChannel(pc.ch)
		pc.ch = nil
	}
	ch, err := s.conn.Channel()
	if err == nil {
		if err = ch.Confirm(false); err != nil {
			b.closeChannel(ch)
		}
	}
	if err != nil {
		b.pool <- pc
		return nil, unavailable("open publish channel", err)
	}
	pc.ch, pc.gen = ch, s.gen
	pc.returns = ch.NotifyReturn(make(chan amqp.Return, maxInFlight))
	return pc, nil
}

// release puts pc back into the pool; a broken channel (one whose
// confirms or returns may be pending) is closed in the background and
// reopened on the next acquire.
func (b *Bus) release(pc *pubChan, broken bool) {
	if broken && pc.ch != nil {
		b.closeChannel(pc.ch)
		pc.ch = nil
	}
	b.pool <- pc
}

// closeChannel closes ch on a goroutine of its own: Channel.Close waits
// for the broker's close-ok, which a blocked connection does not send
// until the broker unblocks it (or the connection closes, as Close does).
func (b *Bus) closeChannel(ch *amqp.Channel) {
	if !b.calls.spawn(func() { _ = ch.Close() }) {
		_ = ch.Close() // the Bus is closing: the connection is closed, so this returns at once
	}
}

// call runs f, a sequence of calls on the publish connection, on a
// goroutine of its own and waits until f returns, the session is blocked
// by the broker or lost, or ctx (bounded by Config.CallTimeout) is done,
// whichever comes first. The client library cannot interrupt a socket
// write to a broker that stopped reading, nor a call whose answer the
// broker holds back, so an abandoned f ends later (when the broker
// unblocks the connection or the connection closes) and gives back what
// it holds then. call fails fast while the connection is down or blocked.
func (b *Bus) call(ctx context.Context, op string, f func(ctx context.Context, trouble <-chan struct{}) error) error {
	s, err := b.pub.current()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.CallTimeout)
	defer cancel() // an abandoned f stops waiting for confirms
	done := make(chan error, 1)
	if !b.calls.spawn(func() { done <- f(ctx, s.trouble) }) {
		return signals.ErrClosed
	}
	select {
	case err := <-done:
		return err
	case <-s.trouble:
		return b.pub.troubleErr(op)
	case <-ctx.Done():
		return fmt.Errorf("rabbitmq: %s: %w", op, ctx.Err())
	}
}

// Publish normalizes, validates and encodes a copy of each event (the
// caller's slice is not modified), packs the events of each visitor into
// messages and publishes them to the events exchange (mandatory,
// persistent), then waits for the broker to confirm every message: nil
// means all events are stored. An invalid event, or one whose JSON is
// longer than Limits.MaxEventBytes, fails the call with its
// *signals.FieldError (matching signals.ErrInvalid) before anything is
// sent.
//
// Packing (see the package documentation for the wire format): the events
// of a routing key (the visitor id, or the Router's key), in slice order,
// go into messages of at most MaxMessageEvents events and
// Limits.MaxBatchBytes bytes; a message holding a single event carries it
// as a bare JSON object, as in the one-event-per-message format. With
// partitions, one message holds the events of every key of a partition,
// and of concurrent calls (see "Partitioning"); without, one message
// holds one key's events, routed by the key, and messages of different
// keys are sent in the order of each key's first event.
//
// Errors matching signals.ErrUnavailable: the publish connection is down
// or blocked by a broker resource alarm (Publish fails fast then instead
// of waiting, and a call in flight when the broker blocks the connection
// returns at once), the channel failed, the broker nacked a message, or a
// message was unroutable (no queue bound: no engine replica has declared
// its queue). When ctx ends first (or Config.CallTimeout passes), the
// error wraps ctx's error. After any error some events may have been
// stored anyway; publishing them again is safe (the engine de-duplicates
// by id). All messages of a call are sent in order on one channel, so the
// events of a visitor keep their order.
func (b *Bus) Publish(ctx context.Context, events []signals.Event) error {
	if b.isClosed() {
		return signals.ErrClosed
	}
	if len(events) == 0 {
		return nil
	}
	return b.publishEncoded(ctx, events, nil)
}

// publishEncoded encodes events (with the given routing keys, or the
// Router's) and publishes them: partition-addressed in a shared flight
// with partitions, else packed per key onto the events exchange.
func (b *Bus) publishEncoded(ctx context.Context, events []signals.Event, given []string) error {
	now := time.Now()
	x, err := b.encode(ctx, events, now, "", given)
	if err != nil {
		return err
	}
	if b.cfg.Partitions > 0 {
		return b.coal.publish(ctx, x)
	}
	keys, msgs, err := b.messagesByKey(x, now, false)
	if err != nil {
		return err
	}
	return b.call(ctx, "publish", func(ctx context.Context, trouble <-chan struct{}) error {
		return b.publish(ctx, trouble, b.names.events, keys, msgs, true)
	})
}

// Forward publishes events, already validated by an earlier Publish,
// under the routing key key, marked as forwarded (signals.Forwarder):
// the engine sends an event on to the partition of the state it changes
// when it arrived on another one. Packing, confirms and errors are those
// of Publish; the events are not validated again (a forwarded event
// that no longer passes, e.g. as its time has grown old, must not block
// its partition).
func (b *Bus) Forward(ctx context.Context, key string, events []signals.Event) error {
	if b.isClosed() {
		return signals.ErrClosed
	}
	if len(events) == 0 {
		return nil
	}
	if key == "" {
		return fmt.Errorf("rabbitmq: forward: %w: empty routing key", signals.ErrInvalid)
	}
	if b.cfg.Partitions > 0 {
		x, err := b.encode(ctx, events, time.Now(), key, nil)
		if err != nil {
			return err
		}
		return b.fwd.publish(ctx, x)
	}
	keys, msgs, err := b.pack(ctx, events, time.Now(), key)
	if err != nil {
		return err
	}
	return b.call(ctx, "forward", func(ctx context.Context, trouble <-chan struct{}) error {
		return b.publish(ctx, trouble, b.names.events, keys, msgs, true)
	})
}

// PublishKeys is Publish with the routing key of each event given
// (keys[i] for events[i]) instead of computed by Config.Router: a
// multi-tenant server routes each tenant's events by tenant and resolved
// identity ("<tenant>/<key>") on one shared set of partitions. Events of
// one key keep their order.
func (b *Bus) PublishKeys(ctx context.Context, events []signals.Event, keys []string) error {
	if b.isClosed() {
		return signals.ErrClosed
	}
	if len(events) == 0 {
		return nil
	}
	if len(keys) != len(events) {
		return fmt.Errorf("rabbitmq: publish: %w: %d routing keys for %d events", signals.ErrInvalid, len(keys), len(events))
	}
	for i, k := range keys {
		if k == "" {
			return fmt.Errorf("rabbitmq: publish: %w: event %d: empty routing key", signals.ErrInvalid, i)
		}
	}
	return b.publishEncoded(ctx, events, keys)
}

// Retry sends events back to be delivered again after Config.RetryDelay
// (signals.Retrier): they wait in the retry queue <prefix>.events.retry,
// whose message TTL dead-letters them to the events exchange under the
// routing key key, so they return to the tail of the key's partition,
// marked forwarded and with the header kairos-attempt = attempt. Packing,
// confirms and errors are those of Forward. Without a retry queue
// (RetryDelay 0) it fails with signals.ErrInvalid.
func (b *Bus) Retry(ctx context.Context, key string, events []signals.Event, attempt int) error {
	if b.isClosed() {
		return signals.ErrClosed
	}
	if b.cfg.RetryDelay <= 0 {
		return fmt.Errorf("rabbitmq: retry: %w: no retry queue (Config.RetryDelay is 0)", signals.ErrInvalid)
	}
	if len(events) == 0 {
		return nil
	}
	if key == "" {
		return fmt.Errorf("rabbitmq: retry: %w: empty routing key", signals.ErrInvalid)
	}
	if b.cfg.Partitions > 0 {
		x, err := b.encode(ctx, events, time.Now(), key, nil)
		if err != nil {
			return err
		}
		return b.sendToPartition(ctx, "retry", b.names.retryByPart, x, amqp.Table{headerAttempt: int32(attempt)})
	}
	keys, msgs, err := b.pack(ctx, events, time.Now(), key)
	if err != nil {
		return err
	}
	for i := range msgs {
		msgs[i].Headers[headerAttempt] = int32(attempt)
	}
	return b.call(ctx, "retry", func(ctx context.Context, trouble <-chan struct{}) error {
		return b.publish(ctx, trouble, b.names.retry, keys, msgs, true)
	})
}

// pack validates and encodes events and groups them into messages (see
// Publish); it returns the routing keys and messages in sending order.
// With a forward key, every event goes under that key, unvalidated, in
// messages marked forwarded (see Forward).
func (b *Bus) pack(ctx context.Context, events []signals.Event, now time.Time, forward string) ([]string, []amqp.Publishing, error) {
	return b.packKeys(ctx, events, now, forward, nil)
}

// packKeys is pack; given, when not nil, is the routing key of each event
// (PublishKeys).
func (b *Bus) packKeys(ctx context.Context, events []signals.Event, now time.Time, forward string, given []string) ([]string, []amqp.Publishing, error) {
	enc, err := b.encode(ctx, events, now, forward, given)
	if err != nil {
		return nil, nil, err
	}
	return b.messagesByKey(enc, now, forward != "")
}

// encodedEvents are the events of one call, encoded (see encode).
type encodedEvents struct {
	all   []byte         // the events' JSON, one after the other
	ends  []int          // ends[i] is the end of event i in all
	keys  []string       // the routing key of each event
	ids   []string       // the id of each event
	types []signals.Type // the type of each event
}

// body returns the JSON of event i.
func (x *encodedEvents) body(i int) []byte {
	start := 0
	if i > 0 {
		start = x.ends[i-1]
	}
	return x.all[start:x.ends[i]]
}

// encode normalizes, validates (unless forward is set) and encodes each
// event and gives it its routing key: forward, else given[i], else the
// Router's, else the visitor id.
func (b *Bus) encode(ctx context.Context, events []signals.Event, now time.Time, forward string, given []string) (*encodedEvents, error) {
	lim := b.cfg.Limits
	var buf bytes.Buffer
	x := &encodedEvents{
		ends:  make([]int, len(events)),
		keys:  make([]string, len(events)),
		ids:   make([]string, len(events)),
		types: make([]signals.Type, len(events)),
	}
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	var normal []signals.Event // the normalized events, for the Router
	if b.cfg.Router != nil && forward == "" && given == nil {
		normal = make([]signals.Event, len(events))
	}
	for i := range events {
		e := events[i]
		e.Normalize(now)
		if forward == "" {
			if err := e.Validate(now, lim); err != nil {
				return nil, fmt.Errorf("rabbitmq: publish: event %d: %w", i, err)
			}
		}
		start := buf.Len()
		if err := enc.Encode(&e); err != nil {
			return nil, fmt.Errorf("rabbitmq: publish: encode event %d: %w", i, err)
		}
		buf.Truncate(buf.Len() - 1) // the newline Encode appends
		if n := buf.Len() - start; n > lim.MaxEventBytes {
			return nil, fmt.Errorf("rabbitmq: publish: event %d: %w", i,
				&signals.FieldError{Reason: fmt.Sprintf("event is %d bytes long as JSON, more than the maximum %d", n, lim.MaxEventBytes)})
		}
		x.ends[i] = buf.Len()
		x.keys[i], x.ids[i], x.types[i] = e.Visitor, e.ID, e.Type
		if normal != nil {
			normal[i] = e
		}
	}
	x.all = buf.Bytes()
	switch {
	case forward != "":
		for i := range x.keys {
			x.keys[i] = forward
		}
	case given != nil:
		copy(x.keys, given)
	case normal != nil:
		copy(x.keys, b.cfg.Router.RouteKeys(ctx, normal))
	}
	return x, nil
}

// messagesByKey groups encoded events into messages routed by their
// keys (see Publish): per key in order of first appearance, in chunks
// of at most MaxMessageEvents events and Limits.MaxBatchBytes bytes.
func (b *Bus) messagesByKey(x *encodedEvents, now time.Time, forwarded bool) ([]string, []amqp.Publishing, error) {
	var (
		groups [][]int
		byKey  = make(map[string]int, 1)
	)
	for i, k := range x.keys {
		g, ok := byKey[k]
		if !ok {
			g = len(groups)
			byKey[k] = g
			groups = append(groups, nil)
		}
		groups[g] = append(groups[g], i)
	}
	var (
		keys []string
		msgs []amqp.Publishing
	)
	for _, g := range groups {
		for _, chunk := range b.chunks(len(g), func(k int) int { return len(x.body(g[k])) }) {
			idx := g[chunk[0]:chunk[1]]
			m := newMessage(now, x.ids[idx[0]], len(idx), forwarded)
			m.Body = arrayBody(len(idx), func(k int) []byte { return x.body(idx[k]) })
			if len(idx) == 1 {
				m.Headers[headerType] = string(x.types[idx[0]])
			}
			keys = append(keys, x.keys[idx[0]])
			msgs = append(msgs, m)
		}
	}
	return keys, msgs, nil
}

// chunks splits n events (size(k) is the length of event k's JSON) into
// runs [start, end) of at most MaxMessageEvents events and
// Limits.MaxBatchBytes bytes as a JSON array; an event alone may exceed
// the bytes.
func (b *Bus) chunks(n int, size func(k int) int) [][2]int {
	maxEvents, maxBytes := b.cfg.MaxMessageEvents, b.cfg.Limits.MaxBatchBytes
	var out [][2]int
	start, total := 0, 1 // size of the array body so far: '[' and commas
	for k := range n {
		s := size(k) + 1 // the event and its ',' or ']'
		if k > start && (k-start == maxEvents || total+s > maxBytes) {
			out = append(out, [2]int{start, k})
			start, total = k, 1
		}
		total += s
	}
	return append(out, [2]int{start, n})
}

// newMessage returns a persistent message of count events, the first
// with id first, marked forwarded when forwarded is set; the caller sets
// its body.
func newMessage(now time.Time, first string, count int, forwarded bool) amqp.Publishing {
	m := amqp.Publishing{
		ContentType:  "application/json",
		DeliveryMode: amqp.Persistent,
		MessageId:    first,
		Timestamp:    now,
		AppId:        "kairos",
		Headers:      amqp.Table{headerCount: int32(count)},
	}
	if forwarded {
		m.Headers[headerForwarded] = true
	}
	return m
}

// arrayBody returns the body of a message of n events (body(k) is the
// JSON of event k): the event itself when n is 1, else a JSON array.
func arrayBody(n int, body func(k int) []byte) []byte {
	if n == 1 {
		return body(0)
	}
	size := 1 + n
	for k := range n {
		size += len(body(k))
	}
	out := make([]byte, 0, size)
	out = append(out, '[')
	for k := range n {
		if k > 0 {
			out = append(out, ',')
		}
		out = append(out, body(k)...)
	}
	return append(out, ']')
}

// publish sends msgs (routing keys keys) to exchange on a pooled channel
// and waits for their confirms, giving up when ctx is done or trouble
// closes. Run it through call.
func (b *Bus) publish(ctx context.Context, trouble <-chan struct{}, exchange string, keys []string, msgs []amqp.Publishing, mandatory bool) error {
	pc, err := b.acquire(ctx, trouble)
	if err != nil {
		return err
	}
	broken := true
	defer func() { b.release(pc, broken) }()
	dcs := make([]*amqp.DeferredConfirmation, 0, min(len(msgs), maxInFlight))
	for start := 0; start < len(msgs); start += maxInFlight {
		end := min(start+maxInFlight, len(msgs))
		dcs = dcs[:0]
		for i := start; i < end; i++ {
			select {
			case <-trouble:
				return b.pub.troubleErr("publish")
			default:
			}
			dc, err := pc.ch.PublishWithDeferredConfirmWithContext(ctx, exchange, keys[i], mandatory, false, msgs[i])
			if err != nil {
				if ctx.Err() != nil {
					return fmt.Errorf("rabbitmq: publish: %w", ctx.Err())
				}
				return unavailable("publish", err)
			}
			dcs = append(dcs, dc)
		}
		nacked := 0
		for _, dc := range dcs {
			select {
			case <-dc.Done():
			case <-ctx.Done():
				return fmt.Errorf("rabbitmq: publish: waiting for confirms: %w", ctx.Err())
			case <-trouble:
				return b.pub.troubleErr("publish: waiting for confirms")
			}
			if !dc.Acked() {
				nacked++
			}
		}
		if nacked > 0 {
			if pc.ch.IsClosed() {
				return unavailable("publish", fmt.Errorf("channel closed before %d of %d messages were confirmed", nacked, len(dcs)))
			}
			return unavailable("publish", fmt.Errorf("broker nacked %d of %d messages", nacked, len(dcs)))
		}
		// A basic.return precedes the ack of the same message, so every
		// return of this round is in the buffer by now.
		returned := 0
		var first amqp.Return
	drain:
		for {
			select {
			case r, ok := <-pc.returns:
				if !ok {
					break drain
				}
				if returned == 0 {
					first = r
				}
				returned++
			default:
				break drain
			}
		}
		if returned > 0 {
			return unavailable("publish", fmt.Errorf("%d of %d messages unroutable (%d %s): no queue is bound to %s; is an engine replica set up?",
				returned, len(dcs), first.ReplyCode, first.ReplyText, exchange))
		}
	}
	broken = false
	return nil
}

// Broadcast publishes msg to the fanout exchange of t (<prefix>.updates
// for signals.TopicUpdates, ...) and waits for the broker's confirm. With
// no subscriber bound, the message is dropped by the broker (nil error).
func (b *Bus) Broadcast(ctx context.Context, t signals.Topic, msg []byte) error {
	if b.isClosed() {
		return signals.ErrClosed
	}
	ex := b.names.topic(t)
	m := []amqp.Publishing{{
		ContentType:  "application/octet-stream",
		DeliveryMode: amqp.Transient,
		Timestamp:    time.Now(),
		AppId:        "kairos",
		Body:         msg,
	}}
	return b.call(ctx, "broadcast", func(ctx context.Context, trouble <-chan struct{}) error {
		if err := b.declareTopic(ex); err != nil {
			return err
		}
		return b.publish(ctx, trouble, ex, []string{""}, m, false)
	})
}

// declareTopic declares the fanout exchange ex once per publish
// connection (the known topics are declared with the topology).
func (b *Bus) declareTopic(ex string) error {
	s, err := b.pub.current()
	if err != nil {
		return err
	}
	conn, gen := s.conn, s.gen
	b.declMu.Lock()
	defer b.declMu.Unlock()
	if g, ok := b.declared[ex]; ok && g == gen {
		return nil
	}
	for _, t := range knownTopics {
		if b.names.topic(t) == ex {
			b.declared[ex] = gen
			return nil
		}
	}
	ch, err := conn.Channel()
	if err != nil {
		return unavailable("open channel", err)
	}
	defer b.closeChannel(ch)
	if err := ch.ExchangeDeclare(ex, amqp.ExchangeFanout, true, false, false, false, nil); err != nil {
		return fmt.Errorf("rabbitmq: declare exchange %s: %w", ex, err)
	}
	b.declared[ex] = gen
	return nil
}
