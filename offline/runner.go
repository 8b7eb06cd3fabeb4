package offline

import (
	"context"
	"fmt"
	"time"

	"github.com/kairoshq/kairos/eval"
	"github.com/kairoshq/kairos/model"
)

// Decision says whether a retrained model is published.
type Decision string

// Decisions of a Runner.
const (
	DecisionPublished Decision = "published"
	DecisionDryRun    Decision = "dry-run"
	// DecisionWorse: the retrained model ranks the held-out tail
	// significantly worse than the live one.
	DecisionWorse Decision = "rejected: worse than the live model"
	// DecisionNotBetterThanPopularity: it does not rank the tail better
	// than popularity.
	DecisionNotBetterThanPopularity Decision = "rejected: not better than popularity"
	// DecisionTooFewUsers: too few users were active both before and in
	// the tail to compare anything.
	DecisionTooFewUsers Decision = "rejected: too few users to compare"
)

// WorseT is the paired t statistic below which the retrained model counts
// as worse than the live one (one-sided, about 5 %).
const WorseT = -1.645

// BeatT is the paired t statistic the retrained model needs against
// popularity (with a positive difference): a loose one-sided test (about
// 84 %), because a tail holds few users, that still refuses a model which
// merely ties popularity.
const BeatT = 1.0

// Runner retrains from an archive and publishes the result when it is
// not worse than the live model and better than popularity on a tail
// neither has learnt from: `kairos retrain` and the scheduled retrain of
// `kairos serve --retrain-every` run it.
type Runner struct {
	// Source is the archive.
	Source RecordSource
	// OpenSource, when set, opens the source of each run instead (the
	// cluster's history: a new reader per run sees the archiver's
	// progress, and its two passes share one cut).
	OpenSource func(ctx context.Context) (RecordSource, error)
	// Live returns the live model (nil: compare with popularity only).
	Live func(ctx context.Context) (*LiveModel, error)
	// Publish makes the snapshot current (store it and announce it).
	Publish func(ctx context.Context, snap *model.Snapshot) error
	// Config configures each retrain; From/To are overridden by Window.
	Config RetrainConfig
	// Window, when set, retrains on the events of the last Window only.
	Window time.Duration
	// Tolerance is how much lower the retrained model's tail NDCG@10 may
	// be than the live model's before a significant difference refuses it
	// (default 0).
	Tolerance float64
	// MinUsers is the least number of evaluated users for a decision
	// (default 50); below it the model is not published unless forced. A
	// search also needs that many validation users.
	MinUsers int
	// TuneBudget, when not 0, searches the hyperparameters within it
	// (negative: one full Hyperband cycle), warm-started from the last
	// pick in Log and the live parameters; with a live model, k stays the
	// engines'.
	TuneBudget time.Duration
	// Log keeps a report of every run (nil: none).
	Log *Log
}

// RunResult is the outcome of one Runner.Run.
type RunResult struct {
	*RetrainResult
	Decision Decision `json:"decision"`
	// Reason explains the decision with the figures behind it.
	Reason string  `json:"reason"`
	WallS  float64 `json:"wall_s"`
}

// Run retrains once and publishes unless dryRun, or force is false and
// the new model is worse than the live one, not better than popularity, or
// measured on too few users. Every run, failed ones included, is reported
// to r.Log.
func (r *Runner) Run(ctx context.Context, dryRun, force bool) (*RunResult, error) {
	start := time.Now()
	out, err := r.run(ctx, dryRun, force)
	if out != nil {
		out.WallS = time.Since(start).Seconds()
	}
	if r.Log != nil {
		if lerr := r.Log.Append(ctx, reportOf(out, err, time.Now())); lerr != nil && err == nil {
			err = lerr
		}
	}
	return out, err
}

func (r *Runner) run(ctx context.Context, dryRun, force bool) (*RunResult, error) {
	cfg := r.Config
	if r.Window > 0 {
		cfg.From = time.Now().Add(-r.Window)
	}
	var live *LiveModel
	if r.Live != nil {
		var err error
		if live, err = r.Live(ctx); err != nil {
			return nil, fmt.Errorf("offline: live model: %w", err)
		}
	}
	if r.TuneBudget != 0 {
		cfg.Tune = &TuneConfig{Budget: max(r.TuneBudget, 0), Starts: r.warmStarts(ctx, live, cfg.Params), MinUsers: r.minUsers()}
		if k := liveFactors(live); k > 0 {
			// Running engines load only a model of their k (changing it
			// takes a restart with --factors): search the others.
			cfg.Tune.Space = eval.DefaultSpace()
			cfg.Tune.Space.Factors = []int{k}
		}
	}
	src := r.Source
	if r.OpenSource != nil {
		var err error
		if src, err = r.OpenSource(ctx); err != nil {
			return nil, fmt.Errorf("offline: open the history: %w", err)
		}
	}
	res, err := Retrain(ctx, src, live, cfg)
	if err != nil {
		return nil, err
	}
	out := &RunResult{RetrainResult: res}
	var publish bool
	out.Decision, out.Reason, publish = r.decide(res, live != nil)
	switch {
	case dryRun:
		out.Reason = fmt.Sprintf("dry run; would be %s: %s", out.Decision, out.Reason)
		out.Decision = DecisionDryRun
	case publish || force:
		if r.Publish == nil {
			return nil, fmt.Errorf("offline: no publisher configured")
		}
		if err := r.Publish(ctx, res.Snapshot); err != nil {
			return nil, err
		}
		if !publish {
			out.Reason = "forced; would be " + string(out.Decision) + ": " + out.Reason
		}
		out.Decision = DecisionPublished
	}
	return out, nil
}

// warmStarts are the configurations a search tries first: the last pick
// of the log, then the live model's and the configured parameters.
func (r *Runner) warmStarts(ctx context.Context, live *LiveModel, base model.Params) []model.Params {
	var starts []model.Params
	if r.Log != nil {
		if reps, err := r.Log.Reports(ctx); err == nil {
			for j := len(reps) - 1; j >= 0; j-- {
				if reps[j].Params != nil && reps[j].Search != nil {
					starts = append(starts, *reps[j].Params)
					break
				}
			}
		}
	}
	if live != nil && live.Params.Factors > 0 {
		starts = append(starts, live.Params)
	}
	return append(starts, base)
}

// decide applies the guard: enough users, better than popularity (t >=
// BeatT), not significantly worse than the live model (t >= WorseT or a
// difference within the tolerance).
func (r *Runner) decide(res *RetrainResult, hasLive bool) (Decision, string, bool) {
	minUsers := r.minUsers()
	newEv, ok := res.Evaluation("retrained")
	if !ok || newEv.Users < minUsers {
		return DecisionTooFewUsers, fmt.Sprintf("%d users active both before and in the tail from %s, %d needed",
			newEv.Users, res.HoldoutFrom.Format(time.RFC3339), minUsers), false
	}
	popEv, _ := res.Evaluation("popularity")
	vsPop, _ := res.Comparison("popularity")
	figures := fmt.Sprintf("NDCG@10 %.4f vs popularity %.4f (paired t = %.2f, %d users)", newEv.NDCG10, popEv.NDCG10, vsPop.T, vsPop.Users)
	if vsPop.Diff <= 0 || vsPop.T < BeatT {
		return DecisionNotBetterThanPopularity, figures, false
	}
	if hasLive {
		liveEv, _ := res.Evaluation("live")
		vsLive, _ := res.Comparison("live")
		figures += fmt.Sprintf("; live (%s) %.4f (t = %.2f)", res.Reference, liveEv.NDCG10, vsLive.T)
		if vsLive.Diff < -r.Tolerance && vsLive.T < WorseT {
			return DecisionWorse, figures, false
		}
	}
	return DecisionPublished, figures, true
}

// Label is a short name of the decision for metrics: published,
// refused_worse, refused_popularity, refused_few_users, dry_run or
// failed.
func (d Decision) Label() string {
	switch d {
	case DecisionPublished:
		return "published"
	case DecisionWorse:
		return "refused_worse"
	case DecisionNotBetterThanPopularity:
		return "refused_popularity"
	case DecisionTooFewUsers:
		return "refused_few_users"
	case DecisionDryRun:
		return "dry_run"
	}
	return "failed"
}

func (r *Runner) minUsers() int {
	if r.MinUsers <= 0 {
		return 50
	}
	return r.MinUsers
}

// liveFactors returns the live model's k (0: no live model).
func liveFactors(live *LiveModel) int {
	switch {
	case live == nil:
		return 0
	case live.Items != nil && live.Items.Rows() > 0:
		return live.Items.K
	case live.Snapshot != nil:
		return live.Snapshot.Meta.Params.Factors
	}
	return live.Params.Factors
}
