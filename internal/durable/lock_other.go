//go:build !unix

package durable

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/kairoshq/kairos/internal/fileperm"
)

// LockFile creates the lock file at path exclusively and writes this
// process's id into it. Without flock, a crash leaves the file behind:
// remove it by hand once sure that no process uses the directory. A held
// lock is a *LockedError.
func LockFile(path string) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDWR, fileperm.FileMode)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, lockedError(path)
		}
		return nil, fmt.Errorf("lock: %w", err)
	}
	fmt.Fprintf(f, "%d\n", os.Getpid())
	return &Lock{f}, nil
}

// Unlock releases the lock: it closes and removes the lock file.
func (l *Lock) Unlock() error {
	name := l.f.Name()
	err := l.f.Close()
	if rerr := os.Remove(name); err == nil {
		err = rerr
	}
	return err
}
