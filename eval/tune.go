package eval

import (
	"context"
	"slices"
	"time"

	"github.com/kairoshq/kairos/model"
)

// Grid is the hyperparameter search space of Tune. Every combination of
// Factors × Lambda × Alpha × HalfLife is trained once for max(Iterations)
// sweeps and evaluated after each listed iteration count.
type Grid struct {
	Factors    []int
	Lambda     []float64
	Alpha      []float64
	HalfLife   []time.Duration
	Iterations []int
}

// DefaultGrid is the search space `kairos eval offline --tune` uses.
func DefaultGrid() Grid {
	return Grid{
		Factors:    []int{32, 64, 128},
		Lambda:     []float64{5, 10, 20, 50},
		Alpha:      []float64{5, 20, 50},
		HalfLife:   []time.Duration{time.Minute, 6 * time.Minute, time.Hour, 24 * time.Hour, 0},
		Iterations: []int{5, 10, 15},
	}
}

// Trial is one evaluated configuration of a search.
type Trial struct {
	Params model.Params `json:"params"`
	Metrics
}

// Tune searches g on the validation split of s (PROTOCOL.md "Tuning": each
// user's latest training interaction is held out, the rest is fitted; the
// test items are never looked at) and returns every trial and the best by
// validation NDCG@10. base supplies the fields the grid does not vary.
// onTrial, when not nil, sees each trial as it completes.
func Tune(ctx context.Context, val Split, g Grid, base model.Params, unit TimeUnit, threads int, onTrial func(Trial)) ([]Trial, Trial, error) {
	var trials []Trial
	best := Trial{}
	maxIt := slices.Max(g.Iterations)
	for _, k := range g.Factors {
		for _, lambda := range g.Lambda {
			for _, alpha := range g.Alpha {
				for _, hl := range g.HalfLife {
					p := base
					p.Factors, p.Lambda, p.Alpha, p.HalfLife, p.Iterations = k, lambda, alpha, hl, maxIt
					var evalErr error
					progress := func(it int, m *model.Model) {
						if evalErr != nil || !slices.Contains(g.Iterations, it) {
							return
						}
						metrics, _, _, err := Evaluate(ctx, val, ALSScorer(m), threads)
						if err != nil {
							evalErr = err
							return
						}
						tp := p
						tp.Iterations = it
						t := Trial{Params: tp, Metrics: metrics}
						trials = append(trials, t)
						if best.Users == 0 || t.NDCG10 > best.NDCG10 {
							best = t
						}
						if onTrial != nil {
							onTrial(t)
						}
					}
					if _, _, err := TrainALS(ctx, val, p, unit, progress); err != nil {
						return trials, best, err
					}
					if evalErr != nil {
						return trials, best, evalErr
					}
				}
			}
		}
	}
	return trials, best, nil
}
