// Package engine is the running brain of Kairos: it consumes visitor
// signals, keeps visitors' histories and sessions, updates the live
// implicit-ALS model in real time, and answers recommendation requests.
//
// # Consuming
//
// Engine.Handle is the batch handler given to a signals.Consumer. A batch
// is processed as one unit (see Handle for the steps); the store's Commit
// makes histories, sessions, visitor factors and the de-duplication marks of
// the batch durable atomically, and only then is the batch acknowledged.
// Redelivered events are recognised by id and dropped, so every event is
// applied exactly once to histories and visitor factors, whatever crashes
// in between. Item factors are derived state: the live model nudges the
// touched items after the commit (model.Online.Apply), and the engine
// persists the changed rows every Config.StateEvery; a crash can lose the
// nudges since the last save (never double them), and a retrain restores
// item factors exactly.
//
// # Scale-out
//
// Several engines (replicas) may run against the same store: the bus
// partitions visitors across replicas (RabbitMQ consistent-hash exchange
// onto fixed partitions, shared by leases: engine/membership), so each
// visitor is folded in by exactly one replica. Router (route.go) keys the
// events by resolved identity, so all devices of a linked user go to one
// partition too (see "Routing by identity" in route.go for the window
// around the moment of linking). Item rows are
// assigned by the store atomically, so every replica numbers items alike.
// Each replica broadcasts the deltas of the item rows it changed on
// signals.TopicUpdates, and adds its peers' deltas to its own rows: additions
// commute, so replicas converge. Catalog writes are announced the same way.
// The engine keeps no process-global state.
//
// Known approximations of the scale-out: a user whose devices are consumed
// by different replicas (without the Router, or during the window around
// linking) keeps a complete history (appends are atomic) but the factors
// of the latest fold-in; after a hot swap (LoadSnapshot) a
// returning visitor's retrained factors are not subtracted from XᵀX, which
// only serves as curvature for item updates and is replaced by the next
// snapshot; peer item deltas made against another model generation are
// dropped while replicas swap; erasing a device rewrites its user's
// history under the erasing replica's consumer lock only, so an event of
// the user committed by another replica at that moment can be lost from
// the history (never from the archive); trending counts the whole
// traffic, but the other replicas' share as of their last state save
// (Config.StateEvery, trending_share.go), the segments' trending
// (campaign, referrer, device) likewise with each peer's top 1,000 items
// per segment.
//
// # Serving
//
// Recommend scores x_u·Y over every item (model.Online.TopK: exact top-K,
// no allocation) for a visitor with factors, and falls back to
// recency-weighted trending for a visitor without; inactive catalog items
// are excluded, and optionally the visitor's seen items. Items that appear
// in events but not in the catalog are recommendable; an item in the
// catalog with Active false never is. Similar ranks by cosine of item
// factors.
//
// # Parts
//
// Engine composes three parts along its seams, each a type owning its
// state (Engine's own fields are the live model, its generation, version
// and blend, and the store and bus):
//
//   - itemCatalog (catalog.go, provisional.go): the item index (id ↔ row),
//     the catalog cache and inactive rows, the trending counters, the
//     prior of provisional item factors.
//   - ingest (ingest.go; handle.go, identity.go, history.go, state.go):
//     the consuming pipeline, reactors, the archive, erasure, state saves,
//     peer deltas.
//   - serving (serving.go; recommend.go, coldstart.go, trending.go,
//     index.go: the approximate index's use, upkeep and persistence):
//     ranking and its caches. The ranking strategies are a
//     table of rankers (strategy.go, one file each: strategy_trending.go,
//     strategy_blend.go, strategy_als.go); Recommend asks them in order.
//
// # Concurrency
//
// Every mutex of the engine, what it guards, and the order to take them
// (a goroutine holding one may only take those after it):
//
//  1. swapMu (Engine): serialises LoadSnapshot (a model hot swap).
//  2. handleMu (ingest): serialises Handle and everything that changes
//     the live model's items outside it (provisional factors, peer
//     deltas, the end of a swap, state saves); guards reactors, archive,
//     eraser, tail and learn.
//  3. priorMu (itemCatalog): the cached prior of provisional factors
//     (prior, priorAt).
//  4. mu (itemCatalog, RWMutex): the item index (rowOf, idOf), the
//     catalog cache, inactive rows, trending counters and segments.
//     Handle takes it briefly for writing (new rows, trending); requests
//     hold it for reading while they rank.
//  5. momMu (serving): single-flights the first computation of the item
//     moments of a model.
//  6. candMu (serving): the blend's caches (moments, trending and
//     popularity tops, popularity, neighbours, momBusy, popBusy).
//  7. the live model's own locks (model.Online: its index-build mutex,
//     its writer mutex, then its read/write mutex; its exact-batch queue
//     mutex, never held while scoring), taken inside its methods only.
//  8. the store's and the bus's locks, inside their methods only.
//
// Router.mu guards the Router's cache only; it is taken by RouteKeys
// (called by the bus's Publish) and held across no other call.
//
// So: swapMu → handleMu → priorMu → mu → momMu → candMu → model → store.
// The atomics (online, gen, version, blend) need no lock: a reader loads
// the model once per operation (Engine.model) and uses that value
// throughout. No lock is held across a call to a reactor, the archive or
// the bus, except handleMu, which Handle holds for the whole batch.
package engine
