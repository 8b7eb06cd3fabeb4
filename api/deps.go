package api

import (
	"context"
	"time"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/stats"
	"github.com/kairoshq/kairos/signals"
)

// Recommender answers recommendation requests (the engine).
type Recommender interface {
	// Recommend ranks items for r.Visitor. r has been checked by the API
	// (visitor present, 1 <= N <= Config.MaxResults); errors wrapping
	// engine.ErrInvalid are answered 400 with their message,
	// engine.ErrUnavailable 503. An unknown visitor is not an error (the
	// engine answers with its cold-start strategy).
	Recommend(ctx context.Context, r engine.RecRequest) (engine.RecResponse, error)
	// Similar returns up to n items similar to item, best first;
	// engine.ErrNotFound when the item is unknown.
	Similar(ctx context.Context, item string, n int) ([]engine.Rec, error)
}

// Catalog keeps the item catalog (the engine, over engine.CatalogStore).
type Catalog interface {
	// PutItem validates and stores it (creating or replacing) and returns
	// the stored item with Created and Updated set by the engine (Created
	// is kept on replace). Invalid items give an error wrapping
	// engine.ErrInvalid whose message names the field.
	PutItem(ctx context.Context, it engine.Item) (engine.Item, error)
	// Item returns one item or an error wrapping engine.ErrNotFound.
	Item(ctx context.Context, id string) (engine.Item, error)
	// DeleteItem removes an item or returns an error wrapping
	// engine.ErrNotFound.
	DeleteItem(ctx context.Context, id string) error
	// Items lists up to limit items with ids greater than after, in
	// ascending id order.
	Items(ctx context.Context, after string, limit int) ([]engine.Item, error)
}

// Checker reports readiness for /readyz: nil when the broker and the store
// can serve, otherwise an error whose message is shown to the caller.
type Checker interface {
	Ready(ctx context.Context) error
}

// VisitorEraser erases a visitor (DELETE /v1/visitors/{id}).
type VisitorEraser interface {
	// EraseVisitor removes the visitor's state and records a tombstone for
	// its archived events; engine.ErrNotFound when there is nothing to
	// erase.
	EraseVisitor(ctx context.Context, id string) error
}

// StatsReader answers GET /v1/stats/items/{id} and /v1/stats/offers/{id}
// (engine/stats.Stats).
type StatsReader interface {
	// Series returns every bucket of subject at res that overlaps
	// [from, to), oldest first, empty ones included (nil maps). The API
	// has checked res, from < to and the number of buckets (at most
	// MaxPoints); errors wrapping engine.ErrInvalid are answered 400,
	// engine.ErrUnavailable 503.
	Series(ctx context.Context, subject stats.Subject, res stats.Resolution, from, to time.Time) ([]stats.Point, error)
	// MaxPoints is the largest number of buckets of one Series.
	MaxPoints() int
}

// Deps are the server's collaborators; the first four are required, the
// others enable their routes (which answer 404 without them).
type Deps struct {
	// Publisher receives accepted events; a nil error must mean the events
	// are durable (signals.Publisher's contract).
	Publisher   signals.Publisher
	Recommender Recommender
	Catalog     Catalog
	Checker     Checker
	// Eraser serves DELETE /v1/visitors/{id}.
	Eraser VisitorEraser
	// Stats serves GET /v1/stats/items/{id} and /v1/stats/offers/{id}.
	Stats StatsReader
}
