// Package redisstore is the Redis engine.Store (go-redis v9): the state
// that several engine replicas share when Kairos runs with
// KAIROS_REDIS_URL.
//
//	s, err := redisstore.Open(ctx, redisstore.Config{URL: "redis://127.0.0.1:6379/0"})
//	if err != nil { … }
//	defer s.Close()
//
// # Key layout
//
// Every key starts with Config.Prefix (default "kairos") and a colon.
// Values of visitors and item states use the binary encodings of package
// engine (engine.HistoryEvent.AppendBinary, engine.Session.AppendBinary,
// engine.ItemState.AppendBinary); factors are little-endian float32s.
//
//	<prefix>:v:<visitor>      HASH    f → factors (k little-endian float32), s → session (binary),
//	                                  n → number of events in the history string
//	<prefix>:h:<visitor>      STRING  history: frames (uint32 LE length, event binary), oldest first (APPEND)
//	<prefix>:seen:<event id>  STRING  "1", expiring after DedupWindow (SET … PX): the de-duplication mark
//	<prefix>:items            HASH    item id → item JSON
//	<prefix>:items:ids        ZSET    item ids, score 0: ascending-id paging with ZRANGE … BYLEX
//	<prefix>:rows             HASH    item id → row (decimal)
//	<prefix>:rows:ids         LIST    item ids in row order (index = row)
//	<prefix>:states           HASH    row (decimal) → item state (binary)
//	<prefix>:blob:<name>      STRING  blob data (PutBlob)
//	<prefix>:st:<res>:<kind>:<id>:<start>
//	                          HASH    counters of engine/stats (AddCounts): <type> → count,
//	                                  <type>:v → sum of the values (HINCRBYFLOAT; absent when 0)
//
//	<prefix>:att:<page>       HASH    attention heat of engine/attention (AddDwell): element → dwell ms
//	                                  (HINCRBY in a Lua script that keeps at most MaxElements fields
//	                                  besides "(other)"; PEXPIREAT at every write: the page's TTL)
//
// In a counter key, res is 15m, 1h or 1d, kind is i (item) or o (offer),
// id is the item or offer id as is (it may contain ':'; the bucket start,
// in Unix seconds, is always the last segment), e.g.
// kairos:st:1h:i:sku-42:1795442400. A counter hash expires at its
// bucket's end plus the resolution's retention (EXPIREAT, set again by
// every write: it is absolute), or never (1d by default: no EXPIRE).
//
// The promo.Store part (engine/promo: offers, campaigns, rules, their
// counters and the promotions of visitors; engine/redisstore/promo.go):
//
//	<prefix>:promo:<kind>         HASH    definition id → JSON; kind is offers, campaigns or rules
//	<prefix>:promo:version        STRING  INCR on every definition write (replicas poll it)
//	<prefix>:promo:stats          HASH    <offer>:i, <offer>:c, <offer>:v → impressions, clicks, conversions
//	<prefix>:promo:factors        HASH    <f>:<offer> → component f of the offer's learnt factor (HINCRBYFLOAT)
//	<prefix>:promo:v:<visitor>    HASH    c:<offer> → "<count> <window end ms>" (frequency cap),
//	                                      r:<rule> → cooldown end ms; expires a day after the longest
//	<prefix>:promo:log:<visitor>  ZSET    promotions: score Seq, member "<seq> <promotion JSON>";
//	                                      the newest keep, expiring ttl after the last append
//	<prefix>:promo:secret         STRING  32 random bytes: the token-signing secret (SET NX)
//
// The experiments.Store part (engine/experiments: definitions, sticky
// assignments, units, counts per variant, bandit weights and looks;
// engine/redisstore/experiments.go):
//
//	<prefix>:xp:defs          HASH    experiment id → definition JSON
//	<prefix>:xp:version       STRING  INCR on every definition write
//	<prefix>:xp:<id>:as       HASH    subject key (a:<visitor>, u:<user>) → "<variant> <Unix ms> <propensity>"
//	<prefix>:xp:<id>:un       HASH    subject key → unit record, or "= <subject key>" (an alias)
//	<prefix>:xp:<id>:ct       HASH    "<variant>:<field>" → integer: n, e, clk, cart, conv, rev, rq0…rq3
//	<prefix>:xp:<id>:w        STRING  bandit weights "<version> <JSON>"
//	<prefix>:xp:<id>:lk       HASH    look time (Unix ms) → look JSON
//
// AddOfferCounts is one MULTI/EXEC (HINCRBY, HINCRBYFLOAT and a Lua
// script per cap increment, sent as EVAL); TryRuleCooldown,
// AppendPromotion and DeletePromoDoc are Lua scripts (atomic: Seqs are
// strictly increasing per visitor even with several replicas). Seqs are
// Unix µs, exact in Redis' float64 scores until the year 2255.
//
// # Round trips
//
// Each call is one round trip, whatever the batch size: Visitors pipelines
// an HMGET and a GET per visitor; Seen is one MGET; Commit is one
// MULTI/EXEC transaction holding every write of the batch (a SET per event
// id; APPEND, HINCRBY and HSET per visitor); ItemRows is one Lua script;
// PutItem, DeleteItem and SaveItemStates are transactions. Items takes two
// (ZRANGE … BYLEX, then HMGET); ItemStates pages through the states with
// HSCAN. AddCounts is one MULTI/EXEC (HINCRBY per delta, HINCRBYFLOAT per
// non-zero sum, EXPIREAT per counter hash: about 900 commands for a batch
// of 256 events over 100 items, 1.2 ms and 0.7 ms of Redis CPU measured
// on the 2-core machine); Counts one pipeline of HGETALLs, one per bucket.
//
// A history is one string rather than a list of events because loading it
// is the hot read (every batch loads the visitors it touches): one bulk
// value per visitor costs Redis and the client far less than one list
// element per event (measured: 2× less server time, 27× fewer client
// allocations). Reads return at most HistoryLimit events, the newest. The
// stored string may hold up to HistoryLimit/4 more: when a Commit pushes a
// visitor past that, a Lua script cuts the oldest events (a second round
// trip, once per HistoryLimit/4 events of that visitor).
//
// # Guarantees
//
// Commit is atomic: Redis runs a transaction whole, with no other client's
// command in between, and persists it whole (with AOF, a transaction cut by
// a crash is dropped on restart). Its durability is the server's: configure
// appendonly yes and appendfsync everysec (at most a second of commits lost
// on a machine crash) or always. Two caveats: a command of a transaction
// that fails at run time (a key of the wrong type, written by someone else
// under the prefix) does not undo the others; and if the connection breaks
// after the transaction was sent, Commit returns an error although the
// commit may have been applied — the engine then redelivers the batch and
// the de-duplication marks make it a no-op.
//
// ItemRows assigns rows with a Lua script (HGET, else RPUSH the id and HSET
// its row = the list's new length − 1): scripts run atomically, so engine
// replicas calling it at the same time get the same dense rows.
//
// It needs Redis 6.2 or later. The keys of one Commit are not in one hash
// slot, so Redis Cluster is not supported: use one primary (with replicas
// and Sentinel for failover).
//
// # Errors
//
// redis.Nil becomes engine.ErrNotFound; network errors, timeouts, a closed
// client and the server's transient refusals (LOADING, READONLY,
// MASTERDOWN, TRYAGAIN, CLUSTERDOWN, BUSY, OOM) become
// engine.ErrUnavailable; both are wrapped with the operation, e.g.
// "redisstore: commit: store unavailable: dial tcp …". A cancelled or
// expired context is returned as such.
package redisstore
