// Package filter evaluates the filter and boost expressions of serving
// requests (GET /v1/recommendations, similar items, offers) and keeps
// the named, stored filters (PUT /v1/filters/{name}).
//
// # Language
//
// Expressions are written in Expr (github.com/expr-lang/expr), not a
// home-made language:
//
//	"sale" in tags && attributes.brand == "acme"      filter
//	category == page.category ? 2 : 1                 boost
//
// Expr was chosen over CEL (cel-go) because it has no dependency (CEL
// brings ANTLR, protobuf and genproto into a binary that has none of
// them), it type-checks against a plain Go struct (Env) with positions in
// its errors, and its VM evaluates a compiled program on a struct without
// allocating an activation per item — the per-item evaluations of a view
// over 100k items take milliseconds. What CEL's runtime cost limit gives
// is obtained here statically (see Compile, "Cost bound"): expressions
// are small, cannot loop except over an item's bounded tag and attribute
// lists, and cannot nest loops.
//
// # Names
//
// An expression reads the item — id, category, tags, attributes (a map of
// strings), created (a time), active — or, for an offer, its id, slot,
// items, categories (category is then its first), and the request's
// context: segment (the request's most specific trending segment,
// "campaign:…", "referrer:…" or "device:…"), campaign, referrer (host),
// device, page (the page item's id, category, tags, attributes) and now
// (the request's time to the minute). Expr's operators and builtins apply
// (in, matches, startsWith, any, all, len, duration, date, …), except now(),
// repeat, timezone, toJSON and fromJSON.
//
// # Evaluation
//
// Compiler compiles each distinct text once (a bounded LRU). Views
// evaluates a filter and a boost over every item row once per item
// version and distinct value of the context it reads (page.category: once
// per category; page.id: once per page item — the first request of each
// pays an evaluation of the whole catalog, with the catalog's read lock
// held) (View: a bitset of qualifying
// rows, their list when few, a boost per row), re-evaluating only the rows
// changed since; the top-K scan reads the view (model.Query.Keep,
// LogBoost, Boost, Rows), so a filter never starves a list and a
// selective one makes it cheaper.
//
// # Boost semantics
//
// A boost multiplies an item's utility. The model's scores (inner
// products, cosines, the blend's standardised scores) can be negative, so
// they are taken as log-utilities: the boost b multiplies e^score, i.e.
// ln b is added to the score (model.Query.LogBoost) — a boost above 1
// always ranks an item higher and one below 1 lower, whatever the sign of
// its score, by the same amount at every score (×2: +0.69, ×100: +4.6;
// the ALS scores of implicit feedback are preferences around 0…1, the
// blend's are standard scores). Trending popularity and offers' scores
// are positive: they are multiplied. The returned score is the boosted
// one. A boost of 0 or less (or an evaluation error) drops the item, as a
// failing filter does. A filter whose evaluation fails
// (e.g. a missing attribute compared with <) is false for that item.
//
// # Named filters and promotions
//
// Store keeps named filters ({filter, boost, share}) as versioned
// documents of engine/defstore, on either store, reloaded by every replica
// when the collection's version changes. A named filter without a share
// applies to the whole list; with a share s > 0 it is a promotion: of the
// n slots of a list, round(s·n) go to the best-ranked items it keeps
// (boosted by its boost), spread evenly among the others and marked
// promoted, with no item twice.
package filter
