package signals

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestCheckID(t *testing.T) {
	tests := []struct {
		name   string
		id     string
		reason string // "" = valid; else a substring of the reason
	}{
		{"ascii", "sku-42_a.b:c", ""},
		{"letters of any script", "café-東京-Ωμέγα", ""},
		{"emoji", "v-😀", ""},
		{"literal replacement character", "a\uFFFDb", ""},
		{"zero-width joiner is not a control", "a\u200db", ""},
		{"empty passes", "", ""},
		{"blank", "  ", "blank (only white space)"},
		{"no-break spaces only", "\u00a0\u00a0", "blank"},
		{"inner space is fine", "a b", ""},
		{"200 bytes", strings.Repeat("x", 200), ""},
		{"201 bytes", strings.Repeat("x", 201), "201 bytes long, more than the maximum 200"},
		{"NUL", "a\x00b", "control character U+0000 at byte 1"},
		{"newline", "a\nb", "control character U+000A at byte 1"},
		{"unit separator", "\x1f", "control character U+001F at byte 0"},
		{"DEL", "ab\x7f", "control character U+007F at byte 2"},
		{"C1 NEL", "a\u0085", "control character U+0085 at byte 1"},
		{"C1 first", "\u0080", "control character U+0080 at byte 0"},
		{"C1 last", "x\u009f", "control character U+009F at byte 1"},
		{"after C1 is fine", "\u00a0nbsp", ""},
		{"LRE", "a\u202ab", "bidirectional control character U+202A at byte 1"},
		{"RLE", "a\u202bb", "U+202B"},
		{"PDF", "a\u202cb", "U+202C"},
		{"LRO", "a\u202db", "U+202D"},
		{"RLO", "gnp.exe\u202e", "bidirectional control character U+202E at byte 7"},
		{"LRI", "\u2066x", "U+2066 at byte 0"},
		{"RLI", "\u2067x", "U+2067"},
		{"FSI", "\u2068x", "U+2068"},
		{"PDI", "x\u2069", "U+2069 at byte 1"},
		{"next to the bidi range", "\u2029\u206a", ""},
		{"invalid byte", "a\xffb", "not valid UTF-8 (byte 0xff at 1)"},
		{"truncated sequence", "a\xc3", "not valid UTF-8 (byte 0xc3 at 1)"},
		{"encoded surrogate", "a\xed\xa0\x80", "not valid UTF-8 (byte 0xed at 1)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckID("item", tt.id, 200)
			if ok := ValidID(tt.id, 200); ok != (tt.reason == "") {
				t.Errorf("ValidID = %v", ok)
			}
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("CheckID(%q) = %v, want nil", tt.id, err)
				}
				return
			}
			if err == nil || err.Field != "item" || !strings.Contains(err.Reason, tt.reason) {
				t.Fatalf("CheckID(%q) = %v, want field item and a reason containing %q", tt.id, err, tt.reason)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("%v does not match ErrInvalid", err)
			}
		})
	}
}

func TestReservedVisitorPrefix(t *testing.T) {
	if p, ok := ReservedPrefix("user:bob"); !ok || p != UserKeyPrefix {
		t.Errorf(`ReservedPrefix("user:bob") = %q, %v`, p, ok)
	}
	for _, id := range []string{"user", "users:bob", "User:bob", "v-user:bob", "u:bob"} {
		if p, ok := ReservedPrefix(id); ok {
			t.Errorf("ReservedPrefix(%q) = %q, want none", id, p)
		}
		if err := CheckVisitorID("visitor", id, 200); err != nil {
			t.Errorf("CheckVisitorID(%q) = %v", id, err)
		}
	}
	err := CheckVisitorID("visitor", "user:bob", 200)
	if err == nil || err.Field != "visitor" || !strings.Contains(err.Reason, `the prefix "user:" is reserved`) {
		t.Errorf(`CheckVisitorID("user:bob") = %v`, err)
	}
	// The id rule comes first.
	if err := CheckVisitorID("anonymous_id", "user:\n", 200); err == nil || err.Field != "anonymous_id" || !strings.Contains(err.Reason, "control") {
		t.Errorf("CheckVisitorID with a control character = %v", err)
	}
	// A user id may start with it: the user's state key is then
	// "user:user:…", which no visitor id can name.
	e := validEvent()
	e.User = "user:bob"
	if err := e.Validate(testNow, Limits{}); err != nil {
		t.Errorf("user %q: %v", e.User, err)
	}
}

func TestValidateIdentityFields(t *testing.T) {
	tests := []mutation{
		{"reserved visitor", func(e *Event) { e.Visitor = "user:alice" }, "visitor", `prefix "user:" is reserved`},
		{"bidi in visitor", func(e *Event) { e.Visitor = "v\u202e1" }, "visitor", "bidirectional control character U+202E"},
		{"C1 in user", func(e *Event) { e.User = "u\u00851" }, "user", "control character U+0085"},
		{"bidi in item", func(e *Event) { e.Item = "\u2067i" }, "item", "U+2067"},
		{"bidi in offer", func(e *Event) { e.Offer = "o\u202a" }, "offer", "U+202A"},
		{"bidi in session", func(e *Event) { e.Session = "s\u2069" }, "session", "U+2069"},
		{"bidi in id", func(e *Event) { e.ID = "e\u202d" }, "id", "U+202D"},
		{"user_hash without user", func(e *Event) { e.UserHash = "ab" }, "user_hash", "given without user"},
		{"user_hash too long", func(e *Event) { e.User, e.UserHash = "u", strings.Repeat("a", MaxUserHashBytes+1) }, "user_hash", "more than the maximum 128"},
		{"user_hash with user", func(e *Event) { e.User, e.UserHash = "u", strings.Repeat("a", 64) }, "", ""},
		{"bidi in page is text, allowed", func(e *Event) { e.Page = "https://x/\u202e" }, "", ""},
	}
	checkMutations(t, tests)
}

// TestDecodeRejectsReplacedText checks that text encoding/json would
// silently replace with U+FFFD is rejected per event, naming the field,
// so that two different ids can never decode to the same one.
func TestDecodeRejectsReplacedText(t *testing.T) {
	raw := func(id, member string) string {
		return `{"id":"` + id + `","type":"like","item":"i","visitor":"v",` + member + `}`
	}
	tests := []struct {
		name, event   string
		field, reason string // field "-": accepted
	}{
		{"invalid byte in visitor", `{"id":"a","type":"like","item":"i","visitor":"v` + "\xff" + `"}`, "visitor", "not valid UTF-8 (byte 0xff, at byte 47 of the event)"},
		{"other invalid byte, same visitor once replaced", `{"id":"b","type":"like","item":"i","visitor":"v` + "\xfe" + `"}`, "visitor", "byte 0xfe"},
		{"truncated sequence in item", `{"id":"c","type":"like","visitor":"v","item":"i` + "\xe2\x82" + `"}`, "item", "not valid UTF-8 (byte 0xe2"},
		{"invalid byte in id", `{"id":"d` + "\x80" + `","type":"like","visitor":"v","item":"i"}`, "id", "byte 0x80"},
		{"invalid byte in a prop", raw("e", `"props":{"k":"`+"\xc0\xaf"+`"}`), "props", "byte 0xc0"},
		{"invalid byte in page", raw("f", `"page":"https://x/`+"\xff"+`"`), "page", "not valid UTF-8"},
		{"lone high surrogate", raw("g", `"user":"u\ud800"`), "user", `unpaired UTF-16 surrogate \ud800 (not a character, at byte`},
		{"lone low surrogate", raw("h", `"session":"\uDC00s"`), "session", `unpaired UTF-16 surrogate \udc00`},
		{"high surrogate then a non-surrogate", raw("i", `"offer":"\ud83d\u0041"`), "offer", `\ud83d`},
		{"reversed pair", raw("j", `"offer":"\ude00\ud83d"`), "offer", `\ude00`},
		{"surrogate at the end", raw("k", `"element":"\ud83d"`), "element", `\ud83d`},
		{"surrogate pair is one character", raw("l", `"user":"\ud83d\ude00"`), "-", ""},
		{"escaped backslash before u", raw("m", `"user":"\\ud800"`), "-", ""},
		{"escaped quote then a surrogate", raw("n", `"user":"a\"\ud800"`), "user", `\ud800`},
		{"bmp escape", raw("o", `"user":"caf\u00e9"`), "-", ""},
		{"escaped bidi control in visitor", `{"id":"p","type":"like","item":"i","visitor":"v\u202e"}`, "visitor", "bidirectional control character U+202E"},
		{"escaped C1 control in item", `{"id":"q","type":"like","visitor":"v","item":"\u0085"}`, "item", "control character U+0085"},
		{"reserved visitor", `{"id":"r","type":"like","visitor":"user:alice","item":"i"}`, "visitor", `the prefix "user:" is reserved`},
		{"escaped reserved visitor", `{"id":"s","type":"like","visitor":"\u0075ser:alice","item":"i"}`, "visitor", `the prefix "user:" is reserved`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := "[" + ev("ok1") + "," + tt.event + "," + ev("ok2") + "]"
			res, err := DecodeBatch(strings.NewReader(body), testNow, Limits{})
			if err != nil {
				t.Fatalf("DecodeBatch: %v", err)
			}
			if tt.field == "-" {
				if len(res.Accepted) != 3 || len(res.Rejected) != 0 {
					t.Fatalf("accepted %d, rejected %+v; want all 3 accepted", len(res.Accepted), res.Rejected)
				}
				return
			}
			if len(res.Accepted) != 2 || len(res.Rejected) != 1 {
				t.Fatalf("accepted %d, rejected %+v; want the middle event rejected", len(res.Accepted), res.Rejected)
			}
			if r := res.Rejected[0]; r.Index != 1 || r.Field != tt.field || !strings.Contains(r.Reason, tt.reason) {
				t.Errorf("rejection %+v, want index 1, field %s, reason containing %q", r, tt.field, tt.reason)
			}
			// The broker's decoders judge the same way.
			_, derr := DecodeEvent([]byte(tt.event), testNow, Limits{})
			var fe *FieldError
			if !errors.As(derr, &fe) || fe.Field != tt.field {
				t.Errorf("DecodeEvent = %v, want field %s", derr, tt.field)
			}
		})
	}
}

func TestCheckJSONUnicode(t *testing.T) {
	tests := []struct{ body, field, reason string }{
		{`{"id":"sku-1","title":"ok \u00e9 \ud83d\ude00"}`, "", ""},
		{"  {\"id\":\"sku-\xff\"}", "id", "not valid UTF-8 (byte 0xff, at byte 13 of the body)"},
		{`{"title":"t","id":"a\udfff"}`, "id", `unpaired UTF-16 surrogate \udfff`},
		{`{"tags":["a","b` + "\xff" + `"]}`, "tags", "byte 0xff"},
		{`["` + "\xff" + `"]`, "", "byte 0xff"},
		{"{\"k\xff\":1}", "", "byte 0xff"},
	}
	for _, tt := range tests {
		err := CheckJSONUnicode([]byte(tt.body))
		if tt.reason == "" {
			if err != nil {
				t.Errorf("%q: %v", tt.body, err)
			}
			continue
		}
		if err == nil || err.Field != tt.field || !strings.Contains(err.Reason, tt.reason) {
			t.Errorf("%q: %v, want field %q and %q", tt.body, err, tt.field, tt.reason)
		}
	}
}

func TestBatchResultCheck(t *testing.T) {
	body := "[" + ev("a") + `,{"id":"bad","type":"hover","visitor":"v"},` + ev("b") + "," + ev("c") + "," + ev("d") + "]"
	res, err := DecodeBatch(strings.NewReader(body), testNow, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	res.Check(func(e *Event) *FieldError {
		seen = append(seen, e.ID)
		e.Session = "checked"
		if e.ID == "b" || e.ID == "d" {
			return &FieldError{Field: "user_hash", Reason: "no"}
		}
		return nil
	})
	if strings.Join(seen, ",") != "a,b,c,d" {
		t.Errorf("checked %v, want the accepted events in body order", seen)
	}
	if len(res.Accepted) != 2 || res.Accepted[0].ID != "a" || res.Accepted[1].ID != "c" || res.Accepted[1].Session != "checked" {
		t.Fatalf("accepted %+v", res.Accepted)
	}
	want := []Rejection{{Index: 1, ID: "bad", Field: "type"}, {Index: 2, ID: "b", Field: "user_hash", Reason: "no"}, {Index: 4, ID: "d", Field: "user_hash", Reason: "no"}}
	if len(res.Rejected) != len(want) {
		t.Fatalf("rejected %+v", res.Rejected)
	}
	for i, w := range want {
		if r := res.Rejected[i]; r.Index != w.Index || r.ID != w.ID || r.Field != w.Field {
			t.Errorf("rejected[%d] = %+v, want %+v", i, r, w)
		}
	}
	// A second check sees only what the first kept, with their indexes.
	res.Check(func(e *Event) *FieldError { return &FieldError{Field: "user", Reason: "x"} })
	if len(res.Accepted) != 0 || len(res.Rejected) != 5 || res.Rejected[0].Index != 0 || res.Rejected[3].Index != 3 {
		t.Errorf("after a second check: accepted %d, rejected %+v", len(res.Accepted), res.Rejected)
	}
}

func TestUserHash(t *testing.T) {
	secret := []byte("test-identity-secret-0123456789")
	// printf %s u-42 | openssl dgst -sha256 -hmac test-identity-secret-0123456789
	const want = "a61774048706bedf09687ebf18bd214915f9a889957df24b6c50588ee36e5335"
	if got := UserHash(secret, "u-42"); got != want {
		t.Fatalf("UserHash = %s, want %s", got, want)
	}
	old := []byte("the-old-identity-secret-abcdef")
	tests := []struct {
		name    string
		secrets [][]byte
		user    string
		hash    string
		ok      bool
	}{
		{"valid", [][]byte{secret}, "u-42", want, true},
		{"upper-case hex", [][]byte{secret}, "u-42", strings.ToUpper(want), true},
		{"rotation: second secret", [][]byte{old, secret}, "u-42", want, true},
		{"other user", [][]byte{secret}, "u-43", want, false},
		{"other secret", [][]byte{old}, "u-42", want, false},
		{"one digit off", [][]byte{secret}, "u-42", want[:63] + "4", false},
		{"truncated", [][]byte{secret}, "u-42", want[:62], false},
		{"not hex", [][]byte{secret}, "u-42", strings.Repeat("z", 64), false},
		{"empty", [][]byte{secret}, "u-42", "", false},
		{"no secrets", nil, "u-42", want, false},
	}
	for _, tt := range tests {
		if got := VerifyUserHash(tt.secrets, tt.user, tt.hash); got != tt.ok {
			t.Errorf("%s: VerifyUserHash = %v, want %v", tt.name, got, tt.ok)
		}
	}
}

// TestBrokerDecodersDropUserHash: producers on the broker are trusted, so
// a user_hash they send is neither needed nor kept.
func TestBrokerDecodersDropUserHash(t *testing.T) {
	body := `{"id":"a","type":"identify","visitor":"v","user":"u","user_hash":"abc"}`
	e, err := DecodeEvent([]byte(body), testNow, Limits{})
	if err != nil || e.UserHash != "" || e.User != "u" {
		t.Errorf("DecodeEvent = %+v, %v", e, err)
	}
	for _, b := range []string{body, "[" + body + "]"} {
		m, err := DecodeMessage([]byte(b), testNow, Limits{})
		if err != nil || len(m.Events) != 1 || m.Events[0].UserHash != "" {
			t.Errorf("DecodeMessage(%s) = %+v, %v", b, m, err)
		}
	}
	// The HTTP collector keeps it for the API to verify.
	res, err := DecodeBatch(bytes.NewReader([]byte("["+body+"]")), testNow, Limits{})
	if err != nil || len(res.Accepted) != 1 || res.Accepted[0].UserHash != "abc" {
		t.Errorf("DecodeBatch = %+v, %v", res, err)
	}
}
