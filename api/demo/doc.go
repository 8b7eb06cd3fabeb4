// Package demo is the demo shop of `kairos serve --demo`: a small web shop
// with a generated catalog, the tracker embedded, and slots for instant
// promotions, served at / by the Kairos server itself, so that a
// first-time user sees personalization and a promotion fire within a
// minute of clicking around.
//
// It is a plain net/http handler (api mounts it at GET / and GET /shop/*
// through api.Deps.Site) and a client of the Kairos HTTP API like any
// shop's back end: it calls the API with the secret key, in process
// through the API's own http.Handler (SetAPI), so every call passes the
// same authentication, validation and metrics as a remote one. The
// secret key never reaches the browser; the page gets the publishable
// key in the tracker's script tag.
//
//	shop, err := demo.New(demo.Config{SecretKey: sk, PublishableKey: pk, Origin: "http://127.0.0.1:8080"})
//	deps.Site = shop                  // api.Deps
//	srv, err := api.New(cfg, deps)
//	shop.SetAPI(srv.Handler())
//	err = shop.Seed(ctx)              // catalog, offers, campaign, rules, background traffic
//
// # Catalog
//
// NewCatalog generates, deterministically from Config.Seed, 60 products
// in 6 categories (sneakers, bags, watches, audio, lighting, kitchen)
// with titles, prices, colors, materials, ratings and descriptions.
// Images are SVG drawn by the server (a stylised object of the category
// in the product's color: no external asset), at /shop/img/<id>.svg
// (?v=0..2: three gallery views) and /shop/img/banner-<category>.svg.
//
// # Seed
//
// Seed PUTs the products as catalog items (/v1/items/{id}), seven offers
// (one per category for the hero slot, promoting two of its items and
// the category, plus an exit offer "stay-10"), the campaign "autumn"
// (the hero offers) and three rules:
//
//	hero-interest  2 s of cursor dwell on products and 2 clicks within 10 minutes
//	               → the best hero offer of the campaign for this visitor (ranked by the
//	                 live model's affinity and Thompson sampling), cooldown 5 minutes
//	exit-intent    the cursor leaves the window through the top → "stay-10", cooldown 10 minutes
//	audio-fan      3 audio product views and a scroll to 50 % in the session → "sound-bundle"
//
// On the first start (the catalog was empty) it also posts background
// traffic: Config.Visitors generated visitors (default 300, about 4,500
// events over the last two days) with one or two favourite categories,
// Zipf-like product popularity, views, clicks, likes, carts and short
// dwells, so that trending, similar items and the model are meaningful
// from the first page. Background visitors never satisfy a rule. Event
// ids are deterministic, so a repeated seed is de-duplicated.
//
// # Pages
//
//	GET /                              home: hero slot, "recommended for you", trending, departments
//	GET /shop/c/{category}             a category's products, hero slot
//	GET /shop/p/{id}                   product page: gallery (marked with the item), buy box,
//	                                   hero slot, similar items (/v1/items/{id}/similar), recommendations
//	GET /shop/api/recommendations?n=&item=
//	                                   the visitor's recommendations, asked by the shop's back end
//	                                   with the secret key: the visitor is the tracker's first-party
//	                                   cookie kairos_vid, if the shop minted it (explain=true:
//	                                   "because you viewed …"); 403 for a visitor cookie the shop
//	                                   did not sign, 429 + Retry-After over the client's budget
//	GET /shop/api/status               {"seeded": true, "products": 60}
//	GET /shop/img/…, /shop/static/…    images, site.css, site.js
//
// Every product card and the product page's gallery carry
// data-kairos-item (clicks, dwell and attention heat); a card's ♡ button
// records a like without leaving the page (its click counts for the
// card's item), the gallery cycles through three views on click, "Add to
// cart" records add_to_cart. Every page has one data-kairos-slot="hero"
// element and the tracker's script tag:
//
//	<script src="/tracker.js" data-key="pk_…" async></script>
//
// kairos serve --demo adds the shop's own origins to the allowed origins
// of the publishable key (see cmd/kairos).
//
// # Trust
//
// The shop's back end holds a secret key, so the browser must not steer
// it. Visitor ids are minted by the shop: a page gives a visitor without
// one a random id in the cookie kairos_vid (which the tracker reads, so
// its events carry the same id) and the id's HMAC-SHA256 under
// Config.VisitorKey in the HttpOnly cookie kairos_demo_vsig; a missing,
// foreign or forged pair (a cookie naming another visitor, or a reserved
// "user:" id) is replaced on the next page and refused (403) by the
// recommendation proxy, which thus asks Kairos only about visitors the
// shop created. ("New visitor" in the top bar clears the tracker's id;
// the reload mints a new one.)
//
// Its calls to the API are bounded per client (Config.ClientRate, keyed
// by Config.ClientIP) and for the whole shop (Config.TotalRate): beyond,
// a page renders without what it would have asked (trending; similar
// items fall back to the category) and the proxy answers 429 with
// Retry-After. kairos serve gives the shop a secret key of its own
// (random, in memory), so its calls take from that key's rate bucket and
// never from the site's secret key's.
//
// Every answer carries a Content-Security-Policy (scripts, connections
// and frames from the shop's own origin only, no framing by others, no
// plugins), X-Content-Type-Options: nosniff, X-Frame-Options: DENY and a
// Referrer-Policy; static assets are served file by file, never as a
// directory listing.
package demo
