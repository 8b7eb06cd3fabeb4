package experiments

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kairoshq/kairos/engine"
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
type ValidationError struct {
	Path   string
	Reason string
}

// Error returns "path: reason".
func (e *ValidationError) Error() string {
	if e.Path == "" {
		return e.Reason
	}
	return e.Path + ": " + e.Reason
}

// Unwrap returns engine.ErrInvalid.
func (e *ValidationError) Unwrap() error { return engine.ErrInvalid }

func invalid(path, format string, args ...any) error {
	return &ValidationError{Path: path, Reason: fmt.Sprintf(format, args...)}
}

// Duration is a time.Duration written in JSON as a string: Go syntax
// ("90s", "10m", "1h30m") or whole days ("7d").
type Duration time.Duration

// ParseDuration parses Go duration syntax or a number of days ("7d").
func ParseDuration(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseUint(d, 10, 16)
		if err != nil {
			return 0, fmt.Errorf("%q is not a duration", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration", s)
	}
	return d, nil
}

// String formats d in the largest whole unit: "7d", "2h", "10m", "90s".
func (d Duration) String() string {
	td := time.Duration(d)
	switch {
	case td == 0:
		return "0s"
	case td%(24*time.Hour) == 0:
		return strconv.FormatInt(int64(td/(24*time.Hour)), 10) + "d"
	case td%time.Hour == 0:
		return strconv.FormatInt(int64(td/time.Hour), 10) + "h"
	case td%time.Minute == 0:
		return strconv.FormatInt(int64(td/time.Minute), 10) + "m"
	case td%time.Second == 0:
		return strconv.FormatInt(int64(td/time.Second), 10) + "s"
	}
	return td.String()
}

// MarshalJSON writes d as a string (String).
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a string in ParseDuration's syntax.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := ParseDuration(s)
	*d = Duration(v)
	return err
}

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
		return x, invalid("", "experiment of %d bytes, at most %d", len(b), maxDocBytes)
	}
	o, err := newObj("", b)
	if err != nil {
		return x, err
	}
	if x.ID, err = o.id("id", pathID == "", maxIDBytes, false); err != nil {
		return x, err
	}
	switch {
	case x.ID == "":
		x.ID = pathID
	case pathID != "" && x.ID != pathID:
		return x, invalid("id", "%s does not match the id %s of the path", quote(x.ID), quote(pathID))
	}
	if pathID != "" {
		if err := checkID("id", x.ID, maxIDBytes, false); err != nil {
			return x, err
		}
	}
	if x.Name, err = o.str("name", false, maxNameBytes); err != nil {
		return x, err
	}
	if x.Salt, err = o.str("salt", false, maxNameBytes); err != nil {
		return x, err
	}
	if x.Salt == "" {
		x.Salt = x.ID
	}
	if err := decodeTarget(o, &x.Target); err != nil {
		return x, err
	}
	mode, err := o.str("mode", false, 20)
	if err != nil {
		return x, err
	}
	switch Mode(mode) {
	case "", ModeFixed:
		x.Mode = ModeFixed
	case ModeBandit:
		x.Mode = ModeBandit
	default:
		return x, invalid("mode", "%s is not fixed or bandit", quote(mode))
	}
	if err := decodeVariants(o, &x); err != nil {
		return x, err
	}
	if x.Start, err = o.timeOpt("start"); err != nil {
		return x, err
	}
	if x.Stop, err = o.timeOpt("stop"); err != nil {
		return x, err
	}
	if x.Start != nil && x.Stop != nil && !x.Stop.After(*x.Start) {
		return x, invalid("stop", "%s is not after start %s", x.Stop.Format(time.RFC3339), x.Start.Format(time.RFC3339))
	}
	if x.Metric, err = o.metric("metric", MetricConversion); err != nil {
		return x, err
	}
	if err := decodeGuardrails(o, &x); err != nil {
		return x, err
	}
	if x.AttributionWindow, err = o.duration("attribution_window", DefaultWindow, minWindow, maxWindow); err != nil {
		return x, err
	}
	if x.BanditEvery, err = o.duration("bandit_every", DefaultBanditEvery, minBanditEvery, maxBanditEvery); err != nil {
		return x, err
	}
	floor, ok, err := o.num("floor")
	if err != nil {
		return x, err
	}
	x.Floor = DefaultFloor
	if ok {
		if floor < 0 || floor*float64(len(x.Variants)) >= 1 {
			return x, invalid("floor", "%s is not in [0, 1/%d)", fmtFloat(floor), len(x.Variants))
		}
		x.Floor = floor
	}
	alpha, ok, err := o.num("alpha")
	if err != nil {
		return x, err
	}
	x.Alpha = DefaultAlpha
	if ok {
		if alpha <= 0 || alpha > 0.5 {
			return x, invalid("alpha", "%s is not in (0, 0.5]", fmtFloat(alpha))
		}
		x.Alpha = alpha
	}
	tuning, ok, err := o.num("tuning")
	if err != nil {
		return x, err
	}
	x.Tuning = DefaultTuning
	if ok {
		if tuning < 1 || tuning > 1e12 {
			return x, invalid("tuning", "%s is not in [1, 1e12]", fmtFloat(tuning))
		}
		x.Tuning = tuning
	}
	o.ignore("created", "updated")
	return x, o.done("id, name, salt, target, mode, variants, start, stop, metric, guardrails, attribution_window, bandit_every, floor, alpha, tuning")
}

func decodeTarget(o *obj, t *Target) error {
	raw, ok := o.get("target")
	if !ok {
		return invalid("target", "missing")
	}
	to, err := newObj("target", raw)
	if err != nil {
		return err
	}
	s, err := to.str("surface", true, 20)
	if err != nil {
		return err
	}
	t.Surface = Surface(s)
	switch t.Surface {
	case SurfaceOffers:
		if t.Slot, err = to.id("slot", true, maxRefBytes, true); err != nil {
			return err
		}
	case SurfacePromotions:
		if t.Rule, err = to.id("rule", true, maxRefBytes, true); err != nil {
			return err
		}
	case SurfaceRecommendations:
	default:
		return invalid("target.surface", "%s is not offers, recommendations or promotions", quote(s))
	}
	switch t.Surface {
	case SurfaceOffers:
		return to.done("surface, slot")
	case SurfacePromotions:
		return to.done("surface, rule")
	}
	return to.done("surface")
}

func decodeVariants(o *obj, x *Experiment) error {
	raw, ok := o.get("variants")
	if !ok {
		return invalid("variants", "missing")
	}
	items, err := array("variants", raw)
	if err != nil {
		return err
	}
	if len(items) < 2 || len(items) > maxVariants {
		return invalid("variants", "%d variants, want 2 to %d (the first is the control)", len(items), maxVariants)
	}
	for i, r := range items {
		p := index("variants", i)
		vo, err := newObj(p, r)
		if err != nil {
			return err
		}
		var v Variant
		if v.Name, err = vo.id("name", true, maxVariantBytes, false); err != nil {
			return err
		}
		if slices.ContainsFunc(x.Variants, func(w Variant) bool { return w.Name == v.Name }) {
			return invalid(join(p, "name"), "%s is used by another variant", quote(v.Name))
		}
		w, hasW, err := vo.num("weight")
		if err != nil {
			return err
		}
		if hasW && (w < 0 || w > 1e6) {
			return invalid(join(p, "weight"), "%s is not in [0, 1e6]", fmtFloat(w))
		}
		v.Weight = 1
		if hasW {
			v.Weight = w
		}
		if v.Offer, err = vo.id("offer", false, maxRefBytes, true); err != nil {
			return err
		}
		if v.Campaign, err = vo.id("campaign", false, maxRefBytes, true); err != nil {
			return err
		}
		if v.Holdout, err = vo.boolean("holdout"); err != nil {
			return err
		}
		if pr, ok := vo.get("params"); ok {
			if v.Params, err = decodeParams(join(p, "params"), pr); err != nil {
				return err
			}
		}
		if err := vo.done("name, weight, offer, campaign, params, holdout"); err != nil {
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
		return invalid("variants", "every weight is 0: give at least one arm traffic")
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
		return invalid(p, "at most one of offer, campaign, params and holdout")
	}
	switch {
	case v.Offer != "" && s == SurfaceRecommendations:
		return invalid(join(p, "offer"), "only offers and promotions experiments serve offers")
	case v.Campaign != "" && s != SurfaceOffers:
		return invalid(join(p, "campaign"), "only offers experiments serve campaigns")
	case v.Holdout && s == SurfaceRecommendations:
		return invalid(join(p, "holdout"), "a recommendations experiment cannot hold out (use params)")
	case v.Params != nil && s != SurfaceRecommendations:
		return invalid(join(p, "params"), "only recommendations experiments take params")
	}
	return nil
}

func decodeParams(p string, raw json.RawMessage) (*RecParams, error) {
	po, err := newObj(p, raw)
	if err != nil {
		return nil, err
	}
	var rp RecParams
	if rp.Strategy, err = po.str("strategy", false, 20); err != nil {
		return nil, err
	}
	if rp.Strategy != "" && rp.Strategy != "trending" {
		return nil, invalid(join(p, "strategy"), "%s is not trending (or absent: the engine's choice)", quote(rp.Strategy))
	}
	bb, ok, err := po.intIn("blend_below", 1, maxBlendBelow)
	if err != nil {
		return nil, err
	}
	if ok {
		rp.BlendBelow = int(bb)
	}
	if _, ok := po.get("exclude_seen"); ok {
		b, err := po.boolean("exclude_seen")
		if err != nil {
			return nil, err
		}
		rp.ExcludeSeen = &b
	}
	return &rp, po.done("strategy, blend_below, exclude_seen")
}

func decodeGuardrails(o *obj, x *Experiment) error {
	raw, ok := o.get("guardrails")
	if !ok {
		return nil
	}
	items, err := array("guardrails", raw)
	if err != nil {
		return err
	}
	if len(items) > maxGuardrails {
		return invalid("guardrails", "%d guardrails, at most %d", len(items), maxGuardrails)
	}
	for i, r := range items {
		p := index("guardrails", i)
		g, err := newObj(p, r)
		if err != nil {
			return err
		}
		var gr Guardrail
		if gr.Metric, err = g.metric("metric", ""); err != nil {
			return err
		}
		if gr.Metric == "" {
			return invalid(join(p, "metric"), "missing")
		}
		d, ok, err := g.num("max_drop")
		if err != nil {
			return err
		}
		if ok && (d < 0 || d > 1) {
			return invalid(join(p, "max_drop"), "%s is not in [0, 1]", fmtFloat(d))
		}
		gr.MaxDrop = d
		if err := g.done("metric, max_drop"); err != nil {
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
		return fmt.Errorf("%w: %s: the experiment has started: its %s cannot change (create a new experiment)", ErrConflict, path, what)
	}
	switch {
	case old.Salt != x.Salt:
		return fail("salt", "salt")
	case old.Target != x.Target:
		return fail("target", "target")
	case old.AttributionWindow != x.AttributionWindow:
		return fail("attribution_window", "attribution window")
	case len(old.Variants) != len(x.Variants):
		return fail("variants", "variants (other than their weights)")
	}
	for i := range old.Variants {
		a, b := old.Variants[i], x.Variants[i]
		a.Weight, b.Weight = 0, 0
		if a.Name != b.Name || a.Offer != b.Offer || a.Campaign != b.Campaign || a.Holdout != b.Holdout || !sameParams(a.Params, b.Params) {
			return fail(index("variants", i), "variants (other than their weights)")
		}
	}
	return nil
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

// obj is a JSON object being decoded member by member, so that every
// error names its path and unknown members are refused.
type obj struct {
	path string
	m    map[string]json.RawMessage
	used map[string]bool
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

func jsonKind(raw []byte) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

func newObj(path string, raw []byte) (*obj, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil, invalid(path, "must be an object, got %s", jsonKind(raw))
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, invalid(path, "malformed JSON at byte %d: %s", se.Offset, strings.TrimPrefix(se.Error(), "json: "))
		}
		return nil, invalid(path, "malformed JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	return &obj{path: path, m: m, used: make(map[string]bool, len(m))}, nil
}

func array(path string, raw []byte) ([]json.RawMessage, error) {
	var items []json.RawMessage
	if t := bytes.TrimSpace(raw); len(t) == 0 || t[0] != '[' {
		return nil, invalid(path, "must be an array, got %s", jsonKind(raw))
	}
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, invalid(path, "malformed array: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	return items, nil
}

// get returns the member key (absent when null).
func (o *obj) get(key string) (json.RawMessage, bool) {
	o.used[key] = true
	raw, ok := o.m[key]
	if !ok || string(bytes.TrimSpace(raw)) == "null" {
		return nil, false
	}
	return raw, true
}

func (o *obj) ignore(keys ...string) {
	for _, k := range keys {
		o.used[k] = true
	}
}

// done refuses members that were not read, naming the first (sorted).
func (o *obj) done(valid string) error {
	var unknown []string
	for k := range o.m {
		if !o.used[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	return invalid(join(o.path, unknown[0]), "unknown member (valid: %s)", valid)
}

func (o *obj) str(key string, required bool, max int) (string, error) {
	raw, ok := o.get(key)
	p := join(o.path, key)
	if !ok {
		if required {
			return "", invalid(p, "missing")
		}
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", invalid(p, "must be a string, got %s", jsonKind(raw))
	}
	if required && s == "" {
		return "", invalid(p, "missing")
	}
	if len(s) > max {
		return "", invalid(p, "%d bytes long, at most %d", len(s), max)
	}
	if !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "", invalid(p, "must be valid UTF-8 without control characters")
	}
	return s, nil
}

// validID reports whether s is an id: letters, digits, '-', '_', '.' and,
// when colon, ':' (experiment and variant ids have no ':', offer, campaign,
// rule and slot ids may).
func validID(s string, max int, colon bool) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || (colon && c == ':')) {
			return false
		}
	}
	return true
}

func checkID(path, s string, max int, colon bool) error {
	if !validID(s, max, colon) {
		extra := ""
		if colon {
			extra = ", ':'"
		}
		return invalid(path, "%s: want 1 to %d letters, digits, '-', '_'%s or '.'", quote(s), max, extra)
	}
	return nil
}

// ValidID reports whether s is a valid experiment id.
func ValidID(s string) bool { return validID(s, maxIDBytes, false) }

func (o *obj) id(key string, required bool, max int, colon bool) (string, error) {
	s, err := o.str(key, required, 1<<20)
	if err != nil || s == "" {
		return s, err
	}
	return s, checkID(join(o.path, key), s, max, colon)
}

func (o *obj) num(key string) (float64, bool, error) {
	raw, ok := o.get(key)
	if !ok {
		return 0, false, nil
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, false, invalid(join(o.path, key), "must be a number, got %s", jsonKind(raw))
	}
	return f, true, nil
}

func (o *obj) intIn(key string, min, max int64) (int64, bool, error) {
	f, ok, err := o.num(key)
	if err != nil || !ok {
		return 0, ok, err
	}
	if f != math.Trunc(f) || f < float64(min) || f > float64(max) {
		return 0, false, invalid(join(o.path, key), "%s is not an integer in [%d, %d]", fmtFloat(f), min, max)
	}
	return int64(f), true, nil
}

func (o *obj) boolean(key string) (bool, error) {
	raw, ok := o.get(key)
	if !ok {
		return false, nil
	}
	var b bool
	if err := json.Unmarshal(raw, &b); err != nil {
		return false, invalid(join(o.path, key), "must be true or false, got %s", jsonKind(raw))
	}
	return b, nil
}

func (o *obj) metric(key string, def Metric) (Metric, error) {
	s, err := o.str(key, false, 20)
	if err != nil {
		return "", err
	}
	if s == "" {
		return def, nil
	}
	if m := Metric(s); m.Valid() {
		return m, nil
	}
	return "", invalid(join(o.path, key), "%s is not ctr, add_to_cart, conversion or revenue", quote(s))
}

func (o *obj) duration(key string, def, min, max time.Duration) (Duration, error) {
	raw, ok := o.get(key)
	if !ok {
		return Duration(def), nil
	}
	p := join(o.path, key)
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return 0, invalid(p, "must be a duration string such as \"30m\", \"24h\" or \"7d\", got %s", jsonKind(raw))
	}
	d, err := ParseDuration(s)
	if err != nil {
		return 0, invalid(p, "%s is not a duration (e.g. \"90s\", \"30m\", \"24h\", \"7d\")", quote(s))
	}
	if d < min || d > max {
		return 0, invalid(p, "%s is not in [%v, %v]", quote(s), Duration(min), Duration(max))
	}
	return Duration(d), nil
}

func (o *obj) timeOpt(key string) (*time.Time, error) {
	raw, ok := o.get(key)
	if !ok {
		return nil, nil
	}
	p := join(o.path, key)
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, invalid(p, "must be an RFC 3339 time string, got %s", jsonKind(raw))
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return nil, invalid(p, "%s is not an RFC 3339 time (e.g. \"2026-11-27T00:00:00Z\")", quote(s))
	}
	t = t.UTC()
	return &t, nil
}

// quote quotes s for a message, cut to 60 bytes.
func quote(s string) string {
	if len(s) > 60 {
		n := 60
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n] + "…"
	}
	return strconv.Quote(s)
}

func fmtFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
