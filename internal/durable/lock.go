package durable

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// ErrLocked is the error (compared with errors.Is) of LockFile when
// another process holds the lock.
var ErrLocked = errors.New("locked")

// LockedError is LockFile's error when the lock is held: it names the
// lock file and the pid written into it ("unknown" when unreadable).
type LockedError struct {
	Path   string
	Holder string
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("lock file %s, held by pid %s", e.Path, e.Holder)
}

// Is makes errors.Is(err, ErrLocked) true.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// A Lock is a held lock file (LockFile).
type Lock struct{ f *os.File }

// lockedError reads the holder's pid from path.
func lockedError(path string) error {
	b, _ := os.ReadFile(path)
	holder := strings.TrimSpace(string(b))
	if holder == "" || len(holder) > 20 {
		holder = "unknown"
	}
	return &LockedError{Path: path, Holder: holder}
}
