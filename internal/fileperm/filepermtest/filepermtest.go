// Package filepermtest checks in tests that what Kairos wrote is private
// (package fileperm's modes).
package filepermtest

import (
	"io/fs"
	"path/filepath"
	"testing"

	"github.com/kairoshq/kairos/internal/fileperm"
)

// Check reports as an error of tb every directory under root (root
// included) whose permission bits are not fileperm.DirMode and every
// file's that are not fileperm.FileMode, and returns how many entries it
// checked.
func Check(tb testing.TB, root string) int {
	tb.Helper()
	n := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		want := fileperm.FileMode
		if d.IsDir() {
			want = fileperm.DirMode
		}
		if fi.Mode().Perm() != want {
			tb.Errorf("%s: mode %v, want %v", p, fi.Mode().Perm(), want)
		}
		n++
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return n
}
