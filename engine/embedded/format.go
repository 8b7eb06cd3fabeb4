package embedded

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kairoshq/kairos/internal/durable"
	"github.com/kairoshq/kairos/internal/errs"
)

// formatName is the directory's format marker: one line, formatMagic and
// the format version. Directories written before version 2 have none.
const (
	formatName  = "FORMAT"
	formatMagic = "kairos-embedded"
)

// ErrFormat is returned (wrapped, with the directory, the format found
// and the upgrade path) by Open and OpenReadOnly when the directory was
// written by a version of Kairos whose storage format this one does not
// read. It wraps errs.Invalid.
var ErrFormat = fmt.Errorf("embedded: unsupported storage format: %w", errs.Invalid)

// upgradePath tells an operator what to do with a directory of another
// format.
const upgradePath = "to upgrade, export the definitions (GET /v1/offers, /v1/campaigns, /v1/rules, /v1/experiments) from the build that wrote it, " +
	"move the directory away, start this build on an empty directory and re-create the definitions; " +
	"the event history is kept in the archive and can be replayed into the new store with `kairos replay`"

// checkFormat checks the format marker of dir. A directory without one is
// of format 1 if it holds a snapshot or a log; otherwise it is new, and
// create writes the marker (OpenReadOnly does not).
func checkFormat(dir string, create bool) error {
	b, err := os.ReadFile(filepath.Join(dir, formatName))
	switch {
	case err == nil:
		found, ok := parseFormat(string(b))
		if !ok {
			return fmt.Errorf("%w: directory %s: %s holds %q, want %q", ErrFormat, dir, formatName, strings.TrimSpace(string(b)), formatLine())
		}
		if found != formatVersion {
			return formatErr(dir, found)
		}
		return nil
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("embedded: open %s: read format marker: %w", dir, err)
	}
	old, err := holdsData(dir)
	if err != nil {
		return fmt.Errorf("embedded: open %s: %w", dir, err)
	}
	if old {
		return formatErr(dir, 1)
	}
	if !create {
		return nil
	}
	if err := writeFormat(dir); err != nil {
		return fmt.Errorf("embedded: open %s: write format marker: %w", dir, err)
	}
	return nil
}

func formatErr(dir string, found uint64) error {
	return fmt.Errorf("%w: directory %s holds storage format %d, this build reads format %d; %s",
		ErrFormat, dir, found, formatVersion, upgradePath)
}

func formatLine() string { return fmt.Sprintf("%s %d", formatMagic, formatVersion) }

func parseFormat(s string) (uint64, bool) {
	magic, v, ok := strings.Cut(strings.TrimSpace(s), " ")
	if !ok || magic != formatMagic {
		return 0, false
	}
	n, err := strconv.ParseUint(v, 10, 64)
	return n, err == nil
}

// holdsData reports whether dir holds a snapshot or a log.
func holdsData(dir string) (bool, error) {
	if _, err := os.Stat(filepath.Join(dir, snapName)); err == nil {
		return true, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	seqs, err := listWALs(dir)
	return len(seqs) > 0, err
}

// writeFormat writes the marker of this format (write-then-rename,
// fsynced).
func writeFormat(dir string) error {
	return durable.WriteFile(dir, formatName, []byte(formatLine()+"\n"), true)
}
