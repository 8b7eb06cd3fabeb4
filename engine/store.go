package engine

import (
	"context"
	"time"

	"github.com/kairoshq/kairos/engine/storage"
	"github.com/kairoshq/kairos/internal/errs"
	"github.com/kairoshq/kairos/signals"
)

// Errors of the Store port, compared with errors.Is: the kinds of package
// internal/errs under the port's names. Adapters translate their own
// errors (redis.Nil, …) into these.
var (
	// ErrNotFound: the item, visitor or object does not exist.
	ErrNotFound = errs.NotFound
	// ErrUnavailable: the store cannot be reached right now; retry later.
	ErrUnavailable = errs.Unavailable
	// ErrConflict: the change conflicts with the stored state (a commit
	// to an anonymous visitor linked meanwhile).
	ErrConflict = errs.Conflict
	// ErrInvalid: the request is malformed; the wrapping message names the
	// field, e.g. fmt.Errorf("%w: n: 0 is not in [1, 100]", ErrInvalid).
	ErrInvalid = errs.Invalid
)

// Visitor is a visitor's stored state.
type Visitor struct {
	ID string
	// Factors are the visitor's latent factors, nil until the first
	// learning event.
	Factors []float32
	// History holds the visitor's recent events, oldest first, at most the
	// store's history limit (the oldest are dropped first).
	History []HistoryEvent
	// Session is the visitor's current session window.
	Session Session
}

// HistoryEvent is one event as kept in a visitor's history: enough to fold
// the visitor in again (item, weight, time), to merge histories without
// double counting (ID), and to evaluate rules over recent behaviour.
type HistoryEvent struct {
	ID     string       `json:"id"`
	Type   signals.Type `json:"type"`
	Item   string       `json:"item,omitempty"`
	Offer  string       `json:"offer,omitempty"`
	Page   string       `json:"page,omitempty"`
	Weight float32      `json:"w,omitempty"` // learning weight (signals.Weights)
	Value  float64      `json:"v,omitempty"`
	Time   time.Time    `json:"t"`
	// Device is the anonymous visitor id (device) the event came from
	// when it is kept in a known user's history and was sent under
	// another id than the user's; "" otherwise. Erasing a device removes
	// its events from its user's history by this field.
	Device string `json:"d,omitempty"`
}

// Session is a gap-based session window: it starts with an event more than
// the session gap after the previous one.
type Session struct {
	ID    string    `json:"id,omitempty"`
	Start time.Time `json:"start"`
	Last  time.Time `json:"last"`
	// Events counts the session's events.
	Events int `json:"events"`
}

// VisitorUpdate is the change of one visitor in a Commit.
type VisitorUpdate struct {
	ID string
	// Append is added to the end of the history (then trimmed to the limit).
	Append []HistoryEvent
	// Replace makes Append the whole history, in place of the stored
	// one (then trimmed to the limit): the engine puts an event forwarded
	// from another partition into time order this way (forward.go).
	Replace bool
	// Factors replaces the stored factors when not nil.
	Factors []float32
	// Session replaces the stored session.
	Session Session
}

// EventRef names the de-duplication mark of one event: the event's id,
// under the key of the visitor state the event was committed to (the
// state key after identity resolution, VisitorUpdate.ID). A store keeps
// the mark beside that visitor's state (redisstore: in its Redis Cluster
// slot), so that a visitor's update and its events' marks are written
// together atomically.
type EventRef struct {
	Visitor string
	ID      string
}

// Commit is the durable outcome of one consumed batch.
type Commit struct {
	// Events are marked as seen (de-duplication), for the store's
	// de-duplication window. A mark's Visitor is normally the ID of one
	// of Visitors (the state its event changed).
	Events   []EventRef
	Visitors []VisitorUpdate
}

// VisitorStore keeps visitors and de-duplicates events.
type VisitorStore interface {
	// Visitors loads the visitors with the given ids, in order; an unknown
	// id gives a Visitor with only ID set (not an error).
	Visitors(ctx context.Context, ids []string) ([]Visitor, error)
	// Seen reports, for each mark, whether a Commit recorded it within
	// the de-duplication window. Callers ask with the visitor the event
	// is committed under; marks are per visitor (another visitor's event
	// with the same id is not seen).
	Seen(ctx context.Context, refs []EventRef) ([]bool, error)
	// Commit records c. Each visitor's update is atomic together with
	// the marks under that visitor: on error, a visitor is either wholly
	// recorded with its marks or not at all, so a redelivered batch
	// re-applies exactly the visitors that are not (their events are not
	// Seen). Stores that can (embedded, a single Redis server) record the
	// whole commit atomically; a Redis Cluster records it per visitor
	// (per hash slot), as the package docs of each store say. When Commit
	// returns nil all of it is durable (as durable as the store is
	// configured to be).
	//
	// The update of an anonymous visitor that is linked to a user
	// (LinkStore; an id without the user-key prefix) is refused with an
	// error matching ErrConflict, checked atomically with the write: the
	// visitor's events belong to the user since the link, and its state
	// may have been merged into the user's (see "One writer per state"
	// in forward.go). Marks-only parts (no update) are not refused.
	Commit(ctx context.Context, c Commit) error
	// DeleteVisitor erases a visitor's state; ErrNotFound if there is none.
	DeleteVisitor(ctx context.Context, id string) error
	// ReplaceVisitor stores v whole — history (trimmed to the store's
	// limit), factors and session — in place of any state of v.ID,
	// atomically (erasing a device from its user's history).
	ReplaceVisitor(ctx context.Context, v Visitor) error
}

// Item is a catalog entry.
type Item struct {
	ID       string            `json:"id"`
	Title    string            `json:"title,omitempty"`
	Category string            `json:"category,omitempty"`
	Tags     []string          `json:"tags,omitempty"`
	Attrs    map[string]string `json:"attributes,omitempty"`
	// Active items may be recommended; inactive ones never are.
	Active  bool      `json:"active"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

// ItemState is the learnt state of one item row: its factors and the
// statistics its bounded updates need (model.ItemStats).
type ItemState struct {
	Row     int32
	Factors []float32
	Curv    []float32
	Count   int32
}

// FactorStore keeps the item rows and their learnt state, shared by every
// engine replica.
type FactorStore interface {
	// ItemRows returns each id's row, assigning the next free row to ids
	// that have none, atomically (rows are dense from 0 and never reused).
	ItemRows(ctx context.Context, ids []string) ([]int32, error)
	// RowIDs returns every assigned id in row order.
	RowIDs(ctx context.Context) ([]string, error)
	// SaveItemStates stores item states (overwriting by row).
	SaveItemStates(ctx context.Context, states []ItemState) error
	// ItemStates returns every stored item state.
	ItemStates(ctx context.Context) ([]ItemState, error)
	// ScanItemStates calls fn with every stored item state, in batches,
	// each row once, in no particular order, and returns fn's first
	// error. The states given to fn, and their slices, are valid only
	// during the call (the store may reuse their memory): unlike
	// ItemStates, a scan need not hold every state in memory at once,
	// which is how the engine loads a large catalog's table.
	ScanItemStates(ctx context.Context, fn func([]ItemState) error) error
}

// BlobStore keeps named binary objects: the engine's periodic state (XᵀX,
// trending counters) and model snapshots.
type BlobStore interface {
	// PutBlob stores data under name, replacing any previous value.
	PutBlob(ctx context.Context, name string, data []byte) error
	// Blob returns the data stored under name, or ErrNotFound.
	Blob(ctx context.Context, name string) ([]byte, error)
}

// Store is the store port: everything Kairos keeps durably, as the few
// primitives a backend must provide — visitor state with history and
// de-duplication, item rows and their learnt state, blobs, identity
// links, and the storage primitives of engine/storage (documents, maps,
// logs) on which the catalog (ItemStore), promo, experiments, stats and
// attention keep theirs, each written once. engine/redisstore (Redis)
// and engine/embedded (in memory, persisted to a directory) implement it
// and pass the same suites (engine/storetest, engine/storage/storagetest).
type Store interface {
	VisitorStore
	FactorStore
	BlobStore
	LinkStore
	storage.Backend
	// Ping reports whether the store is reachable.
	Ping(ctx context.Context) error
	// Close releases the store's resources.
	Close() error
}
