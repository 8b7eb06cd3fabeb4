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
	// nb are the item neighbours the blend's η weighs (nil: none).
	nb *model.Neighbours
}

// guard ranks the tail with the retrained model, the live one (as of the
// tail's start) and popularity, and compares them user by user.
// At most maxUsers of the tail's users are ranked (0: all).
func (d *retrainData) guard(ctx context.Context, r *RetrainResult, live *LiveModel, maxUsers int, p *progress) error {
	pre := d.pre.all()
	cand, mat, err := d.train(ctx, pre, r.Params, p, "pre-tail model")
	if err != nil {
		return err
	}
	// The events before the tail have one set of item neighbours, built
	// once for every model that weighs them (the weights, which differ
	// with the half-life, do not count).
	preNeighbours := sync.OnceValues(func() (*model.Neighbours, error) { return buildNeighbours(ctx, mat) })
	rankers := []ranker{}
	rk, err := d.modelRanker("retrained", pre, cand.Params, cand.Items, r.Blend)
	if err != nil {
		return err
	}
	if r.Blend.Neighbours > 0 {
		if rk.nb, err = preNeighbours(); err != nil {
			return err
		}
	}
	rankers = append(rankers, rk)
	if live != nil {
		lr, err := d.liveRanker(ctx, pre, live, p, preNeighbours)
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
	r.TailUsers = len(users)
	users = eval.Spread(users, maxUsers)
	if len(users) < r.TailUsers {
		p.line(fmt.Sprintf("guard: ranking %d of the tail's %d users (an even spread)", len(users), r.TailUsers))
	}
	counts, seen, events := d.preStats()
	ndcg := make([][]float64, len(rankers))
	for j, rk := range rankers {
		m, err := d.rankAll(ctx, rk, users, counts, seen, events)
		if err != nil {
			return err
		}
		ndcg[j] = m.ndcg
		r.Evaluations = append(r.Evaluations, m.summary(rk.name))
	}
	for j := 1; j < len(rankers); j++ {
		c := eval.ComparePairedValues(ndcg[0], ndcg[j])
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
// the tail ("recipe"). preNeighbours returns the item neighbours of the
// events before the tail, which a recipe's blend weighs when it has an η.
func (d *retrainData) liveRanker(ctx context.Context, pre view, live *LiveModel, p *progress, preNeighbours func() (*model.Neighbours, error)) (ranker, error) {
	if d.reference == ReferenceSnapshot {
		s := live.Snapshot
		items := model.NewFactors(len(d.items.ids), s.Meta.Params.Factors)
		rows := make([]int32, len(s.ItemIDs)) // this retrain's row of each snapshot item, -1: none
		for row, id := range s.ItemIDs {
			rows[row] = -1
			if i, ok := d.items.pos[id]; ok {
				rows[row] = i
				copy(items.Row(int(i)), s.Items.Row(row))
			}
		}
		b := live.Blend
		if s.Meta.Blend != nil {
			b.Prior, b.Kappa, b.Neighbours = s.Meta.Blend.Prior, s.Meta.Blend.Kappa, s.Meta.Blend.Neighbours
		}
		rk, err := d.modelRanker("live", pre, s.Meta.Params, items, b)
		if err == nil && s.Neighbours != nil && b.Neighbours > 0 {
			rk.nb = s.Neighbours.Remap(rows, len(d.items.ids))
		}
		return rk, err
	}
	params := live.Params
	params.Threads = d.threads
	mod, _, err := d.train(ctx, pre, params, p, "live model as of the tail")
	if err != nil {
		return ranker{}, err
	}
	rk, err := d.modelRanker("live", pre, params, mod.Items, live.Blend)
	if err == nil && live.Blend.Neighbours > 0 {
		rk.nb, err = preNeighbours()
	}
	return rk, err
}

// blendNeighbours builds the item neighbours of mat when blend b weighs
// them (η > 0), else returns nil.
func blendNeighbours(ctx context.Context, mat *model.Matrix, b model.Blend) (*model.Neighbours, error) {
	if !(b.Neighbours > 0) {
		return nil, nil
	}
	return buildNeighbours(ctx, mat)
}

// buildNeighbours builds the item neighbours of mat the way every
// retrain does (model.DefaultNeighbourConfig).
func buildNeighbours(ctx context.Context, mat *model.Matrix) (*model.Neighbours, error) {
	nb, err := model.BuildNeighbours(ctx, mat, model.DefaultNeighbourConfig())
	if err != nil {
		return nil, fmt.Errorf("offline: item neighbours: %w", err)
	}
	return nb, nil
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

// userMetrics are one model's per-user figures on the tail.
type userMetrics struct {
	ndcg, hit, recall []float64
}

func (m userMetrics) summary(name string) Evaluation {
	ev := Evaluation{Model: name, Users: len(m.ndcg)}
	if ev.Users == 0 {
		return ev
	}
	var sum, sq float64
	for j, v := range m.ndcg {
		sum += v
		sq += v * v
		ev.HR10 += m.hit[j]
		ev.Recall50 += m.recall[j]
	}
	n := float64(ev.Users)
	ev.NDCG10, ev.HR10, ev.Recall50 = sum/n, ev.HR10/n, ev.Recall50/n
	if ev.Users > 1 {
		ev.NDCG10SE = math.Sqrt(max(sq/n-ev.NDCG10*ev.NDCG10, 0)*n/(n-1)) / math.Sqrt(n)
	}
	return ev
}

// rankAll ranks every user's tail items with rk (concurrently).
func (d *retrainData) rankAll(ctx context.Context, rk ranker, users []int32, counts []float32, seen map[int32]map[int32]struct{}, events map[int32]int) (userMetrics, error) {
	m := userMetrics{ndcg: make([]float64, len(users)), hit: make([]float64, len(users)), recall: make([]float64, len(users))}
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
			var x, personal, nbScores []float32
			if rk.nb != nil {
				nbScores = make([]float32, len(d.items.ids))
			}
			var rows []int32
			if rk.online != nil {
				ws, x = model.NewWorkspace(rk.params.Factors), make([]float32, rk.params.Factors)
			}
			dst := make([]float32, len(d.items.ids))
			var sc model.Scorer
			var top []model.Scored
			for ctx.Err() == nil {
				j := int(next.Add(1) - 1)
				if j >= len(users) {
					return
				}
				u := users[j]
				if rk.pop {
					popularityScores(dst, counts)
				} else {
					if err := rk.online.FoldUser(ws, x, rk.hists[u]); err != nil {
						errs[t] = err
						return
					}
					personal = rk.online.ScoreAll(personal, x, false)
					in := model.BlendInput{Personal: personal, Trending: counts, Events: events[u]}
					if nbScores != nil {
						clear(nbScores)
						rows = rows[:0]
						for _, h := range rk.hists[u] {
							rows = append(rows, h.Item)
						}
						rk.nb.Scores(nbScores, rows, nil)
						in.Neighbours = nbScores
					}
					dst = rk.blend.Scores(dst, in)
				}
				top = sc.SelectTop(top, dst, 51, excludeSet(seen[u], len(dst)), nil)
				m.ndcg[j], m.hit[j], m.recall[j] = scoreTargets(dst, top, d.targets[u])
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return m, err
	}
	for _, err := range errs {
		if err != nil {
			return m, fmt.Errorf("offline: rank the tail: %w", err)
		}
	}
	return m, nil
}

// popularityScores writes the popularity ranking to dst: the counts,
// ties broken by a fixed pseudo-random order of the items (a fraction of
// a count, so that it never reorders different counts) rather than against
// the held-out item, so that a model is not credited for breaking ties.
func popularityScores(dst, counts []float32) {
	for i, c := range counts {
		h := uint32(i) * 2654435761 // Knuth's multiplicative hash
		dst[i] = c + 0.25*float32(h>>22)/1024
	}
}

// excludeSet returns the items of seen as a bitset over n items.
func excludeSet(seen map[int32]struct{}, n int) model.Bitset {
	b := model.NewBitset(n)
	for i := range seen {
		b.Set(int(i))
	}
	return b
}

// scoreTargets returns NDCG@10, HR@10 and Recall@50 of the relevant
// items given every candidate's score and the top 51 candidates (best
// first). A relevant item's rank is 1 + #{candidates j ≠ it: s_j ≥ s_it}
// (ties count against it); only ranks up to 50 matter, and they are found
// among the top 51.
func scoreTargets(scores []float32, top []model.Scored, targets []int32) (ndcg, hit, recall float64) {
	var dcg float64
	hits50 := 0
	for _, t := range targets {
		s := scores[t]
		if math.IsNaN(float64(s)) || math.IsInf(float64(s), -1) {
			continue
		}
		if len(top) == 51 && s < top[50].Score {
			continue // below the 51st candidate: rank > 50
		}
		r := 1
		for _, c := range top {
			if c.Item != t && c.Score >= s {
				r++
			}
		}
		if r <= 10 {
			dcg += 1 / math.Log2(float64(r)+1)
			hit = 1
		}
		if r <= 50 {
			hits50++
		}
	}
	var idcg float64
	for i := 1; i <= min(len(targets), 10); i++ {
		idcg += 1 / math.Log2(float64(i)+1)
	}
	if idcg > 0 {
		ndcg = dcg / idcg
	}
	return ndcg, hit, float64(hits50) / float64(min(len(targets), 50))
}
