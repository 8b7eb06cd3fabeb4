package eval

import (
	"context"
	"fmt"
	"time"

	"github.com/kairoshq/kairos/model"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
)

// Result is one model's outcome under LOO-full, the JSON line printed by
// `kairos eval offline`.
type Result struct {
	Model  string `json:"model"`
	Params any    `json:"params"`
	Metrics
	TrainS float64 `json:"train_s"`
	EvalS  float64 `json:"eval_s"`
	// PeakRSSMB is the process's peak resident set size when the result
	// was printed, in MB (PROTOCOL.md, step 5; set by kairos eval, absent
	// where the system does not tell).
	PeakRSSMB float64 `json:"peak_rss_mb,omitempty"`
	Items     int     `json:"items"`
	// Blend is the popularity prior the ranking used (ALS with a prior
	// fitted on validation; absent for plain ALS and popularity).
	Blend *model.Blend `json:"blend,omitempty"`
	// Validation holds the validation metrics of the pick, when fitted.
	Validation *Metrics `json:"validation,omitempty"`
	// PopularityFallback says the fitted prior is the popularity-heavy
	// blend, the best one not beating it on validation (FitBlendUsers).
	PopularityFallback bool `json:"popularity_fallback,omitempty"`
	// RecallGuard says the fitted blend is not the best by validation
	// NDCG@10: that one's Recall@50 fell below the grid's recall floor
	// (RecallFloor, TunedRecallFloor for a tuned model) times the
	// popularity-heavy blend's (FitBlendUsers).
	RecallGuard bool `json:"recall_guard,omitempty"`
	// ItemLambdaFit is how ν was chosen on validation, when it was
	// fitted (OfflineFitted).
	ItemLambdaFit *ExponentFit `json:"item_lambda_fit,omitempty"`
	// HalfLifeFit is how the half-life was chosen on validation, when it
	// was fitted (OfflineFitted).
	HalfLifeFit *HalfLifeFit `json:"half_life_fit,omitempty"`
	// AlphaFit is how α was chosen on validation, when it was fitted
	// (OfflineFitted).
	AlphaFit *AlphaFit `json:"alpha_fit,omitempty"`
	// BlendConfirm is the check of the fitted blend on a further
	// validation split (ConfirmBlend; nil: not checked).
	BlendConfirm *BlendConfirmation `json:"blend_confirm,omitempty"`
	// TunedCheck is a tuned pick's comparison with the reference on a
	// split nothing was chosen on (CompareTuned; nil: not made). When the
	// pick was worse, this result is the reference's.
	TunedCheck *TunedCheck `json:"tuned_check,omitempty"`
	// FitS is the wall time of choosing on the validation split (training
	// there and fitting the blend), outside TrainS.
	FitS float64 `json:"fit_s,omitempty"`
	// SkippedUsers counts the users with fewer than 2 interactions, not
	// evaluated.
	SkippedUsers int `json:"skipped_users,omitempty"`
	// Ranks holds every user's rank (for paired comparisons); not printed.
	Ranks []int `json:"-"`
}

// TimeUnit converts the integer times of a dataset to durations (seconds
// for MovieLens).
type TimeUnit = time.Duration

// ModelInteractions converts training interactions to the model's weighted
// triples, decaying each weight by its age relative to the user's latest
// training interaction with the given half-life (model.HistoryAggregator's
// rule).
func ModelInteractions(s Split, halfLife time.Duration, unit TimeUnit) []model.Interaction {
	latest := make([]int64, s.Users)
	seen := make([]bool, s.Users)
	for _, in := range s.Train {
		if !seen[in.User] || in.Time > latest[in.User] {
			latest[in.User], seen[in.User] = in.Time, true
		}
	}
	out := make([]model.Interaction, len(s.Train))
	for j, in := range s.Train {
		age := time.Duration(latest[in.User]-in.Time) * unit
		out[j] = model.Interaction{User: in.User, Item: in.Item, Weight: float32(model.Decay(in.Weight, age, halfLife))}
	}
	return out
}

// TrainALS fits implicit ALS to the split's training part. progress, when
// not nil, sees the model after every iteration.
func TrainALS(ctx context.Context, s Split, p model.Params, unit TimeUnit, progress model.Progress) (*model.Model, time.Duration, error) {
	m, err := model.NewMatrix(s.Users, s.Items, ModelInteractions(s, p.HalfLife, unit))
	if err != nil {
		return nil, 0, fmt.Errorf("eval: build matrix: %w", err)
	}
	start := time.Now()
	mod, err := model.Train(ctx, m, p, progress)
	return mod, time.Since(start), err
}

// ALSScorer scores x_u·Y for every item.
func ALSScorer(m *model.Model) ScoreFunc {
	k := m.Items.K
	Y := blas32.General{Rows: m.Items.Rows(), Cols: k, Stride: k, Data: m.Items.Data}
	return func(u int, dst []float32) {
		x := blas32.Vector{N: k, Inc: 1, Data: m.Users.Row(u)}
		blas32.Gemv(blas.NoTrans, 1, Y, x, 0, blas32.Vector{N: len(dst), Inc: 1, Data: dst})
	}
}

// PopularityScorer scores each item by its number of training interactions.
func PopularityScorer(s Split) ScoreFunc {
	counts := make([]float32, s.Items)
	for _, in := range s.Train {
		counts[in.Item]++
	}
	return func(_ int, dst []float32) { copy(dst, counts) }
}

// Evaluate ranks with score and times it.
func Evaluate(ctx context.Context, s Split, score ScoreFunc, threads int) (Metrics, []int, time.Duration, error) {
	start := time.Now()
	r, err := Rank(ctx, s, score, threads)
	if err != nil {
		return Metrics{}, nil, 0, err
	}
	return r.Summarize(), r.Ranks, time.Since(start), nil
}

// OfflinePopularity runs the popularity baseline under LOO-full.
func OfflinePopularity(ctx context.Context, s Split, threads int) (Result, error) {
	start := time.Now()
	score := PopularityScorer(s)
	train := time.Since(start)
	m, ranks, el, err := Evaluate(ctx, s, score, threads)
	if err != nil {
		return Result{}, err
	}
	return Result{Model: "pop", Params: struct{}{}, Metrics: m, TrainS: train.Seconds(), EvalS: el.Seconds(), Items: s.Items, Ranks: ranks, SkippedUsers: s.Skipped}, nil
}

// OfflineALS trains implicit ALS with p and evaluates it under LOO-full.
func OfflineALS(ctx context.Context, s Split, p model.Params, unit TimeUnit, threads int) (Result, error) {
	mod, train, err := TrainALS(ctx, s, p, unit, nil)
	if err != nil {
		return Result{}, err
	}
	m, ranks, el, err := Evaluate(ctx, s, ALSScorer(mod), threads)
	if err != nil {
		return Result{}, err
	}
	return Result{Model: "als", Params: p, Metrics: m, TrainS: train.Seconds(), EvalS: el.Seconds(), Items: s.Items, Ranks: ranks, SkippedUsers: s.Skipped}, nil
}

// FitBlendOn trains ALS with p on val's training part and fits the
// popularity prior on val (FitBlend).
func FitBlendOn(ctx context.Context, val Split, p model.Params, g BlendGrid, unit TimeUnit, threads int) (BlendTrial, error) {
	mod, _, err := TrainALS(ctx, val, p, unit, nil)
	if err != nil {
		return BlendTrial{}, err
	}
	best, _, err := FitBlend(ctx, val, mod, g, threads)
	return best, err
}

// OfflineBlended is ALS with the popularity prior under LOO-full: ALS with
// p trained on the validation split's training part, ρ and κ fitted on
// its held-out items (FitBlend over g), then ALS trained on the test
// split's training part ranks with that blend (BlendScorer). Nothing of
// test's held-out items is looked at before the ranking.
//
// With fold (a further validation split, Holdout.Fold; nil: none) the
// fitted blend must also not lose to the grid's most popularity-heavy one
// there (ConfirmBlend), else that one ranks.
func OfflineBlended(ctx context.Context, test, val Split, fold *Split, p model.Params, g BlendGrid, unit TimeUnit, threads int) (Result, error) {
	start := time.Now()
	fit, err := FitBlendOn(ctx, val, p, g, unit, threads)
	if err != nil {
		return Result{}, err
	}
	return rankWithPick(ctx, test, fold, p, fit, g, start, unit, threads)
}

// rankWithPick confirms pick's blend on fold (confirmOn) and ranks test
// with the blend that stands, ALS trained with p; start is when the
// choice on validation began.
func rankWithPick(ctx context.Context, test Split, fold *Split, p model.Params, pick BlendTrial, g BlendGrid, start time.Time, unit TimeUnit, threads int) (Result, error) {
	b, confirm, err := confirmOn(ctx, fold, p, pick, g, unit, threads)
	if err != nil {
		return Result{}, err
	}
	r, err := OfflineWithBlend(ctx, test, p, b, &pick.Metrics, time.Since(start), unit, threads)
	r.PopularityFallback = pick.PopularityFallback || (confirm != nil && !confirm.Kept)
	r.RecallGuard, r.BlendConfirm = pick.RecallGuard, confirm
	return r, err
}

// confirmOn confirms pick's blend on fold (ConfirmPick against g's
// popularity-heavy blend), training p there only when needed; without a
// fold it stands unchecked.
func confirmOn(ctx context.Context, fold *Split, p model.Params, pick BlendTrial, g BlendGrid, unit TimeUnit, threads int) (model.Blend, *BlendConfirmation, error) {
	return ConfirmPick(ctx, pick, g.PopularityHeavy(), func() (Split, *model.Model, bool, error) {
		if fold == nil {
			return Split{}, nil, false, nil
		}
		mod, _, err := TrainALS(ctx, *fold, p, unit, nil)
		return *fold, mod, err == nil, err
	}, threads, 0)
}

// OfflineWithBlend trains ALS with p on test's training part and ranks
// with blend b; val and fitS, when known, describe how b was chosen.
func OfflineWithBlend(ctx context.Context, test Split, p model.Params, b model.Blend, val *Metrics, fitS time.Duration, unit TimeUnit, threads int) (Result, error) {
	mod, train, err := TrainALS(ctx, test, p, unit, nil)
	if err != nil {
		return Result{}, err
	}
	m, ranks, el, err := Evaluate(ctx, test, BlendScorer(ctx, mod, test, b), threads)
	if err != nil {
		return Result{}, err
	}
	return Result{Model: "als", Params: p, Metrics: m, TrainS: train.Seconds(), EvalS: el.Seconds(), Items: test.Items, Ranks: ranks,
		Blend: &b, Validation: val, FitS: fitS.Seconds(), SkippedUsers: test.Skipped}, nil
}
