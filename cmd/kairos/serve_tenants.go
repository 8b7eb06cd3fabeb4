package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/kairoshq/kairos/api"
	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/storage"
	"github.com/kairoshq/kairos/internal/gcfloor"
	"github.com/kairoshq/kairos/internal/redisconn"
	"github.com/kairoshq/kairos/signals"
	"github.com/kairoshq/kairos/signals/rabbitmq"
	"github.com/kairoshq/kairos/tenant"
)

// tenantConfig is the multi-tenant part of serveConfig (package tenant).
type tenantConfig struct {
	// AdminKey turns multi-tenant mode on: it authorizes the tenant API
	// (/v1/tenants) and every other key belongs to a tenant.
	AdminKey string
	// MaxLoaded is the most tenants whose server is loaded at once; the
	// least recently used idle one is unloaded beyond it.
	MaxLoaded int
	// MetricsTop is the number of tenants with their own metrics label.
	MetricsTop int
	// Partitions is the number of RabbitMQ partition queues all tenants
	// share (<namespace>.tenants.p.<i>); RetryDelay is how long a failing
	// tenant's events wait in the retry queue before they are tried again.
	Partitions int
	RetryDelay time.Duration
	// MaxInFlight bounds one tenant's requests served at once.
	MaxInFlight int
	// KeyGrace is how long a tenant's old keys stay valid after a
	// rotation that does not say.
	KeyGrace time.Duration
	// ID is set on a tenant's own configuration (the app of one tenant):
	// its id, added to its logs.
	ID string
	// shared, on a tenant's own configuration with RabbitMQ, is the bus
	// every tenant shares (its app's bus is a view of it).
	shared *sharedBus
}

func (t *tenantConfig) register(e *envFlags) {
	e.str(&t.AdminKey, "admin-key", "", "multi-tenant mode: the admin key of the tenant API (/v1/tenants, at least 16 characters); every other key then belongs to one tenant (empty: one site)")
	e.int(&t.MaxLoaded, "tenant-max-loaded", 64, "multi-tenant mode: tenants loaded at once; beyond, the least recently used idle tenant is unloaded (its state saved) and reloaded on its next request (0: no bound)")
	e.int(&t.MetricsTop, "tenant-metrics-top", 100, "multi-tenant mode: tenants with their own label in the per-tenant metrics (the others share \"other\")")
	e.int(&t.MaxInFlight, "tenant-max-in-flight", 64, "multi-tenant mode: requests of one tenant served at once (promotion streams excepted); beyond, 429 at once, so that one tenant's flood cannot take every worker (0: no bound)")
	e.dur(&t.KeyGrace, "tenant-key-grace", 0, "multi-tenant mode: how long a tenant's old keys stay valid after a rotation that does not give grace_seconds (0: they stop at once)")
	e.int(&t.Partitions, "tenant-partitions", defaultPartitions, "multi-tenant mode with RabbitMQ: partition queues shared by all tenants, <namespace>.tenants.p.<i> (routing key <tenant>/<visitor>), leased among the replicas")
	e.dur(&t.RetryDelay, "tenant-retry-delay", 2*time.Second, "multi-tenant mode with RabbitMQ: a tenant whose events fail (its server does not load, its engine fails) gets them back after this delay, through <namespace>.tenants.events.retry, so that it holds up no other tenant")
}

// validate reports the problems of a multi-tenant configuration.
func (t tenantConfig) validate(c *serveConfig) []error {
	if t.AdminKey == "" {
		return nil
	}
	var errs []error
	if len(t.AdminKey) < 16 {
		errs = append(errs, errors.New("--admin-key: want at least 16 characters"))
	}
	if len(c.SecretKeys) > 0 {
		errs = append(errs, errors.New("--admin-key: the tenants have their own keys; remove --secret-key and --publishable-key"))
	}
	if c.Demo {
		errs = append(errs, errors.New("--admin-key: --demo serves one site; it is not available with tenants"))
	}
	if c.History.Stream {
		errs = append(errs, errors.New("--admin-key: --history-stream is not available with tenants yet (each tenant keeps its own archive)"))
	}
	if t.KeyGrace < 0 || t.KeyGrace > 90*24*time.Hour {
		errs = append(errs, fmt.Errorf("--tenant-key-grace %v outside [0, 90 days]", t.KeyGrace))
	}
	if t.MaxLoaded < 0 || t.MetricsTop < 0 || t.MaxInFlight < 0 {
		errs = append(errs, errors.New("--tenant-max-loaded, --tenant-metrics-top and --tenant-max-in-flight must be >= 0"))
	}
	if t.Partitions < 1 || t.Partitions > rabbitmq.MaxPartitions {
		errs = append(errs, fmt.Errorf("--tenant-partitions %d outside [1, %d]", t.Partitions, rabbitmq.MaxPartitions))
	}
	if t.RetryDelay <= 0 || t.RetryDelay > time.Hour {
		errs = append(errs, fmt.Errorf("--tenant-retry-delay %v outside (0, 1h]", t.RetryDelay))
	}
	if len(c.Namespace) > 64-len(".t.")-40 {
		errs = append(errs, fmt.Errorf("--namespace %q: at most 21 characters with tenants (tenant namespaces are <namespace>.t.<id>)", c.Namespace))
	}
	return errs
}

// queueLength is the experiments engine's exposure queue of a tenant's
// app: 256 (a preallocated buffer of 4096 events by default was the
// largest item of a small tenant's memory), 0 (the default) otherwise.
func (t tenantConfig) queueLength() int {
	if t.ID != "" {
		return 256
	}
	return 0
}

// tenantServer is `kairos serve` in multi-tenant mode: the tenant router
// on the deployment's store (the registry), and one app per loaded tenant.
type tenantServer struct {
	cfg    serveConfig
	log    *slog.Logger
	store  engine.Store
	router *tenant.Router
	loader *tenantLoader
	// shared is the bus all tenants share (RabbitMQ), dispatch its
	// consumer's handler; nil in embedded mode (each tenant has its
	// in-process bus).
	shared   *sharedBus
	dispatch *tenant.Dispatcher
	// listener, when set (tests), is served instead of listening on
	// cfg.Addr.
	listener net.Listener
}

func newTenantServer(ctx context.Context, cfg serveConfig, stderr io.Writer) (_ *tenantServer, err error) {
	s := &tenantServer{cfg: cfg, log: newLogger(cfg, stderr)}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if err := privateDataDir(cfg, s.log); err != nil {
		return nil, err
	}
	if err := separateDeployments(cfg, true); err != nil {
		return nil, err
	}
	gcfloor.Set(int64(cfg.GCMinHeapMB) << 20)
	if s.store, err = openStore(ctx, cfg, s.log); err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if cfg.AMQPURL != "" {
		if s.shared, err = dialSharedBus(ctx, cfg, s.store, s.log); err != nil {
			return nil, err
		}
	}
	s.loader = &tenantLoader{base: cfg, stderr: stderr, shared: s.shared}
	public, err := publicServer(cfg, s.log)
	if err != nil {
		return nil, err
	}
	s.router, err = tenant.NewRouter(tenant.Config{
		AdminKey: cfg.Tenants.AdminKey, Registry: tenant.NewRegistry(s.store, nil), Loader: s.loader,
		MaxLoaded: cfg.Tenants.MaxLoaded, MetricsTop: cfg.Tenants.MetricsTop, MaxInFlight: cfg.Tenants.MaxInFlight, KeyGrace: cfg.Tenants.KeyGrace, Counters: s.store, Ready: s.ready, Public: public,
		Registerer: reg, Gatherer: reg, Logger: s.log,
	})
	if err != nil {
		return nil, err
	}
	if s.shared != nil {
		if s.dispatch, err = s.router.Dispatcher(tenant.DispatcherConfig{Retrier: s.shared.bus, Healthy: s.ready}, reg); err != nil {
			return nil, err
		}
	}
	if err := s.router.Load(ctx); err != nil {
		return nil, fmt.Errorf("tenants: %w", err)
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "multi-tenant mode", slog.Int("max_loaded", cfg.Tenants.MaxLoaded))
	return s, nil
}

// ready reports whether the parts every tenant shares work: the
// deployment's store and, with RabbitMQ, the shared bus.
func (s *tenantServer) ready(ctx context.Context) error {
	if err := s.store.Ping(ctx); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if s.shared != nil {
		if err := s.shared.Ready(ctx); err != nil {
			return fmt.Errorf("bus: %w", err)
		}
	}
	return nil
}

// noDeps stands for the engine in publicServer: its methods are never
// called, since the public server only gets requests without a key, which
// it answers before any handler that needs a dependency (401 for every
// route but the public ones).
type noDeps struct {
	signals.Publisher
	api.Recommender
	api.Catalog
}

func (noDeps) Ready(context.Context) error { return nil }

// publicServer answers the requests without a key in multi-tenant mode:
// the tracker, the OpenAPI description, the dashboard's pages (which ask
// for a tenant's secret key), and 401 for the rest. Its own keys are
// random and never shown.
func publicServer(cfg serveConfig, log *slog.Logger) (http.Handler, error) {
	k, err := tenant.NewKeys()
	if err != nil {
		return nil, err
	}
	d := noDeps{}
	srv, err := api.New(api.Config{Addr: cfg.Addr, SecretKeys: []string{k.Secret}, PublishableKeys: []string{k.Publishable},
		TrustedProxies: cfg.TrustedProxies, Logger: log, Registry: prometheus.NewRegistry()},
		api.Deps{Publisher: d, Recommender: d, Catalog: d, Checker: d})
	if err != nil {
		return nil, fmt.Errorf("public server: %w", err)
	}
	return srv.Handler(), nil
}

// Run serves HTTP and the tenants until ctx is done: stage 0 the HTTP
// server (drains its requests), stage 1 the consumer of the shared
// partitions (with RabbitMQ: finishes its batch in flight), stage 2 the
// router's registry refresh, which unloads every tenant (each saving its
// state) when stopped.
func (s *tenantServer) Run(ctx context.Context) error {
	ln := s.listener
	if ln == nil {
		var lc net.ListenConfig
		var err error
		if ln, err = lc.Listen(ctx, "tcp", s.cfg.Addr); err != nil {
			return fmt.Errorf("api: %w", err)
		}
	}
	srv := &http.Server{Handler: s.router, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	l := &lifecycle{log: s.log}
	l.stage(component{"http", func(ctx context.Context) error {
		s.log.LogAttrs(ctx, slog.LevelInfo, "listening", slog.String("addr", ln.Addr().String()))
		errc := make(chan error, 1)
		go func() { errc <- srv.Serve(ln) }()
		select {
		case err := <-errc:
			return err
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			err := srv.Shutdown(sctx)
			<-errc
			return err
		}
	}})
	if s.shared != nil {
		l.stage(component{"consumer", func(ctx context.Context) error { return s.shared.run(ctx, s.dispatch.Handle) }})
	}
	l.stage(component{"tenants", s.router.Run})
	err := l.Run(ctx)
	s.log.LogAttrs(context.WithoutCancel(ctx), slog.LevelInfo, "stopped")
	return err
}

// Close releases the shared bus and the deployment's store.
func (s *tenantServer) Close() error {
	if s.listener != nil {
		s.listener.Close()
	}
	var errs []error
	if s.shared != nil {
		errs = append(errs, s.shared.Close())
	}
	if s.store != nil {
		errs = append(errs, s.store.Close())
	}
	return errors.Join(errs...)
}

// tenantLoader builds a tenant's app: kairos serve's own wiring on the
// tenant's namespace, data directory and keys.
type tenantLoader struct {
	base   serveConfig
	stderr io.Writer
	shared *sharedBus // nil: each tenant's own in-process bus
}

// tenantNamespace is the Redis key prefix and RabbitMQ name prefix of the
// tenant id.
func tenantNamespace(base, id string) string { return base + ".t." + id }

// config returns the configuration of t's app.
func (l *tenantLoader) config(t tenant.Tenant) serveConfig {
	c := l.base
	c.Tenants = tenantConfig{ID: t.ID, shared: l.shared}
	c.Namespace = tenantNamespace(l.base.Namespace, t.ID)
	c.DataDir = filepath.Join(l.base.DataDir, tenantsDir, t.ID)
	c.ArchiveDir = l.archiveDir(t.ID)
	c.SecretKeys, c.PublishableKeys = nil, nil
	for _, k := range t.ActiveKeys(time.Now()) { // the old keys during a rotation's grace too
		c.SecretKeys, c.PublishableKeys = append(c.SecretKeys, k.Secret), append(c.PublishableKeys, k.Publishable)
	}
	c.AllowedOrigins = t.AllowedOrigins
	c.PprofAddr = ""
	c.Demo = false
	return c
}

// archiveDir is the tenant id's archive: under its data dir when the
// deployment's archive is in the data dir (the default), else a
// subdirectory tenants/<id> of --archive-dir.
func (l *tenantLoader) archiveDir(id string) string {
	switch l.base.ArchiveDir {
	case "off":
		return "off"
	case filepath.Join(l.base.DataDir, "archive"):
		return filepath.Join(l.base.DataDir, tenantsDir, id, "archive")
	default:
		return filepath.Join(l.base.ArchiveDir, "tenants", id)
	}
}

// Load builds and starts t's app (without its HTTP listener: the router
// calls its handler).
func (l *tenantLoader) Load(ctx context.Context, t tenant.Tenant) (tenant.Instance, error) {
	a, err := newApp(ctx, l.config(t), io.Discard, l.stderr)
	if err != nil {
		return nil, err
	}
	lc := a.lifecycle(nil)
	lc.stages[0] = nil // the HTTP stage: the router serves a.api's handler
	rctx, cancel := context.WithCancel(context.Background())
	in := &tenantInstance{a: a, cancel: cancel, done: make(chan error, 1)}
	go func() {
		err := lc.Run(rctx)
		if rctx.Err() == nil {
			in.stopped.Store(true) // a component failed (logged by lifecycle)
		}
		in.done <- err
	}()
	return in, nil
}

// Purge erases the tenant id's data: its Redis keys, RabbitMQ queues and
// exchanges, data directory (embedded store, archive) and archive.
func (l *tenantLoader) Purge(ctx context.Context, id string) error {
	ns := tenantNamespace(l.base.Namespace, id)
	var errs []error
	if l.base.RedisURL != "" {
		rc, err := redisconn.New(l.base.RedisURL, redisconn.Options{})
		if err == nil {
			err = redisconn.DeleteKeys(ctx, rc, ns)
			rc.Close()
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("redis: %w", err))
		}
	}
	if l.base.AMQPURL != "" {
		if err := purgeBus(l.base, ns); err != nil {
			errs = append(errs, fmt.Errorf("rabbitmq: %w", err))
		}
	}
	if dir := l.archiveDir(id); dir != "off" {
		errs = append(errs, os.RemoveAll(dir))
	}
	errs = append(errs, os.RemoveAll(filepath.Join(l.base.DataDir, "tenants", id)))
	return errors.Join(errs...)
}

// purgeBus deletes the RabbitMQ queues and exchanges of the namespace ns.
func purgeBus(cfg serveConfig, ns string) error {
	var conn *amqp.Connection
	var err error
	for _, u := range splitList(cfg.AMQPURL) {
		if conn, err = amqp.Dial(u); err == nil {
			break
		}
	}
	if err != nil {
		return err
	}
	defer conn.Close()
	// Queues and exchanges of the tenant's own, left by releases before
	// the shared partitions (each tenant had its own).
	queues, exchanges := rabbitmq.Topology(ns, max(cfg.Partitions, defaultPartitions), cfg.Replica)
	do := func(f func(ch *amqp.Channel) error) error {
		ch, err := conn.Channel()
		if err != nil {
			return err
		}
		defer ch.Close()
		var ae *amqp.Error
		if err := f(ch); err != nil && !(errors.As(err, &ae) && ae.Code == amqp.NotFound) {
			return err
		}
		return nil
	}
	for _, q := range queues {
		if err := do(func(ch *amqp.Channel) error { _, err := ch.QueueDelete(q, false, false, false); return err }); err != nil {
			return fmt.Errorf("queue %s: %w", q, err)
		}
	}
	for _, x := range exchanges {
		if err := do(func(ch *amqp.Channel) error { return ch.ExchangeDelete(x, false, false) }); err != nil {
			return fmt.Errorf("exchange %s: %w", x, err)
		}
	}
	return nil
}

// tenantInstance is a loaded tenant: its app and the run of its
// components.
type tenantInstance struct {
	a       *app
	cancel  context.CancelFunc
	done    chan error
	stopped atomic.Bool
}

// Stopped reports whether the tenant's components stopped on their own.
func (in *tenantInstance) Stopped() bool { return in.stopped.Load() }

func (in *tenantInstance) Handler() http.Handler { return in.a.api.Handler() }

// Consume applies events of the shared partitions in the tenant's engine.
func (in *tenantInstance) Consume(ctx context.Context, batch []signals.Event) error {
	return in.a.engine.Handle(ctx, batch)
}

// Maps is the tenant's store.
func (in *tenantInstance) Maps() storage.Maps { return in.a.store }

// Items is the number of entries of the tenant's catalog.
func (in *tenantInstance) Items(context.Context) (int, error) { return in.a.engine.CatalogSize(), nil }

// HasItem reports whether id is an entry of the tenant's catalog.
func (in *tenantInstance) HasItem(_ context.Context, id string) (bool, error) {
	return in.a.engine.InCatalog(id), nil
}

// Close stops the tenant's components (the engine saves its state) and
// closes its bus, archive and store.
func (in *tenantInstance) Close(ctx context.Context) error {
	in.cancel()
	var err error
	select {
	case err = <-in.done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	return errors.Join(err, in.a.Close())
}

// runTenantServe is `kairos serve` with --admin-key.
func runTenantServe(ctx context.Context, cfg serveConfig, stderr io.Writer) error {
	s, err := newTenantServer(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	defer s.Close()
	return s.Run(ctx)
}
