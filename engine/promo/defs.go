package promo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/internal/jsondef"

	"github.com/kairoshq/kairos/internal/errs"
)

// ErrInUse is returned when deleting an offer or campaign that a rule or
// campaign still names; the message says which.
var ErrInUse = fmt.Errorf("promo: in use: %w", errs.Conflict)

// OfferDetail is an offer with its counters (GET /v1/offers/{id}).
type OfferDetail struct {
	Offer
	Stats OfferStats `json:"stats"`
}

// PutOffer validates o and stores it (creating or replacing), with
// Created kept on replace and Updated set now; created tells which.
func (e *Engine) PutOffer(ctx context.Context, o Offer) (Offer, bool, error) {
	b, err := json.Marshal(o)
	if err != nil {
		return Offer{}, false, fmt.Errorf("%w: %v", engine.ErrInvalid, err)
	}
	v, err := DecodeOffer(b, "")
	if err != nil {
		return Offer{}, false, err
	}
	v.Active = o.Active
	return e.putOffer(ctx, v)
}

func (e *Engine) putOffer(ctx context.Context, o Offer) (Offer, bool, error) {
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	snap := e.snap.Load()
	created, err := e.putDoc(ctx, KindOffer, o.ID, &o, &o.Created, &o.Updated)
	if err != nil {
		return Offer{}, false, err
	}
	n := snap.clone()
	n.offers[o.ID] = &offerInfo{Offer: o}
	e.install(n)
	e.updateCentroid(&o, false)
	return o, created, nil
}

// PutCampaign validates c (its offers must exist) and stores it.
func (e *Engine) PutCampaign(ctx context.Context, c Campaign) (Campaign, bool, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return Campaign{}, false, fmt.Errorf("%w: %v", engine.ErrInvalid, err)
	}
	v, err := DecodeCampaign(b, "")
	if err != nil {
		return Campaign{}, false, err
	}
	v.Active = c.Active
	return e.putCampaign(ctx, v)
}

func (e *Engine) putCampaign(ctx context.Context, c Campaign) (Campaign, bool, error) {
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	snap := e.snap.Load()
	for i, id := range c.Offers {
		if snap.offers[id] == nil {
			return Campaign{}, false, jsondef.Errorf(fmt.Sprintf("campaigns[%s].offers[%d]", c.ID, i), "offer %s does not exist", quote(id))
		}
	}
	created, err := e.putDoc(ctx, KindCampaign, c.ID, &c, &c.Created, &c.Updated)
	if err != nil {
		return Campaign{}, false, err
	}
	n := snap.clone()
	n.campaigns[c.ID] = &c
	e.install(n)
	return c, created, nil
}

// PutRule validates r (the offers and campaign it names must exist) and
// stores it.
func (e *Engine) PutRule(ctx context.Context, r Rule) (Rule, bool, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return Rule{}, false, fmt.Errorf("%w: %v", engine.ErrInvalid, err)
	}
	v, err := DecodeRule(b, "")
	if err != nil {
		return Rule{}, false, err
	}
	v.Active = r.Active
	return e.putRule(ctx, v)
}

func (e *Engine) putRule(ctx context.Context, r Rule) (Rule, bool, error) {
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	snap := e.snap.Load()
	p := "rules[" + r.ID + "]"
	if id := r.Then.Offer; id != "" && snap.offers[id] == nil {
		return Rule{}, false, jsondef.Errorf(p+".then.offer", "offer %s does not exist", quote(id))
	}
	if id := r.Then.Campaign; id != "" && snap.campaigns[id] == nil {
		return Rule{}, false, jsondef.Errorf(p+".then.campaign", "campaign %s does not exist", quote(id))
	}
	var err error
	walkCond(p+".when", &r.When, func(path string, c *Cond) {
		if c.Affinity != nil && err == nil && snap.offers[c.Affinity.Offer] == nil {
			err = jsondef.Errorf(path+".affinity.offer", "offer %s does not exist", quote(c.Affinity.Offer))
		}
	})
	if err != nil {
		return Rule{}, false, err
	}
	created, err := e.putDoc(ctx, KindRule, r.ID, &r, &r.Created, &r.Updated)
	if err != nil {
		return Rule{}, false, err
	}
	n := snap.clone()
	n.rules[r.ID] = &r
	e.install(n)
	return r, created, nil
}

// walkCond calls fn for every condition of the tree, with its path.
func walkCond(path string, c *Cond, fn func(path string, c *Cond)) {
	fn(path, c)
	for i := range c.All {
		walkCond(jsondef.Index(path+".all", i), &c.All[i], fn)
	}
	for i := range c.Any {
		walkCond(jsondef.Index(path+".any", i), &c.Any[i], fn)
	}
	if c.Not != nil {
		walkCond(path+".not", c.Not, fn)
	}
}

// putDoc creates or replaces the definition id of kind with v (a pointer
// to the definition, whose stamps created and updated point into),
// atomically (defstore.Collection.Upsert): Updated is now, Created is
// the stored definition's when there is one, else now. It reports
// whether the definition was created.
func (e *Engine) putDoc(ctx context.Context, kind Kind, id string, v any, created, updated *time.Time) (bool, error) {
	isNew, err := e.defs.Collection(kind).Upsert(ctx, id, func(old []byte) (any, error) {
		now := e.cfg.Now().UTC()
		*created, *updated = now, now
		if old != nil {
			var ts stamps
			if err := json.Unmarshal(old, &ts); err != nil {
				return nil, fmt.Errorf("promo: stored %s %s: %w: %w", kind, id, errs.Internal, err)
			}
			if !ts.Created.IsZero() {
				*created = ts.Created
			}
		}
		return v, nil
	})
	if err != nil {
		return false, fmt.Errorf("promo: store %s %s: %w", kind, id, err)
	}
	return isNew, nil
}

// install indexes and publishes a new snapshot; e.writeMu is held.
func (e *Engine) install(s *snapshot) {
	s.index()
	e.snap.Store(s)
}

func (e *Engine) kickRefresh() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

// HasOffer reports whether the offer id is defined.
func (e *Engine) HasOffer(id string) bool { return e.snap.Load().offers[id] != nil }

// HasCampaign reports whether the campaign id is defined.
func (e *Engine) HasCampaign(id string) bool { return e.snap.Load().campaigns[id] != nil }

// WhileUnchanged runs fn while no offer, campaign or rule is written or
// deleted on this replica: an experiment checks that what it names
// exists and is stored inside it, so that a concurrent delete either
// comes first (the check fails) or sees the experiment (409).
func (e *Engine) WhileUnchanged(fn func() error) error {
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	return fn()
}

// HasRule reports whether the rule id is defined.
func (e *Engine) HasRule(id string) bool { return e.snap.Load().rules[id] != nil }

// experimentUsers returns where experiments name the definition.
func (e *Engine) experimentUsers(kind Kind, id string) []string {
	if e.exps == nil {
		return nil
	}
	return e.exps.Naming(string(kind), id)
}

// Delete removes a definition. Deleting an offer that a campaign, rule or
// experiment names, a campaign that a rule or experiment names, or a rule
// that an experiment targets, is ErrInUse; an unknown id is engine.ErrNotFound.
func (e *Engine) Delete(ctx context.Context, kind Kind, id string) error {
	if !kind.Valid() {
		return fmt.Errorf("%w: kind %q", engine.ErrInvalid, kind)
	}
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	snap := e.snap.Load()
	n := snap.clone()
	switch kind {
	case KindOffer:
		if snap.offers[id] == nil {
			return errs.New(engine.ErrNotFound, "offer %s not found", quote(id))
		}
		if users := append(snap.offerUsers(id), e.experimentUsers(KindOffer, id)...); len(users) > 0 {
			return errs.New(ErrInUse, "offer %s is named by %s; change or delete them first", quote(id), strings.Join(users, ", "))
		}
		delete(n.offers, id)
	case KindCampaign:
		if snap.campaigns[id] == nil {
			return errs.New(engine.ErrNotFound, "campaign %s not found", quote(id))
		}
		users := e.experimentUsers(KindCampaign, id)
		for _, rid := range sortedKeys(snap.rules) {
			if snap.rules[rid].Then.Campaign == id {
				users = append(users, "rules["+rid+"].then.campaign")
			}
		}
		if len(users) > 0 {
			return errs.New(ErrInUse, "campaign %s is named by %s; change or delete them first", quote(id), strings.Join(users, ", "))
		}
		delete(n.campaigns, id)
	case KindRule:
		if snap.rules[id] == nil {
			return errs.New(engine.ErrNotFound, "rule %s not found", quote(id))
		}
		if users := e.experimentUsers(KindRule, id); len(users) > 0 {
			return errs.New(ErrInUse, "rule %s is named by %s; change or delete them first", quote(id), strings.Join(users, ", "))
		}
		delete(n.rules, id)
	}
	if err := e.defs.Collection(kind).Delete(ctx, id); err != nil && !errors.Is(err, engine.ErrNotFound) {
		return fmt.Errorf("promo: delete %s %s: %w", kind, id, err)
	}
	e.install(n)
	if kind == KindOffer {
		e.forgetCounts(ctx, id)
		e.updateCentroid(&snap.offers[id].Offer, true)
	}
	return nil
}

// offerUsers lists the campaigns and rules that name an offer.
func (s *snapshot) offerUsers(id string) []string {
	var users []string
	for _, cid := range sortedKeys(s.campaigns) {
		for i, oid := range s.campaigns[cid].Offers {
			if oid == id {
				users = append(users, fmt.Sprintf("campaigns[%s].offers[%d]", cid, i))
			}
		}
	}
	for _, rid := range sortedKeys(s.rules) {
		r := s.rules[rid]
		if r.Then.Offer == id {
			users = append(users, "rules["+rid+"].then.offer")
		}
		walkCond("rules["+rid+"].when", &r.When, func(path string, c *Cond) {
			if c.Affinity != nil && c.Affinity.Offer == id {
				users = append(users, path+".affinity.offer")
			}
		})
	}
	return users
}

// PutJSON decodes a definition of kind from its JSON body (pathID: the id
// of the request path, "" when none), validates and stores it, and
// returns it as stored (Offer, Campaign or Rule) and whether it was
// created. Invalid bodies are *ValidationError naming the member.
func (e *Engine) PutJSON(ctx context.Context, kind Kind, pathID string, body []byte) (any, bool, error) {
	switch kind {
	case KindOffer:
		o, err := DecodeOffer(body, pathID)
		if err != nil {
			return nil, false, err
		}
		return e.putOffer(ctx, o)
	case KindCampaign:
		c, err := DecodeCampaign(body, pathID)
		if err != nil {
			return nil, false, err
		}
		return e.putCampaign(ctx, c)
	case KindRule:
		r, err := DecodeRule(body, pathID)
		if err != nil {
			return nil, false, err
		}
		stored, created, err := e.putRule(ctx, r)
		if err != nil {
			return nil, false, err
		}
		return e.ruleDetail(e.snap.Load(), &stored, e.cfg.Now()), created, nil
	}
	return nil, false, fmt.Errorf("%w: kind %q", engine.ErrInvalid, kind)
}

// Get returns a definition: an OfferDetail (the offer with its counters),
// a Campaign or a Rule; engine.ErrNotFound when there is none.
func (e *Engine) Get(kind Kind, id string) (any, error) {
	snap := e.snap.Load()
	switch kind {
	case KindOffer:
		if o := snap.offers[id]; o != nil {
			return OfferDetail{Offer: o.Offer, Stats: e.Stats(id)}, nil
		}
	case KindCampaign:
		if c := snap.campaigns[id]; c != nil {
			return *c, nil
		}
	case KindRule:
		if r := snap.rules[id]; r != nil {
			return e.ruleDetail(snap, r, e.cfg.Now()), nil
		}
	default:
		return nil, fmt.Errorf("%w: kind %q", engine.ErrInvalid, kind)
	}
	return nil, errs.New(engine.ErrNotFound, "%s %s not found", strings.TrimSuffix(string(kind), "s"), quote(id))
}

// List returns every definition of kind in ascending id order (as Get
// returns them).
func (e *Engine) List(kind Kind) ([]any, error) {
	snap := e.snap.Load()
	var out []any
	switch kind {
	case KindOffer:
		out = make([]any, 0, len(snap.all))
		for _, o := range snap.all {
			out = append(out, OfferDetail{Offer: o.Offer, Stats: e.Stats(o.ID)})
		}
	case KindCampaign:
		for _, id := range sortedKeys(snap.campaigns) {
			out = append(out, *snap.campaigns[id])
		}
	case KindRule:
		now := e.cfg.Now()
		for _, id := range sortedKeys(snap.rules) {
			out = append(out, e.ruleDetail(snap, snap.rules[id], now))
		}
	default:
		return nil, fmt.Errorf("%w: kind %q", engine.ErrInvalid, kind)
	}
	if out == nil {
		out = []any{}
	}
	return out, nil
}

// forgetCounts drops a deleted offer's counters and own factors, here and
// in the store (other replicas drop them at their next reload), so that
// an offer created again with its id starts anew. A store failure is
// logged: the deletion stands.
func (e *Engine) forgetCounts(ctx context.Context, id string) {
	e.statsMu.Lock()
	delete(e.stats, id)
	delete(e.own, id)
	e.statsMu.Unlock()
	if err := e.store.ForgetOfferCounts(ctx, id, e.cfg.Factors); err != nil {
		e.met.errors.WithLabelValues("counts").Inc()
		e.warn(ctx, "a deleted offer's counters not removed", err)
	}
}
