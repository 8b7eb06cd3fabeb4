package promo

import (
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kairoshq/kairos/internal/jsondef"
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
type ValidationError = jsondef.Error

// Duration is a time.Duration written in JSON as a string: Go syntax
// ("90s", "10m", "1h30m") or whole days ("7d").
type Duration = jsondef.Duration

// quote quotes s for a message, cut to 60 bytes (jsondef.Quote).
func quote(s string) string { return jsondef.Quote(s) }

// validID reports whether s is a definition id or slot name: letters,
// digits, '-', '_', '.' and ':'.
func validID(s string, max int) bool { return jsondef.ValidID(s, max, true) }

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

func checkText(max int) func(path, s string) error {
	return func(path, s string) error {
		if s == "" || len(s) > max || !utf8.ValidString(s) || strings.ContainsFunc(s, isControl) {
			return jsondef.Errorf(path, "must be 1 to %d bytes of UTF-8 without control characters", max)
		}
		return nil
	}
}

func checkIDs(max int) func(path, s string) error {
	return func(path, s string) error { return jsondef.CheckID(path, s, max, true) }
}

// absURL reads an absolute http(s) URL.
func absURL(o *jsondef.Object, key string) (string, error) {
	s, err := o.Str(key, false, maxURLBytes)
	if err != nil || s == "" {
		return s, err
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", jsondef.Errorf(jsondef.Join(o.Path, key), "%s is not an absolute http(s) URL", quote(s))
	}
	return s, nil
}

// docID reads the id member and reconciles it with the id of the request
// path (pathID, "" when none). It returns the id and the path prefix of
// the definition's members, e.g. "rules[r1]".
func docID(kind Kind, o *jsondef.Object, pathID string) (string, error) {
	id, err := o.Str("id", false, 1<<20)
	if err != nil {
		return "", err
	}
	switch {
	case id == "" && pathID == "":
		return "", jsondef.Errorf(jsondef.Join(o.Path, "id"), "missing")
	case id == "":
		id = pathID
	case pathID != "" && id != pathID:
		return "", jsondef.Errorf(jsondef.Join(o.Path, "id"), "%s differs from %s in the path", quote(id), quote(pathID))
	}
	if err := jsondef.CheckID(jsondef.Join(o.Path, "id"), id, maxIDBytes, true); err != nil {
		return "", err
	}
	o.Path = string(kind) + "[" + id + "]"
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
		return of, jsondef.Errorf("offer", "%d bytes, at most %d", len(b), maxDocBytes)
	}
	o, err := jsondef.NewObject("offer", b)
	if err != nil {
		return of, err
	}
	if of.ID, err = docID(KindOffer, o, pathID); err != nil {
		return of, err
	}
	o.Ignore("created", "updated", "stats")
	if of.Title, err = o.Str("title", false, maxTitleBytes); err != nil {
		return of, err
	}
	if of.Body, err = o.Str("body", false, maxBodyBytes); err != nil {
		return of, err
	}
	if of.Image, err = absURL(o, "image"); err != nil {
		return of, err
	}
	if of.Link, err = absURL(o, "link"); err != nil {
		return of, err
	}
	if of.Items, err = o.Strs("items", maxItems, checkText(maxItemBytes)); err != nil {
		return of, err
	}
	if of.Categories, err = o.Strs("categories", maxCategories, checkText(maxItemBytes)); err != nil {
		return of, err
	}
	if of.Slot, err = o.ID("slot", true, maxSlotBytes, true); err != nil {
		return of, err
	}
	if of.Start, err = o.Time("start"); err != nil {
		return of, err
	}
	if of.End, err = o.Time("end"); err != nil {
		return of, err
	}
	if of.Start != nil && of.End != nil && !of.End.After(*of.Start) {
		return of, jsondef.Errorf(jsondef.Join(o.Path, "end"), "must be after start")
	}
	if raw, ok := o.Get("cap"); ok {
		co, err := jsondef.NewObject(jsondef.Join(o.Path, "cap"), raw)
		if err != nil {
			return of, err
		}
		max, ok, err := co.IntIn("max", 1, 1_000_000)
		if err != nil {
			return of, err
		}
		if !ok {
			return of, jsondef.Errorf(jsondef.Join(co.Path, "max"), "missing")
		}
		if _, ok := co.Get("per"); !ok {
			return of, jsondef.Errorf(jsondef.Join(co.Path, "per"), "missing")
		}
		per, err := co.Duration("per", 0, time.Second, maxDuration)
		if err != nil {
			return of, err
		}
		if err := co.Done("max, per"); err != nil {
			return of, err
		}
		of.Cap = &Cap{Max: int(max), Per: per}
	}
	if of.Budget, _, err = o.IntIn("budget", 0, math.MaxInt64>>11); err != nil {
		return of, err
	}
	if of.Active, err = o.Bool("active", true); err != nil {
		return of, err
	}
	return of, o.Done("id, title, body, image, link, items, categories, slot, start, end, cap, budget, active")
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
			return jsondef.Errorf(jsondef.Index(jsondef.Join(path, "days"), i), "%s is not a day (mon, tue, wed, thu, fri, sat, sun)", quote(d))
		}
		s.days |= 1 << wd
	}
	s.from, s.to = 0, 0
	if s.From != "" || s.To != "" {
		var ok bool
		if s.from, ok = parseClock(s.From); !ok {
			return jsondef.Errorf(jsondef.Join(path, "from"), "%s is not a time of day HH:MM", quote(s.From))
		}
		if s.to, ok = parseClock(s.To); !ok {
			return jsondef.Errorf(jsondef.Join(path, "to"), "%s is not a time of day HH:MM", quote(s.To))
		}
		if s.from == s.to {
			return jsondef.Errorf(jsondef.Join(path, "to"), "equals from: the window would be empty")
		}
	}
	s.loc = time.UTC
	if s.TZ != "" {
		loc, err := time.LoadLocation(s.TZ)
		if err != nil {
			return jsondef.Errorf(jsondef.Join(path, "tz"), "%s is not an IANA time zone", quote(s.TZ))
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
		return c, jsondef.Errorf("campaign", "%d bytes, at most %d", len(b), maxDocBytes)
	}
	o, err := jsondef.NewObject("campaign", b)
	if err != nil {
		return c, err
	}
	if c.ID, err = docID(KindCampaign, o, pathID); err != nil {
		return c, err
	}
	o.Ignore("created", "updated")
	if c.Name, err = o.Str("name", false, maxTitleBytes); err != nil {
		return c, err
	}
	if c.Offers, err = o.Strs("offers", maxOffersPerC, checkIDs(maxIDBytes)); err != nil {
		return c, err
	}
	if len(c.Offers) == 0 {
		return c, jsondef.Errorf(jsondef.Join(o.Path, "offers"), "missing: list at least one offer id")
	}
	p, _, err := o.IntIn("priority", -maxPriority, maxPriority)
	if err != nil {
		return c, err
	}
	c.Priority = int(p)
	if c.Start, err = o.Time("start"); err != nil {
		return c, err
	}
	if c.End, err = o.Time("end"); err != nil {
		return c, err
	}
	if c.Start != nil && c.End != nil && !c.End.After(*c.Start) {
		return c, jsondef.Errorf(jsondef.Join(o.Path, "end"), "must be after start")
	}
	if raw, ok := o.Get("schedule"); ok {
		so, err := jsondef.NewObject(jsondef.Join(o.Path, "schedule"), raw)
		if err != nil {
			return c, err
		}
		s := &Schedule{}
		if s.Days, err = so.Strs("days", 7, func(string, string) error { return nil }); err != nil {
			return c, err
		}
		if s.From, err = so.Str("from", false, 5); err != nil {
			return c, err
		}
		if s.To, err = so.Str("to", false, 5); err != nil {
			return c, err
		}
		if s.TZ, err = so.Str("tz", false, 100); err != nil {
			return c, err
		}
		if err := so.Done("days, from, to, tz"); err != nil {
			return c, err
		}
		if err := s.compile(so.Path); err != nil {
			return c, err
		}
		c.Schedule = s
	}
	if c.Active, err = o.Bool("active", true); err != nil {
		return c, err
	}
	return c, o.Done("id, name, offers, priority, start, end, schedule, active")
}

// DecodeRule decodes and validates a rule (JSON as in Rule, the condition
// in the grammar of the package documentation); see DecodeOffer for
// pathID and the ignored members. Errors name the member, e.g.
// rules[r1].when.all[2].count.within: "10x" is not a duration.
func DecodeRule(b []byte, pathID string) (Rule, error) {
	var r Rule
	if len(b) > maxDocBytes {
		return r, jsondef.Errorf("rule", "%d bytes, at most %d", len(b), maxDocBytes)
	}
	o, err := jsondef.NewObject("rule", b)
	if err != nil {
		return r, err
	}
	if r.ID, err = docID(KindRule, o, pathID); err != nil {
		return r, err
	}
	o.Ignore("created", "updated")
	if r.Name, err = o.Str("name", false, maxTitleBytes); err != nil {
		return r, err
	}
	p, _, err := o.IntIn("priority", -maxPriority, maxPriority)
	if err != nil {
		return r, err
	}
	r.Priority = int(p)
	raw, ok := o.Get("when")
	if !ok {
		return r, jsondef.Errorf(jsondef.Join(o.Path, "when"), "missing: the condition")
	}
	nodes := 0
	if r.When, err = decodeCond(jsondef.Join(o.Path, "when"), raw, 0, &nodes); err != nil {
		return r, err
	}
	raw, ok = o.Get("then")
	if !ok {
		return r, jsondef.Errorf(jsondef.Join(o.Path, "then"), "missing: the action, {\"offer\": \"…\"} or {\"slot\": \"…\"}")
	}
	ao, err := jsondef.NewObject(jsondef.Join(o.Path, "then"), raw)
	if err != nil {
		return r, err
	}
	if r.Then.Offer, err = ao.ID("offer", false, maxIDBytes, true); err != nil {
		return r, err
	}
	if r.Then.Slot, err = ao.ID("slot", false, maxSlotBytes, true); err != nil {
		return r, err
	}
	if r.Then.Campaign, err = ao.ID("campaign", false, maxIDBytes, true); err != nil {
		return r, err
	}
	if err := ao.Done("offer, slot, campaign"); err != nil {
		return r, err
	}
	switch {
	case r.Then.Offer == "" && r.Then.Slot == "":
		return r, jsondef.Errorf(ao.Path, "name an offer (show it) or a slot (show the best offer for it)")
	case r.Then.Offer != "" && r.Then.Campaign != "":
		return r, jsondef.Errorf(jsondef.Join(ao.Path, "campaign"), "only with the best offer for a slot, not with an offer")
	}
	if r.Cooldown, err = o.Duration("cooldown", time.Hour, 0, maxDuration); err != nil {
		return r, err
	}
	if r.Active, err = o.Bool("active", true); err != nil {
		return r, err
	}
	return r, o.Done("id, name, priority, when, then, cooldown, active")
}
