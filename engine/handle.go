package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/kairoshq/kairos/model"
	"github.com/kairoshq/kairos/signals"
)

// learnState is the scratch of the consuming goroutine.
type learnState struct {
	learner *model.Learner
	hist    []model.Event
	fresh   []model.Event
	// dirty accumulates this replica's own item changes since the last
	// persistence/broadcast: row → delta.
	dirty map[int32]*model.ItemRowState
	// before holds touched rows' state before a Flush, to compute deltas.
	before map[int32]model.ItemRowState
	// started holds the rows that got their random start in this batch;
	// refold, the visitors folded in against one of those starts.
	started map[int32]struct{}
	refold  []refold
}

// refold is a visitor of the batch to fold in again once the batch's item
// updates are applied: its fold-in met an item that had only its random
// start (see refoldStarted).
type refold struct {
	index  int // in the commit's Visitors
	events []model.Event
}

func newLearnState(o *model.Online, k int) *learnState {
	return &learnState{
		learner: o.NewLearner(),
		dirty:   map[int32]*model.ItemRowState{},
		before:  map[int32]model.ItemRowState{},
		started: map[int32]struct{}{},
	}
}

// Handle processes one consumed batch (it is the signals.BatchHandler of
// the engine). For the batch it
//
//  1. drops events whose id it has seen (in the batch or committed before);
//  2. appends the fresh events to the archive (when one is set) and
//     assigns item rows to new items;
//  3. per visitor, in event order: extends the session window, appends the
//     events to the history, and — when learning events arrived — folds the
//     visitor in exactly from the decayed history;
//  4. commits histories, factors, sessions and the event ids in one atomic
//     store transaction;
//  5. only then applies the item updates to the live model and updates the
//     trending counters.
//
// Returning nil acknowledges the batch. An error before the commit leaves
// the store untouched, so the redelivered batch is applied exactly once;
// after the commit, redelivered events are recognised as seen.
//
// When the store refuses the commit to an anonymous visitor that another
// replica linked meanwhile (ErrConflict; see "One writer per state",
// forward.go), the batch is handled again at once: what was committed is
// seen, and the linked visitor's events are forwarded.
func (e *Engine) Handle(ctx context.Context, batch []signals.Event) error {
	clock := newStageClock(e.met.stage)
	e.handleMu.Lock()
	defer e.handleMu.Unlock()
	clock.lap("wait")
	e.met.consumed.Add(float64(len(batch)))
	err := e.handle(ctx, batch, &clock)
	if errors.Is(err, ErrConflict) {
		e.log.LogAttrs(ctx, slog.LevelDebug, "batch handled again: a visitor was linked meanwhile", slog.Any("err", err))
		err = e.handle(ctx, batch, &clock)
	}
	return err
}

// handle is Handle with handleMu held. The states of the batch's keys
// are read while the seen marks are looked up (two reads in parallel,
// not one after the other), and the events to forward are published
// while the others are applied: handle returns once both are done, so
// the batch is acknowledged only when its forwarded events are confirmed
// too (a failed forward redelivers the batch, whose applied events are
// then seen).
//
// On a keyed bus the state key of an event is nearly always the key it
// was routed by (the publisher resolved it; see "One writer per state",
// forward.go): the seen marks and states of those keys are read while
// the identities are resolved, and used when the resolution agrees for
// every event — one round trip to the store before the commit instead
// of two. Otherwise they are read again for the resolved keys.
func (e *Engine) handle(ctx context.Context, batch []signals.Event, clock *stageClock) (err error) {
	start := e.cfg.Now()
	uniq := uniqueEvents(batch)
	routes := routeOf(ctx, batch)
	var spec *speculation
	if guess := routedKeys(uniq, routes); guess != nil {
		spec = e.speculate(ctx, uniq, guess)
		defer spec.wait()
	}
	keys, users, err := e.identities(ctx, uniq)
	if err != nil {
		return err
	}
	var (
		states *stateRead
		seen   *seenRead
	)
	if spec != nil && slices.Equal(spec.keys, keys) {
		states, seen = spec.states, spec.seen
	} else {
		states, seen = e.readStates(ctx, keys), e.readSeen(ctx, uniq, keys)
		defer states.wait()
	}
	fresh, keys, users, err := seen.fresh(uniq, keys, users)
	if err != nil {
		return err
	}
	e.met.duplicates.Add(float64(len(batch) - len(fresh)))
	clock.lap("dedup")
	fresh, keys, users, forwarded := e.forwardForeign(ctx, routes, fresh, keys, users)
	defer func() {
		if ferr := forwarded(); ferr != nil && err == nil {
			err = ferr
		}
	}()
	if len(fresh) == 0 {
		return nil
	}
	if err := e.archiveFresh(ctx, fresh); err != nil {
		return err
	}
	clock.lap("archive")
	if err := e.ensureRows(ctx, fresh); err != nil {
		return err
	}
	merges, links := identityChanges(fresh, keys, users)
	// The links first: from then on no consumer commits to the anonymous
	// states read below (see "One writer per state", forward.go).
	if err := e.recordLinks(ctx, links); err != nil {
		return err
	}
	anon, err := e.anonymousStates(ctx, merges)
	if err != nil {
		return err
	}
	forwardedHere := forwardedIDs(routes, fresh)
	groups, order := groupByKey(fresh, keys)
	clock.lap("prepare")
	visitors, err := states.get(order)
	if err != nil {
		return fmt.Errorf("engine: load visitors: %w", err)
	}
	clock.lap("read")
	commit := Commit{Events: make([]EventRef, 0, len(fresh)), Visitors: make([]VisitorUpdate, 0, len(order))}
	for i, ev := range fresh {
		commit.Events = append(commit.Events, EventRef{Visitor: keys[i], ID: ev.ID})
	}
	touched := map[int32]struct{}{}
	e.learn.startBatch()
	foldStart := time.Now()
	for i, v := range visitors {
		var extra []HistoryEvent
		if ids := merges[v.ID]; len(ids) > 0 {
			var states []Visitor
			for _, id := range ids {
				if a, ok := anon[id]; ok {
					states = append(states, a)
				}
			}
			v, extra = mergeAnonymous(v, states)
			visitors[i] = v
		}
		vu, err := e.updateVisitor(i, v, groups[order[i]], touched)
		if err != nil {
			e.learn.learner.Reset()
			return err
		}
		vu.Append = append(extra, vu.Append...)
		if all, ok := placeForwarded(v.History[:len(v.History)-len(extra)], vu.Append, forwardedHere); ok {
			vu.Append, vu.Replace = all, true
		}
		commit.Visitors = append(commit.Visitors, vu)
	}
	e.met.foldIn.Observe(time.Since(foldStart).Seconds() / float64(max(1, len(visitors))))
	clock.lap("foldin")
	if err := e.store.Commit(ctx, commit); err != nil {
		e.learn.learner.Reset()
		return fmt.Errorf("engine: commit batch: %w", err)
	}
	clock.lap("commit")
	e.dropMerged(ctx, anon)
	if err := e.applyItems(touched); err != nil {
		e.log.LogAttrs(ctx, slog.LevelError, "item updates not applied", slog.Any("err", err))
	} else {
		e.refoldStarted(ctx, commit.Visitors)
	}
	e.react(ctx, visitors, commit.Visitors, groups)
	e.countTrending(fresh)
	now := e.cfg.Now()
	for _, ev := range fresh {
		e.met.lag.Observe(now.Sub(ev.Time.Time).Seconds())
	}
	e.met.applied.Add(float64(len(fresh)))
	e.met.batch.Observe(now.Sub(start).Seconds())
	clock.lap("apply")
	return nil
}

// stateRead is a read of visitor states in flight (readStates).
type stateRead struct {
	done chan struct{}
	by   map[string]Visitor
	err  error
}

// readStates starts reading the states of keys (each once).
func (e *Engine) readStates(ctx context.Context, keys []string) *stateRead {
	r := &stateRead{done: make(chan struct{})}
	ids := uniqueStrings(slices.Clone(keys))
	go func() {
		defer close(r.done)
		vs, err := e.store.Visitors(ctx, ids)
		if err != nil {
			r.err = err
			return
		}
		r.by = make(map[string]Visitor, len(vs))
		for i, v := range vs {
			r.by[ids[i]] = v
		}
	}()
	return r
}

// wait waits until the read is over.
func (r *stateRead) wait() { <-r.done }

// get returns the states of ids (a subset of the keys read), in order.
func (r *stateRead) get(ids []string) ([]Visitor, error) {
	r.wait()
	if r.err != nil {
		return nil, r.err
	}
	out := make([]Visitor, len(ids))
	for i, id := range ids {
		v, ok := r.by[id]
		if !ok {
			return nil, fmt.Errorf("state %q was not read", id)
		}
		out[i] = v
	}
	return out, nil
}

// uniqueEvents returns the first occurrence of each event id of batch, in
// batch order.
func uniqueEvents(batch []signals.Event) []signals.Event {
	first := make(map[string]struct{}, len(batch))
	uniq := make([]signals.Event, 0, len(batch))
	for _, ev := range batch {
		if _, dup := first[ev.ID]; dup {
			continue
		}
		first[ev.ID] = struct{}{}
		uniq = append(uniq, ev)
	}
	return uniq
}

// seenRead is a look-up of the seen marks of a batch's events in flight
// (readSeen): each event's mark is looked up under the state key it
// would be committed to (EventRef) and, when that is a user's key, under
// the event's own visitor id too — where it was committed if it was
// first consumed before its visitor was linked to the user (a
// redelivery that outlived the link).
type seenRead struct {
	done chan struct{}
	seen []bool // per event of uniq
	err  error
}

// readSeen starts looking up the marks of uniq under keys.
func (e *Engine) readSeen(ctx context.Context, uniq []signals.Event, keys []string) *seenRead {
	refs := make([]EventRef, len(uniq), len(uniq)+len(uniq)/4)
	var alt []int // index in uniq of each ref after len(uniq)
	for i, ev := range uniq {
		refs[i] = EventRef{Visitor: keys[i], ID: ev.ID}
		if keys[i] != ev.Visitor {
			refs = append(refs, EventRef{Visitor: ev.Visitor, ID: ev.ID})
			alt = append(alt, i)
		}
	}
	r := &seenRead{done: make(chan struct{})}
	go func() {
		defer close(r.done)
		seen, err := e.store.Seen(ctx, refs)
		if err != nil {
			r.err = fmt.Errorf("engine: de-duplicate: %w", err)
			return
		}
		for j, i := range alt {
			seen[i] = seen[i] || seen[len(uniq)+j]
		}
		r.seen = seen[:len(uniq)]
	}()
	return r
}

// fresh returns the events of uniq not committed before, with their
// state keys and users.
func (r *seenRead) fresh(uniq []signals.Event, keys, users []string) ([]signals.Event, []string, []string, error) {
	<-r.done
	if r.err != nil {
		return nil, nil, nil, r.err
	}
	fresh, fk, fu := uniq[:0:0], keys[:0:0], users[:0:0]
	for i, ev := range uniq {
		if !r.seen[i] {
			fresh, fk, fu = append(fresh, ev), append(fk, keys[i]), append(fu, users[i])
		}
	}
	return fresh, fk, fu, nil
}

// speculation is the reads of a batch's seen marks and states under the
// keys its events were routed by, started before the identities are
// resolved.
type speculation struct {
	keys   []string
	states *stateRead
	seen   *seenRead
}

func (e *Engine) speculate(ctx context.Context, uniq []signals.Event, keys []string) *speculation {
	return &speculation{keys: keys, states: e.readStates(ctx, keys), seen: e.readSeen(ctx, uniq, keys)}
}

// wait waits until both reads are over.
func (s *speculation) wait() {
	s.states.wait()
	<-s.seen.done
}

// routedKeys returns the key each event of uniq was routed by, which is
// its state key unless a link was made since it was published (nil
// without routes). An event that names its user is keyed by the user.
func routedKeys(uniq []signals.Event, routes map[string]signals.Route) []string {
	if routes == nil {
		return nil
	}
	keys := make([]string, len(uniq))
	for i := range uniq {
		ev := &uniq[i]
		r, ok := routes[ev.ID]
		switch {
		case ev.User != "":
			keys[i] = UserKey(ev.User)
		case ok && r.Key != "":
			keys[i] = r.Key
		default:
			keys[i] = ev.Visitor
		}
	}
	return keys
}

// ensureRows makes sure every item of a learning event has a row here.
func (e *Engine) ensureRows(ctx context.Context, evs []signals.Event) error {
	var missing []string
	e.mu.RLock()
	for _, ev := range evs {
		if ev.Item == "" || e.cfg.Weights.Of(&ev) <= 0 {
			continue
		}
		if _, ok := e.rowOf[ev.Item]; !ok {
			missing = append(missing, ev.Item)
		}
	}
	e.mu.RUnlock()
	if len(missing) == 0 {
		return nil
	}
	missing = uniqueStrings(missing)
	rows, err := e.store.ItemRows(ctx, missing)
	if err != nil {
		return fmt.Errorf("engine: assign item rows: %w", err)
	}
	e.mu.Lock()
	maxRow := int32(-1)
	for i, id := range missing {
		e.setRowLocked(id, rows[i])
		maxRow = max(maxRow, rows[i])
	}
	e.mu.Unlock()
	e.model().Grow(int(maxRow) + 1)
	return nil
}

func uniqueStrings(s []string) []string {
	seen := make(map[string]struct{}, len(s))
	out := s[:0]
	for _, v := range s {
		if _, ok := seen[v]; !ok {
			seen[v] = struct{}{}
			out = append(out, v)
		}
	}
	return out
}

// groupByVisitor groups events by visitor, keeping event order within a
// visitor; order lists the visitors by first appearance.
func groupByVisitor(evs []signals.Event) (map[string][]signals.Event, []string) {
	keys := make([]string, len(evs))
	for i := range evs {
		keys[i] = evs[i].Visitor
	}
	return groupByKey(evs, keys)
}

// groupByKey groups events by their state key (keys[i] for evs[i]),
// keeping event order within a key; order lists the keys by first
// appearance.
func groupByKey(evs []signals.Event, keys []string) (map[string][]signals.Event, []string) {
	groups := make(map[string][]signals.Event)
	var order []string
	for i, ev := range evs {
		k := keys[i]
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], ev)
	}
	return groups, order
}

// updateVisitor computes one visitor's new state from its fresh events and
// queues the item updates of its learning events. index is the visitor's
// place in the batch's commit.
func (e *Engine) updateVisitor(index int, v Visitor, evs []signals.Event, touched map[int32]struct{}) (VisitorUpdate, error) {
	vu := VisitorUpdate{ID: v.ID, Session: v.Session}
	user, known := strings.CutPrefix(v.ID, userKeyPrefix)
	learning := false
	for i := range evs {
		ev := &evs[i]
		vu.Session = e.advanceSession(vu.Session, ev)
		h := HistoryEvent{ID: ev.ID, Type: ev.Type, Item: ev.Item, Offer: ev.Offer, Page: ev.Page, Value: ev.Value, Time: ev.Time.Time}
		if known && ev.Visitor != user && ev.Visitor != v.ID {
			h.Device = ev.Visitor
		}
		if w := e.cfg.Weights.Of(ev); w > 0 {
			h.Weight = float32(w)
			learning = true
		}
		vu.Append = append(vu.Append, h)
	}
	if !learning {
		return vu, nil
	}
	ls := e.learn
	ls.hist = e.modelEvents(ls.hist[:0], v.History)
	ls.fresh = e.modelEvents(ls.fresh[:0], vu.Append)
	metStart := false
	for _, me := range ls.fresh {
		touched[me.Item] = struct{}{}
		if e.model().InitItem(int(me.Item), itemSeed(e.itemID(me.Item))) {
			e.met.newItems.Inc()
			f, _, _ := e.model().ItemRow(int(me.Item), nil, nil)
			e.addDelta(me.Item, f, nil, 0) // peers need the start too
			ls.started[me.Item] = struct{}{}
		}
		_, started := ls.started[me.Item]
		metStart = metStart || started
	}
	if metStart {
		evs := append(slices.Clone(ls.hist), ls.fresh...)
		ls.refold = append(ls.refold, refold{index: index, events: evs})
	}
	o := e.model()
	x := make([]float32, o.K())
	old, ok := unpackFactors(v.Factors, o.K(), e.gen.Load())
	if !ok {
		old = nil // none, or folded in against a replaced model
	}
	if err := ls.learner.Observe(x, old, ls.hist, ls.fresh); err != nil {
		return vu, fmt.Errorf("engine: fold in visitor: %w", err)
	}
	vu.Factors = packFactors(x, e.gen.Load())
	return vu, nil
}

// startBatch forgets the previous batch's item starts and refolds.
func (ls *learnState) startBatch() {
	clear(ls.started)
	ls.refold = ls.refold[:0]
}

// refoldStarted folds in again, against the items as the batch's updates
// left them, the visitors whose fold-in met an item that had only its
// random start, and stores their new factors with a second, factors-only
// commit. A visitor whose first events come with its items' first events
// (every visitor at a site's launch or of a new catalog) would otherwise
// keep factors that say nothing but those random starts until its next
// event. The batch's first commit holds its events; this one only refines
// factors, so a failure is logged, never returned, and the visitor keeps
// its first fold-in.
func (e *Engine) refoldStarted(ctx context.Context, updates []VisitorUpdate) {
	ls := e.learn
	if len(ls.refold) == 0 {
		return
	}
	gen := e.gen.Load()
	k := e.model().K()
	c := Commit{Visitors: make([]VisitorUpdate, 0, len(ls.refold))}
	at := make([]int, 0, len(ls.refold))
	for _, r := range ls.refold {
		x := make([]float32, k)
		if err := ls.learner.Refold(x, r.events); err != nil {
			e.log.LogAttrs(ctx, slog.LevelWarn, "visitor not folded in again", slog.String("visitor", updates[r.index].ID), slog.Any("err", err))
			continue
		}
		u := updates[r.index]
		c.Visitors = append(c.Visitors, VisitorUpdate{ID: u.ID, Factors: packFactors(x, gen), Session: u.Session})
		at = append(at, r.index)
	}
	if len(c.Visitors) == 0 {
		return
	}
	if err := e.store.Commit(ctx, c); err != nil {
		level := slog.LevelWarn
		if errors.Is(err, ErrConflict) {
			level = slog.LevelDebug // linked meanwhile: the user's state has its events
		}
		e.log.LogAttrs(ctx, level, "refolded factors not stored", slog.Int("visitors", len(c.Visitors)), slog.Any("err", err))
		return
	}
	e.met.refolded.Add(float64(len(c.Visitors)))
	for j, i := range at {
		updates[i].Factors = c.Visitors[j].Factors
	}
}

// modelEvents converts the learning events of a history to model events
// (dropping items without a row: never learnt).
func (e *itemCatalog) modelEvents(dst []model.Event, hs []HistoryEvent) []model.Event {
	e.mu.RLock()
	defer e.mu.RUnlock()
	for _, h := range hs {
		if h.Weight <= 0 || h.Item == "" {
			continue
		}
		row, ok := e.rowOf[h.Item]
		if !ok {
			continue
		}
		dst = append(dst, model.Event{Item: row, Weight: h.Weight, Time: h.Time})
	}
	return dst
}

// itemID returns the id of a row ("" when unknown).
func (e *itemCatalog) itemID(row int32) string {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if int(row) < len(e.idOf) {
		return e.idOf[row]
	}
	return ""
}

// advanceSession extends or restarts the session window with ev.
func (e *Engine) advanceSession(s Session, ev *signals.Event) Session {
	t := ev.Time.Time
	if s.Last.IsZero() || t.Sub(s.Last) > e.cfg.SessionGap || (ev.Session != "" && ev.Session != s.ID && s.ID != "") {
		id := ev.Session
		if id == "" {
			id = fmt.Sprintf("s%d", t.UnixMilli())
		}
		return Session{ID: id, Start: t, Last: t, Events: 1}
	}
	if t.After(s.Last) {
		s.Last = t
	}
	if s.ID == "" {
		s.ID = ev.Session
	}
	s.Events++
	return s
}

// applyItems applies the queued item updates to the live model and records
// this replica's deltas of the touched rows for persistence and peers.
func (e *Engine) applyItems(touched map[int32]struct{}) error {
	ls := e.learn
	clear(ls.before)
	for row := range touched {
		f, c, n := e.model().ItemRow(int(row), nil, nil)
		ls.before[row] = model.ItemRowState{Row: row, Factors: f, Curv: c, Count: n}
	}
	if err := ls.learner.Flush(); err != nil {
		return err
	}
	for row, b := range ls.before {
		f, c, n := e.model().ItemRow(int(row), nil, nil)
		for i := range f {
			f[i] -= b.Factors[i]
			c[i] -= b.Curv[i]
		}
		e.addDelta(row, f, c, n-b.Count)
	}
	return nil
}

// addDelta accumulates a change of one of this replica's item rows for the
// next persistence and broadcast (curv may be nil: unchanged).
func (e *Engine) addDelta(row int32, factors, curv []float32, count int32) {
	ls := e.learn
	d, ok := ls.dirty[row]
	if !ok {
		k := e.cfg.Params.Factors
		d = &model.ItemRowState{Row: row, Factors: make([]float32, k), Curv: make([]float32, k)}
		ls.dirty[row] = d
	}
	for i, v := range factors {
		d.Factors[i] += v
	}
	for i, v := range curv {
		d.Curv[i] += v
	}
	d.Count += count
}

// countTrending adds the learning events to the trending counters.
func (e *Engine) countTrending(evs []signals.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := range evs {
		ev := &evs[i]
		w := e.cfg.Weights.Of(ev)
		if w <= 0 {
			continue
		}
		if row, ok := e.rowOf[ev.Item]; ok {
			e.trending.Add(int(row), w, ev.Time.Time)
			e.countSegmentsLocked(ev, row, w)
		}
	}
}
