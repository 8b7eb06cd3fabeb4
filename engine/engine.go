package engine

import (
	"context"
	"errors"
	"fmt"
	"github.com/kairoshq/kairos/engine/filter"
	"hash/fnv"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kairoshq/kairos/internal/periodic"
	"github.com/kairoshq/kairos/model"
	"github.com/kairoshq/kairos/signals"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
)

// Bus is what the engine needs of the event stream: batches to consume,
// a fan-out to tell its peers about item updates, and readiness.
type Bus interface {
	signals.Consumer
	signals.Broadcaster
	signals.Subscriber
	Ready(ctx context.Context) error
}

// Engine is the running brain of Kairos (see the package documentation).
// It composes three parts along its seams, each owning its state: the
// catalog (item rows, the catalog cache, provisional factors), ingest
// (consume → dedup → fold-in → commit, reactors, archive) and serving
// (recommendation caches, scratch). The live model, its generation and
// version belong to Engine itself (swap.go). doc.go gives the lock order.
type Engine struct {
	cfg   Config
	log   *slog.Logger
	store Store
	bus   Bus
	met   *metrics

	online atomic.Pointer[model.Online] // swapped whole by LoadSnapshot
	// gen is the generation of the live model: it changes with every
	// loaded snapshot and tags stored visitor factors (see packFactors).
	gen atomic.Uint32

	itemCatalog // item rows, the catalog cache, trending (catalog.go)
	ingest      // the consuming side (ingest.go)
	serving     // the serving side's caches (serving.go)

	swapMu   sync.Mutex    // serialises LoadSnapshot
	deleteMu sync.Mutex    // serialises DeleteItem (its tombstone and entry)
	version  atomic.Uint64 // version of the loaded snapshot (0: none)
	// blend is Config.Blend with the popularity prior (ρ, κ) of the loaded
	// snapshot, when it carries one.
	blend atomic.Pointer[model.Blend]
	// nbrs are the loaded snapshot's item neighbours at the engine's rows
	// (neighbours.go; nil: none).
	nbrs atomic.Pointer[model.Neighbours]
}

// New loads the engine's state from store: item rows and factors, the
// catalog, and the persisted XᵀX and trending counters. bus may be nil for
// an engine that only serves (tests, tools).
func New(ctx context.Context, cfg Config, store Store, bus Bus) (*Engine, error) {
	cfg = cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	online, err := model.NewEmptyOnline(cfg.Params)
	if err != nil {
		return nil, err
	}
	ms, err := loadGenerationFrom(ctx, store)
	if err != nil {
		return nil, err
	}
	if ms != nil {
		if ms.Params.Factors != cfg.Params.Factors {
			return nil, fmt.Errorf("engine: the stored model has k=%d, the configuration k=%d: start with --factors %d (or retrain)", ms.Params.Factors, cfg.Params.Factors, ms.Params.Factors)
		}
		if online, err = model.NewEmptyOnline(ms.Params); err != nil {
			return nil, err
		}
	}
	e := &Engine{
		cfg: cfg, log: cfg.Logger.With("component", "engine"), store: store, bus: bus,
		itemCatalog: itemCatalog{rowOf: map[string]int32{}, catalog: map[string]Item{}, deleted: map[string]struct{}{}, segments: map[string]*segment{},
			trending: model.NewTrending(cfg.TrendingHalfLife)},
		serving: serving{trendTops: map[string]*trendTop{}, neigh: map[int32]*cachedRows{}, views: filter.NewViews(cfg.FilterMemory)},
	}
	// A keyed bus (one that tells the routes of consumed events) forwards
	// events to the partition of their state (forward.go).
	e.forwarder, _ = bus.(signals.Forwarder)
	e.online.Store(online)
	e.setBlend(nil)
	if ms != nil {
		e.gen.Store(ms.Generation)
		e.version.Store(ms.Version)
		e.setBlend(ms.Blend)
		if err := e.loadNeighbours(ctx); err != nil {
			return nil, err
		}
	}
	e.met = newMetrics(cfg.Registerer)
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "kairos_engine_model_generation",
			Help: "Generation of the live model: 0 when learnt from events alone, one more with every loaded snapshot (persisted)."},
			func() float64 { return float64(e.gen.Load()) }))
		e.registerIndexGauges(cfg.Registerer)
	}
	e.learn = newLearnState(online, cfg.Params.Factors)
	e.scorers.New = func() any { return &scratch{} }
	if err := e.load(ctx); err != nil {
		return nil, err
	}
	return e, nil
}

// load restores item rows, item states, catalog and engine state.
func (e *Engine) load(ctx context.Context) error {
	start := time.Now()
	ids, err := e.store.RowIDs(ctx)
	if err != nil {
		return fmt.Errorf("engine: load item rows: %w", err)
	}
	if len(e.rowOf) == 0 {
		e.rowOf = make(map[string]int32, len(ids))
		e.idOf = make([]string, 0, len(ids))
	}
	for row, id := range ids {
		e.setRowLocked(id, int32(row))
	}
	e.model().Grow(len(ids))
	// The rows go from the store's scan straight into the model's table,
	// batch by batch: no copy of the whole table is held on the way.
	k := e.cfg.Params.Factors
	var rows []model.ItemRowState
	err = e.model().LoadItemsFrom(func(load func([]model.ItemRowState) error) error {
		return e.store.ScanItemStates(ctx, func(states []ItemState) error {
			rows = rows[:0]
			for _, s := range states {
				if len(s.Factors) != k {
					return fmt.Errorf("stored item row %d has %d factors, the model %d (stored state from another configuration?)", s.Row, len(s.Factors), k)
				}
				rows = append(rows, model.ItemRowState{Row: s.Row, Factors: s.Factors, Curv: s.Curv, Count: s.Count})
			}
			return load(rows)
		})
	})
	if err != nil {
		return fmt.Errorf("engine: load item factors: %w", err)
	}
	if err := e.loadCatalog(ctx); err != nil {
		return err
	}
	if err := e.loadState(ctx); err != nil {
		return err
	}
	e.log.LogAttrs(ctx, slog.LevelInfo, "state loaded",
		slog.Int("items", len(ids)), slog.Int("catalog", len(e.catalog)), slog.Duration("took", time.Since(start)))
	return nil
}

// Run consumes events and peer updates and persists the engine's state
// periodically, until ctx is done; then it finishes the in-flight batch
// (acknowledging it), saves its state and returns. Every goroutine it
// starts (consumers, the index, the periodic save, model swaps, the
// warm-up of the blend's statistics) has returned by then.
func (e *Engine) Run(ctx context.Context) error {
	if e.bus == nil {
		return errors.New("engine: Run needs a bus")
	}
	g, gctx := errgroup.WithContext(ctx)
	var swaps sync.WaitGroup                                // model announcements being loaded
	g.Go(func() error { e.moments(e.model()); return nil }) // warm the cold-start blend's statistics
	g.Go(func() error { return e.bus.Consume(gctx, e.Handle) })
	g.Go(func() error { return e.bus.Subscribe(gctx, signals.TopicUpdates, e.onPeerUpdate) })
	swaps.Go(func() { e.loadPublished(gctx) }) // published while no engine listened
	g.Go(func() error {
		return e.bus.Subscribe(gctx, signals.TopicModels, func(msg []byte) {
			m := append([]byte(nil), msg...)
			swaps.Go(func() { e.onModel(gctx, m) })
		})
	})
	g.Go(func() error { return e.maintainIndex(gctx) })
	g.Go(func() error {
		return periodic.Run(gctx, e.cfg.StateEvery, func(ctx context.Context) {
			if err := e.saveState(ctx); err != nil {
				e.log.LogAttrs(ctx, slog.LevelWarn, "state not saved", slog.Any("err", err))
			}
		})
	})
	err := g.Wait()
	swaps.Wait() // a model being swapped in is part of the state saved below
	saveCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	e.flushReactors(saveCtx)
	if serr := e.saveState(saveCtx); serr != nil {
		e.log.LogAttrs(saveCtx, slog.LevelWarn, "state not saved at shutdown", slog.Any("err", serr))
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// Ready reports whether the store and the bus are reachable.
func (e *Engine) Ready(ctx context.Context) error {
	if err := e.store.Ping(ctx); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if e.bus != nil {
		if err := e.bus.Ready(ctx); err != nil {
			return fmt.Errorf("bus: %w", err)
		}
	}
	return nil
}

// Online exposes the live model (for tools and tests).
func (e *Engine) Online() *model.Online { return e.model() }

// model returns the live model (it may be replaced by LoadSnapshot at any
// time: use one value per operation).
func (e *Engine) model() *model.Online { return e.online.Load() }

func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// itemSeed derives the deterministic seed of a new item's random start.
func itemSeed(id string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	return h.Sum64()
}
