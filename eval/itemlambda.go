package eval

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/kairoshq/kairos/model"
)

// FittedItemLambdaExponent is the ν (model.Params.ItemLambdaExponent)
// that the default configuration tries against plain λ on the validation
// split. On sparse logs it lifts NDCG@10 by a fifth to a third; on dense
// ones (MovieLens) it costs as much, so the data decides.
const FittedItemLambdaExponent = 1.0

// ExponentFit is the outcome of FitItemLambdaExponent.
type ExponentFit struct {
	// Params are the given parameters with the chosen ν.
	Params model.Params `json:"-"`
	// Pick is the chosen ν's fitted prior and validation figures.
	Pick BlendTrial `json:"-"`
	// Plain and Scaled are the validation NDCG@10 of ν = 0 and of
	// ν = FittedItemLambdaExponent, each with its own fitted prior.
	Plain  float64 `json:"plain_ndcg10"`
	Scaled float64 `json:"scaled_ndcg10"`
	// T is the paired per-user t of Scaled against Plain.
	T float64 `json:"t"`
	// Users is the number of validation users compared.
	Users int `json:"users"`
	// Exponent is the chosen ν.
	Exponent float64 `json:"item_lambda_exponent"`
}

// String is the fit in one line for a progress log.
func (f ExponentFit) String() string {
	return fmt.Sprintf("item λ exponent ν = %g: validation NDCG@10 %.4f with ν = 0, %.4f with ν = %g (paired t = %+.2f, %d users)",
		f.Exponent, f.Plain, f.Scaled, FittedItemLambdaExponent, f.T, f.Users)
}

// FitItemLambdaExponent trains p with ν = 0 and with ν =
// FittedItemLambdaExponent on val's training part (train trains one
// configuration), fits the popularity prior of each over g, and keeps the
// scaled one only when its validation ranks beat plain λ's by a paired t
// of at least FallbackMinT: without clear evidence the shipped plain λ
// stays.
func FitItemLambdaExponent(ctx context.Context, val Split, p model.Params, g BlendGrid, threads int, train func(model.Params) (*model.Model, error)) (ExponentFit, error) {
	f, err := FitDefaults(ctx, val, p, DefaultsChoice{ItemLambdaExponent: true}, g, threads, train)
	if err != nil {
		return ExponentFit{}, err
	}
	return *f.Exponent, nil
}

// maxUsers is the bound of heldUsers for c.
func (c DefaultsChoice) maxUsers() int {
	switch {
	case c.MaxUsers < 0:
		return 0
	case c.MaxUsers == 0:
		return DefaultFitUsers
	}
	return c.MaxUsers
}

// FittedHalfLives are the half-lives FitDefaults tries against the
// configured one: no decay and a week. The shipped minute suits logs
// whose held-out item follows the user's last few (MovieLens); on
// sessions (diginetica) a week ranks better, and where order says
// nothing, no decay. (A day scored as a week did on every log here, and
// each candidate costs a training and a blend fit on validation.)
var FittedHalfLives = []time.Duration{0, 7 * 24 * time.Hour}

// DefaultFitUsers bounds the validation users FitDefaults ranks (an even
// spread of them): every configuration it tries is ranked, for each of
// its blends, over all items for each user, so on a large archive the
// users, not the trainings, are its cost. 20,000 users decide a paired t
// of 1 on differences of a few per cent.
const DefaultFitUsers = 20_000

// DefaultsChoice says which hyperparameters of the defaults FitDefaults
// chooses on validation.
type DefaultsChoice struct {
	// MaxUsers bounds the validation users ranked (0: DefaultFitUsers;
	// negative: all).
	MaxUsers int
	// HalfLife tries FittedHalfLives against p's half-life (when it has
	// one).
	HalfLife bool
	// ItemLambdaExponent tries ν = FittedItemLambdaExponent against 0.
	ItemLambdaExponent bool
}

// DefaultsFit is the outcome of FitDefaults.
type DefaultsFit struct {
	// Params are the given parameters with the chosen values.
	Params model.Params
	// Pick is their fitted blend and validation figures.
	Pick BlendTrial
	// HalfLife and Exponent describe each choice (nil when not made).
	HalfLife *HalfLifeFit
	Exponent *ExponentFit
}

// HalfLifeFit is how FitDefaults chose the half-life.
type HalfLifeFit struct {
	// Tried is the given half-life, tried against FittedHalfLives.
	Tried string `json:"tried"`
	// Decayed and Undecayed are the validation NDCG@10 of the given
	// half-life and of no decay, each with its own fitted blend.
	Decayed   float64 `json:"decayed_ndcg10"`
	Undecayed float64 `json:"undecayed_ndcg10"`
	// Alternatives are the other half-lives tried, each with its
	// validation NDCG@10 and paired t against the given one.
	Alternatives []HalfLifeTrial `json:"alternatives"`
	// T is the paired per-user t of the best alternative (by validation
	// NDCG@10) against the given half-life: it is chosen when T is at
	// least FallbackMinT.
	T float64 `json:"t"`
	// Users is the number of validation users compared.
	Users int `json:"users"`
	// HalfLife is the chosen half-life ("0s": no decay).
	HalfLife string `json:"half_life"`
}

// HalfLifeTrial is one alternative half-life of a HalfLifeFit.
type HalfLifeTrial struct {
	HalfLife string  `json:"half_life"`
	NDCG10   float64 `json:"ndcg10"`
	T        float64 `json:"t"`
}

// String is the fit in one line for a progress log.
func (f HalfLifeFit) String() string {
	alts := make([]string, len(f.Alternatives))
	for i, a := range f.Alternatives {
		alts[i] = fmt.Sprintf("%.4f with %s (t = %+.2f)", a.NDCG10, a.HalfLife, a.T)
	}
	return fmt.Sprintf("half-life %s: validation NDCG@10 %.4f with %s; %s (%d users; the best is kept when t ≥ %g)",
		f.HalfLife, f.Decayed, f.Tried, strings.Join(alts, ", "), f.Users, FallbackMinT)
}

// FitDefaults chooses, on val, the hyperparameters of choice that the
// shipped defaults leave to the data, one after the other, each with its
// own fitted blend over g: first FittedHalfLives against p's half-life
// (fitHalfLife), then ν = FittedItemLambdaExponent against 0 with the
// half-life kept. An alternative replaces the current choice only when
// its validation ranks beat it by a paired t of at least FallbackMinT.
// Every configuration is ranked on the same validation users, at most
// choice's MaxUsers of them (train trains one configuration; each is
// trained once, and the item neighbours are built once).
func FitDefaults(ctx context.Context, val Split, p model.Params, choice DefaultsChoice, g BlendGrid, threads int, train func(model.Params) (*model.Model, error)) (DefaultsFit, error) {
	nb, err := gridNeighbours(ctx, val, g) // one build for every configuration
	if err != nil {
		return DefaultsFit{}, err
	}
	users := heldUsers(val, choice.maxUsers())
	trial := func(q model.Params) (BlendTrial, error) {
		mod, err := train(q)
		if err != nil {
			return BlendTrial{}, err
		}
		best, _, err := fitBlendUsers(ctx, val, mod, g, threads, users, nb)
		return best, err
	}
	f := DefaultsFit{Params: p}
	if choice.ItemLambdaExponent {
		f.Params.ItemLambdaExponent = 0
	}
	if f.Pick, err = trial(f.Params); err != nil {
		return f, err
	}
	// challenge trains alt and makes it the pick when it beats the
	// current one by FallbackMinT; it returns alt's trial and the
	// comparison.
	challenge := func(alt model.Params) (BlendTrial, Paired, error) {
		t, err := trial(alt)
		if err != nil {
			return t, Paired{}, err
		}
		cmp := ComparePaired(t.Ranks, f.Pick.Ranks)
		if cmp.T >= FallbackMinT {
			f.Params, f.Pick = alt, t
		}
		return t, cmp, nil
	}
	if choice.HalfLife && p.HalfLife != 0 {
		if f.HalfLife, err = fitHalfLife(&f, trial); err != nil {
			return f, err
		}
	}
	if choice.ItemLambdaExponent {
		alt, plain := f.Params, f.Pick
		alt.ItemLambdaExponent = FittedItemLambdaExponent
		scaled, cmp, err := challenge(alt)
		if err != nil {
			return f, err
		}
		f.Exponent = &ExponentFit{Params: f.Params, Pick: f.Pick, Plain: plain.NDCG10, Scaled: scaled.NDCG10, T: cmp.T, Users: cmp.Users,
			Exponent: f.Params.ItemLambdaExponent}
	}
	return f, nil
}

// fitHalfLife trains each of FittedHalfLives other than f's half-life
// and makes the one with the best validation NDCG@10 f's pick when its
// ranks beat f's by a paired t of at least FallbackMinT (one decision,
// whatever the number of alternatives).
func fitHalfLife(f *DefaultsFit, trial func(model.Params) (BlendTrial, error)) (*HalfLifeFit, error) {
	given := f.Pick
	fit := &HalfLifeFit{Tried: f.Params.HalfLife.String(), Decayed: given.NDCG10}
	var best BlendTrial
	bestParams, bestT := f.Params, 0.0
	for _, hl := range FittedHalfLives {
		if hl == f.Params.HalfLife {
			continue
		}
		alt := f.Params
		alt.HalfLife = hl
		t, err := trial(alt)
		if err != nil {
			return nil, err
		}
		cmp := ComparePaired(t.Ranks, given.Ranks)
		fit.Alternatives = append(fit.Alternatives, HalfLifeTrial{HalfLife: hl.String(), NDCG10: t.NDCG10, T: cmp.T})
		fit.Users = cmp.Users
		if hl == 0 {
			fit.Undecayed = t.NDCG10
		}
		if best.Ranks == nil || t.NDCG10 > best.NDCG10 {
			best, bestParams, bestT = t, alt, cmp.T
		}
	}
	fit.T = bestT
	if bestT >= FallbackMinT {
		f.Params, f.Pick = bestParams, best
	}
	fit.HalfLife = f.Params.HalfLife.String()
	return fit, nil
}

// OfflineFitted is OfflineBlended with the defaults' choices fitted
// too (FitDefaults on val): the ranking of `kairos eval offline` with the
// shipped defaults.
func OfflineFitted(ctx context.Context, test, val Split, p model.Params, choice DefaultsChoice, g BlendGrid, unit TimeUnit, threads int) (Result, DefaultsFit, error) {
	start := time.Now()
	fit, err := FitDefaults(ctx, val, p, choice, g, threads, func(q model.Params) (*model.Model, error) {
		mod, _, err := TrainALS(ctx, val, q, unit, nil)
		return mod, err
	})
	if err != nil {
		return Result{}, fit, err
	}
	r, err := OfflineWithBlend(ctx, test, fit.Params, fit.Pick.Blend, &fit.Pick.Metrics, time.Since(start), unit, threads)
	r.PopularityFallback, r.RecallGuard = fit.Pick.PopularityFallback, fit.Pick.RecallGuard
	r.ItemLambdaFit, r.HalfLifeFit = fit.Exponent, fit.HalfLife
	return r, fit, err
}
