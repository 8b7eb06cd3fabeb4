package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"path/filepath"
	"runtime/debug"
	"sync"

	"github.com/kairoshq/kairos/api"
	"github.com/kairoshq/kairos/api/demo"
	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/experiments"
	"github.com/kairoshq/kairos/engine/holdout"
	"github.com/kairoshq/kairos/engine/membership"
	"github.com/kairoshq/kairos/engine/promo"
	"github.com/kairoshq/kairos/engine/stats"
	"github.com/kairoshq/kairos/internal/gcfloor"
	"github.com/kairoshq/kairos/offline"
	"github.com/kairoshq/kairos/offline/archive"
	"github.com/kairoshq/kairos/offline/erasurelog"
	"github.com/kairoshq/kairos/offline/history"
	"github.com/kairoshq/kairos/signals"
	"github.com/kairoshq/kairos/signals/membus"
	"github.com/kairoshq/kairos/signals/rabbitmq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

func init() {
	register(command{
		name:    "serve",
		summary: "run the Kairos server: HTTP API, engine, embedded or RabbitMQ/Redis back-ends",
		run:     runServe,
	})
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseServeConfig(args, stderr)
	if err != nil {
		return err
	}
	if cfg.Tenants.AdminKey != "" {
		return runTenantServe(ctx, cfg, stderr) // serve_tenants.go
	}
	a, err := newApp(ctx, cfg, stdout, stderr)
	if err != nil {
		return err
	}
	defer a.Close()
	return a.Run(ctx)
}

// app is a running Kairos server: the wiring of `kairos serve`, also used
// by the end-to-end tests.
type app struct {
	cfg      serveConfig
	log      *slog.Logger
	store    engine.Store
	bus      signals.Bus
	engine   *engine.Engine
	archive  *archive.Archive     // nil when archiving is off
	promo    *promo.Engine        // offers, campaigns, rules, promotions (serve_promo.go)
	exps     *experiments.Engine  // A/B experiments and bandits (serve_experiments.go)
	holdout  *holdout.Holdout     // the personalization holdout, when on (serve_demo.go)
	demo     *demo.Shop           // the demo shop of --demo (serve_demo.go)
	retrain  *retrainer           // scheduled retrains, model panel (serve_retrain.go)
	archiver *history.Archiver    // the cluster history's archiver candidate (serve_history.go)
	erasures *erasurelog.Follower // records the cluster's erasures in the local archive (serve_erasures.go)
	api      *api.Server
	keys     appKeys
	// listener, when set (tests), is served instead of listening on
	// cfg.Addr.
	listener net.Listener
}

// newApp opens the store and the bus, loads the engine and builds the HTTP
// server. Nothing listens or consumes until Run.
func newApp(ctx context.Context, cfg serveConfig, stdout, stderr io.Writer) (_ *app, err error) {
	a := &app{cfg: cfg, log: newLogger(cfg, stderr)}
	if cfg.Tenants.ID != "" {
		a.log = a.log.With(slog.String("tenant", cfg.Tenants.ID))
	}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	if err := privateDataDir(cfg, a.log); err != nil {
		return nil, err
	}
	if cfg.Tenants.ID == "" { // a tenant's own server runs under <data-dir>/tenants
		if err := separateDeployments(cfg, false); err != nil {
			return nil, err
		}
	}
	// Loading a large catalog allocates its tables in a few big steps
	// (0.7 GB at 1M items × 64) and makes almost no garbage: a collection
	// at every doubling of the heap would only re-scan the row maps (a
	// quarter of the start's CPU at 1M items). So with the embedded store
	// the collector is off until the engine is loaded, and collects once
	// then (below). (Redis's scan of the item states makes garbage: not
	// there.)
	restoreGC := func() {}
	if cfg.Tenants.ID == "" && cfg.RedisURL == "" {
		gc := debug.SetGCPercent(-1)
		restoreGC = sync.OnceFunc(func() { debug.SetGCPercent(gc) })
	}
	defer func() { restoreGC() }()
	if a.store, err = openStore(ctx, cfg, a.log); err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	if a.bus, err = openBus(ctx, cfg, a.store, reg, a.log); err != nil {
		return nil, err
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), newDependencyCollector(a))
	ecfg := engine.Config{
		Params: cfg.Params, Weights: cfg.Weights, SessionGap: cfg.SessionGap, TrendingHalfLife: cfg.TrendingHalfLife, Replica: cfg.Replica,
		Index: engine.IndexConfig{Disabled: !cfg.Approx, Lists: cfg.IndexLists, Probe: cfg.IndexProbe, Shortlist: cfg.IndexShortlist}, Blend: cfg.Blend, BlendBelow: cfg.BlendBelow, Logger: a.log, Registerer: reg,
	}
	if a.engine, err = engine.New(ctx, ecfg, a.store, a.bus); err != nil {
		return nil, err
	}
	// Collect once after the load (with the collector off during it,
	// above) and give the load's garbage back now rather than holding it
	// as resident memory until the heap regrows. Not for a tenant's app
	// (multi-tenant mode): a small catalog, and a whole-process
	// collection on every tenant load.
	if cfg.Tenants.ID == "" {
		restoreGC()
		debug.FreeOSMemory()
		gcfloor.Set(int64(cfg.GCMinHeapMB) << 20)
	}
	if a.keys, err = a.loadKeys(stdout); err != nil {
		return nil, err
	}
	acfg := api.Config{
		Addr: cfg.Addr, SecretKeys: a.keys.secret, PublishableKeys: a.keys.publishable, AllowedOrigins: cfg.AllowedOrigins,
		SecretRate:      api.RateLimit{Rate: cfg.SecretRate, Burst: int(math.Max(1, 2*cfg.SecretRate))},
		PublishableRate: api.RateLimit{Rate: cfg.PublicRate, Burst: int(math.Max(1, 5*cfg.PublicRate))},
		RequireOrigin:   cfg.RequireOrigin, TrustedProxies: cfg.TrustedProxies, MetricsPublic: cfg.MetricsPublic,
		MaxStreams: cfg.MaxStreams, MaxVisitorStreams: cfg.MaxStreamsPerVisitor,
		IdentitySecrets: cfg.IdentitySecrets, IdentityVerification: cfg.IdentityVerification,
		Logger: a.log, Registry: reg,
	}
	acfg.MaxEventRequests = cfg.MaxEventRequests
	deps := api.Deps{Publisher: a.bus, Recommender: a.engine, Catalog: a.engine, Checker: a.engine, Eraser: a.engine, Trending: a.engine, Applier: a.engine}
	w := &wiring{reg: reg, api: &acfg, deps: &deps}
	for _, f := range enabled(cfg) {
		if f.add == nil {
			continue
		}
		if err := f.add(a, ctx, w); err != nil {
			return nil, err
		}
	}
	if a.api, err = api.New(acfg, deps); err != nil {
		return nil, err
	}
	a.log.LogAttrs(ctx, slog.LevelInfo, "identity verification", slog.String("mode", string(acfg.Defaults().IdentityVerification)),
		slog.Int("secrets", len(acfg.IdentitySecrets)))
	return a, nil
}

// addArchive opens the event archive (--archive-dir): the engine appends
// every consumed event to it and replays its tail after a model swap.
func (a *app) addArchive(ctx context.Context, _ *wiring) error {
	sync, _ := archive.ParseSyncPolicy(a.cfg.ArchiveSync)
	var err error
	if a.archive, err = archive.Open(ctx, archive.Options{Dir: a.cfg.ArchiveDir, Sync: sync, Retention: a.cfg.ArchiveRetention, Logger: a.log}); err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	a.engine.SetArchive(a.archive, a.archive)
	a.engine.SetTail(offline.Tail{Archive: a.archive})
	return nil
}

// addRetrain builds the retrainer (scheduled retrains from the archive,
// the dashboard's model panel).
func (a *app) addRetrain(_ context.Context, w *wiring) error {
	a.retrain = newRetrainer(a, w.reg)
	w.deps.Model = a.retrain
	return nil
}

// addStats creates the event counters (engine/stats), a reactor of the
// engine, and gives them to the API.
func (a *app) addStats(_ context.Context, w *wiring) error {
	counters, err := stats.New(stats.NewStore(a.store), stats.Config{Retention: a.cfg.StatsRetention, FlushEvery: a.cfg.StatsFlush, Logger: a.log, Registerer: w.reg})
	if err != nil {
		return fmt.Errorf("stats: %w", err)
	}
	a.engine.AddReactor(counters)
	w.deps.Stats = counters
	return nil
}

// appKeys are the keys the server accepts.
type appKeys struct{ publishable, secret []string }

// loadKeys returns the configured keys, or the data dir's generated pair
// (created and printed once on first start).
func (a *app) loadKeys(stdout io.Writer) (appKeys, error) {
	if len(a.cfg.SecretKeys) > 0 {
		return appKeys{a.cfg.PublishableKeys, a.cfg.SecretKeys}, nil
	}
	k, created, err := api.LoadOrCreateKeys(a.cfg.DataDir)
	if err != nil {
		return appKeys{}, fmt.Errorf("keys: %w", err)
	}
	if created {
		printKeys(stdout, filepath.Join(a.cfg.DataDir, api.KeysFile), k)
	}
	return appKeys{[]string{k.Publishable}, []string{k.Secret}}, nil
}

// printKeys tells a first start's generated keys, with a line to paste
// into a shell: the README's examples read $PK and $SK. Generated keys are
// URL-safe base64 and need no quoting.
func printKeys(w io.Writer, path string, k api.Keys) {
	fmt.Fprintf(w, "Generated API keys (stored in %s; shown once):\n  publishable: %s\n  secret:      %s\n", path, k.Publishable, k.Secret)
	fmt.Fprintf(w, "For the README's examples, paste into your shell:\n  export PK=%s SK=%s\n", k.Publishable, k.Secret)
}

// openBus returns RabbitMQ when configured, else the in-process bus. It
// routes events by resolved identity (the links in store), and with
// partitions the replicas share them by leases in store (their gauges
// registered with reg).
func openBus(ctx context.Context, cfg serveConfig, store engine.Store, reg prometheus.Registerer, log *slog.Logger) (signals.Bus, error) {
	if cfg.Tenants.shared != nil { // a tenant's app: the bus all tenants share
		return cfg.Tenants.shared.view(cfg.Tenants.ID, engine.NewRouter(store, log)), nil
	}
	if cfg.AMQPURL == "" {
		log.LogAttrs(ctx, slog.LevelInfo, "bus: in-process (set KAIROS_AMQP_URL for RabbitMQ)")
		return membus.New(membus.Options{Logger: log}), nil
	}
	rcfg := rabbitmq.Config{URL: cfg.AMQPURL, Prefix: cfg.Namespace, Replica: cfg.Replica, QueueType: cfg.QueueType,
		Partitions: cfg.Partitions, Router: engine.NewRouter(store, log), Prefetch: cfg.Prefetch, Logger: log,
		Stream: cfg.History.streamConfig()}
	if cfg.Partitions > 0 {
		if err := leasePartitions(ctx, &rcfg, cfg, store, reg, log); err != nil {
			return nil, err
		}
	}
	b, err := rabbitmq.Dial(ctx, rcfg)
	if err != nil {
		return nil, fmt.Errorf("rabbitmq: %w", err)
	}
	return b, nil
}

// Run serves HTTP and runs the engine and every background loop until ctx
// is done or one of them fails. The lifecycle of `kairos serve`:
//
// Start. newApp has opened the store and the bus, loaded the engine's
// state and built every feature; nothing runs yet. Run listens on the
// HTTP address first, so that a busy address fails at once with the listen
// error ("api: listen tcp …: address already in use"), then starts every
// component in one errgroup (lifecycle):
//
//   - stage 0, http: seeds the demo shop (--demo), then serves the API.
//   - stage 1, engine: consumes events, peer updates and model
//     announcements, maintains the index, saves its state periodically;
//     retrain: the scheduled retrains (--retrain-every); pprof: the
//     profiler (--pprof-addr).
//   - stage 2, promo: the promo engine's definition reloads; experiments:
//     the experiments engine's reloads, bandit re-weighting and queued
//     exposures.
//
// Stop. When ctx is done (SIGINT/SIGTERM) or any component fails (its
// error, named after it, is logged and returned), the stages stop in
// order, each after the previous has fully returned:
//
//  1. HTTP stops accepting and drains its in-flight requests (their events
//     are published or refused);
//  2. the engine stops its consumers, finishes and acknowledges its
//     in-flight batch and saves its state a last time; the retrain loop
//     and the profiler stop;
//  3. the promo and experiments loops stop (publishing queued exposures).
//
// Close (called after Run) then closes the bus, the archive and the store.
func (a *app) Run(ctx context.Context) error {
	ln := a.listener
	if ln == nil {
		var lc net.ListenConfig
		var err error
		if ln, err = lc.Listen(ctx, "tcp", a.cfg.Addr); err != nil {
			return fmt.Errorf("api: %w", err)
		}
	}
	err := a.lifecycle(ln).Run(ctx)
	a.log.LogAttrs(context.WithoutCancel(ctx), slog.LevelInfo, "stopped")
	return err
}

// lifecycle returns the components of Run, in their stop order.
func (a *app) lifecycle(ln net.Listener) *lifecycle {
	l := &lifecycle{log: a.log}
	l.stage(component{"http", func(ctx context.Context) error {
		a.seedDemo(ctx) // --demo: before serving, with the engine consuming
		return a.api.ServeListener(ctx, ln)
	}})
	var retrain, pprof, archiver, erasures component
	if a.cfg.RetrainEvery > 0 {
		retrain = component{"retrain", func(ctx context.Context) error { a.retrain.loop(ctx); return nil }}
	}
	if a.cfg.PprofAddr != "" {
		pprof = component{"pprof", func(ctx context.Context) error { return servePprof(ctx, a.cfg.PprofAddr, a.log) }}
	}
	if a.archiver != nil {
		archiver = component{"archiver", a.archiver.Run}
	}
	if a.erasures != nil {
		erasures = component{"erasure log", a.erasures.Run}
	}
	l.stage(component{"engine", a.engine.Run}, retrain, pprof, archiver, erasures)
	var pr, xs component
	if a.promo != nil {
		pr = component{"promo", func(ctx context.Context) error { a.promo.Run(ctx); return nil }}
	}
	if a.exps != nil {
		xs = component{"experiments", a.exps.Run}
	}
	l.stage(pr, xs)
	return l
}

// Close releases the bus, the archive and the store.
func (a *app) Close() error {
	var errs []error
	if a.listener != nil {
		a.listener.Close() // Run's server closed it already, unless Run never ran
	}
	if a.bus != nil {
		errs = append(errs, a.bus.Close())
	}
	if a.archive != nil {
		errs = append(errs, a.archive.Close())
	}
	if a.store != nil {
		errs = append(errs, a.store.Close())
	}
	return errors.Join(errs...)
}

// leasePartitions makes the replicas share rcfg's partitions through
// leases in store (one active consumer per partition); it refuses to
// start beside live replicas that consume another number of partitions.
// reg (may be nil) receives the membership's gauges.
func leasePartitions(ctx context.Context, rcfg *rabbitmq.Config, cfg serveConfig, store engine.Store, reg prometheus.Registerer, log *slog.Logger) error {
	m, err := membership.New(membership.Config{Maps: store, Replica: cfg.Replica, TTL: cfg.LeaseTTL, Logger: log, Registerer: reg})
	if err != nil {
		return fmt.Errorf("partition leases: %w", err)
	}
	if err := m.Check(ctx, rcfg.Partitions); err != nil {
		return fmt.Errorf("partition leases: %w", err)
	}
	rcfg.Assigner = m
	return nil
}
