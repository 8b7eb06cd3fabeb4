package experiments

import (
	"math"
	"slices"
	"strings"
	"time"

	"github.com/kairoshq/kairos/signals"
)

// The ledger applies events to the units and counts of experiments. It is
// the one implementation of the accounting rules (package documentation,
// "Units, exposure and attribution"): the live reactor runs it on each
// committed batch over the units it loaded from the store, and Rebuild
// runs it over the whole archive in memory, so the two agree exactly.

// slot is a unit record as loaded (orig) and as changed by the batch
// (cur).
type slot struct {
	orig, cur Unit
}

type countKey struct{ exp, variant string }

type ledger struct {
	signer *Signer
	units  map[UnitKey]*slot
	deltas map[countKey]*Counts
	order  []countKey // deltas in first-touch order (deterministic writes)
	// counters of what the batch did, for metrics
	exposures, outcomes, aliases, rejected int
}

func newLedger(s *Signer) *ledger {
	return &ledger{signer: s, units: map[UnitKey]*slot{}, deltas: map[countKey]*Counts{}}
}

// item is an event to apply with the user it is known to be ("" when
// anonymous).
type item struct {
	ev     *signals.Event
	person string
}

// kind classifies an event for the ledger.
type kind uint8

const (
	kindNone kind = iota
	kindExposure
	kindOutcome
)

func classify(ev *signals.Event) kind {
	switch ev.Type {
	case signals.TypeImpression:
		if ev.Props[PropExperiment] != "" {
			return kindExposure
		}
	case signals.TypeClick, signals.TypeAddToCart, signals.TypeConversion:
		return kindOutcome
	}
	return kindNone
}

// isLink reports whether ev ties an anonymous visitor to a user (the
// engine's rule for identity links).
func isLink(ev *signals.Event) bool {
	return ev.User != "" && ev.Visitor != ev.User && !strings.HasPrefix(ev.Visitor, engineUserPrefix)
}

// relevant reports whether the ledger may do anything with ev.
func relevant(ev *signals.Event) bool { return classify(ev) != kindNone || isLink(ev) }

// inRange reports whether event time t (ms) can matter to x: outcomes
// and links count only in [start, stop + window) (no unit exists before
// start, and none's window lasts beyond stop + window).
func inRange(x *Experiment, ms int64) bool {
	if ms < effectiveStart(x).UnixMilli() {
		return false
	}
	return x.Stop == nil || ms < x.Stop.Add(x.window()).UnixMilli()
}

// keys appends the unit keys the ledger reads to apply it to x (alias
// targets excepted: see aliasTargets).
func keys(dst []UnitKey, x *Experiment, it item) []UnitKey {
	ev := it.ev
	ms := ev.Time.UnixMilli()
	switch classify(ev) {
	case kindExposure:
		if ev.Props[PropExperiment] == x.ID {
			dst = append(dst, UnitKey{x.ID, unitOfExposure(ev)})
		}
	case kindOutcome:
		if inRange(x, ms) {
			if it.person != "" {
				dst = append(dst, UnitKey{x.ID, UserKey(it.person)})
			}
			dst = append(dst, UnitKey{x.ID, AnonKey(ev.Visitor)})
		}
	}
	if isLink(ev) && inRange(x, ms) {
		dst = append(dst, UnitKey{x.ID, AnonKey(ev.Visitor)}, UnitKey{x.ID, UserKey(ev.User)})
	}
	return dst
}

// load records the stored state of keys (zero Units: none).
func (l *ledger) load(keys []UnitKey, units []Unit) {
	for i, k := range keys {
		if _, ok := l.units[k]; !ok {
			l.units[k] = &slot{orig: units[i], cur: units[i]}
		}
	}
}

// aliasTargets returns the keys that loaded aliases point to and that
// are not loaded yet.
func (l *ledger) aliasTargets() []UnitKey {
	var out []UnitKey
	for k, s := range l.units {
		if a := s.cur.Alias; a != "" {
			t := UnitKey{k.Exp, a}
			if _, ok := l.units[t]; !ok && !slices.Contains(out, t) {
				out = append(out, t)
			}
		}
	}
	return out
}

func (l *ledger) get(k UnitKey) Unit {
	if s := l.units[k]; s != nil {
		return s.cur
	}
	return Unit{}
}

func (l *ledger) set(k UnitKey, u Unit) {
	if s := l.units[k]; s != nil {
		s.cur = u
		return
	}
	l.units[k] = &slot{cur: u}
}

func (l *ledger) delta(exp, variant string) *Counts {
	k := countKey{exp, variant}
	c := l.deltas[k]
	if c == nil {
		c = &Counts{}
		l.deltas[k] = c
		l.order = append(l.order, k)
	}
	return c
}

// resolve returns the unit a key stands for (following an alias) and its
// key.
func (l *ledger) resolve(k UnitKey) (UnitKey, Unit) {
	u := l.get(k)
	if u.Alias != "" {
		k = UnitKey{k.Exp, u.Alias}
		u = l.get(k)
		if u.Alias != "" {
			return k, Unit{} // aliases are one level deep
		}
	}
	return k, u
}

// apply applies one event to experiment x.
func (l *ledger) apply(x *Experiment, it item) {
	ev := it.ev
	switch classify(ev) {
	case kindExposure:
		if ev.Props[PropExperiment] == x.ID {
			l.expose(x, ev)
		}
	case kindOutcome:
		if inRange(x, ev.Time.UnixMilli()) {
			l.outcome(x, it)
		}
	}
	if isLink(ev) && inRange(x, ev.Time.UnixMilli()) {
		l.link(x, ev)
	}
}

// expose makes the event's subject a unit of x unless it is one already
// (or an alias of one).
func (l *ledger) expose(x *Experiment, ev *signals.Event) {
	p, ok := l.signer.parseExposure(x, ev)
	if !ok {
		l.rejected++
		return
	}
	k := UnitKey{x.ID, p.unit}
	if l.get(k).Exists() {
		return
	}
	l.set(k, Unit{Variant: p.variant, Exposed: p.at, Propensity: p.propensity})
	l.delta(x.ID, p.variant).N++
	for i, w := range p.weights {
		l.delta(x.ID, x.Variants[i].Name).Expected += int64(math.Round(w * 1e6))
	}
	l.exposures++
}

// link makes the user key an alias of the anonymous visitor's unit, when
// the visitor is a unit and the user has no unit yet.
func (l *ledger) link(x *Experiment, ev *signals.Event) {
	anon := UnitKey{x.ID, AnonKey(ev.Visitor)}
	user := UnitKey{x.ID, UserKey(ev.User)}
	if a := l.get(anon); a.Variant == "" || l.get(user).Exists() {
		return
	}
	l.set(user, Unit{Alias: anon.Key})
	l.aliases++
}

// outcome attributes a click, add-to-cart or conversion to the person's
// first exposure, when the event's time is in its attribution window.
func (l *ledger) outcome(x *Experiment, it item) {
	ev := it.ev
	var cands [2]UnitKey
	n := 0
	if it.person != "" {
		cands[n] = UnitKey{x.ID, UserKey(it.person)}
		n++
	}
	cands[n] = UnitKey{x.ID, AnonKey(ev.Visitor)}
	n++
	var best UnitKey
	var bu Unit
	for _, k := range cands[:n] {
		rk, u := l.resolve(k)
		if u.Variant == "" {
			continue
		}
		if bu.Variant == "" || u.Exposed.Before(bu.Exposed) {
			best, bu = rk, u
		}
	}
	if bu.Variant == "" {
		return
	}
	t0 := bu.Exposed.UnixMilli()
	ms := ev.Time.UnixMilli()
	if ms < t0 || ms >= t0+time.Duration(x.AttributionWindow).Milliseconds() {
		return
	}
	d := Counts{}
	switch ev.Type {
	case signals.TypeClick:
		if bu.Clicked || !clickCounts(x, ev) {
			return
		}
		bu.Clicked, d.Clicks = true, 1
	case signals.TypeAddToCart:
		if bu.Carted {
			return
		}
		bu.Carted, d.Carts = true, 1
	case signals.TypeConversion:
		c := cents(ev.Value)
		if bu.Converted && c == 0 {
			return
		}
		if !bu.Converted {
			bu.Converted, d.Conversions = true, 1
		}
		if c > 0 && bu.Revenue <= math.MaxInt64-c {
			d.Revenue = c
			d.RevenueSq = sqLimbs(bu.Revenue, bu.Revenue+c)
			bu.Revenue += c
		}
	}
	l.set(best, bu)
	l.delta(x.ID, bu.Variant).Add(d)
	l.outcomes++
}

// clickCounts reports whether a click is a click-through of what x's
// surface shows: an offer (offer id or token) for offers and promotions,
// an item for recommendations.
func clickCounts(x *Experiment, ev *signals.Event) bool {
	if x.Target.Surface == SurfaceRecommendations {
		return ev.Item != ""
	}
	return ev.Offer != "" || ev.Token != ""
}

// update returns the batch's changes: every unit record that differs
// from what was loaded, and the count deltas.
func (l *ledger) update() Update {
	var u Update
	for k, s := range l.units {
		if !s.cur.Equal(s.orig) {
			u.Units = append(u.Units, UnitWrite{UnitKey: k, Old: s.orig, New: s.cur})
		}
	}
	slices.SortFunc(u.Units, func(a, b UnitWrite) int {
		if c := strings.Compare(a.Exp, b.Exp); c != 0 {
			return c
		}
		return strings.Compare(a.Key, b.Key)
	})
	for _, k := range l.order {
		if c := l.deltas[k]; !c.IsZero() {
			u.Counts = append(u.Counts, CountDelta{Exp: k.exp, Variant: k.variant, Counts: *c})
		}
	}
	return u
}
