package eval

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/kairoshq/kairos/model"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
)

// The popularity prior of model.Blend, fitted on validation.
//
// A known user's blended score is, up to a positive factor,
// z(x_u·y_i) + c(n)·z(log(1 + pop_i)) with c(n) = (ρ + κ/n)/(1 − ρ)
// (model.Blend.PopularityWeight), n the user's training interactions and
// pop the training interactions of each item. FitBlend picks ρ and κ by
// validation NDCG@10 over a grid. For each validation user it scans the
// items once and sorts them into those that outrank the held-out item
// whatever c in [0, c_max] (counted), those that never do (dropped) and
// those that outrank it on one side of a break-even c (kept): each grid
// point then costs a pass over the kept items only, cut off once the rank
// passes 50, so that the whole grid costs little more than one ranking.

// BlendGrid is the search space of FitBlend.
type BlendGrid struct {
	// Priors are the values of ρ, each in [0, 1).
	Priors []float64
	// Kappas are the values of κ, each >= 0.
	Kappas []float64
	// Neighbours are the values of η, the weight of the item-neighbour
	// part (model.Neighbours built from the split's training part with
	// model.DefaultNeighbourConfig), each >= 0; none or only 0 leaves it
	// out. A blend with η > 0 is picked only when it beats the best
	// without by a paired t of FallbackMinT.
	Neighbours []float64
	// RecallFloor is the share of the most popularity-heavy blend's
	// validation Recall@50 a blend must keep to be picked, in (0, 1]
	// (0: the package's RecallFloor). A tuned model uses
	// TunedRecallFloor.
	RecallFloor float64
}

// DefaultBlendGrid is the grid `kairos eval offline` and `kairos retrain`
// fit: ρ from 0 (no prior) to 0.99 (popularity, ties broken by the
// model), κ from 0 to 128 events.
func DefaultBlendGrid() BlendGrid {
	return BlendGrid{
		Priors:     []float64{0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99},
		Kappas:     []float64{0, 1, 2, 4, 8, 16, 32, 64, 128},
		Neighbours: []float64{0, 0.25, 0.5, 1, 2, 4},
	}
}

// TunedBlendGrid is DefaultBlendGrid with TunedRecallFloor: the final
// fit of a tuned model's blend.
func TunedBlendGrid() BlendGrid {
	g := DefaultBlendGrid()
	g.RecallFloor = TunedRecallFloor
	return g
}

// CoarseBlendGrid is a smaller grid for the rungs of a hyperparameter
// search, where many models are compared.
func CoarseBlendGrid() BlendGrid {
	return BlendGrid{Priors: []float64{0, 0.1, 0.3, 0.5, 0.7, 0.9}, Kappas: []float64{0, 4, 16, 64}}
}

// Validate reports a grid that is empty or out of range.
func (g BlendGrid) Validate() error {
	if len(g.Priors) == 0 || len(g.Kappas) == 0 {
		return fmt.Errorf("eval: blend grid needs at least one prior and one kappa")
	}
	for _, r := range g.Priors {
		if !(r >= 0 && r < 1) {
			return fmt.Errorf("eval: blend prior %v outside [0, 1)", r)
		}
	}
	for _, k := range g.Kappas {
		if !(k >= 0) || math.IsInf(k, 0) {
			return fmt.Errorf("eval: blend kappa %v must be finite and >= 0", k)
		}
	}
	for _, n := range g.Neighbours {
		if !(n >= 0) || math.IsInf(n, 0) {
			return fmt.Errorf("eval: blend neighbours weight %v must be finite and >= 0", n)
		}
	}
	if !(g.RecallFloor >= 0 && g.RecallFloor <= 1) {
		return fmt.Errorf("eval: blend recall floor %v outside [0, 1]", g.RecallFloor)
	}
	return nil
}

// recallFloor returns g's RecallFloor, or the package's when unset.
func (g BlendGrid) recallFloor() float64 {
	if g.RecallFloor > 0 {
		return g.RecallFloor
	}
	return RecallFloor
}

// etas returns the η values of g: 0 first, then its positive ones.
func (g BlendGrid) etas() []float64 {
	out := []float64{0}
	for _, n := range g.Neighbours {
		if n > 0 && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// SplitNeighbours builds the item neighbours of s's training part
// (model.DefaultNeighbourConfig), as a retrain builds them from its
// events.
func SplitNeighbours(ctx context.Context, s Split) (*model.Neighbours, error) {
	ins := make([]model.Interaction, len(s.Train))
	for j, in := range s.Train {
		ins[j] = model.Interaction{User: in.User, Item: in.Item, Weight: 1}
	}
	m, err := model.NewMatrix(s.Users, s.Items, ins)
	if err != nil {
		return nil, fmt.Errorf("eval: neighbours: %w", err)
	}
	return model.BuildNeighbours(ctx, m, model.DefaultNeighbourConfig())
}

// BlendTrial is one blend's validation outcome.
type BlendTrial struct {
	Blend model.Blend `json:"blend"`
	Metrics
	// PopularityFallback marks the popularity-heavy blend picked because
	// the best blend did not beat it clearly on validation (see
	// FitBlendUsers).
	PopularityFallback bool `json:"popularity_fallback,omitempty"`
	// RecallGuard marks a pick other than the one NDCG@10 alone would
	// have made, whose Recall@50 fell below RecallFloor times the most
	// popularity-heavy blend's (see FitBlendUsers).
	RecallGuard bool `json:"recall_guard,omitempty"`
	// Ranks are the validation users' ranks of their held-out items, in
	// the order of heldUsers (set for the returned best only).
	Ranks []int `json:"-"`
	// PopularityHeavyNDCG10 is the grid's most popularity-heavy blend's
	// validation NDCG@10 and VsPopularityHeavy this blend's paired
	// comparison with it on the same users (set for the returned best
	// only; SkipConfirmation reads them).
	PopularityHeavyNDCG10 float64 `json:"-"`
	VsPopularityHeavy     Paired  `json:"-"`
}

// FallbackMinT is the paired t over validation users by which the best
// blend must beat the most popularity-heavy blend of the grid to be
// picked; below it FitBlend falls back to that blend. With a handful of
// validation users every blend scores the same few hits, ties go to the
// first blend in grid order (ρ = 0, plain ALS), and nothing on validation
// says that the personal part helps: the ranking that never loses to
// popularity is then popularity with the model breaking its ties.
const FallbackMinT = 1.0

// RecallFloor is the share of the most popularity-heavy blend's
// validation Recall@50 that a blend must keep to be picked. Picking by
// NDCG@10 alone can trade the long list for the top: on a sparse,
// popularity-heavy log the best NDCG@10 can come with a Recall@50 far
// below popularity's, and a site's candidates for its own re-ranking or
// its "more like this" rows would then be worse than "most popular".
const RecallFloor = 0.95

// TunedRecallFloor is the recall floor of a tuned model's blends
// (BlendGrid.RecallFloor in `--tune`'s search and its final fit): a
// search that may try hundreds of configurations for the top of the
// ranking must hand back one whose long list is at least popularity's,
// not a little below it as the shipped defaults may.
const TunedRecallFloor = 1.0

// popularity returns the training interactions of each item.
func popularity(s Split) []float32 {
	counts := make([]float32, s.Items)
	for _, in := range s.Train {
		counts[in.Item]++
	}
	return counts
}

// trainCounts returns each user's number of training interactions.
func trainCounts(s Split) []int {
	n := make([]int, s.Users)
	for _, in := range s.Train {
		n[in.User]++
	}
	return n
}

// userItems is the training part by user (CSR).
type userItems struct {
	ptr   []int
	items []int32
}

func newUserItems(s Split) userItems {
	ui := userItems{ptr: make([]int, s.Users+1), items: make([]int32, len(s.Train))}
	for _, in := range s.Train {
		ui.ptr[in.User+1]++
	}
	for u := range s.Users {
		ui.ptr[u+1] += ui.ptr[u]
	}
	next := append([]int(nil), ui.ptr[:s.Users]...)
	for _, in := range s.Train {
		ui.items[next[in.User]] = in.Item
		next[in.User]++
	}
	return ui
}

func (ui userItems) of(u int) []int32 { return ui.items[ui.ptr[u]:ui.ptr[u+1]] }

// standardize writes (f(v) − mean)/sd over all of v to dst (population
// sd, as model.Standardize; f = log(1 + max(x, 0)) when logged); a
// constant vector gives zeros.
func standardize(dst, v []float32, logged bool) {
	var sum, sq float64
	for i, x := range v {
		f := float64(x)
		if logged {
			f = math.Log1p(max(f, 0))
		}
		dst[i] = float32(f)
		sum += f
		sq += f * f
	}
	n := float64(len(v))
	mean := sum / n
	sd := math.Sqrt(max(sq/n-mean*mean, 0))
	for i, f := range dst {
		if sd == 0 {
			dst[i] = 0
			continue
		}
		dst[i] = float32((float64(f) - mean) / sd)
	}
}

// FitBlend picks the popularity prior ρ, κ and the neighbours' weight η of
// model.Blend by NDCG@10 on val's held-out items (see FitBlendUsers), mod being ALS trained on val's training part,
// and returns the best trial (ties: the first in grid order, ρ then κ)
// and every trial. The returned blend's τ is model.DefaultBlend's (there
// is no page context offline). With maxUsers > 0 only that many users
// with a held-out item take part (every j-th, evenly spread).
func FitBlend(ctx context.Context, val Split, mod *model.Model, g BlendGrid, threads int) (BlendTrial, []BlendTrial, error) {
	return FitBlendUsers(ctx, val, mod, g, threads, 0)
}

// FitBlendUsers is FitBlend on at most maxUsers users (0: all).
//
// The best blend is the one with the highest NDCG@10, unless its paired
// t against the most popularity-heavy blend of the grid (largest ρ, then
// largest κ) is below FallbackMinT: then that blend is returned, marked
// PopularityFallback. Only blends whose Recall@50 reaches the grid's
// recall floor (BlendGrid.RecallFloor, default RecallFloor) times that blend's are candidates (a pick this rule changed is marked
// RecallGuard), so that the fitted ranking keeps popularity's long list
// as well as beating its top.
func FitBlendUsers(ctx context.Context, val Split, mod *model.Model, g BlendGrid, threads, maxUsers int) (BlendTrial, []BlendTrial, error) {
	return fitBlendUsers(ctx, val, mod, g, threads, heldUsers(val, maxUsers), nil)
}

// gridNeighbours returns the item neighbours of val's training part when
// g weighs them (an η > 0), else nil.
func gridNeighbours(ctx context.Context, val Split, g BlendGrid) (*model.Neighbours, error) {
	if len(g.etas()) < 2 {
		return nil, nil
	}
	return SplitNeighbours(ctx, val)
}

// fitBlendUsers is FitBlend on the given users (each with a held-out
// item); the returned Ranks are in their order. nb are val's item
// neighbours when the caller has them (gridNeighbours), nil to build them
// here when g needs them.
func fitBlendUsers(ctx context.Context, val Split, mod *model.Model, g BlendGrid, threads int, users []int, nb *model.Neighbours) (BlendTrial, []BlendTrial, error) {
	if err := g.Validate(); err != nil {
		return BlendTrial{}, nil, err
	}
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	etas := g.etas()
	if nb == nil {
		var err error
		if nb, err = gridNeighbours(ctx, val, g); err != nil {
			return BlendTrial{}, nil, err
		}
	}
	var blends []model.Blend
	for _, eta := range etas {
		for _, r := range g.Priors {
			for _, k := range g.Kappas {
				blends = append(blends, model.Blend{Kappa: k, Trending: model.DefaultBlend().Trending, Prior: r, Neighbours: eta})
			}
		}
	}
	per := len(g.Priors) * len(g.Kappas)
	lz := make([]float32, val.Items)
	standardize(lz, popularity(val), true)
	counts := trainCounts(val)
	ui := newUserItems(val)
	ranks := make([][]int, len(blends))
	for j := range ranks {
		ranks[j] = make([]int, len(users))
	}
	acc := make([]*blendAcc, threads)
	var next atomic.Int64
	var wg sync.WaitGroup
	for t := range threads {
		acc[t] = newBlendAcc(len(blends), val.Items, mod.Items.K, nb != nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := acc[t]
			for ctx.Err() == nil {
				lo := int(next.Add(blockUsers)) - blockUsers
				if lo >= len(users) {
					return
				}
				block := users[lo:min(lo+blockUsers, len(users))]
				a.scoreBlock(mod, block)
				for b, u := range block {
					scores := a.block[b*val.Items : (b+1)*val.Items]
					standardize(scores, scores, false)
					if nb != nil {
						a.neighbourZ(nb, ui.of(u))
					}
					for e, eta := range etas {
						v := scores
						if eta > 0 {
							v = a.mixed
							for j, p := range scores {
								v[j] = p + float32(eta)*a.nz[j]
							}
						}
						a.user(v, int(val.Held[u]), ui.of(u), lz, blends[e*per:(e+1)*per], counts[u], e*per)
					}
					for j, r := range a.ranks {
						ranks[j][lo+b] = r
					}
				}
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return BlendTrial{}, nil, err
	}
	trials := make([]BlendTrial, len(blends))
	for j, b := range blends {
		var sum blendSums
		for _, a := range acc {
			sum.add(a.sums[j])
		}
		trials[j] = BlendTrial{Blend: b, Metrics: sum.metrics()}
	}
	pop := popularityHeavy(blends[:per])
	best, fallback := pickBlend(trials, ranks, per, pop, g.recallFloor()*trials[pop].Recall50)
	unguarded, _ := pickBlend(trials, ranks, per, pop, 0)
	trials[best].PopularityFallback = fallback
	trials[best].RecallGuard = best != unguarded
	pick := trials[best]
	pick.Ranks = ranks[best]
	pick.PopularityHeavyNDCG10, pick.VsPopularityHeavy = trials[pop].NDCG10, ComparePaired(ranks[best], ranks[pop])
	return pick, trials, nil
}

// pickBlend returns the index of the picked trial, the first per of which
// are without the neighbours' part, and whether it is the popularity
// fallback (pop picked over a better NDCG@10). Only trials whose Recall@50 reaches floor are candidates.
// Without neighbours the best by NDCG@10 (ties: the first in grid order)
// is picked, or pop, the most popularity-heavy blend, when that best does
// not beat it by a paired t of FallbackMinT; the best with neighbours then
// replaces the pick only if it beats it by that t too.
func pickBlend(trials []BlendTrial, ranks [][]int, per, pop int, floor float64) (int, bool) {
	best := pop
	for j := range per {
		if trials[j].Recall50 >= floor && (trials[j].NDCG10 > trials[best].NDCG10 || (trials[j].NDCG10 == trials[best].NDCG10 && j < best)) {
			best = j
		}
	}
	if best != pop && ComparePaired(ranks[best], ranks[pop]).T < FallbackMinT {
		best = pop
	}
	fallback := false
	for j := range per {
		fallback = fallback || (best == pop && trials[j].NDCG10 > trials[pop].NDCG10)
	}
	withNb := -1
	for j := per; j < len(trials); j++ {
		if trials[j].Recall50 >= floor && (withNb < 0 || trials[j].NDCG10 > trials[withNb].NDCG10) {
			withNb = j
		}
	}
	if withNb >= 0 && ComparePaired(ranks[withNb], ranks[best]).T >= FallbackMinT {
		best, fallback = withNb, false
	}
	return best, fallback
}

// popularityHeavy returns the index of the most popularity-heavy of
// blends: the highest ρ, then the highest κ.
func popularityHeavy(blends []model.Blend) int {
	pop := 0
	for j, b := range blends {
		if b.Prior > blends[pop].Prior || (b.Prior == blends[pop].Prior && b.Kappa >= blends[pop].Kappa) {
			pop = j
		}
	}
	return pop
}

// blockUsers is the number of users scored by one matrix product.
const blockUsers = 32

// heldUsers lists the users with a held-out item, at most max of them
// (0: all) spread evenly.
func heldUsers(s Split, maxUsers int) []int {
	var us []int
	for u, h := range s.Held {
		if h >= 0 {
			us = append(us, u)
		}
	}
	return Spread(us, maxUsers)
}

// blendSums accumulates the metrics of one blend over users.
type blendSums struct {
	users           int
	ndcg, ndcg2, hr float64
	recall50        float64
}

func (s *blendSums) observe(rank int) {
	s.users++
	if rank <= 10 {
		n := NDCGAt(rank, 10)
		s.ndcg += n
		s.ndcg2 += n * n
		s.hr++
	}
	if rank <= 50 {
		s.recall50++
	}
}

func (s *blendSums) add(o blendSums) {
	s.users += o.users
	s.ndcg += o.ndcg
	s.ndcg2 += o.ndcg2
	s.hr += o.hr
	s.recall50 += o.recall50
}

func (s blendSums) metrics() Metrics {
	m := Metrics{Users: s.users}
	if s.users == 0 {
		return m
	}
	n := float64(s.users)
	m.NDCG10, m.HR10, m.Recall50 = s.ndcg/n, s.hr/n, s.recall50/n
	if s.users > 1 {
		m.NDCG10SE = math.Sqrt(max(s.ndcg2/n-m.NDCG10*m.NDCG10, 0)*n/(n-1)) / math.Sqrt(n)
		m.HR10SE = math.Sqrt(max(m.HR10-m.HR10*m.HR10, 0)*n/(n-1)) / math.Sqrt(n)
	}
	return m
}

// blendAcc is one goroutine's workspace and sums.
type blendAcc struct {
	sums  []blendSums
	block []float32 // blockUsers × items scores
	xs    []float32 // blockUsers × k user factors
	train []bool
	// per user: the distinct popularity weights c of the blends, sorted,
	// each blend's index among them, and the counts of items above.
	cs          []float64
	pos         []int
	plus, minus []int
	// ranks are the last user's rank under each blend.
	ranks []int
	// With neighbours: the user's neighbour scores, their standardised
	// log (nz) and the personal scores with η·nz added (mixed).
	nb, nz, mixed []float32
	touched       []int32
}

func newBlendAcc(blends, items, k int, neighbours bool) *blendAcc {
	a := &blendAcc{sums: make([]blendSums, blends), block: make([]float32, blockUsers*items),
		xs: make([]float32, blockUsers*k), train: make([]bool, items), pos: make([]int, blends), ranks: make([]int, blends)}
	if neighbours {
		a.nb, a.nz, a.mixed = make([]float32, items), make([]float32, items), make([]float32, items)
	}
	return a
}

// neighbourZ writes z(log(1 + nb)) of a user with training items train
// to a.nz, standardised over all items as model.Blend.Scores does.
func (a *blendAcc) neighbourZ(nb *model.Neighbours, train []int32) {
	a.touched = nb.Scores(a.nb, train, a.touched[:0])
	mean, sd := model.LogMoments(a.nb, a.touched, len(a.nb))
	base := float32(0)
	if sd > 0 {
		base = float32(-mean / sd)
	}
	for j := range a.nz {
		a.nz[j] = base
	}
	for _, j := range a.touched {
		if sd > 0 {
			a.nz[j] = float32((math.Log1p(float64(a.nb[j])) - mean) / sd)
		}
		a.nb[j] = 0
	}
}

// scoreBlock writes x_u·Y for the users of block into a.block (one row of
// items per user) with one matrix product.
func (a *blendAcc) scoreBlock(m *model.Model, block []int) {
	k, items := m.Items.K, m.Items.Rows()
	for b, u := range block {
		copy(a.xs[b*k:(b+1)*k], m.Users.Row(u))
	}
	X := blas32.General{Rows: len(block), Cols: k, Stride: k, Data: a.xs}
	Y := blas32.General{Rows: items, Cols: k, Stride: k, Data: m.Items.Data}
	C := blas32.General{Rows: len(block), Cols: items, Stride: items, Data: a.block}
	blas32.Gemm(blas.NoTrans, blas.Trans, 1, X, Y, 0, C)
}

// user ranks one user's held-out item under every blend: rank(c) =
// 1 + #{j : z_j + c·l_j ≥ z_held + c·l_held} for the c of each blend,
// counted for all of them in one pass over the items (each item is above
// the held one for c on one side of a break-even point). scores are the
// standardised personal part (with the neighbours' part of the blends'
// η added); the blends' sums and ranks are at off and after.
func (a *blendAcc) user(scores []float32, held int, train []int32, lz []float32, blends []model.Blend, n, off int) {
	for _, i := range train {
		a.train[i] = true
	}
	defer func() {
		for _, i := range train {
			a.train[i] = false
		}
	}()
	ph, lh := float64(scores[held]), float64(lz[held])
	if math.IsNaN(ph) {
		for j := range blends {
			a.sums[off+j].observe(math.MaxInt)
			a.ranks[off+j] = math.MaxInt
		}
		return
	}
	a.cs = a.cs[:0]
	for _, b := range blends {
		a.cs = append(a.cs, b.PopularityWeight(n))
	}
	slices.Sort(a.cs)
	a.cs = slices.Compact(a.cs)
	for j, b := range blends {
		a.pos[j], _ = slices.BinarySearch(a.cs, b.PopularityWeight(n))
	}
	g := len(a.cs)
	a.plus = append(a.plus[:0], make([]int, g+1)...)
	a.minus = append(a.minus[:0], make([]int, g+1)...)
	cmax := a.cs[g-1]
	always := 0
	for j, p := range scores {
		if j == held || a.train[j] {
			continue
		}
		d0, d1 := float64(p)-ph, float64(lz[j])-lh
		lo, hi := d0 >= 0, d0+cmax*d1 >= 0
		switch {
		case lo && hi:
			always++
		case hi: // above from c ≥ −d0/d1 on (d1 > 0)
			k, _ := slices.BinarySearch(a.cs, -d0/d1)
			a.plus[k]++
		case lo: // above up to c ≤ d0/(−d1) (d1 < 0)
			k, found := slices.BinarySearch(a.cs, d0/-d1)
			if !found {
				k-- // the last c below the break-even
			}
			if k >= 0 {
				a.minus[k]++
			}
		}
	}
	// plus[k] → items above at every c index ≥ k (prefix sums); minus[k] →
	// items above at every c index ≤ k (suffix sums).
	for k := 1; k < g; k++ {
		a.plus[k] += a.plus[k-1]
	}
	for k := g - 2; k >= 0; k-- {
		a.minus[k] += a.minus[k+1]
	}
	for j := range blends {
		k := a.pos[j]
		a.ranks[off+j] = 1 + always + a.plus[k] + a.minus[k]
		a.sums[off+j].observe(a.ranks[off+j])
	}
}

// scoreUser writes x_u·Y to dst.
func scoreUser(dst []float32, m *model.Model, u int) {
	k := m.Items.K
	Y := blas32.General{Rows: m.Items.Rows(), Cols: k, Stride: k, Data: m.Items.Data}
	x := blas32.Vector{N: k, Inc: 1, Data: m.Users.Row(u)}
	blas32.Gemv(blas.NoTrans, 1, Y, x, 0, blas32.Vector{N: len(dst), Inc: 1, Data: dst})
}

// BlendScorer scores with model.Blend.Scores, the engine's formula: the
// user's x_u·Y as the personal part, the training interactions of each
// item of s as the popularity, the user's number of training
// interactions as the events and, when b.Neighbours > 0, the user's
// neighbour scores from the item neighbours of s's training part
// (SplitNeighbours; built here, nil when they cannot be).
func BlendScorer(ctx context.Context, m *model.Model, s Split, b model.Blend) ScoreFunc {
	pop := popularity(s)
	counts := trainCounts(s)
	var nb *model.Neighbours
	var ui userItems
	if b.Neighbours > 0 {
		nb, _ = SplitNeighbours(ctx, s)
		ui = newUserItems(s)
	}
	type buffers struct{ personal, nb []float32 }
	var pool sync.Pool
	pool.New = func() any { return &buffers{personal: make([]float32, s.Items), nb: make([]float32, s.Items)} }
	return func(u int, dst []float32) {
		p := pool.Get().(*buffers)
		defer pool.Put(p)
		scoreUser(p.personal, m, u)
		in := model.BlendInput{Personal: p.personal, Trending: pop, Events: counts[u]}
		if nb != nil {
			clear(p.nb)
			nb.Scores(p.nb, ui.of(u), nil)
			in.Neighbours = p.nb
		}
		b.Scores(dst, in)
	}
}
