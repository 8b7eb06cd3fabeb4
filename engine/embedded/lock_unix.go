//go:build unix

package embedded

import (
	"errors"
	"fmt"
	"os"

	"github.com/kairoshq/kairos/internal/fileperm"
	"syscall"
)

// lockDir takes an exclusive, non-blocking flock on the lock file at path
// (created if needed) and writes this process's id into it. The kernel
// releases the lock when the process dies, so a crash leaves no stale
// lock.
func lockDir(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, fileperm.FileMode)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			holder, _ := os.ReadFile(path)
			return nil, fmt.Errorf("%w (lock file %s, held by pid %s)", ErrLocked, path, trimPID(holder))
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		fmt.Fprintf(f, "%d\n", os.Getpid())
	}
	return f, nil
}

func unlockDir(f *os.File) {
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	f.Close()
}
