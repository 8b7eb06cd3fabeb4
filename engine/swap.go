package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/kairoshq/kairos/model"
	"github.com/kairoshq/kairos/signals"
)

// Tail reads the archive records after a retrain's cut-off (the engine's
// own archive; cmd/kairos adapts offline/archive).
type Tail interface {
	// LastSeq is the last record appended so far.
	LastSeq() uint64
	// ScanAfter calls fn for the events of records after..until (until 0:
	// no bound) whose time is not before since (zero: any), in order.
	ScanAfter(ctx context.Context, after, until uint64, since time.Time, fn func(signals.Event) error) error
}

// SetTail gives the engine the archive tail to replay after loading a
// snapshot. Call it before Run.
func (e *Engine) SetTail(t Tail) {
	e.handleMu.Lock()
	defer e.handleMu.Unlock()
	e.tail = t
}

// Blob names of the model.
const (
	// BlobModel holds the current model snapshot (offline.Publish writes it).
	BlobModel = signals.BlobModel
	// BlobAnnouncement holds the announcement (signals.ModelAnnouncement)
	// of the model last published to BlobModel; Run loads that model at
	// start when it is newer than the live one (offline.Publish writes it).
	BlobAnnouncement = signals.BlobModelAnnouncement
	blobModelGen     = "engine/model"
)

// modelState is the persisted generation of the live model.
type modelState struct {
	Generation uint32       `json:"generation"`
	Version    uint64       `json:"version"`
	Params     model.Params `json:"params"`
	// Blend is the snapshot's fitted blend (nil: none).
	Blend *model.Blend `json:"blend,omitempty"`
}

// setBlend makes Config.Blend, with the popularity prior and κ of fitted
// when not nil, the blend requests are ranked with.
func (e *Engine) setBlend(fitted *model.Blend) {
	b := e.cfg.Blend
	if fitted != nil {
		b.Prior, b.Kappa = fitted.Prior, fitted.Kappa
		if n := fitted.Neighbours; n > 0 && !math.IsInf(n, 0) {
			b.Neighbours = n
		}
	}
	e.blend.Store(&b)
}

// Blend returns the blend requests are ranked with: Config.Blend, with
// the popularity prior (ρ) and κ of the loaded snapshot when it was
// fitted with one.
func (e *Engine) Blend() model.Blend { return *e.blend.Load() }

// ModelGeneration returns the generation of the live model: 0 for the
// model learnt from events alone, one more with every loaded snapshot.
func (e *Engine) ModelGeneration() uint32 { return e.gen.Load() }

// packFactors stores the visitor's factors with the model generation as a
// trailing word, so that factors folded in against a replaced model are
// recognised (and folded in again from the history) instead of being
// scored against item factors of another basis.
func packFactors(x []float32, gen uint32) []float32 {
	return append(append(make([]float32, 0, len(x)+1), x...), math.Float32frombits(gen))
}

// unpackFactors returns the factors of stored and whether they belong to
// generation gen (factors of length k are generation 0).
func unpackFactors(stored []float32, k int, gen uint32) ([]float32, bool) {
	switch len(stored) {
	case k:
		return stored, gen == 0
	case k + 1:
		return stored[:k], math.Float32bits(stored[k]) == gen
	}
	return nil, false
}

// visitorFactors returns v's factors for the live model: the stored ones
// when they belong to it, else a fold-in of v's history (nil when v has no
// learning events).
func (e *Engine) visitorFactors(s *scratch, v Visitor) []float32 {
	o := e.model()
	if x, ok := unpackFactors(v.Factors, o.K(), e.gen.Load()); ok {
		if isZero(x) {
			return nil
		}
		return x
	}
	s.events = e.modelEvents(s.events[:0], v.History)
	if len(s.events) == 0 {
		return nil
	}
	s.hist = s.agg.Aggregate(s.hist, s.events, o.Params().HalfLife)
	x := make([]float32, o.K())
	if err := o.FoldUser(s.ws, x, s.hist); err != nil {
		return nil
	}
	return x
}

// LoadSnapshot replaces the live model with snap without stopping: it
// builds the new model beside the old one (item rows aligned to the
// store's, XᵀX from the snapshot's users), replays the archive records
// after the snapshot's cut-off into it while events keep flowing into the
// old one, then pauses consumption briefly to replay the last records,
// swap, and persist the new item states. Readers are served throughout,
// by the old model until the swap. Visitors' stored factors are folded in
// again from their histories on their next event or request.
func (e *Engine) LoadSnapshot(ctx context.Context, snap *model.Snapshot) error {
	e.swapMu.Lock()
	defer e.swapMu.Unlock()
	if err := snap.Validate(); err != nil {
		return err
	}
	if k := e.model().K(); snap.Meta.Params.Factors != k {
		return fmt.Errorf("%w: snapshot has k=%d, the engines run k=%d (restart them with --factors %d to change it)", ErrInvalid, snap.Meta.Params.Factors, k, snap.Meta.Params.Factors)
	}
	start := time.Now()
	next, rows, err := e.buildOnline(ctx, snap)
	if err != nil {
		return err
	}
	nb := snapshotNeighbours(snap, rows, next.Len())
	e.handleMu.Lock()
	tail := e.tail
	e.handleMu.Unlock()
	// The cut: the records after the snapshot's ArchiveSeq, or, for a
	// model of the cluster's history, the events after its Cutoff.
	after, since := snap.Meta.ArchiveSeq, time.Time{}
	if snap.Meta.HistoryCut {
		after, since = 0, snap.Meta.Cutoff.Add(time.Nanosecond)
	}
	var seq uint64
	if tail != nil {
		seq = tail.LastSeq()
		if err := e.replay(ctx, next, tail, after, seq, since); err != nil {
			return err
		}
	}
	e.handleMu.Lock()
	defer e.handleMu.Unlock()
	if tail != nil {
		last := tail.LastSeq()
		if err := e.replay(ctx, next, tail, max(seq, after), last, since); err != nil {
			return err
		}
	}
	e.online.Store(next)
	e.version.Store(snap.Meta.Version)
	gen := e.gen.Add(1)
	e.nbrs.Store(nb)
	e.setBlend(snap.Meta.Blend)
	e.met.swaps.Inc()
	e.learn = newLearnState(next, next.K())
	if err := e.persistModel(ctx, next, modelState{Generation: gen, Version: snap.Meta.Version, Params: snap.Meta.Params, Blend: snap.Meta.Blend}); err != nil {
		return err
	}
	if err := e.persistNeighbours(ctx, nb); err != nil {
		return err
	}
	e.log.LogAttrs(ctx, slog.LevelInfo, "model loaded", slog.Uint64("version", snap.Meta.Version), slog.Int("generation", int(gen)),
		slog.Int("items", len(snap.ItemIDs)), slog.Int("users", max(len(snap.UserIDs), snap.UserCount)), slog.Duration("took", time.Since(start)))
	return nil
}

// buildOnline makes the live model of a snapshot with items at the
// engine's rows, and returns each snapshot item's row.
func (e *Engine) buildOnline(ctx context.Context, snap *model.Snapshot) (*model.Online, []int32, error) {
	rows, err := e.store.ItemRows(ctx, snap.ItemIDs)
	if err != nil {
		return nil, nil, fmt.Errorf("engine: assign rows of the snapshot's items: %w", err)
	}
	e.mu.Lock()
	n := len(e.idOf)
	for i, id := range snap.ItemIDs {
		e.setRowLocked(id, rows[i])
		n = max(n, int(rows[i])+1)
	}
	e.mu.Unlock()
	k := snap.Meta.Params.Factors
	items := model.NewFactors(n, k)
	stats := &model.ItemStats{Counts: make([]int32, n), Curv: model.NewFactors(n, k)}
	for i, r := range rows {
		copy(items.Row(int(r)), snap.Items.Row(i))
		if snap.Stats != nil {
			stats.Counts[r] = snap.Stats.Counts[i]
			copy(stats.Curv.Row(int(r)), snap.Stats.Curv.Row(i))
		}
	}
	o, err := model.NewOnline(&model.Model{Params: snap.Meta.Params, Items: items, Users: snap.Users}, stats)
	if err == nil && snap.Users == nil && snap.UserGram != nil {
		err = o.SetXtX(snap.UserGram) // a slim snapshot: the users' Gram only
	}
	return o, rows, err
}

// replay folds the archive records after..until (their events not before
// since) into o: per chunk of events, each visitor is folded in from its
// whole stored history and its chunk events nudge their items.
func (e *Engine) replay(ctx context.Context, o *model.Online, tail Tail, after, until uint64, since time.Time) error {
	if until <= after {
		return nil
	}
	l := o.NewLearner()
	var chunk []signals.Event
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		defer func() { chunk = chunk[:0] }()
		if err := e.ensureRows(ctx, chunk); err != nil {
			return err
		}
		groups, order := groupByVisitor(chunk)
		vs, err := e.store.Visitors(ctx, order)
		if err != nil {
			return fmt.Errorf("engine: replay: %w", err)
		}
		for _, v := range vs {
			var hist, fresh []model.Event
			hist = e.modelEvents(hist, v.History)
			for _, ev := range groups[v.ID] {
				if w := e.cfg.Weights.Of(&ev); w > 0 {
					if row, ok := e.itemRow(ev.Item); ok {
						fresh = append(fresh, model.Event{Item: row, Weight: float32(w), Time: ev.Time.Time})
					}
				}
			}
			if len(fresh) == 0 {
				continue
			}
			x := make([]float32, o.K())
			if err := l.Observe(x, nil, withoutEvents(hist, fresh), fresh); err != nil {
				return err
			}
		}
		return l.Flush()
	}
	err := tail.ScanAfter(ctx, after, until, since, func(ev signals.Event) error {
		chunk = append(chunk, ev)
		if len(chunk) >= 1000 {
			return flush()
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("engine: replay the archive tail: %w", err)
	}
	return flush()
}

// withoutEvents returns hist minus the events of fresh (the stored history
// already holds the replayed events; the learner wants them apart).
func withoutEvents(hist, fresh []model.Event) []model.Event {
	out := hist[:0:0]
	for _, h := range hist {
		dup := false
		for _, f := range fresh {
			if f.Item == h.Item && f.Time.Equal(h.Time) && f.Weight == h.Weight {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, h)
		}
	}
	return out
}

// persistModel stores every item state of o, XᵀX and the generation.
func (e *Engine) persistModel(ctx context.Context, o *model.Online, ms modelState) error {
	n := o.Len()
	const chunk = 4096
	for lo := 0; lo < n; lo += chunk {
		states := make([]ItemState, 0, min(chunk, n-lo))
		for r := lo; r < min(lo+chunk, n); r++ {
			f, c, cnt := o.ItemRow(r, nil, nil)
			states = append(states, ItemState{Row: int32(r), Factors: f, Curv: c, Count: cnt})
		}
		if err := e.store.SaveItemStates(ctx, states); err != nil {
			return fmt.Errorf("engine: persist the new model: %w", err)
		}
	}
	if err := e.store.PutBlob(ctx, blobXtX, encodeFloat64s(o.XtX())); err != nil {
		return fmt.Errorf("engine: persist the new model: %w", err)
	}
	b, _ := json.Marshal(ms)
	if err := e.store.PutBlob(ctx, blobModelGen, b); err != nil {
		return fmt.Errorf("engine: persist the model generation: %w", err)
	}
	return nil
}

// loadGenerationFrom restores the model generation and parameters
// persisted by the last LoadSnapshot (nil: generation 0 and the configured
// params).
func loadGenerationFrom(ctx context.Context, store Store) (*modelState, error) {
	b, err := store.Blob(ctx, blobModelGen)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("engine: load the model generation: %w", err)
	}
	var ms modelState
	if err := json.Unmarshal(b, &ms); err != nil {
		return nil, fmt.Errorf("engine: stored model generation: %w", err)
	}
	return &ms, nil
}

// loadPublished loads the model of the stored announcement when it is
// newer than the live one: published while no engine listened (a missing
// announcement is nothing to load; a failure is logged, as onModel's).
func (e *Engine) loadPublished(ctx context.Context) {
	msg, err := e.store.Blob(ctx, BlobAnnouncement)
	switch {
	case errors.Is(err, ErrNotFound):
		return
	case err != nil:
		e.log.LogAttrs(ctx, slog.LevelError, "published model not checked", slog.Any("err", err))
		return
	}
	e.onModel(ctx, msg)
}

// onModel loads an announced snapshot (newer than the live one).
func (e *Engine) onModel(ctx context.Context, msg []byte) {
	var a signals.ModelAnnouncement
	if err := json.Unmarshal(msg, &a); err != nil || a.Blob == "" {
		e.log.LogAttrs(ctx, slog.LevelWarn, "bad model announcement ignored", slog.Any("err", err))
		return
	}
	if a.Version != 0 && a.Version <= e.version.Load() {
		return
	}
	b, err := e.store.Blob(ctx, a.Blob)
	if err != nil {
		e.log.LogAttrs(ctx, slog.LevelError, "announced model not loaded", slog.String("blob", a.Blob), slog.Any("err", err))
		return
	}
	snap, err := model.Decode(bytes.NewReader(b))
	if err != nil {
		e.log.LogAttrs(ctx, slog.LevelError, "announced model is corrupt", slog.String("blob", a.Blob), slog.Any("err", err))
		return
	}
	if err := e.LoadSnapshot(ctx, snap); err != nil {
		e.log.LogAttrs(ctx, slog.LevelError, "announced model not loaded", slog.Any("err", err))
	}
}

// LiveItems returns the live model's parameters, item ids (by row; "" for
// rows this replica has not heard of) and a copy of its item factors: what
// a retrain compares itself with.
func (e *Engine) LiveItems() (model.Params, []string, *model.Factors) {
	o := e.model()
	items, _ := o.Snapshot()
	e.mu.RLock()
	ids := make([]string, items.Rows())
	copy(ids, e.idOf)
	e.mu.RUnlock()
	return o.Params(), ids, items
}

// StoredParams returns the parameters of the model the engines last loaded
// from a snapshot, if any (tools use them to compare with the live model).
func StoredParams(ctx context.Context, store Store) (model.Params, bool, error) {
	ms, err := loadGenerationFrom(ctx, store)
	if err != nil || ms == nil {
		return model.Params{}, false, err
	}
	return ms.Params, true, nil
}

// ModelVersion returns the version of the last loaded snapshot (0: none
// since the engines started from an empty model).
func (e *Engine) ModelVersion() uint64 { return e.version.Load() }
