//go:build unix

package archive

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/kairoshq/kairos/internal/fileperm"
)

const lockName = "LOCK"

// lockDir takes the exclusive writer lock of dir (flock on dir/LOCK). The
// kernel releases it when the process dies, so a crash never leaves a stale
// lock behind.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, fileperm.FileMode)
	if err != nil {
		return nil, fmt.Errorf("archive: open lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrLocked, dir)
		}
		return nil, fmt.Errorf("archive: lock %s: %w", dir, err)
	}
	return f, nil
}

// unlockDir releases the lock taken by lockDir.
func unlockDir(f *os.File) error {
	return f.Close() // closing the descriptor releases the flock
}
