package embedded

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/kairoshq/kairos/internal/defaults"
)

// SyncPolicy says when the write-ahead log is flushed to stable storage
// (fsync). Every acknowledged write has reached the operating system
// before the call returns, whatever the policy, so a crash of the process
// alone never loses it; the policy decides what a crash of the machine
// (power loss, kernel panic) may lose.
type SyncPolicy int

// Sync policies.
const (
	// SyncAlways fsyncs the log before a write returns (the default):
	// nothing acknowledged is lost even on power loss. Concurrent writers
	// share one fsync (group commit).
	SyncAlways SyncPolicy = iota + 1
	// SyncInterval fsyncs the log every Config.SyncEvery in the
	// background: a machine crash may lose the writes of the last
	// interval.
	SyncInterval
	// SyncNever leaves flushing to the operating system (and to
	// compaction and Close): for tests and throw-away data.
	SyncNever
)

// String returns the policy's name.
func (p SyncPolicy) String() string {
	switch p {
	case SyncAlways:
		return "always"
	case SyncInterval:
		return "interval"
	case SyncNever:
		return "never"
	}
	return fmt.Sprintf("SyncPolicy(%d)", int(p))
}

// Defaults of Config.
const (
	DefaultHistoryLimit = 500
	DefaultDedupWindow  = 7 * 24 * time.Hour
	DefaultSyncEvery    = 100 * time.Millisecond
	DefaultCompactBytes = 64 << 20
)

// Config configures a Store. Zero fields take their Defaults; Open calls
// Defaults and Validate.
type Config struct {
	// HistoryLimit is the number of events kept per visitor, the newest
	// (default 500).
	HistoryLimit int
	// DedupWindow is how long a committed event id is reported by Seen
	// (default 7 days). Marks are kept in 8 time buckets per window, so an
	// id is reported for at least DedupWindow and at most 9/8 of it.
	DedupWindow time.Duration
	// Sync is the fsync policy of the write-ahead log (default SyncAlways).
	Sync SyncPolicy
	// SyncEvery is the fsync interval of SyncInterval (default 100 ms).
	SyncEvery time.Duration
	// CompactBytes is the write-ahead log size that triggers a compaction
	// into a new snapshot in the background (default 64 MiB).
	CompactBytes int64
	// Logger receives recovery and compaction events; nil discards.
	Logger *slog.Logger
	// Now is the clock of the de-duplication window and of the expiry of
	// maps and logs (storage.Maps, storage.Logs) (nil: time.Now).
	Now func() time.Time
}

// Defaults returns a copy of c with every zero field set to its default.
func (c Config) Defaults() Config {
	defaults.Set(&c.HistoryLimit, DefaultHistoryLimit)
	defaults.Set(&c.DedupWindow, DefaultDedupWindow)
	defaults.Set(&c.Sync, SyncAlways)
	defaults.Set(&c.SyncEvery, DefaultSyncEvery)
	defaults.Set(&c.CompactBytes, DefaultCompactBytes)
	c.Logger = defaults.Logger(c.Logger)
	c.Now = defaults.Clock(c.Now)
	return c
}

// Validate reports every problem of c at once (after Defaults, zero
// fields are problems too).
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("embedded config: "+format, args...))
	}
	if c.HistoryLimit < 1 || c.HistoryLimit > 100_000 {
		bad("HistoryLimit %d: want 1..100000", c.HistoryLimit)
	}
	if c.DedupWindow < time.Second {
		bad("DedupWindow %v: want at least 1s", c.DedupWindow)
	}
	if c.Sync < SyncAlways || c.Sync > SyncNever {
		bad("Sync %v: want SyncAlways, SyncInterval or SyncNever", c.Sync)
	}
	if c.SyncEvery < time.Millisecond {
		bad("SyncEvery %v: want at least 1ms", c.SyncEvery)
	}
	if c.CompactBytes < 1<<10 {
		bad("CompactBytes %d: want at least 1024", c.CompactBytes)
	}
	return errors.Join(errs...)
}
