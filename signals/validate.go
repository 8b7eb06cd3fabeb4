package signals

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kairoshq/kairos/internal/defaults"
	"github.com/kairoshq/kairos/internal/errs"
)

// ErrInvalid is matched (with errors.Is) by every *FieldError: the event or
// batch is malformed and retrying it unchanged cannot succeed.
var ErrInvalid = fmt.Errorf("%w event", errs.Invalid)

// FieldError reports why an event is invalid, naming the JSON field at fault
// ("visitor", "value", "ts", ...) or "" when the event as a whole is at fault
// (for example, it is not a JSON object). Error returns "field: reason".
type FieldError struct {
	Field  string // JSON name of the offending field, "" for the whole event
	Reason string // human-readable reason, e.g. "missing" or "NaN is not a number"
}

// Error returns "field: reason", or the reason alone when Field is empty.
func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return e.Field + ": " + e.Reason
}

// Is makes errors.Is(err, ErrInvalid) true for every *FieldError.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid || target == errs.Invalid }

func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Limits bounds what Validate and the decoders accept. A zero field means
// its default, so Limits{} behaves like DefaultLimits(); Limits.Validate
// reports negative fields (the checks then use the default).
type Limits struct {
	// MaxIDBytes bounds id, visitor, user, item, offer and session
	// (default 200 bytes: the visitor id is the AMQP routing key and the
	// event id the message-id, both limited to 255 bytes by AMQP).
	MaxIDBytes int
	// MaxTextBytes bounds page, referrer, element and token (default 2048).
	MaxTextBytes int
	// MaxProps bounds the number of props keys (default 32).
	MaxProps int
	// MaxPropKeyBytes bounds each props key (default 200).
	MaxPropKeyBytes int
	// MaxPropValueBytes bounds each props value (default 1024).
	MaxPropValueBytes int
	// MaxFutureSkew is how far ts may lie after now (clock skew of the
	// client; default 10 minutes).
	MaxFutureSkew time.Duration
	// MaxPastAge is how far ts may lie before now (default 5 years of 365
	// days; older events are rejected, not silently kept).
	MaxPastAge time.Duration
	// MaxDwellMs is the largest dwell value in ms (default 3,600,000 = 1 h).
	MaxDwellMs float64
	// MaxRevenue is the largest conversion value (default 1e9).
	MaxRevenue float64
	// MaxValue is the largest value of every other type (default 1e9).
	// Scroll values are percentages and always limited to 0..100.
	MaxValue float64
	// MaxBatch is the largest number of events in one DecodeBatch body
	// (default 500).
	MaxBatch int
	// MaxBatchBytes is the largest body DecodeBatch reads (default 1 MiB);
	// the HTTP layer should limit the body to the same size first.
	MaxBatchBytes int
	// MaxEventBytes is the largest encoded event, in a batch or as a
	// single message body (default 64 KiB).
	MaxEventBytes int
}

// Default limits; see the Limits fields.
const (
	DefaultMaxIDBytes        = 200
	DefaultMaxTextBytes      = 2048
	DefaultMaxProps          = 32
	DefaultMaxPropKeyBytes   = 200
	DefaultMaxPropValueBytes = 1024
	DefaultMaxFutureSkew     = 10 * time.Minute
	DefaultMaxPastAge        = 5 * 365 * 24 * time.Hour
	DefaultMaxDwellMs        = 3_600_000
	DefaultMaxRevenue        = 1e9
	DefaultMaxValue          = 1e9
	DefaultMaxBatch          = 500
	DefaultMaxBatchBytes     = 1 << 20
	DefaultMaxEventBytes     = 64 << 10
	// MaxScrollPercent is the largest scroll value (a percentage).
	MaxScrollPercent = 100
)

// Defaults returns a copy of l with every zero field set to its default
// (see the Limits fields); Limits{}.Defaults() is the full default set.
func (l Limits) Defaults() Limits {
	defaults.Set(&l.MaxIDBytes, DefaultMaxIDBytes)
	defaults.Set(&l.MaxTextBytes, DefaultMaxTextBytes)
	defaults.Set(&l.MaxProps, DefaultMaxProps)
	defaults.Set(&l.MaxPropKeyBytes, DefaultMaxPropKeyBytes)
	defaults.Set(&l.MaxPropValueBytes, DefaultMaxPropValueBytes)
	defaults.Set(&l.MaxFutureSkew, DefaultMaxFutureSkew)
	defaults.Set(&l.MaxPastAge, DefaultMaxPastAge)
	defaults.Set(&l.MaxDwellMs, DefaultMaxDwellMs)
	defaults.Set(&l.MaxRevenue, DefaultMaxRevenue)
	defaults.Set(&l.MaxValue, DefaultMaxValue)
	defaults.Set(&l.MaxBatch, DefaultMaxBatch)
	defaults.Set(&l.MaxBatchBytes, DefaultMaxBatchBytes)
	defaults.Set(&l.MaxEventBytes, DefaultMaxEventBytes)
	return l
}

// DefaultLimits returns Limits{}.Defaults().
func DefaultLimits() Limits { return Limits{}.Defaults() }

// resolved returns l.Defaults() with every invalid field (negative, NaN,
// infinite; see Validate) also set to its default, so that checks never
// run with nonsense bounds.
func (l Limits) resolved() Limits {
	d := DefaultLimits()
	l = l.Defaults()
	fixInt := func(v *int, def int) {
		if *v < 0 {
			*v = def
		}
	}
	fixDur := func(v *time.Duration, def time.Duration) {
		if *v < 0 {
			*v = def
		}
	}
	fixF := func(v *float64, def float64) {
		if !(*v >= 0) || math.IsInf(*v, 0) {
			*v = def
		}
	}
	fixInt(&l.MaxIDBytes, d.MaxIDBytes)
	fixInt(&l.MaxTextBytes, d.MaxTextBytes)
	fixInt(&l.MaxProps, d.MaxProps)
	fixInt(&l.MaxPropKeyBytes, d.MaxPropKeyBytes)
	fixInt(&l.MaxPropValueBytes, d.MaxPropValueBytes)
	fixDur(&l.MaxFutureSkew, d.MaxFutureSkew)
	fixDur(&l.MaxPastAge, d.MaxPastAge)
	fixF(&l.MaxDwellMs, d.MaxDwellMs)
	fixF(&l.MaxRevenue, d.MaxRevenue)
	fixF(&l.MaxValue, d.MaxValue)
	fixInt(&l.MaxBatch, d.MaxBatch)
	fixInt(&l.MaxBatchBytes, d.MaxBatchBytes)
	fixInt(&l.MaxEventBytes, d.MaxEventBytes)
	return l
}

// Validate reports every negative or non-finite field at once (zero fields
// are fine: they mean the default).
func (l Limits) Validate() error {
	var errs []error
	ints := []struct {
		name string
		v    int
	}{
		{"MaxIDBytes", l.MaxIDBytes}, {"MaxTextBytes", l.MaxTextBytes}, {"MaxProps", l.MaxProps},
		{"MaxPropKeyBytes", l.MaxPropKeyBytes}, {"MaxPropValueBytes", l.MaxPropValueBytes},
		{"MaxBatch", l.MaxBatch}, {"MaxBatchBytes", l.MaxBatchBytes}, {"MaxEventBytes", l.MaxEventBytes},
	}
	for _, f := range ints {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("limits: %s is negative (%d)", f.name, f.v))
		}
	}
	if l.MaxIDBytes > 255 {
		errs = append(errs, fmt.Errorf("limits: MaxIDBytes %d exceeds 255, the AMQP limit for routing keys and message ids", l.MaxIDBytes))
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{{"MaxFutureSkew", l.MaxFutureSkew}, {"MaxPastAge", l.MaxPastAge}} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("limits: %s is negative (%v)", f.name, f.v))
		}
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"MaxDwellMs", l.MaxDwellMs}, {"MaxRevenue", l.MaxRevenue}, {"MaxValue", l.MaxValue}} {
		if f.v < 0 || math.IsNaN(f.v) || math.IsInf(f.v, 0) {
			errs = append(errs, fmt.Errorf("limits: %s must be a finite non-negative number (got %v)", f.name, f.v))
		}
	}
	return errors.Join(errs...)
}

// allTypes lists the known types in documentation order.
var allTypes = []Type{
	TypeView, TypeClick, TypeLike, TypeDwell, TypeScroll, TypeAddToCart,
	TypeConversion, TypeImpression, TypeIdentify, TypeExit,
}

var validTypesText = func() string {
	s := make([]string, len(allTypes))
	for i, t := range allTypes {
		s[i] = string(t)
	}
	return strings.Join(s, ", ")
}()

// Types returns every event type Kairos understands, in documentation order.
func Types() []Type { return append([]Type(nil), allTypes...) }

// Known reports whether t is one of the types listed by Types.
func (t Type) Known() bool {
	switch t {
	case TypeView, TypeClick, TypeLike, TypeDwell, TypeScroll, TypeAddToCart,
		TypeConversion, TypeImpression, TypeIdentify, TypeExit:
		return true
	}
	return false
}

// Learning reports whether events of type t train the model (view, click,
// like, dwell, add_to_cart, conversion). Learning events require Item.
func (t Type) Learning() bool {
	switch t {
	case TypeView, TypeClick, TypeLike, TypeDwell, TypeAddToCart, TypeConversion:
		return true
	}
	return false
}

// Normalize prepares a decoded event for Validate and for the stream:
// a missing (zero) ts becomes now, ts is converted to UTC and truncated to
// the millisecond (the precision of the wire format, so an event is the same
// whether it crossed RabbitMQ as JSON or stayed in process), and empty Props
// become nil. DecodeEvent and DecodeBatch call it before Validate; code that
// builds events in Go should call it too.
func (e *Event) Normalize(now time.Time) {
	if e.Time.IsZero() {
		e.Time.Time = now
	}
	e.Time.Time = e.Time.UTC().Truncate(time.Millisecond)
	if len(e.Props) == 0 {
		e.Props = nil
	}
}

// Validate checks e against the schema and the limits l (zero fields of l
// mean their defaults) and returns nil or a *FieldError naming the first
// offending field, in the order id, type, visitor, user, item, offer,
// user_hash, token, session, element, page, referrer, source, ts, value,
// props. now is the receive time that bounds ts.
//
// Rules: id, type and visitor are required; like and add_to_cart require
// item; click and dwell require item or offer (a click on an offer or a
// promotion); a view without item is a page view (home, category and
// landing pages: it feeds sessions and cold-start context but does not
// train the model), and a conversion without item is a site-level goal
// (an order total); identify requires user; source is allowed on dwell
// only, as one of mouse, viewport, touch. Only events with an item
// train the model (see Weights). Ids (id, visitor, user, item, offer,
// session) pass CheckID: valid UTF-8 without control or bidirectional
// control characters, at most MaxIDBytes; the visitor may not start with a
// reserved prefix (CheckVisitorID). user_hash needs user and is at most
// MaxUserHashBytes (Validate does not verify it: see VerifyUserHash). All
// other strings are valid UTF-8 within their limits. ts is required (Normalize fills it) and
// lies within [now-MaxPastAge, now+MaxFutureSkew]. value is a finite,
// non-negative number: dwell ms up to MaxDwellMs, scroll percent up to 100,
// conversion revenue up to MaxRevenue, anything else up to MaxValue.
func (e *Event) Validate(now time.Time, l Limits) error {
	if err := e.validate(now, l.resolved()); err != nil {
		return err
	}
	return nil
}

func (e *Event) validate(now time.Time, l Limits) *FieldError {
	if e.ID == "" {
		return fieldErr("id", "missing")
	}
	if err := CheckID("id", e.ID, l.MaxIDBytes); err != nil {
		return err
	}
	if e.Type == "" {
		return fieldErr("type", "missing (valid types: %s)", validTypesText)
	}
	if !e.Type.Known() {
		return fieldErr("type", "unknown type %s (valid types: %s)", quoteShort(string(e.Type)), validTypesText)
	}
	if e.Visitor == "" {
		return fieldErr("visitor", "missing")
	}
	if err := CheckVisitorID("visitor", e.Visitor, l.MaxIDBytes); err != nil {
		return err
	}
	for _, f := range []struct {
		name, v string
	}{
		{"user", e.User}, {"item", e.Item}, {"offer", e.Offer},
	} {
		if err := CheckID(f.name, f.v, l.MaxIDBytes); err != nil {
			return err
		}
	}
	if e.Type == TypeIdentify && e.User == "" {
		return fieldErr("user", "missing (required for identify)")
	}
	if e.UserHash != "" {
		if e.User == "" {
			return fieldErr("user_hash", "given without user")
		}
		if err := checkText("user_hash", e.UserHash, MaxUserHashBytes); err != nil {
			return err
		}
	}
	if e.Item == "" {
		switch e.Type {
		case TypeLike, TypeAddToCart:
			return fieldErr("item", "missing (required for %s)", e.Type)
		case TypeClick, TypeDwell:
			if e.Offer == "" {
				return fieldErr("item", "missing (a %s needs an item or an offer)", e.Type)
			}
		}
	}
	if err := checkText("token", e.Token, l.MaxTextBytes); err != nil {
		return err
	}
	if err := CheckID("session", e.Session, l.MaxIDBytes); err != nil {
		return err
	}
	for _, f := range []struct {
		name, v string
	}{
		{"element", e.Element}, {"page", e.Page}, {"referrer", e.Referrer},
	} {
		if err := checkText(f.name, f.v, l.MaxTextBytes); err != nil {
			return err
		}
	}
	if err := checkSource(e.Type, e.Source); err != nil {
		return err
	}
	if err := checkTime(e.Time.Time, now, l); err != nil {
		return err
	}
	if err := checkValue(e.Type, e.Value, l); err != nil {
		return err
	}
	return checkProps(e.Props, l)
}

// checkSource allows a source on dwell events only, and only one of the
// Source constants.
func checkSource(t Type, src string) *FieldError {
	switch {
	case src == "":
		return nil
	case t != TypeDwell:
		return fieldErr("source", "only dwell events have a source (this is a %s)", t)
	case src == SourceMouse || src == SourceViewport || src == SourceTouch:
		return nil
	}
	return fieldErr("source", "unknown source %s (valid sources: mouse, viewport, touch)", quoteShort(src))
}

func checkText(field, v string, max int) *FieldError {
	if len(v) > max {
		return fieldErr(field, "%d bytes long, more than the maximum %d", len(v), max)
	}
	if !utf8.ValidString(v) {
		return fieldErr(field, "not valid UTF-8")
	}
	return nil
}

const tsLayout = "2006-01-02T15:04:05.000Z07:00"

func checkTime(ts, now time.Time, l Limits) *FieldError {
	if ts.IsZero() {
		return fieldErr("ts", "missing (Normalize fills it with the receive time)")
	}
	if ts.After(now.Add(l.MaxFutureSkew)) {
		return fieldErr("ts", "%s is more than %v in the future", ts.UTC().Format(tsLayout), l.MaxFutureSkew)
	}
	if ts.Before(now.Add(-l.MaxPastAge)) {
		return fieldErr("ts", "%s is more than %v in the past", ts.UTC().Format(tsLayout), l.MaxPastAge)
	}
	return nil
}

// formatFloat prints v without an exponent unless it is very large or
// very small.
func formatFloat(v float64) string {
	if a := math.Abs(v); a == 0 || (a >= 1e-6 && a < 1e21) {
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

func checkValue(t Type, v float64, l Limits) *FieldError {
	switch {
	case math.IsNaN(v):
		return fieldErr("value", "NaN is not a number")
	case math.IsInf(v, 0):
		return fieldErr("value", "%s is not a finite number", formatFloat(v))
	case v < 0:
		return fieldErr("value", "%s is negative", formatFloat(v))
	}
	var max float64
	var what string
	switch t {
	case TypeDwell:
		max, what = l.MaxDwellMs, "dwell (ms)"
	case TypeScroll:
		max, what = MaxScrollPercent, "scroll (percent)"
	case TypeConversion:
		max, what = l.MaxRevenue, "conversion (revenue)"
	default:
		max, what = l.MaxValue, string(t)
	}
	if v > max {
		return fieldErr("value", "%s is above the maximum %s for %s", formatFloat(v), formatFloat(max), what)
	}
	return nil
}

func checkProps(p map[string]string, l Limits) *FieldError {
	if len(p) > l.MaxProps {
		return fieldErr("props", "%d keys, more than the maximum %d", len(p), l.MaxProps)
	}
	for k, v := range p {
		if checkProp(k, v, l) != nil {
			// Report the smallest offending key, so the message does not
			// depend on the map's iteration order.
			keys := make([]string, 0, len(p))
			for k := range p {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				if err := checkProp(k, p[k], l); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func checkProp(k, v string, l Limits) *FieldError {
	switch {
	case k == "":
		return fieldErr("props", "empty key")
	case len(k) > l.MaxPropKeyBytes:
		return fieldErr("props", "key %s is %d bytes long, more than the maximum %d", quoteShort(k), len(k), l.MaxPropKeyBytes)
	case !utf8.ValidString(k):
		return fieldErr("props", "key %s is not valid UTF-8", quoteShort(k))
	case len(v) > l.MaxPropValueBytes:
		return fieldErr("props", "value of %s is %d bytes long, more than the maximum %d", quoteShort(k), len(v), l.MaxPropValueBytes)
	case !utf8.ValidString(v):
		return fieldErr("props", "value of %s is not valid UTF-8", quoteShort(k))
	}
	return nil
}

// quoteShort quotes s for an error message, cut to 40 bytes.
func quoteShort(s string) string {
	const max = 40
	if len(s) <= max {
		return strconv.Quote(s)
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "…"
}
