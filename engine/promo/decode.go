package promo

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kairoshq/kairos/engine"
)

// Limits of definitions.
const (
	maxDocBytes   = 64 << 10
	maxIDBytes    = 100
	maxSlotBytes  = 50
	maxTitleBytes = 1024
	maxBodyBytes  = 4096
	maxURLBytes   = 2048
	maxItemBytes  = 200
	maxItems      = 100
	maxCategories = 20
	maxOffersPerC = 1000
	maxPriority   = 1_000_000
	maxDuration   = 366 * 24 * time.Hour
)

// ValidationError is a definition that does not validate: Path names the
// member in JSON path notation, e.g. rules[r1].when.all[2].count.within.
// It wraps engine.ErrInvalid.
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

// String formats d in the largest whole unit: "7d", "2h", "10m", "90s",
// "250ms".
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

func isNull(raw json.RawMessage) bool {
	return string(bytes.TrimSpace(raw)) == "null"
}

func newObj(path string, raw []byte) (*obj, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil, invalid(path, "must be an object, got %s", jsonKind(raw))
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, invalid(path, "malformed JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	return &obj{path: path, m: m, used: make(map[string]bool, len(m))}, nil
}

// get returns the member key (absent when null).
func (o *obj) get(key string) (json.RawMessage, bool) {
	o.used[key] = true
	raw, ok := o.m[key]
	if !ok || isNull(raw) {
		return nil, false
	}
	return raw, true
}

// ignore marks members that are accepted and ignored.
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
	if !utf8.ValidString(s) || strings.ContainsFunc(s, isControl) {
		return "", invalid(p, "must be valid UTF-8 without control characters")
	}
	return s, nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// validID reports whether s is a definition id or slot name: letters,
// digits, '-', '_', '.' and ':'.
func validID(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

func checkID(path, s string, max int) error {
	if !validID(s, max) {
		return invalid(path, "%s: want 1 to %d letters, digits, '-', '_', '.' or ':'", quote(s), max)
	}
	return nil
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

func (o *obj) id(key string, required bool, max int) (string, error) {
	s, err := o.str(key, required, 1<<20)
	if err != nil || s == "" {
		return s, err
	}
	return s, checkID(join(o.path, key), s, max)
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
		return 0, false, invalid(join(o.path, key), "%s is not an integer in [%d, %d]", strconv.FormatFloat(f, 'g', -1, 64), min, max)
	}
	return int64(f), true, nil
}

func (o *obj) boolean(key string, def bool) (bool, error) {
	raw, ok := o.get(key)
	if !ok {
		return def, nil
	}
	var b bool
	if err := json.Unmarshal(raw, &b); err != nil {
		return false, invalid(join(o.path, key), "must be true or false, got %s", jsonKind(raw))
	}
	return b, nil
}

func (o *obj) duration(key string, def, min, max time.Duration) (Duration, error) {
	raw, ok := o.get(key)
	if !ok {
		return Duration(def), nil
	}
	p := join(o.path, key)
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return 0, invalid(p, "must be a duration string such as \"10m\", \"24h\" or \"7d\", got %s", jsonKind(raw))
	}
	d, err := ParseDuration(s)
	if err != nil {
		return 0, invalid(p, "%s is not a duration (e.g. \"90s\", \"10m\", \"24h\", \"7d\")", quote(s))
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

// strs reads an array of strings; check validates each (its path given).
func (o *obj) strs(key string, maxN int, check func(path, s string) error) ([]string, error) {
	raw, ok := o.get(key)
	if !ok {
		return nil, nil
	}
	p := join(o.path, key)
	var raws []json.RawMessage
	if err := json.Unmarshal(raw, &raws); err != nil {
		return nil, invalid(p, "must be an array of strings, got %s", jsonKind(raw))
	}
	if len(raws) > maxN {
		return nil, invalid(p, "%d elements, at most %d", len(raws), maxN)
	}
	out := make([]string, 0, len(raws))
	seen := make(map[string]bool, len(raws))
	for i, r := range raws {
		var s string
		if err := json.Unmarshal(r, &s); err != nil {
			return nil, invalid(index(p, i), "must be a string, got %s", jsonKind(r))
		}
		if err := check(index(p, i), s); err != nil {
			return nil, err
		}
		if seen[s] {
			return nil, invalid(index(p, i), "%s is listed twice", quote(s))
		}
		seen[s] = true
		out = append(out, s)
	}
	return out, nil
}

func checkText(max int) func(path, s string) error {
	return func(path, s string) error {
		if s == "" || len(s) > max || !utf8.ValidString(s) || strings.ContainsFunc(s, isControl) {
			return invalid(path, "must be 1 to %d bytes of UTF-8 without control characters", max)
		}
		return nil
	}
}

func checkIDs(max int) func(path, s string) error {
	return func(path, s string) error { return checkID(path, s, max) }
}

func (o *obj) url(key string) (string, error) {
	s, err := o.str(key, false, maxURLBytes)
	if err != nil || s == "" {
		return s, err
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", invalid(join(o.path, key), "%s is not an absolute http(s) URL", quote(s))
	}
	return s, nil
}

// docID reads the id member and reconciles it with the id of the request
// path (pathID, "" when none). It returns the id and the path prefix of
// the definition's members, e.g. "rules[r1]".
func docID(kind Kind, o *obj, pathID string) (string, error) {
	id, err := o.str("id", false, 1<<20)
	if err != nil {
		return "", err
	}
	switch {
	case id == "" && pathID == "":
		return "", invalid(join(o.path, "id"), "missing")
	case id == "":
		id = pathID
	case pathID != "" && id != pathID:
		return "", invalid(join(o.path, "id"), "%s differs from %s in the path", quote(id), quote(pathID))
	}
	if err := checkID(join(o.path, "id"), id, maxIDBytes); err != nil {
		return "", err
	}
	o.path = string(kind) + "[" + id + "]"
	return id, nil
}

// DecodeOffer decodes and validates an offer (JSON as in Offer). pathID
// is the id of the request path ("" when none): the body's id may be
// omitted then, and must match otherwise. "active" defaults to true;
// "created", "updated" and "stats" are ignored. Errors are
// *ValidationError naming the member.
func DecodeOffer(b []byte, pathID string) (Offer, error) {
	var of Offer
	if len(b) > maxDocBytes {
		return of, invalid("offer", "%d bytes, at most %d", len(b), maxDocBytes)
	}
	o, err := newObj("offer", b)
	if err != nil {
		return of, err
	}
	if of.ID, err = docID(KindOffer, o, pathID); err != nil {
		return of, err
	}
	o.ignore("created", "updated", "stats")
	if of.Title, err = o.str("title", false, maxTitleBytes); err != nil {
		return of, err
	}
	if of.Body, err = o.str("body", false, maxBodyBytes); err != nil {
		return of, err
	}
	if of.Image, err = o.url("image"); err != nil {
		return of, err
	}
	if of.Link, err = o.url("link"); err != nil {
		return of, err
	}
	if of.Items, err = o.strs("items", maxItems, checkText(maxItemBytes)); err != nil {
		return of, err
	}
	if of.Categories, err = o.strs("categories", maxCategories, checkText(maxItemBytes)); err != nil {
		return of, err
	}
	if of.Slot, err = o.id("slot", true, maxSlotBytes); err != nil {
		return of, err
	}
	if of.Start, err = o.timeOpt("start"); err != nil {
		return of, err
	}
	if of.End, err = o.timeOpt("end"); err != nil {
		return of, err
	}
	if of.Start != nil && of.End != nil && !of.End.After(*of.Start) {
		return of, invalid(join(o.path, "end"), "must be after start")
	}
	if raw, ok := o.get("cap"); ok {
		co, err := newObj(join(o.path, "cap"), raw)
		if err != nil {
			return of, err
		}
		max, ok, err := co.intIn("max", 1, 1_000_000)
		if err != nil {
			return of, err
		}
		if !ok {
			return of, invalid(join(co.path, "max"), "missing")
		}
		if _, ok := co.get("per"); !ok {
			return of, invalid(join(co.path, "per"), "missing")
		}
		per, err := co.duration("per", 0, time.Second, maxDuration)
		if err != nil {
			return of, err
		}
		if err := co.done("max, per"); err != nil {
			return of, err
		}
		of.Cap = &Cap{Max: int(max), Per: per}
	}
	if of.Budget, _, err = o.intIn("budget", 0, math.MaxInt64>>11); err != nil {
		return of, err
	}
	if of.Active, err = o.boolean("active", true); err != nil {
		return of, err
	}
	return of, o.done("id, title, body, image, link, items, categories, slot, start, end, cap, budget, active")
}

var weekdays = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

// parseClock parses "HH:MM" into minutes of the day ("24:00" is the end
// of the day).
func parseClock(s string) (int, bool) {
	if len(s) != 5 || s[2] != ':' {
		return 0, false
	}
	h, err1 := strconv.Atoi(s[:2])
	m, err2 := strconv.Atoi(s[3:])
	if err1 != nil || err2 != nil || h < 0 || h > 24 || m < 0 || m > 59 || (h == 24 && m != 0) {
		return 0, false
	}
	return h*60 + m, true
}

// compile checks s and fills its parsed fields (path names it).
func (s *Schedule) compile(path string) error {
	s.days = 0
	for i, d := range s.Days {
		wd, ok := weekdays[strings.ToLower(d)]
		if !ok {
			return invalid(index(join(path, "days"), i), "%s is not a day (mon, tue, wed, thu, fri, sat, sun)", quote(d))
		}
		s.days |= 1 << wd
	}
	s.from, s.to = 0, 0
	if s.From != "" || s.To != "" {
		var ok bool
		if s.from, ok = parseClock(s.From); !ok {
			return invalid(join(path, "from"), "%s is not a time of day HH:MM", quote(s.From))
		}
		if s.to, ok = parseClock(s.To); !ok {
			return invalid(join(path, "to"), "%s is not a time of day HH:MM", quote(s.To))
		}
		if s.from == s.to {
			return invalid(join(path, "to"), "equals from: the window would be empty")
		}
	}
	s.loc = time.UTC
	if s.TZ != "" {
		loc, err := time.LoadLocation(s.TZ)
		if err != nil {
			return invalid(join(path, "tz"), "%s is not an IANA time zone", quote(s.TZ))
		}
		s.loc = loc
	}
	return nil
}

// live reports whether t falls in the schedule.
func (s *Schedule) live(t time.Time) bool {
	loc := s.loc
	if loc == nil {
		loc = time.UTC
	}
	lt := t.In(loc)
	min := lt.Hour()*60 + lt.Minute()
	day := lt.Weekday()
	if s.from == 0 && s.to == 0 {
		return s.days == 0 || s.days&(1<<day) != 0
	}
	if s.from < s.to {
		return (s.days == 0 || s.days&(1<<day) != 0) && min >= s.from && min < s.to
	}
	// Spans midnight: the part after midnight belongs to the previous day.
	if min >= s.from {
		return s.days == 0 || s.days&(1<<day) != 0
	}
	if min < s.to {
		prev := (day + 6) % 7
		return s.days == 0 || s.days&(1<<prev) != 0
	}
	return false
}

// DecodeCampaign decodes and validates a campaign (JSON as in Campaign);
// see DecodeOffer for pathID and the ignored members.
func DecodeCampaign(b []byte, pathID string) (Campaign, error) {
	var c Campaign
	if len(b) > maxDocBytes {
		return c, invalid("campaign", "%d bytes, at most %d", len(b), maxDocBytes)
	}
	o, err := newObj("campaign", b)
	if err != nil {
		return c, err
	}
	if c.ID, err = docID(KindCampaign, o, pathID); err != nil {
		return c, err
	}
	o.ignore("created", "updated")
	if c.Name, err = o.str("name", false, maxTitleBytes); err != nil {
		return c, err
	}
	if c.Offers, err = o.strs("offers", maxOffersPerC, checkIDs(maxIDBytes)); err != nil {
		return c, err
	}
	if len(c.Offers) == 0 {
		return c, invalid(join(o.path, "offers"), "missing: list at least one offer id")
	}
	p, _, err := o.intIn("priority", -maxPriority, maxPriority)
	if err != nil {
		return c, err
	}
	c.Priority = int(p)
	if c.Start, err = o.timeOpt("start"); err != nil {
		return c, err
	}
	if c.End, err = o.timeOpt("end"); err != nil {
		return c, err
	}
	if c.Start != nil && c.End != nil && !c.End.After(*c.Start) {
		return c, invalid(join(o.path, "end"), "must be after start")
	}
	if raw, ok := o.get("schedule"); ok {
		so, err := newObj(join(o.path, "schedule"), raw)
		if err != nil {
			return c, err
		}
		s := &Schedule{}
		if s.Days, err = so.strs("days", 7, func(string, string) error { return nil }); err != nil {
			return c, err
		}
		if s.From, err = so.str("from", false, 5); err != nil {
			return c, err
		}
		if s.To, err = so.str("to", false, 5); err != nil {
			return c, err
		}
		if s.TZ, err = so.str("tz", false, 100); err != nil {
			return c, err
		}
		if err := so.done("days, from, to, tz"); err != nil {
			return c, err
		}
		if err := s.compile(so.path); err != nil {
			return c, err
		}
		c.Schedule = s
	}
	if c.Active, err = o.boolean("active", true); err != nil {
		return c, err
	}
	return c, o.done("id, name, offers, priority, start, end, schedule, active")
}

// DecodeRule decodes and validates a rule (JSON as in Rule, the condition
// in the grammar of the package documentation); see DecodeOffer for
// pathID and the ignored members. Errors name the member, e.g.
// rules[r1].when.all[2].count.within: "10x" is not a duration.
func DecodeRule(b []byte, pathID string) (Rule, error) {
	var r Rule
	if len(b) > maxDocBytes {
		return r, invalid("rule", "%d bytes, at most %d", len(b), maxDocBytes)
	}
	o, err := newObj("rule", b)
	if err != nil {
		return r, err
	}
	if r.ID, err = docID(KindRule, o, pathID); err != nil {
		return r, err
	}
	o.ignore("created", "updated")
	if r.Name, err = o.str("name", false, maxTitleBytes); err != nil {
		return r, err
	}
	p, _, err := o.intIn("priority", -maxPriority, maxPriority)
	if err != nil {
		return r, err
	}
	r.Priority = int(p)
	raw, ok := o.get("when")
	if !ok {
		return r, invalid(join(o.path, "when"), "missing: the condition")
	}
	nodes := 0
	if r.When, err = decodeCond(join(o.path, "when"), raw, 0, &nodes); err != nil {
		return r, err
	}
	raw, ok = o.get("then")
	if !ok {
		return r, invalid(join(o.path, "then"), "missing: the action, {\"offer\": \"…\"} or {\"slot\": \"…\"}")
	}
	ao, err := newObj(join(o.path, "then"), raw)
	if err != nil {
		return r, err
	}
	if r.Then.Offer, err = ao.id("offer", false, maxIDBytes); err != nil {
		return r, err
	}
	if r.Then.Slot, err = ao.id("slot", false, maxSlotBytes); err != nil {
		return r, err
	}
	if r.Then.Campaign, err = ao.id("campaign", false, maxIDBytes); err != nil {
		return r, err
	}
	if err := ao.done("offer, slot, campaign"); err != nil {
		return r, err
	}
	switch {
	case r.Then.Offer == "" && r.Then.Slot == "":
		return r, invalid(ao.path, "name an offer (show it) or a slot (show the best offer for it)")
	case r.Then.Offer != "" && r.Then.Campaign != "":
		return r, invalid(join(ao.path, "campaign"), "only with the best offer for a slot, not with an offer")
	}
	if r.Cooldown, err = o.duration("cooldown", time.Hour, 0, maxDuration); err != nil {
		return r, err
	}
	if r.Active, err = o.boolean("active", true); err != nil {
		return r, err
	}
	return r, o.done("id, name, priority, when, then, cooldown, active")
}
