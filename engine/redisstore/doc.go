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
// The storage primitives (storage.Backend, engine/redisstore/storage.go;
// the domain stores built on them choose the collections and keys):
//
//	<prefix>:format             STRING  the storage format, "2" (see Storage format)
//	<prefix>:d:{<coll>}         HASH    document id → JSON
//	<prefix>:d:{<coll>}:ids     ZSET    document ids, score 0: ascending-id paging with ZRANGE … BYLEX
//	<prefix>:d:{<coll>}:v       STRING  the collection's version: INCR on every PutDoc and DeleteDoc
//	<prefix>:m:<key>            HASH    a map (storage.Maps): field → value; PEXPIREAT by OpExpire
//	<prefix>:l:<key>            ZSET    a log (storage.Logs): score 0, member = the sequence number
//	                                    as 20 zero-padded decimal digits, then the entry's data
//
// A collection's three keys share the hash tag {<coll>}: they are in one
// Redis Cluster slot, as the scripts that change them together need. A
// map key or a log key is the domain store's key as is, so a domain
// store that changes several maps in one Txn makes them share a slot by
// giving their keys a common hash tag ("{visitor-42}:caps" and
// "{visitor-42}:cool"); every script declares the keys it touches in
// KEYS, and no request path uses KEYS or SCAN. (A collection name that
// is empty or starts with '}' makes an empty hash tag, which Redis
// Cluster ignores: the domain stores' names are plain words.)
//
// Each primitive that writes is one script call (EVALSHA of a script
// loaded at Open; go-redis falls back to EVAL when the server lost its
// cache), atomic:
//
//   - PutDoc: HEXISTS, then per mode 0 (Create of an existing document:
//     Conflict) or -1 (Replace of a missing one: NotFound), else HSET,
//     ZADD of a new id and INCR of the version.
//   - DeleteDoc: HDEL (0: NotFound), ZREM, INCR.
//   - Apply: a whole storage.Txn. It checks every condition (HGET; a
//     failed one replies {'conflict', i}: Conflict) and that every key is
//     a hash or absent (TYPE; else Internal: a command failing half-way
//     through a script would not undo the ones before), reads the fields the
//     ops increment (one HMGET per map), runs the ops on that staged copy
//     and replies {'invalid', i, why} (Invalid, nothing applied) when an
//     increment meets a field Redis would refuse (not an integer in
//     Redis' strict syntax, no leading zeros or '+'; not a float; an
//     overflow), then applies them: HSET, HINCRBY, HINCRBYFLOAT, HDEL and,
//     last, PEXPIREAT of each map's last expiry time.
//   - Append: the last member (ZRANGE -1 -1) gives the last sequence
//     number; the new one is max(last + 1, minSeq, 1), computed on the
//     padded decimal strings (exact for every uint64: Lua numbers and
//     sorted-set scores are doubles, exact only below 2^53, and Unix-µs
//     sequence numbers are about 1.8e15); then ZADD, ZREMRANGEBYRANK of
//     all but the keep newest, PEXPIRE (or PERSIST when ttl <= 0).
//
// Reads: Doc is HGET, DocsVersion GET, Docs a read-only script (ZRANGE …
// BYLEX LIMIT, then HMGET of those ids) per page of at most 1000
// documents (O(log n + limit), one consistent page per call), Fields
// HMGET, Maps a pipeline of HGETALLs, Entries ZRANGE … BYLEX LIMIT from
// the padded after + 1. Delete is a pipeline of UNLINKs (one per Redis
// key: a storage key's map and log).
//
// Measured on the shared 2-core machine under a load average of 20 to 30
// (bench_test.go; wall time per call, and the server's time from INFO
// commandstats): Apply of a 200-op Txn 2.4-4.7 ms (0.8-1.4 ms in Redis),
// Maps of 100 maps of 10 fields 1.3-2.7 ms (100 × 2 µs in Redis, the
// rest decoding in the client), Append 0.1-0.4 ms (16-27 µs in Redis), a
// Docs page of 100 documents 0.7-1.7 ms, alike among 1000 and 100000.
//
// HINCRBYFLOAT computes in long double and writes up to 17 significant
// digits without an exponent ("0.3" for 0.1 + 0.2, where strconv writes
// 0.30000000000000004): readers parse the value with strconv.ParseFloat,
// never compare its text.
//
// A Lazy Txn of increments and expiries only (storage.Txn.Lazy: the
// counters of engine/stats, engine/attention and engine/promo written per
// consumed batch) skips the script: it is one MULTI/EXEC of HINCRBY,
// HINCRBYFLOAT and PEXPIREAT, without reading the fields first (a third
// of the script's Redis CPU for a counters' batch); an increment of a
// field that is not a number is then reported Invalid while the others
// are applied, as Lazy allows.
//
// Promo, experiments, stats, attention and the catalog keep their state
// on these primitives (their key names are in their packages:
// engine/promo/backend.go, engine/experiments/kvstore.go,
// engine/stats/store.go, engine/attention/store.go,
// engine/items_store.go); this package knows nothing of them.
//
// # Storage format
//
// Open reads <prefix>:format. When it holds 2 the namespace is this
// version's. When it is absent and no key is under the prefix (an
// EXISTS of the old layout's well-known keys, then a SCAN MATCH
// <prefix>:* that stops at the first key: once, at Open), Open writes 2
// (SET NX). Otherwise — another format, or data of the layout before
// formats (old promo, experiments, stats or attention keys, or any key
// without a format key) — Open fails with errs.Invalid naming the prefix,
// the found and expected formats and the upgrade path: use a new prefix
// (or delete the old keys), re-create the definitions and replay the
// event history with `kairos replay`.
//
// # Round trips
//
// Each call is one round trip, whatever the batch size: Visitors pipelines
// an HMGET and a GET per visitor; Seen is one MGET; Commit is one
// MULTI/EXEC transaction holding every write of the batch (a SET per event
// id; APPEND, HINCRBY and HSET per visitor); ItemRows is one Lua script;
// SaveItemStates is a transaction; ItemStates pages through the states
// with HSCAN.
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
// slot, so Redis Cluster is not supported yet: use one primary (with
// replicas and Sentinel for failover). The storage primitives are ready
// for it (see their key layout).
//
// # Errors
//
// redis.Nil becomes engine.ErrNotFound; network errors, timeouts, a closed
// client and the server's transient refusals (LOADING, READONLY,
// MASTERDOWN, TRYAGAIN, CLUSTERDOWN, BUSY, OOM) become
// engine.ErrUnavailable; both are wrapped with the operation, e.g.
// "redisstore: commit: store unavailable: dial tcp …". A cancelled or
// expired context is returned as such by the engine.Store methods, and
// as errs.Unavailable wrapping it by the storage primitives (as
// storagetest.Mem does). The primitives' own errors are of the kinds of
// internal/errs: NotFound, Conflict, Invalid, Internal (a malformed
// stored value).
package redisstore
