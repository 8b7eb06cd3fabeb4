// Package promo runs offers, campaigns and instant-promotion rules: it
// ranks the eligible offers for a visitor (affinity from the live model
// blended with Thompson-sampling exploration), signs exposure tokens that
// attribute later impressions, clicks and conversions, and evaluates
// rules on every committed batch of events to push promotions into the
// visitor's open page.
//
//	p, err := promo.New(ctx, promo.Config{Factors: k}, promo.Deps{
//		Store: store, Profiles: eng, Model: eng, Broadcaster: bus})
//	eng.AddReactor(p) // before eng.Run
//	go p.Run(ctx)     // keeps caches fresh
//
// It imports engine, internal/jsondef (the strict decoding of definitions,
// shared with engine/experiments) and signals (never Redis, AMQP or
// echo); its Store port is implemented by engine/redisstore and
// engine/embedded (contract suite and in-memory reference store:
// engine/promo/promotest).
//
// # Offers and campaigns
//
// An Offer is shown in a slot (hero, sidebar, exit, …). It is eligible at
// time t when it is active, t is in [start, end), its budget (total
// impressions over all visitors; 0 = unlimited) is not used up, the
// visitor has not reached its frequency cap (cap.max impressions per
// cap.per, in a window that starts at the visitor's first impression),
// and — if campaigns list it — at least one of them is live: active, in
// its [start, end) and inside its weekly schedule (days, from–to in its
// time zone; a window ending before it starts spans midnight). Its
// priority is the highest of its live campaigns' (0 outside campaigns).
// Budgets are counted per replica and reconciled through the store every
// Config.ReloadEvery, so with several replicas a budget can be overrun by
// the impressions of that interval.
//
//	{"id": "o1", "title": "Running shoes −20%", "body": "This week only",
//	 "image": "https://cdn.shop.example/o1.png", "link": "https://shop.example/sale",
//	 "items": ["sku-1", "sku-2"], "categories": ["shoes"], "slot": "hero",
//	 "start": "2026-11-27T00:00:00Z", "end": "2026-12-01T00:00:00Z",
//	 "cap": {"max": 3, "per": "24h"}, "budget": 100000, "active": true}
//
//	{"id": "bf", "name": "Black Friday", "offers": ["o1", "o2"], "priority": 10,
//	 "start": "2026-11-27T00:00:00Z", "end": "2026-12-01T00:00:00Z",
//	 "schedule": {"days": ["fri", "sat", "sun"], "from": "08:00", "to": "23:00", "tz": "Europe/Paris"}}
//
// # Ranking
//
// RankOffers orders the eligible offers of a slot by campaign priority,
// then by
//
//	score = (1−w)·θ + w·a,   θ ~ Beta(1 + clicks + S·m, 1 + impressions − clicks + S·(1−m))
//
// where θ is a Thompson sample of the offer's click-through (so new
// offers are explored and clearly better ones win most of the time),
// shrunk towards the pooled click-through m = (Σclicks + 1) / (Σimpressions + 2)
// of the candidates with the weight of S = Config.PriorStrength (10)
// impressions — without that prior a new offer's θ would be drawn from
// the whole [0, 1] and drown the visitor's affinity in noise — and
// a, clamped to [0, 1], is the visitor's predicted affinity; w is
// Config.AffinityWeight (0.5). An offer whose affinity is unknown gets the
// mean of the others' (neutral); a visitor without factors is ranked by θ
// alone. The affinity for an offer is
//
//	a = (1−s)·x·c + s·x·y_o,   s = clicks / (clicks + Config.OwnShrink)
//
// where x are the visitor's factors, c the centroid of what the offer
// promotes — the mean of its items' factors and of each category's
// items' mean (up to Config.MaxCategoryItems items of a category),
// recomputed every Config.RefreshEvery through engine.Engine.Affinity,
// so x·c is exactly the mean of x·y_i — and y_o the offer's own factor,
// learnt from its exposures: each impression (r = 0) and click (r = 1)
// by a visitor with factors x takes one step of the online ridge
// regression
//
//	y_o += η·((r − x·y_o)·x − λ·y_o)     (η = Config.LearnRate, λ = Config.Reg)
//
// so y_o predicts the visitor's click on the scale of x·y_i. Steps are
// additive: each replica stores its steps as deltas (CounterStore), and
// the replicas' sums converge. Without c (no items or categories with
// factors), a = x·y_o; without clicks, a = x·c. Ranking 100 offers takes
// about 24 µs of CPU (BenchmarkRankOffers: sampling, affinities, five
// tokens), plus two store reads: the visitor's factors and, when offers
// have caps, the visitor's cap counters.
//
// # Tokens
//
// Every ranked offer and every promotion carries a token: an opaque,
// URL-safe string that encodes the offer, the slot, a hash of the
// visitor, the time (ms) and a random exposure id, signed with
// HMAC-SHA256 (truncated to 128 bits) under the installation's secret
// (SecretStore: created once, kept in Redis or the data directory). The
// page puts it on the rendered element (data-kairos-token); the tracker
// sends it with the impression and clicks, so React attributes them to
// the offer without a lookup. Tokens that do not verify (forged,
// altered), that were made for another visitor, or that are older than
// Config.TokenTTL attribute nothing (kairos_promo_tokens_rejected_total).
// Events naming an offer without a token count too, unless
// Config.RequireToken.
//
// # Rules
//
// A Rule is JSON:
//
//	{"id": "exit-shoes", "priority": 10, "cooldown": "24h",
//	 "when": {"all": [
//	   {"count": {"type": "view", "category": "shoes", "within": "10m", "min": 3}},
//	   {"not": {"count": {"type": "conversion", "within": "all"}}},
//	   {"exit": {}}]},
//	 "then": {"offer": "o1", "slot": "exit"}}
//
// "then" shows an offer (in "slot", default the offer's own), or, with
// only "slot" (and optionally "campaign"), the best eligible offer for the
// slot as RankOffers would rank it. "cooldown" (default "1h", "0s" for
// none) is the least time between two promotions of the rule to one
// visitor, kept in the store (TryRuleCooldown), so a restart or another
// replica does not fire again early.
//
// The condition grammar — every condition is an object with exactly one
// member:
//
//	{"all": [cond, …]}   every condition holds (1 to 32)
//	{"any": [cond, …]}   at least one holds
//	{"not": cond}        cond does not hold
//	{"count": {filter, "type": "view" | ["view", "click"], "min": 1, "max": n}}
//	                     the number of matching events is in [min, max]
//	{"dwell": {filter, "element": "offer:7" | "item:42" | "<data-kairos-element>", "min_ms": 2000}}
//	                     the total cursor dwell on it reaches min_ms
//	{"scroll": {filter, "min": 75}}     a scroll depth (%) of at least min
//	{"exit": {filter}}                  exit intent: the cursor left the viewport
//	                                    through the top (tracker event type "exit")
//	{"affinity": {"offer": "o1", "min": 0.3}}
//	                     the visitor's predicted affinity for the offer is at least min
//	{"session": {"min_events": 5, "min_duration": "2m"}}
//	                     the current session has that many events and has lasted that long
//
// and the filter members, all optional, select events:
//
//	"item": "sku-1"        on that item         "offer": "o1"   about that offer
//	"category": "shoes"    on an item of it     "page": "/checkout"  page URL contains it
//	"within": "session"    the current session (default; "batch" for exit)
//	          "batch"      the events of the batch being evaluated
//	          "all"        the visitor's whole kept history
//	          "10m", "7d"  up to that long before the visitor's newest event
//
// "No conversion yet" is {"not": {"count": {"type": "conversion", "within": "all"}}}.
// Dwell on a custom data-kairos-element name is known only for the batch's
// events (the history keeps items and offers, not elements). Windows are
// measured in event time, back from the visitor's newest event (a late
// event with an old time does not move them back).
// Limits: 10 levels, 100 conditions, 64 KiB per rule.
//
// Rules are validated on write with errors that name the JSON path:
//
//	rules[r1].when.all[2].count.within: "10x" is not a duration (e.g. "10m", "24h", "7d") nor session, batch or all
//
// and the offers, campaigns and rules they name must exist; deleting an
// offer or campaign still named is ErrInUse.
//
// # Evaluation
//
// React (engine.Reactor) runs on the engine's consuming goroutine after
// each commit, with the batch's fresh events only: a redelivered batch
// does not count or fire again. It first attributes impressions, clicks
// and conversions (one AddOfferCounts per batch), then, for each visitor
// with fresh events that are not all impressions (the impression of a
// rendered promotion never fires the next one), evaluates the compiled
// rules in priority order against the visitor's state after the batch
// (history, session, factors) — in memory, about 13 µs per visitor and
// batch for 100 rules, without allocation (BenchmarkReact). The first rule
// that matches, is not cooling down (remembered in memory, decided by the
// store) and has an eligible offer fires: at most one promotion per
// visitor per batch. Firing is TryRuleCooldown, then AppendPromotion (the
// store assigns the promotion's Seq: strictly increasing per visitor, the
// SSE event id), then a broadcast of its JSON on signals.TopicPromotions
// (RabbitMQ exchange kairos.promotions, for server-side channels and the
// API replicas' streams). A promotion logged but not broadcast is found by
// streams on their next poll; a crash between the commit and React loses
// that batch's promotions (never doubles them).
//
// A promotion goes to the device: its visitor is the Visitor of the
// latest fresh event that triggered the evaluation (the anonymous id the
// page's tracker streams for), even when the events landed on a known
// user's state (engine.UserKey). Caps and the token are that device's
// too; the rule's cooldown is kept per state, so a known user's devices
// share it.
//
// With Deps.Experiments (engine/experiments), a rule targeted by a
// running promotions experiment pushes the offer of the visitor's variant
// instead of its own, or nothing for a holdout variant (its cooldown
// starts all the same, so the arms stay comparable); the experiment logs
// the exposure. OfferRequest.Campaign restricts RankOffers to one live
// campaign's offers (an offers experiment's campaign variant).
//
// The promotion JSON (also the SSE data):
//
//	{"id": "1764239102123456", "seq": 1764239102123456, "visitor": "v-17",
//	 "offer": {"id": "o1", "title": "…", "body": "…", "image": "…", "link": "…", "item": "sku-1"},
//	 "slot": "exit", "token": "AZ…", "rule": "exit-shoes",
//	 "created": "2026-11-27T10:05:02.123Z", "expires": "2026-11-27T10:15:02.123Z"}
//
// # Concurrency
//
// An Engine is safe for concurrent use. Definitions are an immutable
// snapshot swapped atomically (writes are serialised by writeMu); offer
// counters and own factors are guarded by statsMu; cooldowns by cdMu; the
// exploration RNG by rngMu. Lock order: writeMu, then statsMu, then rngMu;
// cdMu is never held with another.
package promo
