package client

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Event is an event as POST /v1/events takes it (the schema of
// signals.Event). ID is the de-duplication key: SendEvents gives an event
// without one a random id before the first try. Time zero is the
// server's receive time.
type Event struct {
	ID       string            `json:"id"`
	Type     string            `json:"type"`
	Visitor  string            `json:"visitor"`
	User     string            `json:"user,omitempty"`
	UserHash string            `json:"user_hash,omitempty"`
	Item     string            `json:"item,omitempty"`
	Offer    string            `json:"offer,omitempty"`
	Token    string            `json:"token,omitempty"`
	Time     time.Time         `json:"-"`
	Value    float64           `json:"value,omitempty"`
	Session  string            `json:"session,omitempty"`
	Page     string            `json:"page,omitempty"`
	Element  string            `json:"element,omitempty"`
	Source   string            `json:"source,omitempty"` // dwell: "mouse", "viewport" or "touch"
	Referrer string            `json:"referrer,omitempty"`
	Props    map[string]string `json:"props,omitempty"`
}

// MarshalJSON writes ts as RFC 3339 (omitted when zero).
func (e Event) MarshalJSON() ([]byte, error) {
	type plain Event
	var ts string
	if !e.Time.IsZero() {
		ts = e.Time.UTC().Format(time.RFC3339Nano)
	}
	return json.Marshal(struct {
		plain
		TS string `json:"ts,omitempty"`
	}{plain(e), ts})
}

// Rejection is an event the server refused, with the field and reason;
// sending it again unchanged cannot succeed.
type Rejection struct {
	Index  int    `json:"index"` // in the slice given to SendEvents
	ID     string `json:"id,omitempty"`
	Field  string `json:"field,omitempty"`
	Reason string `json:"reason"`
}

// EventsResult adds up the answers of SendEvents' batches.
type EventsResult struct {
	Accepted int         `json:"accepted"`
	IDs      []string    `json:"ids"`
	Rejected []Rejection `json:"rejected"`
	// Applied is, with SendEventsWait, how many accepted events the
	// engine had applied when each batch was answered.
	Applied int `json:"applied,omitempty"`
}

// SendEvents sends events in batches of at most Options.MaxBatch, in
// order, retrying each batch with the same ids (see the package
// documentation). Events without an id get one (written into the
// slice). A batch whose every event is rejected is not an error: its
// rejections are in the result. It returns what was accepted before an
// error, and the error.
func (c *Client) SendEvents(ctx context.Context, events []Event) (EventsResult, error) {
	return c.SendEventsWait(ctx, events, 0)
}

// SendEventsWait is SendEvents whose batches are each answered once the
// engine has applied their events, or after wait (secret key; at most
// 10 s): a read that follows then sees them. Result.Applied says how
// many were applied in time.
func (c *Client) SendEventsWait(ctx context.Context, events []Event, wait time.Duration) (EventsResult, error) {
	var res EventsResult
	var q url.Values
	if wait > 0 {
		q = url.Values{"wait": {wait.String()}}
	}
	for i := range events {
		if events[i].ID == "" {
			events[i].ID = newID()
		}
	}
	for off := 0; off < len(events); off += c.opt.MaxBatch {
		batch := events[off:min(off+c.opt.MaxBatch, len(events))]
		var out EventsResult
		_, err := c.do(ctx, request{method: http.MethodPost, path: "/v1/events", query: q, body: batch, retry: true}, &out)
		var e *Error
		if errors.As(err, &e) && e.Status == http.StatusBadRequest && json.Unmarshal(e.Body, &out) == nil && out.Rejected != nil {
			err = nil // every event rejected: the rejections say why
		}
		if err != nil {
			return res, err
		}
		res.Accepted += out.Accepted
		res.Applied += out.Applied
		res.IDs = append(res.IDs, out.IDs...)
		for _, r := range out.Rejected {
			r.Index += off
			res.Rejected = append(res.Rejected, r)
		}
	}
	return res, nil
}

// Rec is a recommended or similar item.
type Rec struct {
	Item     string   `json:"item"`
	Score    float64  `json:"score"`
	Title    string   `json:"title,omitempty"`
	Category string   `json:"category,omitempty"`
	Because  []string `json:"because,omitempty"`
	// Promoted marks an item placed by a promotion's share (a named
	// filter with a share, RecQuery.FilterName).
	Promoted bool `json:"promoted,omitempty"`
}

// Variant is the experiment variant an answer served.
type Variant struct {
	Experiment string  `json:"id"`
	Variant    string  `json:"variant"`
	Propensity float64 `json:"propensity"`
}

// RecQuery asks GET /v1/recommendations.
type RecQuery struct {
	Visitor string // required
	User    string // the signed-in user, if any
	N       int    // 0: the server's default (10)
	// IncludeSeen keeps items the visitor already interacted with.
	IncludeSeen bool
	Category    string
	Explain     bool   // add Because items
	Item        string // context: the current page's item (cold start)
	// Rotation demotes items recently shown to the visitor, fading back
	// over this time (e.g. "30m"; "": the server's default, "0": none).
	Rotation string
	// Page is the Next token of the previous page: the next page repeats
	// none of the earlier pages' items.
	Page string
	// Filter, Boost and FilterName: see Expressions.
	Expressions
}

// Expressions are the filter and boost expressions of a request (Expr
// syntax; see PUT /v1/filters/{name} in the README): Filter keeps the
// items for which it holds, Boost multiplies their scores, FilterName
// names a stored filter (PutFilter). An invalid expression is an
// IsInvalid error naming its position.
type Expressions struct {
	Filter, Boost, FilterName string
}

func (x Expressions) set(v url.Values) {
	set(v, "filter", x.Filter)
	set(v, "boost", x.Boost)
	set(v, "filter_name", x.FilterName)
}

// Recommendations is the answer of GET /v1/recommendations.
type Recommendations struct {
	Visitor    string   `json:"visitor"`
	Strategy   string   `json:"strategy"` // als, blend, context, trending or catalog
	Items      []Rec    `json:"items"`
	Experiment *Variant `json:"experiment,omitempty"`
	// Holdout: the visitor is in the personalization holdout and got the
	// non-personalized baseline.
	Holdout bool `json:"holdout,omitempty"`
	// Next asks for the following page (RecQuery.Page); set when rotation
	// or paging was asked for.
	Next string `json:"next,omitempty"`
}

// Recommendations returns items for a visitor (secret key).
func (c *Client) Recommendations(ctx context.Context, q RecQuery) (Recommendations, error) {
	v := url.Values{"visitor": {q.Visitor}}
	set(v, "user", q.User)
	setInt(v, "n", q.N)
	set(v, "category", q.Category)
	set(v, "item", q.Item)
	set(v, "rotation", q.Rotation)
	set(v, "page", q.Page)
	q.Expressions.set(v)
	if q.IncludeSeen {
		v.Set("exclude_seen", "false")
	}
	if q.Explain {
		v.Set("explain", "true")
	}
	var out Recommendations
	_, err := c.do(ctx, request{method: http.MethodGet, path: "/v1/recommendations", query: v, retry: true}, &out)
	return out, err
}

// Similar returns up to n items similar to item (n 0: the default).
func (c *Client) Similar(ctx context.Context, item string, n int) ([]Rec, error) {
	return c.SimilarWith(ctx, item, n, Expressions{})
}

// SimilarWith is Similar with filter and boost expressions.
func (c *Client) SimilarWith(ctx context.Context, item string, n int, x Expressions) ([]Rec, error) {
	v := url.Values{}
	setInt(v, "n", n)
	x.set(v)
	var out struct {
		Items []Rec `json:"items"`
	}
	_, err := c.do(ctx, request{method: http.MethodGet, path: p("v1", "items", item, "similar"), query: v, retry: true}, &out)
	return out.Items, err
}

// Item is a catalog item. Created and Updated are set by the server.
type Item struct {
	ID         string            `json:"id"`
	Title      string            `json:"title,omitempty"`
	Category   string            `json:"category,omitempty"`
	Tags       []string          `json:"tags,omitempty"`
	Attributes map[string]string `json:"attributes,omitempty"`
	// Active items are recommended: nil (in a request) means true;
	// answers always set it. Inactive: Active: client.Bool(false).
	Active  *bool     `json:"active,omitempty"`
	Created time.Time `json:"created,omitzero"`
	Updated time.Time `json:"updated,omitzero"`
}

// PutItem creates or replaces an item (idempotent); created reports a
// new one.
func (c *Client) PutItem(ctx context.Context, it Item) (out Item, created bool, err error) {
	status, err := c.do(ctx, request{method: http.MethodPut, path: p("v1", "items", it.ID), body: it, retry: true, want: []int{200, 201}}, &out)
	return out, status == http.StatusCreated, err
}

// CreateItem creates an item; an existing id is a conflict (IsConflict).
func (c *Client) CreateItem(ctx context.Context, it Item) (Item, error) {
	var out Item
	_, err := c.do(ctx, request{method: http.MethodPost, path: "/v1/items", body: it, want: []int{201}}, &out)
	return out, err
}

// GetItem returns an item (IsNotFound when there is none).
func (c *Client) GetItem(ctx context.Context, id string) (Item, error) {
	var out Item
	_, err := c.do(ctx, request{method: http.MethodGet, path: p("v1", "items", id), retry: true}, &out)
	return out, err
}

// DeleteItem deletes an item (IsNotFound when there is none).
func (c *Client) DeleteItem(ctx context.Context, id string) error {
	_, err := c.do(ctx, request{method: http.MethodDelete, path: p("v1", "items", id), retry: true, want: []int{204}}, nil)
	return err
}

// Items lists up to limit items after the id after, in id order; next is
// the after of the following page, "" on the last one.
func (c *Client) Items(ctx context.Context, after string, limit int) (items []Item, next string, err error) {
	v := url.Values{}
	set(v, "after", after)
	setInt(v, "limit", limit)
	var out struct {
		Items []Item `json:"items"`
		Next  string `json:"next"`
	}
	_, err = c.do(ctx, request{method: http.MethodGet, path: "/v1/items", query: v, retry: true}, &out)
	return out.Items, out.Next, err
}

// Identified is the answer of Identify.
type Identified struct {
	AnonymousID string `json:"anonymous_id"`
	UserID      string `json:"user_id"`
	Event       string `json:"event"` // the identify event's id
	// Applied is, with IdentifyWait, whether the link was made (and the
	// user folded in) when the server answered; nil without a wait.
	Applied *bool `json:"applied,omitempty"`
}

// Identify links an anonymous visitor id to a user (secret key): the
// histories merge and the user is seeded from the tracking history.
// Retrying is harmless (the event id is derived from the pair).
func (c *Client) Identify(ctx context.Context, anonymousID, userID string) (Identified, error) {
	return c.IdentifyWait(ctx, anonymousID, userID, 0)
}

// IdentifyWait is Identify answered once the engine has made the link,
// or after wait (at most 10 s): the user's recommendations asked next
// come from the union of the histories.
func (c *Client) IdentifyWait(ctx context.Context, anonymousID, userID string, wait time.Duration) (Identified, error) {
	var out Identified
	var q url.Values
	if wait > 0 {
		q = url.Values{"wait": {wait.String()}}
	}
	_, err := c.do(ctx, request{method: http.MethodPost, path: "/v1/identify", query: q, retry: true,
		body: map[string]string{"anonymous_id": anonymousID, "user_id": userID}}, &out)
	return out, err
}

// EraseVisitor erases a visitor, or a user with every linked device
// (204: idempotent, see the API).
func (c *Client) EraseVisitor(ctx context.Context, id string) error {
	_, err := c.do(ctx, request{method: http.MethodDelete, path: p("v1", "visitors", id), retry: true, want: []int{204}}, nil)
	return err
}

// Offer is one of a visitor's ranked offers. Render Token as
// data-kairos-token (with data-kairos-offer) so that the tracker's
// impressions and clicks attribute to it.
type Offer struct {
	ID       string  `json:"id"`
	Title    string  `json:"title,omitempty"`
	Body     string  `json:"body,omitempty"`
	Image    string  `json:"image,omitempty"`
	Link     string  `json:"link,omitempty"`
	Item     string  `json:"item,omitempty"`
	Slot     string  `json:"slot"`
	Token    string  `json:"token"`
	Campaign string  `json:"campaign,omitempty"`
	Score    float64 `json:"score"`
}

// OfferQuery asks GET /v1/offers for a visitor.
type OfferQuery struct {
	Visitor  string // required
	Slot     string // "": every slot
	N        int
	User     string
	UserHash string // with the publishable key under identity verification
	Expressions
}

// Offers is the answer of Offers.
type Offers struct {
	Visitor    string   `json:"visitor"`
	Slot       string   `json:"slot,omitempty"`
	Offers     []Offer  `json:"offers"`
	Experiment *Variant `json:"experiment,omitempty"`
}

// Offers returns a visitor's best eligible offers of a slot (secret or
// publishable key).
func (c *Client) Offers(ctx context.Context, q OfferQuery) (Offers, error) {
	v := url.Values{"visitor": {q.Visitor}}
	set(v, "slot", q.Slot)
	setInt(v, "n", q.N)
	set(v, "user", q.User)
	set(v, "user_hash", q.UserHash)
	q.Expressions.set(v)
	var out Offers
	_, err := c.do(ctx, request{method: http.MethodGet, path: "/v1/offers", query: v, retry: true}, &out)
	return out, err
}

// PutDefinition creates or replaces an offer, campaign, rule or
// experiment (kind "offers", "campaigns", "rules" or "experiments") from
// its JSON (engine/promo, engine/experiments); out, when not nil,
// receives the answer. created reports a new one.
func (c *Client) PutDefinition(ctx context.Context, kind, id string, def, out any) (created bool, err error) {
	status, err := c.do(ctx, request{method: http.MethodPut, path: p("v1", kind, id), body: def, retry: true, want: []int{200, 201}}, out)
	return status == http.StatusCreated, err
}

// GetDefinition reads an offer, campaign, rule or experiment into out.
func (c *Client) GetDefinition(ctx context.Context, kind, id string, out any) error {
	_, err := c.do(ctx, request{method: http.MethodGet, path: p("v1", kind, id), retry: true}, out)
	return err
}

// DeleteDefinition deletes an offer, campaign, rule or experiment.
func (c *Client) DeleteDefinition(ctx context.Context, kind, id string) error {
	_, err := c.do(ctx, request{method: http.MethodDelete, path: p("v1", kind, id), retry: true, want: []int{204}}, nil)
	return err
}

// Experiment is the part of an experiment most callers read; the API's
// JSON has more (engine/experiments), which GetDefinition reads.
type Experiment struct {
	ID       string `json:"id"`
	Status   string `json:"status"` // scheduled, running or stopped
	Metric   string `json:"metric"`
	Variants []struct {
		Name   string  `json:"name"`
		Weight float64 `json:"weight"`
	} `json:"variants"`
}

// ExperimentResults is the part of GET /v1/experiments/{id}/results most
// callers read: the units per variant, the verdict and the raw report.
type ExperimentResults struct {
	Status  string `json:"status"`
	Verdict string `json:"verdict"`
	Counts  []struct {
		Variant     string  `json:"variant"`
		Units       int64   `json:"units"`
		Clicks      int64   `json:"clicks"`
		Conversions int64   `json:"conversions"`
		Revenue     float64 `json:"revenue"`
	} `json:"counts"`
	Report json.RawMessage `json:"report"`
	// Input is what `kairos eval abtest` reads.
	Input json.RawMessage `json:"input"`
}

// Experiments lists the experiments.
func (c *Client) Experiments(ctx context.Context) ([]Experiment, error) {
	var out struct {
		Experiments []Experiment `json:"experiments"`
	}
	_, err := c.do(ctx, request{method: http.MethodGet, path: "/v1/experiments", retry: true}, &out)
	return out.Experiments, err
}

// ExperimentResults returns an experiment's results (without the
// history).
func (c *Client) ExperimentResults(ctx context.Context, id string) (ExperimentResults, error) {
	var out ExperimentResults
	_, err := c.do(ctx, request{method: http.MethodGet, path: p("v1", "experiments", id, "results"), query: url.Values{"history": {"false"}}, retry: true}, &out)
	return out, err
}

// StatsPoint is one bucket of event counters.
type StatsPoint struct {
	T       time.Time        `json:"t"`
	Counts  map[string]int64 `json:"counts"`
	Revenue float64          `json:"revenue"`
	DwellMs float64          `json:"dwell_ms"`
}

// Stats is the answer of ItemStats and OfferStats.
type Stats struct {
	Resolution string       `json:"resolution"`
	From       time.Time    `json:"from"`
	To         time.Time    `json:"to"`
	Points     []StatsPoint `json:"points"`
}

// ItemStats returns an item's event counters per resolution ("15m",
// "1h" or "1d"; "" the default) between from and to (zero: defaults).
func (c *Client) ItemStats(ctx context.Context, item, resolution string, from, to time.Time) (Stats, error) {
	return c.stats(ctx, "items", item, resolution, from, to)
}

// OfferStats is ItemStats for an offer.
func (c *Client) OfferStats(ctx context.Context, offer, resolution string, from, to time.Time) (Stats, error) {
	return c.stats(ctx, "offers", offer, resolution, from, to)
}

func (c *Client) stats(ctx context.Context, kind, id, res string, from, to time.Time) (Stats, error) {
	v := url.Values{}
	set(v, "resolution", res)
	if !from.IsZero() {
		v.Set("from", from.UTC().Format(time.RFC3339))
	}
	if !to.IsZero() {
		v.Set("to", to.UTC().Format(time.RFC3339))
	}
	var out Stats
	_, err := c.do(ctx, request{method: http.MethodGet, path: p("v1", "stats", kind, id), query: v, retry: true}, &out)
	return out, err
}

// Attention is the attention heat of a page.
type Attention struct {
	Page     string `json:"page"`
	TotalMs  int64  `json:"total_ms"`
	Count    int    `json:"count"`
	Elements []struct {
		Element string  `json:"element"`
		Item    string  `json:"item,omitempty"`
		Offer   string  `json:"offer,omitempty"`
		DwellMs int64   `json:"dwell_ms"`
		Share   float64 `json:"share"`
		Rank    int     `json:"rank"`
	} `json:"elements"`
}

// PageAttention returns the cursor dwell of a page's marked elements,
// most dwelt on first (n 0: the default).
func (c *Client) PageAttention(ctx context.Context, page string, n int) (Attention, error) {
	v := url.Values{"page": {page}}
	setInt(v, "n", n)
	var out Attention
	_, err := c.do(ctx, request{method: http.MethodGet, path: "/v1/pages/attention", query: v, retry: true}, &out)
	return out, err
}

// Bool returns a pointer to b (for Item.Active).
func Bool(b bool) *bool { return &b }

func set(v url.Values, k, s string) {
	if s != "" {
		v.Set(k, s)
	}
}

func setInt(v url.Values, k string, n int) {
	if n != 0 {
		v.Set(k, strconv.Itoa(n))
	}
}
