package offline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/kairoshq/kairos/eval"
	"github.com/kairoshq/kairos/model"
)

// validation holds out, for every user with at least 2 pairs before the
// tail, the latest of them (ties: the larger item row): the validation
// split of PROTOCOL.md applied to the events before the tail. It returns
// the held pairs and the split (times are the pairs' latest events).
func (d *retrainData) validation() ([]bool, eval.Split) { return d.holdLatest(nil) }

// fold holds out each user's next pair, the latest of those not held
// (the validation split's held pairs), for users with at least 2 of them;
// the split trains on every other pair, the validation split's held ones
// included (eval.Holdout.Fold's rule).
func (d *retrainData) fold(held []bool) ([]bool, eval.Split) { return d.holdLatest(held) }

// holdLatest holds out, for every user with at least 2 pairs before the
// tail outside skip (nil: none), the latest of them; the split trains on
// every pair not held out.
func (d *retrainData) holdLatest(skip []bool) ([]bool, eval.Split) {
	pre := d.pre
	users, items := len(d.users.ids), len(d.items.ids)
	last := make([]int, users)
	count := make([]int, users)
	for u := range last {
		last[u] = -1
	}
	for j := range pre.keys {
		if skip != nil && skip[j] {
			continue
		}
		u := pre.user(j)
		count[u]++
		q := last[u]
		if q < 0 || pre.maxT[j] > pre.maxT[q] || (pre.maxT[j] == pre.maxT[q] && pre.item(j) > pre.item(q)) {
			last[u] = j
		}
	}
	held := make([]bool, pre.len())
	s := eval.Split{Users: users, Items: items, Held: make([]int32, users)}
	for u, j := range last {
		s.Held[u] = -1
		if count[u] >= 2 {
			held[j] = true
			s.Held[u] = pre.item(j)
		} else if count[u] == 1 {
			s.Skipped++
		}
	}
	for j := range pre.keys {
		if !held[j] {
			s.Train = append(s.Train, eval.Interaction{User: pre.user(j), Item: pre.item(j), Time: pre.maxT[j], Weight: 1})
		}
	}
	return held, s
}

// pick chooses the new model's hyperparameters (a search when cfg.Tune is
// set) and fits its popularity prior on the validation split.
func (d *retrainData) pick(ctx context.Context, r *RetrainResult, cfg RetrainConfig, p *progress) error {
	held, val := d.validation()
	if !slices.ContainsFunc(val.Held, func(i int32) bool { return i >= 0 }) {
		p.line("no user with 2 events before the tail: no validation, no popularity prior")
		r.Blend.Prior = 0
		return nil
	}
	v := d.pre.without(held)
	users, items := len(d.users.ids), len(d.items.ids)
	matrix := func(hl time.Duration) (*model.Matrix, error) { return v.matrix(users, items, hl) }
	params := cfg.Params
	if t := cfg.Tune; t != nil {
		space := t.Space
		space.HalfLife = slices.DeleteFunc(slices.Clone(space.HalfLife), func(hl time.Duration) bool { return d.pre.halfLife(hl) < 0 })
		if len(space.HalfLife) == 0 {
			space.HalfLife = []time.Duration{cfg.Params.HalfLife}
		}
		bar := eval.NewSearchBar(p.w, t.Budget)
		sc := eval.SearchConfig{Space: space, Base: cfg.Params, Starts: t.Starts, Budget: t.Budget,
			Seed: t.Seed, Unit: time.Nanosecond, Matrix: matrix, OnTrial: bar.Trial, MinUsers: t.MinUsers}
		if cfg.FitItemLambda || cfg.FitHalfLife || cfg.FitAlpha {
			// The reference is the model an untuned retrain would train.
			sc.FitBase = &eval.DefaultsChoice{HalfLife: cfg.FitHalfLife, ItemLambdaExponent: cfg.FitItemLambda, Alpha: cfg.FitAlpha}
		}
		res, err := eval.Search(ctx, val, sc)
		bar.Done()
		if f := res.BaseFit; f != nil {
			for _, line := range f.Lines() {
				p.line("reference: " + line)
			}
		}
		switch {
		case errors.Is(err, eval.ErrTooFewUsers):
			p.line(fmt.Sprintf("not tuned: %v", err))
			r.Search = &SearchSummary{Stopped: res.Stopped, BudgetS: t.Budget.Seconds()}
		case err != nil:
			return fmt.Errorf("offline: search: %w", err)
		default:
			params = res.Best.Params
			r.Search = &SearchSummary{Trials: len(res.Trials), Configs: res.Configs, Brackets: res.Brackets, Stopped: res.Stopped,
				BudgetS: t.Budget.Seconds(), SearchS: res.Elapsed.Seconds(), WarmStarts: len(t.Starts), Confirmed: res.Confirmed, KeptBase: res.KeptReference}
			if res.VsReference != nil {
				r.Search.VsBaseT = res.VsReference.T
			}
			if res.KeptReference {
				p.line("the search's best did not beat the configured parameters (as an untuned retrain fits them) on validation: they are kept")
			}
		}
	}
	train := func(q model.Params) (*model.Model, error) {
		m, err := matrix(q.HalfLife)
		if err != nil {
			return nil, err
		}
		start := time.Now()
		return model.Train(ctx, m, q, func(it int, _ *model.Model) { p.iteration("validation model", it, q.Iterations, start) })
	}
	var best eval.BlendTrial
	grid := eval.DefaultBlendGrid()
	if cfg.Tune != nil {
		grid = eval.TunedBlendGrid()
	}
	if cfg.NoItemNeighbours {
		grid.Neighbours = nil
	}
	if (cfg.FitItemLambda || cfg.FitHalfLife || cfg.FitAlpha) && cfg.Tune == nil {
		choice := eval.DefaultsChoice{HalfLife: cfg.FitHalfLife, ItemLambdaExponent: cfg.FitItemLambda, Alpha: cfg.FitAlpha}
		fit, err := eval.FitDefaults(ctx, val, params, choice, grid, params.Threads, train)
		if err != nil {
			return err
		}
		for _, line := range fit.Lines() {
			p.line(line)
		}
		params, best = fit.Params, fit.Pick
	} else {
		mod, err := train(params)
		if err != nil {
			return err
		}
		if best, _, err = eval.FitBlendUsers(ctx, val, mod, grid, params.Threads, eval.DefaultFitUsers); err != nil {
			return err
		}
	}
	r.Params, r.Blend, r.Validation = params, best.Blend, &best.Metrics
	p.line(fmt.Sprintf("validation NDCG@10 %.4f over %d users with prior ρ = %g, κ = %g, item neighbours η = %g", best.NDCG10, best.Users, best.Blend.Prior, best.Blend.Kappa, best.Blend.Neighbours))
	return d.confirm(ctx, r, held, best, grid.PopularityHeavy(), p)
}

// confirm checks the fitted blend r.Blend (pick's) on a further
// validation split, each user's next pair (eval.ConfirmPick against the
// popularity-heavy blend ph), and replaces it with ph when it is worse
// there. A blend that is ph already, or data without such a split, is
// left as it is; one that beat ph on validation by eval.ConfirmSkipT
// stands without the split's training.
func (d *retrainData) confirm(ctx context.Context, r *RetrainResult, held []bool, pick eval.BlendTrial, ph model.Blend, p *progress) error {
	b, c, err := eval.ConfirmPick(ctx, pick, ph, func() (eval.Split, *model.Model, bool, error) {
		foldHeld, fold := d.fold(held)
		if !slices.ContainsFunc(fold.Held, func(i int32) bool { return i >= 0 }) {
			return fold, nil, false, nil
		}
		mod, _, err := d.train(ctx, d.pre.without(foldHeld), r.Params, p, "confirming model")
		return fold, mod, err == nil, err
	}, r.Params.Threads, eval.DefaultFitUsers)
	if err != nil {
		return fmt.Errorf("offline: confirm the blend: %w", err)
	}
	r.Blend, r.BlendConfirm = b, c
	switch {
	case c == nil:
	case c.Skipped:
		p.line(fmt.Sprintf("blend confirmed on validation: NDCG@10 %.4f against the popularity-heavy blend's %.4f (paired t = %.2f ≥ %g, %d users); no confirming model trained", c.NDCG10, c.PopularityNDCG10, c.T, eval.ConfirmSkipT, c.Users))
	case c.Kept:
		p.line(fmt.Sprintf("blend confirmed on each user's next event: NDCG@10 %.4f against the popularity-heavy blend's %.4f (paired t = %.2f, %d users)", c.NDCG10, c.PopularityNDCG10, c.T, c.Users))
	default:
		p.line(fmt.Sprintf("blend refused on each user's next event: NDCG@10 %.4f against the popularity-heavy blend's %.4f (paired t = %.2f, %d users); the popularity-heavy blend ρ = %g, κ = %g ranks", c.NDCG10, c.PopularityNDCG10, c.T, c.Users, ph.Prior, ph.Kappa))
	}
	return nil
}
