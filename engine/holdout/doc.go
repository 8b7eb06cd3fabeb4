// Package holdout is the holdout of personalization itself: a configured
// share of visitors gets the non-personalized baseline on every surface,
// so that the site sees the lift of the whole personalization layer —
// conversion rate and revenue per visitor, personalized against held out,
// with the statistics of experiments (eval/abtest).
//
//	h, err := holdout.New(store, store, holdout.Config{Share: 0.05}) // storage.Maps, engine.LinkStore
//	eng.AddReactor(h)                                                // counts units and conversions
//	arm, err := h.Assign(ctx, visitor, user)                         // ArmHoldout or ArmPersonalized
//	res, err := h.Results(ctx)                                       // GET /v1/holdout/results
//
// # Assignment
//
// A request's subject is the subject key of engine/experiments: "u:<user>"
// for a known user (the request's, or the one the visitor is linked to by
// identify), else "a:<visitor>". Its arm is the holdout when
// experiments.Bucket(Config.Salt, subject) < Config.Share — the
// experiments' hash with a salt of its own ("kairos-holdout"), so the arm
// is sticky, the same on every replica and after restarts, needs no
// store write to assign, and is independent of every experiment's. A
// visitor counted before it signs up keeps its arm: the user becomes an
// alias of its first counted device's unit (person.go), so its requests
// on every device get that arm and its outcomes count in that unit (one
// person, one unit); a user with no counted device has its own hash's
// arm.
//
// What the baseline is, per surface, is the API's business (package api:
// trending recommendations, trending items of the item's category instead
// of similar items, offers ranked without the visitor's factors); this
// package only decides and counts.
//
// # Counting
//
// Holdout is an engine.Reactor. Every subject with fresh events in a
// committed batch is a unit of its arm from its first event on (intent to
// treat: served or not), counted once; its conversion events add to its
// arm's conversions and revenue. The layout on storage.Maps (so every
// backend keeps it, see count.go): one map per unit, "ho:u:<subject>", with
// its arm, its revenue in cents and whether it converted, expiring
// Config.UnitTTL after its last write; and Shards counter maps
// "ho:c:<n>" (a subject's shard is FNV-1a of its key, so there is no hot
// key in a Redis Cluster) with per arm units, converters, conversions,
// revenue (cents) and revenue_sq (Σ of each unit's squared revenue,
// cents², updated as (x+r)² − x² when a unit's revenue x grows by r). A
// batch costs one read of its subjects' units, one write per unit that
// is new or converted — guarded by its values as read, so another replica
// writing the same unit makes one read again and retry — and one lazy
// Txn of increments per counter shard it touches: a crash between the
// unit writes and the counter writes can lose that batch's increments,
// like the other derived counters. A replica remembers the subjects it
// counted (Config.Remember) so that a returning visitor's batch without a
// conversion costs nothing.
//
// # Results
//
// Results sums the shards and runs abtest.Analyze twice, on the
// conversion rate (converters / units) and on the revenue per visitor
// (Welch's t test on Σx, Σx²), with the holdout as the control and the
// configured split as the weights of the sample-ratio-mismatch check. A
// positive lift is what personalization adds.
package holdout
