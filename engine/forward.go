package engine

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/kairoshq/kairos/signals"
)

// One writer per state
//
// On a keyed bus (signals/rabbitmq with partitions) each partition has
// one consumer, and the engine writes a visitor state only from the
// partition of that state's key: the visitor id for an anonymous visitor,
// UserKey(user) once it is linked. The publisher routes by the resolved
// identity (Router), so nearly every event arrives where it belongs. The
// exceptions are events published while the publisher did not yet know
// of a new link (a device's events just before and after its identify):
// they arrive on the device's partition, resolve to the user there, and
// are forwarded to the user's partition (signals.Forwarder) instead of
// being applied — so a user's state and the merge of its devices'
// anonymous states have one writer, and nothing is applied twice or
// lost between two replicas.
//
// Two rules close the remaining races:
//   - the replica applying an identify records the link before it reads
//     the anonymous state it merges, and a store refuses to commit to an
//     anonymous state that is linked (VisitorStore.Commit: a conflict).
//     A device's consumer that resolved the device before the link was
//     made thus fails its batch, and on redelivery forwards the events;
//     the anonymous state is never written after it was read for a merge.
//   - a forwarded event is older than the user's events that arrived
//     directly meanwhile: it is inserted into the user's history in time
//     order (the commit replaces the history: VisitorUpdate.Replace), so
//     each device's events stay in the order they happened.

// routeOf maps each event id of the batch to the route it arrived by
// (the first occurrence's), or is nil when the bus gave no routes.
func routeOf(ctx context.Context, batch []signals.Event) map[string]signals.Route {
	routes := signals.RoutesOf(ctx)
	if len(routes) != len(batch) {
		return nil
	}
	out := make(map[string]signals.Route, len(batch))
	for i := range batch {
		if _, ok := out[batch[i].ID]; !ok {
			out[batch[i].ID] = routes[i]
		}
	}
	return out
}

// forwardForeign starts forwarding the fresh events whose state key is
// not the key they were routed by, or that arrived on a partition other
// than their key's (Route.Foreign; see "One writer per state"), to the
// partition of their state, and returns the others with their keys and
// users, and a function that waits until the forwards are confirmed (and
// returns their error). Without routes, or without a bus that forwards,
// every event stays here.
func (e *Engine) forwardForeign(ctx context.Context, routes map[string]signals.Route, fresh []signals.Event, keys, users []string) ([]signals.Event, []string, []string, func() error) {
	none := func() error { return nil }
	if routes == nil || e.forwarder == nil {
		return fresh, keys, users, none
	}
	var (
		out    map[string][]signals.Event // state key → events to forward, in order
		order  []string
		keepEv = fresh[:0:0]
		keepK  []string
		keepU  []string
	)
	for i, ev := range fresh {
		r, ok := routes[ev.ID]
		if !ok || (r.Key == keys[i] && !r.Foreign) {
			keepEv, keepK, keepU = append(keepEv, ev), append(keepK, keys[i]), append(keepU, users[i])
			continue
		}
		if out == nil {
			out = map[string][]signals.Event{}
		}
		if _, seen := out[keys[i]]; !seen {
			order = append(order, keys[i])
		}
		out[keys[i]] = append(out[keys[i]], ev)
	}
	if out == nil {
		return fresh, keys, users, none
	}
	done := make(chan error, 1)
	go func() {
		// One publish per state, all at once: each waits for its
		// confirms, and a state's events keep their order in it.
		start := time.Now()
		errs := make([]error, len(order))
		var wg sync.WaitGroup
		for j, k := range order {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := e.forwarder.Forward(ctx, k, out[k]); err != nil {
					errs[j] = fmt.Errorf("engine: forward %d events to the partition of their state: %w", len(out[k]), err)
				}
			}()
		}
		wg.Wait()
		n := 0
		for j, k := range order {
			if errs[j] != nil {
				done <- errs[j]
				return
			}
			n += len(out[k])
		}
		e.met.stage.WithLabelValues("forward").Observe(time.Since(start).Seconds())
		e.met.forwarded.Add(float64(n))
		e.log.LogAttrs(ctx, slog.LevelDebug, "events forwarded to their state's partition", slog.Int("events", n), slog.Int("states", len(order)))
		done <- nil
	}()
	var (
		once sync.Once
		err  error
	)
	return keepEv, keepK, keepU, func() error {
		once.Do(func() { err = <-done })
		return err
	}
}

// forwardedIDs returns the ids of the fresh events that were forwarded
// here (nil when none).
func forwardedIDs(routes map[string]signals.Route, fresh []signals.Event) map[string]bool {
	var out map[string]bool
	for _, ev := range fresh {
		if routes[ev.ID].Forwarded {
			if out == nil {
				out = map[string]bool{}
			}
			out[ev.ID] = true
		}
	}
	return out
}

// placeForwarded puts each forwarded event of add into its device's
// order: it returns the whole new history (history, then add, each
// forwarded event of add moved to just before the first earlier-placed
// event of the same device (HistoryEvent.Device) that happened after
// it) and true, or nil and false when add can simply be appended. A
// user's history is not in time order as a whole (a merged anonymous
// history is appended after the user's own events), but each device's
// events are, and stay so.
func placeForwarded(history, add []HistoryEvent, forwarded map[string]bool) ([]HistoryEvent, bool) {
	if len(forwarded) == 0 {
		return nil, false
	}
	all := append(slices.Clone(history), add...)
	moved := false
	for i := len(history); i < len(all); i++ {
		f := all[i]
		if !forwarded[f.ID] {
			continue
		}
		j := slices.IndexFunc(all[:i], func(h HistoryEvent) bool { return h.Device == f.Device && h.Time.After(f.Time) })
		if j < 0 {
			continue
		}
		copy(all[j+1:i+1], all[j:i])
		all[j] = f
		moved = true
	}
	if !moved {
		return nil, false
	}
	return all, true
}
