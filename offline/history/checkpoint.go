package history

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/kairoshq/kairos/internal/durable"
)

// CheckpointFile is the name of the cold tier's commit, beside the
// archive's index.json.
const CheckpointFile = "history.json"

// checkpointFormat tags the file.
const checkpointFormat = "kairos-history"

// Checkpoint is the cold tier's commit: every stream message with an
// offset below Next is in the archive's records up to Seq. The archiver
// replaces it (write, fsync, rename, fsync directory) only after the
// records are fsynced; readers read the archive up to Seq and the stream
// from Next.
type Checkpoint struct {
	Format string `json:"format"`
	// Next is the first stream offset not archived.
	Next uint64 `json:"next"`
	// Seq is the archive's last record sequence number at the commit.
	Seq uint64 `json:"seq"`
	// Events counts the events archived from the stream, all holders.
	Events uint64 `json:"events"`
	// Erasures is the position in the store's erasure log of the last
	// request recorded as a tombstone of the archive (see
	// RequestErasure); later requests are pending.
	Erasures uint64 `json:"erasures"`
	// Holder is the archiver that wrote it, At when.
	Holder string    `json:"holder"`
	At     time.Time `json:"at"`
}

// ReadCheckpoint reads dir's checkpoint; ok is false when there is none
// (no archiver has committed yet).
func ReadCheckpoint(dir string) (cp Checkpoint, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, CheckpointFile))
	if errors.Is(err, fs.ErrNotExist) {
		return Checkpoint{}, false, nil
	}
	if err != nil {
		return Checkpoint{}, false, fmt.Errorf("history: read checkpoint: %w", err)
	}
	if err := json.Unmarshal(b, &cp); err != nil || cp.Format != checkpointFormat {
		return Checkpoint{}, false, fmt.Errorf("history: %s in %s is not a history checkpoint (%v)", CheckpointFile, dir, err)
	}
	return cp, true, nil
}

// writeCheckpoint replaces dir's checkpoint durably.
func writeCheckpoint(dir string, cp Checkpoint) error {
	cp.Format = checkpointFormat
	b, err := json.MarshalIndent(cp, "", "  ")
	if err != nil {
		return err
	}
	if err := durable.WriteFile(dir, CheckpointFile, append(b, '\n'), true); err != nil {
		return fmt.Errorf("history: write checkpoint: %w", err)
	}
	return nil
}
