package experiments

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"

	"github.com/kairoshq/kairos/internal/errs"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/internal/jsondef"
)

// PutJSON validates and stores an experiment from its JSON (pathID: the
// id of the path, "" for POST) and returns it as stored and whether it
// was created. Errors: engine.ErrInvalid naming the JSON path (Decode);
// ErrConflict when another experiment targets the same surface (and slot
// or rule) during an overlapping time, or when the experiment has
// started and the body changes its salt, target, attribution window or
// variants (other than their weights).
func (e *Engine) PutJSON(ctx context.Context, pathID string, body []byte) (Experiment, bool, error) {
	x, err := Decode(body, pathID)
	if err != nil {
		return Experiment{}, false, err
	}
	if err := e.checkReferents(&x); err != nil {
		return Experiment{}, false, err
	}
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	now := e.cfg.Now().UTC()
	snap := e.snap.Load()
	old := snap.byID[x.ID]
	x.Created, x.Updated = now, now
	if old != nil {
		if err := checkUpdate(old, &x, now); err != nil {
			return Experiment{}, false, err
		}
		x.Created = old.Created
	}
	for _, y := range snap.all {
		if y.ID != x.ID && overlaps(&x, y) {
			return Experiment{}, false, errs.New(ErrConflict, "target: experiment %s targets the same %s during an overlapping time (stop it first, or set start after its stop)",
				jsondef.Quote(y.ID), describeTarget(x.Target))
		}
	}
	doc, err := json.Marshal(x)
	if err != nil {
		return Experiment{}, false, fmt.Errorf("experiments: encode: %w", err)
	}
	if err := e.store.PutExperimentDoc(ctx, x.ID, doc); err != nil {
		return Experiment{}, false, fmt.Errorf("experiments: store %s: %w", jsondef.Quote(x.ID), err)
	}
	xs := maps.Clone(snap.byID)
	xs[x.ID] = &x
	v, err := e.store.ExperimentDocsVersion(ctx)
	if err != nil {
		v = -1 // reload at the next tick
	}
	e.snap.Store(newSnapshot(v, xs))
	return x, old == nil, nil
}

// SetDefinitions makes PutJSON check that the offers and campaigns the
// variants name exist (the promo engine is created after this engine,
// which it uses, so it is handed over here). Call it before serving.
func (e *Engine) SetDefinitions(d Definitions) { e.defs.Store(&d) }

// checkReferents returns an error naming the first variant whose offer
// or campaign does not exist (nothing is checked before SetDefinitions).
func (e *Engine) checkReferents(x *Experiment) error {
	dp := e.defs.Load()
	if dp == nil {
		return nil
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

// Naming returns where the experiments name the offer (kind "offers") or
// campaign (kind "campaigns") id, as JSON paths such as
// experiments[hero].variants[1].offer, in id order; deleting what an
// experiment names is refused.
func (e *Engine) Naming(kind, id string) []string {
	var out []string
	for _, x := range e.snap.Load().all {
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
