package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
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
	path, format, weights, timeUnit string
}

func (d *datasetFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&d.path, "data", "", "dataset file (e.g. ../shared/data/ml-100k/u.data)")
	fs.StringVar(&d.format, "format", "movielens", "dataset format: movielens or csv (header naming user,item[,timestamp][,weight])")
	fs.StringVar(&d.weights, "weights", "auto", "weight scaling: one, raw, log (log(1+w), for play counts) or auto (log when the file has a weight column)")
	fs.StringVar(&d.timeUnit, "time-unit", "s", "unit of the dataset's integer times: s or ms")
}

func (d *datasetFlags) load() (*eval.Dataset, time.Duration, error) {
	if d.path == "" {
		return nil, 0, errors.New("--data is required")
	}
	unit := time.Second
	switch d.timeUnit {
	case "s":
	case "ms":
		unit = time.Millisecond
	default:
		return nil, 0, fmt.Errorf("--time-unit %q: want s or ms", d.timeUnit)
	}
	recs, err := eval.Load(d.path, eval.Format(d.format))
	if err != nil {
		return nil, 0, err
	}
	scale := eval.WeightScale(d.weights)
	switch scale {
	case eval.WeightOne, eval.WeightRaw, eval.WeightLog:
	case "auto":
		scale = eval.WeightOne
		for _, r := range recs {
			if r.Weight != 1 {
				scale = eval.WeightLog
				break
			}
		}
	default:
		return nil, 0, fmt.Errorf("--weights %q: want one, raw, log or auto", d.weights)
	}
	return eval.Build(recs, scale), unit, nil
}

// paramFlags binds the ALS hyperparameter flags to p (defaults from p).
func paramFlags(fs *flag.FlagSet, p *model.Params) *string {
	fs.IntVar(&p.Factors, "factors", p.Factors, "number of latent factors k")
	fs.Float64Var(&p.Lambda, "lambda", p.Lambda, "L2 regularisation λ")
	fs.Float64Var(&p.Alpha, "alpha", p.Alpha, "confidence scale α (c = 1 + α·w)")
	fs.IntVar(&p.Iterations, "iterations", p.Iterations, "ALS sweeps")
	fs.DurationVar(&p.HalfLife, "half-life", p.HalfLife, "half-life of interaction weights, back from each user's latest (0 = no decay)")
	fs.IntVar(&p.CGSteps, "cg-steps", p.CGSteps, "conjugate-gradient steps per row and sweep")
	fs.Uint64Var(&p.Seed, "seed", p.Seed, "seed of the initial factors")
	fs.IntVar(&p.Threads, "threads", 0, "training and evaluation goroutines (0 = all cores)")
	return fs.String("solver", p.Solver.String(), "row solver: cg or cholesky")
}

func runEvalOffline(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("eval offline", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var df datasetFlags
	df.register(fs)
	p := model.DefaultParams()
	solver := paramFlags(fs, &p)
	which := fs.String("model", "all", "models to evaluate: pop, als or all")
	tune := fs.Bool("tune", false, "pick k, λ, α, half-life and iterations by validation NDCG@10, then report the test numbers of the pick")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var err error
	if p.Solver, err = model.ParseSolver(*solver); err != nil {
		return err
	}
	if err := p.Validate(); err != nil {
		return err
	}
	if *which != "pop" && *which != "als" && *which != "all" {
		return fmt.Errorf("--model %q: want pop, als or all", *which)
	}
	ds, unit, err := df.load()
	if err != nil {
		return err
	}
	split := eval.LeaveLastOut(len(ds.Users), len(ds.Items), ds.Interactions)
	fmt.Fprintf(stderr, "loaded %d users, %d items, %d training interactions\n", split.Users, split.Items, len(split.Train))
	enc := json.NewEncoder(stdout)
	var pop, als eval.Result
	if *which != "als" {
		if pop, err = eval.OfflinePopularity(ctx, split, p.Threads); err != nil {
			return err
		}
		if err := enc.Encode(pop); err != nil {
			return err
		}
	}
	if *which == "pop" {
		return nil
	}
	if *tune {
		if p, err = runTune(ctx, split, p, unit, enc, stderr); err != nil {
			return err
		}
	}
	fmt.Fprintf(stderr, "training ALS %+v\n", p)
	if als, err = eval.OfflineALS(ctx, split, p, unit, p.Threads); err != nil {
		return err
	}
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

func runTune(ctx context.Context, split eval.Split, base model.Params, unit time.Duration, enc *json.Encoder, stderr io.Writer) (model.Params, error) {
	g := eval.DefaultGrid()
	n := len(g.Factors) * len(g.Lambda) * len(g.Alpha) * len(g.HalfLife) * len(g.Iterations)
	done := 0
	start := time.Now()
	_, best, err := eval.Tune(ctx, split, g, base, unit, base.Threads, func(t eval.Trial) {
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
