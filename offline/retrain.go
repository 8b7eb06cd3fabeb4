package offline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/kairoshq/kairos/eval"
	"github.com/kairoshq/kairos/model"
	"github.com/kairoshq/kairos/offline/archive"
	"github.com/kairoshq/kairos/signals"
)

// RecordSource streams archived records; archive.Archive, archive.Reader
// and history.Reader (the cluster's history: cold tier and stream)
// implement it.
type RecordSource interface {
	ScanRecords(ctx context.Context, q archive.Query, fn func(archive.Record) error) error
}

// RetrainConfig configures Retrain.
type RetrainConfig struct {
	// From and To bound the events' time (To zero: no bound).
	From, To time.Time
	// Params are the ALS hyperparameters of the new model (the base of a
	// search when Tune is set).
	Params model.Params
	// Weights turn events into learning weights (the engine's).
	Weights signals.Weights
	// Holdout, when set, fixes the held-out tail to the last Holdout of
	// the range. By default the tail starts at the live snapshot's
	// cut-off when enough users are active on both sides of it, else at
	// the latest time that leaves TargetUsers such users (or the most
	// there can be).
	Holdout time.Duration
	// TargetUsers is the number of evaluated users the automatic tail
	// aims at (default 1,000).
	TargetUsers int
	// MinUsers is the least number of evaluated users for the snapshot's
	// cut-off to serve as the boundary (default 100; Runner.MinUsers
	// decides whether the comparison means something).
	MinUsers int
	// Tune, when set, searches the hyperparameters within its budget.
	Tune *TuneConfig
	// FitItemLambda, without Tune, chooses ν (the popularity scaling of
	// the items' λ, model.Params.ItemLambdaExponent) between 0 and
	// eval.FittedItemLambdaExponent on the validation split
	// (eval.FitItemLambdaExponent) instead of keeping Params'.
	FitItemLambda bool
	// FitHalfLife, without Tune, tries eval.FittedHalfLives (no decay, a
	// week) against Params' half-life on the validation split and
	// keeps the best of them when clearly better (eval.FitDefaults).
	FitHalfLife bool
	// FitAlpha, without Tune, tries half and double Params' confidence
	// scale α (eval.FittedAlphaFactors) on the validation split and keeps
	// the best of them when clearly better (eval.FitDefaults).
	FitAlpha bool
	// NoItemNeighbours leaves the item neighbours out: η stays 0 and the
	// snapshot carries none (for a catalog whose 50 neighbours per item
	// would not fit, or to compare).
	NoItemNeighbours bool
	// GuardUsers bounds the tail users the guard ranks, an even spread of
	// them (default DefaultGuardUsers; negative: all).
	GuardUsers int
	// DedupWindow is how many recent event ids are remembered to drop the
	// archive's duplicates (default 1,000,000).
	DedupWindow int
	// Progress receives a human progress line (nil: none).
	Progress io.Writer
	// Now is the clock of the snapshot's creation time (nil: time.Now).
	Now func() time.Time
	// HistoryCut says the source is the cluster's history
	// (offline/history), whose record numbers are provisional and not
	// an engine's archive's: the snapshot is marked (Meta.HistoryCut) so
	// that engines replay their archive's events after its Cutoff by
	// time, and a live snapshot's ArchiveSeq is not used to place the
	// tail.
	HistoryCut bool
}

// DefaultGuardUsers is the default RetrainConfig.GuardUsers: as many
// users as a retrain's blend fit ranks on validation
// (eval.DefaultFitUsers). Each of the guard's three models scores every
// item for each user, and a paired t over 20,000 users already tells a
// difference of a few per cent.
const DefaultGuardUsers = eval.DefaultFitUsers

// guardUsers returns the bound of the guard's users (0: all).
func (c RetrainConfig) guardUsers() int { return eval.UserBound(c.GuardUsers, DefaultGuardUsers) }

// TuneConfig configures the hyperparameter search of a retrain
// (eval.Search on the validation split of the events before the tail).
type TuneConfig struct {
	// Budget bounds the search's wall time (0: one Hyperband cycle).
	Budget time.Duration
	// Starts are tried first: the previous pick, the live parameters.
	Starts []model.Params
	// Seed seeds the search's sampling.
	Seed uint64
	// Space is searched (zero: eval.DefaultSpace, with the base's
	// half-life added).
	Space eval.Space
	// MinUsers is the least number of validation users to search on
	// (0: eval's default, 100); with fewer the parameters are kept.
	MinUsers int
}

func (c RetrainConfig) withDefaults() RetrainConfig {
	if c.Weights == (signals.Weights{}) {
		c.Weights = signals.DefaultWeights()
	}
	if c.DedupWindow <= 0 {
		c.DedupWindow = 1_000_000
	}
	if c.TargetUsers <= 0 {
		c.TargetUsers = 1000
	}
	if c.MinUsers <= 0 {
		c.MinUsers = 100
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Tune != nil && c.Tune.Space.Factors == nil {
		c.Tune.Space = eval.DefaultSpace()
	}
	return c
}

// halfLives returns every half-life the retrain may train with.
func (c RetrainConfig) halfLives(live *LiveModel) []time.Duration {
	hls := []time.Duration{c.Params.HalfLife}
	if c.FitHalfLife {
		hls = append(hls, eval.FittedHalfLives...)
	}
	if live != nil {
		hls = append(hls, live.Params.HalfLife)
	}
	if c.Tune != nil {
		hls = append(hls, c.Tune.Space.HalfLife...)
		for _, p := range c.Tune.Starts {
			hls = append(hls, p.HalfLife)
		}
	}
	slices.Sort(hls)
	return slices.Compact(hls)
}

// LiveModel is the model currently serving, to compare a retrained model
// with.
type LiveModel struct {
	// Params are its hyperparameters and Blend its ranking blend.
	Params model.Params
	Blend  model.Blend
	// ItemIDs and Items are its item factors now (ids by row; "" for
	// rows without an id).
	ItemIDs []string
	Items   *model.Factors
	// Snapshot, when known, is the snapshot it was loaded from: the live
	// model exactly as of its cut-off (Meta.ArchiveSeq).
	Snapshot *model.Snapshot
}

// Evaluation is one model's ranking quality on the held-out tail: for each
// user with events before the tail and learning events in it, the items
// of the tail the user had not seen before (up to 100) are the relevant
// ones, and all items the user had not seen are ranked (ties count
// against the relevant item, as in PROTOCOL.md). Per user, NDCG@10 is
// DCG/IDCG over the relevant items, HR@10 whether one is in the top 10,
// Recall@50 the share of them in the top 50 (of at most 50); the figures
// are means over users.
type Evaluation struct {
	Model    string  `json:"model"`
	Users    int     `json:"users"`
	HR10     float64 `json:"hr10"`
	NDCG10   float64 `json:"ndcg10"`
	Recall50 float64 `json:"recall50"`
	NDCG10SE float64 `json:"ndcg10_se"`
}

// Comparison is a paired per-user comparison of two models' NDCG@10 on
// the tail (A − B), with its t statistic.
type Comparison struct {
	A     string `json:"a"`
	B     string `json:"b"`
	Users int    `json:"users"`
	// Diff is the mean per-user difference, SE its standard error and
	// T = Diff/SE (0 when SE is 0).
	Diff float64 `json:"ndcg10_diff"`
	SE   float64 `json:"se"`
	T    float64 `json:"t"`
}

// SearchSummary describes a retrain's hyperparameter search.
type SearchSummary struct {
	Trials   int     `json:"trials"`
	Configs  int     `json:"configs"`
	Brackets int     `json:"brackets"`
	Stopped  string  `json:"stopped"`
	BudgetS  float64 `json:"budget_s"`
	SearchS  float64 `json:"search_s"`
	// WarmStarts is the number of configurations tried first (the
	// previous pick, the live parameters).
	WarmStarts int `json:"warm_starts"`
	// Confirmed is the number of seeds the pick was scored with.
	Confirmed int `json:"confirmed"`
	// KeptBase says the configured parameters, with the choices an
	// untuned retrain fits (half-life, ν, α) fitted, stayed the pick: the
	// search's best did not beat them on validation (eval.SearchConfig's
	// MinT and FitBase); VsBaseT is that paired t, when compared.
	KeptBase bool    `json:"kept_base,omitempty"`
	VsBaseT  float64 `json:"vs_base_t,omitempty"`
}

// Reference says how the live model was put as of the tail's start.
const (
	// ReferenceSnapshot: the tail starts at the live snapshot's cut-off,
	// and the snapshot is the live model as of then.
	ReferenceSnapshot = "snapshot"
	// ReferenceRecipe: the live model's parameters and blend trained on
	// the events before the tail (the live model as a retrain at that
	// time would have made it).
	ReferenceRecipe = "recipe"
)

// RetrainResult describes a retrain.
type RetrainResult struct {
	Events       int       `json:"events"`
	Duplicates   int       `json:"duplicates"`
	Users        int       `json:"users"`
	Items        int       `json:"items"`
	Interactions int       `json:"interactions"`
	Cutoff       time.Time `json:"cutoff"`
	ArchiveSeq   uint64    `json:"archive_seq"`
	// HoldoutFrom is the tail's start (its first event's time when the
	// tail starts at the snapshot's cut-off).
	HoldoutFrom time.Time `json:"holdout_from"`
	// Reference is how the live model was evaluated (ReferenceSnapshot,
	// ReferenceRecipe; empty without a live model).
	Reference string  `json:"reference,omitempty"`
	TrainS    float64 `json:"train_s"`
	// Params and Blend are the new model's hyperparameters and
	// popularity prior (the pick when tuned).
	Params model.Params `json:"params"`
	Blend  model.Blend  `json:"blend"`
	// Validation is the pick's quality on the validation split of the
	// events before the tail (each user's latest held out).
	Validation *eval.Metrics `json:"validation,omitempty"`
	// BlendConfirm is the check of the fitted blend on each user's next
	// event before the tail (eval.ConfirmBlend; nil: not checked).
	BlendConfirm *eval.BlendConfirmation `json:"blend_confirm,omitempty"`
	// Search describes the hyperparameter search (nil: none).
	Search *SearchSummary `json:"search,omitempty"`
	// TailUsers are the users with a new item in the tail; the guard
	// ranks at most RetrainConfig.GuardUsers of them (Evaluation.Users).
	TailUsers int `json:"tail_users,omitempty"`
	// Evaluations are the tail figures of "retrained", "live" (when
	// compared) and "popularity".
	Evaluations []Evaluation `json:"evaluations"`
	// Comparisons are the paired tests of "retrained" against "live" and
	// against "popularity".
	Comparisons []Comparison `json:"comparisons"`
	// Snapshot is the model trained on every event (nil when the range
	// held no learning event).
	Snapshot *model.Snapshot `json:"-"`
}

// Evaluation returns the named evaluation, if present.
func (r *RetrainResult) Evaluation(name string) (Evaluation, bool) {
	for _, e := range r.Evaluations {
		if e.Model == name {
			return e, true
		}
	}
	return Evaluation{}, false
}

// Comparison returns the comparison of "retrained" with b, if present.
func (r *RetrainResult) Comparison(b string) (Comparison, bool) {
	for _, c := range r.Comparisons {
		if c.B == b {
			return c, true
		}
	}
	return Comparison{}, false
}

// ErrNoEvents is returned when the range holds no learning event.
var ErrNoEvents = errors.New("offline: no learning events in the range")

// Retrain reads the archive twice (streaming: memory proportional to the
// distinct (user, item) pairs, not to the events), aggregates the events
// into decayed weights exactly as the engine does, fits the popularity
// prior (and, with cfg.Tune, searches the hyperparameters) on a
// validation split of the events before the held-out tail, ranks the tail
// with the new model, the live one and popularity — none of them has
// learnt from it — and finally trains on everything for the snapshot.
// Users are the events' visitors. See the package documentation.
func Retrain(ctx context.Context, src RecordSource, live *LiveModel, cfg RetrainConfig) (*RetrainResult, error) {
	if err := cfg.Params.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if live != nil && (live.Items == nil || live.Items.Rows() == 0) && live.Snapshot == nil {
		live = nil // an empty live model: nothing to compare with
	}
	p := newProgress(cfg.Progress)
	r, d, err := readArchive(ctx, src, live, cfg, p)
	if err != nil {
		return nil, err
	}
	if d.all.len() == 0 {
		return r, ErrNoEvents
	}
	r.Interactions = d.all.len()
	r.Params, r.Blend = cfg.Params, model.DefaultBlend()
	if err := d.pick(ctx, r, cfg, p); err != nil {
		return nil, err
	}
	if d.pre.len() > 0 && len(d.targets) > 0 {
		if err := d.guard(ctx, r, live, cfg.guardUsers(), p); err != nil {
			return nil, err
		}
	}
	start := time.Now()
	mod, mat, err := d.train(ctx, d.all.all(), r.Params, p, "final model")
	if err != nil {
		return nil, err
	}
	r.TrainS = time.Since(start).Seconds()
	nb, err := blendNeighbours(ctx, mat, r.Blend)
	if err != nil {
		return nil, err
	}
	now := cfg.Now().UTC()
	blend := r.Blend
	r.Snapshot = &model.Snapshot{
		Meta: model.Meta{Params: r.Params, Created: now, Cutoff: r.Cutoff, Version: uint64(now.UnixNano()), ArchiveSeq: r.ArchiveSeq, HistoryCut: cfg.HistoryCut, Blend: &blend,
			Note: fmt.Sprintf("kairos retrain: %d events, %d users, %d items", r.Events, r.Users, r.Items)},
		UserIDs: d.users.ids, ItemIDs: d.items.ids, Users: mod.Users, Items: mod.Items,
		Stats: model.ItemStatsFromMatrix(mod, mat), Neighbours: nb,
	}
	p.done()
	return r, nil
}

// retrainData is the aggregated archive.
type retrainData struct {
	users, items *index
	// all holds every learning event, pre those before the tail.
	all, pre *pairSet
	// targets: per user, the tail items the user had not seen before (the
	// first maxTargets, in archive order).
	targets map[int32][]int32
	// reference is how the live model is evaluated.
	reference string
	threads   int
}

// train fits ALS with params on a view over the full id space.
func (d *retrainData) train(ctx context.Context, v view, params model.Params, p *progress, what string) (*model.Model, *model.Matrix, error) {
	mat, err := v.matrix(len(d.users.ids), len(d.items.ids), params.HalfLife)
	if err != nil {
		return nil, nil, err
	}
	start := time.Now()
	mod, err := model.Train(ctx, mat, params, func(it int, _ *model.Model) { p.iteration(what, it, params.Iterations, start) })
	return mod, mat, err
}
