package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/kairoshq/kairos/offline/archive"
	"github.com/kairoshq/kairos/signals"
)

func init() {
	register(command{name: "archive ls", summary: "list the archive's segments (JSON lines)", run: runArchiveLs})
	register(command{name: "archive verify", summary: "check every record checksum of the archive", run: runArchiveVerify})
	register(command{name: "archive compact", summary: "rewrite the segments, the current hour's included, without erased visitors (the server must be stopped)", run: runArchiveCompact})
	register(command{name: "archive import", summary: "append a dataset (MovieLens, CSV) to an archive as view events", run: runArchiveImport})
}

// archiveDirFlags binds --data-dir and --archive-dir.
func archiveDirFlags(fs *flag.FlagSet) func() string {
	dataDir := fs.String("data-dir", envOr("KAIROS_DATA_DIR", "./kairos-data"), "data dir (the archive is <data-dir>/archive)")
	dir := fs.String("archive-dir", "", "archive directory (default <data-dir>/archive)")
	return func() string {
		if *dir != "" {
			return *dir
		}
		return filepath.Join(*dataDir, "archive")
	}
}

// parseExistingArchive binds --data-dir and --archive-dir, parses args
// and returns the archive directory, which must exist.
func parseExistingArchive(fs *flag.FlagSet, args []string) (string, error) {
	dir := archiveDirFlags(fs)
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	if err := existingArchive(dir()); err != nil {
		return "", err
	}
	return dir(), nil
}

// existingArchive returns an error when dir holds no archive: the
// read-only commands and compact would otherwise list nothing or create
// an empty archive at a mistyped path.
func existingArchive(dir string) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("no archive at %s (set --data-dir or --archive-dir)", dir)
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not an archive directory", dir)
	}
	return nil
}

func runArchiveLs(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("archive ls", stderr)
	dir, err := parseExistingArchive(fs, args)
	if err != nil {
		return err
	}
	segs, err := archive.NewReader(dir, nil).Segments(ctx)
	if err != nil {
		return err
	}
	return writeJSONLines(stdout, segs)
}

func runArchiveVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("archive verify", stderr)
	dir, err := parseExistingArchive(fs, args)
	if err != nil {
		return err
	}
	start := time.Now()
	if err := archive.NewReader(dir, nil).Verify(ctx); err != nil {
		return err
	}
	return writeJSON(stdout, map[string]any{"verified": dir, "took_s": time.Since(start).Seconds()})
}

// compactLine is the JSON line of `kairos archive compact`.
type compactLine struct {
	Archive string `json:"archive"`
	archive.CompactResult
	TookS float64 `json:"took_s"`
}

// runArchiveCompact rewrites the archive without the erased visitors'
// events. It needs the archive's writer lock, so it refuses to run while
// kairos serve has the archive open: the server keeps appending to the
// current hour's segment, and readers skip erased events meanwhile anyway.
func runArchiveCompact(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("archive compact", stderr)
	dir, err := parseExistingArchive(fs, args)
	if err != nil {
		return err
	}
	start := time.Now()
	a, err := archive.Open(ctx, archive.Options{Dir: dir, Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if errors.Is(err, archive.ErrLocked) {
		return fmt.Errorf("%s is in use (kairos serve holds its lock %s): stop kairos serve, then run kairos archive compact again; "+
			"until then every reader already skips the erased visitors' events", dir, filepath.Join(dir, "LOCK"))
	}
	if err != nil {
		return err
	}
	res, err := a.Compact(ctx)
	if cerr := a.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "archive compact: %d tombstones; %d of %d segments scanned (%s), %d rewritten, %d removed; %d events of erased visitors removed\n",
		res.Tombstones, res.Scanned, res.Segments, sealedNote(res.SealedActive), res.Rewritten, res.Removed, res.EventsGone)
	if res.Skipped > 0 {
		fmt.Fprintf(stderr, "archive compact: %d segments changed while being compacted: run it again\n", res.Skipped)
	}
	return writeJSON(stdout, compactLine{Archive: dir, CompactResult: res, TookS: time.Since(start).Seconds()})
}

// sealedNote says whether compact sealed the current hour's segment.
func sealedNote(name string) string {
	if name == "" {
		return "no active segment to seal"
	}
	return "the current hour's segment " + name + " sealed first"
}

// checkImportType refuses an event type that an imported interaction
// (a visitor and an item at a time) cannot have.
func checkImportType(t signals.Type) error {
	if t == signals.TypeIdentify {
		return fmt.Errorf("--type identify: an imported interaction has no user to link the visitor to")
	}
	now := time.Now()
	probe := signals.Event{ID: "probe", Type: t, Visitor: "v", Item: "i", Time: signals.Timestamp{Time: now}}
	if err := probe.Validate(now, signals.Limits{}); err != nil {
		return fmt.Errorf("--type: %w", err)
	}
	return nil
}

func runArchiveImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("archive import", stderr)
	var df datasetFlags
	df.register(fs)
	dir := archiveDirFlags(fs)
	typ := fs.String("type", "view", "event type of every interaction")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := checkImportType(signals.Type(*typ)); err != nil {
		return err
	}
	recs, unit, _, err := df.records()
	if err != nil {
		return err
	}
	a, err := archive.Open(ctx, archive.Options{Dir: dir()})
	if err != nil {
		return err
	}
	defer a.Close()
	start := time.Now()
	batch := make([]signals.Event, 0, 1000)
	n := 0
	for _, r := range recs {
		batch = append(batch, signals.Event{
			ID: "ds-" + r.User + "-" + r.Item + "-" + strconv.FormatInt(r.Time, 10), Type: signals.Type(*typ),
			Visitor: "u" + r.User, Item: "i" + r.Item, Time: signals.Timestamp{Time: time.Unix(0, 0).Add(time.Duration(r.Time) * unit).UTC()},
		})
		if len(batch) == cap(batch) {
			if err := a.Append(ctx, batch); err != nil {
				return err
			}
			n += len(batch)
			batch = batch[:0]
		}
	}
	if err := a.Append(ctx, batch); err != nil {
		return err
	}
	n += len(batch)
	return writeJSON(stdout, map[string]any{"imported": n, "archive": dir(), "took_s": time.Since(start).Seconds()})
}
