package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kairoshq/kairos/api"
	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/model"
	"github.com/kairoshq/kairos/offline"
)

// storeBlobs adapts engine.Store to offline.BlobStore.
type storeBlobs struct{ store engine.Store }

func (s storeBlobs) PutBlob(ctx context.Context, name string, b []byte) error {
	return s.store.PutBlob(ctx, name, b)
}

func (s storeBlobs) GetBlob(ctx context.Context, name string) ([]byte, error) {
	b, err := s.store.Blob(ctx, name)
	if errors.Is(err, engine.ErrNotFound) {
		return nil, nil
	}
	return b, err
}

// liveSnapshot reads the published snapshot (nil when none).
func liveSnapshot(ctx context.Context, store engine.Store) (*model.Snapshot, error) {
	b, err := storeBlobs{store}.GetBlob(ctx, offline.ModelBlob)
	if err != nil || b == nil {
		return nil, err
	}
	snap, err := model.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("the published snapshot: %w", err)
	}
	return snap, nil
}

// retrainMetrics are the /metrics of the scheduled retrains (the model's
// generation and swaps are the engine's: kairos_engine_model_generation,
// kairos_engine_model_swaps_total).
type retrainMetrics struct {
	runs  *prometheus.CounterVec // decision
	last  prometheus.Gauge
	wall  prometheus.Gauge
	ndcg  *prometheus.GaugeVec // model
	t     *prometheus.GaugeVec // against
	users prometheus.Gauge
}

func newRetrainMetrics(reg prometheus.Registerer) *retrainMetrics {
	m := &retrainMetrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kairos_retrain_runs_total",
			Help: "Scheduled retrains by decision: published, refused_worse (significantly worse than the live model), refused_popularity (not better than popularity), refused_few_users, failed."}, []string{"decision"}),
		last: prometheus.NewGauge(prometheus.GaugeOpts{Name: "kairos_retrain_last_timestamp_seconds", Help: "End of the last scheduled retrain (unix seconds)."}),
		wall: prometheus.NewGauge(prometheus.GaugeOpts{Name: "kairos_retrain_last_duration_seconds", Help: "Wall time of the last scheduled retrain, search included."}),
		ndcg: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "kairos_retrain_last_ndcg10",
			Help: "NDCG@10 on the last retrain's held-out tail, by model: retrained, live (as of the tail's start), popularity."}, []string{"model"}),
		t: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "kairos_retrain_last_paired_t",
			Help: "Paired per-user t statistic of the retrained model's NDCG@10 against live and popularity on the last tail."}, []string{"against"}),
		users: prometheus.NewGauge(prometheus.GaugeOpts{Name: "kairos_retrain_last_users", Help: "Users compared on the last retrain's tail."}),
	}
	for _, d := range []offline.Decision{offline.DecisionPublished, offline.DecisionWorse, offline.DecisionNotBetterThanPopularity, offline.DecisionTooFewUsers, offline.DecisionFailed} {
		m.runs.WithLabelValues(d.Label())
	}
	reg.MustRegister(m.runs, m.last, m.wall, m.ndcg, m.t, m.users)
	return m
}

func (m *retrainMetrics) observe(res *offline.RunResult, err error) {
	m.last.SetToCurrentTime()
	if err != nil {
		m.runs.WithLabelValues(offline.DecisionFailed.Label()).Inc()
		return
	}
	m.runs.WithLabelValues(res.Decision.Label()).Inc()
	m.wall.Set(res.WallS)
	m.ndcg.Reset()
	for _, ev := range res.Evaluations {
		m.ndcg.WithLabelValues(ev.Model).Set(ev.NDCG10)
		if ev.Model == "retrained" {
			m.users.Set(float64(ev.Users))
		}
	}
	m.t.Reset()
	for _, c := range res.Comparisons {
		m.t.WithLabelValues(c.B).Set(c.T)
	}
}

// retrainer runs the scheduled retrains of kairos serve and describes the
// model and the retrains for the dashboard.
type retrainer struct {
	a      *app
	runner *offline.Runner
	met    *retrainMetrics
}

func newRetrainer(a *app, reg prometheus.Registerer) *retrainer {
	r := &retrainer{a: a, met: newRetrainMetrics(reg)}
	params := a.engine.Online().Params()
	if a.cfg.FitHalfLife {
		// The configured decay is tried against none at every retrain,
		// whatever the live model (an earlier pick) has.
		params.HalfLife = a.cfg.Params.HalfLife
	}
	if a.cfg.FitAlpha {
		// Likewise α: the fit tries half and double the configured one,
		// not the last pick's (which would drift).
		params.Alpha = a.cfg.Params.Alpha
	}
	r.runner = &offline.Runner{
		Source: a.archive, Config: offline.RetrainConfig{Params: params, FitItemLambda: a.cfg.FitItemLambda, FitHalfLife: a.cfg.FitHalfLife, FitAlpha: a.cfg.FitAlpha,
			NoItemNeighbours: !a.cfg.ItemNeighbours, GuardUsers: a.cfg.RetrainGuardUsers},
		Window: a.cfg.RetrainWindow, TuneBudget: a.cfg.RetrainTuneBudget, MinUsers: a.cfg.RetrainMinUsers,
		Log:  &offline.Log{Store: storeBlobs{a.store}},
		Live: r.live,
		Publish: func(ctx context.Context, snap *model.Snapshot) error {
			return offline.Publish(ctx, a.store, a.bus, snap)
		},
	}
	if h := a.cfg.History; h.Stream {
		// The cluster's history, not this replica's share of it.
		r.runner.Config.HistoryCut = true
		r.runner.OpenSource = func(context.Context) (offline.RecordSource, error) {
			hr, _, err := openHistory(h.Dir, a.cfg.AMQPURL, a.cfg.Namespace, a.store, a.log)
			return hr, err
		}
	}
	return r
}

// live returns the live model: its items now, and the published snapshot
// it was loaded from (the live model as of its cut-off).
func (r *retrainer) live(ctx context.Context) (*offline.LiveModel, error) {
	p, ids, items := r.a.engine.LiveItems()
	snap, err := liveSnapshot(ctx, r.a.store)
	if err != nil {
		return nil, err
	}
	if snap != nil && snap.Meta.Version != r.a.engine.ModelVersion() {
		snap = nil // published but not (yet) the one serving
	}
	return &offline.LiveModel{Params: p, Blend: r.a.engine.Blend(), ItemIDs: ids, Items: items, Snapshot: snap}, nil
}

// loop retrains every cfg.RetrainEvery and publishes the result (the
// engines hot-swap it) when the guard lets it.
func (r *retrainer) loop(ctx context.Context) {
	t := time.NewTicker(r.a.cfg.RetrainEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r.runner.Config.Params = r.a.engine.Online().Params()
		res, err := r.runner.Run(ctx, false, false)
		if ctx.Err() != nil {
			return
		}
		r.met.observe(res, err)
		if err != nil {
			r.a.log.LogAttrs(ctx, slog.LevelError, "scheduled retrain failed", slog.Any("err", err))
			continue
		}
		attrs := []slog.Attr{slog.String("decision", string(res.Decision)), slog.String("reason", res.Reason),
			slog.Int("events", res.Events), slog.Float64("wall_s", res.WallS), slog.Any("params", res.Params),
			slog.Float64("prior", res.Blend.Prior), slog.Float64("kappa", res.Blend.Kappa)}
		for _, ev := range res.Evaluations {
			attrs = append(attrs, slog.Float64(ev.Model+"_ndcg10", ev.NDCG10))
		}
		level := slog.LevelInfo
		if res.Decision != offline.DecisionPublished {
			level = slog.LevelWarn
		}
		r.a.log.LogAttrs(ctx, level, "scheduled retrain", attrs...)
	}
}

// DashboardModel describes the live model and the last n retrains for GET
// /v1/dashboard/summary.
func (r *retrainer) DashboardModel(ctx context.Context, n int) (api.DashboardModel, error) {
	e := r.a.engine
	b := e.Blend()
	out := api.DashboardModel{Generation: e.ModelGeneration(), Version: e.ModelVersion(), Params: e.Online().Params(), Blend: b,
		RetrainEvery: r.a.cfg.RetrainEvery.String(), Retrains: []api.DashboardRetrain{}}
	if r.a.cfg.RetrainEvery == 0 {
		out.RetrainEvery = ""
	}
	reps, err := r.runner.Log.Reports(ctx)
	if err != nil {
		out.Error = err.Error()
		return out, nil
	}
	for j := len(reps) - 1; j >= 0 && len(out.Retrains) < n; j-- {
		out.Retrains = append(out.Retrains, dashboardRetrain(reps[j]))
	}
	for _, rep := range reps {
		if rep.Decision != offline.DecisionPublished && rep.Decision != offline.DecisionDryRun {
			out.Refusals++
		}
	}
	return out, nil
}

func dashboardRetrain(rep offline.Report) api.DashboardRetrain {
	d := api.DashboardRetrain{Time: rep.Time, Decision: string(rep.Decision), Label: rep.Decision.Label(), Reason: rep.Reason, Error: rep.Error,
		Reference: rep.Reference, Users: rep.Users, Events: rep.Events, WallS: rep.WallS, Figures: []api.DashboardFigures{}}
	if rep.Params != nil {
		d.Params = rep.Params
	}
	if rep.Blend != nil {
		d.Blend = rep.Blend
	}
	if rep.Search != nil {
		d.Trials, d.SearchS, d.KeptBase = rep.Search.Trials, rep.Search.SearchS, rep.Search.KeptBase
		d.Tuned = rep.Search.Stopped == "budget" || rep.Search.Stopped == "complete"
	}
	if rep.BlendConfirm != nil {
		d.BlendConfirm = rep.BlendConfirm
	}
	for _, ev := range rep.Evaluations {
		d.Figures = append(d.Figures, api.DashboardFigures{Model: ev.Model, Users: ev.Users, HR10: ev.HR10, NDCG10: ev.NDCG10, Recall50: ev.Recall50})
	}
	for _, c := range rep.Comparisons {
		t := c.T
		switch c.B {
		case "live":
			d.TLive = &t
		case "popularity":
			d.TPopularity = &t
		}
	}
	return d
}
