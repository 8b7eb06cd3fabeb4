package experiments

import (
	"encoding/json"
	"slices"
	"strconv"
	"time"

	"github.com/kairoshq/kairos/internal/errs"

	"github.com/kairoshq/kairos/internal/jsondef"
)

// Limits of definitions.
const (
	maxDocBytes     = 64 << 10
	maxIDBytes      = 64
	maxNameBytes    = 200
	maxVariantBytes = 32
	maxRefBytes     = 100 // offer, campaign, rule ids and slots (engine/promo's limit)
	maxVariants     = 10
	maxGuardrails   = 5
	maxBlendBelow   = 1000
	minWindow       = time.Minute
	maxWindow       = 90 * 24 * time.Hour
	minBanditEvery  = time.Second
	maxBanditEvery  = 30 * 24 * time.Hour
)

// Defaults of an experiment's optional members.
const (
	DefaultWindow      = 24 * time.Hour
	DefaultBanditEvery = 15 * time.Minute
	DefaultFloor       = 0.01
	DefaultAlpha       = 0.05
	DefaultTuning      = 5000
)

// ValidationError is a definition that does not validate: Path names the
// member in JSON path notation ("variants[1].weight"). It wraps
// engine.ErrInvalid.
type ValidationError = jsondef.Error

// Duration is a time.Duration written in JSON as a string: Go syntax
// ("90s", "10m", "1h30m") or whole days ("7d").
type Duration = jsondef.Duration

// Decode parses and validates an experiment's JSON. pathID, when not
// empty, is the id of the URL (PUT /v1/experiments/{id}): a body id must
// match it, and a body without id takes it. Every error wraps
// engine.ErrInvalid and names the JSON path of the first problem:
//
//	variants[1].offer: only offers and promotions experiments serve offers
//
// Created and Updated in the body are ignored (the engine sets them).
// Defaults are applied (salt = id, mode fixed, metric conversion, window
// 24h, bandit_every 15m, floor 0.01, alpha 0.05, tuning 5000, weight 1).
func Decode(b []byte, pathID string) (Experiment, error) {
	var x Experiment
	if len(b) > maxDocBytes {
		return x, jsondef.Errorf("", "experiment of %d bytes, at most %d", len(b), maxDocBytes)
	}
	o, err := jsondef.NewObject("", b)
	if err != nil {
		return x, err
	}
	if x.ID, err = o.ID("id", pathID == "", maxIDBytes, false); err != nil {
		return x, err
	}
	switch {
	case x.ID == "":
		x.ID = pathID
	case pathID != "" && x.ID != pathID:
		return x, jsondef.Errorf("id", "%s does not match the id %s of the path", jsondef.Quote(x.ID), jsondef.Quote(pathID))
	}
	if pathID != "" {
		if err := jsondef.CheckID("id", x.ID, maxIDBytes, false); err != nil {
			return x, err
		}
	}
	if x.Name, err = o.Str("name", false, maxNameBytes); err != nil {
		return x, err
	}
	if x.Salt, err = o.Str("salt", false, maxNameBytes); err != nil {
		return x, err
	}
	if x.Salt == "" {
		x.Salt = x.ID
	}
	if err := decodeTarget(o, &x.Target); err != nil {
		return x, err
	}
	mode, err := o.Str("mode", false, 20)
	if err != nil {
		return x, err
	}
	switch Mode(mode) {
	case "", ModeFixed:
		x.Mode = ModeFixed
	case ModeBandit:
		x.Mode = ModeBandit
	default:
		return x, jsondef.Errorf("mode", "%s is not fixed or bandit", jsondef.Quote(mode))
	}
	if err := decodeVariants(o, &x); err != nil {
		return x, err
	}
	if x.Start, err = o.Time("start"); err != nil {
		return x, err
	}
	if x.Stop, err = o.Time("stop"); err != nil {
		return x, err
	}
	if x.Start != nil && x.Stop != nil && !x.Stop.After(*x.Start) {
		return x, jsondef.Errorf("stop", "%s is not after start %s", x.Stop.Format(time.RFC3339), x.Start.Format(time.RFC3339))
	}
	if x.Metric, err = metric(o, "metric", MetricConversion); err != nil {
		return x, err
	}
	if err := decodeGuardrails(o, &x); err != nil {
		return x, err
	}
	if x.AttributionWindow, err = o.Duration("attribution_window", DefaultWindow, minWindow, maxWindow); err != nil {
		return x, err
	}
	if x.BanditEvery, err = o.Duration("bandit_every", DefaultBanditEvery, minBanditEvery, maxBanditEvery); err != nil {
		return x, err
	}
	floor, ok, err := o.Num("floor")
	if err != nil {
		return x, err
	}
	x.Floor = DefaultFloor
	if ok {
		if floor < 0 || floor*float64(len(x.Variants)) >= 1 {
			return x, jsondef.Errorf("floor", "%s is not in [0, 1/%d)", fmtFloat(floor), len(x.Variants))
		}
		x.Floor = floor
	}
	alpha, ok, err := o.Num("alpha")
	if err != nil {
		return x, err
	}
	x.Alpha = DefaultAlpha
	if ok {
		if alpha <= 0 || alpha > 0.5 {
			return x, jsondef.Errorf("alpha", "%s is not in (0, 0.5]", fmtFloat(alpha))
		}
		x.Alpha = alpha
	}
	tuning, ok, err := o.Num("tuning")
	if err != nil {
		return x, err
	}
	x.Tuning = DefaultTuning
	if ok {
		if tuning < 1 || tuning > 1e12 {
			return x, jsondef.Errorf("tuning", "%s is not in [1, 1e12]", fmtFloat(tuning))
		}
		x.Tuning = tuning
	}
	o.Ignore("created", "updated")
	return x, o.Done("id, name, salt, target, mode, variants, start, stop, metric, guardrails, attribution_window, bandit_every, floor, alpha, tuning")
}

func decodeTarget(o *jsondef.Object, t *Target) error {
	raw, ok := o.Get("target")
	if !ok {
		return jsondef.Errorf("target", "missing")
	}
	to, err := jsondef.NewObject("target", raw)
	if err != nil {
		return err
	}
	s, err := to.Str("surface", true, 20)
	if err != nil {
		return err
	}
	t.Surface = Surface(s)
	switch t.Surface {
	case SurfaceOffers:
		if t.Slot, err = to.ID("slot", true, maxRefBytes, true); err != nil {
			return err
		}
	case SurfacePromotions:
		if t.Rule, err = to.ID("rule", true, maxRefBytes, true); err != nil {
			return err
		}
	case SurfaceRecommendations:
	default:
		return jsondef.Errorf("target.surface", "%s is not offers, recommendations or promotions", jsondef.Quote(s))
	}
	switch t.Surface {
	case SurfaceOffers:
		return to.Done("surface, slot")
	case SurfacePromotions:
		return to.Done("surface, rule")
	}
	return to.Done("surface")
}

func decodeVariants(o *jsondef.Object, x *Experiment) error {
	raw, ok := o.Get("variants")
	if !ok {
		return jsondef.Errorf("variants", "missing")
	}
	items, err := jsondef.Array("variants", raw)
	if err != nil {
		return err
	}
	if len(items) < 2 || len(items) > maxVariants {
		return jsondef.Errorf("variants", "%d variants, want 2 to %d (the first is the control)", len(items), maxVariants)
	}
	for i, r := range items {
		p := jsondef.Index("variants", i)
		vo, err := jsondef.NewObject(p, r)
		if err != nil {
			return err
		}
		var v Variant
		if v.Name, err = vo.ID("name", true, maxVariantBytes, false); err != nil {
			return err
		}
		if slices.ContainsFunc(x.Variants, func(w Variant) bool { return w.Name == v.Name }) {
			return jsondef.Errorf(jsondef.Join(p, "name"), "%s is used by another variant", jsondef.Quote(v.Name))
		}
		w, hasW, err := vo.Num("weight")
		if err != nil {
			return err
		}
		if hasW && (w < 0 || w > 1e6) {
			return jsondef.Errorf(jsondef.Join(p, "weight"), "%s is not in [0, 1e6]", fmtFloat(w))
		}
		v.Weight = 1
		if hasW {
			v.Weight = w
		}
		if v.Offer, err = vo.ID("offer", false, maxRefBytes, true); err != nil {
			return err
		}
		if v.Campaign, err = vo.ID("campaign", false, maxRefBytes, true); err != nil {
			return err
		}
		if v.Holdout, err = vo.Bool("holdout", false); err != nil {
			return err
		}
		if pr, ok := vo.Get("params"); ok {
			if v.Params, err = decodeParams(jsondef.Join(p, "params"), pr); err != nil {
				return err
			}
		}
		if err := vo.Done("name, weight, offer, campaign, params, holdout"); err != nil {
			return err
		}
		if err := checkVariant(p, x.Target.Surface, &v); err != nil {
			return err
		}
		x.Variants = append(x.Variants, v)
	}
	var sum float64
	for _, v := range x.Variants {
		sum += v.Weight
	}
	if sum <= 0 {
		return jsondef.Errorf("variants", "every weight is 0: give at least one arm traffic")
	}
	return nil
}

// checkVariant checks that the variant's content fits the surface.
func checkVariant(p string, s Surface, v *Variant) error {
	set := 0
	for _, b := range []bool{v.Offer != "", v.Campaign != "", v.Holdout, v.Params != nil} {
		if b {
			set++
		}
	}
	if set > 1 {
		return jsondef.Errorf(p, "at most one of offer, campaign, params and holdout")
	}
	switch {
	case v.Offer != "" && s == SurfaceRecommendations:
		return jsondef.Errorf(jsondef.Join(p, "offer"), "only offers and promotions experiments serve offers")
	case v.Campaign != "" && s != SurfaceOffers:
		return jsondef.Errorf(jsondef.Join(p, "campaign"), "only offers experiments serve campaigns")
	case v.Holdout && s == SurfaceRecommendations:
		return jsondef.Errorf(jsondef.Join(p, "holdout"), "a recommendations experiment cannot hold out (use params)")
	case v.Params != nil && s != SurfaceRecommendations:
		return jsondef.Errorf(jsondef.Join(p, "params"), "only recommendations experiments take params")
	}
	return nil
}

func decodeParams(p string, raw json.RawMessage) (*RecParams, error) {
	po, err := jsondef.NewObject(p, raw)
	if err != nil {
		return nil, err
	}
	var rp RecParams
	if rp.Strategy, err = po.Str("strategy", false, 20); err != nil {
		return nil, err
	}
	if rp.Strategy != "" && rp.Strategy != "trending" {
		return nil, jsondef.Errorf(jsondef.Join(p, "strategy"), "%s is not trending (or absent: the engine's choice)", jsondef.Quote(rp.Strategy))
	}
	bb, ok, err := po.IntIn("blend_below", 1, maxBlendBelow)
	if err != nil {
		return nil, err
	}
	if ok {
		rp.BlendBelow = int(bb)
	}
	if _, ok := po.Get("exclude_seen"); ok {
		b, err := po.Bool("exclude_seen", false)
		if err != nil {
			return nil, err
		}
		rp.ExcludeSeen = &b
	}
	return &rp, po.Done("strategy, blend_below, exclude_seen")
}

func decodeGuardrails(o *jsondef.Object, x *Experiment) error {
	raw, ok := o.Get("guardrails")
	if !ok {
		return nil
	}
	items, err := jsondef.Array("guardrails", raw)
	if err != nil {
		return err
	}
	if len(items) > maxGuardrails {
		return jsondef.Errorf("guardrails", "%d guardrails, at most %d", len(items), maxGuardrails)
	}
	for i, r := range items {
		p := jsondef.Index("guardrails", i)
		g, err := jsondef.NewObject(p, r)
		if err != nil {
			return err
		}
		var gr Guardrail
		if gr.Metric, err = metric(g, "metric", ""); err != nil {
			return err
		}
		if gr.Metric == "" {
			return jsondef.Errorf(jsondef.Join(p, "metric"), "missing")
		}
		d, ok, err := g.Num("max_drop")
		if err != nil {
			return err
		}
		if ok && (d < 0 || d > 1) {
			return jsondef.Errorf(jsondef.Join(p, "max_drop"), "%s is not in [0, 1]", fmtFloat(d))
		}
		gr.MaxDrop = d
		if err := g.Done("metric, max_drop"); err != nil {
			return err
		}
		x.Guardrails = append(x.Guardrails, gr)
	}
	return nil
}

// checkUpdate reports what a new definition may not change in a started
// experiment: the salt, target, attribution window and the variants
// except their weights. It wraps ErrConflict.
func checkUpdate(old, x *Experiment, now time.Time) error {
	if old.StatusAt(now) == StatusScheduled {
		return nil
	}
	fail := func(path, what string) error {
		return errs.New(ErrConflict, "%s: the experiment has started: its %s cannot change (create a new experiment)", path, what)
	}
	switch {
	case old.Salt != x.Salt:
		return fail("salt", "salt")
	case old.Target != x.Target:
		return fail("target", "target")
	case old.AttributionWindow != x.AttributionWindow:
		return fail("attribution_window", "attribution window")
	case !sameInstant(old.Start, x.Start):
		return fail("start", "start")
	case old.Stop != nil && !now.Before(*old.Stop) && !sameInstant(old.Stop, x.Stop):
		return errs.New(ErrConflict, "stop: the experiment has stopped: its stop cannot change (create a new experiment)")
	case len(old.Variants) != len(x.Variants):
		return fail("variants", "variants (other than their weights)")
	}
	for i := range old.Variants {
		a, b := old.Variants[i], x.Variants[i]
		a.Weight, b.Weight = 0, 0
		if a.Name != b.Name || a.Offer != b.Offer || a.Campaign != b.Campaign || a.Holdout != b.Holdout || !sameParams(a.Params, b.Params) {
			return fail(jsondef.Index("variants", i), "variants (other than their weights)")
		}
	}
	return nil
}

// sameInstant reports whether a and b are both unset or the same time.
func sameInstant(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

func sameParams(a, b *RecParams) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Strategy == b.Strategy && a.BlendBelow == b.BlendBelow &&
		((a.ExcludeSeen == nil) == (b.ExcludeSeen == nil)) && (a.ExcludeSeen == nil || *a.ExcludeSeen == *b.ExcludeSeen)
}

// overlaps reports whether a and b target the same surface (and slot or
// rule) during an overlapping time ([start, stop), start defaulting to
// the creation time and stop open).
func overlaps(a, b *Experiment) bool {
	if a.Target != b.Target {
		return false
	}
	if a.Stop != nil && !a.Stop.After(effectiveStart(b)) {
		return false
	}
	if b.Stop != nil && !b.Stop.After(effectiveStart(a)) {
		return false
	}
	return true
}

// effectiveStart is Start, or the creation time without one.
func effectiveStart(x *Experiment) time.Time {
	if x.Start != nil {
		return *x.Start
	}
	return x.Created
}

// ValidID reports whether s is a valid experiment id.
func ValidID(s string) bool { return jsondef.ValidID(s, maxIDBytes, false) }

// metric reads a metric name; def when absent.
func metric(o *jsondef.Object, key string, def Metric) (Metric, error) {
	s, err := o.Str(key, false, 20)
	if err != nil {
		return "", err
	}
	if s == "" {
		return def, nil
	}
	if m := Metric(s); m.Valid() {
		return m, nil
	}
	return "", jsondef.Errorf(jsondef.Join(o.Path, key), "%s is not ctr, add_to_cart, conversion or revenue", jsondef.Quote(s))
}

func fmtFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
