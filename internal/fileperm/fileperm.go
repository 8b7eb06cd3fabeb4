package fileperm

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// Modes of what Kairos creates.
const (
	// DirMode is the mode of the directories Kairos creates.
	DirMode fs.FileMode = 0o700
	// FileMode is the mode of the files Kairos creates.
	FileMode fs.FileMode = 0o600
)

// open are the permission bits that give the group or others access.
const open fs.FileMode = 0o077

// enforced reports whether permission bits mean anything on this system.
var enforced = runtime.GOOS != "windows"

// CheckPrivate returns an error when mode (of the file at path) lets the
// group or others read or write it; what names the content for the
// message ("the secret key"). The error names the file and the fix
// (chmod 600).
func CheckPrivate(path string, mode fs.FileMode, what string) error {
	if !enforced || mode.Perm()&open == 0 {
		return nil
	}
	return fmt.Errorf("%s has mode %v: others may read %s; run chmod 600 %s", path, mode.Perm(), what, path)
}

// PrivateDir creates dir (and missing parents) with DirMode, or, when it
// exists, removes its group and other permission bits. It does not touch
// what is inside. changed reports that an existing directory was
// tightened, so that the caller can say so.
func PrivateDir(dir string) (changed bool, err error) {
	if err := os.MkdirAll(dir, DirMode); err != nil {
		return false, err
	}
	if !enforced {
		return false, nil
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return false, err
	}
	if !fi.IsDir() {
		return false, fmt.Errorf("%s is not a directory", dir)
	}
	return tighten(dir, dir, fi.Mode())
}

// PrivateTree makes root and everything below it private: it removes the
// group and other permission bits of every directory and regular file
// (symbolic links are neither followed nor changed) and returns how many
// it changed. root must exist. An entry it cannot change is an error
// naming the entry and the command that fixes it.
func PrivateTree(root string) (changed int, err error) {
	if !enforced {
		return 0, nil
	}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && path != root {
				return nil // removed meanwhile
			}
			return err
		}
		if !d.IsDir() && !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		c, err := tighten(root, path, fi.Mode())
		if c {
			changed++
		}
		return err
	})
	return changed, err
}

// tighten removes the open bits of mode from path.
func tighten(root, path string, mode fs.FileMode) (bool, error) {
	perm := mode.Perm()
	if perm&open == 0 {
		return false, nil
	}
	if err := os.Chmod(path, perm&^open); err != nil {
		return false, fmt.Errorf("%s has mode %v and cannot be made private (%w): run chmod -R go-rwx %s as its owner", path, perm, err, root)
	}
	return true, nil
}
