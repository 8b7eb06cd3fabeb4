package eval

// Cold-start evaluation: how good the answers are for visitors and items
// the model has not seen, and how fast they improve as events arrive.
//
// # New visitors (ColdUsers)
//
// A share of the users is held out entirely (HoldOutUsers): the model is
// trained on the other users only. Each held-out user's events are replayed
// in time order (ties: smaller item first, so that the "latest" event is
// the one PROTOCOL.md would hold out). At step m, after the user's first m
// events, every item except those m is ranked and the (m+1)-th event is the
// target, r = 1 + #{candidates j ≠ target : score_j ≥ score_target} as in
// Rank; HR@10 and NDCG@10 are averaged over the held-out users with more
// than m events. Modes:
//
//   - "pop": items by their number of training interactions (static: it
//     also counts training events later than the target, which a live
//     site cannot; the honest zero-event answer is "context").
//   - "context": what a site knows without the visitor's history. An
//     offline log has no page, referrer or device, so the replay uses what
//     a site always has: at m = 0 trending (model.Trending, recency-weighted
//     popularity of the training users' events before the target's time,
//     half-life chosen on validation users); from m = 1 the item of the
//     last event stands for the current page, and the context is its
//     item-to-item neighbours (cosine of factors) mixed with trending
//     (model.Blend with w = 0).
//   - "foldin": the context at m = 0; from m = 1 the exact fold-in of the m
//     events (model.Online.FoldUser of their decayed weights, the engine's
//     code path) against the trained item factors, x_u·Y.
//   - "blend": model.Blend of the fold-in and the context with confidence
//     w(m) = m/(m+κ); κ and trending's share τ chosen by NDCG@10 on
//     validation users drawn from the training users (never the held-out
//     ones), each validation fold retrained without its users.
//   - "ceiling" (m ≥ 1): a full batch retrain, same hyperparameters, on the
//     training users plus the first m events of every held-out user,
//     ranking with the retrained factors: what the fold-in approximates. At
//     m = 0 a batch model has no factors for the user, so there is no line.
//     It is not an upper bound: the retrained user factors are the exact
//     solve against the retrained item factors (as the fold-in's are
//     against the base ones), so the two differ only by the item factors,
//     which the retrain also fits to the held-out users' first events; on
//     MovieLens 100K the fold-in matches it from m = 2 and beats it at
//     m = 1.
//
// # New items (ColdItems)
//
// A share of the items is held out entirely (HoldOutItems): the model is
// trained without any of their interactions. Each held-out item is then
// brought in alone through the engine's code path, starting from a fresh
// copy of the live model: its row starts either with a small random vector
// ("zero": model.Online.InitItem, what the engine does for an unknown item)
// or with its provisional factors ("attr": model.TagPrior from the item's
// tags, e.g. MovieLens genres), and its interactions are learnt one by one
// in time order through model.Learner (the interacting user folded in from
// their training events up to that time, then the bounded item update of
// Online.Apply). After j interactions, for each later interactor v (the
// (j+1)-th onwards), the item is ranked among v's candidates (every
// training item v has not interacted with, plus the new item) by v's
// trained factors: HR@10 and NDCG@10 are the shares per item, averaged over
// the held-out items with more than j interactions; mean_rank is the mean
// rank per item, averaged over items; hr10_pairs counts every (item, later
// interactor) pair once.

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kairoshq/kairos/internal/defaults"
	"github.com/kairoshq/kairos/model"
	"gonum.org/v1/gonum/blas/blas32"
)

// UserHoldout is a cold-start split by users: the held-out users have no
// interaction in Train.
type UserHoldout struct {
	Users, Items int
	// Train holds every interaction of the training users.
	Train []Interaction
	// Held lists the held-out users, ascending.
	Held []int32
	// Events holds, per held-out user (same order as Held), all of their
	// interactions in replay order: by time, ties by smaller item first.
	Events [][]Interaction
}

// HoldOutUsers holds out round(share·n) of the n users that have
// interactions, drawn with a PCG seeded by seed.
func HoldOutUsers(users, items int, ins []Interaction, share float64, seed uint64) (UserHoldout, error) {
	held, err := drawShare(users, ins, func(in Interaction) int32 { return in.User }, share, seed)
	if err != nil {
		return UserHoldout{}, fmt.Errorf("eval: hold out users: %w", err)
	}
	return holdOutUserSet(users, items, ins, held), nil
}

// drawShare draws round(share·n) of the n distinct keys of ins, returned
// ascending.
func drawShare(n int, ins []Interaction, key func(Interaction) int32, share float64, seed uint64) ([]int32, error) {
	if !(share > 0 && share < 1) {
		return nil, fmt.Errorf("share %v must be in (0, 1)", share)
	}
	present := make([]bool, n)
	var keys []int32
	for _, in := range ins {
		if k := key(in); !present[k] {
			present[k] = true
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	h := int(math.Round(share * float64(len(keys))))
	if h < 1 || h >= len(keys) {
		return nil, fmt.Errorf("share %v of %d leaves nothing on one side", share, len(keys))
	}
	rng := rand.New(rand.NewPCG(seed, 0x636f6c64)) // "cold"
	rng.Shuffle(len(keys), func(a, b int) { keys[a], keys[b] = keys[b], keys[a] })
	out := keys[:h:h]
	slices.Sort(out)
	return out, nil
}

func holdOutUserSet(users, items int, ins []Interaction, held []int32) UserHoldout {
	h := UserHoldout{Users: users, Items: items, Held: held, Events: make([][]Interaction, len(held))}
	pos := make(map[int32]int, len(held))
	for j, u := range held {
		pos[u] = j
	}
	for _, in := range ins {
		if j, ok := pos[in.User]; ok {
			h.Events[j] = append(h.Events[j], in)
		} else {
			h.Train = append(h.Train, in)
		}
	}
	for _, ev := range h.Events {
		sortReplay(ev, func(in Interaction) int32 { return in.Item })
	}
	return h
}

// sortReplay orders interactions by time, ties by the smaller tie key.
func sortReplay(ev []Interaction, tie func(Interaction) int32) {
	sort.SliceStable(ev, func(a, b int) bool {
		if ev[a].Time != ev[b].Time {
			return ev[a].Time < ev[b].Time
		}
		return tie(ev[a]) < tie(ev[b])
	})
}

// Step returns the ranking split of step m: Train holds the first m events
// of every held-out user (all of them when they have fewer: the items
// their candidates exclude) and Held the (m+1)-th event's item, −1 for
// training users and for held-out users with at most m events (not ranked
// at this step).
func (h UserHoldout) Step(m int) Split {
	s := Split{Users: h.Users, Items: h.Items, Held: make([]int32, h.Users)}
	for u := range s.Held {
		s.Held[u] = -1
	}
	for j, u := range h.Held {
		ev := h.Events[j]
		s.Train = append(s.Train, ev[:min(m, len(ev))]...)
		if len(ev) > m {
			s.Held[u] = ev[m].Item
		}
	}
	return s
}

// Prefix returns what the ceiling's batch retrain fits at step m: every
// training interaction plus the first m events of every held-out user
// (Held as in Step).
func (h UserHoldout) Prefix(m int) Split {
	s := h.Step(m)
	s.Train = append(append(make([]Interaction, 0, len(h.Train)+len(s.Train)), h.Train...), s.Train...)
	return s
}

// ColdUserConfig configures ColdUsers. Zero fields take the defaults of
// DefaultColdUserConfig.
type ColdUserConfig struct {
	// Params are the ALS hyperparameters of every model (base, validation,
	// ceiling retrains).
	Params model.Params
	// Unit converts the dataset's integer times.
	Unit TimeUnit
	// Share is the share of users held out (0.1).
	Share float64
	// Seed seeds the split (the validation folds derive from it).
	Seed uint64
	// Steps are the m values (0, 1, 2, 3, 5, 10).
	Steps []int
	// Blend, when not nil, fixes the blend instead of tuning it.
	Blend *model.Blend
	// TrendingHalfLife is the trending half-life when Blend is fixed
	// (0: plain popularity up to the event's time).
	TrendingHalfLife time.Duration
	// Kappas, Taus and HalfLives are the validation grid.
	Kappas, Taus []float64
	HalfLives    []time.Duration
	// Folds is the number of disjoint validation folds, each Share of the
	// training users (3).
	Folds int
	// Threads bounds the ranking goroutines (0: GOMAXPROCS).
	Threads int
	// Log receives progress (nil: discard).
	Log *slog.Logger
}

// DefaultColdUserConfig returns the configuration of `kairos eval
// coldstart`: model.DefaultParams, 10 % of users, m = 0, 1, 2, 3, 5, 10,
// the blend tuned on 3 validation folds.
func DefaultColdUserConfig() ColdUserConfig {
	return ColdUserConfig{
		Params:    model.DefaultParams(),
		Unit:      time.Second,
		Share:     0.1,
		Steps:     []int{0, 1, 2, 3, 5, 10},
		Kappas:    []float64{0, 0.25, 0.5, 1, 2, 4, 8, 16},
		Taus:      []float64{0, 0.25, 0.5, 0.75, 1},
		HalfLives: []time.Duration{24 * time.Hour, 7 * 24 * time.Hour, 30 * 24 * time.Hour, 0},
		Folds:     3,
	}
}

func (c *ColdUserConfig) fill() error {
	d := DefaultColdUserConfig()
	if c.Params.Factors == 0 {
		c.Params = d.Params
	}
	defaults.Set(&c.Unit, d.Unit)
	defaults.Set(&c.Share, d.Share)
	if c.Steps == nil {
		c.Steps = d.Steps
	}
	if c.Kappas == nil {
		c.Kappas = d.Kappas
	}
	if c.Taus == nil {
		c.Taus = d.Taus
	}
	if c.HalfLives == nil {
		c.HalfLives = d.HalfLives
	}
	defaults.Set(&c.Folds, d.Folds)
	c.Log = defaults.Logger(c.Log)
	var errs []error
	if err := c.Params.Validate(); err != nil {
		errs = append(errs, err)
	}
	if !(c.Share > 0 && c.Share < 1) {
		errs = append(errs, fmt.Errorf("share %v must be in (0, 1)", c.Share))
	}
	if err := checkSteps(c.Steps); err != nil {
		errs = append(errs, err)
	}
	if c.Folds < 1 || float64(c.Folds)*c.Share >= 1 {
		errs = append(errs, fmt.Errorf("folds %d × share %v must be ≥ 1 fold and < all training users", c.Folds, c.Share))
	}
	for _, k := range c.Kappas {
		if !(k >= 0) || math.IsInf(k, 0) {
			errs = append(errs, fmt.Errorf("kappa %v must be finite and ≥ 0", k))
		}
	}
	for _, t := range c.Taus {
		if !(t >= 0 && t <= 1) {
			errs = append(errs, fmt.Errorf("tau %v must be in [0, 1]", t))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("eval: cold-start config: %w", errors.Join(errs...))
	}
	return nil
}

func checkSteps(steps []int) error {
	if len(steps) == 0 {
		return errors.New("no steps")
	}
	for i, s := range steps {
		if s < 0 || (i > 0 && s <= steps[i-1]) {
			return fmt.Errorf("steps %v must be ≥ 0 and increasing", steps)
		}
	}
	return nil
}

// ColdUserResult is one mode's outcome at one step: a JSON line of `kairos
// eval coldstart`.
type ColdUserResult struct {
	Curve  string  `json:"curve"` // "users"
	Mode   string  `json:"mode"`
	M      int     `json:"m"`
	HR10   float64 `json:"hr10"`
	NDCG10 float64 `json:"ndcg10"`
	Users  int     `json:"users"`
	// HR10SE and NDCG10SE are standard errors over users.
	HR10SE   float64 `json:"hr10_se"`
	NDCG10SE float64 `json:"ndcg10_se"`
	// VsCeiling is NDCG10 over the ceiling's NDCG10 at the same m (0 when
	// there is no ceiling).
	VsCeiling float64 `json:"vs_ceiling,omitempty"`
	// Ranks holds each user's rank (0: not evaluated), for paired
	// comparisons; not printed.
	Ranks []int `json:"-"`
}

// ValidationTrial is one point of the blend search on validation users.
type ValidationTrial struct {
	Curve    string        `json:"curve"` // "users"
	Split    string        `json:"split"` // "validation"
	Mode     string        `json:"mode"`  // "trending" (m = 0) or "blend" (m ≥ 1)
	HalfLife time.Duration `json:"-"`
	HL       string        `json:"half_life"`
	Kappa    float64       `json:"kappa"`
	Tau      float64       `json:"tau"`
	// NDCG10 and HR10 average every (validation user, step) pair.
	NDCG10 float64 `json:"ndcg10"`
	HR10   float64 `json:"hr10"`
	Pairs  int     `json:"pairs"`
}

// ColdUserReport is the outcome of ColdUsers.
type ColdUserReport struct {
	// Results holds, per step, the lines of modes pop, context, foldin,
	// blend and (m ≥ 1) ceiling.
	Results []ColdUserResult
	// Validation holds the blend search (empty when the blend was fixed).
	Validation []ValidationTrial
	// Blend and TrendingHalfLife are the chosen context and blend.
	Blend            model.Blend
	TrendingHalfLife time.Duration
	// HeldUsers and TrainUsers count the two sides of the split.
	HeldUsers, TrainUsers int
}

// Result returns the line of mode at step m.
func (r *ColdUserReport) Result(mode string, m int) (ColdUserResult, bool) {
	for _, x := range r.Results {
		if x.Mode == mode && x.M == m {
			return x, true
		}
	}
	return ColdUserResult{}, false
}

// ColdUsers runs the new-visitor curve on d (see the comment at the top of
// this file): split, blend search on validation folds of the training
// users (unless cfg.Blend is set), base training, then every mode at every
// step.
func ColdUsers(ctx context.Context, d *Dataset, cfg ColdUserConfig) (*ColdUserReport, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	h, err := HoldOutUsers(len(d.Users), len(d.Items), d.Interactions, cfg.Share, cfg.Seed)
	if err != nil {
		return nil, err
	}
	rep := &ColdUserReport{HeldUsers: len(h.Held), TrainUsers: countUsers(h.Train)}
	if cfg.Blend != nil {
		rep.Blend, rep.TrendingHalfLife = *cfg.Blend, cfg.TrendingHalfLife
	} else {
		rep.Validation, rep.Blend, rep.TrendingHalfLife, err = tuneBlend(ctx, h, cfg)
		if err != nil {
			return nil, err
		}
	}
	cfg.Log.Info("blend chosen", "kappa", rep.Blend.Kappa, "tau", rep.Blend.Trending, "trending_half_life", rep.TrendingHalfLife)
	run, err := newColdRun(ctx, h, cfg)
	if err != nil {
		return nil, err
	}
	for _, m := range cfg.Steps {
		var ceiling ColdUserResult
		var lines []ColdUserResult
		if m > 0 {
			start := time.Now()
			mod, _, err := TrainALS(ctx, h.Prefix(m), cfg.Params, cfg.Unit, nil)
			if err != nil {
				return nil, fmt.Errorf("eval: ceiling retrain at m=%d: %w", m, err)
			}
			if ceiling, err = run.rank(ctx, "ceiling", m, ALSScorer(mod)); err != nil {
				return nil, err
			}
			cfg.Log.Info("ceiling retrained", "m", m, "elapsed", time.Since(start))
		}
		for _, mode := range []string{"pop", "context", "foldin", "blend"} {
			r, err := run.rank(ctx, mode, m, run.scorer(mode, m, rep.Blend, rep.TrendingHalfLife))
			if err != nil {
				return nil, err
			}
			if ceiling.NDCG10 > 0 {
				r.VsCeiling = r.NDCG10 / ceiling.NDCG10
			}
			lines = append(lines, r)
		}
		if m > 0 {
			lines = append(lines, ceiling)
		}
		rep.Results = append(rep.Results, lines...)
	}
	return rep, nil
}

func countUsers(ins []Interaction) int {
	seen := map[int32]struct{}{}
	for _, in := range ins {
		seen[in.User] = struct{}{}
	}
	return len(seen)
}

// tuneBlend picks the trending half-life (by NDCG@10 at m = 0) and then κ
// and τ (by NDCG@10 pooled over the steps m ≥ 1) on disjoint validation
// folds of the training users, each fold's model trained without it. Ties
// keep the earlier grid point.
func tuneBlend(ctx context.Context, h UserHoldout, cfg ColdUserConfig) ([]ValidationTrial, model.Blend, time.Duration, error) {
	perm := allUsers(h.Train)
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x76616c)) // "val"
	rng.Shuffle(len(perm), func(a, b int) { perm[a], perm[b] = perm[b], perm[a] })
	per := int(math.Round(cfg.Share * float64(len(perm))))
	var runs []*coldRun
	for f := range cfg.Folds {
		held := slices.Clone(perm[f*per : (f+1)*per])
		slices.Sort(held)
		vh := holdOutUserSet(h.Users, h.Items, h.Train, held)
		vcfg := cfg
		vcfg.Log = cfg.Log.With("fold", f)
		r, err := newColdRun(ctx, vh, vcfg)
		if err != nil {
			return nil, model.Blend{}, 0, err
		}
		runs = append(runs, r)
	}
	pooled := func(mode string, steps []int, b model.Blend, hl time.Duration) (ValidationTrial, error) {
		var nd, hr []float64
		for _, r := range runs {
			for _, m := range steps {
				res, err := r.rank(ctx, mode, m, r.scorer(mode, m, b, hl))
				if err != nil {
					return ValidationTrial{}, err
				}
				for _, rank := range res.Ranks {
					if rank > 0 {
						nd = append(nd, NDCGAt(rank, 10))
						hr = append(hr, boolf(rank <= 10))
					}
				}
			}
		}
		t := ValidationTrial{Curve: "users", Split: "validation", Mode: mode, HalfLife: hl, HL: hl.String(), Kappa: b.Kappa, Tau: b.Trending, Pairs: len(nd)}
		if len(nd) > 0 {
			t.NDCG10, _ = meanSE(nd)
			t.HR10, _ = meanSE(hr)
		}
		return t, nil
	}
	var trials []ValidationTrial
	var bestHL ValidationTrial
	for _, hl := range cfg.HalfLives {
		t, err := pooled("context", []int{0}, model.Blend{}, hl)
		if err != nil {
			return nil, model.Blend{}, 0, err
		}
		t.Mode = "trending"
		trials = append(trials, t)
		if len(trials) == 1 || t.NDCG10 > bestHL.NDCG10 {
			bestHL = t
		}
	}
	var later []int
	for _, m := range cfg.Steps {
		if m > 0 {
			later = append(later, m)
		}
	}
	best := ValidationTrial{NDCG10: -1}
	if len(later) == 0 {
		return trials, model.Blend{}, bestHL.HalfLife, nil
	}
	for _, kappa := range cfg.Kappas {
		for _, tau := range cfg.Taus {
			if kappa == 0 && tau != cfg.Taus[0] {
				continue // κ = 0 is the fold-in alone: τ plays no part
			}
			t, err := pooled("blend", later, model.Blend{Kappa: kappa, Trending: tau}, bestHL.HalfLife)
			if err != nil {
				return nil, model.Blend{}, 0, err
			}
			trials = append(trials, t)
			if t.NDCG10 > best.NDCG10 {
				best = t
			}
		}
	}
	return trials, model.Blend{Kappa: best.Kappa, Trending: best.Tau}, bestHL.HalfLife, nil
}

func allUsers(ins []Interaction) []int32 {
	seen := map[int32]struct{}{}
	var out []int32
	for _, in := range ins {
		if _, ok := seen[in.User]; !ok {
			seen[in.User] = struct{}{}
			out = append(out, in.User)
		}
	}
	slices.Sort(out)
	return out
}

func boolf(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// coldRun is a trained base model with a held-out user set, able to rank
// every mode at every step.
type coldRun struct {
	h       UserHoldout
	cfg     ColdUserConfig
	mod     *model.Model
	o       *model.Online
	pos     map[int32]int // held user → index in h.Held
	pop     []float32
	byTime  []Interaction // training interactions by time
	factors map[int][][]float32
	// personal and pageScores hold, per step m ≥ 1 and held user, the
	// fold-in scores x·Y and the cosine similarity to the last event's
	// item (the page item).
	personal, pageScores map[int][][]float32
	trendMu              sync.Mutex
	trend                map[time.Duration]map[int][][]float32 // half-life → m → per held user
}

func newColdRun(ctx context.Context, h UserHoldout, cfg ColdUserConfig) (*coldRun, error) {
	start := time.Now()
	mod, _, err := TrainALS(ctx, Split{Users: h.Users, Items: h.Items, Train: h.Train}, cfg.Params, cfg.Unit, nil)
	if err != nil {
		return nil, fmt.Errorf("eval: cold-start base model: %w", err)
	}
	o, err := model.NewOnline(mod, nil)
	if err != nil {
		return nil, err
	}
	r := &coldRun{h: h, cfg: cfg, mod: mod, o: o, pos: map[int32]int{}, pop: make([]float32, h.Items),
		factors: map[int][][]float32{}, personal: map[int][][]float32{}, pageScores: map[int][][]float32{}, trend: map[time.Duration]map[int][][]float32{}}
	for j, u := range h.Held {
		r.pos[u] = j
	}
	for _, in := range h.Train {
		r.pop[in.Item]++
	}
	r.byTime = slices.Clone(h.Train)
	sortReplay(r.byTime, func(in Interaction) int32 { return in.Item })
	ws := model.NewWorkspace(cfg.Params.Factors)
	var agg model.HistoryAggregator
	for _, m := range cfg.Steps {
		fs := make([][]float32, len(h.Held))
		for j, ev := range h.Events {
			if len(ev) <= m {
				continue
			}
			if fs[j], err = foldPrefix(o, ws, &agg, ev, m, cfg.Params.HalfLife, cfg.Unit); err != nil {
				return nil, err
			}
		}
		r.factors[m] = fs
		if m == 0 {
			continue
		}
		// The blend's inputs do not depend on κ or τ: score them once.
		ps, is := make([][]float32, len(h.Held)), make([][]float32, len(h.Held))
		for j, ev := range h.Events {
			if len(ev) <= m {
				continue
			}
			ps[j] = o.ScoreAll(nil, fs[j], false)
			is[j] = o.ScoreAll(nil, o.ItemFactors(nil, int(ev[m-1].Item)), true)
		}
		r.personal[m], r.pageScores[m] = ps, is
	}
	cfg.Log.Info("cold-start base model", "train_users", countUsers(h.Train), "held_users", len(h.Held), "elapsed", time.Since(start))
	return r, nil
}

// foldPrefix returns the fold-in factors of a user after the first m of
// their events (in replay order): the engine's path, HistoryAggregator
// (decay back from the latest of the m events) then Online.FoldUser.
func foldPrefix(o *model.Online, ws *model.Workspace, agg *model.HistoryAggregator, events []Interaction, m int, halfLife time.Duration, unit TimeUnit) ([]float32, error) {
	evs := make([]model.Event, m)
	for i, in := range events[:m] {
		evs[i] = modelEvent(in, unit)
	}
	hist := agg.Aggregate(nil, evs, halfLife)
	x := make([]float32, o.K())
	if err := o.FoldUser(ws, x, hist); err != nil {
		return nil, fmt.Errorf("eval: fold in: %w", err)
	}
	return x, nil
}

// modelEvent converts an interaction to a timed model event.
func modelEvent(in Interaction, unit TimeUnit) model.Event {
	return model.Event{Item: in.Item, Weight: float32(in.Weight), Time: time.Unix(0, 0).Add(time.Duration(in.Time) * unit)}
}

// trending returns, per held user with more than m events, the trending
// scores (absolute, decayed to the target's time) of the training users'
// events strictly before the target event's time.
func (r *coldRun) trending(hl time.Duration, m int) [][]float32 {
	r.trendMu.Lock()
	defer r.trendMu.Unlock()
	if byM, ok := r.trend[hl]; ok {
		return byM[m]
	}
	type query struct {
		j, m int
		at   int64
	}
	var qs []query
	for _, step := range r.cfg.Steps {
		for j, ev := range r.h.Events {
			if len(ev) > step {
				qs = append(qs, query{j, step, ev[step].Time})
			}
		}
	}
	sort.SliceStable(qs, func(a, b int) bool { return qs[a].at < qs[b].at })
	byM := map[int][][]float32{}
	for _, step := range r.cfg.Steps {
		byM[step] = make([][]float32, len(r.h.Held))
	}
	tr := model.NewTrending(hl)
	next := 0
	for _, q := range qs {
		for next < len(r.byTime) && r.byTime[next].Time < q.at {
			in := r.byTime[next]
			tr.Add(int(in.Item), in.Weight, modelEvent(in, r.cfg.Unit).Time)
			next++
		}
		at := time.Unix(0, 0).Add(time.Duration(q.at) * r.cfg.Unit)
		v := make([]float32, r.h.Items)
		for i := range v {
			v[i] = float32(tr.Score(i, at))
		}
		byM[q.m][q.j] = v
	}
	r.trend[hl] = byM
	return byM[m]
}

// scorer returns the score function of mode at step m.
func (r *coldRun) scorer(mode string, m int, b model.Blend, hl time.Duration) ScoreFunc {
	switch mode {
	case "pop":
		return func(_ int, dst []float32) { copy(dst, r.pop) }
	case "foldin":
		if m > 0 {
			return func(u int, dst []float32) { copy(dst, r.personal[m][r.pos[int32(u)]]) }
		}
	}
	trend := r.trending(hl, m)
	return func(u int, dst []float32) {
		j := r.pos[int32(u)]
		in := model.BlendInput{Trending: trend[j], Events: m, Exclude: model.NewBitset(r.h.Items)}
		ev := r.h.Events[j]
		for _, e := range ev[:m] {
			in.Exclude.Set(int(e.Item))
		}
		if m > 0 {
			in.Item = r.pageScores[m][j]
			if mode == "blend" {
				in.Personal = r.personal[m][j]
			}
		}
		b.Scores(dst[:0], in)
	}
}

// rank ranks the held-out users' targets at step m with score.
func (r *coldRun) rank(ctx context.Context, mode string, m int, score ScoreFunc) (ColdUserResult, error) {
	rk, err := Rank(ctx, r.h.Step(m), score, r.cfg.Threads)
	if err != nil {
		return ColdUserResult{}, err
	}
	s := rk.Summarize()
	return ColdUserResult{Curve: "users", Mode: mode, M: m, HR10: s.HR10, NDCG10: s.NDCG10, Users: s.Users,
		HR10SE: s.HR10SE, NDCG10SE: s.NDCG10SE, Ranks: rk.Ranks}, nil
}

// ItemHoldout is a cold-start split by items: the held-out items have no
// interaction in Train.
type ItemHoldout struct {
	Users, Items int
	// Train holds every interaction with a training item.
	Train []Interaction
	// Held lists the held-out items, ascending.
	Held []int32
	// Events holds, per held-out item (same order as Held), all of its
	// interactions by time, ties by smaller user first.
	Events [][]Interaction
}

// HoldOutItems holds out round(share·n) of the n items that have
// interactions, drawn with a PCG seeded by seed.
func HoldOutItems(users, items int, ins []Interaction, share float64, seed uint64) (ItemHoldout, error) {
	held, err := drawShare(items, ins, func(in Interaction) int32 { return in.Item }, share, seed)
	if err != nil {
		return ItemHoldout{}, fmt.Errorf("eval: hold out items: %w", err)
	}
	h := ItemHoldout{Users: users, Items: items, Held: held, Events: make([][]Interaction, len(held))}
	pos := make(map[int32]int, len(held))
	for j, i := range held {
		pos[i] = j
	}
	for _, in := range ins {
		if j, ok := pos[in.Item]; ok {
			h.Events[j] = append(h.Events[j], in)
		} else {
			h.Train = append(h.Train, in)
		}
	}
	for _, ev := range h.Events {
		sortReplay(ev, func(in Interaction) int32 { return in.User })
	}
	return h, nil
}

// ColdItemConfig configures ColdItems. Zero fields take the defaults of
// DefaultColdItemConfig.
type ColdItemConfig struct {
	Params model.Params
	Unit   TimeUnit
	// Share is the share of items held out (0.1).
	Share float64
	// Seed seeds the split.
	Seed uint64
	// Steps are the j values (0, 1, 2, 5, 10).
	Steps []int
	// Tags holds each item's attributes (by item number); nil runs the
	// zero-knowledge mode only.
	Tags [][]string
	// Shrinkage is the TagPrior shrinkage (model.DefaultTagShrinkage).
	Shrinkage float64
	// Threads bounds the goroutines replaying items (0: GOMAXPROCS).
	Threads int
	Log     *slog.Logger
}

// DefaultColdItemConfig returns the configuration of `kairos eval
// coldstart`: model.DefaultParams, 10 % of items, j = 0, 1, 2, 5, 10.
func DefaultColdItemConfig() ColdItemConfig {
	return ColdItemConfig{Params: model.DefaultParams(), Unit: time.Second, Share: 0.1, Steps: []int{0, 1, 2, 5, 10}, Shrinkage: model.DefaultTagShrinkage}
}

// ColdItemResult is one mode's outcome after j interactions of each
// held-out item: a JSON line of `kairos eval coldstart`.
type ColdItemResult struct {
	Curve string `json:"curve"` // "items"
	Mode  string `json:"mode"`  // "zero" or "attr"
	J     int    `json:"j"`
	// HR10 is the mean over items of the share of later interactors whose
	// top 10 holds the item; NDCG10 likewise; MeanRank the mean over items
	// of the item's mean rank among its later interactors' candidates.
	HR10     float64 `json:"hr10"`
	NDCG10   float64 `json:"ndcg10"`
	MeanRank float64 `json:"mean_rank"`
	// Items counts the held-out items with more than j interactions, Pairs
	// their later interactors; HR10Pairs is HR@10 over all pairs.
	Items     int     `json:"items"`
	Pairs     int     `json:"pairs"`
	HR10Pairs float64 `json:"hr10_pairs"`
}

// ColdItems runs the new-item curve on d (see the comment at the top of
// this file).
func ColdItems(ctx context.Context, d *Dataset, cfg ColdItemConfig) ([]ColdItemResult, error) {
	def := DefaultColdItemConfig()
	if cfg.Params.Factors == 0 {
		cfg.Params = def.Params
	}
	defaults.Set(&cfg.Unit, def.Unit)
	defaults.Set(&cfg.Share, def.Share)
	if cfg.Steps == nil {
		cfg.Steps = def.Steps
	}
	cfg.Log = defaults.Logger(cfg.Log)
	if err := checkSteps(cfg.Steps); err != nil {
		return nil, fmt.Errorf("eval: cold items: %w", err)
	}
	if err := cfg.Params.Validate(); err != nil {
		return nil, err
	}
	h, err := HoldOutItems(len(d.Users), len(d.Items), d.Interactions, cfg.Share, cfg.Seed)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	split := Split{Users: h.Users, Items: h.Items, Train: h.Train}
	mod, _, err := TrainALS(ctx, split, cfg.Params, cfg.Unit, nil)
	if err != nil {
		return nil, fmt.Errorf("eval: cold items base model: %w", err)
	}
	mat, err := split.Matrix(cfg.Params.HalfLife, cfg.Unit)
	if err != nil {
		return nil, err
	}
	ir := &itemRun{h: h, cfg: cfg, mod: mod, stats: model.ItemStatsFromMatrix(mod, mat), ids: d.Items}
	ir.prepare()
	cfg.Log.Info("cold items base model", "held_items", len(h.Held), "elapsed", time.Since(start))
	modes := []string{"zero"}
	if cfg.Tags != nil {
		modes = append(modes, "attr")
		heldSet := map[int32]bool{}
		for _, i := range h.Held {
			heldSet[i] = true
		}
		ir.prior = model.NewTagPrior(mod.Items, cfg.Tags, func(i int) bool { return !heldSet[int32(i)] && ir.stats.Counts[i] > 0 }, cfg.Shrinkage)
	}
	var out []ColdItemResult
	for _, mode := range modes {
		res, err := ir.run(ctx, mode)
		if err != nil {
			return nil, err
		}
		out = append(out, res...)
	}
	return out, nil
}

// itemRun replays held-out items one at a time through the live model.
type itemRun struct {
	h     ItemHoldout
	cfg   ColdItemConfig
	mod   *model.Model
	stats *model.ItemStats
	prior *model.TagPrior
	ids   []string
	// userEvents holds each user's training events by time.
	userEvents [][]model.Event
	// cands holds each user's candidate scores (training items the user
	// has not interacted with), descending.
	cands [][]float32
}

func (ir *itemRun) prepare() {
	h := ir.h
	ir.userEvents = make([][]model.Event, h.Users)
	seen := make([]model.Bitset, h.Users)
	byTime := slices.Clone(h.Train)
	sortReplay(byTime, func(in Interaction) int32 { return in.Item })
	for _, in := range byTime {
		ir.userEvents[in.User] = append(ir.userEvents[in.User], modelEvent(in, ir.cfg.Unit))
		seen[in.User].Set(int(in.Item))
	}
	held := model.NewBitset(h.Items)
	for _, i := range h.Held {
		held.Set(int(i))
	}
	ir.cands = make([][]float32, h.Users)
	interactors := model.NewBitset(h.Users)
	for _, ev := range h.Events {
		for _, in := range ev {
			interactors.Set(int(in.User))
		}
	}
	k := ir.mod.Params.Factors
	for u := range h.Users {
		if !interactors.Has(u) {
			continue
		}
		x := blas32.Vector{N: k, Inc: 1, Data: ir.mod.Users.Row(u)}
		var c []float32
		for i := range h.Items {
			if held.Has(i) || seen[u].Has(i) {
				continue
			}
			c = append(c, blas32.Dot(x, blas32.Vector{N: k, Inc: 1, Data: ir.mod.Items.Row(i)}))
		}
		slices.SortFunc(c, func(a, b float32) int { return cmpDesc(a, b) })
		ir.cands[u] = c
	}
}

func cmpDesc(a, b float32) int {
	switch {
	case a > b:
		return -1
	case a < b:
		return 1
	}
	return 0
}

// rankAmong returns 1 + the number of candidate scores ≥ s (desc sorted).
func rankAmong(desc []float32, s float32) int {
	if s != s {
		return len(desc) + 1
	}
	return 1 + sort.Search(len(desc), func(i int) bool { return desc[i] < s })
}

// itemOutcome is one held-out item's ranks at each step (nil: no later
// interactor).
type itemOutcome [][]int

func (ir *itemRun) run(ctx context.Context, mode string) ([]ColdItemResult, error) {
	threads := ir.cfg.Threads
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	outcomes := make([]itemOutcome, len(ir.h.Held))
	errs := make([]error, threads)
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range threads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				j := int(next.Add(1) - 1)
				if j >= len(ir.h.Held) {
					return
				}
				o, err := ir.replay(mode, j)
				if err != nil {
					errs[w] = err
					return
				}
				outcomes[j] = o
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(append(errs, ctx.Err())...); err != nil {
		return nil, err
	}
	var out []ColdItemResult
	for s, step := range ir.cfg.Steps {
		r := ColdItemResult{Curve: "items", Mode: mode, J: step}
		var hits float64
		for _, o := range outcomes {
			ranks := o[s]
			if len(ranks) == 0 {
				continue
			}
			var hr, nd, mr float64
			for _, rk := range ranks {
				hr += boolf(rk <= 10)
				nd += NDCGAt(rk, 10)
				mr += float64(rk)
			}
			n := float64(len(ranks))
			r.Items++
			r.Pairs += len(ranks)
			hits += hr
			r.HR10 += hr / n
			r.NDCG10 += nd / n
			r.MeanRank += mr / n
		}
		if r.Items > 0 {
			r.HR10 /= float64(r.Items)
			r.NDCG10 /= float64(r.Items)
			r.MeanRank /= float64(r.Items)
			r.HR10Pairs = hits / float64(r.Pairs)
		}
		out = append(out, r)
	}
	return out, nil
}

// replay brings held-out item number j in through a fresh live model and
// returns the later interactors' ranks at each step.
func (ir *itemRun) replay(mode string, j int) (itemOutcome, error) {
	o, err := model.NewOnline(ir.mod, ir.stats)
	if err != nil {
		return nil, err
	}
	item := ir.h.Held[j]
	switch mode {
	case "zero":
		o.InitItem(int(item), itemSeed(ir.ids[item]))
	case "attr":
		var tags []string
		if int(item) < len(ir.cfg.Tags) {
			tags = ir.cfg.Tags[item]
		}
		y := ir.prior.Factors(nil, tags)
		if err := o.SetItems([]model.ItemRowState{{Row: item, Factors: y}}); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("eval: unknown item mode %q (want zero or attr)", mode)
	}
	learner := o.NewLearner()
	ev := ir.h.Events[j]
	out := make(itemOutcome, len(ir.cfg.Steps))
	last := ir.cfg.Steps[len(ir.cfg.Steps)-1]
	k := ir.mod.Params.Factors
	y := make([]float32, k)
	x := make([]float32, k)
	s := 0
	for n := 0; n <= last && n < len(ev); n++ {
		if n == ir.cfg.Steps[s] {
			y = o.ItemFactors(y, int(item))
			yv := blas32.Vector{N: k, Inc: 1, Data: y}
			for _, later := range ev[n:] {
				v := later.User
				score := blas32.Dot(blas32.Vector{N: k, Inc: 1, Data: ir.mod.Users.Row(int(v))}, yv)
				out[s] = append(out[s], rankAmong(ir.cands[v], score))
			}
			s++
			if s == len(ir.cfg.Steps) {
				break
			}
		}
		// Learn the (n+1)-th interaction as the engine would.
		in := ev[n]
		hist := ir.userEvents[in.User]
		upto := sort.Search(len(hist), func(i int) bool { return hist[i].Time.After(modelEvent(in, ir.cfg.Unit).Time) })
		if err := learner.Observe(x, ir.mod.Users.Row(int(in.User)), hist[:upto], []model.Event{modelEvent(in, ir.cfg.Unit)}); err != nil {
			return nil, err
		}
		if err := learner.Flush(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// itemSeed is the engine's deterministic seed of a new item's random start.
func itemSeed(id string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	return h.Sum64()
}

// MovieLensGenres are the 19 genre flags at the end of a u.item line, in
// order (u.genre).
var MovieLensGenres = []string{"unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western"}

// LoadItemTags reads item attributes: for FormatMovieLens a u.item file
// (pipe-separated, the item id first and the 19 genre flags last: the tags
// are the genre names); for FormatCSV a file with a header naming an item
// column (as Read) and one or more of tags, tag, category, genres, genre,
// whose values are split on '|'. It returns the tags by item id.
func LoadItemTags(path string, f Format) (map[string][]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("eval: item tags: %w", err)
	}
	var tags map[string][]string
	switch f {
	case FormatMovieLens:
		tags, err = parseMovieLensItems(string(b))
	case FormatCSV:
		tags, err = parseTagCSV(string(b))
	default:
		err = fmt.Errorf("unknown format %q (want movielens or csv)", f)
	}
	if err != nil {
		return nil, fmt.Errorf("eval: item tags %s: %w", path, err)
	}
	return tags, nil
}

func parseMovieLensItems(s string) (map[string][]string, error) {
	out := map[string][]string{}
	for n, line := range strings.Split(s, "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.Split(line, "|")
		g := len(MovieLensGenres)
		if len(f) < 1+g {
			return nil, fmt.Errorf("line %d: %d fields, want the id and %d genre flags", n+1, len(f), g)
		}
		var tags []string
		for k, flag := range f[len(f)-g:] {
			switch strings.TrimSpace(flag) {
			case "1":
				tags = append(tags, MovieLensGenres[k])
			case "0":
			default:
				return nil, fmt.Errorf("line %d: genre flag %q is not 0 or 1", n+1, flag)
			}
		}
		out[strings.TrimSpace(f[0])] = tags
	}
	return out, nil
}

func parseTagCSV(s string) (map[string][]string, error) {
	lines := strings.Split(s, "\n")
	header := strings.TrimRight(lines[0], "\r")
	sep := ","
	if strings.Count(header, "\t") > strings.Count(header, ",") {
		sep = "\t"
	}
	item := -1
	var tagCols []int
	for i, name := range strings.Split(header, sep) {
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "item", "itemid", "item_id", "movieid", "artistid":
			item = i
		case "tags", "tag", "category", "genres", "genre":
			tagCols = append(tagCols, i)
		}
	}
	if item < 0 || len(tagCols) == 0 {
		return nil, fmt.Errorf("header %q: want an item column and a tags, category or genres column", header)
	}
	out := map[string][]string{}
	for n, line := range lines[1:] {
		line = strings.TrimRight(line, "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.Split(line, sep)
		if item >= len(f) || strings.TrimSpace(f[item]) == "" {
			return nil, fmt.Errorf("line %d: missing item", n+2)
		}
		id := strings.TrimSpace(f[item])
		for _, c := range tagCols {
			if c >= len(f) {
				continue
			}
			for _, t := range strings.Split(f[c], "|") {
				if t = strings.TrimSpace(t); t != "" {
					out[id] = append(out[id], t)
				}
			}
		}
		if _, ok := out[id]; !ok {
			out[id] = nil
		}
	}
	return out, nil
}

// ItemTags returns the tags of each of d's items (by item number) from
// tags by item id; items without an entry have none.
func (d *Dataset) ItemTags(tags map[string][]string) [][]string {
	out := make([][]string, len(d.Items))
	for i, id := range d.Items {
		out[i] = tags[id]
	}
	return out
}
