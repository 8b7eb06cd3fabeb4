package main

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

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
