package signals

import (
	"bytes"
	"encoding/json"
	"testing"
)

var fuzzSeeds = []string{
	`[` + ev("a") + `,` + ev("b") + `]`,
	`{"key":"pk_1","events":[` + ev("a") + `]}`,
	`[{"id":"d","type":"dwell","visitor":"v","item":"i","value":1850,"ts":1795428000000,"props":{"a":"b"}}]`,
	`[{"id":"n","type":"dwell","visitor":"v","item":"i","value":NaN}]`,
	`[{"id":"n","type":"scroll","visitor":"v","value":"Infinity"}]`,
	`[{"id":"x","type":"identify","visitor":"v","user":"u","ts":"2026-11-23T09:00:00+02:00"}]`,
	`[1,"x",null,[],{}]`,
	`[{"id":"a"}, {"id":"a"}]`,
	`{"events":[{"id":"q" "type":"view"}]}`,
	`[{"id":"\u0000","type":"view","visitor":"\ud800","item":"i"}]`,
	`[{"ID":"c","Type":"conversion","Visitor":"v","Item":"i","Value":1e9,"ts":"1795428000000"}]`,
	`[[[[{"id":"deep"}]]]]`,
	`{"id":"a","type":"view"}`,
	`["\"]`,
	``,
}

// FuzzDecodeBatch checks that DecodeBatch never panics, that every event
// is either accepted or rejected exactly once, and that accepted events are
// valid and survive a JSON round trip unchanged.
func FuzzDecodeBatch(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		res, err := DecodeBatch(bytes.NewReader(body), testNow, Limits{})
		if err != nil {
			if len(res.Accepted) > 0 || len(res.Rejected) > 0 {
				t.Fatalf("error %v with a non-empty result", err)
			}
			return
		}
		ids := map[string]bool{}
		for i := range res.Accepted {
			e := &res.Accepted[i]
			checkAccepted(t, e)
			if ids[e.ID] {
				t.Fatalf("id %q accepted twice", e.ID)
			}
			ids[e.ID] = true
		}
		last := -1
		for _, r := range res.Rejected {
			if r.Index <= last || r.Reason == "" {
				t.Fatalf("bad rejection list %+v", res.Rejected)
			}
			last = r.Index
		}
	})
}

// FuzzDecodeEvent checks that DecodeEvent never panics and that accepted
// events are valid and survive a JSON round trip unchanged.
func FuzzDecodeEvent(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Add([]byte(ev("a")))
	f.Add([]byte(`{"id":"e","type":"dwell","visitor":"v","item":"i","value":-0,"props":{}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		e, err := DecodeEvent(body, testNow, Limits{})
		if err != nil {
			if e.ID != "" || e.Type != "" {
				t.Fatalf("error %v with a non-zero event %+v", err, e)
			}
			return
		}
		checkAccepted(t, &e)
	})
}

func checkAccepted(t *testing.T, e *Event) {
	t.Helper()
	if err := e.Validate(testNow, Limits{}); err != nil {
		t.Fatalf("accepted event does not validate: %v\n%+v", err, e)
	}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatalf("accepted event does not encode: %v", err)
	}
	back, err := DecodeEvent(b, testNow, Limits{})
	if err != nil {
		t.Fatalf("re-encoded event %s rejected: %v", b, err)
	}
	if !sameEvent(&back, e) {
		t.Fatalf("round trip changed the event:\n got %+v\nwant %+v", back, *e)
	}
}
