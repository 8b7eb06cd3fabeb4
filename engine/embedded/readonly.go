package embedded

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"time"

	"github.com/kairoshq/kairos/engine"
)

// ErrReadOnly is returned by every write to a Store opened with
// OpenReadOnly. It wraps engine.ErrUnavailable.
var ErrReadOnly = fmt.Errorf("embedded: store opened read-only: %w", engine.ErrUnavailable)

// readOnlyAttempts bounds how often OpenReadOnly starts over when the
// running store's compaction replaces the files while it reads them.
const readOnlyAttempts = 5

// OpenReadOnly loads the store persisted in dir without taking its lock
// and without changing anything on disk, for tools that read the state
// while `kairos serve` runs on it (kairos eval experiment). The Store sees
// every write the running one made before the call, up to its last
// complete log record (a record being written is left out, not repaired);
// it does not follow later writes. Every write returns ErrReadOnly, and so
// does PromoSecret when no secret was created yet. Close only marks it
// closed.
//
// A compaction of the running store may replace the snapshot and remove
// logs while OpenReadOnly reads them; it then starts over (up to 5 times).
func OpenReadOnly(dir string, cfg Config) (*Store, error) {
	cfg = cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("embedded: open read-only: %w: %w", engine.ErrInvalid, err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("embedded: open read-only: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("embedded: open read-only: %s is not a directory", dir)
	}
	s := newStore(dir, cfg)
	s.readOnly = true
	if err := checkFormat(dir, false); err != nil {
		return nil, err
	}
	start := time.Now()
	var l loaded
	for attempt := 1; ; attempt++ {
		if l, err = load(dir, cfg); err == nil {
			break
		}
		if attempt == readOnlyAttempts || !(errors.Is(err, fs.ErrNotExist) || errors.Is(err, errMissingLog)) {
			return nil, fmt.Errorf("embedded: open %s read-only: %w", dir, err)
		}
		// The writer compacted meanwhile: its new snapshot covers the
		// logs it removed. Read again.
		time.Sleep(time.Duration(attempt) * 20 * time.Millisecond)
	}
	s.st = l.st
	s.st.seen.expire(cfg.Now().UnixNano())
	s.log.LogAttrs(context.Background(), slog.LevelInfo, "store opened read-only",
		slog.String("dir", dir), slog.Int("visitors", len(s.st.visitors)), slog.Int("collections", len(s.st.colls)),
		slog.Bool("tail_in_progress", l.torn != ""), slog.Duration("took", time.Since(start)))
	return s, nil
}
