package archive

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kairoshq/kairos/signals"
)

// stdEncode is the reference: encoding/json's Encoder without HTML escaping.
func stdEncode(t testing.TB, e *signals.Event) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		t.Fatalf("encoding/json: %v", err)
	}
	return b.Bytes()
}

func TestEventShape(t *testing.T) {
	// If this fails, signals.Event changed: update eventShape and
	// appendEvent (the archive meanwhile falls back to encoding/json).
	if !fastEncode {
		t.Fatal("signals.Event no longer matches appendEvent's field list")
	}
	type other struct{ ID string }
	if shapeMatches(reflect.TypeFor[other]()) {
		t.Fatal("shapeMatches accepted a different struct")
	}
}

func TestAppendEventMatchesEncodingJSON(t *testing.T) {
	ts := signals.Timestamp{Time: time.Date(2026, 11, 23, 14, 10, 0, 123456789, time.FixedZone("x", 3600))}
	tests := []struct {
		name string
		e    signals.Event
	}{
		{"minimal", signals.Event{ID: "1", Type: "view", Visitor: "v", Time: ts}},
		{"zero time", signals.Event{ID: "1", Type: "view", Visitor: "v"}},
		{"all fields", signals.Event{ID: "id", Type: "dwell", Visitor: "v", User: "u", UserHash: "0a1b", Item: "i", Offer: "o", Token: "t",
			Time: ts, Value: 1234.5, Session: "s", Page: "https://x.example/?a=1&b=<2>", Element: "item:1", Source: "touch", Referrer: "r",
			Props: map[string]string{"z": "1", "a": "2", "m": ""}}},
		{"escapes", signals.Event{ID: "q\"b\\s/\b\f\n\r\t\x00\x1f\x7f", Type: "view", Visitor: "é中\u2028\u2029😀", Item: "bad\xff\xfeutf8", Time: ts}},
		{"tiny value", signals.Event{ID: "1", Type: "view", Visitor: "v", Time: ts, Value: 1e-7}},
		{"huge value", signals.Event{ID: "1", Type: "view", Visitor: "v", Time: ts, Value: -3e21}},
		{"integer value", signals.Event{ID: "1", Type: "view", Visitor: "v", Time: ts, Value: 100}},
		{"negative zero", signals.Event{ID: "1", Type: "view", Visitor: "v", Time: ts, Value: math.Copysign(0, -1)}},
		{"empty props", signals.Event{ID: "1", Type: "view", Visitor: "v", Time: ts, Props: map[string]string{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := appendEvent(nil, &tt.e, nil)
			if err != nil {
				t.Fatal(err)
			}
			if want := stdEncode(t, &tt.e); !bytes.Equal(got, want) {
				t.Fatalf("appendEvent:\n got  %s want %s", got, want)
			}
		})
	}
	for _, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		e := signals.Event{ID: "1", Value: v}
		if _, _, err := appendEvent(nil, &e, nil); err == nil {
			t.Errorf("value %v encoded without error", v)
		}
	}
}

func TestAppendEventAllocs(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	e := mkEvent(rng, "id-1", "visitor-1", t0)
	e.Props = map[string]string{"b": "1", "a": "2", "c": "3"}
	buf := make([]byte, 0, 1024)
	keys := make([]string, 0, 8)
	allocs := testing.AllocsPerRun(100, func() {
		buf, keys, _ = appendEvent(buf[:0], &e, keys)
	})
	if allocs != 0 {
		t.Fatalf("appendEvent allocates %.1f times per event", allocs)
	}
}

// FuzzAppendEvent checks appendEvent against encoding/json on arbitrary
// (untrusted) field content.
func FuzzAppendEvent(f *testing.F) {
	f.Add("id", "view", "visitor", "https://x/?a=1&b=2", "k", "v", 12.5, int64(1700000000123))
	f.Add("\x00\"\\", "dwell", "é\u2028", "\xff", "", "\t", 1e-9, int64(0))
	f.Add("", "", "", "", "z", "<>&", -1e300, int64(-1))
	f.Fuzz(func(t *testing.T, id, typ, visitor, page, key, val string, value float64, ms int64) {
		if math.IsNaN(value) || math.IsInf(value, 0) {
			return
		}
		e := signals.Event{ID: id, Type: signals.Type(typ), Visitor: visitor, Page: page, Value: value,
			Time: signals.Timestamp{Time: time.UnixMilli(ms % 253402300799999)}}
		if key != "" {
			e.Props = map[string]string{key: val, key + "2": page}
		}
		got, _, err := appendEvent(nil, &e, nil)
		if err != nil {
			t.Fatal(err)
		}
		if want := stdEncode(t, &e); !bytes.Equal(got, want) {
			t.Fatalf("appendEvent:\n got  %q\n want %q", got, want)
		}
	})
}

// TestUserHashNotArchived: an identity hash is a credential; the archive
// never writes it, whatever reaches Append.
func TestUserHashNotArchived(t *testing.T) {
	o := testOptions(t, nil)
	a := mustOpen(t, o)
	ev := signals.Event{ID: "1", Type: "view", Visitor: "v", User: "u", UserHash: "0a1b2c", Item: "i"}
	mustAppend(t, a, []signals.Event{ev})
	name := a.Segments()[0].Name
	mustClose(t, a)
	raw := decompressFile(t, filepath.Join(o.Dir, segmentDir, name))
	if strings.Contains(raw, "user_hash") || strings.Contains(raw, "0a1b2c") || !strings.Contains(raw, `"user":"u"`) {
		t.Fatalf("archived %s", raw)
	}
}
