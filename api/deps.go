package api

import (
	"context"
	"net/http"
	"time"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/attention"
	"github.com/kairoshq/kairos/engine/promo"
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
	SimilarTo(ctx context.Context, r engine.SimilarRequest) ([]engine.Rec, error)
}

// Catalog keeps the item catalog (the engine, over engine.CatalogStore).
type Catalog interface {
	// PutItem validates and stores it (creating or replacing) and returns
	// the stored item with Created and Updated set by the engine (Created
	// is kept on replace). Invalid items give an error wrapping
	// engine.ErrInvalid whose message names the field.
	PutItem(ctx context.Context, it engine.Item) (engine.Item, error)
	// CreateItem is PutItem of a new item: an error wrapping
	// engine.ErrConflict (with a message for the client) when the id
	// exists, decided atomically by the store.
	CreateItem(ctx context.Context, it engine.Item) (engine.Item, error)
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
	// Offers serves GET /v1/offers?visitor= (the promo engine).
	Offers Offerer
	// Definitions serves the CRUD of /v1/offers, /v1/campaigns and
	// /v1/rules (the promo engine).
	Definitions Definitions
	// Promotions serves GET /v1/promotions/stream (the promo engine).
	Promotions PromotionLog
	// Subscriber delivers the promotions broadcast on
	// signals.TopicPromotions to the streams (the bus); without it the
	// streams find new promotions at their heartbeat only.
	Subscriber signals.Subscriber
	// Experiments serves /v1/experiments and decides the variants of
	// /v1/offers and /v1/recommendations (engine/experiments; see
	// experiments.go).
	Experiments Experiments
	// Rotation, when set, serves the rotation= and page= parameters of
	// GET /v1/recommendations (engine/rotation): recently shown items
	// demoted with a fade, and paging with a next token.
	Rotation Rotator
	// Filters, when set, keeps the named filters of /v1/filters and the
	// filter_name= parameter (engine/filter.Store); filter= and boost=
	// work without it.
	Filters FilterStore
	// Holdout, when set, holds a share of visitors out of
	// personalization on /v1/recommendations, /v1/items/{id}/similar and
	// /v1/offers, and serves GET /v1/holdout/results (engine/holdout).
	Holdout Holdout
	// Attention serves GET /v1/pages/attention (engine/attention).
	Attention AttentionReader
	// Trending lists the top items of GET /v1/dashboard/summary (the
	// engine); without it the summary has no top items.
	Trending TrendingReader
	// Model describes the live model and its retrains in GET
	// /v1/dashboard/summary; without it the summary's model is null.
	Model ModelReader
	// Applier, when set, serves the wait= parameter of POST /v1/events
	// and POST /v1/identify (the engine): the answer waits until the
	// accepted events are applied.
	Applier Applier
	// Site, when set, serves GET / and GET /shop/* (kairos serve --demo
	// mounts the demo shop of package api/demo): a plain http.Handler,
	// public (no key), called with the request as received; its context
	// carries the client address (ClientIP).
	Site http.Handler
}

// AttentionReader answers GET /v1/pages/attention
// (engine/attention.Attention).
type AttentionReader interface {
	// Heat returns the attention heat of the page of pageURL (normalised
	// by the reader) with up to n elements. The API has checked that the
	// page is present and 1 <= n <= MaxResults; errors wrapping
	// engine.ErrInvalid (a page that is not a page URL) are answered 400.
	Heat(ctx context.Context, pageURL string, n int) (attention.Heat, error)
	// MaxResults is the largest n.
	MaxResults() int
}

// Offerer ranks offers for a visitor (engine/promo.Engine).
type Offerer interface {
	// RankOffers returns up to r.N eligible offers of r.Slot for
	// r.Visitor, best first, each with its exposure token. The API has
	// checked the visitor, the slot name and 1 <= N <= Config.MaxResults.
	RankOffers(ctx context.Context, r promo.OfferRequest) (promo.OfferList, error)
}

// Definitions keeps offers, campaigns and rules (engine/promo.Engine).
type Definitions interface {
	// PutJSON validates and stores a definition of kind from its JSON
	// body (pathID: the id of the path, "" for POST) and returns it as
	// stored and whether it was created; invalid bodies give errors
	// wrapping engine.ErrInvalid whose message names the JSON path.
	PutJSON(ctx context.Context, kind promo.Kind, pathID string, body []byte) (def any, created bool, err error)
	// Get returns one definition or an error wrapping engine.ErrNotFound.
	Get(kind promo.Kind, id string) (any, error)
	// List returns every definition of kind in id order.
	List(kind promo.Kind) ([]any, error)
	// Delete removes one: engine.ErrNotFound, or promo.ErrInUse when a
	// campaign or rule still names it.
	Delete(ctx context.Context, kind promo.Kind, id string) error
}

// PromotionLog reads the visitors' promotions (engine/promo.Engine).
type PromotionLog interface {
	// Promotions returns up to limit of the visitor's unexpired
	// promotions with Seq > after, in ascending Seq order.
	Promotions(ctx context.Context, visitor string, after uint64, limit int) ([]promo.Promotion, error)
}
