package stats

import "github.com/kairoshq/kairos/signals"

// aggregator sums a batch's events into one delta per (resolution,
// subject, bucket, type). Its memory is reused from batch to batch, so a
// batch allocates only when it touches more counters than any before.
type aggregator struct {
	index map[aggKey]int32 // → keys
	keys  []aggCounter
	out   []Delta
}

// aggKey identifies one counter hash: a bucket of a subject at a
// resolution.
type aggKey struct {
	res   Resolution
	kind  Kind
	start int64
	id    string
}

type aggCounter struct {
	key    aggKey
	expire int64
	fields []aggField
}

type aggField struct {
	typ   signals.Type
	count int64
	sum   float64
}

func (a *aggregator) init() { a.index = make(map[aggKey]int32, 1024) }

// reset empties the aggregator, keeping its memory.
func (a *aggregator) reset() {
	clear(a.index)
	a.keys = a.keys[:0]
	a.out = a.out[:0]
}

// add counts one event of type typ and value v.
func (a *aggregator) add(res Resolution, kind Kind, id string, start, expire int64, typ signals.Type, v float64) {
	k := aggKey{res: res, kind: kind, start: start, id: id}
	i, ok := a.index[k]
	if !ok {
		i = int32(len(a.keys))
		a.index[k] = i
		if len(a.keys) < cap(a.keys) {
			a.keys = a.keys[:len(a.keys)+1]
			c := &a.keys[i]
			c.key, c.expire, c.fields = k, expire, c.fields[:0]
		} else {
			a.keys = append(a.keys, aggCounter{key: k, expire: expire})
		}
	}
	c := &a.keys[i]
	for j := range c.fields {
		if f := &c.fields[j]; f.typ == typ {
			f.count++
			f.sum += v
			return
		}
	}
	c.fields = append(c.fields, aggField{typ: typ, count: 1, sum: v})
}

// deltas returns the aggregated deltas, those of one counter hash next to
// each other, counters in order of first appearance. The slice is reused
// by the next batch.
func (a *aggregator) deltas() []Delta {
	for i := range a.keys {
		c := &a.keys[i]
		for _, f := range c.fields {
			a.out = append(a.out, Delta{
				Res: c.key.res, Subject: Subject{Kind: c.key.kind, ID: c.key.id}, Start: c.key.start, ExpireAt: c.expire,
				Type: f.typ, Count: f.count, Sum: f.sum,
			})
		}
	}
	return a.out
}
