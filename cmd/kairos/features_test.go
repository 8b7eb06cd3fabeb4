package main

import (
	"io"
	"slices"
	"testing"
)

// TestFeaturesEnabled checks the features table: every feature is on by
// default except the demo and the holdout, --archive-dir off turns the archive off, and
// the order keeps experiments and the holdout before promotions before
// attention.
func TestFeaturesEnabled(t *testing.T) {
	names := func(args ...string) []string {
		cfg, err := parseServeConfig(append([]string{"--data-dir", t.TempDir(), "--amqp-url", "", "--redis-url", ""}, args...), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, f := range enabled(cfg) {
			out = append(out, f.name)
		}
		return out
	}
	want := []string{"identity", "archive", "retrain", "stats", "experiments", "promotions", "attention", "filters", "rotation"}
	if got := names(); !slices.Equal(got, want) {
		t.Fatalf("features by default = %v, want %v", got, want)
	}
	if got := names("--demo"); !slices.Contains(got, "demo") {
		t.Fatalf("--demo: features %v lack the demo", got)
	}
	if got := names("--holdout-share", "0.05"); !slices.Contains(got, "holdout") ||
		slices.Index(got, "holdout") > slices.Index(got, "promotions") {
		t.Fatalf("--holdout-share 0.05: features %v lack the holdout, or build it after promotions (which ask it)", got)
	}
	if _, err := parseServeConfig([]string{"--data-dir", t.TempDir(), "--holdout-share", "0.7"}, io.Discard); err == nil {
		t.Fatal("--holdout-share 0.7 accepted")
	}
	if got := names("--archive-dir", "off"); slices.Contains(got, "archive") {
		t.Fatalf("--archive-dir off: features %v still hold the archive", got)
	}
}
