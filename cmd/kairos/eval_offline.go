package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
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
		name:    "eval offline",
		summary: "LOO-full ranking evaluation of ALS and popularity on a dataset (PROTOCOL.md)",
		run:     runEvalOffline,
	})
}

// datasetFlags are the flags shared by the eval commands that read a dataset.
type datasetFlags struct {
	path, format, weights, timeUnit, synthetic, columns string
	// thin and thinSeed thin the loaded dataset (eval.Dataset.Thin; 0:
	// not), registered by the commands that load one (evalFlags).
	thin     int
	thinSeed uint64
}

func (d *datasetFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&d.path, "data", "", "dataset file, plain or gzip-compressed (e.g. ../shared/data/ml-100k/u.data)")
	fs.StringVar(&d.format, "format", "movielens", "dataset format: movielens, csv (a header naming user and item columns, optionally time and weight: comma, tab, semicolon or bar separated, quoted or not; see go doc ./eval FormatCSV), diginetica (sessions as users) or otto (sessions as users)")
	fs.StringVar(&d.weights, "weights", "auto", "weight scaling: one, raw, log (log(1+w), for play counts) or auto (log when the file has a weight column)")
	fs.StringVar(&d.synthetic, "synthetic", "", "instead of --data, generate a planted dataset: sparse (eval.DefaultSparse: 8,000 users, 12,000 items, 12 interactions each, popularity-heavy)")
	fs.StringVar(&d.columns, "columns", "", "for --format csv without a header line: the columns in order, comma-separated, e.g. user,item,rating,time (user, item, time and weight are read; rating or - is ignored)")
	fs.StringVar(&d.timeUnit, "time-unit", "", "unit of the dataset's integer times: s or ms (default: the format's, ms for diginetica and otto, else s)")
}

// evalFlags are the flags of the eval commands that train on a dataset:
// the dataset's and the ALS hyperparameters.
type evalFlags struct {
	datasetFlags
	params model.Params
	solver *string
}

func (e *evalFlags) register(fs *flag.FlagSet) {
	e.datasetFlags.register(fs)
	fs.IntVar(&e.thin, "thin", 0, "before splitting, keep at most this many interactions per user, drawn at random (--thin-seed), and the items still seen: the data as a site of sparse visitors would have it (0: keep all; else at least 2)")
	fs.Uint64Var(&e.thinSeed, "thin-seed", 0, "seed of --thin's draw")
	e.params = model.DefaultParams()
	e.solver = paramFlags(fs, &e.params)
}

// check sets the solver from --solver and validates the parameters
// (after fs.Parse).
func (e *evalFlags) check() error { return checkParams(&e.params, *e.solver) }

// records reads the dataset of the flags (--data or --synthetic) and
// returns its records, the unit of their times, and whether they are
// synthetic (unit weights).
func (d *datasetFlags) records() ([]eval.Record, time.Duration, bool, error) {
	if d.synthetic != "" {
		cfg, err := parseSynthetic(d.synthetic)
		if err != nil {
			return nil, 0, false, err
		}
		recs, err := eval.Sparse(cfg)
		return recs, time.Second, true, err
	}
	unit, opt, err := d.fileOptions()
	if err != nil {
		return nil, 0, false, err
	}
	recs, err := eval.LoadWith(d.path, eval.Format(d.format), opt)
	return recs, unit, false, d.explain(err)
}

// fileOptions returns the unit of the times and the read options of
// --data's file.
func (d *datasetFlags) fileOptions() (time.Duration, eval.ReadOptions, error) {
	var opt eval.ReadOptions
	if d.path == "" {
		return 0, opt, errors.New("--data (or --synthetic) is required")
	}
	unit := eval.Format(d.format).TimeUnit()
	switch d.timeUnit {
	case "":
	case "s":
		unit = time.Second
	case "ms":
		unit = time.Millisecond
	default:
		return 0, opt, fmt.Errorf("--time-unit %q: want s or ms", d.timeUnit)
	}
	if d.columns != "" {
		opt.Columns = strings.Split(d.columns, ",")
	}
	return unit, opt, nil
}

// explain adds what to do to a missing-header error.
func (d *datasetFlags) explain(err error) error {
	if errors.Is(err, eval.ErrHeader) {
		return fmt.Errorf("%w; a file without a header line needs its columns named, e.g. --columns user,item,rating,time", err)
	}
	return err
}

// load reads the dataset of the flags: --synthetic's records, or --data's
// file straight into the dataset (eval.LoadDataset: a large log is not
// held as records), weights scaled by --weights, then thinned by --thin.
func (d *datasetFlags) load() (*eval.Dataset, time.Duration, error) {
	ds, unit, err := d.loadAll()
	if err != nil || d.thin == 0 {
		return ds, unit, err
	}
	ds, err = ds.Thin(d.thin, d.thinSeed)
	if err != nil {
		return nil, 0, fmt.Errorf("--thin: %w", err)
	}
	return ds, unit, nil
}

// loadAll is load without --thin.
func (d *datasetFlags) loadAll() (*eval.Dataset, time.Duration, error) {
	if d.synthetic != "" {
		recs, unit, _, err := d.records()
		if err != nil {
			return nil, 0, err
		}
		return eval.Build(recs, eval.WeightOne), unit, nil
	}
	scale := eval.WeightScale(d.weights)
	switch scale {
	case eval.WeightOne, eval.WeightRaw, eval.WeightLog, "auto":
	default:
		return nil, 0, fmt.Errorf("--weights %q: want one, raw, log or auto", d.weights)
	}
	unit, opt, err := d.fileOptions()
	if err != nil {
		return nil, 0, err
	}
	ds, err := eval.LoadDataset(d.path, eval.Format(d.format), opt, scale)
	return ds, unit, d.explain(err)
}

// parseSynthetic reads --synthetic: "sparse" then optional
// ",name=value" overrides of eval.DefaultSparse (users, items, clusters,
// per_user, zipf, taste, seed).
func parseSynthetic(s string) (eval.SparseConfig, error) {
	parts := strings.Split(s, ",")
	c := eval.DefaultSparse()
	if parts[0] != "sparse" {
		return c, fmt.Errorf("--synthetic %q: want sparse[,name=value…]", s)
	}
	for _, kv := range parts[1:] {
		name, val, ok := strings.Cut(kv, "=")
		x, err := strconv.ParseFloat(val, 64)
		if !ok || err != nil {
			return c, fmt.Errorf("--synthetic: %q is not name=number", kv)
		}
		switch name {
		case "users":
			c.Users = int(x)
		case "items":
			c.Items = int(x)
		case "clusters":
			c.Clusters = int(x)
		case "per_user":
			c.PerUser = x
		case "zipf":
			c.Zipf = x
		case "taste":
			c.Taste = x
		case "seed":
			c.Seed = uint64(x)
		default:
			return c, fmt.Errorf("--synthetic: unknown setting %q (users, items, clusters, per_user, zipf, taste, seed)", name)
		}
	}
	return c, c.Validate()
}

func runEvalOffline(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("eval offline", stderr)
	var ef evalFlags
	ef.register(fs)
	which := fs.String("model", "all", "models to evaluate: pop, als or all")
	holdout := fs.String("holdout", "latest", "held-out interaction per user: latest (PROTOCOL.md) or random (data without timestamps)")
	blendFlag := fs.String("blend", "fit", "popularity prior and item neighbours of the ALS ranking: fit (ρ, κ and η on the validation split), off (plain ALS), or fixed as ρ,κ or ρ,κ,η (e.g. 0.2,8 or 0.2,8,1)")
	var tf tuneFlags
	tf.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := ef.check(); err != nil {
		return err
	}
	df, p := ef.datasetFlags, ef.params
	if *which != "pop" && *which != "als" && *which != "all" {
		return fmt.Errorf("--model %q: want pop, als or all", *which)
	}
	bm, err := parseBlendFlag(*blendFlag)
	if err != nil {
		return err
	}
	if tf.method != "hyperband" && tf.method != "grid" {
		return fmt.Errorf("--tune-method %q: want hyperband or grid", tf.method)
	}
	if tf.budget < 0 {
		return fmt.Errorf("--tune-budget %s must be >= 0", tf.budget)
	}
	if tf.clock != "wall" && tf.clock != "cpu" {
		return fmt.Errorf("--tune-clock %q: want wall or cpu", tf.clock)
	}
	h, err := eval.NewHoldout(eval.HoldoutRule(*holdout))
	if err != nil {
		return fmt.Errorf("--holdout: %w", err)
	}
	ds, unit, err := df.load()
	if err != nil {
		return err
	}
	if err := checkHoldoutData(ds, h.Rule()); err != nil {
		return err
	}
	split := h.Split(len(ds.Users), len(ds.Items), ds.Interactions)
	if evaluable(split) == 0 {
		return fmt.Errorf("no user to evaluate: %d users loaded, %d with fewer than 2 interactions (PROTOCOL.md needs 2: one held out)", len(ds.Users), split.Skipped)
	}
	val := h.Validation(split)
	// The search races its best on the first further fold; its pick is
	// then confirmed against popularity on the second, which nothing was
	// chosen on (confirm; the first when the second holds no user).
	searched, n := tf.tune && tf.method == "hyperband", 1
	if searched {
		n = 2
	}
	folds := h.Folds(split, val, n)
	fold, confirm := folds[0], &folds[0]
	if searched && evaluable(folds[1]) > 0 {
		confirm = &folds[1]
	}
	fmt.Fprintf(stderr, "loaded %d users, %d items, %d training interactions (holdout %s; %d users with fewer than 2 interactions not evaluated)\n",
		split.Users, split.Items, len(split.Train), h.Rule(), split.Skipped)
	enc := json.NewEncoder(stdout)
	var pop, als eval.Result
	if *which != "als" {
		if pop, err = eval.OfflinePopularity(ctx, split, p.Threads); err != nil {
			return err
		}
		pop.PeakRSSMB = peakRSSMB()
		if err := enc.Encode(pop); err != nil {
			return err
		}
	}
	if *which == "pop" {
		return nil
	}
	var pick searchPick
	// The defaults' choices that no flag fixes are fitted on validation,
	// tuned or not: untuned they rank, tuned they are the reference.
	choice := eval.DefaultsChoice{HalfLife: !flagSet(fs, "half-life"), ItemLambdaExponent: !flagSet(fs, "item-lambda-exponent"), Alpha: !flagSet(fs, "alpha")}
	if tf.tune {
		if tf.method == "grid" {
			p, err = runGridTune(ctx, val, p, unit, enc, stderr)
		} else {
			pick, err = runSearch(ctx, val, []eval.Split{fold}, p, choice, unit, tf, df.stateKey(*holdout), enc, stderr)
			p = pick.params
		}
		if err != nil {
			return err
		}
	}
	fmt.Fprintf(stderr, "training ALS %+v\n", p)
	switch {
	case bm.off:
		als, err = eval.OfflineALS(ctx, split, p, unit, p.Threads)
	case bm.fixed != nil:
		als, err = eval.OfflineWithBlend(ctx, split, p, *bm.fixed, nil, 0, unit, p.Threads)
	case !tf.tune && (choice.HalfLife || choice.ItemLambdaExponent || choice.Alpha):
		var fit eval.DefaultsFit
		als, fit, err = eval.OfflineFitted(ctx, split, val, &fold, p, choice, eval.DefaultBlendGrid(), unit, p.Threads)
		if err == nil {
			printFits(stderr, "", &fit)
		}
	default:
		grid := eval.DefaultBlendGrid()
		if tf.tune {
			grid = eval.TunedBlendGrid()
		}
		als, err = eval.OfflineBlended(ctx, split, val, confirm, p, grid, unit, p.Threads)
		if err == nil && pick.reference != nil && als.Blend != nil {
			als, err = checkTuned(ctx, split, val, confirm, &pick, als, grid, unit, stderr)
		}
	}
	if err != nil {
		return err
	}
	if pick.trial != nil && als.Blend != nil {
		tf.save(stderr, df.stateKey(*holdout), eval.TuneState{Params: pick.params, Blend: *als.Blend, Validation: pick.trial.Metrics})
	}
	als.PeakRSSMB = peakRSSMB()
	if err := enc.Encode(als); err != nil {
		return err
	}
	if pop.Ranks != nil {
		cmp := eval.ComparePaired(als.Ranks, pop.Ranks)
		return enc.Encode(struct {
			Compare string `json:"compare"`
			eval.Paired
		}{"als-pop", cmp})
	}
	return nil
}

// blendMode is the parsed --blend flag.
type blendMode struct {
	off   bool
	fixed *model.Blend
}

func parseBlendFlag(s string) (blendMode, error) {
	switch s {
	case "fit":
		return blendMode{}, nil
	case "off":
		return blendMode{off: true}, nil
	}
	parts := strings.Split(s, ",")
	v := make([]float64, 3) // ρ, κ, η
	bad := len(parts) < 2 || len(parts) > 3
	for i, part := range parts[:min(len(parts), 3)] {
		x, err := strconv.ParseFloat(strings.TrimSpace(part), 64)
		bad = bad || err != nil || !(x >= 0) || math.IsInf(x, 0)
		v[i] = x
	}
	rho, kappa, eta := v[0], v[1], v[2]
	if bad || !(rho < 1) {
		return blendMode{}, fmt.Errorf("--blend %q: want fit, off, ρ,κ or ρ,κ,η with ρ in [0, 1), κ >= 0 and η >= 0", s)
	}
	b := model.DefaultBlend()
	b.Prior, b.Kappa, b.Neighbours = rho, kappa, eta
	return blendMode{fixed: &b}, nil
}

// tuneFlags are the hyperparameter search flags of eval offline.
type tuneFlags struct {
	tune   bool
	budget time.Duration
	method string
	state  string
	seed   uint64
	clock  string
}

func (t *tuneFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&t.tune, "tune", false, "pick k, λ, α, half-life, iterations and the popularity prior on the validation split, then report the test numbers of the pick")
	fs.DurationVar(&t.budget, "tune-budget", 120*time.Second, "wall-clock budget of --tune (Hyperband; 0: one full cycle of brackets)")
	fs.StringVar(&t.method, "tune-method", "hyperband", "search method of --tune: hyperband (within --tune-budget, warm-started from the previous pick) or grid (the full 540-point grid, for reference)")
	fs.StringVar(&t.state, "tune-state", "", "file keeping the pick between runs (default: in the user cache dir, one per dataset; off: none)")
	fs.Uint64Var(&t.seed, "tune-seed", 0, "seed of the search's sampling")
	fs.StringVar(&t.clock, "tune-clock", "wall", "what --tune-budget counts: wall (wall-clock time) or cpu (the process's CPU time divided by the cores it may use: the search an idle machine would run, on a shared one)")
}

// statePath returns the tune state file for a dataset key ("" when off).
func (t *tuneFlags) statePath(key string) string {
	switch t.state {
	case "off":
		return ""
	case "":
		dir, err := os.UserCacheDir()
		if err != nil {
			return ""
		}
		sum := sha256.Sum256([]byte(key))
		return filepath.Join(dir, "kairos", "tune", hex.EncodeToString(sum[:8])+".json")
	}
	return t.state
}

// save keeps the pick for the next search (a failure is reported, not
// fatal).
func (t *tuneFlags) save(stderr io.Writer, key string, st eval.TuneState) {
	path := t.statePath(key)
	if path == "" {
		return
	}
	st.Dataset, st.Created = key, time.Now().UTC()
	if err := st.Save(path); err != nil {
		fmt.Fprintf(stderr, "pick not kept: %v\n", err)
	}
}

// stateKey identifies the dataset and split for the tune state.
func (d *datasetFlags) stateKey(holdout string) string {
	src := d.synthetic
	if src == "" {
		src, _ = filepath.Abs(d.path)
	}
	return fmt.Sprintf("%s|%s|%s|%s|%s", src, d.format, d.weights, d.timeUnit, holdout)
}

// runSearch runs the budgeted search on val, warm-started from the kept
// pick and the defaults (their choices of choice fitted first: the
// reference), its best configurations raced on val and folds, and prints
// the pick as one JSON line.
func runSearch(ctx context.Context, val eval.Split, folds []eval.Split, base model.Params, choice eval.DefaultsChoice, unit time.Duration, tf tuneFlags, key string, enc *json.Encoder, stderr io.Writer) (searchPick, error) {
	starts := []model.Params{}
	warm := ""
	if path := tf.statePath(key); path != "" {
		st, err := eval.LoadTuneState(path)
		if err != nil {
			fmt.Fprintf(stderr, "previous pick ignored: %v\n", err)
		}
		if st != nil && st.Dataset == key {
			starts, warm = append(starts, st.Params), path
			fmt.Fprintf(stderr, "warm start from the previous pick (%s): %+v\n", path, st.Params)
		}
	}
	starts = append(starts, base)
	bar := eval.NewSearchBar(stderr, tf.budget)
	onTrial := func(t eval.SearchTrial) {
		bar.Trial(t)
		_ = enc.Encode(struct {
			Model string `json:"model"`
			Split string `json:"split"`
			eval.SearchTrial
		}{"als", "validation", t})
	}
	onBaseFit := func(f eval.DefaultsFit) { printFits(stderr, "reference: ", &f) }
	cfg := eval.SearchConfig{Base: base, Starts: starts, Budget: tf.budget, Seed: tf.seed, Unit: unit, OnTrial: onTrial, OnBaseFit: onBaseFit, Folds: folds}
	if choice.HalfLife || choice.ItemLambdaExponent || choice.Alpha {
		cfg.FitBase = &choice
	}
	if tf.clock == "cpu" {
		clock, err := cpuClock()
		if err != nil {
			return searchPick{params: base}, err
		}
		cfg.Now = clock
	}
	res, err := eval.Search(ctx, val, cfg)
	bar.Done()
	if errors.Is(err, eval.ErrTooFewUsers) {
		fmt.Fprintf(stderr, "not tuned: %v; the defaults\n", err)
		return searchPick{params: base}, enc.Encode(struct {
			Pick    string       `json:"pick"`
			Method  string       `json:"method"`
			Params  model.Params `json:"params"`
			Stopped string       `json:"stopped"`
			Reason  string       `json:"reason"`
		}{"tune", "hyperband", base, res.Stopped, err.Error()})
	}
	if err != nil {
		return searchPick{params: base}, err
	}
	best := res.Best
	var ref *referenceFit
	if f := res.BaseFit; f != nil {
		ref = &referenceFit{Params: f.Params, HalfLife: f.HalfLife, Exponent: f.Exponent, Alpha: f.Alpha}
	}
	if err := enc.Encode(struct {
		Pick       string       `json:"pick"`
		Method     string       `json:"method"`
		Params     model.Params `json:"params"`
		Blend      model.Blend  `json:"blend"`
		Validation eval.Metrics `json:"validation"`
		Configs    int          `json:"configs"`
		Brackets   int          `json:"brackets"`
		Stopped    string       `json:"stopped"`
		Confirmed  int          `json:"confirmed"`
		MeanNDCG10 float64      `json:"mean_ndcg10"`
		Trials     int          `json:"trials"`
		BudgetS    float64      `json:"budget_s"`
		SearchS    float64      `json:"search_s"`
		WarmFrom   string       `json:"warm_from,omitempty"`
		// Reference is the defaults' validation NDCG@10, VsReference the
		// pick's paired comparison with them, KeptReference whether the
		// defaults stayed the pick.
		Reference     float64      `json:"reference_ndcg10"`
		VsReference   *eval.Paired `json:"vs_reference,omitempty"`
		KeptReference bool         `json:"kept_reference,omitempty"`
		// ReferenceFit is how the defaults were fitted to be the
		// reference.
		ReferenceFit *referenceFit `json:"reference_fit,omitempty"`
	}{"tune", "hyperband", best.Params, best.Blend, best.Metrics, res.Configs, res.Brackets, res.Stopped, res.Confirmed, res.MeanNDCG10, len(res.Trials), tf.budget.Seconds(), res.Elapsed.Seconds(), warm,
		refNDCG(res), res.VsReference, res.KeptReference, ref}); err != nil {
		return searchPick{params: base}, err
	}
	fmt.Fprintf(stderr, "picked by validation NDCG@10 %.4f (mean over %d runs, seeds and validation splits, %.4f; the defaults %.4f) after %d trials of %d configurations in %s: %+v\n",
		best.NDCG10, res.Confirmed, res.MeanNDCG10, refNDCG(res), len(res.Trials), res.Configs, res.Elapsed.Round(time.Second), best.Params)
	if res.KeptReference {
		fmt.Fprintf(stderr, "the search's best did not beat the defaults on validation (paired t = %.2f): the defaults kept\n", res.VsReference.T)
	}
	out := searchPick{params: best.Params, trial: &eval.BlendTrial{Blend: best.Blend, Metrics: best.Metrics}}
	if !res.KeptReference {
		r := base
		if res.BaseFit != nil {
			r = res.BaseFit.Params
		}
		out.reference = &r
	}
	return out, nil
}

// searchPick is runSearch's outcome: the parameters to rank with, the
// pick's validation trial (nil: not tuned) and, when the search picked
// other parameters than the reference (the defaults as the untuned run
// fits them), the reference, which checkTuned holds the pick against.
type searchPick struct {
	params    model.Params
	trial     *eval.BlendTrial
	reference *model.Params
}

// checkTuned holds als, the tuned pick's result, against the reference on
// check, a split nothing was chosen on (eval.CompareTuned, each ranked
// with its blend fitted on val over grid): a pick worse than the
// reference gives way to it, and the result is then the reference's
// (pick.params and pick.trial too, so that it is not kept as the
// previous pick).
func checkTuned(ctx context.Context, test, val eval.Split, check *eval.Split, pick *searchPick, als eval.Result, grid eval.BlendGrid, unit time.Duration, stderr io.Writer) (eval.Result, error) {
	ref := *pick.reference
	refFit, err := eval.FitBlendOn(ctx, val, ref, grid, unit, ref.Threads)
	if err != nil {
		return als, err
	}
	c, err := eval.CompareTuned(ctx, *check, pick.params, *als.Blend, ref, refFit.Blend, unit, ref.Threads)
	if err != nil {
		return als, err
	}
	fmt.Fprintf(stderr, "tuned pick against the defaults on a split nothing was chosen on: NDCG@10 %.4f against %.4f (paired t = %.2f, %d users)\n", c.NDCG10, c.ReferenceNDCG10, c.T, c.Users)
	if !c.Kept {
		fmt.Fprintf(stderr, "the tuned pick is worse than the defaults there (t < %g): the defaults rank\n", eval.TunedWorseT)
		pick.params, pick.trial = ref, nil
		fmt.Fprintf(stderr, "training ALS %+v\n", ref)
		if als, err = eval.OfflineBlended(ctx, test, val, check, ref, grid, unit, ref.Threads); err != nil {
			return als, err
		}
	}
	als.TunedCheck = &c
	return als, nil
}

// printFits prints each choice of fit made, one line each after prefix.
func printFits(w io.Writer, prefix string, fit *eval.DefaultsFit) {
	for _, line := range fit.Lines() {
		fmt.Fprintf(w, "%s%s\n", prefix, line)
	}
}

// referenceFit is the pick line's account of the reference: the
// defaults with their fitted choices (nil: not made).
type referenceFit struct {
	Params   model.Params      `json:"params"`
	HalfLife *eval.HalfLifeFit `json:"half_life_fit,omitempty"`
	Exponent *eval.ExponentFit `json:"item_lambda_fit,omitempty"`
	Alpha    *eval.AlphaFit    `json:"alpha_fit,omitempty"`
}

// runGridTune searches the full grid (eval.Tune), printing every trial.
func runGridTune(ctx context.Context, val eval.Split, base model.Params, unit time.Duration, enc *json.Encoder, stderr io.Writer) (model.Params, error) {
	g := eval.DefaultGrid()
	n := len(g.Factors) * len(g.Lambda) * len(g.Alpha) * len(g.HalfLife) * len(g.Iterations)
	done := 0
	start := time.Now()
	_, best, err := eval.Tune(ctx, val, g, base, unit, base.Threads, func(t eval.Trial) {
		done++
		fmt.Fprintf(stderr, "\rtune %d/%d  best-so-far … elapsed %s", done, n, time.Since(start).Round(time.Second))
		_ = enc.Encode(struct {
			Model string `json:"model"`
			Split string `json:"split"`
			eval.Trial
		}{"als", "validation", t})
	})
	fmt.Fprintln(stderr)
	if err != nil {
		return base, err
	}
	fmt.Fprintf(stderr, "picked by validation NDCG@10 %.4f: %+v\n", best.NDCG10, best.Params)
	return best.Params, nil
}

// refNDCG is the validation NDCG@10 of the search's reference (0 when
// it was not evaluated).
func refNDCG(res eval.SearchResult) float64 {
	if res.Reference == nil {
		return 0
	}
	return res.Reference.NDCG10
}

// checkHoldoutData refuses data on which the holdout rule means nothing:
// the latest interaction of data whose interactions all have one time (no
// time column, or it was not read) would be the largest item id.
func checkHoldoutData(ds *eval.Dataset, rule eval.HoldoutRule) error {
	if rule != eval.HoldoutLatest || len(ds.Interactions) < 2 {
		return nil
	}
	t := ds.Interactions[0].Time
	for _, in := range ds.Interactions[1:] {
		if in.Time != t {
			return nil
		}
	}
	return fmt.Errorf("every interaction has the same time (%d): the data has no timestamps (or its time column was not read), so --holdout latest would hold out each user's largest item id; use --holdout random (PROTOCOL.md, data without timestamps)", t)
}

// evaluable is the number of users of split with a held-out item.
func evaluable(split eval.Split) int {
	n := 0
	for _, h := range split.Held {
		if h >= 0 {
			n++
		}
	}
	return n
}
