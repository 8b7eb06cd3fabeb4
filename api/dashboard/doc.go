// Package dashboard is the Kairos dashboard: a static page (HTML, CSS and
// plain JavaScript, no framework, no build step, nothing loaded from
// elsewhere) embedded in the binary and served by package api at
// GET /dashboard. It reads the HTTP API of the server that serves it:
//
//	live events/s     GET /v1/dashboard/summary every 2 s: the event counters (the page
//	top items           divides their growth by the time between two summaries), the
//	offers with CTR     trending items and the offers' impressions, clicks and CTR,
//	model, retrains     the live model (generation, parameters, prior) and each retrain's
//	                    pick, decision and NDCG@10 on the held-out tail against the live
//	                    model and popularity, with the paired t statistics
//	experiments       GET /v1/experiments and each /v1/experiments/{id}/results every 5 s:
//	                    verdict, SRM warning, per-variant rates with Wilson intervals,
//	                    a chart of each variant's lift with its always-valid confidence
//	                    sequence (a band) and fixed-horizon interval (dashed) per look
//	personalization   GET /v1/holdout/results every 5 s while the summary's "holdout" is
//	lift                true: the share held out, units and revenue per visitor per arm,
//	                    and for conversion and revenue the verdict and the arms as an
//	                    experiment's variants (the holdout is the control); an "off"
//	                    note otherwise
//	attention heat    GET /v1/pages/attention?page=… every 5 s for the page typed in:
//	                    boxes labelled "6.7 % — #1" over a snapshot of the page, and the
//	                    ranked list with bars
//
// # Use
//
//	srv, err := api.New(cfg, deps) // mounts Handler at /dashboard and /dashboard/*
//	// open http://localhost:8080/dashboard and paste the secret key (sk_…)
//
// Handler serves the files (see its documentation for the headers);
// package api routes GET /dashboard and GET /dashboard/* to it, public.
//
// # Authentication and threat model
//
// The dashboard is "behind the secret key" without any new way to
// authenticate: the page itself is public and holds no data; every
// number comes from an API call that needs the secret key in the
// Authorization header, exactly as for curl. The page asks for the key,
// keeps it in sessionStorage (this browser tab only: gone when the tab
// closes, never shared with other tabs, never written to localStorage or
// a cookie) and sends it with fetch as "Authorization: Bearer sk_…" to its
// own origin only. The API's rules are unchanged: the secret key is
// accepted only in the header, never in a URL (so it never reaches
// logs, history or Referer headers), and secret routes answer no CORS.
//
// Why not a cookie session: a browser sends cookies by itself, so the
// API would have to accept a cookie for the dashboard's reads and defend
// them against cross-site requests (SameSite, CSRF tokens) — a second
// authentication path into the API, which is what we avoid. A header that
// the page's script adds cannot be forged by another site: cross-site
// requests cannot carry it (no CORS on secret routes), so there is no CSRF.
//
// What remains is script injection into the dashboard's origin, which
// could read sessionStorage. Against it: the page builds the DOM with
// textContent and SVG attributes only (never HTML from data: item titles,
// offer titles, experiment names and page URLs come from API clients);
// ContentSecurityPolicy allows only the dashboard's own script (no inline
// script, no eval), connections to its own origin only and no framing of
// the dashboard (clickjacking); Referrer-Policy: no-referrer and
// Cross-Origin-Opener-Policy: same-origin isolate it further. Serve the
// API over HTTPS beyond localhost (the key crosses the network in every
// request, as with any API client). Other pages of the same origin (the
// demo shop of `kairos serve --demo`) do not see the key: sessionStorage
// belongs to the dashboard's tab, the dashboard cannot be framed, and the
// page snapshot inside the dashboard's tab runs no script (below). A site
// whose own scripts are served from the dashboard's origin should still
// be trusted like the dashboard. A leaked secret key is rotated as usual
// (--secret-key new,old, then drop the old one); the open dashboard asks
// for the new key at its next call.
//
// # The heat map's page snapshot
//
// For a page of the dashboard's own origin (the demo shop), the page's
// HTML is fetched (without cookies) and shown as a static snapshot in a
// sandboxed frame (sandbox="allow-same-origin", no allow-scripts; scripts,
// event handler attributes, frames and anything from other origins are
// removed first). Nothing of the page runs: its tracker sends no events
// for the person looking at the dashboard, so looking does not change the
// heat. The snapshot is laid out 1280 CSS pixels wide and scaled to the
// panel; a box is drawn over every element the tracker would report as
// the heat's element (data-kairos-element, else data-kairos-offer, else
// data-kairos-item), its colour from yellow to red by share. Elements that
// only the page's script renders (e.g. recommendations fetched in the
// browser) are not in the snapshot: the list marks them "not in the
// snapshot". A page of another origin cannot be read by the dashboard (the
// browser's same-origin policy): its heat is shown as the ranked list only.
//
// # Robustness
//
// Each poll starts when the previous one has finished; a failed call
// keeps the last data on screen and shows the error (the status in the
// header turns red) until the next success; a 401 (the key was rotated)
// returns to the sign-in form. Panels are rebuilt only when their data
// changed, in one synchronous step, so refreshes do not flicker. Empty
// data (no events, no offers, no experiments, a page without dwell) shows
// a sentence saying so. Rates need two summaries, so the first reading
// shows "–"; a server restart (counters going down) starts the series
// again.
package dashboard
