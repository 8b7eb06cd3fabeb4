// Package experiments runs A/B experiments and bandits on what Kairos
// serves — offers of a slot, recommendations, the promotions a rule
// pushes — and analyses them with package eval/abtest (the same code as
// `kairos eval abtest`).
//
//	x, err := experiments.New(ctx, experiments.Config{}, experiments.Deps{
//		Backend: store, Publisher: bus, Links: store, Secret: secret})
//	eng.AddReactor(x) // before eng.Run: attribution of outcomes
//	go x.Run(ctx)     // reloads, bandit re-weighting, looks, queued exposures
//
//	d, ok, err := x.Decide(ctx, experiments.Request{Surface: experiments.SurfaceOffers, Slot: "hero", Visitor: v})
//	… serve d's variant …
//	err = x.Expose(ctx, d) // logs the first exposure
//
// It imports engine, internal/jsondef (the strict decoding of definitions,
// shared with engine/promo), engine/storage and engine/defstore,
// eval/abtest and signals (never Redis, AMQP or echo). What it keeps
// durably it keeps on the storage primitives of any backend
// (BackendStore, kvstore.go: the key layout is there); the contract
// suite, run on the in-memory primitives and on the embedded and Redis
// backends, is engine/experiments/experimentstest.
//
// # Experiments
//
// An experiment (POST /v1/experiments) is JSON:
//
//	{"id": "hero-banner", "name": "Hero: spring sale vs default",
//	 "target": {"surface": "offers", "slot": "hero"},
//	 "variants": [{"name": "A", "weight": 1},
//	              {"name": "B", "weight": 1, "offer": "spring-sale"}],
//	 "metric": "conversion", "guardrails": [{"metric": "revenue", "max_drop": 0.05}],
//	 "attribution_window": "24h", "start": "2026-11-23T00:00:00Z", "stop": "2026-12-07T00:00:00Z",
//	 "mode": "fixed"}
//
// Members: id (letters, digits, '-', '_', '.'; at most 64 bytes), name,
// salt (default the id), target, mode ("fixed" or "bandit"), variants (2
// to 10; the first is the control), start and stop (RFC 3339, each
// optional: no start is "from creation", no stop "until stopped"), metric
// (ctr, add_to_cart, conversion — the default — or revenue), guardrails
// (up to 5: {"metric", "max_drop"}), attribution_window (1m to 90d,
// default 24h), bandit_every (1s to 30d, default 15m), floor (the least
// share of an arm in bandit mode, default 0.01, below 1/k), alpha
// (default 0.05) and tuning (the sequential test's N*, default 5000).
// Unknown members are refused; every error names its JSON path
// ("variants[1].offer: only offers and promotions experiments serve
// offers"). A variant has a name, a weight (default 1; any non-negative
// scale, normalised; 0 pauses the arm) and at most one content, by
// surface:
//
//	offers           {"offer": "o2"}       the offer is ranked first in the slot (when eligible)
//	                 {"campaign": "bf"}    only that campaign's offers are ranked
//	                 {"holdout": true}     no offers at all
//	                 {}                    the normal ranking (a control)
//	recommendations  {"params": {"strategy": "trending", "blend_below": 1, "exclude_seen": false}}
//	                 {}                    the normal recommendations
//	promotions       {"offer": "o2"}       the rule pushes that offer instead
//	                 {"holdout": true}     the rule pushes nothing
//	                 {}                    the rule's own offer
//
// Recommendation params: strategy "trending" serves recency-weighted
// popularity to everyone; blend_below replaces the engine's
// --blend-below; exclude_seen replaces the request's. Only one experiment
// may target a surface (and slot, or rule) at a time: a definition whose
// [start, stop) overlaps another's on the same target is refused
// (ErrConflict: 409). Once an experiment has started its salt, target,
// attribution window, start and variants (except their weights) cannot
// change, nor, once it has stopped, its stop: create a new experiment
// instead. A promotions experiment's rule must exist, and cannot be
// deleted while the experiment targets it. Stop one by setting stop
// (PUT); DELETE removes it with all its data.
//
// # Assignment and identity
//
// A request is served the variant of its subject: the user when one is
// known (the request names it, or the visitor is linked to one in the
// engine's LinkStore), otherwise the anonymous visitor. Subject keys are
// "u:<user>" and "a:<visitor>". The first time a subject is seen its
// variant is drawn deterministically:
//
//	u = Bucket(salt, subject) = first 53 bits of SHA-256(salt ‖ 0x00 ‖ subject) / 2⁵³
//	variant = the arm whose cumulative-weight interval holds u (Pick)
//
// with the current weights (the configured ones, or the bandit's), and
// stored (AssignmentStore, set-if-absent: concurrent replicas agree). From
// then on the subject keeps it, whatever the weights become: sticky for
// returning visitors, across weight edits and bandit re-weighting. An
// identified user keeps the variant the anonymous visitor had: when a
// user has no assignment yet, the assignments of the anonymous ids linked
// to the user (the request's visitor first, then up to Config.MaxLinked
// others) are looked up and the earliest is copied to the user's key, so
// every later device of that user gets it too. Propensity is the arm's
// weight when the subject was first assigned.
//
// # Exposure
//
// Decide returns the decision; the caller serves it and calls Expose.
// Only a subject's first exposure is logged (later ones change no count:
// the unit is the subject from its first exposure on). Expose publishes
// it as an event through the normal pipeline, so that the archive holds
// every exposure and the counts can be rebuilt exactly:
//
//	{"id": "xp-hero-banner-<24 hex of SHA-256(experiment, subject)>", "type": "impression",
//	 "visitor": "v-17", "user": "(when the subject is a user)", "ts": "…",
//	 "props": {"experiment": "hero-banner", "variant": "B", "propensity": "0.500000",
//	           "weights": "0.500000,0.500000", "sig": "<HMAC>"}}
//
// The id is deterministic (a repeated publish is de-duplicated by the
// engine), the weights are every arm's at that moment (for the SRM
// check) and sig is an HMAC-SHA256 (128 bits) under a key derived from the
// installation's secret: an impression posted with the same props by
// anyone else counts nothing. The event has no item and no offer, so the
// engine learns nothing from it, engine/stats and engine/promo do not
// count it, and a batch of impressions fires no rule; it is added to the
// visitor's history like any event. If the publish fails the assignment is
// undone and the error returned (the API answers 503; the next request
// decides again). Promotions are pushed on the engine's consuming
// goroutine, where a synchronous publish to the in-process bus would wait
// for itself: PromotionOffer queues their exposures and Run publishes
// them (Config.QueueLength; overflow is dropped, counted and unassigned).
//
// # Units, outcomes and attribution
//
// The engine (React, an engine.Reactor) turns consumed events into
// counts. A verified exposure event makes its subject a unit of the
// variant, with its time t₀, unless the subject is a unit already. An
// event carrying both a visitor and a user (a sign-up, or any event after
// identify) makes the user's key an alias of the visitor's unit, when the
// visitor is a unit and the user is not. An outcome — click, add_to_cart
// or conversion — of a person (its user: the event's, or the one the
// engine resolved the visitor to; else the anonymous visitor) is
// attributed to the person's first exposure: the earliest unit among the
// user's key (or the unit it is an alias of) and the visitor's key; it
// counts when its time is in [t₀, t₀ + attribution_window). Each unit
// carries all four metrics, so any can be the primary one or a guardrail:
//
//	ctr          x = 1 if the unit clicked what the surface shows in the window (a click
//	             naming an offer or carrying a token for offers and promotions, naming an
//	             item for recommendations), else 0
//	add_to_cart  x = 1 if it added to the cart in the window, else 0
//	conversion   x = 1 if it converted in the window, else 0
//	revenue      x = Σ of its conversions' values in the window (0 if none): revenue per visitor
//
// Per variant the store keeps n (units), Σx per metric and Σx² for
// revenue (Σx² = Σx for binary metrics): exactly what abtest.Variant
// needs (Users = n; Conversions = Σx, or for revenue the converted units;
// Sum, SumSquares = Σx, Σx² of revenue). Revenue is kept in cents as
// integers: a conversion adds c = round(100·value) to the unit's total r
// and to Σx, and (r + c)² − r² to Σx², held as four base-2³² limbs —
// exact, order-independent and beyond overflow for any realistic
// traffic. Each unit's record (variant, t₀, propensity, its three flags
// and total) makes the next update exact. Per variant the store also
// keeps Expected = Σ over exposures of the arm's weight at that exposure
// (in millionths): the expected split the SRM check compares n with,
// right even after weight edits and bandit re-weighting.
//
// React loads the records an applied batch reads (one store call, and one
// more for aliases' targets), applies the events in order in memory and
// writes every changed record with the count deltas in one atomic
// compare-and-set (UnitStore.UpdateExperimentUnits); if another replica
// changed a record meanwhile it reads and applies again. An exposure
// event of an experiment this replica does not know yet makes it reload
// the definitions first. Outcomes and links are only considered in
// [start, stop + window) (no unit exists before start, and no window
// lasts beyond): stopped experiments cost nothing once their last window
// has closed. An outcome consumed before its unit's exposure event counts
// nothing (the exposure is published before the page is answered, so
// this needs a client clock far ahead).
//
// # Bandits
//
// In bandit mode Run re-weights each running experiment at most every
// bandit_every: the weights are abtest.ThompsonWeights of the primary
// metric's posteriors (Beta(1 + Σx, 1 + n − Σx) for binary metrics,
// N(m, V/n) for revenue — uniform until each arm has 2 units), floored so
// that each arm keeps at least floor (w' = f + (1 − k·f)·w). They are
// stored with a version (WeightStore: compare-and-set, so one replica
// writes each version) and every replica reloads them every
// Config.ReloadEvery. New subjects are assigned by them; returning
// subjects keep their arm; each exposure logs the chosen arm's weight as
// its propensity, so that the value of any other policy can be estimated
// off-policy from the log (Rebuilt.Decisions → `kairos eval offpolicy`,
// IPS and self-normalised IPS).
//
// # Looks and results
//
// Run stores a look — a snapshot of the counts — once per Config.LookEvery
// (default 15 minutes; at multiples of it since the epoch, once across
// replicas) while an experiment runs and until its last window closes.
// Results (GET /v1/experiments/{id}/results) is:
//
//	{"experiment": {…}, "status": "running", "as_of": "…", "metric": "conversion",
//	 "counts": [{"variant": "A", "units": 1000, "expected_share": 0.5, "clicks": 300, "carts": 120,
//	             "conversions": 100, "revenue": 5012.5, "revenue_sq": 410233.25}, …],
//	 "report": {… abtest.Report: per variant users, conversions, rate and Wilson interval, mean,
//	            diff, lift and their intervals, p-value (Holm), the confidence sequence,
//	            seq and always-valid p-values, chance to win, expected loss,
//	            chance to be best, bandit weight; SRM χ², p and flag; verdict; notes},
//	 "guardrails": [{"metric": "revenue", "max_drop": 0.05, "status": "ok",
//	                 "variants": [{"variant": "B", "status": "ok", "diff": …, "lift": …,
//	                               "seq_low": …, "seq_high": …, "always_valid_p_value": …}]}],
//	 "verdict": "B beats A on conversion: +12.0 % [+4.0 %, +20.0 %], chance to win 99.2 %; keep running: no / SRM: none / guardrails: revenue ok",
//	 "weights": {"version": 12, "at": "…", "weights": {"A": 0.2, "B": 0.8}},
//	 "history": [{"at": "…", "variants": [{"name": "A", "units": 250, "mean": 0.096},
//	              {"name": "B", "units": 251, "mean": 0.108, "diff": …, "diff_low": …, "diff_high": …,
//	               "lift": …, "lift_low": …, "lift_high": …, "seq_low": …, "seq_high": …,
//	               "seq_lift_low": …, "seq_lift_high": …, "seq_p_value": …, "always_valid_p_value": …}]}, …],
//	 "input": {… the abtest.Input of the report, looks as its history …}}
//
// report is abtest.Analyze(input): `jq .input | kairos eval abtest` prints
// the same report. Its always-valid p-value is the running minimum of the
// sequential p-value over every look and the current counts. ctr and
// add_to_cart are analysed as conversion-type metrics (the report and
// verdict name them). history has one point per look and a last one for
// the current counts, with the functions Analyze uses (its last point
// equals the report): a dashboard charts lift with its fixed-horizon
// interval and its always-valid confidence sequence (seq_lift_low/high
// are the sequence of the difference divided by the control's mean, the
// low bound clipped at −100 %, below which a lift of non-negative
// outcomes cannot be) and
// the always-valid p-value falling over time. A guardrail fails when the
// confidence sequence of the difference lies entirely below
// −max_drop·|control mean| (the variant is worse by more than tolerated,
// at any look), warns when the point estimate does, and is ok otherwise.
//
// # Rebuilding from the archive
//
// Rebuild replays archived events (in archive order, de-duplicated by id)
// through the same ledger in memory and returns the counts and the units;
// `kairos eval experiment --from-archive` prints them beside the live
// counts. They are equal when the archive holds what the engine consumed:
// not when raw events expired (archive retention) or were erased (erased
// visitors' units stay in the live aggregates), and, with several
// replicas, only over all their archives. A user is known for an
// anonymous event from the links of earlier events, as the engine's link
// store knew it (an anonymous event in the same batch before its visitor's
// first identify is the one case the engine resolves earlier).
//
// # Cost
//
// Deciding for a returning visitor takes about 0.3 µs of CPU
// (BenchmarkDecideReturning) plus two store round trips (the identity
// link and the assignments; a first exposure adds the assignment and the
// publish). React takes about 1.4 µs per event (BenchmarkReact: 256
// events, two experiments) plus two round trips per batch that touches
// experiments (read the units, then one compare-and-set write), three
// when aliases are followed.
//
// # Concurrency
//
// An Engine is safe for concurrent use. Definitions are an immutable
// snapshot swapped atomically (writes and reloads are serialised by
// writeMu), bandit weights likewise; lookMu guards the looks taken. No
// lock is held during another's.
package experiments
