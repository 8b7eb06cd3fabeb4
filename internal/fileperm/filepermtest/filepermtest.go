// Package filepermtest checks in tests that what Kairos wrote is private
// (package fileperm's modes), and leaves a tree as an older version of
// Kairos did (open to the group and others).
package filepermtest

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/kairoshq/kairos/internal/fileperm"
)

// Modes returns the mode of every entry under root (root included).
func Modes(tb testing.TB, root string) map[string]fs.FileMode {
	tb.Helper()
	out := map[string]fs.FileMode{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		out[p] = fi.Mode()
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// Check reports as an error of tb every directory under root (root
// included) whose permission bits are not fileperm.DirMode and every
// file whose bits are not fileperm.FileMode, and returns the modes of
// the entries it checked.
func Check(tb testing.TB, root string) map[string]fs.FileMode {
	tb.Helper()
	modes := Modes(tb, root)
	for p, m := range modes {
		want := fileperm.FileMode
		if m.IsDir() {
			want = fileperm.DirMode
		}
		if m.Perm() != want {
			tb.Errorf("%s: mode %v, want %v", p, m.Perm(), want)
		}
	}
	return modes
}

// Loosen sets what an older version left under root (root included):
// directories 0755, files 0644, but for the paths keep reports (nil:
// none).
func Loosen(tb testing.TB, root string, keep func(path string) bool) {
	tb.Helper()
	for p, m := range Modes(tb, root) {
		if keep != nil && keep(p) {
			continue
		}
		mode := fs.FileMode(0o644)
		if m.IsDir() {
			mode = 0o755
		}
		if err := os.Chmod(p, mode); err != nil {
			tb.Fatal(err)
		}
	}
}
