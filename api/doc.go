// Package api is the Kairos HTTP server (echo): the event collector, the
// recommendation and catalog endpoints, health, readiness and metrics,
// with keys, CORS and rate limits. It is the only package that imports
// echo, and it is thin: every handler parses the request, calls one of the
// small interfaces declared here (Recommender, Catalog, Checker, Offerer,
// Definitions, PromotionLog, and signals.Publisher) and renders the
// answer.
//
// # Use
//
//	keys, created, err := api.LoadOrCreateKeys(dataDir) // pk_… and sk_… in <dataDir>/keys.json (0600)
//	srv, err := api.New(api.Config{
//		SecretKeys:      []string{keys.Secret},
//		PublishableKeys: []string{keys.Publishable},
//		AllowedOrigins:  []string{"https://shop.example"},
//		Registry:        reg, // the engine registers its metrics here too
//		Logger:          log,
//	}, api.Deps{Publisher: bus, Recommender: eng, Catalog: eng, Checker: eng})
//	err = srv.Serve(ctx) // until ctx ends, then a graceful shutdown
//
// Config documents every setting and its default; Config.Validate reports
// every problem at once. Handler returns the http.Handler for tests.
//
// # Keys and access
//
// Every request carries a key, except /healthz, /readyz, CORS preflights,
// the static files of /tracker.js, /dashboard and Deps.Site, and (with
// Config.MetricsPublic) /metrics:
//
//   - the secret key (sk_…) may call every route. It is accepted only in
//     the header "Authorization: Bearer sk_…"; a secret key found in a
//     query string or a body is refused (401) because it would leak.
//   - the publishable key (pk_…) is public (it is in the page). It may
//     only send events (POST /v1/events, GET /v1/pixel.gif) and use the
//     visitor-facing routes GET /v1/offers?visitor=… and
//     GET /v1/promotions/stream (routes flagged "publishable"). Because
//     sendBeacon, an <img> and EventSource cannot set headers, it
//     may also come as the query parameter key=pk_… or as the "key" member
//     of a batch body. It is accepted only from Config.AllowedOrigins: the
//     Origin header, or the origin of the Referer when there is no Origin,
//     must match; a request with neither is accepted unless
//     Config.RequireOrigin is set (emails and servers send neither; the
//     check keeps other sites from using the key in browsers, it is not a
//     secret).
//
// Config.SecretKeys and Config.PublishableKeys are lists, so keys can be
// rotated (ParseKeyList reads "sk_new,sk_old"). A missing, malformed or
// unknown key is 401 (with WWW-Authenticate: Bearer); the publishable key
// on a secret route, or from an origin that is not allowed, is 403.
//
// CORS: publishable routes answer preflights (OPTIONS) from allowed
// origins with 204, Access-Control-Allow-Origin (the origin itself),
// -Allow-Methods, -Allow-Headers: Authorization, Content-Type and
// -Max-Age: 600, and other origins with 403. Their answers to allowed
// origins, errors included, carry Access-Control-Allow-Origin and expose
// Retry-After, X-Request-Id and X-Kairos-Error. Secret routes answer no
// CORS: the secret key never belongs in a browser. A text/plain body
// (what sendBeacon sends) is accepted, which needs no preflight.
//
// Rate limits are token buckets (Config.SecretRate per secret key,
// Config.PublishableRate per publishable key and client IP). An empty
// bucket is 429 with Retry-After (seconds). The client IP is the peer
// address, or, when the peer is a trusted proxy (Config.TrustedProxies,
// CIDRs; Config.TrustProxy: any private or loopback peer), the right-most
// address of X-Forwarded-For that is not a trusted proxy. The
// X-Forwarded-For of any other peer is ignored: clients can send one.
//
// # Identity verification
//
// With the publishable key anyone can send events, so the user id of a
// browser's events is a claim. With Config.IdentitySecrets set, the site's
// back end signs each signed-in user's id (signals.UserHash: the hex
// HMAC-SHA256 of the user id under the identity secret), the page passes
// it to kairos.identify(userId, userHash), and the tracker sends it as
// user_hash with the identify event and every event that carries user
// (the pixel takes a user_hash parameter). Config.IdentityVerification
// decides, per event sent with a publishable key that carries a user:
//
//	required  (default with a secret) rejected unless user_hash verifies:
//	          "user_hash: missing: …" or "user_hash: does not match user: …"
//	optional  rejected when a user_hash is given and does not verify;
//	          accepted without one (migrating a site)
//	off       (default without a secret) the user id is trusted
//
// The comparison is constant-time; rejections count in
// kairos_events_rejected_total{reason="user_hash"}. user_hash is removed
// from every event before it is published: it is never stored. The secret
// key is trusted (POST /v1/identify and server-side batches need no hash),
// as are producers publishing straight to the broker. Visitor ids may not
// start with a reserved prefix ("user:", signals.ReservedPrefix), on every
// route that takes one: that would name a user's state.
//
// # Errors
//
// Every error is JSON (the pixel excepted, see below), with a Code that
// clients branch on and a message that names the field or limit:
//
//	{"error": {"code": "invalid", "message": "n: 0 is not in [1, 100]"}}
//
//	400 invalid              malformed request; the message names the field
//	401 unauthorized         missing, malformed or unknown key
//	403 forbidden            publishable key on a secret route, or origin not allowed
//	404 not_found            no such item or route
//	405 method_not_allowed   the route exists, the method does not
//	409 conflict             POST /v1/items for an id that exists
//	413 too_large            body or batch over a limit (named in the message)
//	429 rate_limited         token bucket empty; Retry-After
//	500 internal             a bug; logged with the request id, which the message gives
//	503 unavailable          broker or store unavailable, or too many event requests at once; Retry-After
//	504 timeout              the engine did not answer within Config.RequestTimeout
//
// engine.ErrNotFound, engine.ErrInvalid / signals.ErrInvalid,
// engine.ErrUnavailable / signals.ErrUnavailable / signals.ErrClosed and
// context.DeadlineExceeded returned by a dependency map to 404, 400, 503
// and 504; anything else is 500. Only 500s are logged. Every answer has an
// X-Request-Id header (the client's, if it sent a short token one).
//
// # Endpoints
//
// In the examples, $SK is the secret key, $PK the publishable key and
// the server listens on localhost:8080. Add the parameter pretty to any
// request to get indented JSON.
//
// Every GET route also answers HEAD, with the status and headers GET
// would get and no body (echo adds no HEAD routes: New registers them).
// HEAD /v1/pixel.gif checks the event but records nothing (link checkers
// and prefetchers are not visitors); HEAD /v1/recommendations and
// /v1/offers record no item as shown (rotation) and no experiment
// exposure; HEAD /v1/promotions/stream opens no stream.
//
// POST /v1/events (publishable) — collect a batch of events.
//
// The body is a JSON array of events, or {"key": "pk_…", "events": […]}
// (signals.DecodeBatch; the event schema is signals.Event): at most
// Config.MaxBatch (500) events and Config.MaxBodyBytes (1 MiB), otherwise
// 413; a body that is not JSON is 400 with the byte offset. Each event is
// normalized (a missing ts is the receive time) and validated on its own
// (ids follow signals.CheckID; text that is not UTF-8 is rejected, not
// replaced), then checked for identity verification (user_hash, above).
// The valid ones are published (signals.Publisher) and the answer waits
// for the publisher's confirmation: a 200 means they cannot be lost.
//
//	200 {"accepted": 2, "ids": ["e1", "e3"],
//	     "rejected": [{"index": 1, "id": "e2", "field": "value", "reason": "NaN is not a number"}]}
//
// 200 when at least one event was accepted (or the batch was empty), the
// rejected ones listed by index in the body with the field and reason;
// 400 when every event was rejected (the same body plus "error"). Retrying
// rejected events unchanged cannot succeed. A body that cannot be read as
// a batch (400, 413) is answered so before a key carried inside it is
// checked.
//
// 503 (with Retry-After) comes in two kinds, told apart by the message:
//
//   - "too many event requests at once: nothing was accepted": admission
//     control. At most Config.MaxEventRequests (256) event requests (this
//     route, the pixel and POST /v1/identify together) are served at once;
//     beyond that a request is answered at once, before its body is read,
//     and none of its events is accepted. Under overload the server keeps
//     publishing at its best rate and sheds the excess instead of queueing
//     every request until it times out.
//   - "the event stream is unavailable: outcome unknown": publishing failed
//     or did not finish within Config.PublishTimeout (broker down or
//     blocked by a resource alarm, engine too slow). Some or all of the
//     events may have been accepted and will be applied.
//
// In both cases send the whole batch again, with the same event ids,
// after Retry-After: the engine de-duplicates by id, so a retry never
// counts an event twice.
//
// Read your writes: the 200 says the events are durable, not yet applied
// (with RabbitMQ the engine applies them after the broker's confirmation,
// usually within milliseconds). With wait=2s (secret key only, a Go
// duration up to MaxWait) the answer comes once the engine has applied
// every accepted event (Deps.Applier: their de-duplication marks are
// stored), or when the wait runs out, and "applied" says how many were
// applied by then; the rest are still applied later. POST /v1/identify
// takes the same parameter ("applied": true once the link is made). A
// waiting request keeps its place among Config.MaxEventRequests.
//
//	curl -X POST localhost:8080/v1/events -H "Authorization: Bearer $PK" \
//	  -H 'Origin: https://shop.example' -H 'Content-Type: application/json' \
//	  -d '[{"id":"e1","type":"view","visitor":"v-17","item":"sku-42"}]'
//
// GET /v1/pixel.gif (publishable) — record a view, click or impression
// from query parameters (tracking pixels, links in emails).
//
// Parameters: key, visitor (required), type (view, click or impression;
// default view), item (required for view and click), id, user,
// user_hash, offer, token, session, page, referrer, element, ts (RFC 3339
// or epoch ms) and value, validated like the event fields. Without id the id is derived
// from the query (px- and a hash of every parameter but key), so a
// re-delivered URL is the same event; to count repeated views, vary the
// URL (ts=… or any cache-buster parameter). The answer is always the 43-
// byte transparent GIF with no-cache headers: 200 when recorded, and on
// error the error's status with the header
// "X-Kairos-Error: <code>: <message>" (printable ASCII), e.g. 400
// "invalid: visitor: missing".
//
//	curl -o /dev/null -D - "localhost:8080/v1/pixel.gif?key=$PK&visitor=v-17&type=view&item=sku-42"
//
// GET /v1/recommendations (secret) — items for a visitor.
//
// Parameters: visitor (required), n (1..Config.MaxResults, default 10),
// exclude_seen (default true), category, explain (default false; adds
// "because" items). The answer is engine.RecResponse:
//
//	200 {"visitor": "v-17", "strategy": "als",
//	     "items": [{"item": "sku-7", "score": 0.82, "title": "…", "because": ["sku-42"]}]}
//
//	curl -H "Authorization: Bearer $SK" "localhost:8080/v1/recommendations?visitor=v-17&n=5&explain=true"
//
// Rotation and paging (Deps.Rotation, engine/rotation): rotation= (a Go
// duration, 0 for none, at most the layer's Max; default kairos serve
// --rotation) demotes the items served to or seen by the visitor that
// recently, with a linear fade back; page= is the "next" token of the
// previous page: the next n items, never one of the earlier pages. An
// answer of the layer (rotation= or page= given, or a default rotation)
// carries "next" unless it is the last page. A bad, altered, expired or
// another visitor's token is 400 naming page; so is rotation= without the
// layer.
//
//	curl -H "Authorization: Bearer $SK" "localhost:8080/v1/recommendations?visitor=v-17&n=5&rotation=30m"
//	curl -H "Authorization: Bearer $SK" "localhost:8080/v1/recommendations?visitor=v-17&n=5&page=$NEXT"
//
// Filter and boost expressions (filters.go, engine/filter): filter= (a
// boolean expression in Expr syntax over the item — id, category, tags,
// attributes, created, active — and the request — segment, campaign,
// referrer, device, page, now) keeps the items for which it holds, n of
// them whenever n qualify; boost= (a numeric expression) multiplies each
// item's utility (ln(boost) added to the model's scores; 0 or less drops
// the item); filter_name= applies a stored filter (Deps.Filters): without
// a share its filter and boost combine with filter= and boost=, with a
// share it is a promotion — round(share·n) slots for its best-ranked items,
// marked "promoted": true. The same parameters apply to similar items and
// offers (where a share is ignored). A compile error is 400 naming the
// parameter and the position:
//
//	400 {"error": {"code": "invalid", "message": "filter: unexpected token EOF at line 1, column 12"}}
//
// Named filters (secret) — /v1/filters:
//
//	GET    /v1/filters         200 {"filters": [filter.Named…]} in name order
//	GET    /v1/filters/{name}  200 filter.Named, 404
//	PUT    /v1/filters/{name}  {"filter": "…", "boost": "…", "share": 0.2}: 201 created, 200 replaced, 400 (bad expression, name or share)
//	DELETE /v1/filters/{name}  204, 404
//
// GET /v1/items/{id}/similar (secret) — items similar to an item.
//
// Parameters: n (default 10); visitor and user (optional) place the
// request in the personalization holdout (below) or not. 404 for an
// unknown item.
//
//	200 {"item": "sku-42", "items": [{"item": "sku-7", "score": 0.91}]}
//
//	curl -H "Authorization: Bearer $SK" "localhost:8080/v1/items/sku-42/similar?n=5"
//
// Items (secret) — the catalog; the JSON is engine.Item:
//
//	{"id": "sku-42", "title": "Red shoe", "category": "shoes", "tags": ["red"],
//	 "attributes": {"size": "42"}, "active": true,
//	 "created": "2026-11-23T10:00:00Z", "updated": "2026-11-23T10:00:00Z"}
//
// In request bodies (at most Config.MaxItemBytes, 64 KiB) "active"
// defaults to true, "created" and "updated" are ignored (the engine sets
// them) and unknown members are refused (400 naming the member). Ids in
// paths are percent-encoded (sku%2F3 is the id "sku/3").
//
//	POST /v1/items            create: 201 with Location, 409 if the id exists
//	GET /v1/items?after=&limit=  list in id order: 200 {"items": […], "next": "sku-9"};
//	                          limit 1..1000 (default 50); "next" (absent on the
//	                          last page) is the after= of the next page
//	GET /v1/items/{id}        200 or 404
//	PUT /v1/items/{id}        create (201) or replace (200); a body id must match the path
//	DELETE /v1/items/{id}     204 or 404
//
//	curl -X POST localhost:8080/v1/items -H "Authorization: Bearer $SK" \
//	  -d '{"id":"sku-42","title":"Red shoe","category":"shoes"}'
//	curl -H "Authorization: Bearer $SK" "localhost:8080/v1/items?limit=100"
//	curl -H "Authorization: Bearer $SK" localhost:8080/v1/items/sku-42
//	curl -X PUT localhost:8080/v1/items/sku-42 -H "Authorization: Bearer $SK" \
//	  -d '{"title":"Red shoe","category":"shoes","active":false}'
//	curl -X DELETE -H "Authorization: Bearer $SK" localhost:8080/v1/items/sku-42
//
// POST does not lock: two concurrent POSTs of a new id may both succeed
// (the last one wins), as the catalog has no create-if-absent. Use PUT for
// idempotent upserts.
//
// DELETE /v1/visitors/{id} (secret) — erase a visitor, or a user with
// every linked device (Deps.Eraser; engine.Engine.EraseVisitor): 204 when
// erased. It is idempotent: with an archive (kairos serve) a visitor with
// no state is 204 too, since the tombstone makes replay and retrain skip
// events of it that are archived or still in flight. 404 when erasure is
// not configured, or when there is neither state nor an archive.
//
//	curl -X DELETE -H "Authorization: Bearer $SK" localhost:8080/v1/visitors/u-42
//
// GET /v1/stats/items/{id} and GET /v1/stats/offers/{id} (secret) — event
// counters of an item or an offer over time (engine/stats).
//
// Parameters: resolution (15m, 1h or 1d; default 1h), to (default now) and
// from (default to minus 24 hours; minus 30 days at 1d), each RFC 3339 or
// epoch milliseconds. The answer has every bucket that overlaps
// [from, to), oldest first, empty ones included, with the number of events
// per type, the revenue (sum of the conversions' values) and the dwell
// time (sum of the dwells' values, ms); "from" and "to" are the bounds of
// the buckets. Buckets are UTC and count events by their ts; an event with
// an item counts for the item, one with an offer for the offer. Buckets
// older than their resolution's retention (kairos serve
// --stats-retention, default 15m:30d,1h:120d,1d:0, 0 = forever) read as
// empty. An unknown id is not an error: its buckets are empty. At most
// 2,000 buckets per request: a wider range is 400 naming from, to; an
// unknown resolution or a malformed time is 400 naming the parameter.
// Without the stats dependency (Deps.Stats) the routes answer 404.
//
//	200 {"item": "sku-42", "resolution": "1h",
//	     "from": "2026-11-23T13:00:00Z", "to": "2026-11-23T15:00:00Z",
//	     "points": [{"t": "2026-11-23T13:00:00Z", "counts": {}, "revenue": 0, "dwell_ms": 0},
//	                {"t": "2026-11-23T14:00:00Z", "counts": {"view": 12, "click": 3, "conversion": 1},
//	                 "revenue": 49.5, "dwell_ms": 0}]}
//
//	curl -H "Authorization: Bearer $SK" \
//	  "localhost:8080/v1/stats/items/sku-42?resolution=1h&from=2026-11-23T13:00:00Z&to=2026-11-23T15:00:00Z"
//	curl -H "Authorization: Bearer $SK" "localhost:8080/v1/stats/offers/spring-sale?resolution=1d"
//
// Offers, campaigns and rules (engine/promo; the package documentation
// there describes eligibility, ranking, tokens and the rule grammar).
// Without the promo dependencies (Deps.Offers, Deps.Definitions,
// Deps.Promotions) these routes answer 404.
//
// GET /v1/offers?visitor=…&slot=…&n=… (publishable) — the visitor's best
// eligible offers of a slot (every slot without slot=), best first. n is
// 1..Config.MaxResults (default 10). user= names the signed-in user: its
// factors rank the offers and its experiment variant applies, on a device
// not linked to it yet too (as on /v1/recommendations); with the
// publishable key and identity verification on, user_hash= must prove it
// as an event's user_hash does (400 naming user_hash otherwise). Each offer carries a token: render it
// as data-kairos-token on the element (with data-kairos-offer) and the
// tracker's impression and click events attribute to the offer. Answers
// are never cached (Cache-Control: private, no-store).
//
//	200 {"visitor": "v-17", "slot": "hero",
//	     "offers": [{"id": "o1", "title": "Running shoes −20%", "body": "This week only",
//	                 "image": "https://cdn.shop.example/o1.png", "link": "https://shop.example/sale",
//	                 "item": "sku-1", "slot": "hero", "token": "AZ…", "campaign": "bf", "score": 0.61}]}
//
//	curl -H "Authorization: Bearer $PK" -H 'Origin: https://shop.example' \
//	  "localhost:8080/v1/offers?visitor=v-17&slot=hero&n=3"
//
// Offers, campaigns and rules (secret) — definitions; the JSON is
// promo.Offer, promo.Campaign and promo.Rule. In bodies (at most
// Config.MaxItemBytes) "active" defaults to true, "created" and "updated"
// (and an offer's "stats") are ignored, unknown members are refused, and
// every error names its JSON path (400):
//
//	{"error": {"code": "invalid", "message": "rules[r1].when.all[2].count.within: \"10x\" is not a duration (e.g. \"10m\", \"24h\", \"7d\") nor session, batch or all"}}
//
// A campaign's offers, a rule's offer, campaign and affinity offers must
// exist (400 naming them); deleting an offer or campaign that is still
// named is 409, naming who names it.
//
//	GET /v1/offers            list (no visitor=): 200 {"offers": […]}, each with "stats":
//	                          {"impressions", "clicks", "conversions"}; secret key only (403 otherwise)
//	POST /v1/offers           create: 201 with Location, 409 if the id exists
//	GET /v1/offers/{id}       200 (with "stats") or 404
//	PUT /v1/offers/{id}       create (201) or replace (200); a body id must match the path
//	DELETE /v1/offers/{id}    204, 404, or 409 when a campaign or rule names it
//	… the same for /v1/campaigns ({"campaigns": […]}) and /v1/rules ({"rules": […]})
//
// A rule is answered with its "status" (promo.RuleStatus): whether its
// action has an eligible offer now and, if not, why ("not_ready": e.g.
// "offer \"o1\" is served only in its campaigns, none live: campaign
// \"bf\" ended at 2026-12-01T00:00:00Z"), and what this replica saw since
// it started: matches, promotions fired, and matches that pushed nothing
// by reason (cooldown, no_offer, capped, holdout) with the latest one.
//
//	curl -X POST localhost:8080/v1/offers -H "Authorization: Bearer $SK" \
//	  -d '{"id":"o1","title":"Running shoes −20%","link":"https://shop.example/sale",
//	       "items":["sku-1"],"slot":"exit","cap":{"max":3,"per":"24h"},"budget":100000}'
//	curl -X POST localhost:8080/v1/campaigns -H "Authorization: Bearer $SK" \
//	  -d '{"id":"bf","offers":["o1"],"priority":10,"start":"2026-11-27T00:00:00Z","end":"2026-12-01T00:00:00Z",
//	       "schedule":{"days":["fri","sat","sun"],"from":"08:00","to":"23:00","tz":"Europe/Paris"}}'
//	curl -X PUT localhost:8080/v1/rules/exit-shoes -H "Authorization: Bearer $SK" \
//	  -d '{"cooldown":"24h","when":{"all":[{"count":{"type":"view","category":"shoes","within":"10m","min":3}},
//	       {"not":{"count":{"type":"conversion","within":"all"}}},{"exit":{}}]},"then":{"offer":"o1"}}'
//	curl -H "Authorization: Bearer $SK" localhost:8080/v1/rules
//	curl -H "Authorization: Bearer $SK" localhost:8080/v1/offers/o1
//	curl -X DELETE -H "Authorization: Bearer $SK" localhost:8080/v1/rules/exit-shoes
//
// GET /v1/promotions/stream?visitor=…&key=… (publishable) — the visitor's
// instant promotions as server-sent events (text/event-stream), what the
// tracker subscribes to with EventSource. Each promotion is one event:
//
//	id: 1764239102123456
//	event: promotion
//	data: {"id":"1764239102123456","seq":1764239102123456,"visitor":"v-17",
//	       "offer":{"id":"o1","title":"…","body":"…","image":"…","link":"…","item":"sku-1"},
//	       "slot":"exit","token":"AZ…","rule":"exit-shoes","created":"…","expires":"…"}
//
// (data is one line). The id is the promotion's Seq, strictly increasing
// per visitor. On connect the stream first replays, from the visitor's
// promotion log, the unexpired promotions after the Last-Event-ID header
// (EventSource sends it when it reconnects) or the last_event_id parameter
// — all unexpired ones (10 minutes) when neither is given, e.g. on a new
// page (the tracker skips ids it has rendered) — then sends new ones as
// they fire. A promotion is sent only if its id is above the last one
// sent, so across a reconnect none is lost and none is sent twice. A
// comment ": ping" every 15 s keeps proxies from closing the connection
// (and re-reads the log, delivering a promotion whose broadcast was lost).
// The stream starts with "retry: 3000". It outlives Config.RequestTimeout
// and ends when the client goes or the server shuts down. 400 without
// visitor or with a malformed Last-Event-ID; 404 without Deps.Promotions.
// Open streams are bounded: at most Config.MaxVisitorStreams (8) per
// visitor and Config.MaxStreams (10,000) in all; beyond either, 503 at
// once with Retry-After and the limit named (the tracker backs off and
// reconnects):
//
//	503 {"error": {"code": "unavailable", "message": "too many promotion streams: the limit of 8 open
//	     streams per visitor is reached (close another page's stream); retry after 2 s"}}
//
//	curl -N -H 'Origin: https://shop.example' \
//	  "localhost:8080/v1/promotions/stream?visitor=v-17&key=$PK"
//	curl -N -H 'Last-Event-ID: 1764239102123456' "localhost:8080/v1/promotions/stream?visitor=v-17&key=$PK"
//
// The server subscribes once to signals.TopicPromotions (Deps.Subscriber:
// the bus; on RabbitMQ the kairos.promotions fanout exchange, which
// server-side channels such as e-mail and push can bind queues to) and
// wakes the streams of the promotion's visitor; each stream then reads the
// log, which is the source of truth.
//
// GET /v1/pages/attention?page=…&n=… (secret) — the attention heat of a
// page (engine/attention, Deps.Attention): the cursor dwell each marked
// element of the page received, its share of the page's dwell and its
// rank, most dwelt on first, at most n elements (default 100, at most
// 1,000). page is the page URL; it is normalised as the events' page
// URLs are (scheme, host and path: no query, no fragment), so any URL of
// the page works. item and offer are the ids of "item:…" and "offer:…"
// elements; count is the number of elements ranked, other_ms the dwell
// of elements past the per-page bound (in total_ms, not ranked). An
// unknown page is 200 with total_ms 0 and no elements. Secret key: the
// dashboard (GET /dashboard, with the secret key the person signed in
// with) draws it over the page.
//
//	200 {"page": "https://shop.example/p/42", "total_ms": 48210, "count": 12,
//	     "elements": [{"element": "item:42", "item": "42", "dwell_ms": 21400, "share": 0.4439, "rank": 1},
//	                  {"element": "offer:spring", "offer": "spring", "dwell_ms": 3230, "share": 0.067, "rank": 2}, …]}
//
//	curl -G -H "Authorization: Bearer $SK" localhost:8080/v1/pages/attention \
//	  --data-urlencode 'page=https://shop.example/p/42' -d n=10
//
// Experiments (secret; engine/experiments, Deps.Experiments — its package
// documentation is the manual: assignment, exposure, units, metrics,
// attribution, bandits and every number of the results). Without
// Deps.Experiments these routes answer 404. The JSON is
// experiments.Experiment (shown with its "status": scheduled, running or
// stopped); unknown members are refused and errors name the JSON path
// (400). Two experiments may not target the same slot (or rule, or the
// recommendations) at overlapping times, and a started experiment's salt,
// target, attribution window and variants (except their weights) cannot
// change: both are 409.
//
//	GET /v1/experiments              200 {"experiments": […]}
//	POST /v1/experiments             create: 201 with Location, 409 if the id exists or the target is taken
//	GET /v1/experiments/{id}         200 or 404
//	PUT /v1/experiments/{id}         create (201) or change (200); stop one by setting "stop"
//	DELETE /v1/experiments/{id}      204 or 404 (the experiment and all its data)
//	GET /v1/experiments/{id}/results 200: counts, report (abtest.Analyze), guardrails, verdict,
//	                                 bandit weights, history (one point per look: chart it),
//	                                 input (pipe it to kairos eval abtest); ?history=false leaves
//	                                 the history out
//
//	curl -X POST localhost:8080/v1/experiments -H "Authorization: Bearer $SK" \
//	  -d '{"id":"hero-sale","target":{"surface":"offers","slot":"hero"},"metric":"conversion",
//	       "variants":[{"name":"A"},{"name":"B","offer":"spring-sale"}],
//	       "guardrails":[{"metric":"revenue","max_drop":0.05}],"attribution_window":"24h"}'
//	curl -X POST localhost:8080/v1/experiments -H "Authorization: Bearer $SK" \
//	  -d '{"id":"recs-trending","mode":"bandit","bandit_every":"15m","target":{"surface":"recommendations"},
//	       "metric":"ctr","variants":[{"name":"A"},{"name":"T","params":{"strategy":"trending"}}]}'
//	curl -H "Authorization: Bearer $SK" localhost:8080/v1/experiments/hero-sale/results | jq .verdict
//	"B beats A on conversion: +12.0 % [+4.0 %, +20.0 %], chance to win 99.2 %; keep running: no / SRM: none / guardrails: revenue ok"
//	curl -s -H "Authorization: Bearer $SK" localhost:8080/v1/experiments/hero-sale/results | jq .input | kairos eval abtest
//	curl -X PUT localhost:8080/v1/experiments/hero-sale -H "Authorization: Bearer $SK" -d @hero-sale-stopped.json
//	curl -X DELETE -H "Authorization: Bearer $SK" localhost:8080/v1/experiments/hero-sale
//
// In an experiment, GET /v1/offers (for the targeted slot) and GET
// /v1/recommendations serve the visitor's variant — an offers variant's
// offer ranked first, its campaign's offers only, or none for a holdout;
// a recommendations variant's params (strategy, blend_below,
// exclude_seen) — and add the variant to the answer,
//
//	"experiment": {"id": "hero-sale", "variant": "B", "propensity": 0.5}
//
// The visitor's first exposure is published as a signed impression event
// (the archive holds it; the counts are rebuilt from it); if it cannot be
// published the request fails with 503 and is decided again next time.
//
// The personalization holdout (Deps.Holdout, engine/holdout; kairos serve
// --holdout-share): a visitor in it gets the non-personalized baseline —
// GET /v1/recommendations the trending ranking (strategy trending, else
// catalog) whatever its history, GET /v1/items/{id}/similar?visitor=… the
// trending items of the item's category (the item left out), GET
// /v1/offers?visitor=… the offers ranked without its factors — and no
// experiment; each answer adds "holdout": true.
//
//	GET /v1/holdout/results (secret) 200 holdout.Results: per arm (holdout first) units,
//	                                 converters, conversions, revenue, revenue_sq, conversion
//	                                 rate and revenue per visitor; the abtest reports of the
//	                                 conversion rate and of the revenue per visitor (holdout as
//	                                 the control), their verdict and inputs; 404 without a holdout
//
//	curl -H "Authorization: Bearer $SK" localhost:8080/v1/holdout/results | jq .verdict
//
// GET /dashboard (public page, secret data) — the dashboard (package
// api/dashboard; its documentation is the manual): live events per
// second, the top items, the offers with their CTR, each experiment's
// verdict, SRM warning, per-variant rates with Wilson intervals and a
// chart of the lift with its confidence sequence per look, the
// personalization lift over the holdout, and the attention heat of a page drawn over a snapshot of it. A static page
// embedded in the binary (GET /dashboard and its files under
// /dashboard/*: no key, no data, Content-Security-Policy, X-Frame-Options:
// DENY). It asks for the secret key, keeps it in the tab's sessionStorage
// and calls the API with "Authorization: Bearer sk_…" like any client:
// the access rules above are unchanged (no cookie, no key in URLs, no CORS
// on secret routes).
//
//	open http://localhost:8080/dashboard
//
// GET /v1/dashboard/summary?n=… (secret) — what the dashboard polls every
// two seconds (DashboardSummary): this process's event counters since it
// started (received, accepted and rejected at the collector — the
// kairos_events_*_total metrics — and applied by this process's engine,
// null without one), the n trending items (Deps.Trending, the engine:
// recency-weighted popularity, the score being the decayed event weight
// now) and the n offers with the most impressions with their clicks,
// conversions and CTR (null before the first impression), and the live
// model with its last n retrains (Deps.Model, kairos serve: generation,
// parameters and blend, and per retrain the pick, the decision and its
// reason, NDCG@10, HR@10 and Recall@50 of the retrained model, the live
// one and popularity on the held-out tail, the paired t statistics; null
// without Deps.Model); n is 1..Config.MaxResults, default 10. Rates are
// the growth of a counter between two summaries divided by the growth of
// "time".
//
//	200 {"time": "2026-11-23T10:00:02Z",
//	     "events": {"received": 7094, "accepted": 7094, "rejected": 0, "applied": 7434},
//	     "top_items": [{"item": "wat-01", "score": 357.2, "title": "Orion Field 38", "category": "watches"}, …],
//	     "offers": [{"id": "stay-10", "title": "Leaving already? 10 % off", "slot": "exit", "active": true,
//	                 "impressions": 100, "clicks": 15, "conversions": 0, "ctr": 0.15}, …],
//	     "offers_count": 7,
//	     "model": {"generation": 1, "version": 1796446578000000000, "params": {"factors": 64, …}, "blend": {…},
//	               "retrain_every": "24h0m0s", "refusals": 1,
//	               "retrains": [{"time": "…", "decision": "rejected: worse than the live model", "label": "refused_worse",
//	                             "reason": "NDCG@10 0.0758 vs popularity 0.0093 (paired t = 1.65, 34 users); live (recipe) 0.2634 (t = -3.30)",
//	                             "params": {…}, "blend": {…}, "trials": 0, "blend_confirm": {"users": 30, "t": 2.1, "kept": true, …},
//	                             "figures": [{"model": "retrained", "users": 34, "ndcg10": 0.0758, …}, …],
//	                             "t_live": -3.3, "t_popularity": 1.65, …}, …]}}
//
// A tuned retrain's row also has "trials" and "search_s" of its search,
// "tuned": true (its budget may have gone to fitting the defaults, with
// no trial) and "kept_base": true when the search kept the configured
// parameters (as an untuned retrain fits them).
//
//	curl -H "Authorization: Bearer $SK" "localhost:8080/v1/dashboard/summary?n=5"
//
// GET / and GET /shop/* (public) — the web site of Deps.Site, when set
// (kairos serve --demo: the demo shop of package api/demo); 404 without.
//
// GET /openapi.json (public) — the OpenAPI 3.1 description of this API
// (OpenAPI returns it; api/openapi.json in the source), cacheable for five
// minutes with an ETag. Tests keep it true: every route is described, and
// the api and end-to-end tests validate their traffic against it (package
// api/openapitest). The Go client is package api/client.
//
//	curl localhost:8080/openapi.json
//
// GET /tracker.d.ts (public) — TypeScript declarations of the tracker's
// browser API (package signals/tracker), cached like /tracker.js.
//
// GET /healthz (public) — the process is up: always 200 {"status":"ok"}.
//
//	curl localhost:8080/healthz
//
// GET /readyz (public) — the broker and the store can serve
// (Checker.Ready within Config.ReadyTimeout): 200 {"status":"ready"}, or
// 503 with the reason in the message (it may name internal hosts; expose
// /readyz to your orchestrator, not to the internet).
//
//	curl localhost:8080/readyz
//
// GET /metrics (secret, or public with Config.MetricsPublic) —
// Prometheus exposition of Config.Registry: the API's metrics and those
// the engine registered on the same registry.
//
//	curl -H "Authorization: Bearer $SK" localhost:8080/metrics
//
// The API's metrics:
//
//	kairos_http_requests_total{route,method,code}       counter; route is the template ("/v1/items/:id") or "unmatched"
//	kairos_http_request_duration_seconds{route}         histogram
//	kairos_http_requests_in_flight                      gauge
//	kairos_events_received_total                        events in authenticated batches, pixels and identify calls
//	kairos_events_accepted_total                        validated and durably published
//	kairos_events_rejected_total{reason}                the invalid field (value, ts, …; "event" for a
//	                                                    whole event), "duplicate" (id repeated in a batch)
//	                                                    or "unavailable" (publishing failed: outcome unknown)
//	kairos_events_publish_duration_seconds{result}      histogram; result is ok or error
//	kairos_promotion_streams_open                       gauge: promotion streams open now
//	kairos_promotion_streams_refused_total{limit}       streams refused with 503; limit is server
//	                                                    (MaxStreams) or visitor (MaxVisitorStreams)
//	kairos_event_requests_in_flight                     gauge; event requests being served (at most MaxEventRequests)
//	kairos_event_requests_shed_total{route}             event requests answered 503 by admission control,
//	                                                    their bodies unread (their events are not received)
//
// received = accepted + rejected for every batch that could be decoded.
//
// # Lifecycle
//
// Serve listens on Config.Addr (default 127.0.0.1:8080) and, when its
// context ends, stops accepting connections and lets in-flight requests
// finish for at most Config.ShutdownTimeout. Shutdown does the same with
// the caller's deadline. Each request's context ends after
// Config.RequestTimeout; publishing a batch after Config.PublishTimeout;
// at most Config.MaxEventRequests event requests are served at once.
// Promotion streams are the exception: they last until the client goes,
// and Shutdown ends them first, so that they do not hold it up.
package api
