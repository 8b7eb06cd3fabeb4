package promo

import (
	"context"
	"time"
)

// CapIncrement counts one impression of Offer to Visitor against a
// frequency cap of period Period.
type CapIncrement struct {
	Visitor, Offer string
	Period         time.Duration
}

// Counts are the additive changes of one batch: offer counters, offers'
// learnt factors, and per-visitor cap counters. Now is the time of the
// cap increments.
type Counts struct {
	Stats   map[string]OfferStats
	Factors map[string][]float32
	Caps    []CapIncrement
	Now     time.Time
}

// Empty reports whether c changes nothing.
func (c *Counts) Empty() bool { return len(c.Stats) == 0 && len(c.Factors) == 0 && len(c.Caps) == 0 }

// OfferCounts are the counters of every offer.
type OfferCounts struct {
	Stats   map[string]OfferStats
	Factors map[string][]float32
}

// CounterStore keeps the offers' counters and learnt factors, shared by
// every replica: all changes are additions, so replicas' writes commute.
type CounterStore interface {
	// AddOfferCounts adds c atomically (one round trip).
	AddOfferCounts(ctx context.Context, c Counts) error
	// ForgetOfferCounts removes the counters and the k own factors of the
	// offer id (deleted: an offer created again with its id starts anew).
	ForgetOfferCounts(ctx context.Context, id string, k int) error
	// OfferCounts returns every offer's counters and factors.
	OfferCounts(ctx context.Context) (OfferCounts, error)
}

// VisitorStateStore keeps per-visitor promotion state: frequency-cap
// counters and rule cooldowns.
type VisitorStateStore interface {
	// OfferCaps returns the visitor's impressions of each offer in the offer's
	// current cap window at now (0 when the window ended or never began).
	// A window starts at the first impression counted by AddOfferCounts and
	// lasts its CapIncrement.Period.
	OfferCaps(ctx context.Context, visitor string, offers []string, now time.Time) ([]int, error)
	// TryRuleCooldown starts the cooldown of rule for visitor, lasting d from
	// now, unless one is running: ok tells whether it started; until is
	// the end of the running (or new) cooldown. Atomic: of concurrent
	// callers, one wins.
	TryRuleCooldown(ctx context.Context, visitor, rule string, now time.Time, d time.Duration) (ok bool, until time.Time, err error)
	// RuleCooldown reports whether a cooldown of rule for visitor runs at
	// now, and until when. It changes nothing.
	RuleCooldown(ctx context.Context, visitor, rule string, now time.Time) (until time.Time, running bool, err error)
	// ForgetPromoVisitor erases the visitor's caps, cooldowns and promotion
	// log (not an error when there are none).
	ForgetPromoVisitor(ctx context.Context, visitor string) error
}

// PromotionLog keeps each visitor's recent promotions, for the replay of
// server-sent events.
type PromotionLog interface {
	// AppendPromotion assigns p its Seq — the larger of the visitor's
	// last Seq + 1 and p.Created in Unix µs — and its ID (Seq in
	// decimal), appends it to the visitor's log, keeps only the keep
	// newest, and returns it. The log of a visitor without promotions
	// for ttl may be dropped.
	AppendPromotion(ctx context.Context, p Promotion, keep int, ttl time.Duration) (Promotion, error)
	// Promotions returns up to limit of the visitor's logged promotions
	// with Seq > after, in ascending Seq order.
	Promotions(ctx context.Context, visitor string, after uint64, limit int) ([]Promotion, error)
}

// SecretStore keeps the installation's token-signing secret.
type SecretStore interface {
	// PromoSecret returns the secret, creating a random 32-byte one on first
	// use; concurrent first calls (replicas) all get the same one.
	PromoSecret(ctx context.Context) ([]byte, error)
}

// Store is what the promo engine keeps durably: its definitions, offer
// counters, per-visitor caps and cooldowns, promotion logs and the token
// secret. BackendStore (NewStore) implements it once on the storage
// primitives of any backend; it passes the suite of
// engine/promo/promotest. Errors are of the kinds of internal/errs.
type Store interface {
	// Definitions returns the offers, campaigns and rules.
	Definitions() *Definitions
	CounterStore
	VisitorStateStore
	PromotionLog
	SecretStore
}
