package offline

import (
	"context"
	"fmt"
	"time"

	"github.com/kairoshq/kairos/model"
)

// Decision says whether a retrained model is published.
type Decision string

// Decisions of a Runner.
const (
	DecisionPublished Decision = "published"
	DecisionDryRun    Decision = "dry-run"
	// DecisionWorse: the retrained model ranks the held-out tail worse than
	// the live one by more than the tolerance.
	DecisionWorse Decision = "rejected: worse than the live model"
)

// Runner retrains from an archive and publishes the result unless it is
// worse than the live model: `kairos retrain` and the scheduled retrain
// of `kairos serve --retrain-every` run it.
type Runner struct {
	// Source is the archive.
	Source RecordSource
	// Live returns the live model's items (nil: no comparison).
	Live func(ctx context.Context) (*LiveModel, error)
	// Publish makes the snapshot current (store it and announce it).
	Publish func(ctx context.Context, snap *model.Snapshot) error
	// Config configures each retrain; From/To are overridden by Window.
	Config RetrainConfig
	// Window, when set, retrains on the events of the last Window only.
	Window time.Duration
	// Tolerance is how much lower the retrained model's tail NDCG@10 may
	// be than the live model's before publishing is refused (default 0).
	Tolerance float64
}

// RunResult is the outcome of one Runner.Run.
type RunResult struct {
	*RetrainResult
	Decision Decision `json:"decision"`
	WallS    float64  `json:"wall_s"`
}

// Run retrains once and publishes unless dryRun, or force is false and the
// new model is worse than the live one.
func (r *Runner) Run(ctx context.Context, dryRun, force bool) (*RunResult, error) {
	start := time.Now()
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
	res, err := Retrain(ctx, r.Source, live, cfg)
	if err != nil {
		return nil, err
	}
	out := &RunResult{RetrainResult: res}
	newEv, okNew := res.Evaluation("retrained")
	liveEv, okLive := res.Evaluation("live")
	switch {
	case dryRun:
		out.Decision = DecisionDryRun
	case !force && okNew && okLive && newEv.NDCG10 < liveEv.NDCG10-r.Tolerance:
		out.Decision = DecisionWorse
	default:
		if r.Publish == nil {
			return nil, fmt.Errorf("offline: no publisher configured")
		}
		if err := r.Publish(ctx, res.Snapshot); err != nil {
			return nil, err
		}
		out.Decision = DecisionPublished
	}
	out.WallS = time.Since(start).Seconds()
	return out, nil
}
