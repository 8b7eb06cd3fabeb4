package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/kairoshq/kairos/model"
)

// newFlagSet returns the flag set of the command name: parse errors are
// returned, and usage and errors are written to stderr.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseNoArgs parses args into fs and refuses positional arguments.
func parseNoArgs(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	return nil
}

// parseInterspersed parses args into fs as fs.Parse does, but lets flags
// follow the positional arguments (`tenant rotate shop-c --grace 1h`),
// which it returns in order; after "--" everything is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if consumed := args[:len(args)-len(rest)]; len(consumed) > 0 && consumed[len(consumed)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// atLeast returns an error naming flag when v < least, else nil.
func atLeast(flag string, v, least int) error {
	if v < least {
		return fmt.Errorf("--%s: %d is less than %d", flag, v, least)
	}
	return nil
}

// guardUsersFlag returns an error naming flag when n is 0: a bound on the
// users a retrain's guard ranks is positive, or negative for all of them.
func guardUsersFlag(flag string, n int) error {
	if n == 0 {
		return fmt.Errorf("--%s: 0 would rank no user: give a positive bound, or a negative one for every user", flag)
	}
	return nil
}

// nonNegative returns an error naming flag when d < 0, else nil.
func nonNegative(flag string, d time.Duration) error {
	if d < 0 {
		return fmt.Errorf("--%s: %v is negative", flag, d)
	}
	return nil
}

// flagSet reports whether the flag name was given on fs's command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// paramFlags binds the ALS hyperparameter flags to p (defaults from p).
func paramFlags(fs *flag.FlagSet, p *model.Params) *string {
	fs.IntVar(&p.Factors, "factors", p.Factors, "number of latent factors k")
	fs.Float64Var(&p.Lambda, "lambda", p.Lambda, "L2 regularisation λ")
	fs.Float64Var(&p.Alpha, "alpha", p.Alpha, "confidence scale α (c = 1 + α·w); unset: half and double it are also tried on the validation split (each with either ν while ν is fitted, and on the same way again while each step wins), the best kept when clearly better")
	fs.Float64Var(&p.ItemLambdaExponent, "item-lambda-exponent", p.ItemLambdaExponent, "ν, 0..2: item i's λ is λ·(n_i/n̄)^ν, n_i its users (unset: 0 or 1, fitted on the validation split; 0 = plain λ)")
	fs.IntVar(&p.Iterations, "iterations", p.Iterations, "ALS sweeps")
	fs.DurationVar(&p.HalfLife, "half-life", p.HalfLife, "half-life of interaction weights, back from each user's latest (0 = no decay); unset: a week and no decay are also tried on the validation split, the better kept when clearly better")
	fs.IntVar(&p.CGSteps, "cg-steps", p.CGSteps, "conjugate-gradient steps per row and sweep")
	fs.Uint64Var(&p.Seed, "seed", p.Seed, "seed of the initial factors")
	fs.IntVar(&p.Threads, "threads", 0, "training and evaluation goroutines (0 = all cores)")
	return fs.String("solver", p.Solver.String(), "row solver: cg or cholesky")
}

// setSolver sets p.Solver from the value of --solver.
func setSolver(p *model.Params, solver string) error {
	s, err := model.ParseSolver(solver)
	if err != nil {
		return err
	}
	p.Solver = s
	return nil
}

// checkParams sets p.Solver from the value of --solver and validates p.
func checkParams(p *model.Params, solver string) error {
	if err := setSolver(p, solver); err != nil {
		return err
	}
	return p.Validate()
}

// writeJSON writes v to w as one JSON line.
func writeJSON(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}

// writeJSONLines writes every element of vs to w, one JSON line each.
func writeJSONLines[T any](w io.Writer, vs []T) error {
	enc := json.NewEncoder(w)
	for _, v := range vs {
		if err := enc.Encode(v); err != nil {
			return err
		}
	}
	return nil
}
