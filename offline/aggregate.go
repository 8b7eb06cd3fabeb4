package offline

import (
	"math"
	"time"

	"github.com/kairoshq/kairos/model"
	"github.com/kairoshq/kairos/signals"
)

// index numbers string ids densely.
type index struct {
	pos map[string]int32
	ids []string
}

func newIndex() *index { return &index{pos: map[string]int32{}} }

func (x *index) add(id string) int32 {
	if i, ok := x.pos[id]; ok {
		return i
	}
	i := int32(len(x.ids))
	x.pos[id] = i
	x.ids = append(x.ids, id)
	return i
}

// pairAcc is the decayed weight of one (user, item) pair, kept relative to
// the pair's latest event so that no exponent can overflow:
// sum = Σ w·2^(−(maxT − t)/h). The final weight is sum·2^(−(userLatest − maxT)/h).
type pairAcc struct {
	sum  float64
	maxT int64 // unix nanoseconds
}

func (p pairAcc) add(w float64, t int64, halfLife float64) pairAcc {
	switch {
	case p.sum == 0 && p.maxT == 0:
		return pairAcc{sum: w, maxT: t}
	case halfLife <= 0:
		return pairAcc{sum: p.sum + w, maxT: max(p.maxT, t)}
	case t > p.maxT:
		return pairAcc{sum: p.sum*math.Exp2(-float64(t-p.maxT)/halfLife) + w, maxT: t}
	default:
		return pairAcc{sum: p.sum + w*math.Exp2(-float64(p.maxT-t)/halfLife), maxT: p.maxT}
	}
}

func (p pairAcc) merge(q pairAcc, halfLife float64) pairAcc {
	if q.sum == 0 && q.maxT == 0 {
		return p
	}
	return p.add(q.sum, q.maxT, halfLife)
}

// weightAt is the pair's weight decayed to the reference time ref.
func (p pairAcc) weightAt(ref int64, halfLife float64) float64 {
	if halfLife <= 0 || ref <= p.maxT {
		return p.sum
	}
	return p.sum * math.Exp2(-float64(ref-p.maxT)/halfLife)
}

// interactions accumulates the (user, item) weights of a stream of events
// with the engine's rules: learning weights (signals.Weights), decay with
// the half-life back from each user's latest event (model.HistoryAggregator).
// Its memory is proportional to the distinct pairs, not to the events.
type interactions struct {
	halfLife float64
	pairs    map[uint64]pairAcc
	latest   map[int32]int64
}

func newInteractions(halfLife time.Duration) *interactions {
	return &interactions{halfLife: float64(halfLife), pairs: map[uint64]pairAcc{}, latest: map[int32]int64{}}
}

func pairKey(u, i int32) uint64 { return uint64(uint32(u))<<32 | uint64(uint32(i)) }

func (a *interactions) add(u, i int32, w float64, t int64) {
	k := pairKey(u, i)
	a.pairs[k] = a.pairs[k].add(w, t, a.halfLife)
	if l, ok := a.latest[u]; !ok || t > l {
		a.latest[u] = t
	}
}

// mergeFrom adds b's pairs to a.
func (a *interactions) mergeFrom(b *interactions) {
	for k, p := range b.pairs {
		a.pairs[k] = a.pairs[k].merge(p, a.halfLife)
	}
	for u, t := range b.latest {
		if l, ok := a.latest[u]; !ok || t > l {
			a.latest[u] = t
		}
	}
}

// triples returns the model's weighted interactions.
func (a *interactions) triples() []model.Interaction {
	out := make([]model.Interaction, 0, len(a.pairs))
	for k, p := range a.pairs {
		u, i := int32(k>>32), int32(uint32(k))
		out = append(out, model.Interaction{User: u, Item: i, Weight: float32(p.weightAt(a.latest[u], a.halfLife))})
	}
	return out
}

// userItems returns, per user, the set of items with a pair.
func (a *interactions) userItems() map[int32]map[int32]struct{} {
	out := map[int32]map[int32]struct{}{}
	for k := range a.pairs {
		u, i := int32(k>>32), int32(uint32(k))
		if out[u] == nil {
			out[u] = map[int32]struct{}{}
		}
		out[u][i] = struct{}{}
	}
	return out
}

// recentIDs de-duplicates event ids over a sliding window of the last n
// distinct ids: enough for the archive's duplicates, which come from a
// batch redelivered right after a failure.
type recentIDs struct {
	set  map[string]struct{}
	ring []string
	next int
}

func newRecentIDs(n int) *recentIDs {
	return &recentIDs{set: make(map[string]struct{}, n), ring: make([]string, n)}
}

// seen reports whether id is in the window, adding it if not.
func (r *recentIDs) seen(id string) bool {
	if _, ok := r.set[id]; ok {
		return true
	}
	if old := r.ring[r.next]; old != "" {
		delete(r.set, old)
	}
	r.ring[r.next] = id
	r.next = (r.next + 1) % len(r.ring)
	r.set[id] = struct{}{}
	return false
}

// learningWeight is the event's weight for the model (0: not learnt).
func learningWeight(w signals.Weights, e *signals.Event) float64 {
	if e.Item == "" {
		return 0
	}
	return w.Of(e)
}
