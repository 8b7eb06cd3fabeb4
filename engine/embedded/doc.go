// Package embedded is the engine.Store of the embedded mode (kairos serve
// without Redis): the whole state lives in memory and is persisted to a
// data directory, so that nothing is lost on a clean restart and nothing
// acknowledged is lost on a crash of the process. The one exception is
// the item states of the snapshot (most of a large catalog's bytes,
// which the engine holds in its model anyway): they stay in the snapshot
// file and are read from it when asked for (statebase.go).
//
//	s, err := embedded.Open("./kairos-data", embedded.Config{})
//	if err != nil { … }
//	defer s.Close()
//
// # Files
//
// The data directory holds:
//
//	LOCK                 flock'ed while a Store has the directory open (ErrLocked otherwise)
//	FORMAT               the storage format: "kairos-embedded 2" (see Storage format)
//	wal-<seq>.log        the write-ahead log: one record per mutation, appended
//	snapshot.kdb         the state as of the start of log <seq> (seq is in its header)
//	blobs/<name>         one file per blob (PutBlob), the name path-escaped
//
// The directory and everything in it are private to the account running
// the store: directories 0700, files 0600 (the log and the snapshot hold
// visitor histories and the offer-token secret). Open removes the group
// and other permission bits of whatever an older version created
// 0755/0644, logging a warning, and fails, naming the file and the chmod
// that fixes it, when it cannot (another owner); see internal/fileperm.
//
// Every record, in the log and in the snapshot, is framed as
//
//	length uint32 LE | CRC-32C of the payload uint32 LE | payload (type byte, then fields)
//
// Log records are a Commit (time, hashes of the event ids, and per visitor
// update: id, factors if any, session, appended history events), a delete
// visitor, a row assignment (first row, ids), a set of item states,
// identity links, and the records of the storage primitives below. Visitor
// values use the binary encodings of package engine
// (engine.HistoryEvent.AppendBinary, …): factors are little-endian
// float32s. A snapshot is a header (magic, format version, log sequence),
// the visitors, the de-duplication buckets, the row assignments, the item
// states, the links and the primitives' collections, maps and logs, then
// an end record counting the records. Record types 2, 3, 7, 8, 14 and 15
// (catalog items, counters, promo, attention and experiments of storage
// format 1) are never reused: those features keep their state on the
// primitives since format 2.
//
// # Storage primitives
//
// The Store is a storage.Backend (engine/storage): documents, maps changed
// by atomic transactions, and bounded logs, on which the domain stores are
// written once. Each write is one log record (types 16 to 20, see
// prims_records.go), applied under the state lock and, with SyncAlways,
// fsynced before the call returns (group commit, as a Commit) — except a
// Lazy transaction (storage.Txn.Lazy: the counters written per consumed
// batch), which the next synced write makes durable:
//
//   - PutDoc and DeleteDoc log the collection, the id (and the JSON); the
//     collection's version counts its changes and is kept in snapshots.
//   - Apply checks the conditions, then stages the new values of only the
//     fields the ops touch (storagetest.ApplyOp semantics; a large map is
//     not copied), and logs the result, not the ops: per map whether it
//     expired before (it starts over), whether it is left without fields
//     (it is removed), its new expiry, and each touched field's new value
//     or removal. A failed condition (errs.Conflict) or an invalid op
//     (errs.Invalid) writes nothing. Replaying the result does not depend
//     on the clock at the replay. In memory the result of an increment
//     stays a number (prims_value.go), logged and snapshot as that number
//     (a varint, or a float64's bits) and formatted as text only when it
//     is read, and the staging memory is reused, so a transaction of
//     counters parses, formats and allocates nothing.
//   - Append logs the sequence number it gave, keep, the expiry (the
//     store's clock, Config.Now, plus ttl) and the data; Delete logs the
//     keys that exist.
//
// A map or log past its expiry reads as absent, is replaced by the next
// write of its key, and is dropped from memory at the next compaction
// (which leaves it out of the snapshot) or Open. Maps and collections
// are copied on write while a compaction's snapshot shares them (only the
// first write of each after a compaction copies it). A snapshot holds a
// collection per record (recDocs: version and documents, in chunks of
// 1,024), a map per record (recMapTxn, in chunks of 4,096 fields) and a
// log per record (recLogState).
//
// # Storage format
//
// FORMAT names the format of the directory, which this build checks at
// Open and OpenReadOnly. A directory holding a snapshot or a log and no
// FORMAT was written before format 2 (with the promo, experiments,
// counters and attention records of types 7, 8, 14 and 15, which the
// domain stores on the primitives replace): it is refused with ErrFormat
// (errs.Invalid), naming the directory, the formats and the upgrade path:
// export the definitions (offers, campaigns, rules, experiments) with the
// old build, start on an empty directory, re-create them, and replay the
// history from the archive with `kairos replay`. A new directory gets the
// marker before its first log.
//
// # Durability
//
// A mutation is one log record written with one write(2) before the call
// returns, and applied in memory under the same lock, in log order. So a
// killed process never loses an acknowledged write, whatever the sync
// policy. Config.Sync decides what a machine crash may lose:
//
//   - SyncAlways (default): the log is fsynced before Commit, PutItem,
//     DeleteItem, DeleteVisitor, ItemRows (when it assigns rows) and
//     SaveItemStates return. Concurrent callers share one fsync (group
//     commit): while one fsync runs, the next callers queue, and the first
//     of them fsyncs for all.
//   - SyncInterval: fsync every Config.SyncEvery (default 100 ms).
//   - SyncNever: the operating system flushes when it likes.
//
// Blobs are written to a temporary file, fsynced (unless SyncNever) and
// renamed over the old value. A write or fsync error that cannot be undone
// makes the store refuse further writes (engine.ErrUnavailable) until it is
// reopened, which replays what is really on disk.
//
// # Recovery and compaction
//
// Open reads the snapshot, replays the logs from its sequence on, and
// appends to the last log. A record cut short or failing its checksum at
// the end of the last log is the trace of a crash in the middle of a write
// (never acknowledged): it is truncated with a warning, not an error. The
// same damage in an earlier log, or any damage in the snapshot, is
// corruption and Open fails.
//
// When the log passes Config.CompactBytes (default 64 MiB), and on Close, a
// compaction starts a new log, copies the state's maps (values are
// immutable once stored, so the copy is shallow and writers wait only for
// it), and writes the snapshot from the copy in the background: to
// snapshot.kdb.tmp, fsync, rename, fsync of the directory; then the logs it
// covers are removed. A crash at any step leaves a snapshot and the logs
// after it. The snapshot's item states are copied from the previous
// snapshot's file (those not saved again since) and from memory; the
// new file is then their source, and memory keeps only the states saved
// after the copy.
//
// # De-duplication
//
// Seen marks are kept as 128-bit FNV-1a hashes of the visitor and the
// event id (about 20 bytes of memory each; an id is de-duplicated per
// visitor, as on Redis; the id-only marks of earlier versions are looked
// up too until they expire) in 8 time buckets per Config.DedupWindow (default 7
// days); a bucket is dropped once all its marks are older than the window,
// so an id is reported for at least the window and at most 9/8 of it, and
// memory holds only the marks of the last window.
//
// # Reading beside a running store
//
// OpenReadOnly loads the directory without its lock and without writing
// anything, for tools that read while `kairos serve` runs (kairos eval
// experiment): each log is read up to its size when opened, a record being
// written at the end of the last one is left out (not truncated), and a
// log removed by a concurrent compaction makes it start over from the new
// snapshot. Every write returns ErrReadOnly.
//
// # Concurrency
//
// A Store is safe for concurrent use: reads share a read lock; writes are
// serialised by the write lock around the log append and the in-memory
// update. Values returned are copies. Lock order: the fsync lock, then the
// state lock.
package embedded
