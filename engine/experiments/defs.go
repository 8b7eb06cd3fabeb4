package experiments

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"

	"github.com/kairoshq/kairos/internal/errs"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/internal/jsondef"
)

// PutJSON validates and stores an experiment from its JSON (pathID: the
// id of the path, "" for POST) and returns it as stored and whether it
// was created. A POST creates (atomically in the store: ErrConflict when
// the id exists, also when another replica created it); a PUT creates or
// replaces, checked against the definition as stored. Errors:
// engine.ErrInvalid naming the JSON path (Decode); ErrConflict when
// another experiment targets the same surface (and slot or rule) during
// an overlapping time (checked against this replica's snapshot), or when
// the experiment has started and the body changes its salt, target,
// attribution window or variants (other than their weights).
func (e *Engine) PutJSON(ctx context.Context, pathID string, body []byte) (Experiment, bool, error) {
	x, err := Decode(body, pathID)
	if err != nil {
		return Experiment{}, false, err
	}
	var created bool
	err = e.whileDefinitionsUnchanged(func() error {
		if err := e.checkReferents(&x); err != nil {
			return err
		}
		var err error
		x, created, err = e.put(ctx, pathID, x)
		return err
	})
	return x, created, err
}

// whileDefinitionsUnchanged runs fn under Definitions.WhileUnchanged (fn
// alone before SetDefinitions).
func (e *Engine) whileDefinitionsUnchanged(fn func() error) error {
	if dp := e.defs.Load(); dp != nil {
		return (*dp).WhileUnchanged(fn)
	}
	return fn()
}

// put stores the decoded and checked experiment x (see PutJSON).
func (e *Engine) put(ctx context.Context, pathID string, x Experiment) (Experiment, bool, error) {
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	now := e.cfg.Now().UTC()
	snap := e.snap.Load()
	x.Created, x.Updated = now, now
	for _, y := range snap.all {
		if y.ID != x.ID && overlaps(&x, y) {
			return Experiment{}, false, errs.New(ErrConflict, "target: experiment %s targets the same %s during an overlapping time (stop it first, or set start after its stop)",
				jsondef.Quote(y.ID), describeTarget(x.Target))
		}
	}
	created := true
	var err error
	if pathID == "" {
		err = e.create(ctx, &x)
	} else {
		created, err = e.store.UpsertExperimentDoc(ctx, x.ID, func(old []byte) ([]byte, error) {
			y := x
			if old != nil {
				// A stored definition that no longer decodes is replaced
				// without checks (the reload skips it).
				if ox, err := decodeStored(old); err == nil {
					if err := checkUpdate(&ox, &y, now); err != nil {
						return nil, err
					}
					y.Created = ox.Created
				}
			}
			x = y
			return e.encode(&y)
		})
	}
	if err != nil {
		return Experiment{}, false, err
	}
	xs := maps.Clone(snap.byID)
	xs[x.ID] = &x
	v, err := e.store.ExperimentDocsVersion(ctx)
	if err != nil {
		v = -1 // reload at the next tick
	}
	e.snap.Store(newSnapshot(v, xs))
	return x, created, nil
}

// create stores x unless its id exists (ErrConflict).
func (e *Engine) create(ctx context.Context, x *Experiment) error {
	doc, err := e.encode(x)
	if err != nil {
		return err
	}
	err = e.store.CreateExperimentDoc(ctx, x.ID, doc)
	switch {
	case errors.Is(err, errs.Conflict):
		return errs.New(ErrConflict, "experiment %s already exists: use PUT /v1/experiments/{id} to change it", jsondef.Quote(x.ID))
	case err != nil:
		return fmt.Errorf("experiments: store %s: %w", jsondef.Quote(x.ID), err)
	}
	return nil
}

func (e *Engine) encode(x *Experiment) ([]byte, error) {
	doc, err := json.Marshal(x)
	if err != nil {
		return nil, fmt.Errorf("experiments: encode: %w", err)
	}
	return doc, nil
}

// SetDefinitions makes PutJSON check that the offers and campaigns the
// variants name, and the rule a promotions experiment targets, exist
// (the promo engine is created after this engine,
// which it uses, so it is handed over here). Call it before serving.
func (e *Engine) SetDefinitions(d Definitions) { e.defs.Store(&d) }

// checkReferents returns an error naming the first variant whose offer
// or campaign does not exist (nothing is checked before SetDefinitions).
func (e *Engine) checkReferents(x *Experiment) error {
	dp := e.defs.Load()
	if dp == nil {
		return nil
	}
	if x.Target.Surface == SurfacePromotions && !(*dp).HasRule(x.Target.Rule) {
		return jsondef.Errorf("target.rule", "rule %s does not exist", jsondef.Quote(x.Target.Rule))
	}
	for i, v := range x.Variants {
		path := jsondef.Index("variants", i)
		if v.Offer != "" && !(*dp).HasOffer(v.Offer) {
			return jsondef.Errorf(path+".offer", "offer %s does not exist", jsondef.Quote(v.Offer))
		}
		if v.Campaign != "" && !(*dp).HasCampaign(v.Campaign) {
			return jsondef.Errorf(path+".campaign", "campaign %s does not exist", jsondef.Quote(v.Campaign))
		}
	}
	return nil
}

// Naming returns where the experiments name the offer (kind "offers"),
// campaign (kind "campaigns") or rule (kind "rules") id, as JSON paths such as
// experiments[hero].variants[1].offer, in id order; deleting what an
// experiment names is refused.
func (e *Engine) Naming(kind, id string) []string {
	var out []string
	for _, x := range e.snap.Load().all {
		if kind == "rules" && x.Target.Surface == SurfacePromotions && x.Target.Rule == id {
			out = append(out, "experiments["+x.ID+"].target.rule")
		}
		for i, v := range x.Variants {
			path := "experiments[" + x.ID + "]." + jsondef.Index("variants", i)
			switch {
			case kind == "offers" && v.Offer == id:
				out = append(out, path+".offer")
			case kind == "campaigns" && v.Campaign == id:
				out = append(out, path+".campaign")
			}
		}
	}
	return out
}

func describeTarget(t Target) string {
	switch t.Surface {
	case SurfaceOffers:
		return "offer slot " + jsondef.Quote(t.Slot)
	case SurfacePromotions:
		return "rule " + jsondef.Quote(t.Rule)
	}
	return "recommendations"
}

// Get returns one experiment or an error wrapping engine.ErrNotFound.
func (e *Engine) Get(id string) (Experiment, error) {
	if x := e.snap.Load().byID[id]; x != nil {
		return *x, nil
	}
	return Experiment{}, errs.New(engine.ErrNotFound, "experiment %s not found", jsondef.Quote(id))
}

// List returns every experiment in ascending id order.
func (e *Engine) List() []Experiment {
	snap := e.snap.Load()
	out := make([]Experiment, len(snap.all))
	for i, x := range snap.all {
		out[i] = *x
	}
	return out
}

// Delete removes an experiment and everything kept for it (assignments,
// units, counts, weights, looks), or returns engine.ErrNotFound.
func (e *Engine) Delete(ctx context.Context, id string) error {
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	if err := e.store.DeleteExperiment(ctx, id); err != nil {
		return err
	}
	snap := e.snap.Load()
	xs := maps.Clone(snap.byID)
	delete(xs, id)
	v, err := e.store.ExperimentDocsVersion(ctx)
	if err != nil {
		v = -1
	}
	e.snap.Store(newSnapshot(v, xs))
	e.lookMu.Lock()
	delete(e.looked, id)
	e.lookMu.Unlock()
	return nil
}
