package experiments

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/kairoshq/kairos/eval/abtest"
	"github.com/kairoshq/kairos/signals"
)

// Rebuilt are an experiment's counts and units recomputed from events.
type Rebuilt struct {
	// Counts per variant (normalised: see Counts.Normalize).
	Counts map[string]Counts
	// Units are the units by subject key (aliases left out).
	Units map[string]Unit
	// Events is the number of events read; Duplicates those skipped as
	// already seen (the archive is at-least-once).
	Events, Duplicates int
}

// Rebuild recomputes x's counts from events in archive (consumption)
// order: scan calls fn for each event. It applies the same ledger as
// React, in memory, so that the result equals the live counts when the
// events are those the engine consumed (see the package documentation,
// "Rebuilding from the archive", for when they differ). Events are
// de-duplicated by id; a user is known for an anonymous event from the
// links made by earlier events (as the engine's link store knows it).
func Rebuild(ctx context.Context, x *Experiment, signer *Signer, scan func(fn func(signals.Event) error) error) (*Rebuilt, error) {
	l := newLedger(signer)
	links := map[string]string{}
	seen := map[string]struct{}{}
	r := &Rebuilt{}
	err := scan(func(ev signals.Event) error {
		r.Events++
		if r.Events%65536 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if !relevant(&ev) {
			return nil
		}
		if _, dup := seen[ev.ID]; dup {
			r.Duplicates++
			return nil
		}
		seen[ev.ID] = struct{}{}
		if isLink(&ev) {
			links[ev.Visitor] = ev.User
		}
		person := ev.User
		if person == "" {
			person = links[ev.Visitor]
		}
		l.apply(x, item{ev: &ev, person: person})
		return nil
	})
	if err != nil {
		return nil, err
	}
	r.Counts = map[string]Counts{}
	for _, d := range l.update().Counts {
		c := r.Counts[d.Variant]
		c.Add(d.Counts)
		c.Normalize()
		r.Counts[d.Variant] = c
	}
	r.Units = map[string]Unit{}
	for k, s := range l.units {
		if s.cur.Variant != "" {
			r.Units[k.Key] = s.cur
		}
	}
	return r, nil
}

// LoggedDecision is one served decision — a unit's first exposure — with
// its outcome, for off-policy evaluation: the line `kairos eval
// offpolicy` reads, plus the variant and the exposure time.
type LoggedDecision struct {
	abtest.Decision
	Variant string    `json:"variant"`
	Exposed time.Time `json:"exposed"`
}

// Decisions returns one logged decision per unit, in exposure order:
// Propensity is the probability with which the unit's variant was
// chosen, Reward the unit's x on metric m (revenue in the currency
// unit), and Target the probability target[i] that the policy being
// evaluated picks the unit's variant i (e.g. 1 for "always B" on B's
// units, 0 on the others).
func (r *Rebuilt) Decisions(x *Experiment, m Metric, target []float64) []LoggedDecision {
	type kv struct {
		key string
		u   Unit
	}
	units := make([]kv, 0, len(r.Units))
	for k, u := range r.Units {
		units = append(units, kv{k, u})
	}
	slices.SortFunc(units, func(a, b kv) int {
		return cmp.Or(a.u.Exposed.Compare(b.u.Exposed), strings.Compare(a.key, b.key))
	})
	out := make([]LoggedDecision, 0, len(units))
	for _, e := range units {
		i := x.VariantIndex(e.u.Variant)
		if i < 0 {
			continue
		}
		out = append(out, LoggedDecision{
			Decision: abtest.Decision{Propensity: e.u.Propensity, Reward: e.u.reward(m), Target: target[i]},
			Variant:  e.u.Variant, Exposed: e.u.Exposed,
		})
	}
	return out
}
