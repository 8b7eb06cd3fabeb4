// Package tenant serves many sites from one Kairos deployment: a registry
// of tenants with their own keys and quotas, kept on the store port
// (storage.Documents, collection "tenants"), and an HTTP router that
// resolves each request's key to its tenant and hands the request to that
// tenant's own server (engine, catalog, histories, definitions and archive
// on a store namespace of its own).
//
// # Modes
//
// Multi-tenant mode is on when an admin key is configured (kairos serve
// --admin-key / $KAIROS_ADMIN_KEY). Without it nothing of this package
// runs and kairos serve is the single-site server it always was.
//
// # Isolation by construction
//
// A tenant is not a filter over shared data: the Loader given to the
// Router builds, per tenant, a complete server over its own store
// namespace (Redis key prefix <namespace>.t.<id>, embedded store and
// archive under <data-dir>/tenants/<id>); with RabbitMQ the tenants
// share one set of partitions, each event routed by its tenant (see
// "Shared partitions" below). A request reaches a tenant's server only once
// its key resolved to that tenant, and the tenant's server checks the key
// again against its own keys. No code path takes a tenant id from the
// request.
//
// # Keys
//
// Every tenant has a publishable and a secret key ("pk_…", "sk_…"),
// returned when the tenant is created and when its keys are rotated, and
// never listed again (listings show a hint: the first characters). Keys
// are looked up by their SHA-256 in a map, then compared in constant time
// (crypto/subtle): the time of a lookup does not depend on how much of
// another tenant's key a guess shares. An unknown key, a key of a deleted
// tenant and a rotated-out key all get the same 401 "unknown key"; a key
// only ever reaches its own tenant's server, where another tenant's object
// is the 404 of an object that does not exist: no answer tells whether a
// tenant, or another tenant's object, exists.
//
// # Sleeping tenants
//
// A tenant's server is built on its first request (Pool) and kept while
// requests come; beyond Config.MaxLoaded loaded tenants, the least
// recently used idle one is stopped (its state saved to its store) and
// reloaded from the store on its next request.
//
// # Quotas
//
// Per tenant (Quotas): requests per second (a token bucket over all its
// keys and clients), events per second (a bucket of one second's events
// charged with what each event request accepted: overdrawn, event
// requests are refused before any work), events per UTC day, items in
// its model, distinct visitors (their ids kept in the tenant's own
// store). A refusal is 429 with a message naming the quota and, for the
// rates, Retry-After. The rates are per server process; the events per
// day are shared by the replicas through the deployment's store
// (Config.Counters: each replica adds its count and reads the total every
// second, so together they may pass the quota by about one second's
// events).
//
// # Keys rotation
//
// A rotation gives the tenant a new pair; with a grace (grace_seconds,
// or the deployment's default Config.KeyGrace) the old pair stays valid
// until then, in the router and in the tenant's own server.
//
// # Shared partitions
//
// With RabbitMQ the tenants share one set of partition queues; the
// Dispatcher hands each tenant its events (see dispatch.go, "Shared
// partitions").
package tenant
