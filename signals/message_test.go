package signals

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestDecodeMessage(t *testing.T) {
	type rej struct {
		index  int
		id     string
		raw    string
		field  string
		reason string // substring
	}
	hover := `{"id":"h","type":"hover","visitor":"v"}`
	nan := `{"id":"n","type":"dwell","visitor":"v","item":"i","value":NaN}`
	tests := []struct {
		name     string
		body     string
		array    bool
		accepted []string // ids
		rejected []rej
	}{
		{"single object", ev("a"), false, []string{"a"}, nil},
		{"single object with whitespace and BOM", "\xEF\xBB\xBF \n" + ev("a") + "\r\n", false, []string{"a"}, nil},
		{"single invalid object keeps the whole body", " " + hover + "\n", false, nil,
			[]rej{{0, "h", " " + hover + "\n", "type", `unknown type "hover"`}}},
		{"single object without id", `{"type":"view"}`, false, nil, []rej{{0, "", `{"type":"view"}`, "id", "missing"}}},
		{"array", "[" + ev("a") + ",\n " + ev("b") + "]", true, []string{"a", "b"}, nil},
		{"array of one", "[" + ev("a") + "]", true, []string{"a"}, nil},
		{"mixed valid and invalid", "[" + ev("a") + "," + hover + "," + ev("b") + "," + nan + ",1,[" + ev("x") + "]]", true, []string{"a", "b"},
			[]rej{
				{1, "h", hover, "type", `unknown type "hover"`},
				{3, "n", nan, "value", "NaN is not a number"},
				{4, "", "1", "", "an event must be a JSON object, got number"},
				{5, "", "[" + ev("x") + "]", "", "an event must be a JSON object, got array"},
			}},
		{"repeated ids are kept", "[" + ev("a") + "," + ev("a") + "]", true, []string{"a", "a"}, nil},
		{"visitor may differ between events", `[{"id":"p","type":"view","visitor":"v1","item":"i"},{"id":"q","type":"view","visitor":"v2","item":"i"}]`,
			true, []string{"p", "q"}, nil},
		{"all invalid", "[" + hover + "]", true, nil, []rej{{0, "h", hover, "type", "unknown type"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := DecodeMessage([]byte(tt.body), testNow, Limits{})
			if err != nil {
				t.Fatalf("DecodeMessage: %v", err)
			}
			if res.Array != tt.array {
				t.Errorf("Array = %v, want %v", res.Array, tt.array)
			}
			var got []string
			for i := range res.Events {
				got = append(got, res.Events[i].ID)
				if err := res.Events[i].Validate(testNow, Limits{}); err != nil {
					t.Errorf("accepted event %s does not validate: %v", res.Events[i].ID, err)
				}
			}
			if !slices.Equal(got, tt.accepted) {
				t.Errorf("accepted %v, want %v", got, tt.accepted)
			}
			if len(res.Rejected) != len(tt.rejected) {
				t.Fatalf("rejected %+v, want %d", res.Rejected, len(tt.rejected))
			}
			for i, w := range tt.rejected {
				r := res.Rejected[i]
				if r.Index != w.index || r.ID != w.id || string(r.Raw) != w.raw || r.Err == nil || r.Err.Field != w.field || !strings.Contains(r.Err.Reason, w.reason) {
					t.Errorf("rejection %d = {%d %q %q %v}, want {%d %q %q %s: ...%s...}", i, r.Index, r.ID, r.Raw, r.Err, w.index, w.id, w.raw, w.field, w.reason)
				}
			}
		})
	}
}

// TestDecodeMessageSingleObjectMatchesDecodeEvent: the old single-object
// body decodes exactly as before (DecodeEvent).
func TestDecodeMessageSingleObjectMatchesDecodeEvent(t *testing.T) {
	for _, body := range []string{
		ev("a"),
		`{"id":"d","type":"dwell","visitor":"v","item":"i","value":1850,"ts":1795428000000,"props":{"a":"b"}}`,
		`{"id":"n","type":"dwell","visitor":"v","item":"i","value":"NaN"}`,
		`{"id":"x","type":"view","visitor":"v","item":"i"} trailing`,
		`{"id":"x","type":"view","visitor":"v","item":"i","ts":"2000-01-01T00:00:00Z"}`,
	} {
		want, wantErr := DecodeEvent([]byte(body), testNow, Limits{})
		res, err := DecodeMessage([]byte(body), testNow, Limits{})
		if err != nil {
			t.Fatalf("%s: DecodeMessage: %v", body, err)
		}
		if wantErr != nil {
			if len(res.Events) != 0 || len(res.Rejected) != 1 || res.Rejected[0].Err.Error() != wantErr.Error() {
				t.Errorf("%s: got %+v, want the rejection %v", body, res, wantErr)
			}
			continue
		}
		if len(res.Events) != 1 || len(res.Rejected) != 0 || !sameEvent(&res.Events[0], &want) {
			t.Errorf("%s: got %+v, want %+v", body, res, want)
		}
	}
}

func TestDecodeMessageWholeBodyErrors(t *testing.T) {
	many := func(n int) string {
		s := make([]string, n)
		for i := range s {
			s[i] = ev(fmt.Sprint("e", i))
		}
		return "[" + strings.Join(s, ",") + "]"
	}
	tests := []struct {
		name   string
		body   string
		l      Limits
		kind   error // ErrMalformedBatch, ErrBatchTooLarge or nil (FieldError)
		reason string
	}{
		{"not json", "this is not json", Limits{}, nil, `must be a JSON object (one event) or an array of events, got "this is not json"`},
		{"empty", "  ", Limits{}, nil, "got nothing"},
		{"string", `"x"`, Limits{}, nil, "got string"},
		{"empty array", " [ ] ", Limits{}, ErrMalformedBatch, "empty array"},
		{"unterminated", "[" + ev("a") + ",", Limits{}, ErrMalformedBatch, "unexpected end of body"},
		{"unterminated string", `[{"id":"a}]`, Limits{}, ErrMalformedBatch, "unterminated string"},
		{"trailing comma", "[" + ev("a") + ",]", Limits{}, ErrMalformedBatch, "trailing comma"},
		{"missing comma", "[" + ev("a") + ev("b") + "]", Limits{}, ErrMalformedBatch, "expected ',' or ']'"},
		{"trailing data", "[" + ev("a") + "] x", Limits{}, ErrMalformedBatch, "unexpected data after the array"},
		{"too many events", many(4), Limits{MaxBatch: 3}, ErrBatchTooLarge, "more than 3 events"},
		{"too many bytes", many(4), Limits{MaxBatchBytes: 200}, ErrBatchTooLarge, "more than 200"},
		{"the HTTP wrapper", `{"key":"pk_x","events":[` + ev("a") + `]}`, Limits{}, nil, "is the HTTP form: publish the array of events itself"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := DecodeMessage([]byte(tt.body), testNow, tt.l)
			if err == nil {
				t.Fatalf("DecodeMessage = %+v, want an error", res)
			}
			if len(res.Events) != 0 || len(res.Rejected) != 0 {
				t.Errorf("non-empty result %+v with error %v", res, err)
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("error %v, want one matching ErrInvalid containing %q", err, tt.reason)
			}
			if tt.kind != nil && !errors.Is(err, tt.kind) {
				t.Errorf("error %v does not match %v", err, tt.kind)
			}
			var fe *FieldError
			if tt.kind == nil && !errors.As(err, &fe) {
				t.Errorf("error %T, want a *FieldError", err)
			}
		})
	}
	// At the limits exactly, the body is accepted.
	body := many(3)
	res, err := DecodeMessage([]byte(body), testNow, Limits{MaxBatch: 3, MaxBatchBytes: len(body)})
	if err != nil || len(res.Events) != 3 {
		t.Errorf("body at the limits: %d events, %v", len(res.Events), err)
	}
}

// FuzzDecodeMessage checks that DecodeMessage never panics, that every
// event is accepted or rejected exactly once, that an object body decodes
// as DecodeEvent does and an array body as DecodeBatch does (up to
// repeated ids, which only DecodeBatch rejects).
func FuzzDecodeMessage(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Add([]byte(ev("a")))
	f.Add([]byte("[" + ev("a") + `,{"id":"b","type":"hover","visitor":"v"},1]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		res, err := DecodeMessage(body, testNow, Limits{})
		if err != nil {
			if len(res.Events) > 0 || len(res.Rejected) > 0 {
				t.Fatalf("error %v with a non-empty result", err)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not match ErrInvalid", err)
			}
			return
		}
		for i := range res.Events {
			checkAccepted(t, &res.Events[i])
		}
		last := -1
		for _, r := range res.Rejected {
			if r.Index <= last || r.Err == nil || r.Err.Reason == "" || !bytes.Contains(body, r.Raw) {
				t.Fatalf("bad rejection list %+v", res.Rejected)
			}
			last = r.Index
		}
		if !res.Array {
			if len(res.Events)+len(res.Rejected) != 1 {
				t.Fatalf("object body gave %d events and %d rejections", len(res.Events), len(res.Rejected))
			}
			e, err := DecodeEvent(trimSpace(bytes.TrimPrefix(body, []byte("\xEF\xBB\xBF"))), testNow, Limits{})
			if (err == nil) != (len(res.Events) == 1) || (err == nil && !sameEvent(&e, &res.Events[0])) {
				t.Fatalf("DecodeEvent = %+v, %v; DecodeMessage = %+v", e, err, res)
			}
			return
		}
		batch, err := DecodeBatch(bytes.NewReader(body), testNow, Limits{})
		if err != nil {
			t.Fatalf("DecodeBatch fails (%v) where DecodeMessage succeeds", err)
		}
		if n := len(res.Events) + len(res.Rejected); n != len(batch.Accepted)+len(batch.Rejected) {
			t.Fatalf("DecodeMessage saw %d events, DecodeBatch %d", n, len(batch.Accepted)+len(batch.Rejected))
		}
		dups := 0
		for _, r := range batch.Rejected {
			if strings.HasPrefix(r.Reason, "duplicate id in batch") {
				dups++
			}
		}
		if len(res.Events) != len(batch.Accepted)+dups {
			t.Fatalf("DecodeMessage accepted %d, DecodeBatch %d (+%d duplicates)", len(res.Events), len(batch.Accepted), dups)
		}
	})
}
