package signals

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
)

var testNow = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

// validEvent returns a valid view event; tests mutate it.
func validEvent() Event {
	return Event{
		ID: "e1", Type: TypeView, Visitor: "v1", Item: "i1",
		Time: Timestamp{testNow.Add(-time.Minute)},
	}
}

func TestValidate(t *testing.T) {
	long := strings.Repeat("x", 201)
	tests := []mutation{
		{"valid view", func(e *Event) {}, "", ""},
		{"missing id", func(e *Event) { e.ID = "" }, "id", "missing"},
		{"id too long", func(e *Event) { e.ID = long }, "id", "201 bytes long, more than the maximum 200"},
		{"id 200 bytes ok", func(e *Event) { e.ID = long[:200] }, "", ""},
		{"id control char", func(e *Event) { e.ID = "a\nb" }, "id", "control character"},
		{"id invalid utf8", func(e *Event) { e.ID = "a\xffb" }, "id", "not valid UTF-8"},
		{"missing type", func(e *Event) { e.Type = "" }, "type", "missing (valid types: view, click, like, dwell, scroll, add_to_cart, conversion, impression, identify, exit)"},
		{"unknown type", func(e *Event) { e.Type = "hover" }, "type", `unknown type "hover" (valid types: view, click`},
		{"missing visitor", func(e *Event) { e.Visitor = "" }, "visitor", "missing"},
		{"visitor too long", func(e *Event) { e.Visitor = long }, "visitor", "more than the maximum 200"},
		{"user too long", func(e *Event) { e.User = long }, "user", "more than the maximum 200"},
		{"offer too long", func(e *Event) { e.Offer = long }, "offer", "more than the maximum 200"},
		{"item too long", func(e *Event) { e.Item = long }, "item", "more than the maximum 200"},
		{"session too long", func(e *Event) { e.Session = long }, "session", "more than the maximum 200"},
		{"view without item is a page view", func(e *Event) { e.Item = "" }, "", ""},
		{"conversion without item is a goal", func(e *Event) { e.Type, e.Item = TypeConversion, "" }, "", ""},
		{"like needs item", func(e *Event) { e.Type, e.Item = TypeLike, "" }, "item", "missing (required for like)"},
		{"add_to_cart needs item", func(e *Event) { e.Type, e.Item = TypeAddToCart, "" }, "item", "missing (required for add_to_cart)"},
		{"click needs item or offer", func(e *Event) { e.Type, e.Item = TypeClick, "" }, "item", "needs an item or an offer"},
		{"click on an offer", func(e *Event) { e.Type, e.Item, e.Offer = TypeClick, "", "o1" }, "", ""},
		{"dwell on an offer", func(e *Event) { e.Type, e.Item, e.Offer, e.Value = TypeDwell, "", "o1", 500 }, "", ""},
		{"dwell from the viewport", func(e *Event) { e.Type, e.Value, e.Source = TypeDwell, 500, SourceViewport }, "", ""},
		{"dwell from a touch", func(e *Event) { e.Type, e.Value, e.Source = TypeDwell, 500, SourceTouch }, "", ""},
		{"dwell from the mouse", func(e *Event) { e.Type, e.Value, e.Source = TypeDwell, 500, SourceMouse }, "", ""},
		{"dwell from an unknown source", func(e *Event) { e.Type, e.Value, e.Source = TypeDwell, 500, "gaze" }, "source", `unknown source "gaze" (valid sources: mouse, viewport, touch)`},
		{"source on a click", func(e *Event) { e.Type, e.Source = TypeClick, SourceTouch }, "source", "only dwell events have a source (this is a click)"},
		{"impression needs no item", func(e *Event) { e.Type, e.Item = TypeImpression, "" }, "", ""},
		{"identify needs user", func(e *Event) { e.Type = TypeIdentify }, "user", "missing (required for identify)"},
		{"identify with user", func(e *Event) { e.Type, e.User, e.Item = TypeIdentify, "u1", "" }, "", ""},
		{"exit without item", func(e *Event) { e.Type, e.Item = TypeExit, "" }, "", ""},
		{"page 2048 ok", func(e *Event) { e.Page = strings.Repeat("p", 2048) }, "", ""},
		{"page too long", func(e *Event) { e.Page = strings.Repeat("p", 2049) }, "page", "2049 bytes long, more than the maximum 2048"},
		{"referrer too long", func(e *Event) { e.Referrer = strings.Repeat("p", 2049) }, "referrer", "more than the maximum 2048"},
		{"page control chars ok", func(e *Event) { e.Page = "https://x/\t" }, "", ""},
		{"page invalid utf8", func(e *Event) { e.Page = "\xc3" }, "page", "not valid UTF-8"},
		{"missing ts", func(e *Event) { e.Time = Timestamp{} }, "ts", "missing"},
		{"ts 10m ahead ok", func(e *Event) { e.Time.Time = testNow.Add(10 * time.Minute) }, "", ""},
		{"ts too far ahead", func(e *Event) { e.Time.Time = time.Date(2031, 1, 2, 3, 4, 5, 0, time.UTC) }, "ts", "2031-01-02T03:04:05.000Z is more than 10m0s in the future"},
		{"ts too old", func(e *Event) { e.Time.Time = testNow.AddDate(-6, 0, 0) }, "ts", "in the past"},
		{"ts 4 years old ok", func(e *Event) { e.Time.Time = testNow.AddDate(-4, 0, 0) }, "", ""},
		{"NaN value", func(e *Event) { e.Value = math.NaN() }, "value", "NaN is not a number"},
		{"Inf value", func(e *Event) { e.Value = math.Inf(1) }, "value", "+Inf is not a finite number"},
		{"negative value", func(e *Event) { e.Value = -1 }, "value", "-1 is negative"},
		{"dwell 1h ok", func(e *Event) { e.Type, e.Value = TypeDwell, 3_600_000 }, "", ""},
		{"dwell over 1h", func(e *Event) { e.Type, e.Value = TypeDwell, 3_600_001 }, "value", "3600001 is above the maximum 3600000 for dwell (ms)"},
		{"scroll 100 ok", func(e *Event) { e.Type, e.Item, e.Value = TypeScroll, "", 100 }, "", ""},
		{"scroll 101", func(e *Event) { e.Type, e.Item, e.Value = TypeScroll, "", 101 }, "value", "101 is above the maximum 100 for scroll (percent)"},
		{"revenue 1e9 ok", func(e *Event) { e.Type, e.Value = TypeConversion, 1e9 }, "", ""},
		{"revenue too high", func(e *Event) { e.Type, e.Value = TypeConversion, 2e9 }, "value", "for conversion (revenue)"},
		{"click value too high", func(e *Event) { e.Type, e.Value = TypeClick, 1e10 }, "value", "above the maximum 1000000000 for click"},
		{"32 props ok", func(e *Event) { e.Props = props(32, 1024) }, "", ""},
		{"33 props", func(e *Event) { e.Props = props(33, 1) }, "props", "33 keys, more than the maximum 32"},
		{"prop value too long", func(e *Event) { e.Props = props(3, 1025) }, "props", `value of "k0" is 1025 bytes long`},
		{"empty prop key", func(e *Event) { e.Props = map[string]string{"": "x"} }, "props", "empty key"},
		{"token too long", func(e *Event) { e.Token = strings.Repeat("t", 2049) }, "token", "more than the maximum 2048"},
		{"element too long", func(e *Event) { e.Element = strings.Repeat("t", 2049) }, "element", "more than the maximum 2048"},
	}
	checkMutations(t, tests)
}

// mutation is a case of Validate: a change to a valid event and the
// field and reason of the error it must cause.
type mutation struct {
	name   string
	mutate func(e *Event)
	field  string // "" = valid
	reason string // substring of the reason
}

// checkMutations validates validEvent changed by each mutation: a
// *FieldError wrapping ErrInvalid on the field named, or no error.
func checkMutations(t *testing.T, tests []mutation) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := validEvent()
			tt.mutate(&e)
			err := e.Validate(testNow, Limits{})
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Validate = %v (%T), want *FieldError", err, err)
			}
			if fe.Field != tt.field || !strings.Contains(fe.Reason, tt.reason) {
				t.Errorf("Validate = field %q reason %q, want field %q reason containing %q", fe.Field, fe.Reason, tt.field, tt.reason)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("errors.Is(%v, ErrInvalid) = false", err)
			}
			if want := tt.field + ": " + fe.Reason; err.Error() != want {
				t.Errorf("Error() = %q, want %q", err.Error(), want)
			}
		})
	}
}

func props(n, valueLen int) map[string]string {
	p := make(map[string]string, n)
	for i := range n {
		p["k"+strconv.Itoa(i)] = strings.Repeat("v", valueLen)
	}
	return p
}

func TestValidatePropsErrorIsDeterministic(t *testing.T) {
	e := validEvent()
	e.Props = map[string]string{}
	for i := range 10 {
		e.Props["k"+strconv.Itoa(i)] = strings.Repeat("v", 2000)
	}
	for range 20 {
		err := e.Validate(testNow, Limits{})
		if err == nil || !strings.Contains(err.Error(), `value of "k0"`) {
			t.Fatalf("Validate = %v, want the error about k0", err)
		}
	}
}

func TestValidateCustomLimits(t *testing.T) {
	l := Limits{MaxIDBytes: 4, MaxFutureSkew: time.Second, MaxDwellMs: 10}
	e := validEvent()
	e.ID = "12345"
	if err := e.Validate(testNow, l); err == nil || !strings.HasPrefix(err.Error(), "id: 5 bytes long, more than the maximum 4") {
		t.Errorf("id: got %v", err)
	}
	e = validEvent()
	e.Time.Time = testNow.Add(2 * time.Second)
	if err := e.Validate(testNow, l); err == nil || !strings.Contains(err.Error(), "more than 1s in the future") {
		t.Errorf("ts: got %v", err)
	}
	e = validEvent()
	e.Type, e.Value = TypeDwell, 11
	if err := e.Validate(testNow, l); err == nil || !strings.HasPrefix(err.Error(), "value: 11 is above the maximum 10") {
		t.Errorf("value: got %v", err)
	}
}

func TestLimitsValidate(t *testing.T) {
	if err := (Limits{}).Validate(); err != nil {
		t.Errorf("zero limits: %v", err)
	}
	if err := DefaultLimits().Validate(); err != nil {
		t.Errorf("default limits: %v", err)
	}
	err := Limits{MaxIDBytes: 300, MaxBatch: -1, MaxPastAge: -time.Second, MaxRevenue: math.NaN()}.Validate()
	if err == nil {
		t.Fatal("Validate of bad limits = nil")
	}
	for _, want := range []string{"MaxIDBytes 300 exceeds 255", "MaxBatch is negative", "MaxPastAge is negative", "MaxRevenue must be a finite"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %v, want it to mention %q", err, want)
		}
	}
}

func TestNormalize(t *testing.T) {
	e := Event{Props: map[string]string{}}
	now := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.FixedZone("X", 3600))
	e.Normalize(now)
	want := time.Date(2026, 1, 2, 2, 4, 5, 123000000, time.UTC)
	if !e.Time.Equal(want) || e.Time.Location() != time.UTC {
		t.Errorf("missing ts: got %v, want %v in UTC", e.Time.Time, want)
	}
	if e.Props != nil {
		t.Errorf("empty props not nil: %#v", e.Props)
	}
	set := time.Date(2025, 5, 6, 7, 8, 9, 999999, time.UTC)
	e = Event{Time: Timestamp{set}}
	e.Normalize(now)
	if want := set.Truncate(time.Millisecond); !e.Time.Equal(want) {
		t.Errorf("set ts: got %v, want %v", e.Time.Time, want)
	}
}

func TestTypes(t *testing.T) {
	types := Types()
	if len(types) != 10 {
		t.Fatalf("Types() has %d entries", len(types))
	}
	learning := 0
	for _, ty := range types {
		if !ty.Known() {
			t.Errorf("%s not Known", ty)
		}
		if ty.Learning() {
			learning++
		}
	}
	if learning != 6 {
		t.Errorf("%d learning types, want 6", learning)
	}
	if Type("View").Known() {
		t.Error(`"View" is Known; types are case-sensitive`)
	}
}

func TestLimitsDefaults(t *testing.T) {
	l := Limits{MaxBatch: 7}.Defaults()
	if l.MaxBatch != 7 || l.MaxIDBytes != 200 || l.MaxPastAge != 5*365*24*time.Hour || l.MaxRevenue != 1e9 {
		t.Errorf("Defaults() = %+v", l)
	}
	if DefaultLimits() != (Limits{}).Defaults() {
		t.Error("DefaultLimits() differs from Limits{}.Defaults()")
	}
}
