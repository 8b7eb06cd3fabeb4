// Package client is a Go client of the Kairos HTTP API (api/openapi.json,
// served at GET /openapi.json; package api's documentation is the
// manual). It is written by hand with the description as its test: the
// package's tests run every call against a real server wrapped in the
// OpenAPI validator (api/openapitest).
//
//	c, err := client.New("http://localhost:8080", os.Getenv("KAIROS_SECRET_KEY"))
//	res, err := c.SendEvents(ctx, []client.Event{{Type: "view", Visitor: "v-17", Item: "sku-42"}})
//	recs, err := c.Recommendations(ctx, client.RecQuery{Visitor: "v-17", N: 5})
//
// Retries: SendEvents, Identify and every idempotent call (GET, PUT,
// DELETE) are retried on 429, 503, 504 and network errors, at most
// Options.Retries times, waiting the server's Retry-After when it gives
// one and an exponential backoff with jitter otherwise, never past the
// context's deadline (the call then fails at once with the last error
// instead of sleeping in vain). Events keep their ids across retries (an
// event without an id gets one before the first try), so the engine's
// de-duplication makes a retried batch count once. POST of a definition
// (CreateItem, CreateOffer, …) is not retried: it is not idempotent (use
// the Put calls for upserts).
//
// Batching: SendEvents splits a slice into batches of at most
// Options.MaxBatch (500, the server's limit) events and sends them in
// order; the result adds up the batches. A Batcher (Client.NewBatcher) collects
// events added one at a time and sends them the same way when a batch is
// full, a delay after its first event, or on Flush and Close.
//
// Errors: an answer other than 2xx is an *Error with the status, the
// API's code and message, the request id and Retry-After; errors.As
// finds it. Use IsNotFound and friends to branch.
//
// Promotions: Promotions follows a visitor's promotion stream
// (server-sent events) and reconnects after a broken connection with the
// last id it delivered (Last-Event-ID), so none is lost or repeated.
package client
