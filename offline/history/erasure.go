package history

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/kairoshq/kairos/engine/storage"
	"github.com/kairoshq/kairos/internal/defaults"
)

// erasureKeep and erasureTTL bound the erasure log: an archiver applies
// requests within seconds; a week covers a long outage of every replica.
const (
	erasureKeep = 1_000_000
	erasureTTL  = 7 * 24 * time.Hour
)

// erasureEntry is an entry of the erasure log: the hex SHA-256 of the
// visitor id and the time of the request. Entries of older versions are
// the bare hex digest (no time).
type erasureEntry struct {
	VisitorSHA256 string    `json:"visitor_sha256"`
	At            time.Time `json:"at"`
}

// erasure is an erasure request read from the log.
type erasure struct {
	seq  uint64    // position in the log
	hash string    // hex SHA-256 of the visitor id
	key  [32]byte  // the same, decoded
	at   time.Time // when it was requested; zero for an entry without time
}

// RequestErasure logs an erasure of visitor, requested now, for the
// archiver (whichever replica holds the lease) to record in the cold tier
// as a tombstone, and for readers to apply until it has. The log keeps
// the SHA-256 of the id, as the tombstones do, and the request's time:
// the visitor's events published up to it (to the second of the stream's
// publish times) are erased, those published after it are kept.
func RequestErasure(ctx context.Context, logs storage.Logs, key, visitor string) error {
	_, err := LogErasure(ctx, logs, key, visitor, time.Now())
	return err
}

// LogErasure is RequestErasure requested at now, for the archiver and for
// every replica following the log into its local archive (package
// offline/erasurelog); it returns the entry's sequence number. The
// entry holds the request's time (ParseErasure), and the sequence number
// is at least now in Unix milliseconds, so that it never goes back, even
// after the log expired.
func LogErasure(ctx context.Context, logs storage.Logs, key, visitor string, now time.Time) (uint64, error) {
	defaults.Set(&key, DefaultErasureLog)
	h := sha256.Sum256([]byte(visitor))
	b, err := json.Marshal(erasureEntry{VisitorSHA256: hex.EncodeToString(h[:]), At: now.UTC()})
	if err != nil {
		return 0, fmt.Errorf("history: encode erasure request: %w", err)
	}
	seq, err := logs.Append(ctx, key, uint64(max(now.UnixMilli(), 1)), b, erasureKeep, erasureTTL)
	if err != nil {
		return 0, fmt.Errorf("history: log erasure request: %w", err)
	}
	return seq, nil
}

// ErasureRetention is how long the erasure log keeps its entries after the
// last erasure, and ErasureKeep how many it keeps at most: a follower
// down for longer may miss erasures.
const (
	ErasureRetention = erasureTTL
	ErasureKeep      = erasureKeep
)

// ParseErasure decodes an entry of the erasure log: the hex SHA-256 of
// the erased id and when the erasure was requested (zero when unknown:
// an entry of a release that logged the bare digest with a counter).
func ParseErasure(e storage.LogEntry) (visitorSHA256 string, at time.Time, err error) {
	er, err := parseErasure(e)
	return er.hash, er.at, err
}

// minTimeSeq (2020-01-01 in Unix ms) separates the sequence numbers that
// are request times (bare-digest entries of LogErasure's first form) from
// the counters of older logs.
const minTimeSeq = 1_577_836_800_000

// parseErasure decodes a log entry (JSON; or a bare hex digest, whose
// time is its sequence number when that is a time in ms, else unknown).
func parseErasure(e storage.LogEntry) (erasure, error) {
	var ee erasureEntry
	if len(e.Data) > 0 && e.Data[0] == '{' {
		if err := json.Unmarshal(e.Data, &ee); err != nil {
			return erasure{}, fmt.Errorf("history: erasure request %d: %w", e.Seq, err)
		}
	} else {
		ee.VisitorSHA256 = string(e.Data)
		if e.Seq >= minTimeSeq && e.Seq <= math.MaxInt64 {
			ee.At = time.UnixMilli(int64(e.Seq)).UTC()
		}
	}
	k, err := hex.DecodeString(ee.VisitorSHA256)
	if err != nil || len(k) != sha256.Size {
		return erasure{}, fmt.Errorf("history: erasure request %d: %q is not a hex SHA-256", e.Seq, ee.VisitorSHA256)
	}
	return erasure{seq: e.Seq, hash: ee.VisitorSHA256, key: [32]byte(k), at: ee.At}, nil
}

// readErasures returns the erasure requests of the log key after log
// position after, in log order.
func readErasures(ctx context.Context, logs storage.Logs, key string, after uint64) ([]erasure, error) {
	var out []erasure
	for {
		entries, err := logs.Entries(ctx, key, after, 1000)
		if err != nil {
			return nil, fmt.Errorf("history: read the erasure log %s: %w", key, err)
		}
		for _, e := range entries {
			er, err := parseErasure(e)
			if err != nil {
				return nil, err
			}
			out = append(out, er)
			after = e.Seq
		}
		if len(entries) < 1000 {
			return out, nil
		}
	}
}
