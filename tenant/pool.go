package tenant

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/kairoshq/kairos/engine/storage"
	"github.com/kairoshq/kairos/signals"
)

// Instance is one tenant's loaded server.
type Instance interface {
	// Handler serves the tenant's API (its own keys are checked again).
	Handler() http.Handler
	// Consume applies a batch of the tenant's events consumed from the
	// shared partitions (Dispatcher), with their routes (the tenant's own
	// keys) in ctx (signals.WithRoutes); nil means they took effect.
	// Calls for one tenant are never concurrent.
	Consume(ctx context.Context, batch []signals.Event) error
	// Items returns the size of the tenant's catalog (for the items quota).
	Items(ctx context.Context) (int, error)
	// HasItem reports whether id is in the tenant's catalog (a PUT of it
	// replaces an entry, and is not held to the items quota).
	HasItem(ctx context.Context, id string) (bool, error)
	// Maps is the tenant's own store (the visitors quota keeps its ids
	// there).
	Maps() storage.Maps
	// Close stops the tenant's server, saving its state, and releases its
	// connections and files.
	Close(ctx context.Context) error
	// Stopped reports whether the server stopped on its own (a component
	// failed): the pool then replaces it by a fresh load. It must not
	// block (the pool calls it under its lock).
	Stopped() bool
}

// Loader builds a tenant's server over its own store namespace.
type Loader interface {
	// Load builds and starts t's server; ctx bounds the loading only.
	Load(ctx context.Context, t Tenant) (Instance, error)
	// Purge erases every piece of data of the tenant id from every store,
	// the bus and the archive. The tenant is not loaded.
	Purge(ctx context.Context, id string) error
}

// entry is one tenant in the pool: loading, loaded or closing.
type entry struct {
	id    string
	ready chan struct{} // closed once loaded (or failed)
	inst  Instance
	err   error
	refs  int           // requests using inst
	elem  *list.Element // in the LRU list (front: most recent), nil while loading
	// idle is closed when refs drops to 0 while someone waits for it.
	idle chan struct{}
}

// Pool loads tenants' servers on demand and keeps at most max loaded,
// evicting the least recently used idle ones.
//
// Lock order: Pool.mu only; no Instance method is called under it.
type Pool struct {
	loader Loader
	max    int
	log    *slog.Logger
	m      *metrics

	mu      sync.Mutex
	entries map[string]*entry
	lru     *list.List // of *entry, loaded ones only
	// closing holds, per tenant being evicted, a channel closed once its
	// instance is closed: a reload waits for it (the store's files and
	// locks are released only then).
	closing map[string]chan struct{}
	// blocked tenants are not loaded (being deleted): a request that
	// resolved its key just before the deletion must not load the tenant
	// again while its data is erased.
	blocked map[string]bool
	closed  bool
	wg      sync.WaitGroup // evictions in flight
}

// NewPool returns a pool that keeps at most maxLoaded tenants loaded
// (<= 0: no bound).
func NewPool(loader Loader, maxLoaded int, log *slog.Logger, m *metrics) *Pool {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if m == nil {
		m = newMetrics(nil, 0)
	}
	return &Pool{loader: loader, max: maxLoaded, log: log, m: m, entries: map[string]*entry{}, lru: list.New(), closing: map[string]chan struct{}{}, blocked: map[string]bool{}}
}

// errClosed is returned by Acquire after Close; errBlocked for a tenant
// being deleted.
var (
	errClosed  = errors.New("tenant: pool closed")
	errBlocked = errors.New("tenant: being deleted")
)

// Block makes Acquire refuse the tenant id (until Unblock).
func (p *Pool) Block(id string) {
	p.mu.Lock()
	p.blocked[id] = true
	p.mu.Unlock()
}

// Unblock lets the tenant id load again (a new tenant with the id).
func (p *Pool) Unblock(id string) {
	p.mu.Lock()
	delete(p.blocked, id)
	p.mu.Unlock()
}

// Acquire returns t's loaded server, loading it first if needed, and a
// release func to call once the request is done.
func (p *Pool) Acquire(ctx context.Context, t Tenant) (Instance, func(), error) {
	p.mu.Lock()
	if p.closed || p.blocked[t.ID] {
		p.mu.Unlock()
		if p.closed {
			return nil, nil, errClosed
		}
		return nil, nil, errBlocked
	}
	e, ok := p.entries[t.ID]
	var dead *entry
	if ok && e.elem != nil && e.inst.Stopped() {
		// Its components failed: close it and load the tenant again.
		p.lru.Remove(e.elem)
		e.elem = nil
		delete(p.entries, t.ID)
		p.closing[t.ID] = make(chan struct{})
		p.m.loaded.Set(float64(p.lru.Len()))
		dead, ok = e, false
	}
	if !ok {
		e = &entry{id: t.ID, ready: make(chan struct{})}
		p.entries[t.ID] = e
		e.refs++
		prev := p.closing[t.ID]
		p.mu.Unlock()
		if dead != nil {
			p.log.LogAttrs(ctx, slog.LevelWarn, "tenant server stopped on its own: reloading", slog.String("tenant", t.ID))
			p.closeAll([]*entry{dead}, "failed")
		}
		if prev != nil {
			<-prev
		}
		p.load(ctx, e, t)
	} else {
		e.refs++
		if e.elem != nil {
			p.lru.MoveToFront(e.elem)
		}
		p.mu.Unlock()
		select {
		case <-e.ready:
		case <-ctx.Done():
			p.release(e)
			return nil, nil, ctx.Err()
		}
	}
	if e.err != nil {
		p.release(e)
		return nil, nil, e.err
	}
	var once sync.Once
	return e.inst, func() { once.Do(func() { p.release(e) }) }, nil
}

// load builds e's instance; a failure removes e so that the next request
// tries again.
func (p *Pool) load(ctx context.Context, e *entry, t Tenant) {
	start := time.Now()
	inst, err := p.loader.Load(context.WithoutCancel(ctx), t)
	p.m.loadSeconds.Observe(time.Since(start).Seconds())
	p.mu.Lock()
	if err != nil {
		e.err = fmt.Errorf("tenant %s: load: %w", t.ID, err)
		delete(p.entries, t.ID)
		p.mu.Unlock()
		close(e.ready)
		p.log.LogAttrs(ctx, slog.LevelError, "tenant not loaded", slog.String("tenant", t.ID), slog.Any("err", err))
		return
	}
	e.inst = inst
	e.elem = p.lru.PushFront(e)
	p.m.loaded.Set(float64(p.lru.Len()))
	p.m.loads.Inc()
	victims := p.victimsLocked()
	p.mu.Unlock()
	close(e.ready)
	p.log.LogAttrs(ctx, slog.LevelInfo, "tenant loaded", slog.String("tenant", t.ID), slog.Duration("took", time.Since(start)))
	p.closeAll(victims, "evicted")
}

// release ends one request on e.
func (p *Pool) release(e *entry) {
	p.mu.Lock()
	e.refs--
	if e.refs == 0 && e.idle != nil {
		close(e.idle)
		e.idle = nil
	}
	victims := p.victimsLocked()
	p.mu.Unlock()
	p.closeAll(victims, "evicted")
}

// victimsLocked removes and returns the least recently used idle entries
// beyond max.
func (p *Pool) victimsLocked() []*entry {
	if p.max <= 0 || p.lru.Len() <= p.max {
		return nil
	}
	var out []*entry
	for el := p.lru.Back(); el != nil && p.lru.Len() > p.max; {
		e := el.Value.(*entry)
		prev := el.Prev()
		if e.refs == 0 {
			p.lru.Remove(el)
			e.elem = nil
			delete(p.entries, e.id)
			p.closing[e.id] = make(chan struct{})
			out = append(out, e)
		}
		el = prev
	}
	p.m.loaded.Set(float64(p.lru.Len()))
	return out
}

// closeAll closes evicted entries (victimsLocked registered them in
// closing) in the background: the request that caused the eviction is not
// delayed by another tenant's shutdown.
func (p *Pool) closeAll(es []*entry, why string) {
	for _, e := range es {
		p.wg.Add(1)
		p.m.evictions.Inc()
		go func() {
			defer p.wg.Done()
			defer func() {
				p.mu.Lock()
				close(p.closing[e.id])
				delete(p.closing, e.id)
				p.mu.Unlock()
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := e.inst.Close(ctx); err != nil {
				p.log.LogAttrs(ctx, slog.LevelWarn, "tenant not closed cleanly", slog.String("tenant", e.id), slog.Any("err", err))
			} else {
				p.log.LogAttrs(ctx, slog.LevelInfo, "tenant unloaded", slog.String("tenant", e.id), slog.String("why", why))
			}
		}()
	}
}

// Unload stops the tenant id's server, when loaded, after its requests in
// flight (at most until ctx is done; then it closes it anyway). The
// caller makes sure no new request reaches it (suspended or deleted).
func (p *Pool) Unload(ctx context.Context, id string) error {
	p.mu.Lock()
	e, ok := p.entries[id]
	if !ok {
		p.mu.Unlock()
		p.wg.Wait() // an eviction of id may be closing it
		return nil
	}
	p.mu.Unlock()
	select {
	case <-e.ready:
	case <-ctx.Done():
		return ctx.Err()
	}
	p.mu.Lock()
	if p.entries[id] != e { // failed load, or evicted meanwhile
		p.mu.Unlock()
		p.wg.Wait()
		return nil
	}
	delete(p.entries, id)
	if e.elem != nil {
		p.lru.Remove(e.elem)
		e.elem = nil
	}
	p.m.loaded.Set(float64(p.lru.Len()))
	var idle chan struct{}
	if e.refs > 0 {
		idle = make(chan struct{})
		e.idle = idle
	}
	p.mu.Unlock()
	if idle != nil {
		select {
		case <-idle:
		case <-ctx.Done():
		}
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := e.inst.Close(cctx); err != nil {
		return fmt.Errorf("tenant %s: unload: %w", id, err)
	}
	p.wg.Wait()
	return nil
}

// Loaded returns the number of loaded tenants.
func (p *Pool) Loaded() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lru.Len()
}

// IsLoaded reports whether the tenant id is loaded.
func (p *Pool) IsLoaded(id string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.entries[id]
	return ok && e.elem != nil
}

// Close unloads every tenant (saving their state) and refuses new
// requests.
func (p *Pool) Close(ctx context.Context) error {
	p.mu.Lock()
	p.closed = true
	ids := make([]string, 0, len(p.entries))
	for id := range p.entries {
		ids = append(ids, id)
	}
	p.mu.Unlock()
	var errs []error
	for _, id := range ids {
		errs = append(errs, p.Unload(ctx, id))
	}
	p.wg.Wait()
	return errors.Join(errs...)
}
