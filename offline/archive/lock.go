package archive

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/kairoshq/kairos/internal/durable"
)

const lockName = "LOCK"

// lockDir takes the exclusive writer lock of dir (dir/LOCK,
// durable.LockFile): ErrLocked when another writer holds it.
func lockDir(dir string) (*durable.Lock, error) {
	l, err := durable.LockFile(filepath.Join(dir, lockName))
	if errors.Is(err, durable.ErrLocked) {
		return nil, fmt.Errorf("%w: %s (%w)", ErrLocked, dir, err)
	}
	if err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	return l, nil
}
