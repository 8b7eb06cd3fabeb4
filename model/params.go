package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"runtime"
	"time"
)

// Solver selects how each row's least-squares problem is solved.
type Solver int

const (
	// SolverCG runs a few conjugate-gradient steps per row, warm-started
	// from the previous sweep's factors (Takács et al. 2011). The default:
	// it reaches the quality of the exact solver in a fraction of the time.
	SolverCG Solver = iota
	// SolverCholesky solves each row exactly with a Cholesky factorisation.
	SolverCholesky
)

// String returns "cg" or "cholesky".
func (s Solver) String() string {
	switch s {
	case SolverCG:
		return "cg"
	case SolverCholesky:
		return "cholesky"
	}
	return fmt.Sprintf("Solver(%d)", int(s))
}

// ParseSolver parses "cg" or "cholesky".
func ParseSolver(s string) (Solver, error) {
	switch s {
	case "cg":
		return SolverCG, nil
	case "cholesky":
		return SolverCholesky, nil
	}
	return 0, fmt.Errorf("model: unknown solver %q (want cg or cholesky)", s)
}

// MarshalText encodes the solver name.
func (s Solver) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText decodes a solver name.
func (s *Solver) UnmarshalText(b []byte) error {
	v, err := ParseSolver(string(b))
	*s = v
	return err
}

// Params are the hyperparameters of implicit ALS.
type Params struct {
	// Factors is k, the number of latent factors.
	Factors int `json:"factors"`
	// Lambda is the L2 regularisation λ.
	Lambda float64 `json:"lambda"`
	// Alpha scales confidence: c = 1 + α·w.
	Alpha float64 `json:"alpha"`
	// ItemLambdaExponent ν scales each item's regularisation with its
	// popularity: item i is solved with λ·(n_i/n̄)^ν, n_i its distinct
	// users and n̄ their mean over the items that have users (the frequency-scaled
	// regularisation of Rendle et al., "Revisiting the Performance of iALS
	// on Item Recommendation Benchmarks", 2022, on the item side only, so
	// that the fold-in of a visitor keeps its one λ). 0, the default, is
	// plain λ; on sparse data the search often picks 0.5–1, which keeps the
	// few popular items from absorbing every user's taste.
	ItemLambdaExponent float64 `json:"item_lambda_exponent,omitempty"`
	// HalfLife is the half-life of the time decay of interaction weights,
	// measured back from the user's latest interaction (see DecayHistory);
	// 0 disables decay.
	HalfLife time.Duration `json:"half_life"`
	// Iterations is the number of alternating sweeps of batch training.
	Iterations int `json:"iterations"`
	// Solver is the per-row solver of batch training (fold-in is always exact).
	Solver Solver `json:"solver"`
	// CGSteps is the number of conjugate-gradient steps per row and sweep.
	CGSteps int `json:"cg_steps"`
	// InitScale is the standard deviation of the random initial factors.
	InitScale float64 `json:"init_scale"`
	// Seed seeds the random initial factors.
	Seed uint64 `json:"seed"`
	// Threads is the number of training goroutines; 0 means GOMAXPROCS.
	Threads int `json:"-"`
}

// DefaultParams returns the hyperparameters Kairos ships with. They were
// chosen by `kairos eval offline --tune` on the validation split of
// MovieLens 100K (PROTOCOL.md "Tuning"); README.md lists the search.
func DefaultParams() Params {
	return Params{
		Factors:    64,
		Lambda:     20,
		Alpha:      20,
		HalfLife:   time.Minute,
		Iterations: 10,
		Solver:     SolverCG,
		CGSteps:    3,
		InitScale:  0.01,
		Seed:       0,
	}
}

// Validate reports every problem with p at once.
func (p Params) Validate() error {
	var errs []error
	if p.Factors < 1 || p.Factors > 1024 {
		errs = append(errs, fmt.Errorf("factors %d outside [1, 1024]", p.Factors))
	}
	if !(p.Lambda > 0) || math.IsInf(p.Lambda, 0) {
		errs = append(errs, fmt.Errorf("lambda %v must be finite and > 0", p.Lambda))
	}
	if !(p.Alpha >= 0) || math.IsInf(p.Alpha, 0) {
		errs = append(errs, fmt.Errorf("alpha %v must be finite and >= 0", p.Alpha))
	}
	if !(p.ItemLambdaExponent >= 0 && p.ItemLambdaExponent <= MaxItemLambdaExponent) {
		errs = append(errs, fmt.Errorf("item_lambda_exponent %v outside [0, %v]", p.ItemLambdaExponent, MaxItemLambdaExponent))
	}
	if p.HalfLife < 0 {
		errs = append(errs, fmt.Errorf("half_life %v must be >= 0", p.HalfLife))
	}
	if p.Iterations < 0 {
		errs = append(errs, fmt.Errorf("iterations %d must be >= 0", p.Iterations))
	}
	if p.Solver != SolverCG && p.Solver != SolverCholesky {
		errs = append(errs, fmt.Errorf("unknown solver %d", int(p.Solver)))
	}
	if p.Solver == SolverCG && p.CGSteps < 1 {
		errs = append(errs, fmt.Errorf("cg_steps %d must be >= 1", p.CGSteps))
	}
	if !(p.InitScale > 0) || math.IsInf(p.InitScale, 0) {
		errs = append(errs, fmt.Errorf("init_scale %v must be finite and > 0", p.InitScale))
	}
	if p.Threads < 0 {
		errs = append(errs, fmt.Errorf("threads %d must be >= 0", p.Threads))
	}
	if len(errs) > 0 {
		return fmt.Errorf("model: invalid params: %w", errors.Join(errs...))
	}
	return nil
}

func (p Params) threads() int {
	if p.Threads > 0 {
		return p.Threads
	}
	return runtime.GOMAXPROCS(0)
}

// MarshalJSON encodes p with the half-life as a Go duration string.
func (p Params) MarshalJSON() ([]byte, error) {
	type plain Params
	return json.Marshal(struct {
		plain
		HalfLife string `json:"half_life"`
	}{plain(p), p.HalfLife.String()})
}

// UnmarshalJSON decodes what MarshalJSON encodes.
func (p *Params) UnmarshalJSON(b []byte) error {
	type plain Params
	aux := struct {
		*plain
		HalfLife string `json:"half_life"`
	}{plain: (*plain)(p)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	if aux.HalfLife == "" {
		p.HalfLife = 0
		return nil
	}
	d, err := time.ParseDuration(aux.HalfLife)
	if err != nil {
		return fmt.Errorf("half_life: %w", err)
	}
	p.HalfLife = d
	return nil
}

// MaxItemLambdaExponent bounds Params.ItemLambdaExponent: beyond it the
// rarest and the most popular items' λ differ by more than the float
// range of a useful solve.
const MaxItemLambdaExponent = 2

// itemLambda returns the λ of an item with n distinct users when the items
// have mean mean (see Params.ItemLambdaExponent). An item without users
// counts as one.
func (p Params) itemLambda(n int, mean float64) float64 {
	if p.ItemLambdaExponent == 0 || !(mean > 0) {
		return p.Lambda
	}
	return p.Lambda * math.Pow(float64(max(n, 1))/mean, p.ItemLambdaExponent)
}
