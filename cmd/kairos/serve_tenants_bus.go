package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/signals"
	"github.com/kairoshq/kairos/signals/rabbitmq"
	"github.com/kairoshq/kairos/tenant"
)

// sharedBus is the RabbitMQ bus every tenant of a multi-tenant server
// shares (see "Shared partitions" in package tenant): one set of
// partition queues <namespace>.tenants.p.<i>, leased among the replicas
// by the deployment's store, one retry queue, and one subscription per
// fan-out topic. Each loaded tenant's app gets a view of it
// (sharedBus.view) as its bus.
type sharedBus struct {
	bus *rabbitmq.Bus
	log *slog.Logger

	mu   sync.Mutex
	subs map[signals.Topic]map[string]map[*topicSub]struct{} // topic → tenant → subscribers
}

// topicSub is one tenant subscriber of a topic.
type topicSub struct{ h func([]byte) }

// sharedBusPrefix is the name prefix of the shared bus of namespace ns.
func sharedBusPrefix(ns string) string { return ns + ".tenants" }

// dialSharedBus dials the shared bus: cfg.Tenants.Partitions partitions
// shared by the replicas through leases in store.
func dialSharedBus(ctx context.Context, cfg serveConfig, store engine.Store, log *slog.Logger) (*sharedBus, error) {
	rcfg := rabbitmq.Config{URL: cfg.AMQPURL, Prefix: sharedBusPrefix(cfg.Namespace), Replica: cfg.Replica, QueueType: cfg.QueueType,
		Partitions: cfg.Tenants.Partitions, Prefetch: cfg.Prefetch, RetryDelay: cfg.Tenants.RetryDelay, Logger: log}
	if err := leasePartitions(ctx, &rcfg, cfg, store, nil, log); err != nil {
		return nil, err
	}
	b, err := rabbitmq.Dial(ctx, rcfg)
	if err != nil {
		return nil, fmt.Errorf("rabbitmq (shared by the tenants): %w", err)
	}
	log.LogAttrs(ctx, slog.LevelInfo, "bus: rabbitmq, partitions shared by the tenants", slog.String("prefix", rcfg.Prefix),
		slog.Int("partitions", rcfg.Partitions), slog.Duration("retry_delay", rcfg.RetryDelay))
	return &sharedBus{bus: b, log: log, subs: map[signals.Topic]map[string]map[*topicSub]struct{}{}}, nil
}

// topics are the fan-out topics the shared bus multiplexes.
var topics = []signals.Topic{signals.TopicUpdates, signals.TopicModels, signals.TopicPromotions}

// run consumes the shared partitions with h (the tenant.Dispatcher) and
// delivers the topics' messages to the tenants' subscribers until ctx is
// done.
func (s *sharedBus) run(ctx context.Context, h signals.BatchHandler) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.bus.Consume(gctx, h) })
	for _, t := range topics {
		g.Go(func() error { return s.bus.Subscribe(gctx, t, func(msg []byte) { s.deliver(t, msg) }) })
	}
	return g.Wait()
}

// frame prefixes msg with the tenant id and a NUL byte (tenant ids have
// none).
func frame(id string, msg []byte) []byte {
	out := make([]byte, 0, len(id)+1+len(msg))
	out = append(out, id...)
	out = append(out, 0)
	return append(out, msg...)
}

// deliver hands a topic message to its tenant's subscribers.
func (s *sharedBus) deliver(t signals.Topic, msg []byte) {
	i := bytes.IndexByte(msg, 0)
	if i <= 0 {
		return // not framed: not from a tenant's server
	}
	body := msg[i+1:]
	s.mu.Lock()
	var hs []func([]byte)
	for sub := range s.subs[t][string(msg[:i])] {
		hs = append(hs, sub.h)
	}
	s.mu.Unlock()
	for _, h := range hs {
		h(body)
	}
}

// Close closes the shared bus.
func (s *sharedBus) Close() error { return s.bus.Close() }

// Ready reports whether the shared bus can publish.
func (s *sharedBus) Ready(ctx context.Context) error { return s.bus.Ready(ctx) }

// view returns the bus of the tenant id's app, routing its events by
// router (the tenant's resolved identities).
func (s *sharedBus) view(id string, router *engine.Router) *tenantBus {
	return &tenantBus{s: s, id: id, router: router}
}

// tenantBus is one tenant's view of the shared bus: it publishes the
// tenant's events under "<tenant>/<key>", forwards and broadcasts within
// the tenant, and subscribes to the tenant's own topic messages. Its
// Consume only waits: the shared consumer hands the tenant its events
// (tenant.Instance.Consume). Close releases nothing (the server owns the
// shared bus).
type tenantBus struct {
	s      *sharedBus
	id     string
	router *engine.Router
}

var (
	_ signals.Bus       = (*tenantBus)(nil)
	_ signals.Forwarder = (*tenantBus)(nil)
)

// Publish publishes the tenant's events, each under RouteKey(tenant, its
// resolved identity).
func (b *tenantBus) Publish(ctx context.Context, events []signals.Event) error {
	if len(events) == 0 {
		return nil
	}
	keys := b.router.RouteKeys(ctx, events)
	for i, k := range keys {
		keys[i] = tenant.RouteKey(b.id, k)
	}
	return b.s.bus.PublishKeys(ctx, events, keys)
}

// Forward forwards the tenant's events to the partition of its key.
func (b *tenantBus) Forward(ctx context.Context, key string, events []signals.Event) error {
	return b.s.bus.Forward(ctx, tenant.RouteKey(b.id, key), events)
}

// Consume waits until ctx is done: the shared consumer delivers.
func (b *tenantBus) Consume(ctx context.Context, _ signals.BatchHandler) error {
	<-ctx.Done()
	return nil
}

// Broadcast sends msg to the tenant's subscribers of t on every replica.
func (b *tenantBus) Broadcast(ctx context.Context, t signals.Topic, msg []byte) error {
	return b.s.bus.Broadcast(ctx, t, frame(b.id, msg))
}

// Subscribe calls h for the tenant's messages of t until ctx is done.
func (b *tenantBus) Subscribe(ctx context.Context, t signals.Topic, h func(msg []byte)) error {
	sub := &topicSub{h: h}
	s := b.s
	s.mu.Lock()
	if s.subs[t] == nil {
		s.subs[t] = map[string]map[*topicSub]struct{}{}
	}
	if s.subs[t][b.id] == nil {
		s.subs[t][b.id] = map[*topicSub]struct{}{}
	}
	s.subs[t][b.id][sub] = struct{}{}
	s.mu.Unlock()
	<-ctx.Done()
	s.mu.Lock()
	delete(s.subs[t][b.id], sub)
	if len(s.subs[t][b.id]) == 0 {
		delete(s.subs[t], b.id)
	}
	s.mu.Unlock()
	return nil
}

// Ready reports the shared bus's readiness.
func (b *tenantBus) Ready(ctx context.Context) error { return b.s.bus.Ready(ctx) }

// Close releases nothing: the shared bus outlives the tenant's app.
func (b *tenantBus) Close() error { return nil }
