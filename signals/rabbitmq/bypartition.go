package rabbitmq

import (
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/kairoshq/kairos/signals"
)

// Partition-addressed publishing
//
// With partitions (Config.Partitions > 0) the Bus does not leave the
// choice of a partition to the consistent-hash exchange: it computes the
// partition of each event's routing key itself (PartitionOf) and
// publishes to <prefix>.events.p under the partition's number, so that
// one message carries the events of many keys of one partition. The
// routing key of each event travels in the header kairos-keys (an array
// of strings, one per event of the body). A quorum-queue message costs
// the broker about as much whether it holds one event or a hundred, so
// this is what lets a broker take several thousand events a second from
// batches of many visitors (a collector's, a server's) instead of one
// message per visitor.
//
// Concurrent Publish calls share flights (a group commit): a call's
// events join the queue of waiting calls, and a flight takes the calls
// waiting when it starts, publishes one message per partition for all of
// them (more when a partition's events exceed the message bounds), and
// answers each call when the broker has confirmed the flight. Up to
// Config.PublishFlights flights (default 1) run at once, so a lone call
// is sent at once and calls wait only while every flight is busy — the
// busier the broker, the fuller the messages.
//
// Events published to <prefix>.events with a visitor as the routing key
// (server-side producers, or a build before this one) still reach a
// partition through the consistent-hash exchange; when that is not the
// partition PartitionOf gives, the consumer marks them Route.Foreign and
// the engine forwards them to the partition that owns their state.

// headerKeys is the header of a partition-addressed message: the routing
// key of each event of its body, in order (an array of strings).
const headerKeys = "kairos-keys"

// maxHeaderKeyBytes bounds the routing keys of one message (the header
// must fit in one AMQP frame, 128 KiB by default).
const maxHeaderKeyBytes = 32 << 10

// maxFlightEvents is the most events one flight takes (whole calls: a
// call larger than this goes alone).
const maxFlightEvents = 8192

// PartitionOf returns the partition of routing key key among n
// partitions (n ≥ 1): the jump consistent hash (Lamping and Veach, 2014)
// of the key's 64-bit FNV-1a hash. It is part of the wire contract: a
// key's partition must be the same in every build and every replica, so
// this function never changes.
func PartitionOf(key string, n int) int {
	h := fnv.New64a()
	h.Write([]byte(key))
	k := h.Sum64()
	b, j := int64(-1), int64(0)
	for j < int64(n) {
		b = j
		k = k*2862933555777941757 + 1
		j = int64(float64(b+1) * (float64(int64(1)<<31) / float64((k>>33)+1)))
	}
	return int(b)
}

// partitionCall is a Publish call waiting for a flight.
type partitionCall struct {
	x     *encodedEvents
	parts []int      // the partition of each event
	done  chan error // the flight's result; buffered
}

// coalescer runs the flights of partition-addressed Publish calls (see
// "Partition-addressed publishing").
type coalescer struct {
	b          *Bus
	maxFlights int
	forwarded  bool                               // the messages are marked forwarded (Forward)
	send       func(calls []*partitionCall) error // publishes a flight (sendToBroker; tests replace it)

	mu      sync.Mutex
	waiting []*partitionCall
	flights int
}

// newCoalescer returns a coalescer of b: Config.PublishFlights flights
// at most, of messages marked forwarded when forwarded is set (Forward:
// the engine forwards the events of each state of a batch at once, so
// they share flights too).
func newCoalescer(b *Bus, forwarded bool) *coalescer {
	c := &coalescer{b: b, maxFlights: b.cfg.PublishFlights, forwarded: forwarded}
	c.send = c.sendToBroker
	return c
}

// newPartitionCall returns the call of the encoded events x, each given
// the partition of its routing key among n.
func newPartitionCall(x *encodedEvents, n int) *partitionCall {
	call := &partitionCall{x: x, parts: make([]int, len(x.keys)), done: make(chan error, 1)}
	for i, k := range x.keys {
		call.parts[i] = PartitionOf(k, n)
	}
	return call
}

// publish sends the encoded events x in a flight and waits until the
// broker has confirmed it, ctx is done or the Bus closes.
func (c *coalescer) publish(ctx context.Context, x *encodedEvents) error {
	call := newPartitionCall(x, c.b.cfg.Partitions)
	c.mu.Lock()
	c.waiting = append(c.waiting, call)
	start := c.flights < c.maxFlights
	if start {
		c.flights++
	}
	c.mu.Unlock()
	if start {
		go c.fly()
	}
	select {
	case err := <-call.done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("rabbitmq: publish: %w", ctx.Err())
	case <-c.b.closing:
		return signals.ErrClosed
	}
}

// fly runs flights until no call waits.
func (c *coalescer) fly() {
	for {
		calls := c.take()
		if calls == nil {
			return
		}
		err := c.send(calls)
		for _, call := range calls {
			call.done <- err
		}
	}
}

// take removes the calls of the next flight from the waiting list (at
// least one, whole calls up to maxFlightEvents events), or ends the
// flight (nil) when none waits.
func (c *coalescer) take() []*partitionCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.waiting) == 0 {
		c.flights--
		return nil
	}
	n, events := 0, 0
	for n < len(c.waiting) && (n == 0 || events+len(c.waiting[n].parts) <= maxFlightEvents) {
		events += len(c.waiting[n].parts)
		n++
	}
	calls := slices.Clone(c.waiting[:n])
	rest := copy(c.waiting, c.waiting[n:])
	clear(c.waiting[rest:])
	c.waiting = c.waiting[:rest]
	return calls
}

// sendToBroker publishes the events of calls, packed by partition, and
// waits for the broker's confirms.
func (c *coalescer) sendToBroker(calls []*partitionCall) error {
	b := c.b
	keys, msgs := b.messagesByPartition(calls, time.Now(), c.forwarded)
	op := "publish"
	if c.forwarded {
		op = "forward"
	}
	err := b.call(b.ctx, op, func(ctx context.Context, trouble <-chan struct{}) error {
		return b.publish(ctx, trouble, b.names.byPartition, keys, msgs, true)
	})
	if err == nil {
		events := 0
		for _, call := range calls {
			events += len(call.parts)
		}
		b.packedMessages.Add(uint64(len(msgs)))
		b.packedEvents.Add(uint64(events))
	}
	return err
}

// Packing returns how many partition-addressed messages this Bus has
// published (confirmed by the broker) since Dial and how many events
// they carried: their ratio is how well concurrent calls share messages
// (kairos serve exports both; kairos bench ingest prints the ratio).
func (b *Bus) Packing() (messages, events uint64) {
	return b.packedMessages.Load(), b.packedEvents.Load()
}

// eventRef is event i of a call.
type eventRef struct {
	x *encodedEvents
	i int
}

// messagesByPartition packs the events of calls into messages per
// partition, in order of each partition's first event (within the message
// bounds and maxHeaderKeyBytes), routed by the partition's number, each
// event's routing key in the header kairos-keys.
func (b *Bus) messagesByPartition(calls []*partitionCall, now time.Time, forwarded bool) ([]string, []amqp.Publishing) {
	var (
		order  []int
		byPart = map[int][]eventRef{}
	)
	for _, call := range calls {
		for i, p := range call.parts {
			if _, ok := byPart[p]; !ok {
				order = append(order, p)
			}
			byPart[p] = append(byPart[p], eventRef{call.x, i})
		}
	}
	var (
		keys []string
		msgs []amqp.Publishing
	)
	for _, p := range order {
		refs := byPart[p]
		size := func(k int) int { return len(refs[k].x.body(refs[k].i)) }
		keySize := func(k int) int { return len(refs[k].x.keys[refs[k].i]) + 5 }
		for _, ch := range b.chunksWithKeys(len(refs), size, keySize) {
			run := refs[ch[0]:ch[1]]
			first := run[0]
			m := newMessage(now, first.x.ids[first.i], len(run), forwarded)
			m.Body = arrayBody(len(run), func(k int) []byte { return run[k].x.body(run[k].i) })
			if len(run) == 1 {
				m.Headers[headerType] = string(first.x.types[first.i])
			}
			ks := make([]any, len(run))
			for k, r := range run {
				ks[k] = r.x.keys[r.i]
			}
			m.Headers[headerKeys] = ks
			keys = append(keys, strconv.Itoa(p))
			msgs = append(msgs, m)
		}
	}
	return keys, msgs
}

// chunksWithKeys is chunks with the routing keys of a message (keySize(k)
// bytes each in the header) also bounded by maxHeaderKeyBytes.
func (b *Bus) chunksWithKeys(n int, size, keySize func(k int) int) [][2]int {
	var out [][2]int
	for _, ch := range b.chunks(n, size) {
		start, total := ch[0], 0
		for k := ch[0]; k < ch[1]; k++ {
			s := keySize(k)
			if k > start && total+s > maxHeaderKeyBytes {
				out = append(out, [2]int{start, k})
				start, total = k, 0
			}
			total += s
		}
		out = append(out, [2]int{start, ch[1]})
	}
	return out
}

// sendToPartition publishes events already encoded under one key (a
// Retry) to the key's partition through exchange (the partition-addressed
// retry exchange), marked forwarded and with extra headers.
func (b *Bus) sendToPartition(ctx context.Context, op, exchange string, x *encodedEvents, headers amqp.Table) error {
	call := newPartitionCall(x, b.cfg.Partitions)
	keys, msgs := b.messagesByPartition([]*partitionCall{call}, time.Now(), true)
	for i := range msgs {
		for k, v := range headers {
			msgs[i].Headers[k] = v
		}
	}
	return b.call(ctx, op, func(ctx context.Context, trouble <-chan struct{}) error {
		return b.publish(ctx, trouble, exchange, keys, msgs, true)
	})
}

// keysOf returns the routing key of each event of a delivery of a
// partition-addressed message (the header kairos-keys), or nil when it
// has none or it does not name a string key for each of the body's
// events (total).
func keysOf(d *amqp.Delivery, total int) []string {
	raw, ok := d.Headers[headerKeys].([]any)
	if !ok || len(raw) != total {
		return nil
	}
	keys := make([]string, len(raw))
	for i, v := range raw {
		s, ok := v.(string)
		if !ok {
			return nil
		}
		keys[i] = s
	}
	return keys
}
