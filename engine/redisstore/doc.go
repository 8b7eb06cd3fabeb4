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
//
// # Round trips
//
// Each call is one round trip, whatever the batch size: Visitors pipelines
// an HMGET and a GET per visitor; Seen is one MGET; Commit is one
// MULTI/EXEC transaction holding every write of the batch (a SET per event
// id; APPEND, HINCRBY and HSET per visitor); ItemRows is one Lua script;
// PutItem, DeleteItem and SaveItemStates are transactions. Items takes two
// (ZRANGE … BYLEX, then HMGET); ItemStates pages through the states with
// HSCAN.
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
