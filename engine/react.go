package engine

import (
	"context"
	"log/slog"

	"github.com/kairoshq/kairos/signals"
)

// Reactor reacts to every committed batch: promotion rules, experiment
// attribution, counters. React runs on the consuming goroutine after the
// store commit and before the acknowledgement, so it sees every event once
// per delivery (a redelivered event that was committed before is not
// fresh and not shown again). It must be fast (microseconds per event) and
// cannot fail the batch: it logs and counts its own errors.
type Reactor interface {
	React(ctx context.Context, changes []VisitorChange)
}

// Flusher is a Reactor that holds work back between batches (the
// coalesced counter writes of engine/stats): the engine calls Flush when
// it stops, after its last batch, and Flush returns once the work is
// done (or has failed: logged and counted, as in React).
type Flusher interface {
	Flush(ctx context.Context)
}

// flushReactors flushes the reactors that are Flushers.
func (e *Engine) flushReactors(ctx context.Context) {
	for _, r := range e.reactors {
		if f, ok := r.(Flusher); ok {
			f.Flush(ctx)
		}
	}
}

// VisitorChange is one visitor's part of a committed batch.
type VisitorChange struct {
	// Visitor is the visitor's state after the batch: History ends with the
	// fresh events (it may exceed the store's history limit by them),
	// Factors are the folded-in factors (nil when the visitor has none).
	Visitor Visitor
	// Fresh are the batch's new events of this visitor, in order.
	Fresh []signals.Event
}

// AddReactor registers r to see every committed batch from now on. Call it
// before Run (it is not synchronised with a running consumer).
func (e *Engine) AddReactor(r Reactor) {
	e.handleMu.Lock()
	defer e.handleMu.Unlock()
	e.reactors = append(e.reactors, r)
}

// react runs the registered reactors on a committed batch.
func (e *Engine) react(ctx context.Context, visitors []Visitor, updates []VisitorUpdate, groups map[string][]signals.Event) {
	if len(e.reactors) == 0 {
		return
	}
	changes := make([]VisitorChange, len(visitors))
	for i, v := range visitors {
		u := updates[i]
		after := Visitor{ID: v.ID, Session: u.Session}
		after.History = append(append(make([]HistoryEvent, 0, len(v.History)+len(u.Append)), v.History...), u.Append...)
		f := v.Factors
		if u.Factors != nil {
			f = u.Factors
		}
		if x, ok := unpackFactors(f, e.model().K(), e.gen.Load()); ok && !isZero(x) {
			after.Factors = x
		}
		changes[i] = VisitorChange{Visitor: after, Fresh: groups[v.ID]}
	}
	for _, r := range e.reactors {
		func() {
			defer func() {
				if p := recover(); p != nil {
					e.log.LogAttrs(ctx, slog.LevelError, "reactor panicked", slog.Any("panic", p))
				}
			}()
			r.React(ctx, changes)
		}()
	}
}

// CachedItem returns the catalog entry of id from the engine's cache.
func (e *Engine) CachedItem(id string) (Item, bool) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	it, ok := e.catalog[id]
	return it, ok
}

// Affinity returns the mean predicted preference x·y_i of factors x for the
// given items (those the model has factors for) and whether any had.
func (e *Engine) Affinity(x []float32, items []string) (float32, bool) {
	if len(x) != e.model().K() {
		return 0, false
	}
	var sum float64
	n := 0
	var y []float32
	for _, id := range items {
		e.mu.RLock()
		row, ok := e.rowOf[id]
		e.mu.RUnlock()
		if !ok {
			continue
		}
		y = e.model().ItemFactors(y, int(row))
		var s float64
		zero := true
		for f, v := range y {
			s += float64(v) * float64(x[f])
			zero = zero && v == 0
		}
		if zero {
			continue
		}
		sum += s
		n++
	}
	if n == 0 {
		return 0, false
	}
	return float32(sum / float64(n)), true
}
