package signals

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// UserKeyPrefix starts the key under which the engine keeps a known user's
// state among visitor states (engine.UserKey(user) is UserKeyPrefix+user).
// A visitor id that starts with it would name that user's state, so it is
// reserved: see ReservedPrefix.
const UserKeyPrefix = "user:"

// reservedPrefixes are the visitor-id prefixes Kairos keeps for itself.
// This list is the one place that knows them; every check of a visitor id
// (CheckVisitorID, Event.Validate) reads it.
var reservedPrefixes = [...]string{UserKeyPrefix}

// ReservedPrefix returns the reserved prefix id starts with, if any.
// Visitor ids from clients (events over HTTP and the broker, the pixel,
// POST /v1/identify, the visitor= parameter of the API) may not start
// with one.
func ReservedPrefix(id string) (prefix string, ok bool) {
	for _, p := range reservedPrefixes {
		if strings.HasPrefix(id, p) {
			return p, true
		}
	}
	return "", false
}

// CheckID is the one rule for ids (event id, visitor, user, item, offer,
// session; catalog item ids; id parameters of the API): at most max
// bytes of valid UTF-8 without control characters (C0 U+0000–U+001F,
// DEL U+007F, C1 U+0080–U+009F) and without the bidirectional embedding,
// override and isolate characters U+202A–U+202E and U+2066–U+2069, which
// make an id display as another (and text around it too), and not blank
// (only spaces). The empty string passes: whether an id is required is
// the caller's rule. The error names field and the offending character
// with its byte offset.
func CheckID(field, v string, max int) *FieldError {
	if len(v) > max {
		return fieldErr(field, "%d bytes long, more than the maximum %d", len(v), max)
	}
	for i := 0; i < len(v); {
		c := v[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				return fieldErr(field, "contains control character %s at byte %d", runeName(rune(c)), i)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(v[i:])
		if r == utf8.RuneError && n == 1 {
			return fieldErr(field, "not valid UTF-8 (byte 0x%02x at %d)", c, i)
		}
		switch {
		case r >= 0x80 && r <= 0x9f:
			return fieldErr(field, "contains control character %s at byte %d", runeName(r), i)
		case isBidiControl(r):
			return fieldErr(field, "contains bidirectional control character %s at byte %d", runeName(r), i)
		}
		i += n
	}
	if v != "" && strings.TrimSpace(v) == "" {
		return fieldErr(field, "blank (only white space)")
	}
	return nil
}

// ValidID reports whether CheckID accepts v.
func ValidID(v string, max int) bool { return CheckID("", v, max) == nil }

// CheckVisitorID is CheckID for a visitor id, which also may not start
// with a reserved prefix (ReservedPrefix).
func CheckVisitorID(field, v string, max int) *FieldError {
	if err := CheckID(field, v, max); err != nil {
		return err
	}
	if p, ok := ReservedPrefix(v); ok {
		return fieldErr(field, "the prefix %q is reserved (it names a known user's state); send the user id in user", p)
	}
	return nil
}

// isBidiControl reports whether r is one of the bidirectional embedding,
// override or isolate characters (LRE, RLE, PDF, LRO, RLO; LRI, RLI, FSI,
// PDI), the "Trojan Source" characters.
func isBidiControl(r rune) bool {
	return r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069
}

// runeName writes r as U+XXXX for messages.
func runeName(r rune) string { return fmt.Sprintf("U+%04X", r) }
