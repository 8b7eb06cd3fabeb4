package eval

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/kairoshq/kairos/model"
)

// Hyperparameter search within a wall-clock budget.
//
// Search runs Hyperband (Li et al. 2018): brackets of successive halving
// (Jamieson & Talwalkar 2016) with ALS sweeps as the resource. A bracket
// trains n configurations for r sweeps, scores each on the validation
// split, keeps the best 1/η and trains those further (model.Continue: the
// sweeps already done are not repeated), until one configuration reaches
// MaxIterations; brackets differ in how many configurations they start
// and with how few sweeps, which hedges against a ranking after few sweeps
// that does not hold after many. Brackets repeat, most aggressive first,
// until the budget is spent; a training step that the measured speed says
// would overrun the budget is not started.
//
// The score of a trained model is the validation NDCG@10 of its best
// popularity prior (FitBlend over a coarse grid), so that the search picks
// the hyperparameters of the ranking actually served. Before the brackets
// the warm starts (the previous pick, then the reference: the base
// configuration, i.e. the defaults) are trained at full fidelity, at their
// own sweeps and continued to MaxIterations; configurations are then drawn
// half from the whole space and half near the best so far (λ and α moved
// by a log-normal factor, k and the half-life to a neighbouring value now
// and then), so a search warm-started from a good pick spends its budget
// refining it.
//
// Only full-fidelity scores (MaxIterations, or a warm start's own sweeps)
// compete for the pick: a ranking after few sweeps decides what is
// trained further, not what is served. The best of many noisy validation
// scores is mostly the luckiest: on a few hundred users one held-out item
// each, the spread of one configuration over seeds is as large as the
// gaps between good configurations. So the search ends with a race
// (successive halving on the noise rather than on sweeps): the best
// configurations and the reference are trained again, round after round,
// with another seed and on the next validation split (SearchConfig.Folds:
// each user's next held-out interaction), the worse half leaving after
// each round, and the pick is the best mean per user over its runs — two
// held-out interactions per user and several seeds instead of one of
// each. Finally the pick must beat the reference on validation by a
// paired per-user t of at least MinT, else the reference is kept: a
// search never hands back a configuration that is not clearly better on
// validation than the one it started from. With SearchConfig.FitBase the
// reference is the defaults fitted as an untuned run fits them (half-life,
// ν and α on validation, FitDefaults), so that tuning never serves what
// validation says is worse than not tuning.

// Space is the hyperparameter space Search draws from.
type Space struct {
	// Factors are the choices of k.
	Factors []int
	// Lambda and Alpha are [low, high] ranges, sampled log-uniformly.
	Lambda, Alpha [2]float64
	// HalfLife are the choices of the decay half-life (0: no decay).
	HalfLife []time.Duration
	// ItemLambdaExponent are the choices of ν, the popularity scaling of
	// the items' λ (model.Params.ItemLambdaExponent); none means 0 only.
	ItemLambdaExponent []float64
}

// DefaultSpace is the space `kairos eval offline --tune` and `kairos
// retrain --tune` search.
func DefaultSpace() Space {
	return Space{
		Factors:  []int{16, 32, 64, 128},
		Lambda:   [2]float64{1, 300},
		Alpha:    [2]float64{1, 100},
		HalfLife: []time.Duration{0, time.Minute, 10 * time.Minute, time.Hour, 24 * time.Hour, 7 * 24 * time.Hour},
		// ν: 1 gains 18 % NDCG@10 on a sparse log and 32 % on lastfm-2k,
		// and loses 40 % on ml-latest-small: the data decides.
		ItemLambdaExponent: []float64{0, 0.25, 0.5, 0.75, 1, 1.25},
	}
}

// Validate reports an empty or out-of-range space.
func (s Space) Validate() error {
	if len(s.Factors) == 0 || len(s.HalfLife) == 0 {
		return fmt.Errorf("eval: search space needs factors and half-lives")
	}
	for _, r := range [][2]float64{s.Lambda, s.Alpha} {
		if !(r[0] > 0 && r[1] >= r[0]) || math.IsInf(r[1], 0) {
			return fmt.Errorf("eval: search range %v must be finite with 0 < low <= high", r)
		}
	}
	for _, nu := range s.ItemLambdaExponent {
		if !(nu >= 0 && nu <= model.MaxItemLambdaExponent) {
			return fmt.Errorf("eval: search: item λ exponent %v outside [0, %v]", nu, model.MaxItemLambdaExponent)
		}
	}
	if !slices.IsSorted(s.ItemLambdaExponent) {
		return fmt.Errorf("eval: search: item λ exponents %v must be ascending", s.ItemLambdaExponent)
	}
	return nil
}

// SearchConfig configures Search.
type SearchConfig struct {
	// Space is searched (default DefaultSpace). Without distinct times in
	// the data the half-life is fixed at 0.
	Space Space
	// Base supplies the fields not searched: solver, CG steps, seed,
	// initial scale, threads (default model.DefaultParams).
	Base model.Params
	// Starts are evaluated first, in order (e.g. the previous pick, then
	// the defaults); their iteration counts are ignored.
	Starts []model.Params
	// Budget bounds the wall time (0: one Hyperband cycle).
	Budget time.Duration
	// MinIterations, MaxIterations and Eta shape the brackets (defaults
	// 6, 18, 3: rungs of 6 and 18 sweeps; after 2 sweeps every
	// configuration scores about the same and the ranking says little).
	MinIterations, MaxIterations, Eta int
	// Blends is the prior's grid per evaluation (default CoarseBlendGrid
	// with TunedRecallFloor).
	Blends BlendGrid
	// MaxUsers bounds the validation users per evaluation (an even
	// spread; default DefaultFitUsers, the bound of the reference's fit;
	// every configuration is scored on the same users). Fewer users buy
	// more configurations but noisier scores: on the planted sparse log
	// (7,284 validation users) a search over 3,000 of them handed back
	// configurations that beat the fitted defaults on those users and lost
	// to them on test (NDCG@10 0.0616 and 0.0623 against 0.0631, two
	// seeds); over all of them it kept the defaults in three of four.
	MaxUsers int
	// MinUsers is the least number of validation users to search on
	// (default 100): below it the best of many configurations is mostly
	// the luckiest, and Search returns ErrTooFewUsers.
	MinUsers int
	// Seed seeds the sampling.
	Seed uint64
	// Unit converts the data's integer times.
	Unit TimeUnit
	// Matrix, when set, builds the training matrix of val for a
	// half-life instead of val.Matrix (a retrain aggregates its events
	// for every half-life of the space in one pass).
	Matrix func(halfLife time.Duration) (*model.Matrix, error)
	// Confirm is the number of best configurations raced at the end
	// (default 5; Confirm < 2 turns the race off): the validation
	// differences between good configurations are often smaller than
	// the spread of one configuration over seeds, and the best of many
	// noisy scores is mostly the luckiest. In each of ConfirmSeeds rounds
	// (default 3) every configuration still in the race is trained again
	// with another seed of the initial factors, on the next validation
	// split (the splits of Folds in turn with the main one), and the
	// worse half by mean over their runs leaves the race (successive
	// halving on the noise: the budget goes to the candidates still
	// close). The pick is the best mean. The reference runs every
	// round, so that MinT compares means over the same seeds and splits.
	// The search keeps the estimated time of the race for the end when
	// that is at most ConfirmShare of the budget (default 0.4), else it
	// searches the whole budget and races only if time is left.
	Confirm, ConfirmSeeds int
	ConfirmShare          float64
	// Folds are further validation splits of the same users and items
	// (e.g. Holdout.Fold: each user's next held-out interaction, the
	// main split's held-out one fitted), scored in the race's rounds:
	// more held-out interactions per user than one split has. They are
	// never searched on, only used to tell the best configurations
	// apart. Users without a held-out item in a fold are left out of its
	// runs.
	Folds []Split
	// MinT is the paired t over validation users by which the pick must
	// beat the reference (Base's searched fields at Base's sweeps) to
	// replace it (default 0: the pick's mean over seeds must beat the
	// reference's; negative: any pick replaces it). On a few hundred
	// users a real gain of 0.002–0.004 NDCG@10 is below one standard
	// error of the paired difference, so a larger MinT keeps the
	// defaults where a search measurably helps on test (MovieLens
	// latest-small); a retrain can ask for more.
	MinT float64
	// FitBase, when set, makes the reference the defaults as an untuned
	// run would serve them: before searching, FitDefaults chooses Base's
	// fields of FitBase on val (over DefaultBlendGrid with Blends' recall
	// floor), within the budget, and the fitted parameters replace Base.
	// The pick must then beat what not tuning gives, not the shipped
	// numbers unfitted, and a budget spent on the fit hands back the
	// fitted defaults.
	FitBase *DefaultsChoice
	// OnBaseFit, when set, sees the reference's fit (FitBase) as soon as
	// it ends, before the first trial.
	OnBaseFit func(DefaultsFit)
	// OnTrial, when set, sees every evaluation.
	OnTrial func(SearchTrial)
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

func (c SearchConfig) withDefaults() SearchConfig {
	if c.Space.Factors == nil {
		c.Space = DefaultSpace()
	}
	if c.Base.Factors == 0 {
		c.Base = model.DefaultParams()
	}
	if c.MinIterations <= 0 {
		c.MinIterations = 6
	}
	if c.MaxIterations <= 0 {
		c.MaxIterations = 18
	}
	if c.Eta < 2 {
		c.Eta = 3
	}
	if c.Blends.Priors == nil {
		c.Blends = CoarseBlendGrid()
		c.Blends.RecallFloor = TunedRecallFloor
	}
	if c.MaxUsers == 0 {
		c.MaxUsers = DefaultFitUsers
	}
	if c.MinUsers == 0 {
		c.MinUsers = 100
	}
	if c.Confirm == 0 {
		c.Confirm = 5
	}
	if c.ConfirmSeeds == 0 {
		c.ConfirmSeeds = 3
	}
	if c.ConfirmShare == 0 {
		c.ConfirmShare = 0.4
	}
	if c.Unit == 0 {
		c.Unit = time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// SearchTrial is one evaluated (configuration, sweeps) of a search.
type SearchTrial struct {
	// Params are the configuration, Iterations the sweeps trained.
	Params model.Params `json:"params"`
	// Blend is the best prior for it on validation.
	Blend model.Blend `json:"blend"`
	// Metrics are the validation metrics with that blend.
	Metrics
	Bracket  int     `json:"bracket"`
	Rung     int     `json:"rung"`
	ElapsedS float64 `json:"elapsed_s"`
	// Confirm marks a confirmation run (another seed of a best
	// configuration), Fold the validation split it was scored on (0: the
	// main one, j: SearchConfig.Folds[j-1]).
	Confirm bool `json:"confirm,omitempty"`
	Fold    int  `json:"fold,omitempty"`
	// Full marks a full-fidelity score (MaxIterations or a warm start's
	// own sweeps), the only ones that compete for the pick.
	Full bool `json:"full,omitempty"`
}

// SearchResult is the outcome of Search.
type SearchResult struct {
	// Best is the trial with the highest validation NDCG@10.
	Best SearchTrial `json:"best"`
	// Trials are every evaluation in order.
	Trials []SearchTrial `json:"-"`
	// Configs is the number of configurations tried, Brackets the number
	// of brackets run (the last maybe cut short).
	Configs  int `json:"configs"`
	Brackets int `json:"brackets"`
	// Elapsed is the search's wall time.
	Elapsed time.Duration `json:"-"`
	// Stopped says why the search ended: "budget" or "complete".
	Stopped string `json:"stopped"`
	// Confirmed is the number of runs (seeds and validation splits) the
	// pick was scored with (1: no confirmation), MeanNDCG10 its mean
	// validation NDCG@10 over them (per user, then over users).
	Confirmed  int     `json:"confirmed"`
	MeanNDCG10 float64 `json:"mean_ndcg10"`
	// Reference is the reference configuration's trial (Base at its own
	// sweeps), VsReference the paired comparison of the pick with it on
	// validation (NDCG@10 per user, averaged over the seeds each was
	// scored with), and KeptReference says the reference stayed the pick
	// because the search's best did not beat it by MinT.
	Reference     *SearchTrial `json:"reference,omitempty"`
	VsReference   *Paired      `json:"vs_reference,omitempty"`
	KeptReference bool         `json:"kept_reference,omitempty"`
	// BaseFit is the fit of the reference (SearchConfig.FitBase; nil
	// when not asked or not finished).
	BaseFit *DefaultsFit `json:"-"`
}

// ErrTooFewUsers is returned by Search when the validation split has too
// few users to compare configurations.
var ErrTooFewUsers = errors.New("eval: too few validation users to search")

// Search picks ALS hyperparameters and a popularity prior by validation
// NDCG@10 within cfg.Budget (see above). It returns an error only when
// nothing could be evaluated (or ctx ended first).
func Search(ctx context.Context, val Split, cfg SearchConfig) (SearchResult, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Space.Validate(); err != nil {
		return SearchResult{}, err
	}
	if err := cfg.Blends.Validate(); err != nil {
		return SearchResult{}, err
	}
	if cfg.MaxIterations < cfg.MinIterations {
		return SearchResult{}, fmt.Errorf("eval: search: max iterations %d < min %d", cfg.MaxIterations, cfg.MinIterations)
	}
	for j, f := range cfg.Folds {
		if f.Users != val.Users || f.Items != val.Items || len(f.Held) != val.Users {
			return SearchResult{}, fmt.Errorf("eval: search: fold %d has %d users and %d items, the validation split %d and %d", j+1, f.Users, f.Items, val.Users, val.Items)
		}
	}
	if n := len(heldUsers(val, 0)); n < cfg.MinUsers {
		return SearchResult{Stopped: "too few users"}, fmt.Errorf("%w: %d validation users, %d needed", ErrTooFewUsers, n, cfg.MinUsers)
	}
	if !distinctTimes(val) {
		cfg.Space.HalfLife = []time.Duration{0}
	}
	s := &searcher{cfg: cfg, val: val, start: cfg.Now(), rng: rand.New(rand.NewPCG(cfg.Seed, 0x5345_4152)), // "SEAR"
		mats: map[matKey]*model.Matrix{}, speed: map[int]float64{}, best: -1, ref: -1, runs: map[int][]int{}}
	s.users = heldUsers(val, cfg.MaxUsers)
	res := SearchResult{Stopped: "complete"}
	if cfg.FitBase != nil {
		fit, err := s.fitBase(ctx)
		if err != nil {
			return s.result(res), err
		}
		s.unfitted, s.baseFit, s.cfg.Base = s.cfg.Base, &fit, fit.Params
		if cfg.OnBaseFit != nil {
			cfg.OnBaseFit(fit)
		}
	}
	s.starts = s.warmStarts()
	smax := 0
	for r := cfg.MaxIterations; r/cfg.Eta >= cfg.MinIterations; r /= cfg.Eta {
		smax++
	}
	stop, err := s.warm(ctx)
	if err != nil {
		return s.result(res), err
	}
	if stop {
		res.Stopped = "budget"
	}
search:
	for !stop {
		for sb := smax; sb >= 0; sb-- {
			res.Brackets++
			stop, err := s.bracket(ctx, res.Brackets, sb, smax)
			if err != nil {
				return s.result(res), err
			}
			if stop {
				res.Stopped = "budget"
				break search
			}
		}
		if cfg.Budget <= 0 {
			break
		}
	}
	if s.best < 0 && s.baseFit != nil {
		s.keepFit = true // the fit spent the budget
		return s.result(res), nil
	}
	if err := s.errIfEmpty(); err != nil {
		return s.result(res), err
	}
	s.confirming = true
	res.Confirmed, res.MeanNDCG10 = 1, s.trials[s.best].NDCG10
	if err := s.confirm(ctx, &res); err != nil {
		return s.result(res), err
	}
	s.checkReference(&res)
	return s.result(res), nil
}

// fitBase fits the defaults' choices of cfg.FitBase to Base on the
// validation split (FitDefaults), training on the search's matrices and
// timing the sweeps for its budget.
func (s *searcher) fitBase(ctx context.Context) (DefaultsFit, error) {
	grid := DefaultBlendGrid()
	grid.RecallFloor = s.cfg.Blends.RecallFloor
	train := func(q model.Params) (*model.Model, error) {
		m, err := s.matrix(0, q.HalfLife)
		if err != nil {
			return nil, err
		}
		start := s.cfg.Now()
		mod, err := model.Train(ctx, m, q, nil)
		if err == nil && q.Iterations > 0 {
			s.speed[q.Factors] = s.cfg.Now().Sub(start).Seconds() / float64(q.Iterations)
		}
		return mod, err
	}
	choice := *s.cfg.FitBase
	// A choice the space would undo is not fitted: one half-life (no
	// distinct times), or no ν = FittedItemLambdaExponent among its ν.
	choice.HalfLife = choice.HalfLife && len(s.cfg.Space.HalfLife) > 1
	choice.ItemLambdaExponent = choice.ItemLambdaExponent && slices.Contains(s.cfg.Space.itemLambdaExponents(), FittedItemLambdaExponent)
	fit, err := FitDefaults(ctx, s.val, s.cfg.Base, choice, grid, s.cfg.Base.Threads, train)
	if err != nil {
		return fit, fmt.Errorf("eval: search: fitting the defaults: %w", err)
	}
	return fit, nil
}

// warmStarts returns the starts (their searched fields over Base's
// others; not Base as it was before its fit), then Base with ν =
// FittedItemLambdaExponent when the space has it and Base was not fitted
// (the other choice of the defaults' fit), the reference last: Base
// itself, unless a start equals it.
func (s *searcher) warmStarts() []model.Params {
	var out []model.Params
	seen := map[model.Params]bool{}
	if s.baseFit != nil {
		seen[configKey(s.fitSpace(s.withBase(s.unfitted, s.unfitted.Iterations)))] = true
		delete(seen, configKey(s.fitSpace(s.withBase(s.cfg.Base, s.cfg.Base.Iterations))))
	}
	starts := slices.Clone(s.cfg.Starts)
	if scaled := s.cfg.Base; s.cfg.FitBase == nil && slices.Contains(s.cfg.Space.ItemLambdaExponent, FittedItemLambdaExponent) {
		scaled.ItemLambdaExponent = FittedItemLambdaExponent
		starts = append(starts, scaled)
	}
	for _, p := range append(starts, s.cfg.Base) {
		p = s.fitSpace(s.withBase(p, p.Iterations))
		if key := configKey(p); !seen[key] {
			seen[key] = true
			out = append(out, p)
		}
	}
	return out
}

// fitSpace moves a start into the space: the half-life when the space
// fixes it, k when the start's is not a choice (e.g. fixed by running
// engines), the sweeps into [MinIterations, MaxIterations].
func (s *searcher) fitSpace(p model.Params) model.Params {
	if len(s.cfg.Space.HalfLife) == 1 {
		p.HalfLife = s.cfg.Space.HalfLife[0]
	}
	if !slices.Contains(s.cfg.Space.Factors, p.Factors) {
		p.Factors = s.cfg.Space.Factors[0]
	}
	if nus := s.cfg.Space.itemLambdaExponents(); !slices.Contains(nus, p.ItemLambdaExponent) {
		p.ItemLambdaExponent = nus[0]
	}
	if p.Iterations <= 0 {
		p.Iterations = s.cfg.MaxIterations
	}
	p.Iterations = min(max(p.Iterations, s.cfg.MinIterations), s.cfg.MaxIterations)
	return p
}

// configKey is p without the fields that do not change the model's
// quality.
func configKey(p model.Params) model.Params {
	p.Seed, p.Threads = 0, 0
	return p
}

// preferScaledReference makes trial j (the base with ν =
// FittedItemLambdaExponent, -1: not trained) the reference when it beats
// the base on validation by a paired t of FallbackMinT: the rule by which
// the defaults fit ν (FitItemLambdaExponent), so that the search compares
// its pick with the defaults as they would be served untuned.
func (s *searcher) preferScaledReference(j int) {
	if j < 0 || s.ref < 0 || s.cfg.FitBase != nil {
		return
	}
	if cmp := ComparePairedValues(s.meanUser(j), s.meanUser(s.ref)); cmp.T >= FallbackMinT {
		s.ref = j
	}
}

// warm trains every start at full fidelity: at its own sweeps, then
// continued to MaxIterations. The reference's first trial is s.ref: the
// base's, or the base with ν = 1's when that is clearly better
// (preferScaledReference).
func (s *searcher) warm(ctx context.Context) (stop bool, err error) {
	refKey := configKey(s.fitSpace(s.withBase(s.cfg.Base, s.cfg.Base.Iterations)))
	scaledKey, scaled := refKey, -1
	scaledKey.ItemLambdaExponent = FittedItemLambdaExponent
	defer func() { s.preferScaledReference(scaled) }()
	for _, p := range s.starts {
		c := &running{p: p}
		for _, r := range []int{p.Iterations, s.cfg.MaxIterations} {
			if r == itersOf(c.mod) {
				continue
			}
			if s.overBudget(p.Factors, r-itersOf(c.mod)) {
				return true, nil
			}
			if err := s.train(ctx, c, r); err != nil {
				return false, err
			}
			if _, err := s.evaluateFull(ctx, c, 0, 0, false, true); err != nil {
				return false, err
			}
			if r == p.Iterations && configKey(p) == refKey {
				s.ref = len(s.trials) - 1
			}
			if r == p.Iterations && configKey(p) == scaledKey && scaledKey != refKey {
				scaled = len(s.trials) - 1
			}
		}
		s.nconf++
	}
	s.starts = nil
	return false, nil
}

// checkReference keeps the reference as the pick unless the pick beats
// it on validation by a paired t of at least MinT.
func (s *searcher) checkReference(res *SearchResult) {
	if s.ref < 0 {
		// The budget ended before the reference was trained: nothing
		// measured the pick against the fitted defaults, which stay.
		s.keepFit = s.baseFit != nil
		return
	}
	ref := s.trials[s.ref]
	res.Reference = &ref
	if s.best == s.ref || configKey(s.trials[s.best].Params) == configKey(ref.Params) {
		return
	}
	cmp := ComparePairedValues(s.meanUser(s.best), s.meanUser(s.ref))
	res.VsReference = &cmp
	if s.cfg.MinT >= 0 && (cmp.T < s.cfg.MinT || cmp.NDCGDiff <= 0) {
		s.best, res.KeptReference = s.ref, true
		res.Confirmed, res.MeanNDCG10 = len(s.runsOf(s.ref)), mean32(s.meanUser(s.ref))
	}
}

// runsOf returns the trials of j's configuration and sweeps: j and its
// confirmation runs.
func (s *searcher) runsOf(j int) []int {
	if r, ok := s.runs[j]; ok {
		return r
	}
	return []int{j}
}

// meanUser returns the per-user validation NDCG@10 of trial j, averaged
// over its runs that score the user (NaN: none does).
func (s *searcher) meanUser(j int) []float64 {
	out := make([]float64, len(s.user[j]))
	n := make([]int, len(out))
	for _, r := range s.runsOf(j) {
		for u, v := range s.user[r] {
			if !math.IsNaN(float64(v)) {
				out[u] += float64(v)
				n[u]++
			}
		}
	}
	for u := range out {
		if n[u] == 0 {
			out[u] = math.NaN()
			continue
		}
		out[u] /= float64(n[u])
	}
	return out
}

// mean32 is the mean of v's numbers (NaN skipped).
func mean32(v []float64) float64 {
	var sum float64
	n := 0
	for _, x := range v {
		if !math.IsNaN(x) {
			sum += x
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

// confirm races the best configurations and the reference (see
// SearchConfig.Confirm) and makes the best mean the pick.
func (s *searcher) confirm(ctx context.Context, res *SearchResult) error {
	racers, ref := s.raceEntrants()
	if len(racers)+len(ref) < 2 || s.cfg.Confirm < 2 {
		return nil
	}
	runs := map[int][]int{}
	for _, j := range append(slices.Clone(racers), ref...) {
		runs[j] = []int{j}
	}
	defer func() {
		// Compare over the runs every remaining entrant has (a round cut
		// short by the budget counts for none).
		n := math.MaxInt
		for _, j := range append(slices.Clone(racers), ref...) {
			n = min(n, len(runs[j]))
		}
		for _, j := range append(slices.Clone(racers), ref...) {
			s.runs[j] = runs[j][:n]
		}
		if len(racers) == 0 {
			return
		}
		best := slices.MaxFunc(racers, func(a, b int) int { return cmp.Compare(s.meanOf(a), s.meanOf(b)) })
		s.best, res.Confirmed, res.MeanNDCG10 = best, n, s.meanOf(best)
	}()
	folds := 1 + len(s.cfg.Folds)
	for round := 1; round <= s.cfg.ConfirmSeeds; round++ {
		for _, j := range append(slices.Clone(racers), ref...) {
			p := s.trials[j].Params
			p.Seed = s.cfg.Base.Seed + uint64(round)
			if s.overBudget(p.Factors, p.Iterations) {
				return nil
			}
			r := &running{p: p, fold: round % folds}
			if err := s.train(ctx, r, p.Iterations); err != nil {
				return err
			}
			if _, err := s.evaluateFull(ctx, r, 0, -1, true, true); err != nil {
				return err
			}
			runs[j] = append(runs[j], len(s.trials)-1)
		}
		for _, j := range racers {
			s.runs[j] = runs[j]
		}
		racers = raceCut(racers, s.meanOf)
	}
	return nil
}

// raceEntrants returns the entrants of the race: the Confirm best
// distinct configurations other than the reference, best first, and the
// reference (none when not evaluated).
func (s *searcher) raceEntrants() (racers, ref []int) {
	for _, j := range s.topDistinct(s.cfg.Confirm + 1) {
		if s.ref < 0 || configKey(s.trials[j].Params) != configKey(s.trials[s.ref].Params) {
			racers = append(racers, j)
		}
	}
	if len(racers) > s.cfg.Confirm {
		racers = racers[:s.cfg.Confirm]
	}
	if s.ref >= 0 {
		ref = []int{s.ref}
	}
	return racers, ref
}

// raceCut keeps the better half (rounded up) of the racers by score,
// best first.
func raceCut(racers []int, score func(int) float64) []int {
	out := slices.Clone(racers)
	slices.SortStableFunc(out, func(a, b int) int { return cmp.Compare(score(b), score(a)) })
	return out[:(len(out)+1)/2]
}

// meanOf is trial j's validation NDCG@10 over its runs: per user, then
// over users.
func (s *searcher) meanOf(j int) float64 { return mean32(s.meanUser(j)) }

// searcher is the state of one Search.
type searcher struct {
	cfg   SearchConfig
	val   Split
	start time.Time
	rng   *rand.Rand
	mats  map[matKey]*model.Matrix
	// users are the validation users scored (heldUsers of the main
	// split); the per-user values of every trial are in their order.
	users  []int
	speed  map[int]float64 // seconds per sweep by k
	evalS  float64         // seconds per evaluation (last)
	starts []model.Params
	trials []SearchTrial
	// user holds each full-fidelity trial's per-user NDCG@10 (nil for
	// the others; NaN for a user without a held-out item in the trial's
	// split); runs maps a confirmed trial to its runs.
	user  [][]float32
	runs  map[int][]int
	best  int // the best full-fidelity trial (-1: none yet)
	ref   int // the reference's trial (-1: not evaluated)
	nconf int
	// baseFit is the reference's fit (SearchConfig.FitBase), keepFit
	// set when the search ended without measuring a pick against it.
	baseFit *DefaultsFit
	keepFit bool
	// unfitted is Base before the fit: a warm start equal to it is not
	// trained (the fit has measured it).
	unfitted model.Params
	// confirming is set once the search proper has ended.
	confirming bool
}

func (s *searcher) result(r SearchResult) SearchResult {
	r.Trials, r.Configs, r.Elapsed, r.BaseFit = s.trials, s.nconf, s.cfg.Now().Sub(s.start), s.baseFit
	if s.best >= 0 {
		r.Best = s.trials[s.best]
	}
	if s.keepFit {
		// The fitted defaults with their fit's figures (validation users
		// and blend grid of FitDefaults).
		fit := s.baseFit
		r.Best = SearchTrial{Params: fit.Params, Blend: fit.Pick.Blend, Metrics: fit.Pick.Metrics, Full: true}
		r.Reference, r.KeptReference, r.Confirmed, r.MeanNDCG10 = &r.Best, true, 1, fit.Pick.NDCG10
	}
	return r
}

func (s *searcher) errIfEmpty() error {
	if s.best < 0 {
		return fmt.Errorf("eval: search: the budget of %s allowed no full evaluation", s.cfg.Budget)
	}
	return nil
}

// running is a configuration being trained in a bracket.
type running struct {
	p     model.Params
	mod   *model.Model
	score float64
	// fold is the validation split trained and scored on (0: the main
	// one, j: SearchConfig.Folds[j-1]).
	fold int
}

// bracket runs one successive-halving bracket; stop reports the budget
// spent.
func (s *searcher) bracket(ctx context.Context, id, sb, smax int) (stop bool, err error) {
	eta := s.cfg.Eta
	n := int(math.Ceil(float64(smax+1) / float64(sb+1) * math.Pow(float64(eta), float64(sb))))
	r := s.cfg.MaxIterations
	for range sb {
		r /= eta
	}
	conf := make([]*running, n)
	for j := range conf {
		conf[j] = &running{p: s.next()}
	}
	if r >= s.cfg.MaxIterations {
		// A bracket of full-fidelity trials only.
		for _, c := range conf {
			if s.overBudget(c.p.Factors, r) {
				return true, nil
			}
			if err := s.train(ctx, c, r); err != nil {
				return false, err
			}
			if _, err := s.evaluateFull(ctx, c, id, 0, false, true); err != nil {
				return false, err
			}
			s.nconf++
		}
		return false, nil
	}
	for rung := 0; ; rung++ {
		for _, c := range conf {
			if s.overBudget(c.p.Factors, r-itersOf(c.mod)) {
				return true, nil
			}
			if err := s.train(ctx, c, r); err != nil {
				return false, err
			}
			t, err := s.evaluateFull(ctx, c, id, rung, false, r >= s.cfg.MaxIterations)
			if err != nil {
				return false, err
			}
			c.score = t.NDCG10
			if rung == 0 {
				s.nconf++
			}
		}
		if r >= s.cfg.MaxIterations || len(conf) <= 1 {
			return false, nil
		}
		slices.SortStableFunc(conf, func(a, b *running) int { return cmp.Compare(b.score, a.score) })
		conf = conf[:max(1, len(conf)/eta)]
		r = min(r*eta, s.cfg.MaxIterations)
	}
}

func itersOf(m *model.Model) int {
	if m == nil {
		return 0
	}
	return m.Params.Iterations
}

// limit is the wall time the current phase may end at: the budget, less
// the estimated time of confirming the best configurations so far while
// searching — unless that estimate exceeds ConfirmShare of the budget:
// then the search uses all of it, and confirms only if time is left.
func (s *searcher) limit() time.Duration {
	if s.confirming || s.cfg.Confirm < 2 {
		return s.cfg.Budget
	}
	cost := s.confirmCost()
	if cost > s.cfg.ConfirmShare*s.cfg.Budget.Seconds() {
		return s.cfg.Budget
	}
	return s.cfg.Budget - time.Duration(cost*float64(time.Second))
}

// confirmCost estimates the seconds of racing the best distinct
// configurations so far: each round trains every one still in the race
// and the reference, half the racers leaving after each.
func (s *searcher) confirmCost() float64 {
	racers, ref := s.raceEntrants()
	if len(racers)+len(ref) < 2 {
		return 0
	}
	run := func(j int) float64 {
		p := s.trials[j].Params
		return float64(p.Iterations)*s.sweepSeconds(p.Factors) + s.evalS
	}
	var perRacer, refCost float64
	for _, j := range racers {
		perRacer += run(j) / float64(len(racers))
	}
	for _, j := range ref {
		refCost += run(j)
	}
	var cost float64
	n := len(racers)
	for range s.cfg.ConfirmSeeds {
		cost += float64(n)*perRacer + refCost
		n = (n + 1) / 2
	}
	return cost
}

// topDistinct returns the n best trials (not confirmations) of distinct
// configurations, best first.
func (s *searcher) topDistinct(n int) []int {
	order := make([]int, 0, len(s.trials))
	for j, t := range s.trials {
		if !t.Confirm && t.Full {
			order = append(order, j)
		}
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(s.trials[b].NDCG10, s.trials[a].NDCG10) })
	var top []int
	seen := map[model.Params]bool{}
	for _, j := range order {
		p := configKey(s.trials[j].Params)
		if seen[p] {
			continue
		}
		seen[p] = true
		if top = append(top, j); len(top) == n {
			break
		}
	}
	return top
}

// overBudget reports whether sweeps more sweeps with k factors and an
// evaluation would end after the current limit (never before the first
// trial).
func (s *searcher) overBudget(k, sweeps int) bool {
	if s.cfg.Budget <= 0 || len(s.trials) == 0 && s.baseFit == nil {
		return false // at least one evaluation, unless the fitted defaults stand in
	}
	left := s.limit().Seconds() - s.cfg.Now().Sub(s.start).Seconds()
	return left < float64(sweeps)*s.sweepSeconds(k)+s.evalS
}

// sweepSeconds estimates the time of one sweep with k factors from the
// sweeps measured so far (cost grows about as k^1.5 with CG).
func (s *searcher) sweepSeconds(k int) float64 {
	if t, ok := s.speed[k]; ok {
		return t
	}
	best := 0.0
	for k0, t := range s.speed {
		best = max(best, t*math.Pow(float64(k)/float64(k0), 1.5))
	}
	return best
}

// next returns the next configuration to try: half near the best so far,
// a quarter near the reference (the defaults: wider steps), a quarter
// drawn from the whole space. A uniform draw mostly lands where nothing
// is learnt (on MovieLens latest-small five of the six half-lives score
// 0.02–0.04 against 0.05 for the defaults'), so most draws refine what is
// known to work while the rest keep the whole space in reach.
func (s *searcher) next() model.Params {
	switch x := s.rng.Float64(); {
	case s.best >= 0 && x < 0.5:
		return s.near(s.trials[s.best].Params, 0.5)
	case s.ref >= 0 && x < 0.75:
		return s.near(s.trials[s.ref].Params, 1)
	}
	sp := s.cfg.Space
	p := s.cfg.Base
	p.Factors = sp.Factors[s.rng.IntN(len(sp.Factors))]
	p.Lambda = logUniform(s.rng, sp.Lambda)
	p.Alpha = logUniform(s.rng, sp.Alpha)
	p.HalfLife = sp.HalfLife[s.rng.IntN(len(sp.HalfLife))]
	p.ItemLambdaExponent = sp.itemLambdaExponents()[s.rng.IntN(len(sp.itemLambdaExponents()))]
	return p
}

// itemLambdaExponents returns the choices of ν, {0} when none are given.
func (s Space) itemLambdaExponents() []float64 {
	if len(s.ItemLambdaExponent) == 0 {
		return []float64{0}
	}
	return s.ItemLambdaExponent
}

// withBase returns p's searched fields and the given sweeps over the
// base's others.
func (s *searcher) withBase(p model.Params, iterations int) model.Params {
	b := s.cfg.Base
	b.Factors, b.Lambda, b.Alpha, b.HalfLife, b.Iterations = p.Factors, p.Lambda, p.Alpha, p.HalfLife, iterations
	b.ItemLambdaExponent = p.ItemLambdaExponent
	return b
}

// near perturbs p: λ and α by a log-normal factor (σ = sigma), k, the
// half-life and ν to a neighbouring choice with probability 0.3 each.
func (s *searcher) near(p model.Params, sigma float64) model.Params {
	sp := s.cfg.Space
	q := s.withBase(p, s.cfg.Base.Iterations)
	q.Lambda = clampRange(p.Lambda*math.Exp(sigma*s.rng.NormFloat64()), sp.Lambda)
	q.Alpha = clampRange(p.Alpha*math.Exp(sigma*s.rng.NormFloat64()), sp.Alpha)
	if s.rng.Float64() < 0.3 {
		q.Factors = neighbour(s.rng, sp.Factors, p.Factors)
	}
	if s.rng.Float64() < 0.3 {
		q.HalfLife = neighbour(s.rng, sp.HalfLife, p.HalfLife)
	}
	if s.rng.Float64() < 0.3 {
		q.ItemLambdaExponent = neighbour(s.rng, sp.itemLambdaExponents(), p.ItemLambdaExponent)
	}
	return q
}

func logUniform(rng *rand.Rand, r [2]float64) float64 {
	return math.Exp(math.Log(r[0]) + rng.Float64()*(math.Log(r[1])-math.Log(r[0])))
}

func clampRange(x float64, r [2]float64) float64 { return min(max(x, r[0]), r[1]) }

// neighbour returns a choice next to v in choices (v itself when it is
// not one of them and the nearest cannot be told).
func neighbour[T cmp.Ordered](rng *rand.Rand, choices []T, v T) T {
	sorted := slices.Sorted(slices.Values(choices))
	i, found := slices.BinarySearch(sorted, v)
	if !found {
		return sorted[min(i, len(sorted)-1)]
	}
	switch {
	case len(sorted) == 1:
		return v
	case i == 0:
		return sorted[1]
	case i == len(sorted)-1:
		return sorted[i-1]
	case rng.IntN(2) == 0:
		return sorted[i-1]
	}
	return sorted[i+1]
}

// matKey identifies a training matrix: a validation split and a
// half-life.
type matKey struct {
	fold int
	hl   time.Duration
}

// split returns validation split fold (0: the main one).
func (s *searcher) split(fold int) Split {
	if fold == 0 {
		return s.val
	}
	return s.cfg.Folds[fold-1]
}

// matrix returns a validation split's training matrix with a half-life's
// decay (cached).
func (s *searcher) matrix(fold int, hl time.Duration) (*model.Matrix, error) {
	key := matKey{fold, hl}
	if m, ok := s.mats[key]; ok {
		return m, nil
	}
	build := func(hl time.Duration) (*model.Matrix, error) { return s.split(fold).Matrix(hl, s.cfg.Unit) }
	if s.cfg.Matrix != nil && fold == 0 {
		build = s.cfg.Matrix
	}
	m, err := build(hl)
	if err != nil {
		return nil, err
	}
	s.mats[key] = m
	return m, nil
}

// train brings c to r sweeps (from scratch or continued).
func (s *searcher) train(ctx context.Context, c *running, r int) error {
	m, err := s.matrix(c.fold, c.p.HalfLife)
	if err != nil {
		return err
	}
	start := s.cfg.Now()
	done := itersOf(c.mod)
	if c.mod == nil {
		p := c.p
		p.Iterations = r
		if c.mod, err = model.Train(ctx, m, p, nil); err != nil {
			return err
		}
	} else if err := model.Continue(ctx, m, c.mod, r-done, nil); err != nil {
		return err
	}
	if swept := r - done; swept > 0 {
		s.speed[c.p.Factors] = s.cfg.Now().Sub(start).Seconds() / float64(swept)
	}
	return nil
}

// evaluateFull scores c's model on validation with its best prior; a
// full-fidelity score that is not a confirmation run competes for best.
func (s *searcher) evaluateFull(ctx context.Context, c *running, bracket, rung int, confirm, full bool) (SearchTrial, error) {
	start := s.cfg.Now()
	users, pos := s.users, []int(nil)
	if c.fold > 0 {
		users, pos = foldUsers(s.users, s.split(c.fold))
	}
	best, _, err := fitBlendUsers(ctx, s.split(c.fold), c.mod, s.cfg.Blends, c.p.Threads, users, nil)
	if err != nil {
		return SearchTrial{}, err
	}
	now := s.cfg.Now()
	s.evalS = now.Sub(start).Seconds()
	p := c.p
	p.Iterations = itersOf(c.mod)
	t := SearchTrial{Params: p, Blend: best.Blend, Metrics: best.Metrics, Bracket: bracket, Rung: rung, ElapsedS: now.Sub(s.start).Seconds(),
		Confirm: confirm, Fold: c.fold, Full: full}
	s.trials = append(s.trials, t)
	var user []float32
	if full {
		user = make([]float32, len(s.users))
		for j := range user {
			user[j] = float32(math.NaN())
		}
		for j, r := range best.Ranks {
			at := j
			if pos != nil {
				at = pos[j]
			}
			user[at] = float32(NDCGAt(r, 10))
		}
	}
	s.user = append(s.user, user)
	if full && !confirm && (s.best < 0 || t.NDCG10 > s.trials[s.best].NDCG10) {
		s.best = len(s.trials) - 1
	}
	if s.cfg.OnTrial != nil {
		s.cfg.OnTrial(t)
	}
	return t, nil
}

// foldUsers returns the users of main that have a held-out item in fold,
// and the position of each in main.
func foldUsers(main []int, fold Split) (users, pos []int) {
	for j, u := range main {
		if fold.Held[u] >= 0 {
			users, pos = append(users, u), append(pos, j)
		}
	}
	return users, pos
}

// distinctTimes reports whether the training part has two different
// times (else decay means nothing).
func distinctTimes(s Split) bool {
	for _, in := range s.Train {
		if in.Time != s.Train[0].Time {
			return true
		}
	}
	return false
}
