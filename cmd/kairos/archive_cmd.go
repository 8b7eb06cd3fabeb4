package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"time"

	"github.com/kairoshq/kairos/eval"
	"github.com/kairoshq/kairos/offline/archive"
	"github.com/kairoshq/kairos/signals"
)

func init() {
	register(command{name: "archive ls", summary: "list the archive's segments (JSON lines)", run: runArchiveLs})
	register(command{name: "archive verify", summary: "check every record checksum of the archive", run: runArchiveVerify})
	register(command{name: "archive compact", summary: "rewrite sealed segments without erased visitors (the server must be stopped)", run: runArchiveCompact})
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

func runArchiveLs(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("archive ls", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := archiveDirFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	segs, err := archive.NewReader(dir(), nil).Segments(ctx)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	for _, s := range segs {
		if err := enc.Encode(s); err != nil {
			return err
		}
	}
	return nil
}

func runArchiveVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("archive verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := archiveDirFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	start := time.Now()
	if err := archive.NewReader(dir(), nil).Verify(ctx); err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(map[string]any{"verified": dir(), "took_s": time.Since(start).Seconds()})
}

func runArchiveCompact(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("archive compact", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := archiveDirFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	a, err := archive.Open(ctx, archive.Options{Dir: dir()})
	if errors.Is(err, archive.ErrLocked) {
		return fmt.Errorf("%w: stop kairos serve first", err)
	}
	if err != nil {
		return err
	}
	defer a.Close()
	res, err := a.Compact(ctx)
	if err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(res)
}

func runArchiveImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("archive import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var df datasetFlags
	df.register(fs)
	dir := archiveDirFlags(fs)
	typ := fs.String("type", "view", "event type of every interaction")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if df.path == "" {
		return errors.New("--data is required")
	}
	recs, err := eval.Load(df.path, eval.Format(df.format))
	if err != nil {
		return err
	}
	unit := time.Second
	if df.timeUnit == "ms" {
		unit = time.Millisecond
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
	return json.NewEncoder(stdout).Encode(map[string]any{"imported": n, "archive": dir(), "took_s": time.Since(start).Seconds()})
}
