package jsondef

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

// Error is a definition that does not validate: Path names the member in
// JSON path notation, e.g. rules[r1].when.all[2].count.within or
// variants[1].weight ("" for the whole document). It wraps
// engine.ErrInvalid.
type Error struct {
	Path   string
	Reason string
}

// Error returns "path: reason".
func (e *Error) Error() string {
	if e.Path == "" {
		return e.Reason
	}
	return e.Path + ": " + e.Reason
}

// Unwrap returns engine.ErrInvalid.
func (e *Error) Unwrap() error { return engine.ErrInvalid }

// Errorf returns an *Error at path with the formatted reason.
func Errorf(path, format string, args ...any) error {
	return &Error{Path: path, Reason: fmt.Sprintf(format, args...)}
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

// Join returns the path of member key of the object at path.
func Join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// Index returns the path of element i of the array at path.
func Index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// Kind names the kind of a JSON value for a message: "an object", "an
// array", "a string", "a boolean", "null", "a number" or "nothing".
func Kind(raw []byte) string {
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

// IsNull reports whether raw is the JSON null.
func IsNull(raw []byte) bool {
	return string(bytes.TrimSpace(raw)) == "null"
}

// Quote quotes s for a message, cut to 60 bytes.
func Quote(s string) string {
	if len(s) > 60 {
		n := 60
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n] + "…"
	}
	return strconv.Quote(s)
}

// ValidID reports whether s is an id of 1 to max bytes: letters, digits,
// '-', '_', '.' and, when colon, ':'.
func ValidID(s string, max int, colon bool) bool {
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

// CheckID returns an *Error at path unless ValidID(s, max, colon).
func CheckID(path, s string, max int, colon bool) error {
	if ValidID(s, max, colon) {
		return nil
	}
	if colon {
		return Errorf(path, "%s: want 1 to %d letters, digits, '-', '_', '.' or ':'", Quote(s), max)
	}
	return Errorf(path, "%s: want 1 to %d letters, digits, '-', '_' or '.'", Quote(s), max)
}

// NewObject starts decoding the JSON object raw at path ("" for a whole
// document whose members are named alone).
func NewObject(path string, raw []byte) (*Object, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil, Errorf(path, "must be an object, got %s", Kind(raw))
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, Errorf(path, "malformed JSON at byte %d: %s", se.Offset, strings.TrimPrefix(se.Error(), "json: "))
		}
		return nil, Errorf(path, "malformed JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	return &Object{Path: path, m: m, used: make(map[string]bool, len(m))}, nil
}

// Array decodes the JSON array raw at path into its elements.
func Array(path string, raw []byte) ([]json.RawMessage, error) {
	var items []json.RawMessage
	if t := bytes.TrimSpace(raw); len(t) == 0 || t[0] != '[' {
		return nil, Errorf(path, "must be an array, got %s", Kind(raw))
	}
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, Errorf(path, "malformed array: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	return items, nil
}

// Object is a JSON object being decoded member by member, so that every
// error names its path and unknown members are refused (Done). Its
// readers return an *Error naming the member.
type Object struct {
	// Path is the object's path, the prefix of its members' paths. A
	// decoder may rename it once the object's id is known, e.g. "rule"
	// to "rules[r1]".
	Path string

	m    map[string]json.RawMessage
	used map[string]bool
}

// Keys returns the names of the object's members, sorted.
func (o *Object) Keys() []string {
	keys := make([]string, 0, len(o.m))
	for k := range o.m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Raw returns member key as written, null included, and whether it is
// present; it marks the member read.
func (o *Object) Raw(key string) (json.RawMessage, bool) {
	o.used[key] = true
	raw, ok := o.m[key]
	return raw, ok
}

// Get returns member key (absent when null) and marks it read.
func (o *Object) Get(key string) (json.RawMessage, bool) {
	raw, ok := o.Raw(key)
	if !ok || IsNull(raw) {
		return nil, false
	}
	return raw, true
}

// Ignore marks members that are accepted and ignored.
func (o *Object) Ignore(keys ...string) {
	for _, k := range keys {
		o.used[k] = true
	}
}

// Done refuses members that were not read, naming the first (sorted);
// valid lists the members the message offers instead.
func (o *Object) Done(valid string) error {
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
	return Errorf(Join(o.Path, unknown[0]), "unknown member (valid: %s)", valid)
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// Str reads a string of at most max bytes of UTF-8 without control
// characters; "" when absent. A required member may be neither absent nor
// empty.
func (o *Object) Str(key string, required bool, max int) (string, error) {
	raw, ok := o.Get(key)
	p := Join(o.Path, key)
	if !ok {
		if required {
			return "", Errorf(p, "missing")
		}
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", Errorf(p, "must be a string, got %s", Kind(raw))
	}
	if required && s == "" {
		return "", Errorf(p, "missing")
	}
	if len(s) > max {
		return "", Errorf(p, "%d bytes long, at most %d", len(s), max)
	}
	if !utf8.ValidString(s) || strings.ContainsFunc(s, isControl) {
		return "", Errorf(p, "must be valid UTF-8 without control characters")
	}
	return s, nil
}

// ID reads an id (Str, then CheckID with max and colon); "" when absent
// and not required.
func (o *Object) ID(key string, required bool, max int, colon bool) (string, error) {
	s, err := o.Str(key, required, 1<<20)
	if err != nil || s == "" {
		return s, err
	}
	return s, CheckID(Join(o.Path, key), s, max, colon)
}

// Num reads a finite number and whether it is present.
func (o *Object) Num(key string) (float64, bool, error) {
	raw, ok := o.Get(key)
	if !ok {
		return 0, false, nil
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, false, Errorf(Join(o.Path, key), "must be a number, got %s", Kind(raw))
	}
	return f, true, nil
}

// IntIn reads an integer in [min, max] and whether it is present.
func (o *Object) IntIn(key string, min, max int64) (int64, bool, error) {
	f, ok, err := o.Num(key)
	if err != nil || !ok {
		return 0, ok, err
	}
	if f != math.Trunc(f) || f < float64(min) || f > float64(max) {
		return 0, false, Errorf(Join(o.Path, key), "%s is not an integer in [%d, %d]", strconv.FormatFloat(f, 'g', -1, 64), min, max)
	}
	return int64(f), true, nil
}

// Bool reads true or false; def when absent.
func (o *Object) Bool(key string, def bool) (bool, error) {
	raw, ok := o.Get(key)
	if !ok {
		return def, nil
	}
	var b bool
	if err := json.Unmarshal(raw, &b); err != nil {
		return false, Errorf(Join(o.Path, key), "must be true or false, got %s", Kind(raw))
	}
	return b, nil
}

// Duration reads a duration string (ParseDuration) in [min, max]; def
// when absent.
func (o *Object) Duration(key string, def, min, max time.Duration) (Duration, error) {
	raw, ok := o.Get(key)
	if !ok {
		return Duration(def), nil
	}
	p := Join(o.Path, key)
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return 0, Errorf(p, "must be a duration string such as \"10m\", \"24h\" or \"7d\", got %s", Kind(raw))
	}
	d, err := ParseDuration(s)
	if err != nil {
		return 0, Errorf(p, "%s is not a duration (e.g. \"90s\", \"10m\", \"24h\", \"7d\")", Quote(s))
	}
	if d < min || d > max {
		return 0, Errorf(p, "%s is not in [%v, %v]", Quote(s), Duration(min), Duration(max))
	}
	return Duration(d), nil
}

// Time reads an RFC 3339 time, in UTC; nil when absent.
func (o *Object) Time(key string) (*time.Time, error) {
	raw, ok := o.Get(key)
	if !ok {
		return nil, nil
	}
	p := Join(o.Path, key)
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, Errorf(p, "must be an RFC 3339 time string, got %s", Kind(raw))
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return nil, Errorf(p, "%s is not an RFC 3339 time (e.g. \"2026-11-27T00:00:00Z\")", Quote(s))
	}
	t = t.UTC()
	return &t, nil
}

// Strs reads an array of at most maxN distinct strings; check validates
// each (its path given); nil when absent.
func (o *Object) Strs(key string, maxN int, check func(path, s string) error) ([]string, error) {
	raw, ok := o.Get(key)
	if !ok {
		return nil, nil
	}
	p := Join(o.Path, key)
	var raws []json.RawMessage
	if err := json.Unmarshal(raw, &raws); err != nil {
		return nil, Errorf(p, "must be an array of strings, got %s", Kind(raw))
	}
	if len(raws) > maxN {
		return nil, Errorf(p, "%d elements, at most %d", len(raws), maxN)
	}
	out := make([]string, 0, len(raws))
	seen := make(map[string]bool, len(raws))
	for i, r := range raws {
		var s string
		if err := json.Unmarshal(r, &s); err != nil {
			return nil, Errorf(Index(p, i), "must be a string, got %s", Kind(r))
		}
		if err := check(Index(p, i), s); err != nil {
			return nil, err
		}
		if seen[s] {
			return nil, Errorf(Index(p, i), "%s is listed twice", Quote(s))
		}
		seen[s] = true
		out = append(out, s)
	}
	return out, nil
}
