package api

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/kairoshq/kairos/internal/fileperm"
)

// Keys is a publishable and secret key pair, as stored in keys.json.
type Keys struct {
	Publishable string `json:"publishable"`
	Secret      string `json:"secret"`
}

// KeysFile is the name of the key file in the data directory.
const KeysFile = "keys.json"

// NewKeys generates a random key pair: "pk_" and "sk_" followed by 32
// characters of URL-safe base64 (192 random bits each).
func NewKeys() (Keys, error) {
	gen := func(prefix string) (string, error) {
		var b [24]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("api: generate key: %w", err)
		}
		return prefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
	}
	pk, err := gen("pk_")
	if err != nil {
		return Keys{}, err
	}
	sk, err := gen("sk_")
	if err != nil {
		return Keys{}, err
	}
	return Keys{Publishable: pk, Secret: sk}, nil
}

// validate checks a loaded pair.
func (k Keys) validate() error {
	var errs []error
	for _, f := range []struct{ name, v, prefix string }{
		{"publishable", k.Publishable, "pk_"}, {"secret", k.Secret, "sk_"},
	} {
		switch {
		case !strings.HasPrefix(f.v, f.prefix):
			errs = append(errs, fmt.Errorf("%s: want a key starting with %q", f.name, f.prefix))
		case len(f.v) < minKeyBytes:
			errs = append(errs, fmt.Errorf("%s: shorter than %d bytes", f.name, minKeyBytes))
		case !keyChars(f.v):
			errs = append(errs, fmt.Errorf("%s: only printable ASCII without spaces or commas is allowed", f.name))
		}
	}
	return errors.Join(errs...)
}

// LoadOrCreateKeys returns the key pair stored in <dataDir>/keys.json,
// creating the directory (0700) and the file (0600) with a new random pair
// (NewKeys) on first start; created tells that it did, so that
// `kairos serve` can print the keys once. The file is created atomically:
// concurrent first starts agree on one pair. A key file that others can
// read or write (mode & 0077 != 0, on Unix) is refused, like ssh does with
// private keys.
func LoadOrCreateKeys(dataDir string) (keys Keys, created bool, err error) {
	path := filepath.Join(dataDir, KeysFile)
	keys, err = readKeys(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return keys, false, err
	}
	if err := os.MkdirAll(dataDir, fileperm.DirMode); err != nil {
		return Keys{}, false, fmt.Errorf("api: keys: %w", err)
	}
	keys, err = NewKeys()
	if err != nil {
		return Keys{}, false, err
	}
	body, err := json.MarshalIndent(keys, "", "  ")
	if err != nil {
		return Keys{}, false, fmt.Errorf("api: keys: %w", err)
	}
	tmp, err := os.CreateTemp(dataDir, ".keys-*.json")
	if err != nil {
		return Keys{}, false, fmt.Errorf("api: keys: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(fileperm.FileMode); err != nil {
		tmp.Close()
		return Keys{}, false, fmt.Errorf("api: keys: %w", err)
	}
	_, err = tmp.Write(append(body, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Keys{}, false, fmt.Errorf("api: keys: write %s: %w", tmp.Name(), err)
	}
	// Link fails if the file appeared meanwhile: then the other pair wins.
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			keys, err = readKeys(path)
			return keys, false, err
		}
		return Keys{}, false, fmt.Errorf("api: keys: %w", err)
	}
	syncDir(dataDir)
	return keys, true, nil
}

func readKeys(path string) (Keys, error) {
	f, err := os.Open(path)
	if err != nil {
		return Keys{}, fmt.Errorf("api: keys: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Keys{}, fmt.Errorf("api: keys: %w", err)
	}
	if err := fileperm.CheckPrivate(path, fi.Mode(), "the secret key"); err != nil {
		return Keys{}, fmt.Errorf("api: keys: %w", err)
	}
	var k Keys
	dec := json.NewDecoder(f)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&k); err != nil {
		return Keys{}, fmt.Errorf("api: keys: %s: %w", path, err)
	}
	if err := k.validate(); err != nil {
		return Keys{}, fmt.Errorf("api: keys: %s: %w", path, err)
	}
	return k, nil
}

// syncDir makes the new directory entry durable (best effort).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}
