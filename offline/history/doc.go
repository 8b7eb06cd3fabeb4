// Package history is the cluster's event history: one history for every
// engine replica, in two tiers, so that replay and retrain read every event
// the cluster accepted wherever it was consumed, and no single disk is a
// point of loss. The design note is docs/history.md.
//
//   - Hot tier: a replicated log on the broker (signals/rabbitmq: the
//     stream queue <namespace>.history, bound to the events exchange, so
//     the broker writes every accepted message to it once, covered by the
//     publisher confirm). Stream is its port here: read by offset.
//   - Cold tier: the archive format of package offline/archive (hourly
//     zstd segments, tombstones, retention, compaction) in one directory,
//     written by one elected Archiver, with its Checkpoint (history.json)
//     beside index.json.
//
// # Archiver
//
// Every candidate replica runs an Archiver; a lease on the store port
// (storage.Maps: a conditional Txn with an expiry, on every backend)
// elects one. The holder opens the cold tier with archive.SyncAlways,
// follows the stream from Checkpoint.Next and, for each batch, appends its
// valid events (those the consumers accepted), which fsyncs them, then
// replaces the checkpoint (Next = last offset + 1, Seq = the archive's
// last record) durably — only while its lease is valid. It renews the
// lease every third of LeaseTTL; when it cannot, it stops before the TTL
// ends, closes the archive (its flock) and competes again. The next holder
// continues from the checkpoint: a batch appended but not committed by a
// dead holder is appended again, and readers drop the duplicates by event
// id (ReadStats.Duplicates).
//
// Erasure: RequestErasure appends the SHA-256 of the visitor id and the
// time of the request to a log in the store. The holder reads the log
// before it archives each batch and records each request as a tombstone
// of the cold tier (archive.Archive.EraseHashRequested) at its place in the
// stream: after the events of the messages published up to the request's
// time, before those published after it — so the tombstone's seq covers
// exactly the events published before the erasure, even those the holder
// copies after the request, and its at is the request's time. On an idle
// stream it appends a fence (Fencer) at its lease renewals to reach that
// place. It commits the log position in the checkpoint with the batch,
// and compacts the segments at most every CompactEvery.
//
// # Reader
//
// A Reader pins the checkpoint when it is made and reads the cold tier up
// to Checkpoint.Seq, then the stream from Checkpoint.Next to the end of
// the stream at the time of the scan (a fence), de-duplicated by event id
// over a window (DedupWindow), with the tombstones of the cold tier
// applied to the stream's tail by publish time (archive.Erasures), and —
// given the store (ReaderConfig.Erasures) — the erasure requests the
// archiver has not recorded yet applied to both tiers. Its
// ScanRecords makes it an offline.RecordSource: `kairos retrain` and
// `kairos replay` read it with --history-stream. Without a stream it reads
// the directory as a plain archive.
//
// Record sequence numbers: cold records keep the archive's; a tail event
// gets Checkpoint.Seq + 1 + (offset − Checkpoint.Next). They increase
// through both tiers, so a retrain's cut (Query.UntilSeq) holds for one
// Reader; a tail event's number changes once it is archived (records
// group several messages), so a snapshot's ArchiveSeq taken from the tail
// is not comparable with a later Reader's numbers.
package history
