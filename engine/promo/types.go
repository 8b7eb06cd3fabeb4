package promo

import (
	"errors"
	"time"

	"github.com/kairoshq/kairos/engine/filter"
)

// ErrForged is returned by Signer.Verify for a token that was not made by
// this installation's secret, or that does not decode.
var ErrForged = errors.New("promo: forged or malformed token")

// Kind names a kind of definition: offers, campaigns or rules.
type Kind string

// The kinds of definitions (also the path segment of their HTTP routes).
const (
	KindOffer    Kind = "offers"
	KindCampaign Kind = "campaigns"
	KindRule     Kind = "rules"
)

// Valid reports whether k is one of the three kinds.
func (k Kind) Valid() bool { return k == KindOffer || k == KindCampaign || k == KindRule }

// Offer is something to show a visitor in a slot of the page: a banner, a
// coupon, a product push. See the package documentation for eligibility.
type Offer struct {
	ID    string `json:"id"`
	Title string `json:"title,omitempty"`
	Body  string `json:"body,omitempty"`
	// Image and Link are absolute http(s) URLs (optional).
	Image string `json:"image,omitempty"`
	Link  string `json:"link,omitempty"`
	// Items and Categories are what the offer promotes: its predicted
	// affinity for a visitor is the visitor's mean preference for these
	// items (and for the items of these categories).
	Items      []string `json:"items,omitempty"`
	Categories []string `json:"categories,omitempty"`
	// Slot is where the offer is shown (e.g. hero, sidebar, exit); required.
	Slot string `json:"slot"`
	// Start and End bound the validity window (each optional): the offer
	// is eligible from Start (inclusive) to End (exclusive).
	Start *time.Time `json:"start,omitempty"`
	End   *time.Time `json:"end,omitempty"`
	// Cap limits the impressions per visitor (optional).
	Cap *Cap `json:"cap,omitempty"`
	// Budget is the total number of impressions the offer may get over
	// all visitors (0: unlimited); once reached the offer is ineligible.
	Budget int64 `json:"budget,omitempty"`
	// Active offers are eligible; inactive ones never are (default true).
	Active  bool      `json:"active"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

// Cap is a per-visitor frequency cap: at most Max impressions per Per,
// counted in a fixed window that starts at the visitor's first counted
// impression.
type Cap struct {
	Max int      `json:"max"`
	Per Duration `json:"per"`
}

// Campaign groups offers under a schedule and a priority. An offer that
// belongs to campaigns is eligible only while one of them is live; its
// priority is the highest of its live campaigns'. Offers in no campaign
// have priority 0.
type Campaign struct {
	ID     string   `json:"id"`
	Name   string   `json:"name,omitempty"`
	Offers []string `json:"offers"`
	// Priority orders offers before their scores: an eligible offer of a
	// higher-priority campaign always ranks above those of lower ones.
	Priority int        `json:"priority,omitempty"`
	Start    *time.Time `json:"start,omitempty"`
	End      *time.Time `json:"end,omitempty"`
	// Schedule restricts the campaign to days of the week and hours of
	// the day (optional).
	Schedule *Schedule `json:"schedule,omitempty"`
	Active   bool      `json:"active"`
	Created  time.Time `json:"created"`
	Updated  time.Time `json:"updated"`
}

// Schedule is a weekly schedule: the campaign is live on Days (all days
// when empty) between From and To ("HH:MM", To exclusive; the whole day
// when both are empty; To before From spans midnight), in the time zone
// TZ (IANA name, default UTC).
type Schedule struct {
	Days []string `json:"days,omitempty"` // mon, tue, wed, thu, fri, sat, sun
	From string   `json:"from,omitempty"`
	To   string   `json:"to,omitempty"`
	TZ   string   `json:"tz,omitempty"`

	loc      *time.Location
	days     uint8 // bit per time.Weekday; 0 = every day
	from, to int   // minutes of the day; from == to == 0: all day
}

// Rule fires an instant promotion when its condition holds for a visitor
// after a batch of events. See the package documentation for the
// condition grammar.
type Rule struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
	// Priority orders rules: when several match one visitor's batch, the
	// highest fires (ties: ascending id). At most one promotion per
	// visitor per batch.
	Priority int `json:"priority,omitempty"`
	// When is the condition.
	When Cond `json:"when"`
	// Then is the action.
	Then Action `json:"then"`
	// Cooldown is the least time between two promotions of this rule to
	// one visitor (default 1h; "0s" for none).
	Cooldown Duration `json:"cooldown"`
	// Active rules are evaluated (default true).
	Active  bool      `json:"active"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

// Action is what a rule does: show Offer (in Slot, default the offer's
// own slot), or, without Offer, the best eligible offer for Slot (among
// Campaign's offers when set).
type Action struct {
	Offer    string `json:"offer,omitempty"`
	Slot     string `json:"slot,omitempty"`
	Campaign string `json:"campaign,omitempty"`
}

// OfferView is the public part of an offer: what the page renders.
type OfferView struct {
	ID    string `json:"id"`
	Title string `json:"title,omitempty"`
	Body  string `json:"body,omitempty"`
	Image string `json:"image,omitempty"`
	Link  string `json:"link,omitempty"`
	// Item is the first promoted item (the tracker marks the rendered
	// element with it, so dwell and clicks on it teach the model).
	Item string `json:"item,omitempty"`
}

// View returns the public part of o.
func (o *Offer) View() OfferView {
	v := OfferView{ID: o.ID, Title: o.Title, Body: o.Body, Image: o.Image, Link: o.Link}
	if len(o.Items) > 0 {
		v.Item = o.Items[0]
	}
	return v
}

// Promotion is an instant promotion: a rule fired for a visitor. Its JSON
// is the data of the server-sent event and the body of the message on
// signals.TopicPromotions (exchange kairos.promotions).
type Promotion struct {
	// ID is the decimal form of Seq: the SSE event id.
	ID string `json:"id"`
	// Seq increases strictly per visitor (the store assigns it: the
	// larger of the previous one + 1 and the creation time in µs).
	Seq     uint64    `json:"seq"`
	Visitor string    `json:"visitor"`
	Offer   OfferView `json:"offer"`
	Slot    string    `json:"slot"`
	// Token attributes the impression and clicks of the rendered offer.
	Token   string    `json:"token"`
	Rule    string    `json:"rule"`
	Created time.Time `json:"created"`
	// Expires: a stream that connects without Last-Event-ID replays only
	// promotions not yet expired.
	Expires time.Time `json:"expires"`
}

// OfferStats are an offer's counters over all visitors.
type OfferStats struct {
	Impressions int64 `json:"impressions"`
	Clicks      int64 `json:"clicks"`
	Conversions int64 `json:"conversions"`
}

// RankedOffer is one offer of an OfferList.
type RankedOffer struct {
	OfferView
	Slot string `json:"slot"`
	// Token ties the impression, clicks and conversions of this exposure
	// to the offer: put it on the rendered element as data-kairos-token.
	Token    string  `json:"token"`
	Campaign string  `json:"campaign,omitempty"`
	Score    float64 `json:"score"`
}

// OfferRequest asks for the best offers for a visitor.
type OfferRequest struct {
	Visitor string
	// User is the visitor's known user id, when the site knows it (its
	// factors rank the offers; "" = the visitor's, or its linked user's).
	User string
	// Slot keeps only offers of that slot ("" = any slot).
	Slot string
	// N is the number of offers wanted (1..100).
	N int
	// Campaign, when set, keeps only the offers of that live campaign
	// (an experiment's variant, engine/experiments).
	Campaign string
	// Baseline ranks without the visitor's factors: every offer's
	// affinity is neutral, so the ranking is the offers' click-through
	// (Thompson samples) alone — the non-personalized baseline of a
	// visitor in the personalization holdout (engine/holdout).
	Baseline bool
	// Filter keeps only the offers for which it holds and Boost
	// multiplies their scores (engine/filter; nil: none). They read the
	// offer as id, slot, items, categories (category: the first), created
	// and active, and Context.
	Filter, Boost *filter.Expr
	// Context is what the expressions read of the request.
	Context filter.Context
}

// OfferList is the answer to an OfferRequest, best first.
type OfferList struct {
	Visitor string        `json:"visitor"`
	Slot    string        `json:"slot,omitempty"`
	Offers  []RankedOffer `json:"offers"`
}
