package model

import (
	"math"
	"time"
)

// Decay returns the weight w of an interaction of the given age after
// exponential time decay with the given half-life: w·2^(−age/halfLife).
// A non-positive half-life means no decay; a negative age (an event from
// the future, e.g. clock skew) counts as age 0.
//
// Batch training decays every interaction to the training cut-off, the
// fold-in to the time of the update, so both see the same weights for the
// same history at the same reference time.
func Decay(w float64, age, halfLife time.Duration) float64 {
	if halfLife <= 0 || age <= 0 {
		return w
	}
	return w * math.Exp2(-float64(age)/float64(halfLife))
}

// Event is one timed signal of a user's history, as the engine stores it:
// the item row, the signal weight and when it happened.
type Event struct {
	Item   int32
	Weight float32
	Time   time.Time
}

// HistoryAggregator turns raw event histories into decayed per-item weights
// without allocating once warmed up. It is not safe for concurrent use.
type HistoryAggregator struct {
	pos map[int32]int32
}

// Aggregate sums a user's events per item into dst, each weight decayed by
// its age relative to the user's latest event:
//
//	w_i = Σ_{events e on i} weight_e · 2^(−(t_latest − t_e)/halfLife)
//
// Measuring age from the user's own latest activity (not from the wall
// clock) makes the user's last session weigh most whatever the gap since
// then, and makes the fold-in of a history give exactly the weights batch
// training gives the same history. Items appear in dst in the order of their
// first event. dst is reset and returned.
func (a *HistoryAggregator) Aggregate(dst []ItemWeight, events []Event, halfLife time.Duration) []ItemWeight {
	dst = dst[:0]
	var latest time.Time
	for _, e := range events {
		if e.Time.After(latest) {
			latest = e.Time
		}
	}
	if a.pos == nil {
		a.pos = make(map[int32]int32)
	}
	clear(a.pos)
	for _, e := range events {
		w := float32(Decay(float64(e.Weight), latest.Sub(e.Time), halfLife))
		if j, ok := a.pos[e.Item]; ok {
			dst[j].Weight += w
			continue
		}
		a.pos[e.Item] = int32(len(dst))
		dst = append(dst, ItemWeight{Item: e.Item, Weight: w})
	}
	return dst
}
