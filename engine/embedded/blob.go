package embedded

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/internal/durable"
	"github.com/kairoshq/kairos/internal/fileperm"
)

// blobDir is the directory of the blobs inside the data directory.
const blobDir = "blobs"

// blobFile returns the file name of a blob: its name, path-escaped (a '/'
// becomes %2F) and with a leading '.' escaped, so that any name maps to
// one plain file of the blob directory.
func blobFile(name string) string {
	f := url.PathEscape(name)
	if strings.HasPrefix(f, ".") {
		f = "%2E" + f[1:]
	}
	return f
}

func validBlobName(name string) error {
	if name == "" || len(name) > 200 {
		return fmt.Errorf("%w: blob name %q: want 1..200 bytes", engine.ErrInvalid, name)
	}
	return nil
}

// PutBlob stores data under name, replacing any previous value. Blobs
// are files of the blobs directory, written to a temporary file, fsynced
// and renamed over the previous one: a crash leaves the old value or the
// new one.
func (s *Store) PutBlob(ctx context.Context, name string, data []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("embedded: put blob: %w", err)
	}
	if err := validBlobName(name); err != nil {
		return fmt.Errorf("embedded: put blob: %w", err)
	}
	s.mu.RLock()
	uerr := s.usableLocked()
	s.mu.RUnlock()
	if uerr != nil {
		return uerr
	}
	dir := filepath.Join(s.dir, blobDir)
	if err := os.MkdirAll(dir, fileperm.DirMode); err != nil {
		return fmt.Errorf("embedded: put blob: %w: %w", engine.ErrUnavailable, err)
	}
	if err := durable.WriteFile(dir, blobFile(name), data, s.cfg.Sync != SyncNever); err != nil {
		return fmt.Errorf("embedded: put blob %q: %w: %w", name, engine.ErrUnavailable, err)
	}
	return nil
}

// Blob returns the data stored under name, or ErrNotFound.
func (s *Store) Blob(ctx context.Context, name string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("embedded: blob: %w", err)
	}
	if err := validBlobName(name); err != nil {
		return nil, fmt.Errorf("embedded: blob: %w", err)
	}
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return nil, errClosed
	}
	b, err := os.ReadFile(filepath.Join(s.dir, blobDir, blobFile(name)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("embedded: blob %q: %w", name, engine.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("embedded: blob %q: %w", name, err)
	}
	return b, nil
}
