package offline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/kairoshq/kairos/model"
	"github.com/kairoshq/kairos/offline/archive"
	"github.com/kairoshq/kairos/signals"
)

// RecordSource streams archived records; archive.Archive and
// archive.Reader implement it.
type RecordSource interface {
	ScanRecords(ctx context.Context, q archive.Query, fn func(archive.Record) error) error
}

// RetrainConfig configures Retrain.
type RetrainConfig struct {
	// From and To bound the events' time (To zero: no bound).
	From, To time.Time
	// Params are the ALS hyperparameters of the new model.
	Params model.Params
	// Weights turn events into learning weights (the engine's).
	Weights signals.Weights
	// Holdout is the tail of the time range held out to evaluate the new
	// model against the live one (default 10 % of the range, at most 7 days).
	Holdout time.Duration
	// DedupWindow is how many recent event ids are remembered to drop the
	// archive's duplicates (default 1,000,000).
	DedupWindow int
	// Progress receives a human progress line (nil: none).
	Progress io.Writer
	// Now is the clock of the snapshot's creation time (nil: time.Now).
	Now func() time.Time
}

// LiveModel is the item side of the model currently serving, to compare a
// retrained model with.
type LiveModel struct {
	Params  model.Params
	ItemIDs []string
	Items   *model.Factors
}

// Evaluation is one model's ranking quality on the held-out tail: for each
// user with history before the tail and a learning event in it, the first
// tail item not seen before is ranked among all items the user has not
// seen (ties count against it, as in PROTOCOL.md).
type Evaluation struct {
	Model  string  `json:"model"`
	Users  int     `json:"users"`
	HR10   float64 `json:"hr10"`
	NDCG10 float64 `json:"ndcg10"`
}

// RetrainResult describes a retrain.
type RetrainResult struct {
	Events       int          `json:"events"`
	Duplicates   int          `json:"duplicates"`
	Users        int          `json:"users"`
	Items        int          `json:"items"`
	Interactions int          `json:"interactions"`
	Cutoff       time.Time    `json:"cutoff"`
	ArchiveSeq   uint64       `json:"archive_seq"`
	HoldoutFrom  time.Time    `json:"holdout_from"`
	TrainS       float64      `json:"train_s"`
	Evaluations  []Evaluation `json:"evaluations"`
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

// ErrNoEvents is returned when the range holds no learning event.
var ErrNoEvents = errors.New("offline: no learning events in the range")

// Retrain reads the archive once (streaming: memory proportional to the
// distinct (user, item) pairs, not to the events), aggregates the events
// into decayed weights exactly as the engine does, trains batch ALS on all
// but the held-out tail, evaluates it and the live model (when given) on
// the tail, and finally trains on everything for the snapshot. Users are
// the events' visitors.
func Retrain(ctx context.Context, src RecordSource, live *LiveModel, cfg RetrainConfig) (*RetrainResult, error) {
	if err := cfg.Params.Validate(); err != nil {
		return nil, err
	}
	if cfg.Weights == (signals.Weights{}) {
		cfg.Weights = signals.DefaultWeights()
	}
	if cfg.DedupWindow <= 0 {
		cfg.DedupWindow = 1_000_000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	p := newProgress(cfg.Progress)
	r, data, err := readArchive(ctx, src, cfg, p)
	if err != nil {
		return nil, err
	}
	if len(data.pre.pairs)+len(data.tail.pairs) == 0 {
		return r, ErrNoEvents
	}
	// Evaluate on the tail with a model trained before it.
	if len(data.pre.pairs) > 0 && len(data.targets) > 0 {
		preModel, _, err := data.train(ctx, data.pre, cfg.Params, p, "pre-tail model")
		if err != nil {
			return nil, err
		}
		r.Evaluations = append(r.Evaluations, data.evaluate("retrained", preModel))
		if live != nil {
			ev, err := data.evaluateLive(live)
			if err != nil {
				return nil, err
			}
			r.Evaluations = append(r.Evaluations, ev)
		}
	}
	all := newInteractions(cfg.Params.HalfLife)
	all.mergeFrom(data.pre)
	all.mergeFrom(data.tail)
	r.Interactions = len(all.pairs)
	start := time.Now()
	mod, mat, err := data.train(ctx, all, cfg.Params, p, "final model")
	if err != nil {
		return nil, err
	}
	r.TrainS = time.Since(start).Seconds()
	now := cfg.Now().UTC()
	r.Snapshot = &model.Snapshot{
		Meta: model.Meta{Params: cfg.Params, Created: now, Cutoff: r.Cutoff, Version: uint64(now.UnixNano()), ArchiveSeq: r.ArchiveSeq,
			Note: fmt.Sprintf("kairos retrain: %d events, %d users, %d items", r.Events, r.Users, r.Items)},
		UserIDs: data.users.ids, ItemIDs: data.items.ids, Users: mod.Users, Items: mod.Items,
		Stats: model.ItemStatsFromMatrix(mod, mat),
	}
	p.done()
	return r, nil
}

// retrainData is the aggregated archive.
type retrainData struct {
	users, items *index
	pre, tail    *interactions
	// targets: per user, the first tail item the user had not seen before.
	targets map[int32]int32
}

// readArchive scans the range once.
func readArchive(ctx context.Context, src RecordSource, cfg RetrainConfig, p *progress) (*RetrainResult, *retrainData, error) {
	r := &RetrainResult{}
	d := &retrainData{users: newIndex(), items: newIndex(), pre: newInteractions(cfg.Params.HalfLife),
		tail: newInteractions(cfg.Params.HalfLife), targets: map[int32]int32{}}
	// First pass over the index of time: find the range's end to place
	// the tail. Records arrive roughly in time order, so the boundary is
	// computed from the first and last event times seen.
	var first, last time.Time
	if err := src.ScanRecords(ctx, archive.Query{From: cfg.From, To: cfg.To}, func(rec archive.Record) error {
		t := rec.Event.Time.Time
		if first.IsZero() || t.Before(first) {
			first = t
		}
		if t.After(last) {
			last = t
		}
		r.ArchiveSeq = max(r.ArchiveSeq, rec.Seq)
		return nil
	}); err != nil {
		return nil, nil, fmt.Errorf("offline: read archive: %w", err)
	}
	holdout := cfg.Holdout
	if holdout <= 0 {
		holdout = min(last.Sub(first)/10, 7*24*time.Hour)
	}
	boundary := last.Add(-holdout)
	r.HoldoutFrom, r.Cutoff = boundary, last
	dedup := newRecentIDs(cfg.DedupWindow)
	preItems := map[uint64]struct{}{}
	err := src.ScanRecords(ctx, archive.Query{From: cfg.From, To: cfg.To, UntilSeq: r.ArchiveSeq}, func(rec archive.Record) error {
		ev := &rec.Event
		if dedup.seen(ev.ID) {
			r.Duplicates++
			return nil
		}
		r.Events++
		p.read(r.Events)
		w := learningWeight(cfg.Weights, ev)
		if w <= 0 {
			return nil
		}
		u, i := d.users.add(ev.Visitor), d.items.add(ev.Item)
		t := ev.Time.UnixNano()
		if ev.Time.Before(boundary) || holdout == 0 {
			d.pre.add(u, i, w, t)
			preItems[pairKey(u, i)] = struct{}{}
			return nil
		}
		d.tail.add(u, i, w, t)
		if _, seen := preItems[pairKey(u, i)]; !seen {
			if _, has := d.targets[u]; !has {
				d.targets[u] = i
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("offline: read archive: %w", err)
	}
	// Only users with history before the tail can be evaluated.
	for u := range d.targets {
		if _, ok := d.pre.latest[u]; !ok {
			delete(d.targets, u)
		}
	}
	r.Users, r.Items = len(d.users.ids), len(d.items.ids)
	return r, d, nil
}

// train fits ALS on the given interactions over the full id space.
func (d *retrainData) train(ctx context.Context, in *interactions, params model.Params, p *progress, what string) (*model.Model, *model.Matrix, error) {
	mat, err := model.NewMatrix(len(d.users.ids), len(d.items.ids), in.triples())
	if err != nil {
		return nil, nil, err
	}
	start := time.Now()
	mod, err := model.Train(ctx, mat, params, func(it int, _ *model.Model) { p.iteration(what, it, params.Iterations, start) })
	return mod, mat, err
}

// evaluate ranks each target with factors from mod (users' trained rows).
func (d *retrainData) evaluate(name string, mod *model.Model) Evaluation {
	seen := d.pre.userItems()
	return d.rank(name, func(u int32, dst []float32) bool {
		x := mod.Users.Row(int(u))
		scoreAll(dst, mod.Items, x)
		return true
	}, seen)
}

// evaluateLive folds each evaluated user in from the pre-tail history with
// the live item factors and ranks the target.
func (d *retrainData) evaluateLive(live *LiveModel) (Evaluation, error) {
	online, err := model.NewOnline(&model.Model{Params: live.Params, Items: live.Items}, nil)
	if err != nil {
		return Evaluation{}, fmt.Errorf("offline: live model: %w", err)
	}
	liveRow := make([]int32, len(d.items.ids)) // our item → live row, −1 if absent
	pos := make(map[string]int32, len(live.ItemIDs))
	for r, id := range live.ItemIDs {
		pos[id] = int32(r)
	}
	for i, id := range d.items.ids {
		liveRow[i] = -1
		if r, ok := pos[id]; ok {
			liveRow[i] = r
		}
	}
	byUser := map[int32][]model.ItemWeight{}
	for k, acc := range d.pre.pairs {
		u, i := int32(k>>32), int32(uint32(k))
		if _, ok := d.targets[u]; !ok || liveRow[i] < 0 {
			continue
		}
		byUser[u] = append(byUser[u], model.ItemWeight{Item: liveRow[i], Weight: float32(acc.weightAt(d.pre.latest[u], d.pre.halfLife))})
	}
	ws := model.NewWorkspace(live.Params.Factors)
	x := make([]float32, live.Params.Factors)
	liveScores := make([]float32, live.Items.Rows())
	return d.rank("live", func(u int32, dst []float32) bool {
		if err := online.FoldUser(ws, x, byUser[u]); err != nil {
			return false
		}
		scoreAll(liveScores, live.Items, x)
		for i, r := range liveRow {
			if r < 0 {
				dst[i] = float32(math.Inf(-1))
			} else {
				dst[i] = liveScores[r]
			}
		}
		return true
	}, d.pre.userItems()), nil
}

func scoreAll(dst []float32, items *model.Factors, x []float32) {
	k := items.K
	for i := range items.Rows() {
		var s float32
		for f, v := range items.Data[i*k : i*k+k] {
			s += v * x[f]
		}
		dst[i] = s
	}
}

// rank computes HR@10 and NDCG@10 over the targets.
func (d *retrainData) rank(name string, score func(u int32, dst []float32) bool, seen map[int32]map[int32]struct{}) Evaluation {
	ev := Evaluation{Model: name}
	dst := make([]float32, len(d.items.ids))
	for u, target := range d.targets {
		if !score(u, dst) {
			continue
		}
		t := dst[target]
		r := 1
		for j, v := range dst {
			if int32(j) == target || !(v >= t) {
				continue
			}
			if _, s := seen[u][int32(j)]; s {
				continue
			}
			r++
		}
		if math.IsNaN(float64(t)) || math.IsInf(float64(t), -1) {
			r = len(dst)
		}
		ev.Users++
		if r <= 10 {
			ev.HR10++
			ev.NDCG10 += 1 / math.Log2(float64(r)+1)
		}
	}
	if ev.Users > 0 {
		ev.HR10 /= float64(ev.Users)
		ev.NDCG10 /= float64(ev.Users)
	}
	return ev
}
