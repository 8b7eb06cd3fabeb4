package embedded

import (
	"maps"
	"math/bits"
	"slices"
	"time"
)

// idHash is the 128-bit FNV-1a hash of a de-duplication mark (markHash):
// the marks keep hashes, not ids, so that a mark costs about 20 bytes of
// memory whatever the id's length. Two different marks collide with
// probability 2⁻¹²⁸.
type idHash [16]byte

// fnv128 is the state of a 128-bit FNV-1a hash.
type fnv128 struct{ hi, lo uint64 }

func newFNV128() fnv128 { return fnv128{0x6c62272e07bb0142, 0x62b821756295c58d} }

func (f *fnv128) write(s string) {
	const (
		prime128Lower = 0x13b
		prime128Shift = 24
	)
	hi, lo := f.hi, f.lo
	for i := 0; i < len(s); i++ {
		lo ^= uint64(s[i])
		h, l := bits.Mul64(prime128Lower, lo)
		h += lo<<prime128Shift + prime128Lower*hi
		hi, lo = h, l
	}
	f.hi, f.lo = hi, lo
}

// hashID is the hash of an event id alone: the marks of stores written
// before marks were kept per visitor (Seen still looks them up, until
// they expire with the window).
func hashID(id string) idHash {
	f := newFNV128()
	f.write(id)
	return f.sum()
}

// markHash is the hash of the mark of event id under visitor (the state
// it was committed to, engine.EventRef): an id is de-duplicated per
// visitor, as on Redis, so that two visitors' events that share an id
// are both applied.
func markHash(visitor, id string) idHash {
	f := newFNV128()
	f.write(visitor)
	f.write("\x00")
	f.write(id)
	return f.sum()
}

func (f *fnv128) sum() idHash {
	hi, lo := f.hi, f.lo
	var out idHash
	for i := range 8 {
		out[i] = byte(hi >> (56 - 8*i))
		out[8+i] = byte(lo >> (56 - 8*i))
	}
	return out
}

// seenBuckets is the number of time buckets per de-duplication window.
const seenBuckets = 8

// seenSet holds the de-duplication marks in time buckets of a width of
// window/seenBuckets, oldest first. Only the newest bucket is ever
// written, so a snapshot may share the others. A bucket is dropped once
// its end is more than window ago; Seen ignores such buckets before then.
type seenSet struct {
	window  int64 // ns
	width   int64 // ns
	buckets []seenBucket
}

type seenBucket struct {
	start, end int64 // Unix ns; start is a multiple of width
	ids        map[idHash]struct{}
}

func newSeenSet(window time.Duration) seenSet {
	return seenSet{window: int64(window), width: max(int64(window)/seenBuckets, 1)}
}

// add marks h at time now (Unix ns). A time before the newest bucket (a
// clock step back) goes into the newest bucket, where it lives longer.
func (s *seenSet) add(h idHash, now int64) {
	if n := len(s.buckets); n == 0 || now >= s.buckets[n-1].end {
		s.expire(now)
		start := now - now%s.width
		s.buckets = append(s.buckets, seenBucket{start: start, end: start + s.width, ids: make(map[idHash]struct{})})
	}
	s.buckets[len(s.buckets)-1].ids[h] = struct{}{}
}

// live reports whether bucket b may hold marks younger than the window.
func (s *seenSet) live(b seenBucket, now int64) bool {
	return b.end > now-s.window
}

// expire drops the buckets that are no longer live.
func (s *seenSet) expire(now int64) {
	i := 0
	for i < len(s.buckets) && !s.live(s.buckets[i], now) {
		i++
	}
	if i > 0 {
		clear(s.buckets[:i])
		s.buckets = slices.Delete(s.buckets, 0, i)
	}
}

// has reports whether h was marked in a live bucket.
func (s *seenSet) has(h idHash, now int64) bool {
	for i := len(s.buckets) - 1; i >= 0; i-- {
		b := s.buckets[i]
		if !s.live(b, now) {
			return false
		}
		if _, ok := b.ids[h]; ok {
			return true
		}
	}
	return false
}

// len returns the number of marks held.
func (s *seenSet) len() int {
	n := 0
	for _, b := range s.buckets {
		n += len(b.ids)
	}
	return n
}

// clone returns a copy that shares the frozen buckets.
func (s *seenSet) clone() seenSet {
	c := *s
	c.buckets = slices.Clone(s.buckets)
	if n := len(c.buckets); n > 0 {
		c.buckets[n-1].ids = maps.Clone(c.buckets[n-1].ids)
	}
	return c
}

// restore adds the marks of a bucket read from a snapshot, in ascending
// order of buckets (a bucket may come in several parts).
func (s *seenSet) restore(start, end int64, hs []idHash) {
	n := len(s.buckets)
	if n == 0 || start != s.buckets[n-1].start {
		s.buckets = append(s.buckets, seenBucket{start: start, end: end, ids: make(map[idHash]struct{}, len(hs))})
		n++
	}
	b := s.buckets[n-1].ids
	for _, h := range hs {
		b[h] = struct{}{}
	}
}
