package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/kairoshq/kairos/api"
	"github.com/kairoshq/kairos/internal/fileperm"
)

// usesDataDir reports whether kairos serve writes under cfg.DataDir: the
// embedded store, the generated keys, or the archive inside it.
func usesDataDir(cfg serveConfig) bool {
	if cfg.DataDir == "" {
		return false
	}
	if cfg.RedisURL == "" || len(cfg.SecretKeys) == 0 {
		return true
	}
	if cfg.ArchiveDir == "off" {
		return false
	}
	rel, err := filepath.Rel(cfg.DataDir, cfg.ArchiveDir)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// privateDataDir creates the data directory 0700, or removes the group
// and other permission bits of an existing one (versions before created
// it 0755), when the server writes there. What is inside is the store's,
// the archive's and the keys' business: each makes its own files private
// or, for keys.json, refuses a file others may read.
func privateDataDir(cfg serveConfig, log *slog.Logger) error {
	if !usesDataDir(cfg) {
		return nil
	}
	changed, err := fileperm.PrivateDir(cfg.DataDir)
	if err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if changed {
		log.Warn("made the data directory private (0700): it was readable by other users of this machine", slog.String("dir", cfg.DataDir))
	}
	return nil
}

// tenantsDir is the directory of the tenants' data under a multi-tenant
// server's data directory; it also marks the directory as a tenants' one.
const tenantsDir = "tenants"

// separateDeployments refuses to start a multi-tenant server on a single
// site's data directory (its keys.json) and a single site on a tenants'
// one: each would read the other's store as its own (the tenant registry
// and the site share <data-dir>/state), and the keys of the first would
// stop working. A multi-tenant server marks its directory by creating
// <data-dir>/tenants.
func separateDeployments(cfg serveConfig, tenants bool) error {
	if cfg.DataDir == "" || !usesDataDir(cfg) {
		return nil
	}
	keys := filepath.Join(cfg.DataDir, api.KeysFile)
	marker := filepath.Join(cfg.DataDir, tenantsDir)
	switch {
	case tenants && exists(keys):
		return fmt.Errorf("--data-dir %s holds a single site's data (%s): start the multi-tenant server (--admin-key) on a data directory of its own", cfg.DataDir, keys)
	case tenants:
		if err := os.MkdirAll(marker, 0o700); err != nil {
			return fmt.Errorf("data dir: %w", err)
		}
	case exists(marker):
		return fmt.Errorf("--data-dir %s holds a multi-tenant server's data (%s): start this single site on a data directory of its own, or the multi-tenant server with --admin-key", cfg.DataDir, marker)
	}
	return nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
