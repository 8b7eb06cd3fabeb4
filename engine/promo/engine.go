package promo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kairoshq/kairos/engine/filter"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/defstore"
	"github.com/kairoshq/kairos/signals"
)

// Model is what the promo engine needs of the live model and the catalog;
// *engine.Engine implements it.
type Model interface {
	// Affinity returns the mean predicted preference x·y_i over the items
	// the model has factors for, and whether there were any.
	Affinity(x []float32, items []string) (float32, bool)
	// CachedItem returns a catalog entry (for categories).
	CachedItem(id string) (engine.Item, bool)
	// Items pages through the catalog (for categories' items).
	Items(ctx context.Context, after string, limit int) ([]engine.Item, error)
}

// Profiles gives the live model's factors of a visitor; *engine.Engine
// implements it.
type Profiles interface {
	// VisitorFactors returns the factors of visitor (of user when given,
	// or of the user the visitor is linked to), nil when the model knows
	// nothing of them.
	VisitorFactors(ctx context.Context, visitor, user string) ([]float32, error)
}

// Deps are an Engine's collaborators.
type Deps struct {
	// Store keeps definitions, counters, cooldowns and promotion logs
	// (required): NewStore of the backend.
	Store Store
	// Profiles gives a visitor's factors for RankOffers (required; the
	// engine, which alone decodes stored factors).
	Profiles Profiles
	// Model gives affinities; nil: offers are ranked by exploration alone.
	Model Model
	// Broadcaster receives every promotion on signals.TopicPromotions;
	// nil: promotions are only logged (streams find them on their next
	// poll).
	Broadcaster signals.Broadcaster
	// Experiments decides what a rule pushes when an experiment targets
	// it (engine/experiments.Engine); nil: the rule's own offer.
	Experiments Experiments
	// HeldOut reports whether a visitor (user: its known user, "" if
	// anonymous) is in the personalization holdout (engine/holdout):
	// rules, which react to the visitor's own behaviour, push it
	// nothing. nil: nobody is held out.
	HeldOut func(ctx context.Context, visitor, user string) bool
	// Linked returns the anonymous ids linked to a user (the engine's
	// store): a rule's cooldown started on a device before it signed in
	// holds for the user. nil: only the state's own cooldown counts.
	Linked func(ctx context.Context, user string) ([]string, error)
}

// Experiments lets an experiment decide what a rule pushes.
type Experiments interface {
	// PromotionOffer is called when rule is about to push offer to
	// visitor (user: its known user, "" if anonymous), its cooldown
	// started: it returns the offer to push — offer itself when no
	// experiment targets the rule — or "" to push nothing (a holdout),
	// and logs the exposure.
	PromotionOffer(ctx context.Context, visitor, user, rule, offer string) string
	// Naming returns where experiments name the offer (kind "offers") or
	// campaign (kind "campaigns") id, as JSON paths; deleting it is then
	// refused (ErrInUse).
	Naming(kind, id string) []string
}

// Interface guard.
var _ engine.Reactor = (*Engine)(nil)

// Engine runs offers, campaigns and rules: it ranks offers for visitors
// (RankOffers), reacts to every committed batch of events (React: offer
// counters, rule evaluation, promotions), and keeps the definitions
// (Put*, Delete, lists). Create it with New, register it with
// engine.Engine.AddReactor and run Run beside the engine.
type Engine struct {
	cfg    Config
	log    *slog.Logger
	store  Store
	defs   *Definitions
	vers   *defstore.Versions // read by New, then by Run only
	prof   Profiles
	model  Model
	bcast  signals.Broadcaster
	exps   Experiments
	held   func(ctx context.Context, visitor, user string) bool
	linked func(ctx context.Context, user string) ([]string, error)
	signer *Signer
	met    *metrics

	snap    atomic.Pointer[snapshot]
	writeMu sync.Mutex // serialises definition writes

	// statsMu guards stats and own (an offer's own factor is updated in
	// place).
	statsMu sync.RWMutex
	stats   map[string]OfferStats
	own     map[string][]float32

	// cent maps offer → centroid of its items' factors (replaced whole);
	// centMu serialises its writers and guards catMean.
	cent    atomic.Pointer[map[string][]float32]
	centMu  sync.Mutex
	catMean map[string][]float32

	cdMu sync.Mutex
	cd   map[cdKey]time.Time

	rngMu sync.Mutex
	rng   *rand.Rand

	rules ruleLog // what this replica saw of each rule

	evals sync.Pool // *evalCtx
	cands sync.Pool // *[]candidate
	kick  chan struct{}
}

type cdKey struct{ visitor, rule string }

// snapshot is an immutable view of the definitions.
type snapshot struct {
	offers    map[string]*offerInfo
	campaigns map[string]*Campaign
	rules     map[string]*Rule
	compiled  []*compiledRule
	bySlot    map[string][]*offerInfo
	all       []*offerInfo // by id
}

// offerInfo is an offer with the campaigns it belongs to.
type offerInfo struct {
	Offer
	campaigns []*Campaign
}

// New creates the engine and loads the definitions, the offer counters and
// the token secret from the store.
func New(ctx context.Context, cfg Config, deps Deps) (*Engine, error) {
	cfg = cfg.Defaults()
	errs := []error{cfg.Validate()}
	if deps.Store == nil {
		errs = append(errs, errors.New("promo: deps: Store is nil"))
	}
	if deps.Profiles == nil {
		errs = append(errs, errors.New("promo: deps: Profiles is nil"))
	}
	if deps.Model != nil && cfg.Factors == 0 {
		errs = append(errs, errors.New("promo: config: Factors is required with a Model"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	e := &Engine{
		cfg: cfg, log: cfg.Logger.With("component", "promo"), store: deps.Store, prof: deps.Profiles,
		model: deps.Model, bcast: deps.Broadcaster, exps: deps.Experiments, held: deps.HeldOut, linked: deps.Linked, met: newMetrics(cfg.Registerer),
		stats: map[string]OfferStats{}, own: map[string][]float32{}, cd: map[cdKey]time.Time{},
		rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), kick: make(chan struct{}, 1),
	}
	e.evals.New = func() any { return &evalCtx{} }
	e.cands.New = func() any { s := make([]candidate, 0, 64); return &s }
	empty := map[string][]float32{}
	e.cent.Store(&empty)
	defs := deps.Store.Definitions()
	e.defs, e.vers = defs, defs.Versions()
	secret, err := e.store.PromoSecret(ctx)
	if err != nil {
		return nil, fmt.Errorf("promo: token secret: %w", err)
	}
	if e.signer, err = NewSigner(secret); err != nil {
		return nil, err
	}
	// The versions are read before the definitions they stand for: a
	// change in between is reloaded by Run.
	cur, _, err := e.vers.Poll(ctx)
	if err != nil {
		return nil, fmt.Errorf("promo: %w", err)
	}
	if _, err := e.reload(ctx); err != nil {
		return nil, err
	}
	e.vers.Mark(cur)
	if err := e.refreshCounts(ctx); err != nil {
		return nil, err
	}
	e.refreshCentroids(ctx)
	return e, nil
}

// Signer returns the engine's token signer.
func (e *Engine) Signer() *Signer { return e.signer }

// Run keeps the engine's caches fresh until ctx is done: definitions
// written by other replicas and offer counters every Config.ReloadEvery,
// the centroids of offers' items every Config.RefreshEvery (and soon
// after an offer changes). It returns nil when ctx ends.
func (e *Engine) Run(ctx context.Context) error {
	reload := time.NewTicker(e.cfg.ReloadEvery)
	defer reload.Stop()
	refresh := time.NewTicker(e.cfg.RefreshEvery)
	defer refresh.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-reload.C:
			cur, changed, err := e.vers.Poll(ctx)
			if err != nil {
				e.warn(ctx, "definitions version not read", err)
				continue
			}
			if changed {
				if _, err := e.reload(ctx); err != nil {
					e.warn(ctx, "definitions not reloaded", err)
					continue
				}
				e.vers.Mark(cur)
				e.refreshCentroids(ctx)
			}
			if err := e.refreshCounts(ctx); err != nil {
				e.warn(ctx, "offer counters not reloaded", err)
			}
		case <-refresh.C:
			e.refreshCentroids(ctx)
		case <-e.kick:
			e.refreshCentroids(ctx)
		}
	}
}

func (e *Engine) warn(ctx context.Context, msg string, err error) {
	if ctx.Err() == nil {
		e.log.LogAttrs(ctx, slog.LevelWarn, msg, slog.Any("err", err))
	}
}

// reload reads every definition from the store and installs a new
// snapshot. Stored definitions that no longer validate are skipped with a
// warning.
func (e *Engine) reload(ctx context.Context) (*snapshot, error) {
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	s := &snapshot{offers: map[string]*offerInfo{}, campaigns: map[string]*Campaign{}, rules: map[string]*Rule{}}
	for _, kind := range []Kind{KindOffer, KindCampaign, KindRule} {
		docs, err := e.defs.Collection(kind).All(ctx)
		if err != nil {
			return nil, fmt.Errorf("promo: load %s: %w", kind, err)
		}
		for _, d := range docs {
			if err := s.add(kind, d.JSON); err != nil {
				e.log.LogAttrs(ctx, slog.LevelWarn, "stored definition skipped", slog.String("kind", string(kind)), slog.String("id", d.ID), slog.Any("err", err))
			}
		}
	}
	s.index()
	e.snap.Store(s)
	return s, nil
}

// stamps are the times a definition's JSON carries.
type stamps struct {
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

// add decodes a stored definition into s (before index).
func (s *snapshot) add(kind Kind, b []byte) error {
	var ts stamps
	if err := json.Unmarshal(b, &ts); err != nil {
		return err
	}
	switch kind {
	case KindOffer:
		o, err := DecodeOffer(b, "")
		if err != nil {
			return err
		}
		o.Created, o.Updated = ts.Created, ts.Updated
		s.offers[o.ID] = &offerInfo{Offer: o}
	case KindCampaign:
		c, err := DecodeCampaign(b, "")
		if err != nil {
			return err
		}
		c.Created, c.Updated = ts.Created, ts.Updated
		s.campaigns[c.ID] = &c
	case KindRule:
		r, err := DecodeRule(b, "")
		if err != nil {
			return err
		}
		r.Created, r.Updated = ts.Created, ts.Updated
		s.rules[r.ID] = &r
	}
	return nil
}

// index links offers to campaigns and compiles the rules.
func (s *snapshot) index() {
	for _, o := range s.offers {
		o.campaigns = nil
	}
	for _, id := range sortedKeys(s.campaigns) {
		c := s.campaigns[id]
		for _, oid := range c.Offers {
			if o := s.offers[oid]; o != nil {
				o.campaigns = append(o.campaigns, c)
			}
		}
	}
	s.all = s.all[:0]
	s.bySlot = map[string][]*offerInfo{}
	for _, id := range sortedKeys(s.offers) {
		o := s.offers[id]
		s.all = append(s.all, o)
		s.bySlot[o.Slot] = append(s.bySlot[o.Slot], o)
	}
	rules := make([]Rule, 0, len(s.rules))
	for _, id := range sortedKeys(s.rules) {
		rules = append(rules, *s.rules[id])
	}
	s.compiled = compileRules(rules)
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// clone copies s shallowly (offers are copied, since index relinks them).
func (s *snapshot) clone() *snapshot {
	n := &snapshot{offers: make(map[string]*offerInfo, len(s.offers)), campaigns: maps(s.campaigns), rules: maps(s.rules)}
	for id, o := range s.offers {
		c := *o
		n.offers[id] = &c
	}
	return n
}

func maps[V any](m map[string]V) map[string]V {
	n := make(map[string]V, len(m))
	for k, v := range m {
		n[k] = v
	}
	return n
}

// refreshCounts replaces the cached offer counters and own factors with
// the store's.
func (e *Engine) refreshCounts(ctx context.Context) error {
	oc, err := e.store.OfferCounts(ctx)
	if err != nil {
		return fmt.Errorf("promo: load offer counters: %w", err)
	}
	if oc.Stats == nil {
		oc.Stats = map[string]OfferStats{}
	}
	if oc.Factors == nil {
		oc.Factors = map[string][]float32{}
	}
	for id, f := range oc.Factors {
		if len(f) != e.cfg.Factors {
			delete(oc.Factors, id) // another configuration's
		}
	}
	e.statsMu.Lock()
	e.stats, e.own = oc.Stats, oc.Factors
	e.statsMu.Unlock()
	return nil
}

// Stats returns an offer's counters as this replica knows them (at most
// Config.ReloadEvery behind other replicas' counts).
func (e *Engine) Stats(offer string) OfferStats {
	e.statsMu.RLock()
	defer e.statsMu.RUnlock()
	return e.stats[offer]
}

// refreshCentroids recomputes, for each offer, the mean factor vector of
// what it promotes: the mean of its items' factors and of each of its
// categories' items' mean (the affinity x·centroid is then the mean of
// x·y_i, as engine.Engine.Affinity computes it). The mean of the items is
// read coordinate by coordinate through Model.Affinity with unit vectors.
func (e *Engine) refreshCentroids(ctx context.Context) {
	if e.model == nil || e.cfg.Factors == 0 {
		return
	}
	e.centMu.Lock()
	defer e.centMu.Unlock()
	snap := e.snap.Load()
	catItems := map[string][]string{}
	for _, o := range snap.all {
		for _, c := range o.Categories {
			catItems[c] = nil
		}
	}
	if len(catItems) > 0 {
		if err := e.categoryItems(ctx, catItems); err != nil {
			e.warn(ctx, "category items not loaded", err)
		}
	}
	catMean := map[string][]float32{}
	for c, items := range catItems {
		if m := e.meanFactors(items); m != nil {
			catMean[c] = m
		}
	}
	out := make(map[string][]float32, len(snap.all))
	for _, o := range snap.all {
		if c := e.centroidOf(&o.Offer, catMean); c != nil {
			out[o.ID] = c
		}
	}
	e.catMean = catMean
	e.cent.Store(&out)
}

// updateCentroid sets the centroid of one offer just written (deleted
// when del), with the categories' means of the last refresh.
func (e *Engine) updateCentroid(o *Offer, del bool) {
	if e.model == nil || e.cfg.Factors == 0 {
		return
	}
	e.centMu.Lock()
	defer e.centMu.Unlock()
	old := *e.cent.Load()
	out := make(map[string][]float32, len(old)+1)
	for id, c := range old {
		out[id] = c
	}
	delete(out, o.ID)
	if !del {
		if c := e.centroidOf(o, e.catMean); c != nil {
			out[o.ID] = c
		}
		for _, c := range o.Categories {
			if _, ok := e.catMean[c]; !ok {
				e.kickRefresh() // a category not loaded yet
			}
		}
	}
	e.cent.Store(&out)
}

// centroidOf is the mean of o's items' mean factors and its categories'.
func (e *Engine) centroidOf(o *Offer, catMean map[string][]float32) []float32 {
	var parts [][]float32
	if m := e.meanFactors(o.Items); m != nil {
		parts = append(parts, m)
	}
	for _, c := range o.Categories {
		if m := catMean[c]; m != nil {
			parts = append(parts, m)
		}
	}
	if len(parts) == 0 {
		return nil
	}
	c := make([]float32, e.cfg.Factors)
	for _, p := range parts {
		for f := range c {
			c[f] += p[f] / float32(len(parts))
		}
	}
	return c
}

// meanFactors returns the mean factor vector of the items the model
// knows, nil if none.
func (e *Engine) meanFactors(items []string) []float32 {
	if len(items) == 0 {
		return nil
	}
	k := e.cfg.Factors
	unit := make([]float32, k)
	c := make([]float32, k)
	for f := range k {
		unit[f] = 1
		a, ok := e.model.Affinity(unit, items)
		unit[f] = 0
		if !ok {
			return nil
		}
		c[f] = a
	}
	return c
}

// categoryItems fills cats (category → nil) with up to MaxCategoryItems
// item ids of each, paging through the catalog.
func (e *Engine) categoryItems(ctx context.Context, cats map[string][]string) error {
	after := ""
	for {
		page, err := e.model.Items(ctx, after, 1000)
		if err != nil {
			return err
		}
		for _, it := range page {
			if ids, ok := cats[it.Category]; ok && it.Active && len(ids) < e.cfg.MaxCategoryItems {
				cats[it.Category] = append(ids, it.ID)
			}
		}
		if len(page) < 1000 {
			return nil
		}
		after = page[len(page)-1].ID
	}
}

// affinity returns the predicted affinity of factors x for an offer: the
// dot product with the centroid of what it promotes, blended with its own
// learnt factor once it has clicks (share clicks/(clicks+OwnShrink)).
// statsMu must be held for reading.
func (e *Engine) affinityLocked(cent map[string][]float32, x []float32, offer string) (float64, bool) {
	if len(x) == 0 || len(x) != e.cfg.Factors || isZero(x) {
		return 0, false
	}
	var ai, ao float64
	c, hasI := cent[offer]
	if hasI {
		ai = dot(x, c)
	}
	clicks := e.stats[offer].Clicks
	y, hasO := e.own[offer]
	hasO = hasO && clicks > 0
	if hasO {
		ao = dot(x, y)
	}
	switch {
	case hasI && hasO:
		s := float64(clicks) / (float64(clicks) + e.cfg.OwnShrink)
		return (1-s)*ai + s*ao, true
	case hasI:
		return ai, true
	case hasO:
		return ao, true
	}
	return 0, false
}

// Affinity returns the predicted affinity of factors x for an offer (see
// the package documentation) and whether it is known.
func (e *Engine) Affinity(x []float32, offer string) (float64, bool) {
	cent := *e.cent.Load()
	e.statsMu.RLock()
	defer e.statsMu.RUnlock()
	return e.affinityLocked(cent, x, offer)
}

// score sets the score of each candidate for factors x: a Thompson sample
// θ ~ Beta(1+clicks, 1+impressions−clicks) of its click-through blended
// with its affinity, and sorts them, best first.
func (e *Engine) score(cs []candidate, x []float32) {
	cent := *e.cent.Load()
	w := e.cfg.AffinityWeight
	var sum float64
	known := 0
	e.statsMu.RLock()
	m, strength := e.pooledCTRLocked(cs), e.cfg.PriorStrength
	e.rngMu.Lock()
	for i := range cs {
		c := &cs[i]
		st := e.stats[c.o.ID]
		clicks := float64(max(st.Clicks, 0))
		imps := max(float64(st.Impressions), clicks)
		c.theta = betaSample(e.rng, 1+clicks+strength*m, 1+imps-clicks+strength*(1-m))
		c.aff, c.hasAff = e.affinityLocked(cent, x, c.o.ID)
		if c.hasAff {
			c.aff = min(max(c.aff, 0), 1)
			sum += c.aff
			known++
		}
	}
	e.rngMu.Unlock()
	e.statsMu.RUnlock()
	neutral := 0.0
	if known > 0 {
		neutral = sum / float64(known)
	}
	for i := range cs {
		c := &cs[i]
		a := neutral
		if c.hasAff {
			a = c.aff
		}
		c.score = (1-w)*c.theta + w*a
	}
	sortCandidates(cs)
}

// pooledCTRLocked is the click-through of the candidates pooled,
// (Σclicks + 1) / (Σimpressions + 2): the mean of the prior of each
// offer's Thompson sample. statsMu must be held for reading.
func (e *Engine) pooledCTRLocked(cs []candidate) float64 {
	var clicks, imps float64
	for i := range cs {
		st := e.stats[cs[i].o.ID]
		c := float64(max(st.Clicks, 0))
		clicks += c
		imps += max(float64(st.Impressions), c)
	}
	return (clicks + 1) / (imps + 2)
}

// candidates appends to dst the offers eligible at now (caps excepted)
// of slot (any when ""), restricted to campaign's offers when set.
func (e *Engine) candidates(dst []candidate, snap *snapshot, slot, campaign string, now time.Time) []candidate {
	list := snap.all
	if slot != "" {
		list = snap.bySlot[slot]
	}
	e.statsMu.RLock()
	defer e.statsMu.RUnlock()
	for _, o := range list {
		prio, camp, ok := eligible(o, now, e.stats[o.ID])
		if !ok {
			continue
		}
		if campaign != "" {
			if !slices.ContainsFunc(o.campaigns, func(c *Campaign) bool { return c.ID == campaign && campaignLive(c, now) }) {
				continue
			}
			camp = campaign
		}
		dst = append(dst, candidate{o: o, priority: prio, campaign: camp})
	}
	return dst
}

// applyCaps drops the candidates whose frequency cap the visitor reached
// (one store call, none when no candidate has a cap).
func (e *Engine) applyCaps(ctx context.Context, visitor string, cs []candidate, now time.Time) ([]candidate, error) {
	var ids []string
	for _, c := range cs {
		if c.o.Cap != nil {
			ids = append(ids, c.o.ID)
		}
	}
	if len(ids) == 0 {
		return cs, nil
	}
	counts, err := e.store.OfferCaps(ctx, visitor, ids, now)
	if err != nil {
		return nil, fmt.Errorf("promo: frequency caps: %w", err)
	}
	j := 0
	out := cs[:0]
	for _, c := range cs {
		if c.o.Cap != nil {
			n := counts[j]
			j++
			if n >= c.o.Cap.Max {
				continue
			}
		}
		out = append(out, c)
	}
	return out, nil
}

// RankOffers returns up to r.N eligible offers for r.Visitor in r.Slot,
// best first, each with a fresh exposure token. Errors: engine.ErrInvalid
// for a bad request (naming the field); the store's errors.
func (e *Engine) RankOffers(ctx context.Context, r OfferRequest) (OfferList, error) {
	if err := e.checkRequest(r); err != nil {
		return OfferList{}, err
	}
	list := OfferList{Visitor: r.Visitor, Slot: r.Slot, Offers: []RankedOffer{}}
	now := e.cfg.Now()
	snap := e.snap.Load()
	bp := e.cands.Get().(*[]candidate)
	defer func() { *bp = (*bp)[:0]; e.cands.Put(bp) }()
	cs := e.candidates((*bp)[:0], snap, r.Slot, r.Campaign, now)
	*bp = cs
	if len(cs) == 0 {
		return list, nil
	}
	var x []float32
	var err error
	if !r.Baseline {
		if x, err = e.prof.VisitorFactors(ctx, r.Visitor, r.User); err != nil {
			return OfferList{}, fmt.Errorf("promo: visitor factors: %w", err)
		}
	}
	if cs, err = e.applyCaps(ctx, r.Visitor, cs, now); err != nil {
		return OfferList{}, err
	}
	boosts := filterOffers(&cs, r)
	e.score(cs, x)
	if boosts != nil {
		for i := range cs {
			cs[i].score *= boosts[cs[i].o.ID] // offer scores are in [0, 1]
		}
		sortCandidates(cs)
	}
	cs = cs[:min(len(cs), r.N)]
	list.Offers = make([]RankedOffer, len(cs))
	for i, c := range cs {
		list.Offers[i] = RankedOffer{
			OfferView: c.o.View(), Slot: c.o.Slot, Campaign: c.campaign, Score: c.score,
			Token: e.signer.Sign(Token{Offer: c.o.ID, Slot: c.o.Slot, Visitor: r.Visitor, Time: now, Exposure: rand.Uint64()}),
		}
	}
	e.met.ranked.Add(float64(len(cs)))
	return list, nil
}

// filterOffers drops the candidates r.Filter rejects (or whose boost is
// not positive) and returns the boosts by offer id (nil without Boost).
// Offers are few: the expressions are evaluated per request.
func filterOffers(cs *[]candidate, r OfferRequest) map[string]float64 {
	if r.Filter == nil && r.Boost == nil {
		return nil
	}
	var boosts map[string]float64
	if r.Boost != nil {
		boosts = make(map[string]float64, len(*cs))
	}
	env := &filter.Env{}
	kept := (*cs)[:0]
	for _, c := range *cs {
		o := &c.o.Offer
		*env = filter.Env{ID: o.ID, Slot: o.Slot, Items: o.Items, Categories: o.Categories, Created: o.Created, Active: o.Active, Context: r.Context}
		if len(o.Categories) > 0 {
			env.Category = o.Categories[0]
		}
		if r.Filter != nil && !r.Filter.Eval(nil, env) {
			continue
		}
		if r.Boost != nil {
			b := r.Boost.Value(nil, env)
			if b <= 0 {
				continue
			}
			boosts[o.ID] = b
		}
		kept = append(kept, c)
	}
	*cs = kept
	return boosts
}

func (e *Engine) checkRequest(r OfferRequest) error {
	switch {
	case r.Visitor == "":
		return fmt.Errorf("%w: visitor: missing", engine.ErrInvalid)
	case len(r.Visitor) > 200:
		return fmt.Errorf("%w: visitor: longer than 200 bytes", engine.ErrInvalid)
	case r.Slot != "" && !validID(r.Slot, maxSlotBytes):
		return fmt.Errorf("%w: slot: %s is not a slot name (1 to %d letters, digits, '-', '_', '.' or ':')", engine.ErrInvalid, quote(r.Slot), maxSlotBytes)
	case r.N < 1 || r.N > e.cfg.MaxResults:
		return fmt.Errorf("%w: n: %d is not in [1, %d]", engine.ErrInvalid, r.N, e.cfg.MaxResults)
	case r.Campaign != "" && !validID(r.Campaign, maxIDBytes):
		return fmt.Errorf("%w: campaign: %s is not a campaign id", engine.ErrInvalid, quote(r.Campaign))
	}
	return nil
}

// React implements engine.Reactor: for a committed batch it counts the
// impressions, clicks and conversions of offers (by token, or by offer
// id unless Config.RequireToken), updates the offers' own factors and
// the visitors' frequency caps, then evaluates the rules for each visitor
// with fresh events and fires at most one promotion per visitor. Store
// errors are logged and counted, never returned.
func (e *Engine) React(ctx context.Context, changes []engine.VisitorChange) {
	start := time.Now()
	now := e.cfg.Now()
	snap := e.snap.Load()
	var counts Counts
	for i := range changes {
		ch := &changes[i]
		for j := range ch.Fresh {
			e.attribute(&ch.Fresh[j], ch.Visitor.Factors, snap, now, &counts)
		}
	}
	if !counts.Empty() {
		counts.Now = now
		e.applyCounts(&counts)
		if err := e.store.AddOfferCounts(ctx, counts); err != nil {
			e.met.errors.WithLabelValues("counts").Inc()
			e.warn(ctx, "offer counters not stored", err)
		}
	}
	if len(snap.compiled) > 0 {
		c := e.evals.Get().(*evalCtx)
		for i := range changes {
			if triggers(changes[i].Fresh) {
				e.evaluate(ctx, snap, c, &changes[i], now)
			}
		}
		c.hist, c.fresh, c.view = nil, nil, nil
		e.evals.Put(c)
	}
	e.met.react.Observe(time.Since(start).Seconds())
}

// triggers reports whether a batch is evaluated against the rules: it
// has an event other than an impression (the impression of a rendered
// promotion must not fire the next one, whatever the rules say).
func triggers(fresh []signals.Event) bool {
	for i := range fresh {
		if fresh[i].Type != signals.TypeImpression {
			return true
		}
	}
	return false
}

// attribute adds ev's effect on offer counters to counts.
func (e *Engine) attribute(ev *signals.Event, x []float32, snap *snapshot, now time.Time, counts *Counts) {
	switch ev.Type {
	case signals.TypeImpression, signals.TypeClick, signals.TypeConversion:
	default:
		return
	}
	var offer string
	var issued time.Time // of the event's token
	switch {
	case ev.Token != "":
		t, err := e.signer.Verify(ev.Token)
		switch {
		case err != nil:
			e.met.tokens.WithLabelValues("forged").Inc()
			return
		case !t.Matches(ev.Visitor):
			e.met.tokens.WithLabelValues("other_visitor").Inc()
			return
		case now.Sub(t.Time) > e.cfg.TokenTTL:
			e.met.tokens.WithLabelValues("expired").Inc()
			return
		}
		offer, issued = t.Offer, t.Time
	case ev.Offer != "" && !e.cfg.RequireToken:
		offer = ev.Offer
	default:
		return
	}
	o := snap.offers[offer]
	if o == nil {
		return
	}
	if !issued.IsZero() && issued.Before(o.Created.Truncate(time.Millisecond)) {
		e.met.tokens.WithLabelValues("stale").Inc() // served for an offer deleted since, whose id was reused
		return
	}
	if counts.Stats == nil {
		counts.Stats = map[string]OfferStats{}
	}
	st := counts.Stats[offer]
	switch ev.Type {
	case signals.TypeImpression:
		st.Impressions++
		if o.Cap != nil {
			counts.Caps = append(counts.Caps, CapIncrement{Visitor: ev.Visitor, Offer: offer, Period: time.Duration(o.Cap.Per)})
		}
		e.learn(counts, offer, x, 0)
	case signals.TypeClick:
		st.Clicks++
		e.learn(counts, offer, x, 1)
	case signals.TypeConversion:
		st.Conversions++
	}
	counts.Stats[offer] = st
}

// learn takes one step of the online regression of the offer's own
// factor y on the outcome r (1 click, 0 impression) of visitor factors x:
// y += η·((r − x·y)·x − λ·y). The step is applied locally at once and
// recorded in counts for the store (steps of replicas add up).
func (e *Engine) learn(counts *Counts, offer string, x []float32, r float64) {
	k := e.cfg.Factors
	if k == 0 || len(x) != k || isZero(x) {
		return
	}
	e.statsMu.Lock()
	defer e.statsMu.Unlock()
	y := e.own[offer]
	if y == nil {
		y = make([]float32, k)
		e.own[offer] = y
	}
	g := r - dot(x, y)
	if counts.Factors == nil {
		counts.Factors = map[string][]float32{}
	}
	d := counts.Factors[offer]
	if d == nil {
		d = make([]float32, k)
		counts.Factors[offer] = d
	}
	eta, lambda := float32(e.cfg.LearnRate), float32(e.cfg.Reg)
	for f := range y {
		step := eta * (float32(g)*x[f] - lambda*y[f])
		y[f] += step
		d[f] += step
	}
}

// applyCounts adds the batch's counters to the cached ones.
func (e *Engine) applyCounts(c *Counts) {
	e.statsMu.Lock()
	defer e.statsMu.Unlock()
	for id, d := range c.Stats {
		st := e.stats[id]
		st.Impressions += d.Impressions
		st.Clicks += d.Clicks
		st.Conversions += d.Conversions
		e.stats[id] = st
	}
}

// evaluate runs the rules for one visitor's change and fires the first
// that matches and yields an eligible offer.
func (e *Engine) evaluate(ctx context.Context, snap *snapshot, c *evalCtx, ch *engine.VisitorChange, now time.Time) {
	c.reset(ch)
	c.e, c.x = e, ch.Visitor.Factors
	visitor := ch.Visitor.ID
	for _, r := range snap.compiled {
		if !r.root.eval(c) {
			continue
		}
		e.met.matches.Inc()
		e.rules.matched(r.ID)
		if until, ok := e.cooling(visitor, r.ID, now); ok {
			e.skip(ctx, r, RuleSkip{At: now, Reason: SkipCooldown, Detail: "until " + until.UTC().Format(time.RFC3339)})
			continue
		}
		fired, sk, err := e.fire(ctx, snap, r, ch, now)
		switch {
		case err != nil:
			e.met.errors.WithLabelValues("fire").Inc()
			e.warn(ctx, "promotion not fired", err)
			return
		case sk != nil:
			e.skip(ctx, r, *sk)
			if sk.Reason == SkipHoldout {
				return
			}
		case fired:
			e.rules.fired(r.ID, now)
			return
		}
	}
}

// maxLinkedCooling bounds the linked devices whose cooldowns a user's
// rule checks.
const maxLinkedCooling = 16

// devicesCooling reports whether the cooldown of rule runs at now on a
// device linked to user (started before it signed in), and until when.
func (e *Engine) devicesCooling(ctx context.Context, user string, r *compiledRule, now time.Time) (time.Time, bool, error) {
	if user == "" || e.linked == nil || r.Cooldown <= 0 {
		return time.Time{}, false, nil
	}
	devs, err := e.linked(ctx, user)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("promo: linked devices: %w", err)
	}
	slices.Sort(devs)
	for _, d := range devs[:min(len(devs), maxLinkedCooling)] {
		until, running, err := e.store.RuleCooldown(ctx, d, r.ID, now)
		if err != nil {
			return time.Time{}, false, fmt.Errorf("promo: cooldown: %w", err)
		}
		if running {
			return until, true, nil
		}
	}
	return time.Time{}, false, nil
}

// cooling reports whether the cooldown of rule for visitor runs at now,
// as this replica remembers it, and until when.
func (e *Engine) cooling(visitor, rule string, now time.Time) (time.Time, bool) {
	e.cdMu.Lock()
	defer e.cdMu.Unlock()
	k := cdKey{visitor, rule}
	until, ok := e.cd[k]
	if ok && !now.Before(until) {
		delete(e.cd, k)
		return time.Time{}, false
	}
	return until, ok
}

func (e *Engine) remember(visitor, rule string, until time.Time) {
	e.cdMu.Lock()
	defer e.cdMu.Unlock()
	if len(e.cd) >= e.cfg.CooldownCache {
		clear(e.cd) // the store stays the authority
	}
	e.cd[cdKey{visitor, rule}] = until
}

// fire resolves the rule's offer for the visitor and, if one is
// eligible and the cooldown starts, logs and broadcasts the promotion.
// The cooldown is kept per state key (a known user's devices share it);
// caps, the token and the promotion log belong to the device that sent
// the triggering event (see device).
func (e *Engine) fire(ctx context.Context, snap *snapshot, r *compiledRule, ch *engine.VisitorChange, now time.Time) (bool, *RuleSkip, error) {
	visitor := device(ch)
	user := userOf(ch)
	if e.held != nil && e.held(ctx, visitor, user) {
		return false, &RuleSkip{At: now, Reason: SkipHoldout, Detail: "the visitor is in the personalization holdout"}, nil
	}
	var cs []candidate
	slot := r.Then.Slot
	if r.Then.Offer != "" {
		o := snap.offers[r.Then.Offer]
		if o == nil {
			return false, &RuleSkip{At: now, Reason: SkipNoOffer, Detail: fmt.Sprintf("offer %s does not exist", quote(r.Then.Offer))}, nil
		}
		prio, camp, ok := eligible(o, now, e.Stats(o.ID))
		if !ok {
			return false, &RuleSkip{At: now, Reason: SkipNoOffer, Detail: whyIneligible(o, now, e.Stats(o.ID))}, nil
		}
		cs = []candidate{{o: o, priority: prio, campaign: camp}}
		if slot == "" {
			slot = o.Slot
		}
	} else {
		cs = e.candidates(nil, snap, r.Then.Slot, r.Then.Campaign, now)
	}
	if len(cs) == 0 {
		return false, &RuleSkip{At: now, Reason: SkipNoOffer, Detail: e.notReady(snap, &r.Rule, now)}, nil
	}
	cs, err := e.applyCaps(ctx, visitor, cs, now)
	if err != nil {
		return false, nil, err
	}
	if len(cs) == 0 {
		return false, &RuleSkip{At: now, Reason: SkipCapped, Detail: "every eligible offer reached the visitor's frequency cap"}, nil
	}
	if len(cs) > 1 {
		e.score(cs, ch.Visitor.Factors)
	}
	o := cs[0].o
	if until, cooling, err := e.devicesCooling(ctx, user, r, now); err != nil || cooling {
		if err != nil {
			return false, nil, err
		}
		return false, &RuleSkip{At: now, Reason: SkipCooldown, Detail: "until " + until.UTC().Format(time.RFC3339) + " (started on a device of the user)"}, nil
	}
	ok, until, err := e.store.TryRuleCooldown(ctx, ch.Visitor.ID, r.ID, now, time.Duration(r.Cooldown))
	if err != nil {
		return false, nil, fmt.Errorf("promo: cooldown: %w", err)
	}
	if time.Duration(r.Cooldown) > 0 {
		e.remember(ch.Visitor.ID, r.ID, until)
	}
	if !ok {
		return false, &RuleSkip{At: now, Reason: SkipCooldown, Detail: "until " + until.UTC().Format(time.RFC3339)}, nil
	}
	if e.exps != nil {
		switch off := e.exps.PromotionOffer(ctx, visitor, user, r.ID, o.ID); {
		case off == "":
			return false, &RuleSkip{At: now, Reason: SkipHoldout, Detail: "the visitor is in an experiment's holdout"}, nil
		case off != o.ID && snap.offers[off] != nil:
			o = snap.offers[off]
		}
	}
	p := Promotion{
		Visitor: visitor, Offer: o.View(), Slot: slot, Rule: r.ID, Created: now, Expires: now.Add(e.cfg.PromotionTTL),
		Token: e.signer.Sign(Token{Offer: o.ID, Slot: slot, Visitor: visitor, Time: now, Exposure: rand.Uint64()}),
	}
	p, err = e.store.AppendPromotion(ctx, p, e.cfg.LogKeep, max(2*e.cfg.PromotionTTL, time.Hour))
	if err != nil {
		return false, nil, fmt.Errorf("promo: log promotion: %w", err)
	}
	e.met.promotions.Inc()
	if e.bcast != nil {
		b, _ := json.Marshal(p)
		if err := e.bcast.Broadcast(ctx, signals.TopicPromotions, b); err != nil {
			e.met.errors.WithLabelValues("broadcast").Inc()
			e.warn(ctx, "promotion not broadcast (streams deliver it on their next poll)", err)
		}
	}
	return true, nil, nil
}

// device returns the visitor id a promotion for ch is delivered to: the
// Visitor of its latest fresh event that is not an impression (the one
// that triggered the evaluation), which is the id the page's tracker
// streams promotions for. ch.Visitor.ID is the state key, which for an
// identified visitor is engine.UserKey(user), never a stream's id.
func device(ch *engine.VisitorChange) string {
	for i := len(ch.Fresh) - 1; i >= 0; i-- {
		if ev := &ch.Fresh[i]; ev.Type != signals.TypeImpression && ev.Visitor != "" {
			return ev.Visitor
		}
	}
	return ch.Visitor.ID
}

// Promotions returns up to limit of the visitor's logged promotions after
// Seq after that have not expired at the engine's clock and whose offer
// still exists, oldest first.
func (e *Engine) Promotions(ctx context.Context, visitor string, after uint64, limit int) ([]Promotion, error) {
	ps, err := e.store.Promotions(ctx, visitor, after, limit)
	if err != nil {
		return nil, err
	}
	now := e.cfg.Now()
	offers := e.snap.Load().offers
	out := ps[:0]
	for _, p := range ps {
		if now.Before(p.Expires) && offers[p.Offer.ID] != nil { // a deleted offer is not shown again
			out = append(out, p)
		}
	}
	return out, nil
}

// ForgetVisitor erases the promotion state of the id (caps, cooldowns,
// promotion log) under every key derived from it: the id itself (a
// device's caps and log) and, when it is a user, the engine's state key
// engine.UserKey(id) (the rule cooldowns shared by the user's devices).
func (e *Engine) ForgetVisitor(ctx context.Context, id string) error {
	keys := []string{id, engine.UserKey(id)}
	e.cdMu.Lock()
	for k := range e.cd {
		if slices.Contains(keys, k.visitor) {
			delete(e.cd, k)
		}
	}
	e.cdMu.Unlock()
	for _, k := range keys {
		if err := e.store.ForgetPromoVisitor(ctx, k); err != nil {
			return err
		}
	}
	return nil
}

// userOf returns the known user of a change's state ("" for an
// anonymous visitor).
func userOf(ch *engine.VisitorChange) string {
	user, ok := strings.CutPrefix(ch.Visitor.ID, engine.UserKey(""))
	if !ok {
		return ""
	}
	return user
}
