package api

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

func TestLoadOrCreateKeys(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "dir")
	k, created, err := LoadOrCreateKeys(dir)
	if err != nil || !created {
		t.Fatalf("first start: created=%v err=%v", created, err)
	}
	re := regexp.MustCompile(`^(pk|sk)_[A-Za-z0-9_-]{32}$`)
	if !re.MatchString(k.Publishable) || !re.MatchString(k.Secret) ||
		!strings.HasPrefix(k.Publishable, "pk_") || !strings.HasPrefix(k.Secret, "sk_") {
		t.Errorf("keys %+v", k)
	}
	fi, err := os.Stat(filepath.Join(dir, KeysFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	if di, err := os.Stat(dir); err != nil || di.Mode().Perm() != 0o700 {
		t.Errorf("data dir mode %v (%v), want 0700", di.Mode().Perm(), err)
	}
	again, created, err := LoadOrCreateKeys(dir)
	if err != nil || created || again != k {
		t.Errorf("second start: %+v created=%v err=%v, want the same keys", again, created, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
	// The generated keys pass Config.Validate.
	cfg := Config{SecretKeys: []string{k.Secret}, PublishableKeys: []string{k.Publishable}}
	if err := cfg.Defaults().Validate(); err != nil {
		t.Errorf("generated keys do not validate: %v", err)
	}
}

func TestLoadOrCreateKeysErrors(t *testing.T) {
	tests := []struct {
		name    string
		content string
		mode    os.FileMode
		want    string
	}{
		{"readable by others", `{"publishable":"pk_aaaaaaaaaaaaaaaaaaaa","secret":"sk_aaaaaaaaaaaaaaaaaaaa"}`, 0o644, "chmod 600"},
		{"not JSON", `pk_x`, 0o600, "keys.json"},
		{"wrong prefix", `{"publishable":"sk_aaaaaaaaaaaaaaaaaaaa","secret":"sk_bbbbbbbbbbbbbbbbbbbb"}`, 0o600, `publishable: want a key starting with "pk_"`},
		{"missing secret", `{"publishable":"pk_aaaaaaaaaaaaaaaaaaaa"}`, 0o600, `secret: want a key starting with "sk_"`},
		{"unknown member", `{"publishable":"pk_aaaaaaaaaaaaaaaaaaaa","secret":"sk_aaaaaaaaaaaaaaaaaaaa","x":1}`, 0o600, "unknown field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, KeysFile)
			if err := os.WriteFile(path, []byte(tt.content), tt.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			_, created, err := LoadOrCreateKeys(dir)
			if err == nil || created || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err %v created %v, want an error containing %q", err, created, tt.want)
			}
			if b, _ := os.ReadFile(path); string(b) != tt.content {
				t.Errorf("the key file was changed")
			}
		})
	}
}

func TestLoadOrCreateKeysConcurrent(t *testing.T) {
	dir := t.TempDir()
	const n = 8
	keys := make([]Keys, n)
	created := make([]bool, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			keys[i], created[i], errs[i] = LoadOrCreateKeys(dir)
		}()
	}
	wg.Wait()
	nCreated := 0
	for i := 0; i < n; i++ {
		if errs[i] != nil {
			t.Fatalf("start %d: %v", i, errs[i])
		}
		if keys[i] != keys[0] {
			t.Errorf("start %d got other keys", i)
		}
		if created[i] {
			nCreated++
		}
	}
	if nCreated != 1 {
		t.Errorf("%d starts report they created the keys, want 1", nCreated)
	}
}
