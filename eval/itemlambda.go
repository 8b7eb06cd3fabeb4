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
	// Exponent is the ν this comparison chose (in FitDefaults the α fit
	// after it may change it: AlphaFit.ItemLambdaExponent).
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
func (c DefaultsChoice) maxUsers() int { return UserBound(c.MaxUsers, DefaultFitUsers) }

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
	// Alpha tries p's α times FittedAlphaFactors against it.
	Alpha bool
}

// DefaultsFit is the outcome of FitDefaults.
type DefaultsFit struct {
	// Params are the given parameters with the chosen values.
	Params model.Params
	// Pick is their fitted blend and validation figures.
	Pick BlendTrial
	// HalfLife, Exponent and Alpha describe each choice (nil when not
	// made).
	HalfLife *HalfLifeFit
	Exponent *ExponentFit
	Alpha    *AlphaFit
}

// Lines describes each choice made, one line each (String of the
// half-life, ν and α fits), in the order they were made.
func (f DefaultsFit) Lines() []string {
	var lines []string
	if f.HalfLife != nil {
		lines = append(lines, f.HalfLife.String())
	}
	if f.Exponent != nil {
		lines = append(lines, f.Exponent.String())
	}
	if f.Alpha != nil {
		lines = append(lines, f.Alpha.String())
	}
	return lines
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
		alts[i] = alternativeLine(a.NDCG10, a.HalfLife, a.T)
	}
	return fitLine("half-life "+f.HalfLife, f.Decayed, f.Tried, alts, f.Users)
}

// alternativeLine is one alternative of a fit: its validation NDCG@10,
// value and paired t against the given one.
func alternativeLine(ndcg float64, value string, t float64) string {
	return fmt.Sprintf("%.4f with %s (t = %+.2f)", ndcg, value, t)
}

// fitLine is a fit of FitDefaults in one line: the choice, the given
// value's validation NDCG@10, then the alternatives'.
func fitLine(chosen string, ndcg float64, tried string, alts []string, users int) string {
	return fmt.Sprintf("%s: validation NDCG@10 %.4f with %s; %s (%d users; the best is kept when t ≥ %g)",
		chosen, ndcg, tried, strings.Join(alts, ", "), users, FallbackMinT)
}

// FittedAlphaFactors are the multiples of the configured confidence
// scale α that FitDefaults tries against it: half and double. Dense
// rating logs (MovieLens) rank better with a higher α, play counts and
// sparse logs with a lower one, by a few per cent each way.
var FittedAlphaFactors = []float64{0.5, 2}

// AlphaFit is how FitDefaults chose the confidence scale α.
type AlphaFit struct {
	// Tried is the given α, tried against it times FittedAlphaFactors;
	// NDCG10 its validation NDCG@10 with its own fitted blend.
	Tried  float64 `json:"tried"`
	NDCG10 float64 `json:"ndcg10"`
	// Alternatives are the other values tried, each with its validation
	// NDCG@10 and paired t against the pick of its step (the given α at
	// the first; see fitAlpha).
	Alternatives []AlphaTrial `json:"alternatives"`
	// T is the paired per-user t of the last step's winner against the
	// pick before it (the first step's best alternative when none won):
	// a step's best is chosen when its T is at least FallbackMinT.
	T float64 `json:"t"`
	// Users is the number of validation users compared.
	Users int `json:"users"`
	// Alpha is the chosen α.
	Alpha float64 `json:"alpha"`
	// ItemLambdaExponent is the ν chosen with α when ν was fitted too:
	// the alternatives then pair each α with either ν, since the two
	// interact (MovieLens 100K: neither ν 1 nor α 40 beats ν 0 with α 20
	// on validation, both together do).
	ItemLambdaExponent *float64 `json:"item_lambda_exponent,omitempty"`
}

// AlphaTrial is one alternative α of an AlphaFit.
type AlphaTrial struct {
	Alpha float64 `json:"alpha"`
	// ItemLambdaExponent is set on an alternative with the other ν.
	ItemLambdaExponent *float64 `json:"item_lambda_exponent,omitempty"`
	NDCG10             float64  `json:"ndcg10"`
	T                  float64  `json:"t"`
}

// String is the fit in one line for a progress log.
func (f AlphaFit) String() string {
	alts := make([]string, len(f.Alternatives))
	for i, a := range f.Alternatives {
		v := fmt.Sprint(a.Alpha)
		if a.ItemLambdaExponent != nil {
			v += fmt.Sprintf(" and ν %g", *a.ItemLambdaExponent)
		}
		alts[i] = alternativeLine(a.NDCG10, v, a.T)
	}
	chosen := fmt.Sprintf("confidence α = %g", f.Alpha)
	if f.ItemLambdaExponent != nil {
		chosen += fmt.Sprintf(" with ν %g", *f.ItemLambdaExponent)
	}
	return fitLine(chosen, f.NDCG10, fmt.Sprint(f.Tried), alts, f.Users)
}

// FitDefaults chooses, on val, the hyperparameters of choice that the
// shipped defaults leave to the data, one after the other, each with its
// own fitted blend over g: first FittedHalfLives against p's half-life
// (fitHalfLife), then ν = FittedItemLambdaExponent against 0 with the
// half-life kept, then α times FittedAlphaFactors against p's (fitAlpha)
// with the half-life kept, each with either ν when ν is fitted (the two
// interact). An alternative replaces the current choice only when
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
	if choice.Alpha {
		if f.Alpha, err = fitAlpha(&f, trial, choice.ItemLambdaExponent); err != nil {
			return f, err
		}
	}
	return f, nil
}

// fitHalfLife tries each of FittedHalfLives other than f's half-life
// (challengeAll).
func fitHalfLife(f *DefaultsFit, trial func(model.Params) (BlendTrial, error)) (*HalfLifeFit, error) {
	fit := &HalfLifeFit{Tried: f.Params.HalfLife.String(), Decayed: f.Pick.NDCG10}
	var alts []model.Params
	for _, hl := range FittedHalfLives {
		if hl != f.Params.HalfLife {
			alt := f.Params
			alt.HalfLife = hl
			alts = append(alts, alt)
		}
	}
	trials, cmps, best, err := challengeAll(f, alts, trial)
	if err != nil {
		return nil, err
	}
	for j, alt := range alts {
		fit.Alternatives = append(fit.Alternatives, HalfLifeTrial{HalfLife: alt.HalfLife.String(), NDCG10: trials[j].NDCG10, T: cmps[j].T})
		fit.Users = cmps[j].Users
		if alt.HalfLife == 0 {
			fit.Undecayed = trials[j].NDCG10
		}
	}
	if best >= 0 {
		fit.T = cmps[best].T
	}
	fit.HalfLife = f.Params.HalfLife.String()
	return fit, nil
}

// MaxAlphaSteps bounds the further steps of the α fit (FitDefaults) in
// the direction its first step took: α moves at most 2^(1+MaxAlphaSteps)
// times either way (the shipped 20: 1.25 to 320).
const MaxAlphaSteps = 3

// fitAlpha tries f's α times each of FittedAlphaFactors (challengeAll);
// with withExponent (ν fitted too) each of them also with the other ν
// (0 or FittedItemLambdaExponent), since ν and α interact: each fitted
// alone against the other's default can miss the pair. When one wins it
// goes on the same way (double again, or half again, with either ν)
// while each step wins, at most MaxAlphaSteps more: a play-count log
// that wants α a quarter of the shipped one gets there.
func fitAlpha(f *DefaultsFit, trial func(model.Params) (BlendTrial, error), withExponent bool) (*AlphaFit, error) {
	fit := &AlphaFit{Tried: f.Params.Alpha, NDCG10: f.Pick.NDCG10}
	given := f.Params.ItemLambdaExponent
	factors := FittedAlphaFactors
	for step := 0; step <= MaxAlphaSteps; step++ {
		from := f.Params
		alts := alphaAlternatives(from, factors, withExponent)
		trials, cmps, best, err := challengeAll(f, alts, trial)
		if err != nil {
			return nil, err
		}
		for j, alt := range alts {
			a := AlphaTrial{Alpha: alt.Alpha, NDCG10: trials[j].NDCG10, T: cmps[j].T}
			if alt.ItemLambdaExponent != given {
				a.ItemLambdaExponent = &alts[j].ItemLambdaExponent
			}
			fit.Alternatives = append(fit.Alternatives, a)
			fit.Users = cmps[j].Users
		}
		if best >= 0 && (step == 0 || f.Params != from) {
			fit.T = cmps[best].T
		}
		if f.Params == from {
			break
		}
		factors = []float64{f.Params.Alpha / from.Alpha}
	}
	fit.Alpha = f.Params.Alpha
	if withExponent {
		nu := f.Params.ItemLambdaExponent
		fit.ItemLambdaExponent = &nu
	}
	return fit, nil
}

// alphaAlternatives returns p with α times each of factors, with p's ν
// and, with withExponent, with the other ν too.
func alphaAlternatives(p model.Params, factors []float64, withExponent bool) []model.Params {
	exponents := []float64{p.ItemLambdaExponent}
	if withExponent {
		other := FittedItemLambdaExponent
		if p.ItemLambdaExponent != 0 {
			other = 0
		}
		exponents = append(exponents, other)
	}
	var alts []model.Params
	for _, nu := range exponents {
		for _, x := range factors {
			alt := p
			alt.Alpha, alt.ItemLambdaExponent = p.Alpha*x, nu
			alts = append(alts, alt)
		}
	}
	return alts
}

// challengeAll trains each of alts and makes the one with the best
// validation NDCG@10 f's pick when its ranks beat f's by a paired t of at
// least FallbackMinT: one decision, whatever the number of alternatives.
// It returns each alternative's trial and comparison with f's pick as
// given, and the index of the best (-1: none).
func challengeAll(f *DefaultsFit, alts []model.Params, trial func(model.Params) (BlendTrial, error)) ([]BlendTrial, []Paired, int, error) {
	given := f.Pick
	trials := make([]BlendTrial, len(alts))
	cmps := make([]Paired, len(alts))
	best := -1
	for j, alt := range alts {
		t, err := trial(alt)
		if err != nil {
			return nil, nil, -1, err
		}
		trials[j], cmps[j] = t, ComparePaired(t.Ranks, given.Ranks)
		if best < 0 || t.NDCG10 > trials[best].NDCG10 {
			best = j
		}
	}
	if best >= 0 && cmps[best].T >= FallbackMinT {
		f.Params, f.Pick = alts[best], trials[best]
	}
	return trials, cmps, best, nil
}

// OfflineFitted is OfflineBlended with the defaults' choices fitted
// too (FitDefaults on val): the ranking of `kairos eval offline` with the
// shipped defaults. fold, when not nil, confirms the fitted blend as in
// OfflineBlended.
func OfflineFitted(ctx context.Context, test, val Split, fold *Split, p model.Params, choice DefaultsChoice, g BlendGrid, unit TimeUnit, threads int) (Result, DefaultsFit, error) {
	start := time.Now()
	fit, err := FitDefaults(ctx, val, p, choice, g, threads, func(q model.Params) (*model.Model, error) {
		mod, _, err := TrainALS(ctx, val, q, unit, nil)
		return mod, err
	})
	if err != nil {
		return Result{}, fit, err
	}
	r, err := rankWithPick(ctx, test, fold, fit.Params, fit.Pick, g, start, unit, threads)
	r.ItemLambdaFit, r.HalfLifeFit, r.AlphaFit = fit.Exponent, fit.HalfLife, fit.Alpha
	return r, fit, err
}
