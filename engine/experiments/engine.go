package experiments

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kairoshq/kairos/internal/errs"
	"github.com/kairoshq/kairos/internal/periodic"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/storage"
	"github.com/kairoshq/kairos/eval/abtest"
	"github.com/kairoshq/kairos/internal/jsondef"
	"github.com/kairoshq/kairos/signals"
)

// Identities resolves identity links (the engine's store implements it
// through engine.LinkStore).
type Identities interface {
	// Resolve returns, for each id, the user it is linked to ("" if none).
	Resolve(ctx context.Context, ids []string) ([]string, error)
	// Linked returns the anonymous ids linked to user.
	Linked(ctx context.Context, user string) ([]string, error)
}

// Definitions tells whether the offers and campaigns that variants name
// exist (the promo engine; see Engine.SetDefinitions).
type Definitions interface {
	HasOffer(id string) bool
	HasCampaign(id string) bool
	HasRule(id string) bool
	// WhileUnchanged runs fn while no definition changes (PutJSON checks
	// and stores an experiment inside it).
	WhileUnchanged(fn func() error) error
}

// Deps are an Engine's collaborators.
type Deps struct {
	// Backend holds the storage primitives on which the definitions,
	// assignments, units, counts, weights and looks are kept (NewStore).
	// Required.
	Backend storage.Backend
	// Publisher receives the exposure events (required to serve: the
	// API's bus).
	Publisher signals.Publisher
	// Links resolves identities (the engine's store); nil: a visitor is
	// never known to be a user unless the request says so.
	Links Identities
	// Secret is the installation's secret (at least 16 bytes; kairos
	// serve passes the promo token secret) from which the exposure
	// signing key is derived.
	Secret []byte
}

// Interface guard.
var _ engine.Reactor = (*Engine)(nil)

// Engine runs experiments: it keeps the definitions (PutJSON, Delete,
// Get, List), decides the variant of a request (Decide) and logs
// exposures (Expose), attributes outcomes as an engine.Reactor (React),
// re-weights bandits and takes looks (Run), and analyses (Results).
type Engine struct {
	cfg    Config
	log    *slog.Logger
	store  port
	pub    signals.Publisher
	links  Identities
	defs   atomic.Pointer[Definitions] // nil until SetDefinitions
	signer *Signer
	met    *metrics

	snap    atomic.Pointer[snapshot]
	writeMu sync.Mutex // serialises definition writes and reloads

	// weights caches the bandit weights by experiment (replaced whole).
	weights atomic.Pointer[map[string]Weights]

	lookMu sync.Mutex
	looked map[string]time.Time // experiment → At of the last look taken here

	queue chan queued // exposures of pushed promotions
}

type queued struct {
	ev                 signals.Event
	exp, unit, variant string
}

// snapshot is an immutable view of the definitions.
type snapshot struct {
	version int64
	byID    map[string]*Experiment
	all     []*Experiment // by id
}

func newSnapshot(version int64, xs map[string]*Experiment) *snapshot {
	s := &snapshot{version: version, byID: xs}
	for _, id := range slices.Sorted(maps.Keys(xs)) {
		s.all = append(s.all, xs[id])
	}
	return s
}

// New creates the engine and loads the definitions and bandit weights.
func New(ctx context.Context, cfg Config, deps Deps) (*Engine, error) {
	cfg = cfg.Defaults()
	errs := []error{cfg.Validate()}
	var store port
	var backend *BackendStore
	if deps.Backend != nil {
		backend = NewStore(deps.Backend)
		store = backend
	} else {
		errs = append(errs, errors.New("experiments: deps: Backend is nil"))
	}
	signer, err := NewSigner(deps.Secret)
	if err != nil {
		errs = append(errs, fmt.Errorf("experiments: deps: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	e := &Engine{
		cfg: cfg, log: cfg.Logger.With("component", "experiments"), store: store, pub: deps.Publisher,
		links: deps.Links, signer: signer, met: newMetrics(cfg.Registerer), looked: map[string]time.Time{},
		queue: make(chan queued, cfg.QueueLength),
	}
	e.snap.Store(newSnapshot(0, map[string]*Experiment{}))
	e.weights.Store(&map[string]Weights{})
	moved, err := backend.MigrateLegacyKeys(ctx)
	if err != nil {
		return nil, err
	}
	if moved > 0 {
		e.log.LogAttrs(ctx, slog.LevelInfo, "experiments: moved the data of experiments to the keys of this release", slog.Int("experiments", moved))
	}
	if err := e.reload(ctx); err != nil {
		return nil, err
	}
	if err := e.reloadWeights(ctx); err != nil {
		return nil, err
	}
	return e, nil
}

// Signer returns the exposure signer (for Rebuild).
func (e *Engine) Signer() *Signer { return e.signer }

// reload reads every definition from the store and installs a new
// snapshot. Stored definitions that no longer decode are skipped with a
// warning.
func (e *Engine) reload(ctx context.Context) error {
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	v, err := e.store.ExperimentDocsVersion(ctx)
	if err != nil {
		return fmt.Errorf("experiments: definitions version: %w", err)
	}
	docs, err := e.store.ExperimentDocs(ctx)
	if err != nil {
		return fmt.Errorf("experiments: load definitions: %w", err)
	}
	xs := make(map[string]*Experiment, len(docs))
	for _, d := range docs {
		x, err := decodeStored(d.JSON)
		if err != nil {
			e.log.LogAttrs(ctx, slog.LevelWarn, "stored experiment skipped", slog.String("id", d.ID), slog.Any("err", err))
			continue
		}
		xs[x.ID] = &x
	}
	e.snap.Store(newSnapshot(v, xs))
	return nil
}

// decodeStored decodes a stored definition (with its stamps).
func decodeStored(b []byte) (Experiment, error) {
	x, err := Decode(b, "")
	if err != nil {
		return x, err
	}
	var ts struct{ Created, Updated time.Time }
	if err := json.Unmarshal(b, &ts); err != nil {
		return x, err
	}
	x.Created, x.Updated = ts.Created, ts.Updated
	return x, nil
}

// reloadWeights reads the weights of every bandit experiment.
func (e *Engine) reloadWeights(ctx context.Context) error {
	out := map[string]Weights{}
	for _, x := range e.snap.Load().all {
		if x.Mode != ModeBandit {
			continue
		}
		w, err := e.store.BanditWeights(ctx, x.ID)
		if err != nil {
			return fmt.Errorf("experiments: load weights of %s: %w", x.ID, err)
		}
		if w.Version > 0 {
			out[x.ID] = w
		}
	}
	e.weights.Store(&out)
	return nil
}

// Run keeps the engine going until ctx is done: it reloads definitions
// written by other replicas and bandit weights every Config.ReloadEvery,
// re-weights bandits when due, takes the looks, and publishes the
// exposures of pushed promotions. It returns nil when ctx ends.
func (e *Engine) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { e.publishQueued(ctx) })
	defer wg.Wait()
	return periodic.Run(ctx, e.cfg.ReloadEvery, e.tick)
}

// tick is one round of Run's periodic work.
func (e *Engine) tick(ctx context.Context) {
	if v, err := e.store.ExperimentDocsVersion(ctx); err != nil {
		e.fail(ctx, "reload", "definitions version not read", err)
	} else if v != e.snap.Load().version {
		if err := e.reload(ctx); err != nil {
			e.fail(ctx, "reload", "definitions not reloaded", err)
		}
	}
	if err := e.reloadWeights(ctx); err != nil {
		e.fail(ctx, "reload", "bandit weights not reloaded", err)
	}
	now := e.cfg.Now()
	for _, x := range e.snap.Load().all {
		if x.Mode == ModeBandit && x.StatusAt(now) == StatusRunning {
			if err := e.Reweigh(ctx, x.ID, false); err != nil {
				e.fail(ctx, "reweigh", "bandit not re-weighted", err)
			}
		}
		if err := e.takeLook(ctx, x, now); err != nil {
			e.fail(ctx, "look", "look not taken", err)
		}
	}
}

func (e *Engine) fail(ctx context.Context, op, msg string, err error) {
	e.met.errors.WithLabelValues(op).Inc()
	if ctx.Err() == nil {
		e.log.LogAttrs(ctx, slog.LevelWarn, msg, slog.Any("err", err))
	}
}

// currentWeights returns the allocation new subjects of x get now: the
// bandit weights when x is a re-weighted bandit, else the configured
// weights (normalised).
func (e *Engine) currentWeights(x *Experiment) []float64 {
	if x.Mode == ModeBandit {
		if w, ok := (*e.weights.Load())[x.ID]; ok {
			out := make([]float64, len(x.Variants))
			var sum float64
			for i, v := range x.Variants {
				out[i] = w.Weights[v.Name]
				sum += out[i]
			}
			if sum > 0 {
				for i := range out {
					out[i] /= sum
				}
				return out
			}
		}
	}
	return x.Weights()
}

// Reweigh recomputes a bandit's weights by Thompson sampling on the
// primary metric (abtest.ThompsonWeights with the experiment's floor)
// and stores them with the next version — when BanditEvery has passed
// since the last re-weighting (or since the start), or always with
// force. With several replicas, one stores each version.
func (e *Engine) Reweigh(ctx context.Context, id string, force bool) error {
	x := e.snap.Load().byID[id]
	if x == nil {
		return errs.New(engine.ErrNotFound, "experiment %s not found", jsondef.Quote(id))
	}
	if x.Mode != ModeBandit {
		return fmt.Errorf("%w: experiment %s is not a bandit", engine.ErrInvalid, jsondef.Quote(id))
	}
	now := e.cfg.Now()
	cur, err := e.store.BanditWeights(ctx, id)
	if err != nil {
		return err
	}
	since := x.Created
	if x.Start != nil {
		since = *x.Start
	}
	if cur.Version > 0 {
		since = cur.At
	}
	if !force && now.Sub(since) < time.Duration(x.BanditEvery) {
		return nil
	}
	counts, err := e.store.ExperimentCounts(ctx, id)
	if err != nil {
		return err
	}
	w := BanditWeights(x, counts)
	nw := Weights{Version: cur.Version + 1, At: now.UTC(), Weights: map[string]float64{}}
	for i, v := range x.Variants {
		nw.Weights[v.Name] = w[i]
	}
	ok, err := e.store.SetBanditWeights(ctx, id, nw)
	if err != nil {
		return err
	}
	if ok {
		e.met.reweighs.Inc()
		e.log.LogAttrs(ctx, slog.LevelInfo, "bandit re-weighted", slog.String("experiment", id), slog.Int64("version", nw.Version), slog.Any("weights", nw.Weights))
	}
	return e.reloadWeights(ctx)
}

// BanditWeights returns the Thompson-sampling allocation of x's variants
// on its primary metric: P(arm is best | counts) under the posteriors of
// package abtest (Beta(1 + x, 1 + n − x) for binary metrics, N(m, V/n)
// for revenue), floored with x.Floor. Arms without enough data for a
// revenue posterior make the weights uniform.
func BanditWeights(x *Experiment, counts map[string]Counts) []float64 {
	arms := make([]abtest.Posterior, len(x.Variants))
	for i, v := range x.Variants {
		c := counts[v.Name]
		if x.Metric == MetricRevenue {
			arms[i] = abtest.NormalPosterior(abtest.MeanSummary(c.N, c.Sum(MetricRevenue), c.SumSquares()))
		} else {
			arms[i] = abtest.BetaPosterior(c.Successes(x.Metric), c.N)
		}
	}
	return abtest.ThompsonWeights(nil, arms, x.Floor, abtest.DefaultSeed)
}

// takeLook stores a look of x's counts at the current multiple of
// LookEvery, once per period, while x is running and until its last
// attribution window has closed.
func (e *Engine) takeLook(ctx context.Context, x *Experiment, now time.Time) error {
	switch x.StatusAt(now) {
	case StatusScheduled:
		return nil
	case StatusStopped:
		if !now.Before(x.Stop.Add(x.window() + e.cfg.LookEvery)) {
			return nil
		}
	}
	at := now.Truncate(e.cfg.LookEvery).UTC()
	e.lookMu.Lock()
	last := e.looked[x.ID]
	e.lookMu.Unlock()
	if !at.After(last) {
		return nil
	}
	counts, err := e.store.ExperimentCounts(ctx, x.ID)
	if err != nil {
		return err
	}
	if len(counts) > 0 {
		if err := e.store.AddExperimentLook(ctx, x.ID, Look{At: at, Counts: counts}); err != nil {
			return err
		}
	}
	e.lookMu.Lock()
	e.looked[x.ID] = at
	e.lookMu.Unlock()
	return nil
}

// TakeLook stores a look of the experiment's counts at t (tools and
// tests; Run takes them every Config.LookEvery).
func (e *Engine) TakeLook(ctx context.Context, id string, t time.Time) error {
	counts, err := e.store.ExperimentCounts(ctx, id)
	if err != nil {
		return err
	}
	return e.store.AddExperimentLook(ctx, id, Look{At: t.UTC(), Counts: counts})
}

// Request asks which variant to serve on a surface.
type Request struct {
	Surface Surface
	// Slot is the offer slot asked for (offers).
	Slot string
	// Rule is the rule pushing a promotion (promotions).
	Rule string
	// Visitor is the (anonymous) visitor id; an engine state key of a
	// user ("user:<id>") stands for that user.
	Visitor string
	// User is the known user, when the request names one.
	User string
}

// Decision is the variant served to one request.
type Decision struct {
	Experiment string `json:"id"`
	Variant    string `json:"variant"`
	// Propensity is the probability with which the variant was chosen
	// for this subject (at its first assignment).
	Propensity float64 `json:"propensity"`
	// Offer, Campaign, Params and Holdout are the variant's content.
	Offer    string     `json:"-"`
	Campaign string     `json:"-"`
	Params   *RecParams `json:"-"`
	Holdout  bool       `json:"-"`
	// first is the first exposure to log (nil for a returning subject).
	first *exposure
}

// First reports whether the decision is the subject's first exposure
// (Expose publishes it).
func (d *Decision) First() bool { return d.first != nil }

// match returns the running experiment that targets r, if any.
func (e *Engine) match(r Request, now time.Time) *Experiment {
	for _, x := range e.snap.Load().all {
		t := x.Target
		if t.Surface != r.Surface || x.StatusAt(now) != StatusRunning {
			continue
		}
		if (t.Surface == SurfaceOffers && t.Slot != r.Slot) || (t.Surface == SurfacePromotions && t.Rule != r.Rule) {
			continue
		}
		return x
	}
	return nil
}

// Decide returns the variant to serve for r, and false when no running
// experiment targets r. The caller serves it and calls Expose, or
// Abandon when serving failed. Assignment is sticky: a subject keeps its first
// variant whatever the weights later are; an identified user keeps the
// variant the anonymous visitor had (package documentation, "Assignment
// and identity"). Errors are the store's (and the link store's).
func (e *Engine) Decide(ctx context.Context, r Request) (Decision, bool, error) {
	now := e.cfg.Now()
	x := e.match(r, now)
	if x == nil {
		return Decision{}, false, nil
	}
	visitor, user := r.Visitor, r.User
	if u := userOfStateKey(visitor); u != "" {
		if user == "" {
			user = u
		}
		visitor = ""
	}
	if visitor == "" && user == "" {
		return Decision{}, false, fmt.Errorf("%w: visitor: missing", engine.ErrInvalid)
	}
	if user == "" && e.links != nil {
		users, err := e.links.Resolve(ctx, []string{visitor})
		if err != nil {
			return Decision{}, false, fmt.Errorf("experiments: resolve identity: %w", err)
		}
		user = users[0]
	}
	var subjects []string
	if user != "" {
		subjects = append(subjects, UserKey(user))
	}
	if visitor != "" {
		subjects = append(subjects, AnonKey(visitor))
	}
	if user != "" && e.links != nil {
		linked, err := e.links.Linked(ctx, user)
		if err != nil {
			return Decision{}, false, fmt.Errorf("experiments: linked ids: %w", err)
		}
		slices.Sort(linked)
		for _, id := range linked {
			if len(subjects) > e.cfg.MaxLinked+1 {
				break
			}
			if id != visitor {
				subjects = append(subjects, AnonKey(id))
			}
		}
	}
	as, err := e.store.SubjectAssignments(ctx, x.ID, subjects)
	if err != nil {
		return Decision{}, false, fmt.Errorf("experiments: assignments: %w", err)
	}
	if user != "" && x.VariantIndex(as[0].Variant) >= 0 {
		return e.decision(x, as[0], nil), true, nil
	}
	best := -1
	for i, a := range as {
		if (user != "" && i == 0) || x.VariantIndex(a.Variant) < 0 {
			continue
		}
		if best < 0 || a.At.Before(as[best].At) {
			best = i
		}
	}
	if best >= 0 {
		a := as[best]
		if user != "" {
			// The user keeps the anonymous visitor's variant everywhere.
			if _, _, err := e.store.AssignSubject(ctx, x.ID, UserKey(user), a); err != nil {
				return Decision{}, false, fmt.Errorf("experiments: assign: %w", err)
			}
		}
		return e.decision(x, a, nil), true, nil
	}
	subject := subjects[0]
	w := e.currentWeights(x)
	i := Pick(w, Bucket(x.Salt, subject))
	if i < 0 {
		return Decision{}, false, nil
	}
	p := math.Round(w[i]*1e6) / 1e6
	a := Assignment{Variant: x.Variants[i].Name, At: time.UnixMilli(now.UnixMilli()).UTC(), Propensity: p}
	stored, created, err := e.store.AssignSubject(ctx, x.ID, subject, a)
	if err != nil {
		return Decision{}, false, fmt.Errorf("experiments: assign: %w", err)
	}
	if !created {
		return e.decision(x, stored, nil), true, nil
	}
	return e.decision(x, a, &exposure{exp: x.ID, variant: a.Variant, unit: subject, visitor: visitor,
		user: user, at: a.At, weights: w, propensity: p}), true, nil
}

func (e *Engine) decision(x *Experiment, a Assignment, first *exposure) Decision {
	v := x.Variants[x.VariantIndex(a.Variant)]
	e.met.served.WithLabelValues(x.ID, v.Name).Inc()
	return Decision{Experiment: x.ID, Variant: v.Name, Propensity: a.Propensity, Offer: v.Offer, Campaign: v.Campaign,
		Params: v.Params, Holdout: v.Holdout, first: first}
}

// Expose logs the exposure of a decision that was served: for a
// subject's first exposure it publishes the signed exposure event
// (through the bus, so that the archive holds it); for a returning
// subject it does nothing. If publishing fails, the assignment is
// undone (the next request decides again) and the error is returned.
func (e *Engine) Expose(ctx context.Context, d Decision) error {
	if d.first == nil {
		return nil
	}
	if e.pub == nil {
		return fmt.Errorf("experiments: log exposure: %w: no publisher", engine.ErrUnavailable)
	}
	ev := e.signer.event(*d.first)
	if err := e.pub.Publish(ctx, []signals.Event{ev}); err != nil {
		e.met.errors.WithLabelValues("publish").Inc()
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		if uerr := e.store.UnassignSubject(uctx, d.Experiment, d.first.unit, d.Variant); uerr != nil {
			e.fail(ctx, "publish", "failed exposure not unassigned", uerr)
		}
		return fmt.Errorf("experiments: log exposure: %w", err)
	}
	e.met.exposures.Inc()
	return nil
}

// Abandon undoes a decision that was not served (the request failed
// after Decide): a subject's first assignment is removed, so that the
// next request decides again and logs the exposure. A returning
// subject's decision needs nothing.
func (e *Engine) Abandon(ctx context.Context, d Decision) error {
	if d.first == nil {
		return nil
	}
	return e.store.UnassignSubject(context.WithoutCancel(ctx), d.Experiment, d.first.unit, d.Variant)
}

// exposeLater queues a first exposure for Run to publish: the promo
// engine pushes promotions from the engine's consuming goroutine, where
// a synchronous publish to the in-process bus would wait for itself.
func (e *Engine) exposeLater(d Decision) {
	if d.first == nil {
		return
	}
	q := queued{ev: e.signer.event(*d.first), exp: d.Experiment, unit: d.first.unit, variant: d.Variant}
	select {
	case e.queue <- q:
	default:
		e.met.dropped.Inc()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = e.store.UnassignSubject(ctx, q.exp, q.unit, q.variant)
	}
}

// publishQueued publishes queued exposures in batches until ctx ends.
func (e *Engine) publishQueued(ctx context.Context) {
	batch := make([]queued, 0, 100)
	evs := make([]signals.Event, 0, 100)
	for {
		select {
		case <-ctx.Done():
			return
		case q := <-e.queue:
			batch = append(batch[:0], q)
		fill:
			for len(batch) < cap(batch) {
				select {
				case q := <-e.queue:
					batch = append(batch, q)
				default:
					break fill
				}
			}
			evs = evs[:0]
			for _, q := range batch {
				evs = append(evs, q.ev)
			}
			var err error
			for attempt := range 3 {
				if err = e.pub.Publish(ctx, evs); err == nil || ctx.Err() != nil {
					break
				}
				time.Sleep(time.Duration(attempt+1) * 100 * time.Millisecond)
			}
			if err != nil {
				e.met.dropped.Add(float64(len(batch)))
				e.fail(ctx, "publish", "promotion exposures not published", err)
				uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				for _, q := range batch {
					_ = e.store.UnassignSubject(uctx, q.exp, q.unit, q.variant)
				}
				cancel()
				continue
			}
			e.met.exposures.Add(float64(len(batch)))
		}
	}
}

// PromotionOffer decides the offer of a promotion that rule is about to
// push to visitor (user: its known user, "" if anonymous; a visitor that
// is an engine state key "user:<id>" stands for that user): when a
// running promotions experiment targets the rule, the variant's offer
// (offer itself for a variant without one), or "" for a holdout (push
// nothing); offer itself otherwise. The exposure is logged (queued for
// publishing). It implements engine/promo's Experiments and never fails:
// on a store error it returns offer and logs.
func (e *Engine) PromotionOffer(ctx context.Context, visitor, user, rule, offer string) string {
	d, ok, err := e.Decide(ctx, Request{Surface: SurfacePromotions, Rule: rule, Visitor: visitor, User: user})
	if err != nil {
		e.fail(ctx, "decide", "promotion variant not decided", err)
		return offer
	}
	if !ok {
		return offer
	}
	e.exposeLater(d)
	switch {
	case d.Holdout:
		return ""
	case d.Offer != "":
		return d.Offer
	}
	return offer
}

// React implements engine.Reactor: it counts the units of the batch's
// exposure events and attributes its clicks, add-to-carts and
// conversions to the units' variants (package documentation). Store
// errors are logged and counted, never returned; a batch whose units
// changed meanwhile (another replica) is read and applied again.
func (e *Engine) React(ctx context.Context, changes []engine.VisitorChange) {
	start := time.Now()
	var items []item
	unknown := false
	snap := e.snap.Load()
	for i := range changes {
		ch := &changes[i]
		person := userOfStateKey(ch.Visitor.ID)
		for j := range ch.Fresh {
			ev := &ch.Fresh[j]
			if !relevant(ev) {
				continue
			}
			p := ev.User
			if p == "" {
				p = person
			}
			items = append(items, item{ev: ev, person: p})
			if id := ev.Props[PropExperiment]; id != "" && ev.Type == signals.TypeImpression && snap.byID[id] == nil {
				unknown = true
			}
		}
	}
	if len(items) == 0 {
		return
	}
	if unknown {
		// An exposure of an experiment created on another replica since
		// the last reload.
		if err := e.reload(ctx); err != nil {
			e.fail(ctx, "reload", "definitions not reloaded", err)
		}
		snap = e.snap.Load()
	}
	if len(snap.all) == 0 {
		return
	}
	for attempt := 0; ; attempt++ {
		l, err := e.applyBatch(ctx, snap, items)
		if err == nil {
			e.met.units.Add(float64(l.exposures))
			e.met.outcomes.Add(float64(l.outcomes))
			e.met.rejected.Add(float64(l.rejected))
			break
		}
		if errors.Is(err, ErrStaleUnits) && attempt < 5 {
			continue
		}
		e.fail(ctx, "units", "experiment units not updated", err)
		break
	}
	e.met.react.Observe(time.Since(start).Seconds())
}

// applyBatch loads the units the items touch, applies the items and
// stores the changes (ErrStaleUnits when another writer was first).
func (e *Engine) applyBatch(ctx context.Context, snap *snapshot, items []item) (*ledger, error) {
	l := newLedger(e.signer)
	var ks []UnitKey
	for _, it := range items {
		for _, x := range snap.all {
			ks = keys(ks, x, it)
		}
	}
	if len(ks) == 0 {
		return l, nil
	}
	ks = uniqueKeys(ks)
	units, err := e.store.ExperimentUnits(ctx, ks)
	if err != nil {
		return nil, err
	}
	l.load(ks, units)
	if t := l.aliasTargets(); len(t) > 0 {
		units, err := e.store.ExperimentUnits(ctx, t)
		if err != nil {
			return nil, err
		}
		l.load(t, units)
	}
	for _, it := range items {
		for _, x := range snap.all {
			l.apply(x, it)
		}
	}
	u := l.update()
	if u.Empty() {
		return l, nil
	}
	return l, e.store.UpdateExperimentUnits(ctx, u)
}

func uniqueKeys(ks []UnitKey) []UnitKey {
	seen := make(map[UnitKey]struct{}, len(ks))
	out := ks[:0]
	for _, k := range ks {
		if _, ok := seen[k]; !ok {
			seen[k] = struct{}{}
			out = append(out, k)
		}
	}
	return out
}

// ForgetVisitor erases the assignments and unit records of id as an
// anonymous visitor and as a user, in every experiment (the counts, which
// are aggregates, stay).
func (e *Engine) ForgetVisitor(ctx context.Context, id string) error {
	return e.store.ForgetExperimentSubjects(ctx, []string{AnonKey(id), UserKey(id)})
}
