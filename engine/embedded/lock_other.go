//go:build !unix

package embedded

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/kairoshq/kairos/internal/fileperm"
)

// lockDir creates the lock file at path exclusively. Without flock, a
// crash leaves the file behind: remove it by hand once sure that no
// process uses the directory.
func lockDir(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDWR, fileperm.FileMode)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			holder, _ := os.ReadFile(path)
			return nil, fmt.Errorf("%w (lock file %s, held by pid %s)", ErrLocked, path, trimPID(holder))
		}
		return nil, fmt.Errorf("lock: %w", err)
	}
	fmt.Fprintf(f, "%d\n", os.Getpid())
	return f, nil
}

func unlockDir(f *os.File) {
	name := f.Name()
	f.Close()
	os.Remove(name)
}
