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
	"time"

	"github.com/kairoshq/kairos/api"
	"github.com/kairoshq/kairos/api/demo"
	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/experiments"
	"github.com/kairoshq/kairos/engine/promo"
	"github.com/kairoshq/kairos/engine/stats"
	"github.com/kairoshq/kairos/offline"
	"github.com/kairoshq/kairos/offline/archive"
	"github.com/kairoshq/kairos/signals"
	"github.com/kairoshq/kairos/signals/membus"
	"github.com/kairoshq/kairos/signals/rabbitmq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"
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
	cfg     serveConfig
	log     *slog.Logger
	store   engine.Store
	bus     signals.Bus
	engine  *engine.Engine
	archive *archive.Archive    // nil when archiving is off
	promo   *promo.Engine       // offers, campaigns, rules, promotions (serve_promo.go)
	exps    *experiments.Engine // A/B experiments and bandits (serve_experiments.go)
	demo    *demo.Shop          // the demo shop of --demo (serve_demo.go)
	retrain *retrainer          // scheduled retrains, model panel (serve_retrain.go)
	api     *api.Server
	keys    appKeys
	// listener, when set (tests), is served instead of listening on
	// cfg.Addr.
	listener net.Listener
}

// newApp opens the store and the bus, loads the engine and builds the HTTP
// server. Nothing listens or consumes until Run.
func newApp(ctx context.Context, cfg serveConfig, stdout, stderr io.Writer) (_ *app, err error) {
	a := &app{cfg: cfg, log: newLogger(cfg, stderr)}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	if err := privateDataDir(cfg, a.log); err != nil {
		return nil, err
	}
	if a.store, err = openStore(ctx, cfg, a.log); err != nil {
		return nil, err
	}
	if a.bus, err = openBus(ctx, cfg, a.log); err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), newDependencyCollector(a))
	ecfg := engine.Config{
		Params: cfg.Params, Weights: cfg.Weights, SessionGap: cfg.SessionGap, Replica: cfg.Replica,
		Index: engine.IndexConfig{Disabled: !cfg.Approx}, Blend: cfg.Blend, BlendBelow: cfg.BlendBelow, Logger: a.log, Registerer: reg,
	}
	if a.engine, err = engine.New(ctx, ecfg, a.store, a.bus); err != nil {
		return nil, err
	}
	if cfg.ArchiveDir != "off" {
		sync, _ := archive.ParseSyncPolicy(cfg.ArchiveSync)
		if a.archive, err = archive.Open(ctx, archive.Options{Dir: cfg.ArchiveDir, Sync: sync, Retention: cfg.ArchiveRetention, Logger: a.log}); err != nil {
			return nil, fmt.Errorf("archive: %w", err)
		}
		a.engine.SetArchive(a.archive, a.archive)
		a.engine.SetTail(offline.Tail{Archive: a.archive})
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
	a.retrain = newRetrainer(a, reg)
	deps := api.Deps{Publisher: a.bus, Recommender: a.engine, Catalog: a.engine, Checker: a.engine, Eraser: a.engine, Trending: a.engine, Model: a.retrain}
	if ss, ok := a.store.(stats.Store); ok { // both stores keep the event counters
		counters, err := stats.New(ss, stats.Config{Retention: cfg.StatsRetention, Logger: a.log, Registerer: reg})
		if err != nil {
			return nil, fmt.Errorf("stats: %w", err)
		}
		a.engine.AddReactor(counters)
		deps.Stats = counters
	}
	if err := a.addExperiments(ctx, reg, &deps); err != nil {
		return nil, err
	}
	if err := a.addPromo(ctx, reg, &deps); err != nil {
		return nil, err
	}
	if err := a.addAttention(reg, &deps); err != nil {
		return nil, err
	}
	if err := a.addDemo(&acfg, &deps); err != nil {
		return nil, err
	}
	if a.api, err = api.New(acfg, deps); err != nil {
		return nil, err
	}
	a.log.LogAttrs(ctx, slog.LevelInfo, "identity verification", slog.String("mode", string(acfg.Defaults().IdentityVerification)),
		slog.Int("secrets", len(acfg.IdentitySecrets)))
	return a, nil
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

// openBus returns RabbitMQ when configured, else the in-process bus.
func openBus(ctx context.Context, cfg serveConfig, log *slog.Logger) (signals.Bus, error) {
	if cfg.AMQPURL == "" {
		log.LogAttrs(ctx, slog.LevelInfo, "bus: in-process (set KAIROS_AMQP_URL for RabbitMQ)")
		return membus.New(membus.Options{Logger: log}), nil
	}
	b, err := rabbitmq.Dial(ctx, rabbitmq.Config{URL: cfg.AMQPURL, Prefix: cfg.Namespace, Replica: cfg.Replica, Prefetch: cfg.Prefetch, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("rabbitmq: %w", err)
	}
	return b, nil
}

// Run serves HTTP and runs the engine until ctx is done, then shuts down in
// order: the HTTP server stops accepting and finishes its in-flight
// requests (their events are published or refused), then the engine
// finishes and acknowledges its in-flight batch and saves its state.
//
// It listens before anything starts, so that a busy address fails at once
// with the listen error ("listen tcp …: address already in use").
func (a *app) Run(ctx context.Context) error {
	ln := a.listener
	if ln == nil {
		var lc net.ListenConfig
		var err error
		if ln, err = lc.Listen(ctx, "tcp", a.cfg.Addr); err != nil {
			return fmt.Errorf("api: %w", err)
		}
	}
	engineCtx, stopEngine := context.WithCancel(context.WithoutCancel(ctx))
	defer stopEngine()
	g := new(errgroup.Group)
	engineDone := make(chan error, 1)
	go func() { engineDone <- a.engine.Run(engineCtx) }()
	defer a.runPromo(engineCtx)() // ends with the engine (engineCtx is cancelled before Run returns)
	defer a.runExperiments(engineCtx)()
	a.seedDemo(ctx) // --demo: before serving, with the engine consuming
	if a.cfg.RetrainEvery > 0 {
		go a.retrain.loop(engineCtx)
	}
	if a.cfg.PprofAddr != "" {
		go servePprof(engineCtx, a.cfg.PprofAddr, a.log)
	}
	g.Go(func() error {
		err := a.api.ServeListener(ctx, ln)
		stopEngine()
		return err
	})
	select {
	case err := <-engineDone:
		// The engine stopped on its own: a fatal error. Stop serving.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = a.api.Shutdown(sctx)
		herr := g.Wait()
		if err == nil && herr != nil {
			return herr // the HTTP server failed and stopped the engine
		}
		if err == nil {
			err = errors.New("engine stopped")
		}
		return fmt.Errorf("engine: %w", err)
	case <-ctx.Done():
	}
	herr := g.Wait()
	eerr := <-engineDone
	a.log.LogAttrs(context.WithoutCancel(ctx), slog.LevelInfo, "stopped")
	return errors.Join(herr, eerr)
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
