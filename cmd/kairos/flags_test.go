package main

import (
	"io"
	"os"
	"slices"
	"strings"
	"testing"
)

func TestParseInterspersed(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		grace string
		pos   []string
	}{
		{[]string{"--grace", "1h", "shop-c"}, "1h", []string{"shop-c"}},
		{[]string{"shop-c", "--grace", "1h"}, "1h", []string{"shop-c"}},
		{[]string{"a", "--grace=2h", "b"}, "2h", []string{"a", "b"}},
		{[]string{"a", "--", "--grace", "b"}, "", []string{"a", "--grace", "b"}},
		{nil, "", nil},
	} {
		fs := newFlagSet("test", io.Discard)
		grace := fs.String("grace", "", "")
		pos, err := parseInterspersed(fs, tc.args)
		if err != nil || *grace != tc.grace || !slices.Equal(pos, tc.pos) {
			t.Errorf("%q: grace %q, positional %q, %v; want %q, %q", tc.args, *grace, pos, err, tc.grace, tc.pos)
		}
	}
	fs := newFlagSet("test", io.Discard)
	if _, err := parseInterspersed(fs, []string{"a", "--nope"}); err == nil {
		t.Error("an unknown flag after a positional argument is accepted")
	}
}

// TestHelpExitsZero: --help on a command prints its usage and exits 0
// (not "flag: help requested" and 1).
func TestHelpExitsZero(t *testing.T) {
	for _, args := range [][]string{{"eval", "offline", "--help"}, {"retrain", "-h"}, {"tenant", "rotate", "--help"}, {"replay", "--help"}} {
		var out, errOut strings.Builder
		if code := run(t.Context(), args, &out, &errOut); code != 0 || strings.Contains(errOut.String(), "help requested") || !strings.Contains(errOut.String(), "-") {
			t.Errorf("%q: exit %d, stderr %q", args, code, errOut.String())
		}
	}
}

// TestCommandsRefuseBadValues: flags and values that crashed a command or
// were taken silently are errors naming the flag, and nothing is written.
func TestCommandsRefuseBadValues(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"replay", "--to-store", "--store-data-dir", dir, "--batch", "-5"}, "--batch: -5 is less than 1"},
		{[]string{"replay", "--to-store", "--store-data-dir", dir, "--batch", "0"}, "--batch: 0 is less than 1"},
		{[]string{"replay", "--to-store", "--store-data-dir", dir, "--from", "2h", "--to", "3h"}, "is not before --to"},
		{[]string{"bench", "seed", "--data-dir", dir, "--items", "-1"}, "--items: -1"},
		{[]string{"bench", "seed", "--data-dir", dir, "--topics", "0"}, "--topics: 0"},
		{[]string{"bench", "seed", "--data-dir", dir, "--factors", "0"}, "--factors: 0"},
		{[]string{"archive", "import", "--archive-dir", dir + "/archive", "--synthetic", "sparse", "--type", "bogus"}, `--type: type: unknown type "bogus"`},
		{[]string{"eval", "stream", "--synthetic", "sparse,users=20,items=30", "--warmup", "2"}, "--warmup 2: want a share in (0, 1)"},
		{[]string{"retrain", "--data-dir", dir, "--holdout", "-5h"}, "--holdout: -5h0m0s is negative"},
		{[]string{"retrain", "--data-dir", dir, "--tolerance", "NaN"}, "--tolerance: NaN"},
		{[]string{"retrain", "--data-dir", dir, "--guard-users", "0"}, "--guard-users: 0 would rank no user"},
		{[]string{"serve", "--data-dir", dir, "--amqp-url", "", "--redis-url", "", "--retrain-guard-users", "0"}, "--retrain-guard-users: 0 would rank no user"},
		{[]string{"retrain", "--data-dir", dir, "--from", "2026-12-01T00:00:00Z", "--to", "2026-11-01T00:00:00Z"}, "is not before --to"},
		{[]string{"tenant", "rotate", "shop", "--grace", "-1h"}, "--grace -1h0m0s: want a whole number of seconds"},
		{[]string{"serve", "--data-dir", dir, "--amqp-url", "", "--redis-url", "", "--trending-half-life", "10s"}, "--trending-half-life 10s is below 1m"},
		{[]string{"replay", "--to-store", "--store-data-dir", dir, "--trending-half-life", "soon"}, `--trending-half-life "soon": want a duration of at least 1m`},
	} {
		var out, errOut strings.Builder
		if code := run(t.Context(), tc.args, &out, &errOut); code == 0 || !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("%q: exit %d, stderr %q, want %q", tc.args, code, errOut.String(), tc.want)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("refused commands wrote %v", entries)
	}
}
