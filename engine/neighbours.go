package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"

	"github.com/kairoshq/kairos/model"
)

// Item neighbours (model.Neighbours) come with a retrained snapshot that
// fitted η > 0 (model.Blend.Neighbours). LoadSnapshot places them at the
// engine's item rows and persists them (blobNeighbours), so that every
// replica that loads the snapshot, and one that starts later, ranks with
// them; the visitor's items then add η·z(log(1 + nb)) to the blend
// (blendRank). A snapshot without neighbours removes them.

// blobNeighbours holds the live model's item neighbours at the engine's
// rows (model.Neighbours.MarshalBinary; empty: none).
const blobNeighbours = "engine/neighbours"

// itemNeighbours returns the live item neighbours (nil: none).
func (e *Engine) itemNeighbours() *model.Neighbours { return e.nbrs.Load() }

// snapshotNeighbours returns snap's neighbours at the engine's rows
// (rows[i] is snapshot item i's row, size the rows of the new model), nil
// when it has none.
func snapshotNeighbours(snap *model.Snapshot, rows []int32, size int) *model.Neighbours {
	if snap.Neighbours == nil {
		return nil
	}
	return snap.Neighbours.Remap(rows, size)
}

// persistNeighbours saves nb (nil: none) for a restart.
func (e *Engine) persistNeighbours(ctx context.Context, nb *model.Neighbours) error {
	var b []byte
	if nb != nil {
		var err error
		if b, err = nb.MarshalBinary(); err != nil {
			return fmt.Errorf("engine: encode item neighbours: %w", err)
		}
	}
	if err := e.store.PutBlob(ctx, blobNeighbours, b); err != nil {
		return fmt.Errorf("engine: persist item neighbours: %w", err)
	}
	return nil
}

// loadNeighbours restores the persisted item neighbours; a corrupt blob
// is logged and ignored (the blend then leaves the neighbours out).
func (e *Engine) loadNeighbours(ctx context.Context) error {
	b, err := e.store.Blob(ctx, blobNeighbours)
	switch {
	case errors.Is(err, ErrNotFound) || (err == nil && len(b) == 0):
		return nil
	case err != nil:
		return fmt.Errorf("engine: load item neighbours: %w", err)
	}
	var nb model.Neighbours
	if err := nb.UnmarshalBinary(b); err != nil {
		e.log.LogAttrs(ctx, slog.LevelWarn, "stored item neighbours ignored", slog.Any("err", err))
		return nil
	}
	e.nbrs.Store(&nb)
	return nil
}

// neighbourPart is a visitor's item-neighbour part of the blend: the
// scores nb (non-zero at touched), and the mean and deviation of
// log(1 + nb) over the item rows.
type neighbourPart struct {
	nb       []float32
	touched  []int32
	mean, sd float64
}

// neighbourScores fills s's neighbour part from the visitor's history
// (s.history) for a blend weighing neighbours by eta: nil when eta is 0,
// none are loaded or the visitor's items have none. e.mu must be held
// for reading.
func (e *Engine) neighbourScores(s *scratch, eta float64, items int) *neighbourPart {
	nb := e.itemNeighbours()
	if nb == nil || !(eta > 0) {
		return nil
	}
	s.histRows = e.learntRows(s.histRows, s.history)
	p := &s.nbPart
	if cap(p.nb) < items {
		p.nb = make([]float32, items)
	}
	p.nb = p.nb[:items]
	for _, j := range p.touched {
		if int(j) < len(p.nb) {
			p.nb[j] = 0
		}
	}
	p.touched = nb.Scores(p.nb, s.histRows, p.touched[:0])
	if len(p.touched) == 0 {
		return nil
	}
	p.mean, p.sd = model.LogMoments(p.nb, p.touched, items)
	if !(p.sd > 0) {
		return nil
	}
	return p
}

// z returns row c's standardised log neighbour score.
func (p *neighbourPart) z(c int32) float64 {
	v := 0.0
	if int(c) < len(p.nb) {
		v = math.Log1p(max(float64(p.nb[c]), 0))
	}
	return (v - p.mean) / p.sd
}
