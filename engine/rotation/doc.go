// Package rotation is the rotation and paging layer of GET
// /v1/recommendations: items recently served to or seen by a visitor are
// demoted for a rotation time, fading back rather than cut, and a list can
// be paged with an opaque next token that never repeats an item of the
// earlier pages. It is a layer over the ranker's output: the engine's
// ranking (its top-K scan or index walk) is unchanged and asked, through a
// Ranker, for enough candidates.
//
//	r, err := rotation.New(store, rotation.Config{Default: 30 * time.Minute, Secret: secret})
//	eng.AddReactor(r) // impression events mark items seen
//	resp, err := r.Serve(ctx, rotation.Request{Visitor: "v-17", N: 10, Rotation: -1, Page: next},
//		func(ctx context.Context, n int) (engine.RecResponse, error) { req.N = n; return eng.Recommend(ctx, req) })
//	// resp.Items: the page; resp.Next: the token of the next one ("" at the end)
//
// # What was shown
//
// Per visitor (the request's visitor id), one map on storage.Maps — so
// every backend keeps it — under "rot:<visitor>": item id → Unix ms of
// its latest showing. A served page writes its items (one lazy Txn) when
// a rotation applies to the request; an impression event with an item
// (the tracker's, or a site's own) writes its item at the event's time.
// The map expires Config.Max after its last write, and a served page's
// write drops the fields older than Max that its read found. A request
// with a rotation costs one read and one write of that map.
//
// # The fade
//
// The ranker's list of k candidates gives the item at rank i (0-based) the
// utility (k−i)/k: its place in the ranking, whatever the sign and scale of
// the scores (ALS dot products may be negative). An item shown age ago,
// under a rotation r, has its utility multiplied by Fade(age, r) = age/r,
// clamped to [0, 1]: just served it falls to the bottom of the candidates,
// half-way through the rotation it competes with the items ranked around
// the middle, after r it is back in its place. The list is sorted by
// utility (ties keep the ranker's order); the scores returned stay the
// ranker's. Because the layer asks the ranker for N + the earlier pages'
// items + the visitor's demoted items (at most Config.MaxCandidates, the
// engine's MaxResults), a page is full whenever that many items exist.
//
// # Pages
//
// Every answer the layer makes (a request naming rotation or page, or a
// site default rotation) carries Next when more items may follow. The
// token (token.go) holds the 64-bit hashes of the items of every earlier
// page, the rotation of the first page, the visitor and an expiry
// (Config.TokenTTL), signed with HMAC-SHA256 under a key derived from
// Config.Secret (the store's token secret in kairos serve, so every
// replica accepts every replica's tokens). The next page leaves those
// items out, whatever the ranking has become meanwhile: pages never
// repeat an item. Pages end at MaxCandidates items in all. A token that
// does not decode, was altered or made with another key, has expired or
// names another visitor is an engine.ErrInvalid naming "page" (HTTP 400).
package rotation
