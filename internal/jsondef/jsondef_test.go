package jsondef_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/internal/jsondef"
)

func TestDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		out  string // String and MarshalJSON (unquoted)
	}{
		{"0s", 0, "0s"},
		{"7d", 7 * 24 * time.Hour, "7d"},
		{"48h", 48 * time.Hour, "2d"},
		{"1h30m", 90 * time.Minute, "90m"},
		{"90s", 90 * time.Second, "90s"},
		{"250ms", 250 * time.Millisecond, "250ms"},
		{"3h", 3 * time.Hour, "3h"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			d, err := jsondef.ParseDuration(tt.in)
			if err != nil || d != tt.want {
				t.Fatalf("ParseDuration(%q) = %v, %v, want %v", tt.in, d, err, tt.want)
			}
			if s := jsondef.Duration(d).String(); s != tt.out {
				t.Errorf("String() = %q, want %q", s, tt.out)
			}
			b, err := json.Marshal(jsondef.Duration(d))
			if err != nil || string(b) != `"`+tt.out+`"` {
				t.Errorf("MarshalJSON = %s, %v, want %q", b, err, tt.out)
			}
			var back jsondef.Duration
			if err := json.Unmarshal(b, &back); err != nil || time.Duration(back) != tt.want {
				t.Errorf("UnmarshalJSON(%s) = %v, %v, want %v", b, time.Duration(back), err, tt.want)
			}
		})
	}
	for _, bad := range []string{"", "7", "d", "-1d", "70000d", "1x", "soon"} {
		if d, err := jsondef.ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", bad, d)
		}
	}
	var d jsondef.Duration
	if err := json.Unmarshal([]byte(`60`), &d); err == nil {
		t.Errorf("UnmarshalJSON(60) accepted a number")
	}
}

// decoded is what decode reads from a test document.
type decoded struct {
	Name   string
	ID     string
	Ref    string
	N      int64
	HasN   bool
	F      float64
	On     bool
	Every  jsondef.Duration
	At     *time.Time
	Tags   []string
	Nested string
}

// decode reads every kind of member, as a definition's decoder does.
func decode(b []byte) (decoded, error) {
	var d decoded
	o, err := jsondef.NewObject("doc", b)
	if err != nil {
		return d, err
	}
	if d.Name, err = o.Str("name", true, 10); err != nil {
		return d, err
	}
	if d.ID, err = o.ID("id", false, 8, false); err != nil {
		return d, err
	}
	if d.Ref, err = o.ID("ref", false, 8, true); err != nil {
		return d, err
	}
	if d.N, d.HasN, err = o.IntIn("n", -5, 5); err != nil {
		return d, err
	}
	if d.F, _, err = o.Num("f"); err != nil {
		return d, err
	}
	if d.On, err = o.Bool("on", true); err != nil {
		return d, err
	}
	if d.Every, err = o.Duration("every", time.Hour, time.Minute, 7*24*time.Hour); err != nil {
		return d, err
	}
	if d.At, err = o.Time("at"); err != nil {
		return d, err
	}
	if d.Tags, err = o.Strs("tags", 3, func(path, s string) error {
		if s == "" {
			return jsondef.Errorf(path, "empty")
		}
		return nil
	}); err != nil {
		return d, err
	}
	if raw, ok := o.Get("nested"); ok {
		no, err := jsondef.NewObject(jsondef.Join(o.Path, "nested"), raw)
		if err != nil {
			return d, err
		}
		if d.Nested, err = no.Str("x", false, 10); err != nil {
			return d, err
		}
		if err := no.Done("x"); err != nil {
			return d, err
		}
	}
	o.Ignore("created")
	return d, o.Done("name, id, ref, n, f, on, every, at, tags, nested")
}

func TestObject(t *testing.T) {
	at := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	d, err := decode([]byte(`{"name":"a","id":"x-1.y","ref":"o:1","n":-5,"f":0.5,"on":false,
		"every":"7d","at":"2026-11-27T01:00:00+01:00","tags":["p","q"],"nested":{"x":"z"},"created":"ignored"}`))
	if err != nil {
		t.Fatal(err)
	}
	want := decoded{Name: "a", ID: "x-1.y", Ref: "o:1", N: -5, HasN: true, F: 0.5, On: false,
		Every: jsondef.Duration(7 * 24 * time.Hour), At: &at, Tags: []string{"p", "q"}, Nested: "z"}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("got  %+v\nwant %+v", d, want)
	}
	// Absent and null members take their defaults.
	d, err = decode([]byte(`{"name":"a","id":null,"n":null,"on":null,"every":null,"at":null,"tags":null}`))
	if err != nil {
		t.Fatal(err)
	}
	want = decoded{Name: "a", On: true, Every: jsondef.Duration(time.Hour)}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("defaults: got  %+v\nwant %+v", d, want)
	}
}

func TestObjectErrors(t *testing.T) {
	tests := []struct {
		name, body, path, want string
	}{
		{"not an object", `[1]`, "doc", "doc: must be an object, got an array"},
		{"nothing", ``, "doc", "doc: must be an object, got nothing"},
		{"syntax error", `{"name" "a"}`, "doc", "doc: malformed JSON at byte 9: invalid character"},
		{"truncated", `{"name":`, "doc", "doc: malformed JSON"},
		{"missing", `{}`, "doc.name", "doc.name: missing"},
		{"empty required", `{"name":""}`, "doc.name", "doc.name: missing"},
		{"not a string", `{"name":1}`, "doc.name", "doc.name: must be a string, got a number"},
		{"too long", `{"name":"abcdefghijk"}`, "doc.name", "doc.name: 11 bytes long, at most 10"},
		{"control", `{"name":"a\u0001"}`, "doc.name", "doc.name: must be valid UTF-8 without control characters"},
		{"id with colon", `{"name":"a","id":"a:b"}`, "doc.id", `doc.id: "a:b": want 1 to 8 letters, digits, '-', '_' or '.'`},
		{"ref too long", `{"name":"a","ref":"abcdefghi"}`, "doc.ref", `doc.ref: "abcdefghi": want 1 to 8 letters, digits, '-', '_', '.' or ':'`},
		{"not an integer", `{"name":"a","n":1.5}`, "doc.n", "doc.n: 1.5 is not an integer in [-5, 5]"},
		{"out of range", `{"name":"a","n":6}`, "doc.n", "doc.n: 6 is not an integer in [-5, 5]"},
		{"not a number", `{"name":"a","f":"1"}`, "doc.f", "doc.f: must be a number, got a string"},
		{"not a boolean", `{"name":"a","on":1}`, "doc.on", "doc.on: must be true or false, got a number"},
		{"duration number", `{"name":"a","every":60}`, "doc.every", "doc.every: must be a duration string such as"},
		{"bad duration", `{"name":"a","every":"10x"}`, "doc.every", `doc.every: "10x" is not a duration`},
		{"short duration", `{"name":"a","every":"10s"}`, "doc.every", `doc.every: "10s" is not in [1m, 7d]`},
		{"bad time", `{"name":"a","at":"tomorrow"}`, "doc.at", `doc.at: "tomorrow" is not an RFC 3339 time`},
		{"tags not array", `{"name":"a","tags":"p"}`, "doc.tags", "doc.tags: must be an array of strings, got a string"},
		{"too many tags", `{"name":"a","tags":["a","b","c","d"]}`, "doc.tags", "doc.tags: 4 elements, at most 3"},
		{"tag number", `{"name":"a","tags":["a",2]}`, "doc.tags[1]", "doc.tags[1]: must be a string, got a number"},
		{"tag check", `{"name":"a","tags":["a",""]}`, "doc.tags[1]", "doc.tags[1]: empty"},
		{"tag twice", `{"name":"a","tags":["a","a"]}`, "doc.tags[1]", `doc.tags[1]: "a" is listed twice`},
		{"nested not object", `{"name":"a","nested":[]}`, "doc.nested", "doc.nested: must be an object, got an array"},
		{"nested unknown", `{"name":"a","nested":{"y":1}}`, "doc.nested.y", "doc.nested.y: unknown member (valid: x)"},
		{"unknown, first sorted", `{"name":"a","zz":1,"colour":1}`, "doc.colour", "doc.colour: unknown member (valid: name, id,"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decode([]byte(tt.body))
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if !errors.Is(err, engine.ErrInvalid) {
				t.Errorf("%v does not wrap engine.ErrInvalid", err)
			}
			var je *jsondef.Error
			if !errors.As(err, &je) {
				t.Fatalf("%v is %T, not a *jsondef.Error", err, err)
			}
			if je.Path != tt.path {
				t.Errorf("Path = %q, want %q", je.Path, tt.path)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error %q, want it to start with %q", err, tt.want)
			}
		})
	}
}

func TestErrorWithoutPath(t *testing.T) {
	err := jsondef.Errorf("", "experiment of %d bytes", 70000)
	if err.Error() != "experiment of 70000 bytes" {
		t.Errorf("Error() = %q", err)
	}
}

func TestKeysAndRaw(t *testing.T) {
	o, err := jsondef.NewObject("", []byte(`{"b":null,"a":1}`))
	if err != nil {
		t.Fatal(err)
	}
	if keys := o.Keys(); !reflect.DeepEqual(keys, []string{"a", "b"}) {
		t.Errorf("Keys() = %q, want [a b]", keys)
	}
	if raw, ok := o.Raw("b"); !ok || string(raw) != "null" {
		t.Errorf("Raw(b) = %s, %v, want null, true", raw, ok)
	}
	if raw, ok := o.Get("b"); ok {
		t.Errorf("Get(b) = %s, true, want absent (null)", raw)
	}
	if err := o.Done("a, b"); err == nil || err.Error() != "a: unknown member (valid: a, b)" {
		t.Errorf("Done: %v, want a: unknown member", err)
	}
}

func TestArray(t *testing.T) {
	items, err := jsondef.Array("xs", []byte(` [1, {"a":2}] `))
	if err != nil || len(items) != 2 || string(items[1]) != `{"a":2}` {
		t.Errorf("Array = %q, %v", items, err)
	}
	for body, want := range map[string]string{
		`{}`:    "xs: must be an array, got an object",
		`[1,`:   "xs: malformed array",
		`null`:  "xs: must be an array, got null",
		`"[1]"`: "xs: must be an array, got a string",
	} {
		if _, err := jsondef.Array("xs", []byte(body)); err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("Array(%s): %v, want %q", body, err, want)
		}
	}
}

func TestQuote(t *testing.T) {
	if q := jsondef.Quote("a\"b"); q != `"a\"b"` {
		t.Errorf("Quote = %s", q)
	}
	long := strings.Repeat("é", 40) // 80 bytes: cut at a rune start, at most 60 bytes
	if q := jsondef.Quote(long); q != `"`+strings.Repeat("é", 30)+`…"` {
		t.Errorf("Quote(long) = %s", q)
	}
}

func ExampleObject() {
	o, err := jsondef.NewObject("rule", []byte(`{"name":"exit shoes","cooldown":"2d","colour":"red"}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	name, _ := o.Str("name", true, 100)
	cooldown, _ := o.Duration("cooldown", time.Hour, 0, 366*24*time.Hour)
	fmt.Println(name, cooldown)
	fmt.Println(o.Done("name, cooldown"))
	// Output:
	// exit shoes 2d
	// rule.colour: unknown member (valid: name, cooldown)
}
