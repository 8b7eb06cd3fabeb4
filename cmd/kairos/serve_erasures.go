package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/offline/erasurelog"
)

// addErasureLog makes erasures reach every replica's archive when the
// store is shared (Redis) or the cluster's history is on: the engine's
// eraser logs each erased id in the store's erasure log (the one the
// history archiver applies to the cold tier) and records it in this
// replica's archive at once; with Redis and a local archive, a follower
// records the erasures of the other replicas in it, catching up now,
// before the engine consumes, then every second (Run).
func (a *app) addErasureLog(ctx context.Context, w *wiring) error {
	er := erasurelog.Eraser{Logs: a.store, Archive: a.archive}
	var arc engine.Archiver
	if a.archive != nil {
		arc = a.archive
	}
	a.engine.SetArchive(arc, er)
	if a.archive == nil || a.cfg.RedisURL == "" {
		return nil
	}
	f, err := erasurelog.NewFollower(erasurelog.Config{Logs: a.store, Archive: a.archive, Logger: a.log})
	if err != nil {
		return fmt.Errorf("erasure log: %w", err)
	}
	if n, err := f.CatchUp(ctx); err != nil {
		a.log.LogAttrs(ctx, slog.LevelWarn, "erasures of the cluster not recorded yet (retried in the background)", slog.String("error", err.Error()))
	} else if n > 0 {
		a.log.LogAttrs(ctx, slog.LevelInfo, "caught up with the erasure log", slog.Int("entries", n))
	}
	a.erasures = f
	w.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "kairos_archive_erasure_log_position",
		Help: "Sequence number (the request time, Unix ms) of the last entry of the cluster's erasure log recorded in this replica's archive."},
		func() float64 { return float64(f.Stats().Position) }))
	return nil
}
