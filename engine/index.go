package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/kairoshq/kairos/model"
	"github.com/prometheus/client_golang/prometheus"
)

// The approximate index (model.IVF) of large catalogs.
//
// Run's index loop builds it in the background once the catalog has
// IndexConfig.MinItems items (requests are scored exactly, in batches,
// until then), keeps it fresh — every IndexConfig.RefreshEvery it checks
// the lists of the items changed since the last check and assigns new
// items (which every query scans exactly meanwhile) — and reclusters it
// in the background, swapping the new one in atomically, when the items
// moved between lists exceed IndexConfig.Drift of the catalog, the items
// waiting for a list exceed 10 %, or IndexConfig.RebuildEvery has passed.
// After a build the clustering (centroids and each item's list, ~4 MB at
// 1M items) is saved as a blob; the index loop loads it first thing, in
// the background (about a second at 1M items), so that start-up does not
// wait for it: requests are scored exactly (in batches) until it is in,
// then through it, without a rebuild.

// blobIndex is the blob of the persisted index clustering: the model
// generation (uvarint) then model.Online.EncodeIndex.
const blobIndex = "engine/index"

// indexSearch returns the index's search parameters, and false to score
// exactly (index disabled, not built, or catalog too small).
func (e *Engine) indexSearch() (model.IVFSearch, bool) {
	if e.cfg.Index.Disabled {
		return model.IVFSearch{}, false
	}
	info, ok := e.model().IndexInfo()
	if !ok || info.Items+info.Overflow < e.cfg.Index.MinItems {
		return model.IVFSearch{}, false
	}
	return model.IVFSearch{Probe: e.cfg.Index.Probe, Shortlist: e.cfg.Index.Shortlist}, true
}

// topK ranks q through the index when it serves, else exactly, in a batch
// with the concurrent exact queries. A filtered query (q.Keep) that the
// index answers with fewer than q.N results — the lists it probed held
// too few qualifying items — is answered exactly (model.Query.Rows
// already bypasses the index for selective filters).
func (e *Engine) topK(s *scratch, dst []model.Scored, q model.Query, exact bool) []model.Scored {
	o := e.model()
	if p, ok := e.indexSearch(); ok && !exact {
		top, _ := o.TopKApprox(&s.scorer, dst, q, p)
		if len(top) >= q.N || q.Keep == nil {
			return top
		}
		e.met.filterExact.Inc()
		dst = top
	}
	return o.TopKBatched(&s.scorer, dst, q)
}

// similar returns the q.N items most similar to row through the index
// when it serves, else exactly (also when a filtered search through the
// index comes back short, as topK).
func (e *Engine) similar(o *model.Online, s *model.Scorer, dst []model.Scored, row int, q model.Query) ([]model.Scored, error) {
	if p, ok := e.indexSearch(); ok {
		top, err := o.SimilarApproxQ(s, dst, row, q, p)
		if err != nil || len(top) >= q.N || q.Keep == nil {
			return top, err
		}
		e.met.filterExact.Inc()
		dst = top
	}
	return o.SimilarQ(s, dst, row, q)
}

// loadIndex installs the persisted clustering when it belongs to the live
// model's generation; otherwise the index loop builds one.
func (e *Engine) loadIndex(ctx context.Context) error {
	if e.cfg.Index.Disabled {
		return nil
	}
	o := e.model()
	b, err := e.store.Blob(ctx, blobIndex)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("engine: load index: %w", err)
	}
	gen, n := binary.Uvarint(b)
	if n <= 0 || uint32(gen) != e.gen.Load() {
		e.log.LogAttrs(ctx, slog.LevelInfo, "stored index ignored (older model)", slog.Uint64("generation", gen))
		return nil
	}
	start := time.Now()
	if err := o.LoadIndex(b[n:]); err != nil {
		e.log.LogAttrs(ctx, slog.LevelWarn, "stored index ignored", slog.Any("err", err))
		return nil
	}
	info, _ := o.IndexInfo()
	e.log.LogAttrs(ctx, slog.LevelInfo, "approximate index loaded", slog.Int("items", info.Items),
		slog.Int("lists", info.Lists), slog.Int("overflow", info.Overflow), slog.Duration("took", time.Since(start)))
	return nil
}

// BuildIndex builds the approximate index of the live model now, with
// the configured number of lists, and saves it with the model's
// generation, so that an engine started later on the same store loads it
// instead of serving exactly until its own build ends (`kairos bench
// seed` uses it).
func (e *Engine) BuildIndex(ctx context.Context) error {
	if e.cfg.Index.Disabled {
		return fmt.Errorf("engine: build index: the index is disabled")
	}
	return e.buildIndex(ctx, e.model())
}

// saveIndex persists the live model's clustering.
func (e *Engine) saveIndex(ctx context.Context) error {
	gen := e.gen.Load()
	enc := e.model().EncodeIndex()
	if enc == nil {
		return nil
	}
	b := append(binary.AppendUvarint(make([]byte, 0, len(enc)+5), uint64(gen)), enc...)
	if err := e.store.PutBlob(ctx, blobIndex, b); err != nil {
		return fmt.Errorf("engine: save index: %w", err)
	}
	return nil
}

// refreshBatch is the most changed items whose list one refresh checks.
const refreshBatch = 50_000

// maintainIndex builds, refreshes and reclusters the index (see above).
func (e *Engine) maintainIndex(ctx context.Context) error {
	if e.cfg.Index.Disabled {
		return nil
	}
	if err := e.loadIndex(ctx); err != nil && ctx.Err() == nil {
		e.log.LogAttrs(ctx, slog.LevelWarn, "stored index not loaded", slog.Any("err", err))
	}
	tick := time.NewTicker(e.cfg.Index.RefreshEvery)
	defer tick.Stop()
	built := time.Now()
	for {
		o := e.model()
		o.RefreshIndex(refreshBatch)
		if e.indexDue(o, built) {
			if err := e.buildIndex(ctx, o); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				e.log.LogAttrs(ctx, slog.LevelWarn, "index build failed", slog.Any("err", err))
			}
			built = time.Now()
		}
		e.calibrateIndex(ctx, o)
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// indexDue reports whether o's index should be (re)built.
func (e *Engine) indexDue(o *model.Online, built time.Time) bool {
	n := o.Len()
	if n < e.cfg.Index.MinItems {
		return false
	}
	info, ok := o.IndexInfo()
	return !ok || time.Since(built) >= e.cfg.Index.RebuildEvery ||
		float64(info.Overflow) > 0.1*float64(n) || float64(info.Moved) > e.cfg.Index.Drift*float64(n)
}

func (e *Engine) buildIndex(ctx context.Context, o *model.Online) error {
	start := time.Now()
	if err := o.BuildIndex(ctx, model.IVFParams{Lists: e.cfg.Index.Lists, Seed: uint64(start.UnixNano())}); err != nil {
		return err
	}
	e.met.indexBuilds.Inc()
	info, _ := o.IndexInfo()
	e.log.LogAttrs(ctx, slog.LevelInfo, "approximate index built",
		slog.Int("items", info.Items), slog.Int("lists", info.Lists), slog.Duration("took", time.Since(start)))
	if o != e.model() {
		return nil // swapped meanwhile: the next round builds the new model's
	}
	return e.saveIndex(ctx)
}

// calibrateIndex sets the probe count of o's index by measuring recall
// (model.Online.CalibrateIndex), once per index, when the configuration
// leaves the count automatic.
func (e *Engine) calibrateIndex(ctx context.Context, o *model.Online) {
	info, ok := o.IndexInfo()
	if !ok || info.Calibrated || e.cfg.Index.Probe > 0 {
		return
	}
	start := time.Now()
	c, err := o.CalibrateIndex(ctx, model.DefaultCalibrationTarget, 0, uint64(start.UnixNano()))
	if err != nil {
		if ctx.Err() == nil {
			e.log.LogAttrs(ctx, slog.LevelWarn, "index not calibrated", slog.Any("err", err))
		}
		return
	}
	e.log.LogAttrs(ctx, slog.LevelInfo, "approximate index calibrated", slog.Int("probe", c.Probe), slog.Int("lists", info.Lists),
		slog.Float64("recall", c.Recall), slog.Int("auto_probe", model.AutoProbe(info.Lists)), slog.Float64("auto_recall", c.AutoRecall),
		slog.Duration("took", time.Since(start)))
}

// registerIndexGauges exports the live index's shape.
func (e *Engine) registerIndexGauges(reg prometheus.Registerer) {
	gauge := func(name, help string, f func(model.IndexInfo) int) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 {
			info, _ := e.model().IndexInfo()
			return float64(f(info))
		}))
	}
	gauge("kairos_engine_index_lists", "Clusters of the approximate index (0: none; requests are scored exactly).",
		func(i model.IndexInfo) int { return i.Lists })
	gauge("kairos_engine_index_items", "Items in the approximate index's lists.", func(i model.IndexInfo) int { return i.Items })
	gauge("kairos_engine_index_overflow", "Items waiting for an index list (new items; scanned exactly by every query).",
		func(i model.IndexInfo) int { return i.Overflow })
	gauge("kairos_engine_index_moved", "Items moved between index lists since the last build.", func(i model.IndexInfo) int { return i.Moved })
	gauge("kairos_engine_index_probe", "Lists a search of the approximate index scans by default (calibrated for recall@10 ≥ 0.95, else 1.8·√lists).",
		func(i model.IndexInfo) int { return i.Probe })
}
