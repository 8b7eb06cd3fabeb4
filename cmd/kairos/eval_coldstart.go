package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kairoshq/kairos/eval"
	"github.com/kairoshq/kairos/model"
)

func init() {
	register(command{
		name:    "eval coldstart",
		summary: "cold-start curves: new visitors (context, fold-in, blend vs popularity and a batch-retrain ceiling) and new items (attribute priors vs zero knowledge)",
		run:     runEvalColdstart,
	})
}

func runEvalColdstart(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("eval coldstart", stderr)
	var ef evalFlags
	ef.register(fs) // --seed also seeds the user and item splits
	curves := fs.String("curves", "users,items", "curves to run: users, items or both (comma-separated)")
	share := fs.Float64("holdout", 0.1, "share of users (users curve) and of items (items curve) held out entirely")
	steps := fs.String("steps", "0,1,2,3,5,10", "users curve: numbers m of a held-out user's events before the ranked one")
	itemSteps := fs.String("item-steps", "0,1,2,5,10", "items curve: numbers j of a held-out item's interactions learnt before ranking it for its later interactors")
	kappa := fs.Float64("kappa", -1, "blend confidence κ (w(m) = m/(m+κ)); negative: choose κ, τ and the trending half-life on validation users")
	tau := fs.Float64("tau", model.DefaultBlend().Trending, "trending's share of the context when a page item is known (with --kappa ≥ 0)")
	trendHL := fs.Duration("trending-half-life", 7*24*time.Hour, "trending half-life (with --kappa ≥ 0; 0 = popularity so far)")
	folds := fs.Int("folds", 3, "validation folds of the training users for the blend search (each --holdout of them)")
	itemsPath := fs.String("items", "", "item attributes for the items curve: u.item (movielens; default: u.item beside --data) or a CSV with item and tags/category/genres columns ('|'-separated)")
	itemsFormat := fs.String("items-format", "", "format of --items: movielens (u.item) or csv (default: --format)")
	shrink := fs.Float64("shrinkage", model.DefaultTagShrinkage, "provisional factors: shrinkage towards the average item, in items")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := ef.check(); err != nil {
		return err
	}
	df, p := ef.datasetFlags, ef.params
	runUsers, runItems := false, false
	for _, c := range strings.Split(*curves, ",") {
		switch strings.TrimSpace(c) {
		case "users":
			runUsers = true
		case "items":
			runItems = true
		default:
			return fmt.Errorf("--curves: unknown curve %q (want users, items)", c)
		}
	}
	ms, err := parseSteps(*steps)
	if err != nil {
		return fmt.Errorf("--steps: %w", err)
	}
	js, err := parseSteps(*itemSteps)
	if err != nil {
		return fmt.Errorf("--item-steps: %w", err)
	}
	ds, unit, err := df.load()
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil)).With("component", "eval coldstart")
	fmt.Fprintf(stderr, "loaded %d users, %d items, %d interactions\n", len(ds.Users), len(ds.Items), len(ds.Interactions))
	enc := json.NewEncoder(stdout)
	start := time.Now()
	if runUsers {
		cfg := eval.DefaultColdUserConfig()
		cfg.Params, cfg.Unit, cfg.Share, cfg.Seed, cfg.Steps, cfg.Folds, cfg.Threads, cfg.Log = p, unit, *share, p.Seed, ms, *folds, p.Threads, log
		if *kappa >= 0 {
			cfg.Blend = &model.Blend{Kappa: *kappa, Trending: *tau}
			cfg.TrendingHalfLife = *trendHL
		}
		t0 := time.Now()
		rep, err := eval.ColdUsers(ctx, ds, cfg)
		if err != nil {
			return err
		}
		for _, t := range rep.Validation {
			if err := enc.Encode(t); err != nil {
				return err
			}
		}
		for _, r := range rep.Results {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		if err := encodeUserSummary(enc, rep, ms, time.Since(t0)); err != nil {
			return err
		}
	}
	if runItems {
		cfg := eval.DefaultColdItemConfig()
		cfg.Params, cfg.Unit, cfg.Share, cfg.Seed, cfg.Steps, cfg.Shrinkage, cfg.Threads, cfg.Log = p, unit, *share, p.Seed, js, *shrink, p.Threads, log
		path, format := *itemsPath, eval.Format(df.format)
		if *itemsFormat != "" {
			format = eval.Format(*itemsFormat)
		}
		if path == "" && format == eval.FormatMovieLens {
			if cand := filepath.Join(filepath.Dir(df.path), "u.item"); fileExists(cand) {
				path = cand
			}
		}
		if path != "" {
			tags, err := eval.LoadItemTags(path, format)
			if err != nil {
				return err
			}
			cfg.Tags = ds.ItemTags(tags)
			fmt.Fprintf(stderr, "item attributes from %s (%d items)\n", path, len(tags))
		} else {
			fmt.Fprintln(stderr, "no item attributes (--items): the items curve runs zero-knowledge only")
		}
		t0 := time.Now()
		res, err := eval.ColdItems(ctx, ds, cfg)
		if err != nil {
			return err
		}
		for _, r := range res {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		if err := enc.Encode(struct {
			Curve    string  `json:"curve"`
			Summary  bool    `json:"summary"`
			ElapsedS float64 `json:"elapsed_s"`
		}{"items", true, time.Since(t0).Seconds()}); err != nil {
			return err
		}
	}
	fmt.Fprintf(stderr, "done in %s\n", time.Since(start).Round(time.Millisecond))
	return nil
}

// encodeUserSummary prints the chosen blend and the fold-in/ceiling ratio
// at m = 3 (the cold-start target: ≥ 0.8), with a paired comparison.
func encodeUserSummary(enc *json.Encoder, rep *eval.ColdUserReport, ms []int, elapsed time.Duration) error {
	type ratio struct {
		Mode   string      `json:"mode"`
		M      int         `json:"m"`
		Ratio  float64     `json:"ndcg10_vs_ceiling"`
		Met    bool        `json:"target_met"`
		Paired eval.Paired `json:"paired"`
	}
	var ratios []ratio
	for _, m := range ms {
		if m != 3 {
			continue
		}
		c, ok := rep.Result("ceiling", m)
		if !ok {
			continue
		}
		for _, mode := range []string{"foldin", "blend"} {
			r, _ := rep.Result(mode, m)
			ratios = append(ratios, ratio{mode, m, r.VsCeiling, r.VsCeiling >= 0.8, eval.ComparePaired(r.Ranks, c.Ranks)})
		}
	}
	return enc.Encode(struct {
		Curve            string      `json:"curve"`
		Summary          bool        `json:"summary"`
		Blend            model.Blend `json:"blend"`
		TrendingHalfLife string      `json:"trending_half_life"`
		HeldUsers        int         `json:"held_users"`
		TrainUsers       int         `json:"train_users"`
		Target           []ratio     `json:"target,omitempty"`
		ElapsedS         float64     `json:"elapsed_s"`
	}{"users", true, rep.Blend, rep.TrendingHalfLife.String(), rep.HeldUsers, rep.TrainUsers, ratios, elapsed.Seconds()})
}

func parseSteps(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}
