package durable

import (
	"os"
	"path/filepath"
)

// TempPattern is the pattern (filepath.Glob) of WriteFile's temporary
// files: a crash may leave one behind, which the owner of the directory
// removes when it opens it.
const TempPattern = ".tmp-*"

// SyncDir fsyncs a directory, so that the creation, removal or renaming of
// its files is durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// WriteFile replaces dir/name with data through a temporary file of dir
// and a rename, so that a crash leaves the old content or the new one.
// With sync, the file is fsynced before the rename and the directory
// after it. The temporary file is removed on error.
func WriteFile(dir, name string, data []byte, sync bool) (err error) {
	f, err := os.CreateTemp(dir, TempPattern)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if sync {
		if err := f.Sync(); err != nil {
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), filepath.Join(dir, name)); err != nil {
		return err
	}
	if sync {
		return SyncDir(dir)
	}
	return nil
}
