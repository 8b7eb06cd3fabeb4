package main

import (
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kairoshq/kairos/model"
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

// TestServeFitsItemLambdaUnlessSet: the retrains of kairos serve fit ν
// unless --item-lambda-exponent or its variable fixes it; a value outside
// [0, 2] is refused.
func TestServeFitsItemLambdaUnlessSet(t *testing.T) {
	parse := func(args ...string) (serveConfig, error) {
		return parseServeConfig(append([]string{"--data-dir", t.TempDir(), "--amqp-url", "", "--redis-url", ""}, args...), io.Discard)
	}
	cfg, err := parse()
	if err != nil || !cfg.FitItemLambda || cfg.Params.ItemLambdaExponent != 0 {
		t.Fatalf("by default: fit %v, ν %v, err %v; want a fit from ν 0", cfg.FitItemLambda, cfg.Params.ItemLambdaExponent, err)
	}
	cfg, err = parse("--item-lambda-exponent", "0")
	if err != nil || cfg.FitItemLambda {
		t.Fatalf("--item-lambda-exponent 0: fit %v, err %v; want ν fixed", cfg.FitItemLambda, err)
	}
	t.Setenv("KAIROS_ITEM_LAMBDA_EXPONENT", "0.5")
	cfg, err = parse()
	if err != nil || cfg.FitItemLambda || cfg.Params.ItemLambdaExponent != 0.5 {
		t.Fatalf("$KAIROS_ITEM_LAMBDA_EXPONENT=0.5: fit %v, ν %v, err %v", cfg.FitItemLambda, cfg.Params.ItemLambdaExponent, err)
	}
	if _, err := parse("--item-lambda-exponent", "3"); err == nil || !strings.Contains(err.Error(), "item_lambda_exponent") {
		t.Fatalf("ν = 3: err %v, want the exponent named", err)
	}
}

// TestServeFitsHalfLifeUnlessSet: each retrain of kairos serve tries no
// decay against the half-life unless --half-life or KAIROS_HALF_LIFE
// fixes it.
func TestServeFitsHalfLifeUnlessSet(t *testing.T) {
	parse := func(args ...string) (serveConfig, error) {
		return parseServeConfig(append([]string{"--data-dir", t.TempDir(), "--amqp-url", "", "--redis-url", ""}, args...), io.Discard)
	}
	cfg, err := parse()
	if err != nil || !cfg.FitHalfLife || cfg.Params.HalfLife != model.DefaultParams().HalfLife {
		t.Fatalf("by default: fit %v, half-life %v, err %v; want a fit from the shipped half-life", cfg.FitHalfLife, cfg.Params.HalfLife, err)
	}
	if cfg, err = parse("--half-life", "1h"); err != nil || cfg.FitHalfLife || cfg.Params.HalfLife != time.Hour {
		t.Fatalf("--half-life 1h: fit %v, half-life %v, err %v; want it fixed", cfg.FitHalfLife, cfg.Params.HalfLife, err)
	}
	t.Setenv("KAIROS_HALF_LIFE", "0s")
	if cfg, err = parse(); err != nil || cfg.FitHalfLife || cfg.Params.HalfLife != 0 {
		t.Fatalf("$KAIROS_HALF_LIFE=0s: fit %v, half-life %v, err %v", cfg.FitHalfLife, cfg.Params.HalfLife, err)
	}
}

// TestServeItemNeighboursSwitch: retrains may weigh item neighbours
// unless --item-neighbours=false or KAIROS_ITEM_NEIGHBOURS=false.
func TestServeItemNeighboursSwitch(t *testing.T) {
	parse := func(args ...string) (serveConfig, error) {
		return parseServeConfig(append([]string{"--data-dir", t.TempDir(), "--amqp-url", "", "--redis-url", ""}, args...), io.Discard)
	}
	if cfg, err := parse(); err != nil || !cfg.ItemNeighbours {
		t.Fatalf("by default: %v, %v; want on", cfg.ItemNeighbours, err)
	}
	if cfg, err := parse("--item-neighbours=false"); err != nil || cfg.ItemNeighbours {
		t.Fatalf("--item-neighbours=false: %v, %v", cfg.ItemNeighbours, err)
	}
	t.Setenv("KAIROS_ITEM_NEIGHBOURS", "false")
	if cfg, err := parse(); err != nil || cfg.ItemNeighbours {
		t.Fatalf("$KAIROS_ITEM_NEIGHBOURS=false: %v, %v", cfg.ItemNeighbours, err)
	}
}
