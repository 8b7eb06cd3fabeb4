package offline

import (
	"fmt"
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

// pairSet accumulates the decayed weights of (user, item) pairs with the
// engine's rules — learning weights (signals.Weights), decay with a
// half-life back from each user's latest event (model.HistoryAggregator)
// — for several half-lives at once, so that a hyperparameter search can
// try them without reading the archive again. Its memory is proportional
// to the distinct pairs (8 bytes per half-life and pair, plus the index),
// not to the events.
//
// A pair's sum for half-life h is kept relative to the pair's latest
// event, so that no exponent can overflow: s = Σ w·2^(−(maxT − t)/h); its
// weight as of a reference time (the user's latest event) is
// s·2^(−(ref − maxT)/h).
type pairSet struct {
	halfLives []float64 // nanoseconds; 0: no decay
	pos       map[uint64]int32
	keys      []uint64
	maxT      []int64 // unix nanoseconds
	sums      []float64
	latest    []int64 // per user: latest event (valid where seen)
	seen      []bool
}

func newPairSet(halfLives []time.Duration) *pairSet {
	a := &pairSet{pos: map[uint64]int32{}}
	for _, h := range halfLives {
		a.halfLives = append(a.halfLives, float64(h))
	}
	return a
}

func pairKey(u, i int32) uint64 { return uint64(uint32(u))<<32 | uint64(uint32(i)) }

// len returns the number of distinct pairs.
func (a *pairSet) len() int { return len(a.keys) }

// user and item return pair j's user and item.
func (a *pairSet) user(j int) int32 { return int32(a.keys[j] >> 32) }
func (a *pairSet) item(j int) int32 { return int32(uint32(a.keys[j])) }

// add records an event of weight w at time t (unix nanoseconds).
func (a *pairSet) add(u, i int32, w float64, t int64) {
	k := pairKey(u, i)
	nh := len(a.halfLives)
	j, ok := a.pos[k]
	if !ok {
		j = int32(len(a.keys))
		a.pos[k] = j
		a.keys = append(a.keys, k)
		a.maxT = append(a.maxT, t)
		for range nh {
			a.sums = append(a.sums, w)
		}
	} else {
		sums := a.sums[int(j)*nh : int(j+1)*nh]
		old := a.maxT[j]
		for h, hl := range a.halfLives {
			switch {
			case hl <= 0:
				sums[h] += w
			case t > old:
				sums[h] = sums[h]*math.Exp2(-float64(t-old)/hl) + w
			default:
				sums[h] += w * math.Exp2(-float64(old-t)/hl)
			}
		}
		a.maxT[j] = max(old, t)
	}
	for int(u) >= len(a.latest) {
		a.latest, a.seen = append(a.latest, 0), append(a.seen, false)
	}
	if !a.seen[u] || t > a.latest[u] {
		a.latest[u], a.seen[u] = t, true
	}
}

// weightAt returns pair j's weight for half-life index h decayed to ref.
func (a *pairSet) weightAt(j, h int, ref int64) float64 {
	s := a.sums[j*len(a.halfLives)+h]
	hl := a.halfLives[h]
	if hl <= 0 || ref <= a.maxT[j] {
		return s
	}
	return s * math.Exp2(-float64(ref-a.maxT[j])/hl)
}

// halfLife returns the index of half-life hl (-1: not kept).
func (a *pairSet) halfLife(hl time.Duration) int {
	for h, v := range a.halfLives {
		if v == float64(hl) {
			return h
		}
	}
	return -1
}

// view is a subset of a pairSet's pairs (those not held out) with each
// user's latest event among them, the reference of the decay.
type view struct {
	set    *pairSet
	held   []bool // per pair: not in the view (nil: none)
	latest []int64
}

// all returns the view of every pair.
func (a *pairSet) all() view {
	return view{set: a, latest: a.latest}
}

// without returns the view without the pairs where held is true.
func (a *pairSet) without(held []bool) view {
	v := view{set: a, held: held, latest: make([]int64, len(a.latest))}
	seen := make([]bool, len(a.latest))
	for j := range a.keys {
		if held[j] {
			continue
		}
		u := a.user(j)
		if !seen[u] || a.maxT[j] > v.latest[u] {
			v.latest[u], seen[u] = a.maxT[j], true
		}
	}
	return v
}

func (v view) in(j int) bool { return v.held == nil || !v.held[j] }

// triples returns the model's weighted interactions for half-life index h.
func (v view) triples(h int) []model.Interaction {
	out := make([]model.Interaction, 0, v.set.len())
	for j := range v.set.keys {
		if v.in(j) {
			u := v.set.user(j)
			out = append(out, model.Interaction{User: u, Item: v.set.item(j), Weight: float32(v.set.weightAt(j, h, v.latest[u]))})
		}
	}
	return out
}

// matrix builds the users × items matrix for half-life hl (which must be
// kept).
func (v view) matrix(users, items int, hl time.Duration) (*model.Matrix, error) {
	h := v.set.halfLife(hl)
	if h < 0 {
		return nil, fmt.Errorf("offline: half-life %s was not aggregated", hl)
	}
	return model.NewMatrix(users, items, v.triples(h))
}

// histories returns, for the users in want, their pairs as fold-in
// histories (half-life hl, decayed to the user's latest event in v).
func (v view) histories(want map[int32][]int32, hl time.Duration) map[int32][]model.ItemWeight {
	h := max(v.set.halfLife(hl), 0)
	out := map[int32][]model.ItemWeight{}
	for j := range v.set.keys {
		u := v.set.user(j)
		if _, ok := want[u]; ok && v.in(j) {
			out[u] = append(out[u], model.ItemWeight{Item: v.set.item(j), Weight: float32(v.set.weightAt(j, h, v.latest[u]))})
		}
	}
	return out
}

// userItems returns, per user, the set of items with a pair in v.
func (v view) userItems() map[int32]map[int32]struct{} {
	out := map[int32]map[int32]struct{}{}
	for j := range v.set.keys {
		if !v.in(j) {
			continue
		}
		u := v.set.user(j)
		if out[u] == nil {
			out[u] = map[int32]struct{}{}
		}
		out[u][v.set.item(j)] = struct{}{}
	}
	return out
}

// learningWeight is the event's weight for the model (0: not learnt).
func learningWeight(w signals.Weights, e *signals.Event) float64 {
	if e.Item == "" {
		return 0
	}
	return w.Of(e)
}
