package model

import (
	"fmt"
	"time"
)

// Learner turns a user's events into model updates the way the engine does
// for every consumed event: aggregate the user's history with decay, fold
// the user in exactly, and queue the touched items' updates for the next
// Flush (one Apply per batch of events). The prequential evaluation drives
// the very same code. A Learner is not safe for concurrent use; the Online
// model it updates is.
type Learner struct {
	o    *Online
	ws   *Workspace
	agg  HistoryAggregator
	hist []ItemWeight
	ups  []Update
	// users holds the factor vectors referenced by queued updates.
	users [][]float32
	seen  map[int32]struct{}
}

// NewLearner returns a learner updating o.
func (o *Online) NewLearner() *Learner {
	return &Learner{o: o, ws: NewWorkspace(o.p.Factors), seen: map[int32]struct{}{}}
}

// Observe learns from fresh events of one user. history is the user's
// earlier events (already learnt), fresh the new ones; both in any order.
// old is the user's current factors (nil if the model does not know the
// user yet). The user's new factors are written to dst (length K), and the
// item updates are queued until Flush.
func (l *Learner) Observe(dst, old []float32, history, fresh []Event) error {
	k := l.o.p.Factors
	if len(dst) != k {
		return fmt.Errorf("model: Observe: dst has length %d, want %d", len(dst), k)
	}
	maxItem := int32(-1)
	clear(l.seen)
	for _, e := range history {
		l.seen[e.Item] = struct{}{}
		maxItem = max(maxItem, e.Item)
	}
	for _, e := range fresh {
		maxItem = max(maxItem, e.Item)
	}
	if int(maxItem) >= l.o.Len() {
		l.o.Grow(int(maxItem) + 1)
	}
	all := make([]Event, 0, len(history)+len(fresh))
	all = append(append(all, history...), fresh...)
	if err := l.fold(dst, all); err != nil {
		return err
	}
	up := Update{User: l.keep(dst)}
	if old != nil {
		up.OldUser = l.keep(old)
	}
	latest := latestTime(all)
	for _, e := range fresh {
		_, known := l.seen[e.Item]
		w := float32(Decay(float64(e.Weight), latest.Sub(e.Time), l.o.p.HalfLife))
		up.Items = append(up.Items, ItemDelta{Item: e.Item, DeltaWeight: w, New: !known})
		l.seen[e.Item] = struct{}{}
	}
	l.ups = append(l.ups, up)
	return nil
}

// Refold folds a user in again from all its events (history and fresh
// together, any order) against the items as they are now, without queuing
// item updates: after Flush, for a user whose fold-in met items that had
// only their random start. The new factors are written to dst (length K).
func (l *Learner) Refold(dst []float32, events []Event) error {
	if len(dst) != l.o.p.Factors {
		return fmt.Errorf("model: Refold: dst has length %d, want %d", len(dst), l.o.p.Factors)
	}
	return l.fold(dst, events)
}

// fold aggregates a user's events with decay and folds the user in.
func (l *Learner) fold(dst []float32, events []Event) error {
	l.hist = l.agg.Aggregate(l.hist, events, l.o.p.HalfLife)
	return l.o.FoldUser(l.ws, dst, l.hist)
}

func (l *Learner) keep(v []float32) []float32 {
	c := append([]float32(nil), v...)
	l.users = append(l.users, c)
	return c
}

func latestTime(es []Event) time.Time {
	var t time.Time
	for _, e := range es {
		if e.Time.After(t) {
			t = e.Time
		}
	}
	return t
}

// Pending returns the number of queued user updates.
func (l *Learner) Pending() int { return len(l.ups) }

// Flush applies the queued item updates to the model.
func (l *Learner) Flush() error {
	if len(l.ups) == 0 {
		return nil
	}
	err := l.o.Apply(l.ws, l.ups)
	l.ups = l.ups[:0]
	l.users = l.users[:0]
	return err
}

// Reset drops the queued updates (when the batch they belong to could not
// be committed and will be redelivered).
func (l *Learner) Reset() {
	l.ups = l.ups[:0]
	l.users = l.users[:0]
}
