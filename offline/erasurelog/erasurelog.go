// Package erasurelog brings every erasure made on any replica into the
// local archive of every replica.
//
// Without the cluster's history (--history-stream), each replica archives
// the events of the partitions it consumed, so a visitor's events are
// spread over several local archives. An erasure (DELETE
// /v1/visitors/{id}) is therefore logged in the shared store, in the
// erasure log of package offline/history (key "history:erasures", one
// entry per erased id: the hex SHA-256 of the id and the request's
// time; history.LogErasure),
// and every replica follows that log from the position it remembers and
// records each entry as a tombstone in its own archive
// (archive.Archive.EraseHashAt).
//
// Order: an entry holds the time the erasure was requested
// (history.ParseErasure). A replica records the
// tombstone with that time, so it erases the visitor's events it has
// archived so far and those it archives later whose ts is not after the
// erasure (events still on their way, e.g. in a partition queue of a
// replica that was down); the visitor's later events are kept, except
// those archived between the erasure and the moment the follower records
// it (normally within Config.Poll; a replica that starts catches up
// before it consumes) and those sent after it with a ts before it (the
// archive does not keep publish times: ts stands for them).
//
// Idempotency: a tombstone already recorded at or after an entry's time
// covers it, and EraseHashAt then records nothing: the replica that made
// the erasure (Eraser records it at once), or a follower that crashed
// after recording and before saving its position, write no second one.
//
// Durability: the position (the last sequence number applied) is saved in
// <archive>/erasure-log.json after the tombstones are fsynced. A replica
// that was down catches up when it starts again, from that position, as
// long as the log still holds the entries: it keeps them
// history.ErasureRetention after the last erasure, at most
// history.ErasureKeep; a follower that finds its position gone from the
// log, with newer entries, warns that it may have missed erasures.
package erasurelog

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kairoshq/kairos/engine/storage"
	"github.com/kairoshq/kairos/internal/defaults"
	"github.com/kairoshq/kairos/internal/durable"
	"github.com/kairoshq/kairos/offline/archive"
	"github.com/kairoshq/kairos/offline/history"
)

// PositionFile is the name of the follower's position file in the
// archive directory.
const PositionFile = "erasure-log.json"

// DefaultPoll is how often a follower reads the log.
const DefaultPoll = time.Second

// batch is how many entries a follower reads at once.
const batch = 1000

// Eraser logs each erasure in the shared store's erasure log and records
// it at once in this replica's archive (nil Archive: only logs), with the
// log entry's time, so that this replica's follower finds it already
// recorded. It implements engine.Eraser.
type Eraser struct {
	// Logs is the shared store; Key the log's key (default
	// history.DefaultErasureLog).
	Logs storage.Logs
	Key  string
	// Archive is this replica's local archive, or nil.
	Archive *archive.Archive
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Erase logs the erasure of visitor and records its tombstone locally.
func (e Eraser) Erase(ctx context.Context, visitor string) error {
	now := defaults.Clock(e.Now)()
	if _, err := history.LogErasure(ctx, e.Logs, e.Key, visitor, now); err != nil {
		return fmt.Errorf("erasurelog: %w", err)
	}
	if e.Archive == nil {
		return nil
	}
	h := sha256.Sum256([]byte(visitor))
	if _, err := e.Archive.EraseHashAt(ctx, hex.EncodeToString(h[:]), now); err != nil {
		return fmt.Errorf("erasurelog: %w", err)
	}
	return nil
}

// Config configures a Follower.
type Config struct {
	// Logs is the shared store; Key the log's key (default
	// history.DefaultErasureLog).
	Logs storage.Logs
	Key  string
	// Archive is this replica's local archive (open for writing).
	Archive *archive.Archive
	// Poll is how often Run reads the log (default DefaultPoll).
	Poll time.Duration
	// Logger; nil discards.
	Logger *slog.Logger
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Stats are a follower's counters.
type Stats struct {
	// Position is the sequence number of the last entry applied.
	Position uint64
	// Recorded counts the tombstones recorded since the follower was made;
	// Covered the entries an earlier tombstone already covered.
	Recorded, Covered uint64
}

// Follower records the erasure log's entries in a local archive.
type Follower struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex // one CatchUp at a time
	checked bool       // the position's presence in the log was checked

	pos               atomic.Uint64
	recorded, covered atomic.Uint64
}

// position is the content of PositionFile.
type position struct {
	Key   string    `json:"key"`
	After uint64    `json:"after"`
	At    time.Time `json:"at"`
}

// NewFollower checks cfg and loads the follower's position from the
// archive directory (none: the whole log is applied).
func NewFollower(cfg Config) (*Follower, error) {
	if cfg.Logs == nil || cfg.Archive == nil {
		return nil, errors.New("erasurelog: a follower needs Logs and Archive")
	}
	defaults.Set(&cfg.Key, history.DefaultErasureLog)
	defaults.Set(&cfg.Poll, DefaultPoll)
	cfg.Now = defaults.Clock(cfg.Now)
	cfg.Logger = defaults.Logger(cfg.Logger)
	f := &Follower{cfg: cfg, log: cfg.Logger.With(slog.String("component", "erasure-log"))}
	b, err := os.ReadFile(filepath.Join(cfg.Archive.Dir(), PositionFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("erasurelog: read position: %w", err)
	default:
		var p position
		if err := json.Unmarshal(b, &p); err != nil {
			return nil, fmt.Errorf("erasurelog: %s: %w", filepath.Join(cfg.Archive.Dir(), PositionFile), err)
		}
		if p.Key == cfg.Key {
			f.pos.Store(p.After)
		}
	}
	return f, nil
}

// Stats returns the follower's counters.
func (f *Follower) Stats() Stats {
	return Stats{Position: f.pos.Load(), Recorded: f.recorded.Load(), Covered: f.covered.Load()}
}

// CatchUp records every entry logged after the position, saving the
// position after each batch; it returns the number of entries applied.
func (f *Follower) CatchUp(ctx context.Context) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.checked {
		if err := f.checkPosition(ctx); err != nil {
			return 0, err
		}
		f.checked = true
	}
	n := 0
	for {
		entries, err := f.cfg.Logs.Entries(ctx, f.cfg.Key, f.pos.Load(), batch)
		if err != nil {
			return n, fmt.Errorf("erasurelog: read the log: %w", err)
		}
		if len(entries) == 0 {
			return n, nil
		}
		for _, e := range entries {
			hash, at, err := history.ParseErasure(e)
			if err != nil {
				return n, fmt.Errorf("erasurelog: %w", err)
			}
			if at.IsZero() {
				at = f.cfg.Now() // an entry of an older log: at the latest now
			}
			done, err := f.cfg.Archive.EraseHashAt(ctx, hash, at)
			if err != nil {
				return n, fmt.Errorf("erasurelog: entry %d: %w", e.Seq, err)
			}
			if done {
				f.recorded.Add(1)
			} else {
				f.covered.Add(1)
			}
		}
		last := entries[len(entries)-1].Seq
		if err := f.save(last); err != nil {
			return n, err
		}
		f.pos.Store(last)
		n += len(entries)
		f.log.LogAttrs(ctx, slog.LevelInfo, "erasures of the cluster recorded in the archive", slog.Int("entries", len(entries)), slog.Uint64("position", last))
	}
}

// checkPosition warns when the entry at the position has left the log
// while newer entries exist: entries in between may have expired before
// this replica read them.
func (f *Follower) checkPosition(ctx context.Context) error {
	pos := f.pos.Load()
	if pos == 0 {
		return nil
	}
	at, err := f.cfg.Logs.Entries(ctx, f.cfg.Key, pos-1, 1)
	if err != nil {
		return fmt.Errorf("erasurelog: read the log: %w", err)
	}
	if len(at) == 1 && at[0].Seq == pos {
		return nil
	}
	newer, err := f.cfg.Logs.Entries(ctx, f.cfg.Key, pos, 1)
	if err != nil {
		return fmt.Errorf("erasurelog: read the log: %w", err)
	}
	if len(newer) > 0 {
		f.log.LogAttrs(ctx, slog.LevelError, "the erasure log no longer holds this replica's position: erasures made while it was away may have expired unread, and their events stay in its archive",
			slog.Uint64("position", pos), slog.Uint64("oldest_newer", newer[0].Seq), slog.Duration("log_retention", history.ErasureRetention))
	}
	return nil
}

// save writes the position file durably.
func (f *Follower) save(after uint64) error {
	b, err := json.Marshal(position{Key: f.cfg.Key, After: after, At: f.cfg.Now().UTC()})
	if err != nil {
		return err
	}
	if err := durable.WriteFile(f.cfg.Archive.Dir(), PositionFile, append(b, '\n'), true); err != nil {
		return fmt.Errorf("erasurelog: save position: %w", err)
	}
	return nil
}

// Run catches up every Poll until ctx ends, then returns nil; errors
// (the store unreachable) are logged and retried at the next poll.
func (f *Follower) Run(ctx context.Context) error {
	tick := time.NewTicker(f.cfg.Poll)
	defer tick.Stop()
	for {
		if _, err := f.CatchUp(ctx); err != nil && ctx.Err() == nil {
			f.log.LogAttrs(ctx, slog.LevelWarn, "erasures of the cluster not recorded yet", slog.String("error", err.Error()))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
