// Package attention keeps the attention heat of pages: per page, how much
// cursor dwell (the gaze proxy of the tracker) each marked element
// received, and its share of the page's dwell, ranked — "6.7 % — #1"
// over the element, as a heat map draws it.
//
//	a, err := attention.New(store, attention.Config{})
//	if err != nil { … }
//	eng.AddReactor(a) // before eng.Run: every committed batch's dwell is added
//	heat, err := a.Heat(ctx, "https://shop.example/p/42", 50)
//
// store is the Store port (AddDwell, PageDwell): NewStore writes it once
// on the storage.Maps of every backend (engine/embedded,
// engine/redisstore; see MapStore for the keys); contract suite:
// engine/attention/attentiontest.
// GET /v1/pages/attention?page=… (package api, secret key) answers Heat.
//
// # What is counted
//
// Attention is an engine.Reactor: it sees the fresh events of every
// committed batch once. Each dwell event (value: ms the pointer rested
// on a marked element, see signals/tracker) adds its value to the
// counter of (page, element):
//
//   - page is the event's page URL normalised by PageKey: scheme and host
//     (lower case, default port dropped) and path — no query, no
//     fragment, so https://shop.example/p/42?utm_source=mail#reviews and
//     https://shop.example/p/42 are one page; a path-only URL ("/p/42")
//     stays a path. Pages that differ only by their query are one page
//     by design: campaign parameters and tracking ids would otherwise
//     split a page's heat into many.
//   - element is the event's element field — what the tracker sends:
//     "item:<id>", "offer:<id>" or the data-kairos-element name — or,
//     for producers that send none, "offer:<offer>" or "item:<item>"
//     (ElementOf).
//
// Every dwell source counts alike (signals.Event.Source: mouse pointer
// rest, viewport visibility and finger rest on touch screens), so a page
// visited mostly from phones has heat too; the learning weights, not the
// heat, tell the sources apart.
//
// Dwell events without a page URL, without an element or with no dwell
// are not counted (kairos_attention_skipped_total). Heat parses
// "item:"/"offer:" elements back into their item or offer id, so a
// dashboard can join them with the catalog and the offers.
//
// # Bounds
//
// Counters are cumulative from a page's first dwell. Two bounds keep
// them finite whatever clients send: a page keeps at most
// Config.MaxElements distinct elements (default 1,000; the dwell of any
// further one goes to OtherElement, which counts in the page's total but
// is not ranked), and a page's counters expire Config.TTL after its last
// dwell (default 90 days; Redis sets the key's PEXPIREAT at every write,
// the embedded store hides and prunes expired pages). So the number of
// pages kept is the number of pages dwelt on in the last TTL.
//
// # Shares and ranks
//
// Heat returns the page's total dwell (OtherElement included) and its
// elements sorted by dwell, most first (ties by element name), each with
// share = dwell / total rounded to 4 decimals and a competition rank
// (equal dwell, equal rank: 1, 2, 2, 4).
//
// # Cost
//
// React aggregates the batch in memory (one counter per page and
// element) and writes it with one AddDwell: one Redis round trip (a
// MULTI/EXEC with one small Lua script per page, which bounds the
// page's elements and sets its expiry) or one write-ahead-log record of
// the embedded store (type 14, not waited for with fsync: derived data,
// like the counters of engine/stats). It runs on the engine's consuming
// goroutine after the commit, so its latency adds to the batch's; batches
// without dwell events write nothing.
package attention
