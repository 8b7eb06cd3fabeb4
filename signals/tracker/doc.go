// Package tracker ships the Kairos browser tracker: tracker.js, minified
// into tracker.min.js and embedded in the binary, and the http.Handler
// that serves it at /tracker.js.
//
// # Installing it on a site
//
// One script tag with the site's publishable key:
//
//	<script src="https://kairos.example/tracker.js" data-key="pk_live_..." async></script>
//
// It works loaded async, deferred or inline-inserted, and is idempotent: a
// second copy on the page does nothing. Attributes of the script tag:
//
//	data-key            publishable key (required; without it the tracker is inert)
//	data-endpoint       Kairos base URL (default: the origin the script was loaded from)
//	data-item           item id of this page (else <meta name="kairos:item" content="...">)
//	data-consent        "required": send nothing until kairos.consent(true) (opt-in sites)
//	data-promotions     "off": do not subscribe to instant promotions
//	data-cookie-domain  domain of the visitor cookie, e.g. ".example.com" to share it
//	                    across subdomains (default: the page's host only)
//	data-flush-ms       how long a queued event waits for others to share its request,
//	                    in ms (default 700, at most 600000; a full batch of 20 and
//	                    leaving the page send at once)
//	data-attention      "viewport": measure viewport dwell on every device; "mouse":
//	                    never (default: on devices with a touch screen,
//	                    navigator.maxTouchPoints > 0)
//
// Marking the page: elements with data-kairos-item="<item id>" and/or
// data-kairos-offer="<offer id>" (plus data-kairos-token="<token>" for an
// offer served by GET /v1/offers) are tracked for clicks, cursor dwell and
// (token-carrying offers) impressions; data-kairos-element="<name>"
// overrides the element name used for attention heat. An element with
// data-kairos-slot="<slot>" (e.g. "hero") receives instant promotions for
// that slot.
//
// # JavaScript API
//
// window.kairos, once loaded:
//
//	kairos.track(type, data)   record an event, e.g. kairos.track('like', {item: '42'});
//	                           data.item, offer, token, value, element become event
//	                           fields, other keys become props; returns the event id
//	kairos.identify(userId, userHash)
//	                           login/sign-up: an identify event; later events carry user
//	                           and, when given, user_hash (identity verification, below);
//	                           kairos.identify(null) forgets both (logout)
//	kairos.consent(bool)       false: stop all sending, close the promotion stream and
//	                           delete the ids (cookie and localStorage); true: start
//	                           again with new ids. The choice is remembered.
//	kairos.page(data)          record a page view (single-page apps, after a route change)
//	kairos.on('promotion', fn) fn(promotion, element) after each rendered promotion;
//	kairos.off(name, fn)       the document also receives a CustomEvent "kairos:promotion"
//	                           with detail {promotion, element}
//	kairos.flush()             send the queue now
//	kairos.visitor()           the anonymous visitor id (null when tracking is off)
//	kairos.session()           the session id
//	kairos.push([name, ...])   kairos[name](...): the queue form, also after loading
//	kairos.version             "1"
//
// Calls made before the script has loaded can be queued in an array:
// window.kairos = window.kairos || []; kairos.push(['identify', 'u-17', hash]).
// Once loaded, kairos.push([name, args...]) calls the method at once, so
// that form works whether or not the script has loaded yet.
// No method ever throws; handlers are wrapped and listeners passive.
//
// # Identity verification
//
// Anyone can call kairos.identify with any user id, so a server that
// verifies identities (kairos serve --identity-secret) accepts the user of
// a browser's events only with its user_hash: the hex HMAC-SHA256 of the
// user id under the identity secret, which only the site's back end knows
// and computes when it renders the page of a signed-in user:
//
//	<script>
//	  window.kairos = window.kairos || [];
//	  kairos.push(['identify', 'u-42', '{{ hmac_sha256_hex(IDENTITY_SECRET, "u-42") }}']);
//	</script>
//
// (Go: signals.UserHash(secret, "u-42").) The tracker keeps the hash with
// the user id in localStorage (kairos_uhash) and sends it as user_hash
// with the identify event and with every later event that carries that
// user; an event naming another user (kairos.track(type, {user: ...}))
// carries no hash, identify without a hash drops the old one, and
// identify(null), consent(false) and Do-Not-Track forget it. Never put
// the identity secret in the page.
//
// # What it sends
//
// Events (the signals.Event schema) are POSTed in batches to
// ${endpoint}/v1/events as {"key": "pk_...", "events": [...]}, with
// Content-Type text/plain;charset=UTF-8 and no credentials: a CORS "simple"
// request, so no preflight, and the same body whether fetch or
// navigator.sendBeacon (which cannot set headers) sends it. The collector
// must therefore accept a JSON body labelled text/plain and read the key
// from the body. A batch holds at most 20 events and leaves at most about
// 1 s after its first event (setTimeout, then requestIdleCallback with a
// timeout); 20 queued events leave at once. One request is in flight at a
// time. A network error, a 10 s timeout, 408, 429 or 5xx puts the batch
// back and retries it after 1 s, 2 s, 4 s ... (at most 30 s, jittered, and
// at least Retry-After); other answers are final. When the page is hidden
// or unloaded, everything queued goes out through sendBeacon (what the
// browser refuses is kept in localStorage and sent by the next page).
// Retries re-send the same event ids, so the server's de-duplication makes
// them harmless.
//
// Every event has id (crypto.randomUUID, else a random v4 UUID), type,
// visitor, session, ts (epoch ms), page (location.href), user (and
// user_hash, when identify had one) after identify, and props (string values, at most 32 keys) with the utm_*
// parameters of the session's landing URL, device ("mobile", "tablet" or
// "desktop", from the user agent) and the custom props of kairos.track:
//
//	view        page view: referrer, item (the page's item; none on pages without one)
//	click       on a marked element: item, offer, token, element ("offer:7", "item:42")
//	dwell       value = ms of attention on a marked element (>= 300 ms): item, offer,
//	            token, element, page, and source: "mouse" (the pointer rested on it,
//	            reported when it leaves), "viewport" (it was at least half visible
//	            while the page was visible and scrolling had stopped, reported when
//	            it leaves the viewport or the page is hidden) or "touch" (a finger
//	            rested on it, reported when the finger lifts or moves)
//	scroll      value = 25, 50, 75, 100 (each once per page view)
//	exit        the pointer left the viewport through the top (at most every 10 s)
//	like        from kairos.track('like', {item})
//	impression  offer, token, element: a promotion rendered by the tracker (props
//	            promotion, slot, rule), or a token-carrying offer half visible
//	identify    user, user_hash
//
// Dwell is the gaze proxy: the pointer (mouse only, not touch) is sampled
// from pointermove at most every 50 ms (20 Hz, with a trailing sample so the
// last move counts); the time from entering a marked element to leaving it
// (another element, the window, the page hidden or unloaded) is its dwell,
// a single rest counting at most 30 s. With element and page, the server can
// compute each element's share of the page's dwell (attention heat).
//
// On touch screens there is no pointer to rest, so the tracker measures
// attention in two more ways, sent as the same dwell event with its
// source:
//
//   - viewport: an IntersectionObserver (threshold 0.5) follows every
//     marked element (also those added later); the time an element is at
//     least half visible counts while the page is visible
//     (document.visibilityState) and the viewport is at rest — from 150 ms
//     after the last scroll event until the next one, so items flicked
//     past are not attention — each rest counting at most 30 s. The dwell
//     is reported when the element leaves the viewport, and, so far, when
//     the page is hidden (by beacon; counting resumes when it is shown
//     again: a background tab counts nothing). It is on where
//     navigator.maxTouchPoints > 0 (or data-attention="viewport"); on a
//     desktop without a touch screen the mouse dwell alone is measured.
//   - touch: the time from touchstart on a marked element until the
//     finger lifts (touchend, touchcancel), moves more than 10 px (a
//     scroll) or the page is hidden, at most 30 s; a tap is far below the
//     300 ms threshold.
//
// The server weighs each source with its factor (signals.Weights:
// dwell_mouse, dwell_touch, dwell_viewport; kairos serve --weights).
//
// Sessions end after 30 minutes without events (in any tab of the site:
// the state lives in localStorage). The visitor id lives in a first-party
// cookie (kairos_vid, one year, SameSite=Lax) and in localStorage.
//
// Privacy: with Do-Not-Track or Global Privacy Control on, the tracker
// sends nothing, subscribes to nothing and deletes any ids it stored
// before; kairos.consent(false) does the same until kairos.consent(true).
//
// # Instant promotions
//
// The tracker subscribes with EventSource to
// ${endpoint}/v1/promotions/stream?visitor=...&key=... and handles events
// named "promotion" whose data is
//
//	{"id": "...", "offer": {"id", "title", "body", "image", "link", "item"?},
//	 "slot": "hero", "token": "...", "rule": "..."}
//
// EventSource reconnects by itself after a dropped stream, sending
// Last-Event-ID; after an HTTP error it is reopened with backoff. The
// stream is open only while the page is visible: it closes when the page
// is hidden or left (pages kept in the back/forward cache would otherwise
// hold their connections, and over HTTP/1.1 a browser has only 6 per host,
// shared with the event requests of every tab) and reopens when the page
// is shown again; promotions sent meanwhile are not seen by that page. A
// promotion is rendered (text only, through textContent; link and image
// only with http(s) URLs) into the element marked
// data-kairos-slot="<slot>" (replacing its content), or, when the page has
// no such slot, into a small closable overlay in the bottom-right corner
// (#kairos-overlay). The rendered element (.kairos-promotion) carries
// data-kairos-offer, data-kairos-token, data-kairos-promotion and
// data-kairos-rendered-at (epoch ms with sub-ms precision:
// performance.timeOrigin + performance.now()), so tests can measure the
// event-to-render latency. Then an impression event is recorded, the
// kairos.on listeners run and kairos:promotion is dispatched. A promotion
// id is rendered at most once (ids are remembered in localStorage), so a
// replay after a reconnect does nothing. Clicks on it are click events
// with offer and token (and item when the offer has one).
//
// # Go API and build
//
// Script returns the embedded minified file, ScriptGzip its gzip form
// (6,232 bytes; the test fails above 8 KB), ETag its entity tag, and
// Handler serves it with ETag/If-None-Match, Cache-Control: public,
// max-age=300 and gzip when accepted.
//
// tracker.js is the readable source; tracker.min.js is generated by
//
//	go generate ./signals/tracker
//
// which runs esbuild (pinned in internal/minify, fetched through the Go
// module proxy; no npm) and writes the source's SHA-256 into the first
// line of the output. TestMinifiedIsFresh fails when tracker.min.js was
// not regenerated after an edit of tracker.js; with
// KAIROS_TRACKER_REGEN_CHECK=1 a test also regenerates it and compares the
// bytes.
//
// The browser tests run the tracker in a real headless Chromium through
// the WebDriver client of package browsertest (see there); they skip when
// Chromium is missing, except under CI=true. TestTouch runs it on an
// emulated phone (a 390x700 mobile viewport with touch emulation,
// Browser.EmulateMobile) and checks the viewport and touch dwell events,
// their durations, and that a background tab counts none.
package tracker
