package tenant

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kairoshq/kairos/internal/errs"
	"github.com/kairoshq/kairos/signals"
)

// Shared partitions
//
// With RabbitMQ, every tenant's events go through one set of partition
// queues shared by all tenants (and leased among the replicas as in
// single-site mode): a tenant's server publishes each event under the
// routing key RouteKey(tenant, key), key being the event's own routing
// key (its resolved identity), so the consistent hash spreads the
// visitors of every tenant over the partitions, and one consumer applies
// each (tenant, visitor) in order. The Dispatcher is that consumer's
// handler: it splits each batch by tenant, loads each tenant's server
// from the pool if it sleeps, and hands the tenant its events, with their
// routes stripped of the tenant.
//
// One tenant must not hold up the others: a batch is acknowledged as a
// whole, so a tenant whose events cannot be applied (its server fails to
// load, its engine fails the batch) would have the whole batch, every
// tenant's, delivered again and again. Instead, when the deployment's
// shared parts are healthy, the failing tenant's events are sent back
// through the bus's retry queue (signals.Retrier): they return to the
// tail of their partition after the retry delay, marked forwarded, with
// one more attempt; the other tenants' events are acknowledged. Events
// already applied are not applied again when a batch returns (the engine
// de-duplicates by id), so every event takes effect once. Only when the
// shared parts fail (Healthy: the deployment's store, the bus) does the
// batch fail as a whole, to be delivered again after the consumer's
// back-off, as in single-site mode. A tenant's retried events can come
// back after newer events of the same visitor that were applied in the
// meantime (once the tenant recovered): they arrive marked forwarded, and
// the engine puts them into the visitor's history in time order, as it
// does for events forwarded between partitions. After MaxAttempts the
// events are given up (logged, counted).
//
// Events of a tenant that does not exist (any more), or is being deleted,
// are dropped (logged, counted): nobody can apply them, and a deletion
// erases the tenant's data anyway.

// RouteKey is the routing key of an event of the tenant id whose own key
// (resolved identity) is key.
func RouteKey(id, key string) string { return id + "/" + key }

// SplitRouteKey returns the tenant and the tenant's own key of a routing
// key made by RouteKey; ok is false when k names no valid tenant.
func SplitRouteKey(k string) (id, key string, ok bool) {
	id, key, ok = strings.Cut(k, "/")
	if !ok || !ValidID(id) || key == "" {
		return "", "", false
	}
	return id, key, true
}

// Defaults of DispatcherConfig.
const (
	DefaultMaxAttempts = 1000
	DefaultParallel    = 4
)

// DispatcherConfig configures Router.Dispatcher.
type DispatcherConfig struct {
	// Retrier sends a failing tenant's events back for a later try.
	// Required.
	Retrier signals.Retrier
	// Healthy reports whether the parts every tenant shares (the
	// deployment's store, the bus) work: when a tenant fails and Healthy
	// fails too, the whole batch fails (to be delivered again) instead of
	// the tenant's events being sent back. nil: always healthy.
	Healthy func(ctx context.Context) error
	// MaxAttempts is the number of times a tenant's events are sent back
	// before they are given up (default 1,000: with a retry delay of 2 s,
	// more than half an hour).
	MaxAttempts int
	// Parallel is the number of tenants of one batch applied at once
	// (default 4).
	Parallel int
}

// Dispatcher is the handler of the shared partitions (see "Shared
// partitions" above).
type Dispatcher struct {
	r   *Router
	cfg DispatcherConfig
	log *slog.Logger
	// events counts consumed events by tenant label and outcome
	// (applied, retried, dropped, given_up).
	events *prometheus.CounterVec
}

// Dispatcher returns the handler that dispatches the events of the
// shared partitions to the tenants' servers; reg (nil: none) receives its
// metric.
func (r *Router) Dispatcher(cfg DispatcherConfig, reg prometheus.Registerer) (*Dispatcher, error) {
	if cfg.Retrier == nil {
		return nil, errors.New("tenant: dispatcher: Retrier is nil")
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = DefaultParallel
	}
	d := &Dispatcher{r: r, cfg: cfg, log: r.log,
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kairos_tenant_consumed_events_total",
			Help: "Events consumed from the shared partitions, by tenant and outcome: applied, retried (sent back through the retry queue: the tenant failed), dropped (unknown or deleted tenant), given_up (after the most attempts)."},
			[]string{"tenant", "outcome"})}
	if reg != nil {
		if err := reg.Register(d.events); err != nil {
			return nil, fmt.Errorf("tenant: dispatcher metrics: %w", err)
		}
	}
	return d, nil
}

// group is the events of one tenant in a batch.
type group struct {
	t      Tenant
	events []signals.Event
	routes []signals.Route // the tenant's own keys
	keys   []string        // the full routing keys
	err    error
}

// Handle is the signals.BatchHandler of the shared partitions: it needs
// the routes of the batch (signals.RoutesOf).
func (d *Dispatcher) Handle(ctx context.Context, batch []signals.Event) error {
	routes := signals.RoutesOf(ctx)
	if len(routes) != len(batch) {
		return fmt.Errorf("tenant: dispatch: %w: a batch of %d events with %d routes (the shared partitions need a keyed bus)", errs.Internal, len(batch), len(routes))
	}
	groups, err := d.split(ctx, batch, routes)
	if err != nil {
		return err
	}
	d.apply(ctx, groups)
	var failed []*group
	for _, g := range groups {
		if g.err == nil {
			d.events.WithLabelValues(d.r.m.label(g.t.ID), "applied").Add(float64(len(g.events)))
			continue
		}
		failed = append(failed, g)
	}
	if len(failed) == 0 {
		return nil
	}
	if d.cfg.Healthy != nil {
		if herr := d.cfg.Healthy(ctx); herr != nil {
			return fmt.Errorf("tenant: dispatch: %d tenants failed and the shared store or bus too: %w", len(failed), errors.Join(herr, failed[0].err))
		}
	}
	for _, g := range failed {
		if err := d.retry(ctx, g); err != nil {
			return err
		}
	}
	return nil
}

// split groups the batch by tenant, in order of first appearance, and
// drops the events of no (longer existing) tenant.
func (d *Dispatcher) split(ctx context.Context, batch []signals.Event, routes []signals.Route) ([]*group, error) {
	snap := d.r.snap.Load()
	byID := map[string]*group{}
	var out []*group
	gone := map[string]bool{}
	for i, ev := range batch {
		id, key, ok := SplitRouteKey(routes[i].Key)
		if !ok {
			d.drop(ctx, "", 1, "routing key names no tenant")
			continue
		}
		g := byID[id]
		if g == nil {
			if gone[id] {
				d.drop(ctx, id, 1, "")
				continue
			}
			t, ok := snap.byID[id]
			if !ok {
				// Perhaps created on another replica since this one last
				// read the registry.
				var err error
				t, err = d.r.cfg.Registry.Get(ctx, id)
				switch {
				case errors.Is(err, errs.NotFound):
					gone[id] = true
					d.drop(ctx, id, 1, "unknown tenant")
					continue
				case err != nil:
					return nil, fmt.Errorf("tenant: dispatch: %w", err)
				}
			}
			if t.Status == Deleting {
				gone[id] = true
				d.drop(ctx, id, 1, "tenant being deleted")
				continue
			}
			g = &group{t: t}
			byID[id] = g
			out = append(out, g)
		}
		r := routes[i]
		r.Key = key
		g.events = append(g.events, ev)
		g.routes = append(g.routes, r)
		g.keys = append(g.keys, routes[i].Key)
	}
	return out, nil
}

// drop counts (and logs, with a reason) events nobody can apply.
func (d *Dispatcher) drop(ctx context.Context, id string, n int, why string) {
	label := OtherLabel
	if id != "" {
		label = d.r.m.label(id)
	}
	d.events.WithLabelValues(label, "dropped").Add(float64(n))
	if why != "" {
		d.log.LogAttrs(ctx, slog.LevelWarn, "consumed events of no tenant dropped", slog.String("tenant", id), slog.String("why", why))
	}
}

// apply hands each group to its tenant's server, Parallel tenants at a
// time; a failure is kept in the group.
func (d *Dispatcher) apply(ctx context.Context, groups []*group) {
	if len(groups) == 1 {
		groups[0].err = d.applyOne(ctx, groups[0])
		return
	}
	sem := make(chan struct{}, d.cfg.Parallel)
	var wg sync.WaitGroup
	for _, g := range groups {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			g.err = d.applyOne(ctx, g)
		})
	}
	wg.Wait()
}

// applyOne applies g's events in its tenant's server, loading it first
// if it sleeps.
func (d *Dispatcher) applyOne(ctx context.Context, g *group) error {
	inst, release, err := d.r.pool.Acquire(ctx, g.t)
	if errors.Is(err, errBlocked) {
		d.drop(ctx, g.t.ID, len(g.events), "tenant being deleted")
		g.events = nil
		return nil
	}
	if err != nil {
		return err
	}
	defer release()
	if err := inst.Consume(signals.WithRoutes(ctx, g.routes), g.events); err != nil {
		return fmt.Errorf("tenant %s: %w", g.t.ID, err)
	}
	return nil
}

// retry sends g's events back through the retry queue, per routing key
// and in order, or gives them up after MaxAttempts.
func (d *Dispatcher) retry(ctx context.Context, g *group) error {
	label := d.r.m.label(g.t.ID)
	type run struct {
		key     string
		attempt int
		events  []signals.Event
	}
	var runs []*run
	byKey := map[string]*run{}
	for i, ev := range g.events {
		r := byKey[g.keys[i]]
		if r == nil {
			r = &run{key: g.keys[i]}
			byKey[g.keys[i]] = r
			runs = append(runs, r)
		}
		r.attempt = max(r.attempt, g.routes[i].Attempt+1)
		r.events = append(r.events, ev)
	}
	for _, r := range runs {
		if r.attempt > d.cfg.MaxAttempts {
			d.events.WithLabelValues(label, "given_up").Add(float64(len(r.events)))
			d.log.LogAttrs(ctx, slog.LevelError, "tenant's events given up after the most attempts", slog.String("tenant", g.t.ID),
				slog.Int("events", len(r.events)), slog.Int("attempts", d.cfg.MaxAttempts), slog.Any("err", g.err))
			continue
		}
		if err := d.cfg.Retrier.Retry(ctx, r.key, r.events, r.attempt); err != nil {
			return fmt.Errorf("tenant %s: its failed events not sent back (%w): %w", g.t.ID, g.err, err)
		}
		d.events.WithLabelValues(label, "retried").Add(float64(len(r.events)))
	}
	d.log.LogAttrs(ctx, slog.LevelWarn, "tenant failed its events: sent back for a later try", slog.String("tenant", g.t.ID),
		slog.Int("events", len(g.events)), slog.Any("err", g.err))
	return nil
}
