package signals

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"time"
)

// Type is the kind of a visitor signal.
type Type string

// The event types Kairos understands. Weights for the learning types are in
// Weights; the others feed sessions, rules, offers and experiments.
const (
	TypeView       Type = "view"        // a page or item view
	TypeClick      Type = "click"       // a click on an item or offer
	TypeLike       Type = "like"        // an explicit like
	TypeDwell      Type = "dwell"       // cursor dwell over an element (gaze proxy); Value in ms
	TypeScroll     Type = "scroll"      // scroll depth reached; Value in percent
	TypeAddToCart  Type = "add_to_cart" // item added to the cart
	TypeConversion Type = "conversion"  // purchase or goal; Value is revenue
	TypeImpression Type = "impression"  // an item or offer was shown
	TypeIdentify   Type = "identify"    // anonymous visitor becomes User
	TypeExit       Type = "exit"        // exit intent: cursor left the viewport through the top
)

// The dwell sources (Event.Source): how the tracker measured a dwell.
const (
	SourceMouse    = "mouse"    // the mouse pointer rested on the element (the default)
	SourceViewport = "viewport" // the element was >= 50 % visible, page visible, scrolling stopped
	SourceTouch    = "touch"    // a finger rested on the element
)

// Event is one visitor signal. The JSON form is the same on HTTP and on
// RabbitMQ (see the README, "Event schema").
type Event struct {
	// ID is client-generated and unique per event: the de-duplication key
	// that makes re-delivery harmless.
	ID string `json:"id"`
	// Type is the kind of signal.
	Type Type `json:"type"`
	// Visitor is the anonymous (or known) visitor id; it partitions the stream.
	Visitor string `json:"visitor"`
	// User is the known user id, when the visitor is logged in.
	User string `json:"user,omitempty"`
	// UserHash proves User when the event comes from a browser: the hex
	// HMAC-SHA256 of User under the site's identity secret (UserHash),
	// computed by the site's back end. The HTTP collector verifies it and
	// removes it before publishing; it is never stored, and events
	// consumed from the broker drop it (server-side producers are trusted).
	UserHash string `json:"user_hash,omitempty"`
	// Item is the item the signal is about (required for learning types).
	Item string `json:"item,omitempty"`
	// Offer is the offer the signal is about, if any.
	Offer string `json:"offer,omitempty"`
	// Token ties an impression, click or conversion to an offer exposure.
	Token string `json:"token,omitempty"`
	// Time is when the event happened; RFC 3339 or epoch milliseconds on the
	// wire. Zero means "when received".
	Time Timestamp `json:"ts"`
	// Value is dwell ms, scroll percent or revenue, depending on Type.
	Value float64 `json:"value,omitempty"`
	// Session is the tracker's session id.
	Session string `json:"session,omitempty"`
	// Page is the page URL.
	Page string `json:"page,omitempty"`
	// Element identifies the marked element of a dwell or click
	// (for attention heat), e.g. "item:42" or a CSS id.
	Element string `json:"element,omitempty"`
	// Source is how the attention of a dwell was measured: "mouse" (the
	// pointer rested on the element; the default when empty), "viewport"
	// (the element was at least half visible in a visible page while
	// scrolling had stopped) or "touch" (a finger rested on it). Only
	// dwell events carry it; see the Source constants and Weights.
	Source string `json:"source,omitempty"`
	// Referrer is the document referrer of a page view.
	Referrer string `json:"referrer,omitempty"`
	// Props holds any further attributes (utm_*, device, …).
	Props map[string]string `json:"props,omitempty"`
}

// Timestamp is a time that decodes from an RFC 3339 string or a number of
// epoch milliseconds and encodes as RFC 3339 with milliseconds (UTC).
type Timestamp struct{ time.Time }

// MarshalJSON encodes t as RFC 3339 (UTC, millisecond precision), or null
// when zero.
func (t Timestamp) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return []byte(`"` + t.UTC().Format("2006-01-02T15:04:05.000Z07:00") + `"`), nil
}

// UnmarshalJSON accepts an RFC 3339 string, epoch milliseconds as a number
// or a numeric string, or null. Errors are *FieldError values for "ts".
func (t *Timestamp) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "null" {
		t.Time = time.Time{}
		return nil
	}
	if b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return &FieldError{Field: "ts", Reason: err.Error()}
		}
		if s == "" {
			t.Time = time.Time{}
			return nil
		}
		if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
			return t.setMillis(float64(ms))
		}
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return fieldErr("ts", "%s is neither RFC 3339 nor epoch milliseconds", quoteShort(s))
		}
		if v.IsZero() { // would read as absent, i.e. the receive time
			return fieldErr("ts", "%s is the zero time (leave ts out for the receive time)", quoteShort(s))
		}
		t.Time = v
		return nil
	}
	ms, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fieldErr("ts", "%s is neither RFC 3339 nor epoch milliseconds", shortJSON(b))
	}
	return t.setMillis(ms)
}

// maxEpochMillis is year 9999; larger numbers are certainly not epoch ms.
const maxEpochMillis = 253402300799999

func (t *Timestamp) setMillis(ms float64) error {
	if math.IsNaN(ms) || ms < 0 || ms > maxEpochMillis {
		return fieldErr("ts", "%s is out of range for epoch milliseconds", formatFloat(ms))
	}
	t.Time = time.UnixMilli(int64(ms)).UTC()
	return nil
}
