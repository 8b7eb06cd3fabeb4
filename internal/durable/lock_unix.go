//go:build unix

package durable

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/kairoshq/kairos/internal/fileperm"
)

// LockFile takes an exclusive, non-blocking flock on the lock file at path
// (created if needed) and writes this process's id into it. The kernel
// releases the lock when the process dies, so a crash leaves no stale
// lock. A held lock is a *LockedError.
func LockFile(path string) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, fileperm.FileMode)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, lockedError(path)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		fmt.Fprintf(f, "%d\n", os.Getpid())
	}
	return &Lock{f}, nil
}

// Unlock releases the lock (closing the descriptor releases the flock).
func (l *Lock) Unlock() error {
	return l.f.Close()
}
