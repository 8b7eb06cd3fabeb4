package embedded

import (
	"errors"
	"fmt"

	"github.com/kairoshq/kairos/internal/durable"
)

// lockDir takes the data directory's lock file at path (durable.LockFile):
// ErrLocked, naming the holder's pid, when another process holds it.
func lockDir(path string) (*durable.Lock, error) {
	l, err := durable.LockFile(path)
	if le := (*durable.LockedError)(nil); errors.As(err, &le) {
		return nil, fmt.Errorf("%w (%s)", ErrLocked, le)
	}
	return l, err
}
