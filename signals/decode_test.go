package signals

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// ev returns the JSON of a valid view event with the given id.
func ev(id string) string {
	return `{"id":"` + id + `","type":"view","visitor":"v1","item":"i1","ts":"2026-11-23T09:59:00Z"}`
}

func TestDecodeBatch(t *testing.T) {
	type rej struct {
		index  int
		id     string
		field  string
		reason string // substring
	}
	tests := []struct {
		name     string
		body     string
		key      string
		accepted []string // ids
		rejected []rej
	}{
		{"array", "[" + ev("a") + "," + ev("b") + "]", "", []string{"a", "b"}, nil},
		{"empty array", " [ ] ", "", nil, nil},
		{"object with key", `{"key":"pk_1","events":[` + ev("a") + `],"sent_at":1}`, "pk_1", []string{"a"}, nil},
		{"object key after events", `{"events":[` + ev("a") + `],"key":"pk_\u00e9"}`, "pk_é", []string{"a"}, nil},
		{"BOM and whitespace", "\xEF\xBB\xBF\n[\t" + ev("a") + "\r\n]\n", "", []string{"a"}, nil},
		{"one bad type among good", "[" + ev("a") + `,{"id":"b","type":"hover","visitor":"v"},` + ev("c") + "]", "", []string{"a", "c"},
			[]rej{{1, "b", "type", `unknown type "hover" (valid types: view, click, like, dwell, scroll, add_to_cart, conversion, impression, identify, exit)`}}},
		{"NaN bare word", `[{"id":"n1","type":"dwell","visitor":"v","item":"i","value":NaN},` + ev("a") + "]", "", []string{"a"},
			[]rej{{0, "n1", "value", "NaN is not a number"}}},
		{"NaN string", `[{"id":"n2","type":"dwell","visitor":"v","item":"i","value":"NaN"}]`, "", nil,
			[]rej{{0, "n2", "value", "NaN is not a number"}}},
		{"-Infinity bare word", `[{"value":-Infinity,"id":"n3"}]`, "", nil,
			[]rej{{0, "n3", "value", "-Infinity is not a number"}}},
		{"Infinity string", `[{"id":"n4","value":"Infinity"}]`, "", nil,
			[]rej{{0, "n4", "value", "Infinity is not a number"}}},
		{"value string", `[{"id":"s","value":"12"}]`, "", nil, []rej{{0, "s", "value", `must be a number, got string "12"`}}},
		{"value overflow", `[{"id":"o","type":"view","value":1e400}]`, "", nil, []rej{{0, "o", "value", "1e400 is out of range"}}},
		{"value bool", `[{"id":"o","value":true}]`, "", nil, []rej{{0, "o", "value", "must be a number, got bool"}}},
		{"id number", `[{"id":42,"type":"view"}]`, "", nil, []rej{{0, "", "id", "must be a string, got number"}}},
		{"item number", `[{"id":"x","type":"view","visitor":"v","item":7}]`, "", nil, []rej{{0, "x", "item", "must be a string, got number"}}},
		{"props not object", `[{"id":"p","props":[1]}]`, "", nil, []rej{{0, "p", "props", "must be an object with string values, got array"}}},
		{"props value number", `[{"id":"p","props":{"a":"x","b":2}}]`, "", nil, []rej{{0, "p", "props", `value of "b" must be a string, got number`}}},
		{"bad ts", `[{"id":"t","type":"view","visitor":"v","item":"i","ts":"yesterday"}]`, "", nil,
			[]rej{{0, "t", "ts", `"yesterday" is neither RFC 3339 nor epoch milliseconds`}}},
		{"ts far future", `[{"id":"t","type":"view","visitor":"v","item":"i","ts":"2031-01-01T00:00:00Z"}]`, "", nil,
			[]rej{{0, "t", "ts", "2031-01-01T00:00:00.000Z is more than 10m0s in the future"}}},
		{"ts epoch ms", `[{"id":"t","type":"view","visitor":"v","item":"i","ts":1795428000000}]`, "", []string{"t"}, nil},
		{"missing ts is filled", `[{"id":"t","type":"view","visitor":"v","item":"i"}]`, "", []string{"t"}, nil},
		{"not an object", `[1,"x",null,[],` + ev("a") + `]`, "", []string{"a"},
			[]rej{{0, "", "", "must be a JSON object, got number"}, {1, "", "", "got string"}, {2, "", "", "got null"}, {3, "", "", "got array"}}},
		{"missing visitor", `[{"id":"m","type":"view","item":"i"}]`, "", nil, []rej{{0, "m", "visitor", "missing"}}},
		{"syntax error inside event", `[{"id":"q" "type":"view"},` + ev("a") + `]`, "", []string{"a"},
			[]rej{{0, "q", "", "invalid JSON at byte 11 of the event"}}},
		{"bad value token", `[{"id":"q","value":1.2.3}]`, "", nil, []rej{{0, "q", "value", "invalid JSON"}}},
		{"duplicate id", "[" + ev("a") + "," + ev("b") + "," + ev("a") + "]", "", []string{"a", "b"},
			[]rej{{2, "a", "id", "duplicate id in batch (first at index 0)"}}},
		{"duplicate of a rejected id is kept", `[{"id":"a","type":"nope","visitor":"v"},` + ev("a") + "]", "", []string{"a"},
			[]rej{{0, "a", "type", "unknown type"}}},
		{"unknown members ignored", `[{"id":"u","type":"view","visitor":"v","item":"i","colour":"red"}]`, "", []string{"u"}, nil},
		{"case-insensitive names", `[{"ID":"c","Type":"view","Visitor":"v","Item":"i"}]`, "", []string{"c"}, nil},
		{"overlong id not echoed", `[{"id":"` + strings.Repeat("x", 300) + `","type":"view"}]`, "", nil, []rej{{0, "", "id", "300 bytes long"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := DecodeBatch(strings.NewReader(tt.body), testNow, Limits{})
			if err != nil {
				t.Fatalf("DecodeBatch: %v", err)
			}
			if res.Key != tt.key {
				t.Errorf("Key = %q, want %q", res.Key, tt.key)
			}
			var ids []string
			for i := range res.Accepted {
				e := &res.Accepted[i]
				ids = append(ids, e.ID)
				if err := e.Validate(testNow, Limits{}); err != nil {
					t.Errorf("accepted event %s does not validate: %v", e.ID, err)
				}
			}
			if !reflect.DeepEqual(ids, tt.accepted) {
				t.Errorf("accepted %q, want %q", ids, tt.accepted)
			}
			if len(res.Rejected) != len(tt.rejected) {
				t.Fatalf("rejected %+v, want %d rejections", res.Rejected, len(tt.rejected))
			}
			for i, r := range res.Rejected {
				w := tt.rejected[i]
				if r.Index != w.index || r.ID != w.id || r.Field != w.field || !strings.Contains(r.Reason, w.reason) {
					t.Errorf("rejection %d = %+v, want index %d id %q field %q reason containing %q", i, r, w.index, w.id, w.field, w.reason)
				}
			}
		})
	}
}

func TestDecodeBatchMissingTsIsNow(t *testing.T) {
	res, err := DecodeBatch(strings.NewReader(`[{"id":"t","type":"view","visitor":"v","item":"i"}]`), testNow, Limits{})
	if err != nil || len(res.Accepted) != 1 {
		t.Fatalf("DecodeBatch = %+v, %v", res, err)
	}
	if got := res.Accepted[0].Time.Time; !got.Equal(testNow) {
		t.Errorf("ts = %v, want now %v", got, testNow)
	}
}

func TestDecodeBatchWholeBodyErrors(t *testing.T) {
	many := "[" + strings.TrimSuffix(strings.Repeat(ev("x")+",", 501), ",") + "]"
	tests := []struct {
		name string
		body string
		kind error
		msg  string // substring
	}{
		{"empty", "", ErrMalformedBatch, "at byte 0: empty body"},
		{"whitespace", "  \n", ErrMalformedBatch, "empty body"},
		{"number", "42", ErrMalformedBatch, "at byte 0: expected a JSON array of events"},
		{"unterminated array", "[" + ev("a"), ErrMalformedBatch, "missing ']'"},
		{"unterminated string", `[{"id":"a}]`, ErrMalformedBatch, "at byte 7: unterminated string"},
		{"unbalanced", `[{"id":"a"]]`, ErrMalformedBatch, `at byte 10: unexpected ']'`},
		{"missing comma", "[" + ev("a") + " " + ev("b") + "]", ErrMalformedBatch, "after event 0, expected ',' or ']'"},
		{"trailing comma", "[" + ev("a") + ",]", ErrMalformedBatch, "trailing comma"},
		{"trailing data", "[" + ev("a") + "] x", ErrMalformedBatch, "unexpected data after the batch"},
		{"two arrays", "[][]", ErrMalformedBatch, "at byte 2: unexpected data after the batch"},
		{"object without events", `{"key":"k"}`, ErrMalformedBatch, `no "events" array`},
		{"single event object", ev("a"), ErrMalformedBatch, "to send one event, wrap it"},
		{"events not array", `{"events":{}}`, ErrMalformedBatch, `"events" must be an array`},
		{"key not string", `{"key":1,"events":[]}`, ErrMalformedBatch, `"key" must be a string`},
		{"duplicate events", `{"events":[],"events":[]}`, ErrMalformedBatch, `duplicate "events"`},
		{"too deep", strings.Repeat("[", 2000) + strings.Repeat("]", 2000), ErrMalformedBatch, "nesting deeper than 1000"},
		{"too many events", many, ErrBatchTooLarge, "more than 500 events"},
		{"too many bytes", "[" + strings.Repeat(" ", 1<<20) + "]", ErrBatchTooLarge, "larger than 1048576 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := DecodeBatch(strings.NewReader(tt.body), testNow, Limits{})
			if err == nil {
				t.Fatalf("DecodeBatch = %+v, want an error", res)
			}
			if !errors.Is(err, tt.kind) || !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not match %v and ErrInvalid", err, tt.kind)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not contain %q", err, tt.msg)
			}
		})
	}
}

func TestDecodeBatchMaxBatchExact(t *testing.T) {
	var b strings.Builder
	b.WriteString("[")
	for i := range 500 {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(ev(fmt.Sprint("e", i)))
	}
	b.WriteString("]")
	res, err := DecodeBatch(strings.NewReader(b.String()), testNow, Limits{})
	if err != nil || len(res.Accepted) != 500 {
		t.Fatalf("500 events: %d accepted, err %v", len(res.Accepted), err)
	}
	_, err = DecodeBatch(strings.NewReader(b.String()), testNow, Limits{MaxBatch: 499})
	if !errors.Is(err, ErrBatchTooLarge) {
		t.Fatalf("MaxBatch 499: err %v, want ErrBatchTooLarge", err)
	}
}

func TestDecodeBatchReadError(t *testing.T) {
	boom := errors.New("boom")
	_, err := DecodeBatch(iotest.ErrReader(boom), testNow, Limits{})
	if !errors.Is(err, boom) {
		t.Fatalf("err %v, want it to wrap boom", err)
	}
	if errors.Is(err, ErrInvalid) {
		t.Errorf("read error %v matches ErrInvalid", err)
	}
}

func TestDecodeEvent(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		field string // "-" = valid
		msg   string
	}{
		{"valid", " " + ev("a") + "\n", "-", ""},
		{"dwell", `{"id":"d","type":"dwell","visitor":"v","item":"i","value":1850,"element":"item:i"}`, "-", ""},
		{"trailing data", ev("a") + "x", "", "invalid JSON"},
		{"array", "[" + ev("a") + "]", "", "must be a JSON object, got array"},
		{"empty", "", "", "got nothing"},
		{"NaN", `{"id":"a","type":"dwell","visitor":"v","item":"i","value":NaN}`, "value", "value: NaN is not a number"},
		{"missing visitor", `{"id":"a","type":"view","item":"i"}`, "visitor", "visitor: missing"},
		{"too big", `{"id":"a","page":"` + strings.Repeat("x", 70000) + `"}`, "", "more than the maximum 65536"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := DecodeEvent([]byte(tt.body), testNow, Limits{})
			if tt.field == "-" {
				if err != nil {
					t.Fatalf("DecodeEvent: %v", err)
				}
				if e.ID == "" {
					t.Fatal("decoded event has no id")
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("DecodeEvent = %v, want field %q and %q", err, tt.field, tt.msg)
			}
			if !reflect.DeepEqual(e, Event{}) {
				t.Errorf("event not zero on error: %+v", e)
			}
		})
	}
}

// TestEncodeDecodeRoundTrip checks the property membus relies on: a
// normalized, valid event survives JSON unchanged.
func TestEncodeDecodeRoundTrip(t *testing.T) {
	e := Event{
		ID: "e-1", Type: TypeConversion, Visitor: "v-1", User: "u-1", Item: "i-1", Offer: "o-1",
		Token: "tok", Time: Timestamp{testNow.Add(-1234567 * time.Microsecond)}, Value: 19.99,
		Session: "s-1", Page: "https://shop.example/p/1?x=\u00e9", Element: "item:i-1", Referrer: "https://search.example/",
		Props: map[string]string{"utm_source": "news", "device": "mobile"},
	}
	e.Normalize(testNow)
	if err := e.Validate(testNow, Limits{}); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(&e)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeEvent(b, testNow, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if !sameEvent(&got, &e) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, e)
	}
}

// sameEvent compares events, times with Equal.
func sameEvent(a, b *Event) bool {
	x, y := *a, *b
	if !x.Time.Equal(y.Time.Time) {
		return false
	}
	x.Time, y.Time = Timestamp{}, Timestamp{}
	return reflect.DeepEqual(x, y)
}

func TestTimestampJSON(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
		err  string
	}{
		{`"2026-11-23T10:00:00.5+01:00"`, time.Date(2026, 11, 23, 9, 0, 0, 5e8, time.UTC), ""},
		{`1795428000000`, time.UnixMilli(1795428000000), ""},
		{`"1795428000000"`, time.UnixMilli(1795428000000), ""},
		{`null`, time.Time{}, ""},
		{`""`, time.Time{}, ""},
		{`-1`, time.Time{}, "ts: -1 is out of range for epoch milliseconds"},
		{`"soon"`, time.Time{}, `ts: "soon" is neither RFC 3339 nor epoch milliseconds`},
		{`"0001-01-01T00:00:00Z"`, time.Time{}, `ts: "0001-01-01T00:00:00Z" is the zero time`},
		{`true`, time.Time{}, `ts: "true" is neither`},
	}
	for _, tt := range tests {
		var ts Timestamp
		err := json.Unmarshal([]byte(tt.in), &ts)
		if tt.err != "" {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != "ts" || err.Error() != tt.err && !strings.HasPrefix(err.Error(), tt.err) {
				t.Errorf("%s: err %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || !ts.Equal(tt.want) {
			t.Errorf("%s: got %v, %v; want %v", tt.in, ts.Time, err, tt.want)
		}
	}
}

func BenchmarkDecodeBatch(b *testing.B) {
	for _, n := range []int{1, 100, 500} {
		var sb strings.Builder
		sb.WriteString(`{"key":"pk_test","events":[`)
		for i := range n {
			if i > 0 {
				sb.WriteString(",")
			}
			fmt.Fprintf(&sb, `{"id":"e-%d","type":"dwell","visitor":"v-%d","item":"sku-%d","ts":"2026-11-23T09:59:00.123Z","value":1850,"session":"s-1","page":"https://shop.example/p/%d","element":"item:sku-%d"}`, i, i%50, i%1000, i, i)
		}
		sb.WriteString("]}")
		body := sb.String()
		b.Run(fmt.Sprint("events=", n), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			r := strings.NewReader(body)
			for b.Loop() {
				r.Reset(body)
				res, err := DecodeBatch(r, testNow, Limits{})
				if err != nil || len(res.Accepted) != n {
					b.Fatal(err, len(res.Accepted))
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
