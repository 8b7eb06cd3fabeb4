package tenant

import (
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// quotaSet holds the quota state of every tenant seen.
type quotaSet struct {
	now func() time.Time
	m   sync.Map // id -> *quotaState
}

// quotaState is one tenant's counters.
type quotaState struct {
	now      func() time.Time
	inFlight atomic.Int64 // requests being served (Config.MaxInFlight)

	mu     sync.Mutex
	limit  float64 // the rate lim was made for
	lim    *rate.Limiter
	day    int64 // UTC day number of events
	events int64
	// The events-per-second bucket: tokens (negative: overdrawn) as of
	// evAt, for the rate evRate.
	evRate   float64
	evTokens float64
	evAt     time.Time
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
// events-per-second quota rate (> 0): the bucket is not overdrawn; when
// it is, it returns how long until it is not.
func (q *quotaState) eventsAllowed(rate float64) (time.Duration, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.refillLocked(rate)
	if q.evTokens >= 0 {
		return 0, true
	}
	return time.Duration(-q.evTokens / rate * float64(time.Second)), false
}

// chargeEvents takes n accepted events from the events-per-second
// bucket of rate (> 0), which may overdraw it.
func (q *quotaState) chargeEvents(n int64, rate float64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.refillLocked(rate)
	q.evTokens -= float64(n)
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

// eventsOf returns id's events today (0 when unknown).
func (s *quotaSet) eventsOf(id string) int64 {
	v, ok := s.m.Load(id)
	if !ok {
		return 0
	}
	return v.(*quotaState).eventsToday()
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
	if d := dayOf(q.now()); d != q.day {
		q.day, q.events = d, 0
	}
	q.events += n
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
