// Package durable holds the file-storage helpers shared by the embedded
// store (engine/embedded) and the event archive (offline/archive), written
// once:
//
//   - [LockFile]: the exclusive lock of a directory's writer (flock on
//     Unix, released by the kernel when the process dies; an exclusively
//     created file elsewhere). The lock file holds the holder's pid, which
//     [LockedError] reports.
//   - [SyncDir]: fsync of a directory, so that files created, renamed or
//     removed in it survive a crash.
//   - [WriteFile]: write-then-rename: a temporary file in the same
//     directory, fsync, rename over the target, fsync of the directory; a
//     crash leaves the old content or the new one. Leftover temporary
//     files match [TempPattern].
//   - CRC framing: [NewFrame] and [SealFrame] build records framed as
//     length (uint32 LE), CRC-32C of the payload (uint32 LE), payload;
//     [ScanFrames] reads them back and stops at the first torn one.
//     [Checksum] is the CRC-32C (Castagnoli) both formats use.
//
// Errors are the operating system's, wrapped with the operation; callers
// add their own context.
package durable
