package offline

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/kairoshq/kairos/eval"
	"github.com/kairoshq/kairos/model"
)

// ranker ranks each evaluated user's tail item with one model.
type ranker struct {
	name   string
	online *model.Online
	params model.Params
	blend  model.Blend
	// hists are the users' histories before the tail, weighted with the
	// model's half-life.
	hists map[int32][]model.ItemWeight
	// pop: popularity alone (no factors).
	pop bool
}

// guard ranks the tail with the retrained model, the live one (as of the
// tail's start) and popularity, and compares them user by user.
func (d *retrainData) guard(ctx context.Context, r *RetrainResult, live *LiveModel, p *progress) error {
	pre := d.pre.all()
	cand, _, err := d.train(ctx, pre, r.Params, p, "pre-tail model")
	if err != nil {
		return err
	}
	rankers := []ranker{}
	rk, err := d.modelRanker("retrained", pre, cand.Params, cand.Items, r.Blend)
	if err != nil {
		return err
	}
	rankers = append(rankers, rk)
	if live != nil {
		lr, err := d.liveRanker(ctx, pre, live, p)
		if err != nil {
			return err
		}
		rankers = append(rankers, lr)
		r.Reference = d.reference
	}
	rankers = append(rankers, ranker{name: "popularity", pop: true})
	users := make([]int32, 0, len(d.targets))
	for u := range d.targets {
		users = append(users, u)
	}
	slices.Sort(users)
	counts, seen, events := d.preStats()
	ranks := make([][]int, len(rankers))
	for j, rk := range rankers {
		if ranks[j], err = d.rankAll(ctx, rk, users, counts, seen, events); err != nil {
			return err
		}
		m := eval.Ranking{Ranks: ranks[j]}.Summarize()
		r.Evaluations = append(r.Evaluations, Evaluation{Model: rk.name, Users: m.Users, HR10: m.HR10, NDCG10: m.NDCG10, Recall50: m.Recall50, NDCG10SE: m.NDCG10SE})
	}
	for j := 1; j < len(rankers); j++ {
		c := eval.ComparePaired(ranks[0], ranks[j])
		r.Comparisons = append(r.Comparisons, Comparison{A: rankers[0].name, B: rankers[j].name, Users: c.Users, Diff: c.NDCGDiff, SE: c.SE, T: c.T})
	}
	return nil
}

// modelRanker ranks with item factors in this retrain's item rows.
func (d *retrainData) modelRanker(name string, pre view, params model.Params, items *model.Factors, b model.Blend) (ranker, error) {
	o, err := model.NewOnline(&model.Model{Params: params, Items: items}, nil)
	if err != nil {
		return ranker{}, fmt.Errorf("offline: %s model: %w", name, err)
	}
	return ranker{name: name, online: o, params: params, blend: b, hists: pre.histories(d.targets, params.HalfLife)}, nil
}

// liveRanker returns the live model as of the tail's start: its snapshot
// (reference "snapshot") or its parameters trained on the events before
// the tail ("recipe").
func (d *retrainData) liveRanker(ctx context.Context, pre view, live *LiveModel, p *progress) (ranker, error) {
	if d.reference == ReferenceSnapshot {
		s := live.Snapshot
		items := model.NewFactors(len(d.items.ids), s.Meta.Params.Factors)
		for row, id := range s.ItemIDs {
			if i, ok := d.items.pos[id]; ok {
				copy(items.Row(int(i)), s.Items.Row(row))
			}
		}
		b := live.Blend
		if s.Meta.Blend != nil {
			b.Prior, b.Kappa = s.Meta.Blend.Prior, s.Meta.Blend.Kappa
		}
		return d.modelRanker("live", pre, s.Meta.Params, items, b)
	}
	params := live.Params
	params.Threads = d.threads
	mod, _, err := d.train(ctx, pre, params, p, "live model as of the tail")
	if err != nil {
		return ranker{}, err
	}
	return d.modelRanker("live", pre, params, mod.Items, live.Blend)
}

// preStats returns the popularity (pairs per item), each user's items and
// number of pairs before the tail.
func (d *retrainData) preStats() ([]float32, map[int32]map[int32]struct{}, map[int32]int) {
	counts := make([]float32, len(d.items.ids))
	events := map[int32]int{}
	for j := range d.pre.keys {
		counts[d.pre.item(j)]++
		events[d.pre.user(j)]++
	}
	return counts, d.pre.all().userItems(), events
}

// rankAll ranks every user's tail item with rk (concurrently); rank 0:
// not ranked.
func (d *retrainData) rankAll(ctx context.Context, rk ranker, users []int32, counts []float32, seen map[int32]map[int32]struct{}, events map[int32]int) ([]int, error) {
	ranks := make([]int, len(users))
	threads := runtime.GOMAXPROCS(0)
	if d.threads > 0 {
		threads = d.threads
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, threads)
	for t := range threads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var ws *model.Workspace
			var x, personal []float32
			if rk.online != nil {
				ws, x = model.NewWorkspace(rk.params.Factors), make([]float32, rk.params.Factors)
			}
			dst := make([]float32, len(d.items.ids))
			for ctx.Err() == nil {
				j := int(next.Add(1) - 1)
				if j >= len(users) {
					return
				}
				u := users[j]
				if rk.pop {
					copy(dst, counts)
				} else {
					if err := rk.online.FoldUser(ws, x, rk.hists[u]); err != nil {
						errs[t] = err
						return
					}
					personal = rk.online.ScoreAll(personal, x, false)
					dst = rk.blend.Scores(dst, model.BlendInput{Personal: personal, Trending: counts, Events: events[u]})
				}
				ranks[j] = rankTarget(dst, d.targets[u], seen[u])
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("offline: rank the tail: %w", err)
		}
	}
	return ranks, nil
}

// rankTarget is the 1-based rank of target among the items not seen:
// ties count against it; a NaN target ranks last (PROTOCOL.md).
func rankTarget(scores []float32, target int32, seen map[int32]struct{}) int {
	t := scores[target]
	if math.IsNaN(float64(t)) || math.IsInf(float64(t), -1) {
		return len(scores) - len(seen)
	}
	r := 1
	for j, v := range scores {
		if int32(j) == target || !(v >= t) {
			continue
		}
		if _, s := seen[int32(j)]; s {
			continue
		}
		r++
	}
	return r
}
