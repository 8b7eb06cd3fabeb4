package engine

import (
	"context"
	"log/slog"
	"time"

	"github.com/kairoshq/kairos/model"
)

// nprobe returns the number of index clusters to scan, or 0 to score
// exactly (index disabled, not built, or catalog too small).
func (e *Engine) nprobe() int {
	if e.cfg.Index.Disabled {
		return 0
	}
	lists, _, ok := e.model().IndexStats()
	if !ok {
		return 0
	}
	return max(e.cfg.Index.MinProbe, int(e.cfg.Index.ProbeShare*float64(lists)+0.5))
}

// maintainIndex builds the approximate index once the catalog is large
// enough, and rebuilds it periodically or when many items joined since.
func (e *Engine) maintainIndex(ctx context.Context) error {
	if e.cfg.Index.Disabled {
		return nil
	}
	check := time.NewTicker(5 * time.Second)
	defer check.Stop()
	var built time.Time
	for {
		n := e.model().Len()
		_, overflow, ok := e.model().IndexStats()
		due := n >= e.cfg.Index.MinItems && (!ok || time.Since(built) >= e.cfg.Index.RebuildEvery ||
			float64(overflow) > 0.1*float64(n))
		if due {
			start := time.Now()
			if err := e.model().BuildIndex(ctx, model.IVFParams{Seed: uint64(start.UnixNano())}); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				e.log.LogAttrs(ctx, slog.LevelWarn, "index build failed", slog.Any("err", err))
			} else {
				built = time.Now()
				lists, _, _ := e.model().IndexStats()
				e.log.LogAttrs(ctx, slog.LevelInfo, "approximate index built",
					slog.Int("items", n), slog.Int("lists", lists), slog.Duration("took", time.Since(start)))
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-check.C:
		}
	}
}
