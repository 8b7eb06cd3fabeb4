package erasurelog_test

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine/embedded"
	"github.com/kairoshq/kairos/offline/archive"
	"github.com/kairoshq/kairos/offline/erasurelog"
	"github.com/kairoshq/kairos/offline/history"
	"github.com/kairoshq/kairos/signals"
)

var t0 = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

func view(id, visitor string, at time.Time) signals.Event {
	return signals.Event{ID: id, Type: signals.TypeView, Visitor: visitor, Item: "i", Time: signals.Timestamp{Time: at}}
}

// archived returns the ids a reader of dir yields.
func archived(t *testing.T, dir string) []string {
	t.Helper()
	var ids []string
	err := archive.NewReader(dir, nil).Scan(context.Background(), time.Time{}, time.Time{}, func(ev signals.Event) error {
		ids = append(ids, ev.ID)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(ids)
	return ids
}

// TestFollowerRecordsTheLog: a follower records every logged erasure in
// its archive once, from the position it saved (a second follower on the
// same archive, a restart, records nothing again); the erasure covers
// the visitor's events archived before it and those arriving later with
// a ts at or before it, not the visitor's events after it; a position
// that has left the log while newer entries exist is reported.
func TestFollowerRecordsTheLog(t *testing.T) {
	ctx := context.Background()
	store, err := embedded.Open(t.TempDir(), embedded.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	dir := t.TempDir()
	arc, err := archive.Open(ctx, archive.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer arc.Close()
	if err := arc.Append(ctx, []signals.Event{view("a1", "va", t0), view("b1", "vb", t0), view("k1", "keep", t0)}); err != nil {
		t.Fatal(err)
	}
	erasedAt := t0.Add(time.Minute)
	for _, v := range []string{"va", "vb"} {
		if _, err := history.LogErasure(ctx, store, "", v, erasedAt); err != nil {
			t.Fatal(err)
		}
	}
	var logs bytes.Buffer
	cfg := erasurelog.Config{Logs: store, Archive: arc, Logger: slog.New(slog.NewTextHandler(&logs, nil)), Now: func() time.Time { return erasedAt.Add(time.Second) }}
	f, err := erasurelog.NewFollower(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := f.CatchUp(ctx); err != nil || n != 2 {
		t.Fatalf("CatchUp: %d entries, %v; want 2", n, err)
	}
	// Late arrivals: va's event sent before the erasure (kept out), and
	// after it (kept).
	if err := arc.Append(ctx, []signals.Event{view("a2", "va", erasedAt.Add(-time.Second)), view("a3", "va", erasedAt.Add(time.Second))}); err != nil {
		t.Fatal(err)
	}
	if got, want := archived(t, dir), []string{"a3", "k1"}; !slices.Equal(got, want) {
		t.Errorf("archive after the erasures: %v, want %v", got, want)
	}
	if s := f.Stats(); s.Recorded != 2 || s.Covered != 0 {
		t.Errorf("stats %+v, want 2 recorded", s)
	}
	again, err := erasurelog.NewFollower(cfg) // a restart: the saved position
	if err != nil {
		t.Fatal(err)
	}
	if n, err := again.CatchUp(ctx); err != nil || n != 0 {
		t.Errorf("a restarted follower applied %d entries (%v), want none", n, err)
	}
	if again.Stats().Position != f.Stats().Position {
		t.Errorf("restart position %d, want %d", again.Stats().Position, f.Stats().Position)
	}
	if strings.Contains(logs.String(), "no longer holds") {
		t.Errorf("a position in the log reported as gone: %s", logs.String())
	}
}
