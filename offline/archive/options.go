package archive

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// SyncPolicy says when the writer calls fsync on the active segment. Under
// every policy Append returns only after its events were handed to the
// operating system with write(2), so a killed process (kill -9, panic, OOM)
// never loses an acknowledged event; the policy decides what a machine crash
// or power loss may lose.
type SyncPolicy string

// The sync policies.
const (
	// SyncAlways fsyncs before Append returns. Concurrent appends share one
	// write and one fsync (group commit), so the cost is one fsync per
	// writer round, not per event. A machine crash loses nothing that was
	// acknowledged.
	SyncAlways SyncPolicy = "always"
	// SyncInterval fsyncs every Options.SyncInterval when something was
	// written. A machine crash may lose up to that interval of acknowledged
	// events. The default.
	SyncInterval SyncPolicy = "interval"
	// SyncNone never fsyncs a segment until it is sealed; the kernel writes
	// it back on its own schedule (about 30 s on Linux).
	SyncNone SyncPolicy = "none"
)

// ParseSyncPolicy parses "always", "interval" or "none".
func ParseSyncPolicy(s string) (SyncPolicy, error) {
	switch p := SyncPolicy(s); p {
	case SyncAlways, SyncInterval, SyncNone:
		return p, nil
	}
	return "", fmt.Errorf("%w: sync policy %q is not one of always, interval, none", ErrInvalidOptions, s)
}

// Options configures an Archive. The zero value of every field except Dir
// means "use the default"; call Defaults to see them.
type Options struct {
	// Dir is the archive directory; created if missing. Required.
	Dir string
	// Sync is the fsync policy. Default SyncInterval.
	Sync SyncPolicy
	// SyncInterval is the fsync period of SyncInterval, and the period at
	// which an idle writer checks for the hour roll-over. Default 100 ms.
	SyncInterval time.Duration
	// Retention is how long sealed segments are kept, measured from the end
	// of their hour. 0 keeps events forever (the default).
	Retention time.Duration
	// Level is the zstd compression level, 1 (fastest) to 4 (best), as in
	// klauspost/compress's EncoderLevel. Default 1, which compresses
	// typical events about 5x and keeps the writer far above ingest speed.
	Level int
	// MaxRecordBytes bounds the uncompressed NDJSON of one record (zstd
	// frame). Larger frames compress better; readers need this much memory.
	// Default 1 MiB. A single event larger than this gets a record of its own.
	MaxRecordBytes int
	// MaxEventBytes bounds the JSON encoding of one event; Append rejects a
	// batch containing a larger event. Default 256 KiB.
	MaxEventBytes int
	// QueueLength is the number of Append calls that may wait for the writer
	// before further calls block (back-pressure, never loss). Default 1024.
	QueueLength int
	// Now is the clock; nil means time.Now. Tests inject a fake clock to
	// roll hours over without waiting.
	Now func() time.Time
	// Logger receives operational logs; nil discards them.
	Logger *slog.Logger
}

// Defaults returns o with every zero field set to its default.
func (o Options) Defaults() Options {
	if o.Sync == "" {
		o.Sync = SyncInterval
	}
	if o.SyncInterval == 0 {
		o.SyncInterval = 100 * time.Millisecond
	}
	if o.Level == 0 {
		o.Level = 1
	}
	if o.MaxRecordBytes == 0 {
		o.MaxRecordBytes = 1 << 20
	}
	if o.MaxEventBytes == 0 {
		o.MaxEventBytes = 256 << 10
	}
	if o.QueueLength == 0 {
		o.QueueLength = 1024
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// maxRecordLimit is the largest record a reader accepts (compressed or not);
// it protects readers from absurd lengths in a damaged header.
const maxRecordLimit = 64 << 20

// Validate reports every problem of o at once, wrapped in ErrInvalidOptions.
// Call it on the result of Defaults.
func (o Options) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format, args...))
	}
	if o.Dir == "" {
		bad("Dir is required")
	}
	if _, err := ParseSyncPolicy(string(o.Sync)); err != nil {
		bad("Sync %q is not one of always, interval, none", o.Sync)
	}
	if o.SyncInterval <= 0 {
		bad("SyncInterval %v must be positive", o.SyncInterval)
	}
	if o.Retention < 0 {
		bad("Retention %v must be 0 (forever) or positive", o.Retention)
	} else if o.Retention > 0 && o.Retention < time.Hour {
		bad("Retention %v must be at least 1h (segments are hourly)", o.Retention)
	}
	if o.Level < 1 || o.Level > 4 {
		bad("Level %d must be in 1..4", o.Level)
	}
	if o.MaxRecordBytes < 4<<10 || o.MaxRecordBytes > maxRecordLimit/2 {
		bad("MaxRecordBytes %d must be in [4 KiB, 32 MiB]", o.MaxRecordBytes)
	}
	if o.MaxEventBytes < 1<<10 || o.MaxEventBytes > maxRecordLimit/2 {
		bad("MaxEventBytes %d must be in [1 KiB, 32 MiB]", o.MaxEventBytes)
	}
	if o.QueueLength < 1 {
		bad("QueueLength %d must be at least 1", o.QueueLength)
	}
	if o.Now == nil {
		bad("Now is nil (call Defaults first)")
	}
	if o.Logger == nil {
		bad("Logger is nil (call Defaults first)")
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalidOptions, errors.Join(errs...))
}
