package signals

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/kairoshq/kairos/internal/errs"
)

// Errors of DecodeBatch for a body that cannot be read as a batch at all
// (as opposed to single bad events, which are reported as Rejections).
// Both also match ErrInvalid.
var (
	// ErrMalformedBatch: the body is not a JSON array of events nor an
	// object with an "events" array; the message gives the byte offset.
	ErrMalformedBatch = errors.New("malformed batch")
	// ErrBatchTooLarge: more than Limits.MaxBatch events or
	// Limits.MaxBatchBytes bytes.
	ErrBatchTooLarge = errors.New("batch too large")
)

// batchError wraps ErrMalformedBatch or ErrBatchTooLarge and also matches
// ErrInvalid.
type batchError struct {
	kind error
	msg  string
}

func (e *batchError) Error() string { return e.kind.Error() + ": " + e.msg }

func (e *batchError) Is(target error) bool {
	return target == e.kind || target == ErrInvalid || target == errs.Invalid
}

func malformed(off int, format string, args ...any) error {
	return &batchError{kind: ErrMalformedBatch, msg: fmt.Sprintf("at byte %d: ", off) + fmt.Sprintf(format, args...)}
}

// Rejection tells why the event at Index (0-based position in the batch)
// was not accepted. ID is the event's id when it could be read, Field the
// JSON field at fault ("" for the whole event).
type Rejection struct {
	Index  int    `json:"index"`
	ID     string `json:"id,omitempty"`
	Field  string `json:"field,omitempty"`
	Reason string `json:"reason"`
}

// BatchResult is the outcome of DecodeBatch: every event of the body is
// either in Accepted (normalized and valid, in body order) or in Rejected
// (in body order).
type BatchResult struct {
	// Key is the publishable key carried in the body ({"key": ...,
	// "events": [...]}), "" for the array form. It lets navigator.sendBeacon,
	// which cannot set headers, authenticate; the caller must check it.
	Key string
	// Accepted holds the valid events, normalized (see Event.Normalize).
	Accepted []Event
	// Rejected holds one entry per event that was not accepted.
	Rejected []Rejection

	// index holds the body position of each Accepted event.
	index []int
}

// Check runs check on every accepted event, in body order, and moves the
// events it fails to Rejected (with the field and reason of its error);
// Accepted and Rejected stay in body order. It is for rules that need
// more than the event itself, such as the API's identity verification,
// which depends on the caller's key. check may modify the event (for
// example, remove a field once verified). Call it on a result of
// DecodeBatch.
func (r *BatchResult) Check(check func(e *Event) *FieldError) {
	var failed []Rejection
	kept := 0
	for i := range r.Accepted {
		e := &r.Accepted[i]
		idx := i
		if i < len(r.index) {
			idx = r.index[i]
		}
		if err := check(e); err != nil {
			failed = append(failed, Rejection{Index: idx, ID: e.ID, Field: err.Field, Reason: err.Reason})
			continue
		}
		r.Accepted[kept] = *e
		if kept < len(r.index) {
			r.index[kept] = idx
		}
		kept++
	}
	if len(failed) == 0 {
		return
	}
	clear(r.Accepted[kept:])
	r.Accepted = r.Accepted[:kept]
	r.index = r.index[:min(kept, len(r.index))]
	merged := make([]Rejection, 0, len(r.Rejected)+len(failed))
	a, b := r.Rejected, failed
	for len(a) > 0 && len(b) > 0 {
		if a[0].Index < b[0].Index {
			merged, a = append(merged, a[0]), a[1:]
		} else {
			merged, b = append(merged, b[0]), b[1:]
		}
	}
	r.Rejected = append(append(merged, a...), b...)
}

// DecodeBatch reads a batch of events from r, as POSTed to /v1/events.
//
// The body is either a JSON array of events, or an object
// {"key": "pk_...", "events": [...]} (other members are ignored). The framing
// must be valid JSON: an unterminated string, unbalanced brackets, a missing
// comma between events, trailing data, an empty body or one that is not an
// array or such an object fails the whole batch with an error matching
// ErrMalformedBatch that names the byte offset. More than l.MaxBatch events
// or l.MaxBatchBytes bytes fail it with ErrBatchTooLarge. An error from r
// is returned wrapped (an *http.MaxBytesError stays visible to errors.As).
//
// Every event is then decoded, normalized (Event.Normalize with now) and
// validated (Event.Validate) on its own: a bad event - not an object, a
// wrong field type, a NaN or Infinity (as a bare word, which is not JSON, or
// as a string), an unknown type, a value out of range - is reported in
// Rejected with the field and reason and does not affect the others. An
// event whose id repeats the id of an event accepted earlier in the same
// batch is rejected with reason "duplicate id in batch (first at index N)":
// the first one wins, and a retry of the whole batch stays harmless because
// the engine de-duplicates by id across batches. Unknown event members are
// ignored (future fields); member names match case-insensitively, as with
// encoding/json.
func DecodeBatch(r io.Reader, now time.Time, l Limits) (BatchResult, error) {
	l = l.resolved()
	body, err := io.ReadAll(io.LimitReader(r, int64(l.MaxBatchBytes)+1))
	if err != nil {
		return BatchResult{}, fmt.Errorf("signals: read batch: %w", err)
	}
	if len(body) > l.MaxBatchBytes {
		return BatchResult{}, &batchError{kind: ErrBatchTooLarge, msg: fmt.Sprintf("body is larger than %d bytes", l.MaxBatchBytes)}
	}
	var sc scanner
	key, spans, err := sc.splitBatch(body, l.MaxBatch)
	if err != nil {
		return BatchResult{}, err
	}
	res := BatchResult{Key: key, Accepted: make([]Event, 0, len(spans)), index: make([]int, 0, len(spans))}
	var seen map[string]int
	for i, sp := range spans {
		raw := body[sp.start:sp.end]
		e, ferr := decodeOne(raw, now, l)
		if ferr != nil {
			res.Rejected = append(res.Rejected, Rejection{Index: i, ID: idOf(raw, &e, l), Field: ferr.Field, Reason: ferr.Reason})
			continue
		}
		if first, dup := seen[e.ID]; dup {
			res.Rejected = append(res.Rejected, Rejection{Index: i, ID: e.ID, Field: "id",
				Reason: fmt.Sprintf("duplicate id in batch (first at index %d)", first)})
			continue
		}
		if seen == nil {
			seen = make(map[string]int, len(spans))
		}
		seen[e.ID] = i
		res.Accepted = append(res.Accepted, e)
		res.index = append(res.index, i)
	}
	return res, nil
}

// DecodeEvent decodes, normalizes (Event.Normalize with now) and validates
// one event encoded as a JSON object, such as a message body consumed from
// the broker. Surrounding whitespace is allowed, anything else after the
// object is not. The error is a *FieldError (matching ErrInvalid) naming the
// field at fault; on error the returned Event is zero. user_hash is
// dropped: producers on the broker are trusted (only the HTTP collector
// verifies it).
func DecodeEvent(b []byte, now time.Time, l Limits) (Event, error) {
	l = l.resolved()
	e, ferr := decodeOne(trimSpace(b), now, l)
	if ferr != nil {
		return Event{}, ferr
	}
	e.UserHash = ""
	return e, nil
}

// decodeOne decodes one event from raw, which must start with '{'. On
// error the partially decoded event is returned for idOf.
func decodeOne(raw []byte, now time.Time, l Limits) (Event, *FieldError) {
	var e Event
	if len(raw) > l.MaxEventBytes {
		return e, fieldErr("", "event is %d bytes long, more than the maximum %d", len(raw), l.MaxEventBytes)
	}
	if len(raw) == 0 || raw[0] != '{' {
		return e, fieldErr("", "an event must be a JSON object, got %s", jsonKind(raw))
	}
	if off, why := badUnicode(raw); off >= 0 {
		return e, fieldErr(memberAt(raw, off), "%s, at byte %d of the event)", why, off)
	}
	if err := json.Unmarshal(raw, &e); err != nil {
		return e, explain(raw, err)
	}
	e.Normalize(now)
	return e, e.validate(now, l)
}

// badUnicode returns the offset in raw of the first byte that is not valid
// UTF-8, or of the first \u escape of a string that encodes an unpaired
// UTF-16 surrogate, with the start of a reason that the caller completes
// with the position and ")"; -1 when there is none. encoding/json
// would silently replace either with U+FFFD, so that two different ids
// could decode to the same one.
func badUnicode(raw []byte) (int, string) {
	if utf8.Valid(raw) && bytes.IndexByte(raw, '\\') < 0 {
		return -1, ""
	}
	inString := false
	for i := 0; i < len(raw); {
		c := raw[i]
		if c >= utf8.RuneSelf {
			if r, n := utf8.DecodeRune(raw[i:]); r != utf8.RuneError || n > 1 {
				i += n
				continue
			}
			return i, fmt.Sprintf("not valid UTF-8 (byte 0x%02x", c)
		}
		switch {
		case c == '"':
			inString = !inString
		case c == '\\' && inString:
			if i+1 < len(raw) && raw[i+1] == 'u' {
				r, ok := hex4(raw[i+2:])
				if !ok || !utf16.IsSurrogate(r) {
					i += 2 // a bad escape is encoding/json's syntax error
					continue
				}
				if r < 0xdc00 && i+12 <= len(raw) && raw[i+6] == '\\' && raw[i+7] == 'u' {
					if r2, ok := hex4(raw[i+8:]); ok && r2 >= 0xdc00 && r2 <= 0xdfff {
						i += 12 // a surrogate pair: one character
						continue
					}
				}
				return i, fmt.Sprintf("unpaired UTF-16 surrogate \\u%04x (not a character", r)
			}
			i += 2
			continue
		}
		i++
	}
	return -1, ""
}

// CheckJSONUnicode reports text of the JSON document raw that
// encoding/json would silently replace with U+FFFD: bytes that are not
// valid UTF-8, and \u escapes of unpaired UTF-16 surrogates. The error
// names the top-level member of an object whose value holds it ("" when
// raw is not an object or the problem lies outside the members' values).
// The decoders of events apply it to each event; the API applies it to
// the other JSON bodies it reads (catalog items, POST /v1/identify).
func CheckJSONUnicode(raw []byte) *FieldError {
	lead := skipSpace(raw, 0)
	doc := trimSpace(raw)
	off, why := badUnicode(doc)
	if off < 0 {
		return nil
	}
	field := ""
	if doc[0] == '{' {
		field = memberAt(doc, off)
	}
	return fieldErr(field, "%s, at byte %d of the body)", why, lead+off)
}

// hex4 decodes the 4 hex digits at the start of b.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// memberAt returns the name of the top-level member of the object raw
// whose value holds byte off, "" when off is elsewhere (a member name,
// between members).
func memberAt(raw []byte, off int) string {
	for _, m := range objectMembers(raw) {
		if off >= m.val && off < m.end {
			return m.key
		}
	}
	return ""
}

// idOf returns the id of a rejected event for its Rejection, if it is a
// valid id.
func idOf(raw []byte, e *Event, l Limits) string {
	id := e.ID
	if id == "" && len(raw) > 0 && raw[0] == '{' {
		if m, ok := findMember(raw, "id"); ok {
			_ = json.Unmarshal(raw[m.val:m.end], &id)
		}
	}
	if id == "" || CheckID("id", id, l.MaxIDBytes) != nil {
		return ""
	}
	return id
}

// explain turns an encoding/json error for the event raw into a FieldError
// that names the field.
func explain(raw []byte, err error) *FieldError {
	var fe *FieldError
	if errors.As(err, &fe) {
		return fe
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		bad := int(se.Offset) - 1 // index of the offending byte
		for _, m := range objectMembers(raw) {
			if bad < m.start || bad >= m.end {
				continue
			}
			if w := string(raw[m.val:m.end]); bad >= m.val && isNonFinite(w) {
				return fieldErr(m.key, "%s is not a number", w)
			}
			return fieldErr(m.key, "invalid JSON at byte %d of the event: %v", se.Offset, se)
		}
		return fieldErr("", "invalid JSON at byte %d of the event: %v", se.Offset, se)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field, _, _ := strings.Cut(te.Field, ".")
		got := te.Value
		switch {
		case field == "":
			return fieldErr("", "an event must be a JSON object, got %s", got)
		case field == "value":
			if got == "string" {
				var s string
				if m, ok := findMember(raw, "value"); ok && json.Unmarshal(raw[m.val:m.end], &s) == nil && isNonFinite(s) {
					return fieldErr("value", "%s is not a number", s)
				}
				return fieldErr("value", "must be a number, got string %s", quoteShort(s))
			}
			if n, ok := strings.CutPrefix(got, "number "); ok {
				return fieldErr("value", "%s is out of range for a number", n)
			}
			return fieldErr("value", "must be a number, got %s", got)
		case field == "props":
			if te.Type.Kind() == reflect.Map {
				return fieldErr("props", "must be an object with string values, got %s", got)
			}
			if m, ok := findMember(raw, "props"); ok && raw[m.val] == '{' {
				for _, p := range objectMembers(raw[m.val:m.end]) {
					if v := raw[m.val+p.val]; v != '"' && v != 'n' { // null is allowed: it decodes as ""
						return fieldErr("props", "value of %s must be a string, got %s", quoteShort(p.key), jsonKind(raw[m.val+p.val:]))
					}
				}
			}
			return fieldErr("props", "values must be strings, got %s", got)
		case te.Type.Kind() == reflect.String:
			return fieldErr(field, "must be a string, got %s", got)
		default:
			return fieldErr(field, "cannot decode %s into %s", got, te.Type)
		}
	}
	return fieldErr("", "cannot decode event: %v", err)
}

// isNonFinite reports whether s spells NaN or an infinity, the usual way
// JavaScript or Python would print them.
func isNonFinite(s string) bool {
	s = strings.TrimLeft(s, "+-")
	return strings.EqualFold(s, "nan") || strings.EqualFold(s, "inf") || strings.EqualFold(s, "infinity")
}

// jsonKind names the kind of the JSON value starting b, for messages.
func jsonKind(b []byte) string {
	if len(b) == 0 {
		return "nothing"
	}
	switch c := b[0]; {
	case c == '{':
		return "object"
	case c == '[':
		return "array"
	case c == '"':
		return "string"
	case c == 't' || c == 'f':
		return "boolean"
	case c == 'n':
		return "null"
	case c == '-' || (c >= '0' && c <= '9'):
		return "number"
	}
	return shortJSON(b)
}

// shortJSON quotes the start of b for a message.
func shortJSON(b []byte) string {
	if len(b) > 40 {
		b = b[:40]
	}
	return quoteShort(string(b))
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func trimSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// maxDepth bounds the nesting the scanner follows.
const maxDepth = 1000

// span is a half-open byte range of the body.
type span struct{ start, end int }

// scanner finds the structure of a batch body without decoding it. It
// checks strings and the nesting of brackets only; scalars are runs of
// bytes up to the next delimiter, so that a NaN or a typo inside one event
// is left to that event's decoding and rejection.
type scanner struct {
	stack []byte
}

// splitBatch returns the key and the spans of the events of body.
func (sc *scanner) splitBatch(body []byte, maxBatch int) (string, []span, error) {
	i := 0
	if len(body) >= 3 && body[0] == 0xEF && body[1] == 0xBB && body[2] == 0xBF { // UTF-8 BOM
		i = 3
	}
	i = skipSpace(body, i)
	if i >= len(body) {
		return "", nil, malformed(i, `empty body, expected a JSON array of events or {"events": [...]}`)
	}
	var (
		key   string
		spans []span
		end   int
		err   error
	)
	switch body[i] {
	case '[':
		end, spans, err = sc.array(body, i, maxBatch)
	case '{':
		key, end, spans, err = sc.object(body, i, maxBatch)
	default:
		return "", nil, malformed(i, `expected a JSON array of events or {"events": [...]}, got %s`, jsonKind(body[i:]))
	}
	if err != nil {
		return "", nil, err
	}
	if j := skipSpace(body, end); j < len(body) {
		return "", nil, malformed(j, "unexpected data after the batch")
	}
	return key, spans, nil
}

// array scans the array of events starting at b[i] == '['.
func (sc *scanner) array(b []byte, i, maxBatch int) (int, []span, error) {
	var spans []span
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1, spans, nil
	}
	for {
		if i >= len(b) {
			return 0, nil, malformed(i, "unexpected end of body, expected an event")
		}
		if len(spans) == maxBatch {
			return 0, nil, &batchError{kind: ErrBatchTooLarge, msg: fmt.Sprintf("more than %d events", maxBatch)}
		}
		end, err := sc.valueEnd(b, i)
		if err != nil {
			return 0, nil, err
		}
		spans = append(spans, span{i, end})
		i = skipSpace(b, end)
		if i >= len(b) {
			return 0, nil, malformed(i, "unexpected end of body, missing ']'")
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
			if i < len(b) && b[i] == ']' {
				return 0, nil, malformed(i, "trailing comma after the last event")
			}
		case ']':
			return i + 1, spans, nil
		default:
			return 0, nil, malformed(i, "unexpected %s after event %d, expected ',' or ']'", shortJSON(b[i:i+1]), len(spans)-1)
		}
	}
}

// object scans {"key": "...", "events": [...]} starting at b[i] == '{'.
func (sc *scanner) object(b []byte, i, maxBatch int) (key string, end int, spans []span, err error) {
	var haveKey, haveEvents, looksLikeEvent bool
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return "", 0, nil, malformed(i, `object body has no "events" array`)
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return "", 0, nil, malformed(i, "expected a member name in double quotes")
		}
		kend, err := sc.valueEnd(b, i)
		if err != nil {
			return "", 0, nil, err
		}
		var name string
		if json.Unmarshal(b[i:kend], &name) != nil {
			return "", 0, nil, malformed(i, "invalid member name")
		}
		i = skipSpace(b, kend)
		if i >= len(b) || b[i] != ':' {
			return "", 0, nil, malformed(i, "expected ':' after member name %s", quoteShort(name))
		}
		i = skipSpace(b, i+1)
		switch name {
		case "events":
			if haveEvents {
				return "", 0, nil, malformed(i, `duplicate "events" member`)
			}
			if i >= len(b) || b[i] != '[' {
				return "", 0, nil, malformed(i, `"events" must be an array of events`)
			}
			haveEvents = true
			if i, spans, err = sc.array(b, i, maxBatch); err != nil {
				return "", 0, nil, err
			}
		case "key":
			if haveKey {
				return "", 0, nil, malformed(i, `duplicate "key" member`)
			}
			if i >= len(b) || b[i] != '"' {
				return "", 0, nil, malformed(i, `"key" must be a string`)
			}
			haveKey = true
			vend, err := sc.valueEnd(b, i)
			if err != nil {
				return "", 0, nil, err
			}
			if json.Unmarshal(b[i:vend], &key) != nil {
				return "", 0, nil, malformed(i, `"key" is not a valid JSON string`)
			}
			i = vend
		default:
			looksLikeEvent = looksLikeEvent || name == "type" || name == "visitor"
			vend, err := sc.valueEnd(b, i)
			if err != nil {
				return "", 0, nil, err
			}
			i = vend
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return "", 0, nil, malformed(i, "unexpected end of body, missing '}'")
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
			continue
		case '}':
			if !haveEvents {
				hint := ""
				if looksLikeEvent {
					hint = ` (to send one event, wrap it: [{...}] or {"events": [{...}]})`
				}
				return "", 0, nil, malformed(i, `object body has no "events" array%s`, hint)
			}
			return key, i + 1, spans, nil
		default:
			return "", 0, nil, malformed(i, "unexpected %s, expected ',' or '}'", shortJSON(b[i:i+1]))
		}
	}
}

func isDelim(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', ',', ':', '"', '[', ']', '{', '}':
		return true
	}
	return false
}

// valueEnd returns the index just after the JSON value starting at b[i].
func (sc *scanner) valueEnd(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, malformed(i, "unexpected end of body, expected a value")
	}
	switch c := b[i]; c {
	case '"':
		for j := i + 1; j < len(b); j++ {
			switch b[j] {
			case '\\':
				j++
			case '"':
				return j + 1, nil
			}
		}
		return 0, malformed(i, "unterminated string")
	case '{', '[':
		sc.stack = sc.stack[:0]
		for j := i; j < len(b); j++ {
			switch c := b[j]; c {
			case '"':
				end, err := sc.valueEnd(b, j)
				if err != nil {
					return 0, err
				}
				j = end - 1
			case '{', '[':
				if len(sc.stack) >= maxDepth {
					return 0, malformed(j, "nesting deeper than %d", maxDepth)
				}
				sc.stack = append(sc.stack, c)
			case '}', ']':
				open := byte('{')
				if c == ']' {
					open = '['
				}
				if sc.stack[len(sc.stack)-1] != open {
					return 0, malformed(j, "unexpected %q", c)
				}
				sc.stack = sc.stack[:len(sc.stack)-1]
				if len(sc.stack) == 0 {
					return j + 1, nil
				}
			}
		}
		closer := "}"
		if sc.stack[len(sc.stack)-1] == '[' {
			closer = "]"
		}
		return 0, malformed(len(b), "unexpected end of body, missing %q", closer)
	case '}', ']', ',', ':':
		return 0, malformed(i, "unexpected %q, expected a value", c)
	default:
		j := i
		for j < len(b) && !isDelim(b[j]) {
			j++
		}
		return j, nil
	}
}

// member is one top-level member of a JSON object: its key (decoded), the
// index of the key's opening quote, and the span of its value.
type member struct {
	key             string
	start, val, end int
}

// objectMembers lists the members of the object raw (raw[0] == '{') as far
// as its structure can be followed; it is used on error paths only.
func objectMembers(raw []byte) []member {
	var (
		sc scanner
		ms []member
	)
	i := skipSpace(raw, 1)
	for i < len(raw) && raw[i] == '"' {
		kend, err := sc.valueEnd(raw, i)
		if err != nil {
			return ms
		}
		var key string
		if json.Unmarshal(raw[i:kend], &key) != nil {
			return ms
		}
		j := skipSpace(raw, kend)
		if j >= len(raw) || raw[j] != ':' {
			return ms
		}
		j = skipSpace(raw, j+1)
		vend, err := sc.valueEnd(raw, j)
		if err != nil || vend == j {
			return ms
		}
		ms = append(ms, member{key: key, start: i, val: j, end: vend})
		i = skipSpace(raw, vend)
		if i >= len(raw) || raw[i] != ',' {
			return ms
		}
		i = skipSpace(raw, i+1)
	}
	return ms
}

// findMember returns the last member of raw whose key matches name
// case-insensitively (the member encoding/json would decode).
func findMember(raw []byte, name string) (member, bool) {
	var found member
	ok := false
	for _, m := range objectMembers(raw) {
		if strings.EqualFold(m.key, name) {
			found, ok = m, true
		}
	}
	return found, ok
}
