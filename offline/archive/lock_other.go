//go:build !unix

package archive

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/kairoshq/kairos/internal/fileperm"
)

const lockName = "LOCK"

// lockDir on platforms without flock creates dir/LOCK exclusively; a crash
// leaves it behind and it must then be removed by hand.
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, lockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, fileperm.FileMode)
	if err != nil {
		if os.IsExist(err) {
			return nil, fmt.Errorf("%w: %s (remove %s if no writer runs)", ErrLocked, dir, path)
		}
		return nil, fmt.Errorf("archive: lock %s: %w", dir, err)
	}
	return f, nil
}

// unlockDir releases the lock taken by lockDir.
func unlockDir(f *os.File) error {
	name := f.Name()
	err := f.Close()
	if rerr := os.Remove(name); err == nil {
		err = rerr
	}
	return err
}
