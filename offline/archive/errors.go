package archive

import "errors"

// Sentinel errors. Compare with errors.Is; the returned errors wrap them
// with the operation and the file concerned.
var (
	// ErrInvalidOptions: Options.Validate found a problem.
	ErrInvalidOptions = errors.New("archive: invalid options")
	// ErrInvalidEvent: an event cannot be archived (it does not encode as
	// JSON, e.g. a NaN value, or it is larger than Options.MaxEventBytes).
	// Nothing of the batch was written.
	ErrInvalidEvent = errors.New("archive: invalid event")
	// ErrClosed: the archive was closed.
	ErrClosed = errors.New("archive: closed")
	// ErrLocked: another process (or Archive) holds the directory's writer
	// lock.
	ErrLocked = errors.New("archive: directory locked by another writer")
	// ErrCorrupt: a sealed segment, the index or the tombstone file is
	// damaged in a way that is not a torn tail left by a crash.
	ErrCorrupt = errors.New("archive: corrupt")
	// ErrFailed: an earlier write or fsync failed; the archive refuses
	// further appends because it can no longer say what is durable. Close
	// and reopen it (Open truncates whatever is torn).
	ErrFailed = errors.New("archive: writer failed")
)
