package archive

import (
	"errors"
	"math"
	"reflect"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/kairoshq/kairos/signals"
)

// The archive encodes events on the ingest path, so it does not go through
// encoding/json's reflection (three allocations per event): appendEvent
// writes the very same bytes that encoding/json's Encoder writes with
// SetEscapeHTML(false) (tests and a fuzz target compare the two). If
// signals.Event ever changes shape, fastEncode is false and the archive
// falls back to encoding/json, so a new field is never silently dropped.

// eventShape lists signals.Event's fields as appendEvent knows them.
var eventShape = []struct{ name, typ, tag string }{
	{"ID", "string", "id"},
	{"Type", "signals.Type", "type"},
	{"Visitor", "string", "visitor"},
	{"User", "string", "user,omitempty"},
	{"UserHash", "string", "user_hash,omitempty"},
	{"Item", "string", "item,omitempty"},
	{"Offer", "string", "offer,omitempty"},
	{"Token", "string", "token,omitempty"},
	{"Time", "signals.Timestamp", "ts"},
	{"Value", "float64", "value,omitempty"},
	{"Session", "string", "session,omitempty"},
	{"Page", "string", "page,omitempty"},
	{"Element", "string", "element,omitempty"},
	{"Source", "string", "source,omitempty"},
	{"Referrer", "string", "referrer,omitempty"},
	{"Props", "map[string]string", "props,omitempty"},
}

// fastEncode reports whether appendEvent matches signals.Event.
var fastEncode = shapeMatches(reflect.TypeFor[signals.Event]())

func shapeMatches(t reflect.Type) bool {
	if t.NumField() != len(eventShape) {
		return false
	}
	for i, want := range eventShape {
		f := t.Field(i)
		if f.Name != want.name || f.Type.String() != want.typ || f.Tag.Get("json") != want.tag {
			return false
		}
	}
	// Timestamp must still be a plain time with its own MarshalJSON.
	ts := reflect.TypeFor[signals.Timestamp]()
	return ts.NumField() == 1 && ts.Field(0).Anonymous && ts.Field(0).Type.String() == "time.Time"
}

var errUnsupportedValue = errors.New("json: unsupported value: NaN or infinite float")

// appendEvent appends e's JSON and a newline to b. keys is scratch space
// for sorting Props and is returned for reuse.
func appendEvent(b []byte, e *signals.Event, keys []string) ([]byte, []string, error) {
	b = append(b, `{"id":`...)
	b = appendString(b, e.ID)
	b = append(b, `,"type":`...)
	b = appendString(b, string(e.Type))
	b = append(b, `,"visitor":`...)
	b = appendString(b, e.Visitor)
	b = appendOpt(b, `,"user":`, e.User)
	b = appendOpt(b, `,"user_hash":`, e.UserHash)
	b = appendOpt(b, `,"item":`, e.Item)
	b = appendOpt(b, `,"offer":`, e.Offer)
	b = appendOpt(b, `,"token":`, e.Token)
	b = append(b, `,"ts":`...)
	if e.Time.IsZero() {
		b = append(b, "null"...)
	} else {
		b = append(b, '"')
		b = e.Time.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
		b = append(b, '"')
	}
	if e.Value != 0 {
		if math.IsNaN(e.Value) || math.IsInf(e.Value, 0) {
			return b, keys, errUnsupportedValue
		}
		b = append(b, `,"value":`...)
		b = appendFloat(b, e.Value)
	}
	b = appendOpt(b, `,"session":`, e.Session)
	b = appendOpt(b, `,"page":`, e.Page)
	b = appendOpt(b, `,"element":`, e.Element)
	b = appendOpt(b, `,"source":`, e.Source)
	b = appendOpt(b, `,"referrer":`, e.Referrer)
	if len(e.Props) > 0 {
		keys = keys[:0]
		for k := range e.Props {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, `,"props":{`...)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendString(b, e.Props[k])
		}
		b = append(b, '}')
		clear(keys) // do not retain the caller's strings
	}
	return append(b, '}', '\n'), keys, nil
}

func appendOpt(b []byte, key, s string) []byte {
	if s == "" {
		return b
	}
	b = append(b, key...)
	return appendString(b, s)
}

// appendFloat formats like encoding/json's float64 encoder.
func appendFloat(b []byte, f float64) []byte {
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

const hexDigits = "0123456789abcdef"

// appendString quotes s like encoding/json with HTML escaping off.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '\\', '"':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
