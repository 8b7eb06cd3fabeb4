package promo

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Reasons a matching rule did not push a promotion (RuleStatus.Skipped
// keys and the reason label of kairos_promo_rule_skips_total).
const (
	SkipCooldown = "cooldown" // the visitor's cooldown of the rule runs
	SkipNoOffer  = "no_offer" // no offer of the action is eligible now
	SkipCapped   = "capped"   // every eligible offer reached the visitor's cap
	SkipHoldout  = "holdout"  // an experiment's holdout or the personalization holdout: nothing is pushed
)

// RuleDetail is a rule as GET /v1/rules answers it: the definition and
// its status.
type RuleDetail struct {
	Rule
	Status RuleStatus `json:"status"`
}

// RuleStatus says whether a rule can push a promotion now, and what this
// replica saw of it since it started: so that a site can tell why a rule
// that matches does not fire.
type RuleStatus struct {
	// Ready tells whether the rule's action has an eligible offer now;
	// NotReady says why not (e.g. the campaign of its offer ended).
	Ready    bool   `json:"ready"`
	NotReady string `json:"not_ready,omitempty"`
	// Matched counts the visitors' batches whose condition held, Fired
	// the promotions pushed, Skipped the matches that pushed nothing, by
	// reason (cooldown, no_offer, capped, holdout).
	Matched   int64            `json:"matched"`
	Fired     int64            `json:"fired"`
	Skipped   map[string]int64 `json:"skipped,omitempty"`
	LastFired *time.Time       `json:"last_fired,omitempty"`
	// LastSkip is the latest match that pushed nothing.
	LastSkip *RuleSkip `json:"last_skip,omitempty"`
}

// RuleSkip is one match of a rule that pushed nothing.
type RuleSkip struct {
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
	Detail string    `json:"detail,omitempty"`
}

// ruleLog keeps the per-rule counters of this replica.
type ruleLog struct {
	mu    sync.Mutex
	rules map[string]*RuleStatus
	// logged is the last skip reason logged per rule, so that a rule
	// that keeps missing for the same reason logs it once.
	logged map[string]string
}

func (l *ruleLog) status(rule string) *RuleStatus {
	if l.rules == nil {
		l.rules, l.logged = map[string]*RuleStatus{}, map[string]string{}
	}
	s := l.rules[rule]
	if s == nil {
		s = &RuleStatus{}
		l.rules[rule] = s
	}
	return s
}

// matched counts a match of rule.
func (l *ruleLog) matched(rule string) {
	l.mu.Lock()
	l.status(rule).Matched++
	l.mu.Unlock()
}

// fired counts a promotion of rule at now.
func (l *ruleLog) fired(rule string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.status(rule)
	s.Fired++
	s.LastFired = &now
	delete(l.logged, rule)
}

// skipped counts a match of rule that pushed nothing and reports whether
// the reason differs from the last one logged for the rule.
func (l *ruleLog) skipped(rule string, sk RuleSkip) (news bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.status(rule)
	if s.Skipped == nil {
		s.Skipped = map[string]int64{}
	}
	s.Skipped[sk.Reason]++
	s.LastSkip = &sk
	key := sk.Reason + "\x00" + sk.Detail
	if l.logged[rule] == key {
		return false
	}
	l.logged[rule] = key
	return true
}

// snapshot returns a copy of rule's counters.
func (l *ruleLog) snapshot(rule string) RuleStatus {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := *l.status(rule)
	if s.Skipped != nil {
		m := make(map[string]int64, len(s.Skipped))
		for k, v := range s.Skipped {
			m[k] = v
		}
		s.Skipped = m
	}
	return s
}

// skip records a match of r that pushed nothing: counted, in /metrics,
// and logged (at info, once per rule while the reason stays the same;
// cooldowns, the normal case, at debug).
func (e *Engine) skip(ctx context.Context, r *compiledRule, sk RuleSkip) {
	e.met.skips.WithLabelValues(sk.Reason).Inc()
	if !e.rules.skipped(r.ID, sk) {
		return
	}
	level := slog.LevelInfo
	if sk.Reason == SkipCooldown {
		level = slog.LevelDebug
	}
	e.log.LogAttrs(ctx, level, "rule matched but pushed nothing", slog.String("rule", r.ID),
		slog.String("reason", sk.Reason), slog.String("detail", sk.Detail))
}

// ruleDetail returns r with its status at now.
func (e *Engine) ruleDetail(snap *snapshot, r *Rule, now time.Time) RuleDetail {
	st := e.rules.snapshot(r.ID)
	st.NotReady = e.notReady(snap, r, now)
	st.Ready = st.NotReady == ""
	return RuleDetail{Rule: *r, Status: st}
}

// notReady returns why r's action has no eligible offer at now ("" when
// it has one).
func (e *Engine) notReady(snap *snapshot, r *Rule, now time.Time) string {
	switch {
	case !r.Active:
		return "the rule is inactive"
	case r.Then.Offer != "":
		o := snap.offers[r.Then.Offer]
		if o == nil {
			return fmt.Sprintf("offer %s does not exist", quote(r.Then.Offer))
		}
		return whyIneligible(o, now, e.Stats(o.ID))
	}
	if len(e.candidates(nil, snap, r.Then.Slot, r.Then.Campaign, now)) > 0 {
		return ""
	}
	var where []string
	if r.Then.Slot != "" {
		where = append(where, "in slot "+quote(r.Then.Slot))
	}
	if r.Then.Campaign != "" {
		where = append(where, "of live campaign "+quote(r.Then.Campaign))
	}
	return strings.TrimSpace("no offer " + strings.Join(where, " ") + " is eligible now")
}

// whyIneligible returns why offer o cannot be served at now, "" when it
// can (the checks of eligible, in words).
func whyIneligible(o *offerInfo, now time.Time, st OfferStats) string {
	id := quote(o.ID)
	switch {
	case !o.Active:
		return fmt.Sprintf("offer %s is inactive", id)
	case o.Start != nil && now.Before(*o.Start):
		return fmt.Sprintf("offer %s starts at %s", id, o.Start.UTC().Format(time.RFC3339))
	case o.End != nil && !now.Before(*o.End):
		return fmt.Sprintf("offer %s ended at %s", id, o.End.UTC().Format(time.RFC3339))
	case o.Budget > 0 && st.Impressions >= o.Budget:
		return fmt.Sprintf("offer %s reached its budget of %d impressions", id, o.Budget)
	}
	if _, _, ok := eligible(o, now, st); ok {
		return ""
	}
	why := make([]string, 0, len(o.campaigns))
	for _, c := range o.campaigns {
		why = append(why, campaignDown(c, now))
	}
	return fmt.Sprintf("offer %s is served only in its campaigns, none live: %s", id, strings.Join(why, "; "))
}

// campaignDown says why campaign c is not live at now.
func campaignDown(c *Campaign, now time.Time) string {
	id := quote(c.ID)
	switch {
	case !c.Active:
		return fmt.Sprintf("campaign %s is inactive", id)
	case c.Start != nil && now.Before(*c.Start):
		return fmt.Sprintf("campaign %s starts at %s", id, c.Start.UTC().Format(time.RFC3339))
	case c.End != nil && !now.Before(*c.End):
		return fmt.Sprintf("campaign %s ended at %s", id, c.End.UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("campaign %s is outside its schedule now", id)
}
