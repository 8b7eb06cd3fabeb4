package fileperm

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func mode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func skipWithoutModes(t *testing.T) {
	t.Helper()
	if !enforced {
		t.Skip("permission bits do not apply on this system")
	}
}

func TestCheckPrivate(t *testing.T) {
	skipWithoutModes(t)
	for _, tt := range []struct {
		mode fs.FileMode
		ok   bool
	}{{0o600, true}, {0o400, true}, {0o700, true}, {0o640, false}, {0o604, false}, {0o644, false}, {0o620, false}} {
		err := CheckPrivate("/d/keys.json", tt.mode, "the secret key")
		if (err == nil) != tt.ok {
			t.Errorf("mode %v: %v, want ok=%v", tt.mode, err, tt.ok)
		}
		if err != nil && (!strings.Contains(err.Error(), "chmod 600 /d/keys.json") || !strings.Contains(err.Error(), "the secret key")) {
			t.Errorf("mode %v: %q should name the content and the fix", tt.mode, err)
		}
	}
}

func TestPrivateDir(t *testing.T) {
	skipWithoutModes(t)
	base := t.TempDir()
	dir := filepath.Join(base, "a", "b")
	changed, err := PrivateDir(dir)
	if err != nil || changed {
		t.Fatalf("new dir: changed=%v err=%v", changed, err)
	}
	if m := mode(t, dir); m != DirMode {
		t.Errorf("new dir mode %v, want %v", m, DirMode)
	}
	if m := mode(t, filepath.Join(base, "a")); m != DirMode {
		t.Errorf("new parent mode %v, want %v", m, DirMode)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	inside := filepath.Join(dir, "f")
	if err := os.WriteFile(inside, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if changed, err := PrivateDir(dir); err != nil || !changed {
		t.Fatalf("existing 0755 dir: changed=%v err=%v", changed, err)
	}
	if m := mode(t, dir); m != 0o700 {
		t.Errorf("tightened dir mode %v, want 0700", m)
	}
	if m := mode(t, inside); m != 0o644 {
		t.Errorf("PrivateDir changed a file inside (%v)", m)
	}
	if _, err := PrivateDir(inside); err == nil {
		t.Error("PrivateDir of a file succeeded")
	}
}

func TestPrivateTree(t *testing.T) {
	skipWithoutModes(t)
	root := filepath.Join(t.TempDir(), "archive")
	sub := filepath.Join(root, "segments")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(root, 0o755)
	files := map[string]fs.FileMode{
		filepath.Join(root, "index.json"):            0o644,
		filepath.Join(root, "LOCK"):                  0o600,
		filepath.Join(sub, "20261123T14.ndjson.zst"): 0o664,
		filepath.Join(sub, "20261123T15.ndjson.zst"): 0o400,
	}
	for p, m := range files {
		if err := os.WriteFile(p, nil, m); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, m)
	}
	outside := filepath.Join(t.TempDir(), "outside")
	if err := os.WriteFile(outside, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(outside, 0o644)
	if err := os.Symlink(outside, filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	n, err := PrivateTree(root)
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 { // root, segments, index.json, the 0664 segment
		t.Errorf("changed %d entries, want 4", n)
	}
	want := map[string]fs.FileMode{root: 0o700, sub: 0o700}
	for p, m := range files {
		want[p] = m &^ 0o077
	}
	for p, m := range want {
		if got := mode(t, p); got != m {
			t.Errorf("%s: mode %v, want %v", p, got, m)
		}
	}
	if m := mode(t, outside); m != 0o644 {
		t.Errorf("a symbolic link's target was changed to %v", m)
	}
	if n, err := PrivateTree(root); err != nil || n != 0 {
		t.Errorf("second run: changed %d, %v", n, err)
	}
	if _, err := PrivateTree(filepath.Join(root, "missing")); err == nil {
		t.Error("PrivateTree of a missing root succeeded")
	}
}
