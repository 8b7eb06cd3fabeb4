package tenant

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/kairoshq/kairos/engine/storage"
)

// quotaSet holds the quota state of every tenant seen.
type quotaSet struct {
	now func() time.Time
	m   sync.Map // id -> *quotaState
	// counters, when set, holds the events-per-day counts every replica
	// shares (sync adds this process's and reads everyone's).
	counters storage.Maps
}

// eventsKey is the map of the tenant id's daily event counts in the
// deployment's store: one field per UTC day number.
func eventsKey(id string) string { return "tenants:events:{" + id + "}" }

// quotaState is one tenant's counters.
type quotaState struct {
	now      func() time.Time
	inFlight atomic.Int64 // requests being served (Config.MaxInFlight)

	mu     sync.Mutex
	limit  float64 // the rate lim was made for
	lim    *rate.Limiter
	day    int64 // UTC day number of events
	events int64 // events accepted today: here, or with shared counters everyone's as last read plus pending
	// With shared counters: the events accepted here today and not yet
	// added to the store, and whether the store's count was read today.
	pending int64
	read    bool
	// The events-per-second bucket: tokens (negative: overdrawn) as of
	// evAt, for the rate evRate; evAvg is the moving average of the
	// events an event request accepted (what admission reserves).
	evRate   float64
	evTokens float64
	evAt     time.Time
	evAvg    float64
}

// get returns id's state, with its rate limiter matching q.
func (s *quotaSet) get(id string, q Quotas) *quotaState {
	v, ok := s.m.Load(id)
	if !ok {
		v, _ = s.m.LoadOrStore(id, &quotaState{now: s.now})
	}
	st := v.(*quotaState)
	st.mu.Lock()
	if st.limit != q.RequestsPerSecond {
		st.limit = q.RequestsPerSecond
		st.lim = nil
		if q.RequestsPerSecond > 0 {
			st.lim = rate.NewLimiter(rate.Limit(q.RequestsPerSecond), int(math.Max(1, 2*q.RequestsPerSecond)))
		}
	}
	st.mu.Unlock()
	return st
}

// eventsAllowed reports whether an event request may pass the
// events-per-second quota rate (> 0): the bucket is not overdrawn. It
// then reserves the events such a request accepted on average (at least
// 1), so that concurrent requests cannot all pass before the first is
// charged; settleEvents charges the difference once the request is
// done. When the bucket is overdrawn it returns how long until it is not.
func (q *quotaState) eventsAllowed(rate float64) (reserved float64, wait time.Duration, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.refillLocked(rate)
	if q.evTokens < 0 {
		return 0, time.Duration(-q.evTokens / rate * float64(time.Second)), false
	}
	reserved = math.Max(1, q.evAvg)
	q.evTokens -= reserved
	return reserved, 0, true
}

// settleEvents charges n accepted events to the events-per-second bucket
// of rate (> 0), of which reserved were taken at admission; it may
// overdraw the bucket.
func (q *quotaState) settleEvents(n int64, reserved, rate float64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.refillLocked(rate)
	q.evTokens -= float64(n) - reserved
	if q.evAvg == 0 {
		q.evAvg = float64(n)
	} else {
		q.evAvg += 0.2 * (float64(n) - q.evAvg)
	}
}

// refillLocked adds the tokens earned since evAt, up to one second's.
func (q *quotaState) refillLocked(rate float64) {
	now := q.now()
	if q.evRate != rate || q.evAt.IsZero() {
		q.evRate, q.evTokens, q.evAt = rate, rate, now
		return
	}
	q.evTokens = math.Min(rate, q.evTokens+now.Sub(q.evAt).Seconds()*rate)
	q.evAt = now
}

// drop forgets id (deleted).
func (s *quotaSet) drop(id string) { s.m.Delete(id) }

// eventsOf returns id's events today. With shared counters a tenant
// this replica has not served yet today is read from the store first
// (after a restart it would show 0 until its first request); a failed
// read shows what is known here.
func (s *quotaSet) eventsOf(ctx context.Context, id string) int64 {
	v, ok := s.m.Load(id)
	if !ok {
		if s.counters == nil {
			return 0
		}
		v, _ = s.m.LoadOrStore(id, &quotaState{now: s.now})
	}
	st := v.(*quotaState)
	_ = s.readShared(ctx, id, st) // a store failure: the local count
	return st.eventsToday()
}

// allow takes a token of the rate limit; when none is left it returns
// how long until one is.
func (q *quotaState) allow() (time.Duration, bool) {
	q.mu.Lock()
	lim := q.lim
	q.mu.Unlock()
	if lim == nil {
		return 0, true
	}
	now := q.now()
	r := lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d, false
	}
	return 0, true
}

func dayOf(t time.Time) int64 { return t.UTC().Unix() / 86400 }

// eventsToday returns the events counted today (UTC).
func (q *quotaState) eventsToday() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	if dayOf(q.now()) != q.day {
		return 0
	}
	return q.events
}

// addEvents counts n accepted events today.
func (q *quotaState) addEvents(n int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.rollLocked()
	q.events += n
	q.pending += n
}

// rollLocked starts a new day's count when the UTC day changed (events
// of the previous day not yet shared are not carried over).
func (q *quotaState) rollLocked() {
	if d := dayOf(q.now()); d != q.day {
		q.day, q.events, q.pending, q.read = d, 0, 0, false
	}
}

// sync adds the events accepted here since the last sync to the shared
// counts and reads back everyone's, for every tenant seen (with
// counters; else nothing).
func (s *quotaSet) sync(ctx context.Context) error {
	if s.counters == nil {
		return nil
	}
	type item struct {
		id  string
		st  *quotaState
		day int64
		add int64
	}
	var items []item
	var txn storage.Txn
	txn.Lazy = true
	s.m.Range(func(k, v any) bool {
		st := v.(*quotaState)
		st.mu.Lock()
		st.rollLocked()
		it := item{id: k.(string), st: st, day: st.day, add: st.pending}
		st.pending = 0
		st.mu.Unlock()
		items = append(items, it)
		if it.add > 0 {
			key := eventsKey(k.(string))
			txn.Incr(key, strconv.FormatInt(it.day, 10), it.add)
			txn.Expire(key, time.Unix((it.day+2)*86400, 0))
		}
		return true
	})
	if len(items) == 0 {
		return nil
	}
	if !txn.Empty() {
		if err := s.counters.Apply(ctx, txn); err != nil {
			for _, it := range items { // counted again at the next sync
				it.st.mu.Lock()
				if it.st.day == it.day {
					it.st.pending += it.add
				}
				it.st.mu.Unlock()
			}
			return fmt.Errorf("tenant: share the events-per-day counts: %w", err)
		}
	}
	keys := make([]string, len(items))
	for i, it := range items {
		keys[i] = eventsKey(it.id)
	}
	maps, err := s.counters.Maps(ctx, keys)
	if err != nil {
		return fmt.Errorf("tenant: read the events-per-day counts: %w", err)
	}
	for i, it := range items {
		st := it.st
		st.mu.Lock()
		st.rollLocked()
		total, _ := strconv.ParseInt(maps[i][strconv.FormatInt(st.day, 10)], 10, 64)
		st.events, st.read = total+st.pending, true
		st.mu.Unlock()
	}
	return nil
}

// readShared reads the shared count of id's state st once a day, before
// its first quota check (with counters).
func (s *quotaSet) readShared(ctx context.Context, id string, st *quotaState) error {
	if s.counters == nil {
		return nil
	}
	st.mu.Lock()
	st.rollLocked()
	done, day := st.read, st.day
	st.mu.Unlock()
	if done {
		return nil
	}
	f, err := s.counters.Fields(ctx, eventsKey(id), []string{strconv.FormatInt(day, 10)})
	if err != nil {
		return fmt.Errorf("tenant: read the events-per-day count: %w", err)
	}
	total, _ := strconv.ParseInt(f[strconv.FormatInt(day, 10)], 10, 64)
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.day == day && !st.read {
		st.events, st.read = max(st.events, total+st.pending), true
	}
	return nil
}

// untilTomorrow is the time left until 00:00 UTC.
func (q *quotaState) untilTomorrow() time.Duration {
	now := q.now().UTC()
	return time.Unix((dayOf(now)+1)*86400, 0).Sub(now)
}

// retryAfter formats d as whole seconds, at least 1.
func retryAfter(d time.Duration) string {
	s := int64(math.Ceil(d.Seconds()))
	if s < 1 {
		s = 1
	}
	return strconv.FormatInt(s, 10)
}
