// Package redisstore is the Redis engine.Store (go-redis v9): the state
// that several engine replicas share when Kairos runs with
// KAIROS_REDIS_URL, on one Redis server or on a Redis Cluster.
//
//	s, err := redisstore.Open(ctx, redisstore.Config{URL: "redis://127.0.0.1:6379/0"})
//	s, err := redisstore.Open(ctx, redisstore.Config{URL: "redis://10.0.0.1:6379?addr=10.0.0.2:6379&addr=10.0.0.3:6379"})
//	if err != nil { … }
//	defer s.Close()
//
// A URL with addr query parameters is go-redis's cluster form
// (redis.ParseClusterURL: the seed nodes): the store then uses a
// redis.ClusterClient, else a redis.Client, both as redis.UniversalClient
// (internal/redisconn decides, for every command and test).
//
// # Key layout
//
// Every key starts with Config.Prefix (default "kairos") and a colon.
// Values of visitors and item states use the binary encodings of package
// engine (engine.HistoryEvent.AppendBinary, engine.Session.AppendBinary,
// engine.ItemState.AppendBinary); factors are little-endian float32s.
// {<visitor>} is the visitor id as a Redis Cluster hash tag
// (redisconn.Tag: an id that is empty or holds a '}' is replaced inside
// the braces by '#' and its FNV-1a hash, the id following the tag).
//
//	<prefix>:v:{<visitor>}      HASH    f → factors (k little-endian float32), s → session (binary),
//	                                    n → number of events in the history string
//	<prefix>:h:{<visitor>}      STRING  history: frames (uint32 LE length, event binary), oldest first (APPEND)
//	<prefix>:seen:{<visitor>}:<event id>
//	                            STRING  "1", expiring after DedupWindow (SET … PX): the de-duplication
//	                                    mark of an event committed to the visitor's state (engine.EventRef)
//	<prefix>:{rows}             HASH    item id → row (decimal)
//	<prefix>:{rows}:ids         LIST    item ids in row order (index = row)
//	<prefix>:states:{s<n>}      HASH    row (decimal) → item state (binary), for the rows ≡ n modulo
//	                                    StateShards (32 shards)
//	<prefix>:blob:<name>        STRING  blob data (PutBlob), or for a blob over 4 MiB the manifest of its
//	                                    chunks (see "Large blobs" in blob.go)
//	<prefix>:blob:<name>:chunk:<generation>:<i>
//	                            STRING  chunk i (at most 4 MiB) of a large blob; a replaced
//	                                    generation's chunks expire a minute later
//	<prefix>:blob:<name>:pending
//	                            HASH    generation → "<start, Unix ms>:<chunks>" of each chunked put
//	                                    under way; one not finished within an hour is swept by the next
//	<prefix>:link:{<anon>}      STRING  the user the anonymous id is linked to
//	<prefix>:links:{<user>}     SET     the anonymous ids linked to the user
//	<prefix>:m:st:<res>:<kind>:<id>:<start>
//	                            HASH    counters of engine/stats (AddCounts): <type> → count,
//	                                    <type>:v → sum of the values (HINCRBYFLOAT; absent when 0)
//	<prefix>:m:att:<page>       HASH    attention heat of engine/attention (AddDwell): element → dwell ms
//
// In a counter key, res is 15m, 1h or 1d, kind is i (item) or o (offer),
// id is the item or offer id as is (it may contain ':'; the bucket start,
// in Unix seconds, is always the last segment), e.g.
// kairos:m:st:1h:i:sku-42:1795442400. A counter hash expires at its
// bucket's end plus the resolution's retention (EXPIREAT, set again by
// every write: it is absolute), or never (1d by default: no EXPIRE).
//
// # Redis Cluster
//
// Every script and every MULTI/EXEC touches one slot: a visitor's hash,
// history and marks share the visitor's hash tag; the item rows' hash and
// list share {rows} (the dense row allocation is one small script: it
// runs when a replica meets an item it has not cached, a few times per
// item); each item-state shard is a slot of its own, so a large catalog's
// states (about 0.5 KB per item with k = 64) are spread over the masters;
// a storage collection's keys share {<coll>}; the maps of one storage Txn
// share the hash tag its domain store gives them (engine/storage.Txn).
// Nothing is cluster-wide in one hot key but the row allocation and the
// documents of one collection (definitions: small, rarely written). No
// request path uses KEYS or SCAN; Open scans once, on every master, when
// the namespace has no format key (see Storage format).
//
// What each call keeps atomic on a cluster:
//
//   - Commit: each visitor's update together with the marks under that
//     visitor (one commitScript call, in its slot); the calls are grouped
//     by master and sent as one pipeline per master, in parallel (one
//     round trip each). The commit as a whole is not atomic: if a master
//     fails, the visitors on the others are recorded, their marks with
//     them, and Commit returns an error; the engine redelivers the batch,
//     Seen reports the recorded visitors' events, and only the others are
//     applied — each event once. (On one server the calls run inside one
//     MULTI/EXEC: the whole commit is atomic, as before.)
//   - ReplaceVisitor, DeleteVisitor, ItemRows, PutDoc, DeleteDoc, Apply,
//     Append: atomic (one slot). Apply refuses, with errs.Invalid naming
//     the keys, a Txn whose maps are in different slots, before writing
//     anything; a Lazy Txn of increments and expiries only is applied per
//     slot (one script per slot, pipelined), atomic in each.
//   - SaveItemStates: each shard's HSET is atomic; the call is a pipeline
//     (one MULTI/EXEC on one server).
//   - Link, Unlink, UnlinkDevice: key by key (the link and the user's set
//     are in different slots), in an order that a retry completes.
//   - Seen and Resolve are a pipeline of GETs instead of one MGET.
//
// A master failover (the master dies, a replica is promoted after
// cluster-node-timeout) is survived: see the Failover notes of retry.go.
// Commits to the dead master's slots stall for the failover (measured on
// the local cluster, cluster-node-timeout 2000 ms: 4.6-5.6 s) and then
// succeed, sent to the promoted replica. Redis replicates asynchronously:
// with Config.WaitReplicas 0 the last commits a master acknowledged before
// it died may be missing on the promoted replica. With WaitReplicas 1
// (kairos serve --redis-wait-replicas 1) Commit ends each master's
// pipeline with WAIT: a commit is acknowledged once a replica has it, and
// a failover loses no acknowledged commit (see
// TestClusterCommitSurvivesMasterFailover); a master with no live replica
// (the promoted one, until the old master rejoins) acknowledges without
// waiting, as its ROLE lists none.
//
// The storage primitives (storage.Backend, engine/redisstore/storage.go;
// the domain stores built on them choose the collections and keys):
//
//	<prefix>:format             STRING  the storage format, "3" (see Storage format)
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
// are applied, as Lazy allows. On a cluster it is one lazyScript call per
// slot (HINCRBY, HINCRBYFLOAT, then PEXPIREAT of each key), pipelined.
// A Txn of several maps that is not of that kind must name maps of one
// slot (one hash tag) on a cluster: Apply refuses it otherwise.
//
// Promo, experiments, stats, attention and the catalog keep their state
// on these primitives (their key names are in their packages:
// engine/promo/backend.go, engine/experiments/kvstore.go,
// engine/stats/store.go, engine/attention/store.go,
// engine/items_store.go); this package knows nothing of them. Each Txn
// they apply names one map or maps of one hash tag (promo: one Txn per
// visitor's caps; attention: one per page; experiments: every map under
// {xp}), or is a Lazy Txn of increments.
//
// # Storage format
//
// Open reads <prefix>:format. When it holds 3 the namespace is this
// version's. When it is absent and no key is under the prefix (an
// EXISTS of the old layouts' well-known keys, then a SCAN MATCH
// <prefix>:* that stops at the first key, on every master of a cluster:
// once, at Open), Open writes 3 (SET NX). Otherwise — another format, or
// data of the layout before formats (old promo, experiments, stats or
// attention keys, or any key without a format key) — Open fails with
// errs.Invalid naming the prefix, the found and expected formats and the
// upgrade path: use a new prefix (or delete the old keys), re-create the
// definitions and replay the event history with `kairos replay`.
//
// Format 3 (this version) moved the keys for Redis Cluster: the visitor,
// history and mark keys gained the visitor's hash tag (a mark is now keyed
// by the visitor too), rows and rows:ids became {rows} and {rows}:ids,
// states was split into 32 tagged shards, the link keys gained hash tags,
// and the experiments' maps are m:{xp}/<id>/<part> (were m:xp/<id>/<part>).
// Format 2 namespaces are refused as above.
//
// # Round trips
//
// Each call is one round trip (on a cluster, one per master involved, in
// parallel), whatever the batch size: Visitors pipelines an HMGET and a
// GET per visitor; Seen is one MGET; Commit is one pipeline of
// commitScript calls, one per visitor (inside MULTI/EXEC on one server);
// ItemRows is one Lua script; SaveItemStates is a pipeline of HSETs;
// ItemStates pages through each shard with HSCAN.
//
// commitScript (KEYS: the visitor's hash, its history, its link, its
// marks) skips a visitor whose marks all exist already (a retried
// commit), refuses an update of an anonymous visitor that is linked to a
// user (engine.ErrConflict: its state may have been merged into the
// user's), then SETs the marks, APPENDs the frames (SETs them when the
// update replaces the history), HINCRBYs the count and HSETs the session
// and factors; when the count passes HistoryLimit + HistoryLimit/4 it cuts the
// oldest frames so that HistoryLimit remain (once per HistoryLimit/4
// events of a visitor).
//
// A history is one string rather than a list of events because loading it
// is the hot read (every batch loads the visitors it touches): one bulk
// value per visitor costs Redis and the client far less than one list
// element per event (measured: 2× less server time, 27× fewer client
// allocations). Reads return at most HistoryLimit events, the newest.
//
// # Guarantees
//
// On one server Commit is atomic: Redis runs a transaction whole, with no
// other client's command in between, and persists it whole (with AOF, a
// transaction cut by a crash is dropped on restart); on a cluster it is
// atomic per visitor (see Redis Cluster). Its durability is the server's:
// configure appendonly yes and appendfsync everysec (at most a second of
// commits lost on a machine crash) or always, and on a cluster
// WaitReplicas. Two caveats: a command of a script or transaction that
// fails at run time (a key of the wrong type, written by someone else
// under the prefix) does not undo the others; and if the connection
// breaks after the commands were sent, Commit returns an error although
// the commit may have been applied — the engine then redelivers the batch
// and the de-duplication marks make it a no-op.
//
// ItemRows assigns rows with a Lua script (HGET, else RPUSH the id and HSET
// its row = the list's new length − 1): scripts run atomically, so engine
// replicas calling it at the same time get the same dense rows.
//
// It needs Redis 6.2 or later (7 or later for a cluster: the scripts are
// loaded on every node, and a promoted replica without them gets them
// again on its first NOSCRIPT).
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
