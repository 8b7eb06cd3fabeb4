// Package archive is Kairos's event archive: an append-only directory of
// hourly segment files holding every accepted event as newline-delimited
// JSON inside zstd, so that replay and offline retrains can read the whole
// history, erasure requests can be honoured, and old raw events expire.
//
// This comment is also the format specification: another tool can read
// (and verify) an archive from what follows, without this package.
//
// # Use
//
// The engine opens one Archive per data directory and appends each
// consumed batch before it acknowledges the broker:
//
//	a, err := archive.Open(ctx, archive.Options{Dir: "kairos-data/archive", Logger: log})
//	...
//	if err := a.Append(ctx, batch); err != nil { /* do not ack; retry or nack */ }
//	...
//	a.Close()
//
// Replay and retrain read with [Archive.Scan] / [Archive.ScanRecords] in
// the same process, or with a [Reader] from another process (a Reader
// takes no lock and tolerates a writer appending meanwhile: it reads the
// active segment up to its last complete record). Erasure is
// [Archive.Erase] followed, at some point, by [Archive.Compact]; retention
// is Options.Retention, applied in the background at every hour roll-over
// and by [Archive.ApplyRetention].
//
// # Durability contract
//
// Append encodes the batch, queues it to a single writer goroutine and
// returns when the writer has written it, as complete records, to the
// active segment with write(2). The writer takes everything queued at that
// moment into one write (group commit), so concurrent appenders share the
// system call and the fsync. What a crash can lose depends on
// Options.Sync:
//
//	policy    Append returns after      process killed (kill -9)   machine crash / power loss
//	always    write(2) + fsync          nothing acknowledged       nothing acknowledged
//	interval  write(2); fsync every     nothing acknowledged       up to SyncInterval (100 ms)
//	          SyncInterval when dirty
//	none      write(2); fsync only      nothing acknowledged       what the kernel had not yet
//	          when a segment is sealed                             written back (~30 s on Linux)
//
// The default is interval. A segment is always fsynced before it is
// sealed, whatever the policy. Delivery is at-least-once: if the engine
// dies after Append returned but before the broker ack, the redelivered
// event is archived again; readers that need exactly-once de-duplicate by
// event ID. Append never drops: when the writer falls behind, the bounded
// queue (Options.QueueLength) fills and Append blocks until ctx ends. If a
// write or fsync fails, the archive refuses further appends (ErrFailed)
// rather than guess what is durable; reopening repairs the files.
//
// # Directory layout
//
//	<dir>/LOCK                           writer lock (flock); a Reader ignores it
//	<dir>/index.json                     index of sealed segments (replaced atomically)
//	<dir>/tombstones.ndjson              erasure tombstones (append-only)
//	<dir>/segments/20261123T14.ndjson.zst
//	<dir>/segments/20261123T15.ndjson.zst
//
// The directory, segments/ and every file are private to the account
// running the writer: directories 0700, files 0600 (the segments hold raw
// events). Open removes the group and other permission bits of what an
// older version created 0755/0644 (with a warning), and fails, naming the
// file and the chmod that fixes it, when it cannot (another owner).
//
// A segment is named after the UTC hour (YYYYMMDDTHH) in which its first
// record was written: events are placed by arrival, which keeps every file
// append-only. Each event keeps its own ts inside; late and early events
// are found by their ts through the per-segment and per-record time bounds.
// Names sort chronologically. Only the newest segment can be active
// (appended to); a new one is created when the clock passes the active
// segment's hour. If the clock goes back, the writer keeps appending to the
// newest segment rather than create an older one.
//
// # Segment file
//
// A segment is a sequence of records. A record is two zstd frames written
// with a single write(2):
//
//  1. a header: a zstd skippable frame (RFC 8878 §3.1.2) with magic
//     0x184D2A5A, frame size 60, and the 60-byte payload below;
//  2. a data frame: one ordinary zstd frame (content checksum and content
//     size present) whose content is count NDJSON lines, each the JSON of
//     one event followed by "\n".
//
// Header payload, little-endian:
//
//	offset size field
//	0      4    tag        "KAR\x01": format tag and version 1
//	4      4    data_len   uint32, bytes of the data frame that follows
//	8      4    data_crc   uint32, CRC-32C (Castagnoli) of those bytes
//	12     4    raw_len    uint32, decompressed bytes (the NDJSON)
//	16     4    count      uint32, number of events (lines), > 0
//	20     4    reserved   zero
//	24     8    seq        uint64, record sequence number
//	32     8    arrival    int64, writer clock when written, Unix ms
//	40     8    min_ts     int64, smallest event ts in the record, Unix ms
//	48     8    max_ts     int64, largest event ts, Unix ms
//	56     4    header_crc uint32, CRC-32C of bytes 0..55
//
// A record is valid when the magic, frame size, tag and header_crc match,
// count > 0, min_ts <= max_ts, all data_len bytes are present and match
// data_crc; its data frame then decompresses to raw_len bytes of exactly
// count lines. Sequence numbers strictly increase through a segment and
// from one segment to the next, and never restart (index.json keeps the
// highest, even when retention has removed every segment); seq defines
// the archive order. Arrival times do not decrease while one writer runs
// (across restarts they follow the clock). Records hold up to Options.MaxRecordBytes (1 MiB) of
// NDJSON; an event larger than that gets a record of its own.
//
// Each line is the event's JSON as defined by signals.Event (the same
// schema as on HTTP and RabbitMQ), with ts always set (an event appended
// without ts gets the archive clock's time) as RFC 3339 UTC with
// milliseconds. Keys appear in struct order, empty optional fields are
// omitted, props keys are sorted, and "<", ">", "&" are not escaped.
// user_hash, a credential, is never written.
//
// Because the header is a skippable frame, a segment is also a plain
// zstd stream of NDJSON: `zstd -dc segments/20261123T14.ndjson.zst`,
// `zstdcat segments/*.zst | jq …` work (checked by the tests with zstd
// 1.5.4). Decoders that stop after the first frame see only the first
// record. The active segment may end in a torn record after a crash; the
// writer truncates it on open, and decoders report an error after the
// complete records.
//
// # Index
//
// index.json is one JSON document, replaced atomically (write temporary
// file, fsync, rename, fsync directory) whenever a segment is sealed,
// compacted or deleted:
//
//	{"format": "kairos-archive", "version": 1, "last_seq": 1234,
//	 "compacting": "",  // a segment being replaced by Compact, if any
//	 "segments": [{"name": "20261123T14.ndjson.zst", "hour": "2026-11-23T14:00:00Z",
//	   "sealed": true, "events": 51234, "records": 812, "bytes": 1402331,
//	   "first_seq": 1, "last_seq": 812,
//	   "min_ts": "2026-11-22T09:01:02.345Z", "max_ts": "2026-11-23T14:59:59.999Z",
//	   "sha256": "…", "erasures": 0, "sealed_at": "2026-11-23T15:00:00.1Z"}, …]}
//
// sha256 is the SHA-256 of the whole segment file (so `sha256sum`
// verifies a copy); erasures counts the tombstones Compact has applied to
// the segment (kept in memory while a reopened segment is active, and
// written again when it is sealed: the records appended meanwhile come
// after all those tombstones). The active segment is not in the index. The index is a
// cache of what the segments say: Open rebuilds missing or stale entries
// (wrong size, unknown file, interrupted compaction) by scanning.
//
// # Tombstones and compaction
//
// tombstones.ndjson has one line per erasure:
//
//	{"visitor_sha256": "<hex SHA-256 of the visitor id>", "seq": 1234, "at": "2026-11-23T14:10:00Z"}
//	{"visitor_sha256": "…", "seq": 1240, "at": "2026-11-23T14:11:00Z", "ts_upto": "2026-11-23T14:11:00Z"}
//
// An event is erased when the SHA-256 of its visitor matches and the
// sequence number of the record holding it is <= seq (seq is the
// archive's last sequence number when the tombstone was recorded), or,
// when the line has ts_upto, its ts is at or before ts_upto (compared in
// milliseconds). So events archived after the erasure are kept, except,
// with ts_upto, those that happened before it (events still on their way
// when another replica made the erasure: in the broker, or consumed late
// by this one). The file stores the hash, not the id. Tombstone seq values
// never decrease along the file. A torn last line (no "\n") is a crash
// during Erase and is truncated on open; any other bad line is ErrCorrupt.
// [Archive.EraseHash] records a tombstone from the hex SHA-256 of the id
// (an erasure requested elsewhere, package offline/history, with
// [Archive.EraseHashRequested] taking the request's time as at);
// [Archive.EraseHashAt] also takes the time it was requested (at and
// ts_upto), and records nothing when the visitor already has a ts_upto at
// or after it (package offline/erasurelog, which brings every replica's
// erasures into each replica's archive); and
// [Reader.Erasures] gives the tombstones, with their at times, to filter
// events read from elsewhere than the segments by time instead of by
// sequence number (the history stream's tail: an event of the visitor
// published at or before at is erased).
//
// Compact rewrites each sealed segment that can contain erased events into
// segments/<name>.tmp (unchanged records copied byte for byte, the others
// re-compressed with their seq and arrival kept), fsyncs it, records the
// name under "compacting" in the index, renames it over the segment and
// writes the new index entry. A segment left empty is removed. When a
// tombstone can reach the active segment, Compact has the writer seal it
// first and compacts it too; an append later in the same hour reopens it
// (its index entry is removed, as on open).
//
// # Recovery on open
//
// Open takes the lock, makes the files private (see Directory layout),
// removes *.tmp leftovers, reads the index, drops
// entries whose file is missing or has another size, and scans every
// segment that is not indexed, verifying both checksums of every record
// (no decompression). The first invalid byte and everything after it is
// truncated (a torn record never mixes with good ones: the records before
// it are intact because they were written, in full, before it). The newest
// segment becomes the active one again if its hour is not yet over;
// otherwise it is sealed. Sealed segments are trusted on open (they were
// fsynced); [Reader.Verify] checks them completely.
//
// # Readers
//
// A scan reads segments in order, skipping whole segments (index bounds)
// and whole records (header bounds) outside the query's time window or
// sequence range without decompressing them; memory is bounded by one
// record. It filters erased events. In the writer's process a scan sees
// everything acknowledged before it started. A Reader in another process
// loads index.json before listing the segments, treats an unindexed newest
// segment as possibly being written (it stops quietly at an incomplete
// record there) and reports ErrCorrupt for an invalid record anywhere
// else. Segments deleted by retention or compaction after the listing are
// skipped.
//
// # Retention
//
// With Options.Retention = R > 0, a sealed segment is deleted (index entry
// first, then the file) once its hour ended at or before now − R, i.e.
// once all of it arrived more than R ago. The active segment is never
// deleted. The default, 0, keeps events forever.
//
// # Performance
//
// Measured on the shared 2-core development VM (ext4 on a virtual disk;
// other work running, so expect ±30 %), ~230-byte events, 3 runs each.
// BenchmarkAppend: 8 concurrent appenders:
//
//	policy    batch 100: events/s  bytes/event   batch 1: events/s  bytes/event
//	none      1.6–1.9 M            27.0          130–160 k          183–226
//	interval  1.5–1.75 M           27.0          144–147 k          184–188
//	always    0.38–0.64 M          26.9          12–17 k            96
//
// BenchmarkAppendSequential: one appender waiting for each Append (the
// engine's consumer loop):
//
//	policy    batch  events/s     Append p50   p99
//	interval  10     340–370 k    17 µs        65–86 µs
//	interval  100    0.71–0.86 M  111–115 µs   190–280 µs
//	always    10     17–40 k      190–260 µs   1.6–5.3 ms
//	always    100    0.14–0.26 M  330–370 µs   2.3–5.7 ms
//
// Encoding allocates nothing per event. Append in batches: each writer
// round costs a zstd frame (a few µs of entropy-table set-up, and poor
// compression below ~10 events) and, under always, an fsync. Scanning
// (BenchmarkScan: decompress, decode JSON with encoding/json, deliver)
// runs at 130–200 k events/s on one core.
package archive
