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
	// Text encoding/json would replace with U+FFFD, control and
	// bidirectional control characters in ids, reserved visitor ids and
	// user_hash (identity verification).
	"[{\"id\":\"u1\",\"type\":\"like\",\"visitor\":\"v\xff\",\"item\":\"i\"},{\"id\":\"u2\",\"type\":\"like\",\"visitor\":\"v\xfe\",\"item\":\"i\"}]",
	"[{\"id\":\"u3\",\"type\":\"view\",\"visitor\":\"v\",\"item\":\"i\xe2\x82\",\"props\":{\"k\":\"\xc0\xaf\"}}]",
	`[{"id":"s1","type":"view","visitor":"v\ud800","item":"i"},{"id":"s2","type":"view","visitor":"v\udc00","item":"i"}]`,
	`[{"id":"s3","type":"view","visitor":"v\ud83d\ude00","item":"i\\ud800","user":"\ud83d\u0041"}]`,
	`[{"id":"c1","type":"view","visitor":"v\u0085","item":"i"},{"id":"c2","type":"view","visitor":"v","item":"\u009f"}]`,
	`[{"id":"b1","type":"view","visitor":"v\u202e","item":"i"},{"id":"b2","type":"view","visitor":"v","item":"\u2066x\u2069"}]`,
	"[{\"id\":\"b3\",\"type\":\"view\",\"visitor\":\"v\u202d\",\"item\":\"i\"}]",
	`[{"id":"r1","type":"view","visitor":"user:alice","item":"i"},{"id":"r2","type":"view","visitor":"\u0075ser:bob","item":"i"}]`,
	`[{"id":"h1","type":"identify","visitor":"v","user":"u","user_hash":"a61774048706bedf09687ebf18bd214915f9a889957df24b6c50588ee36e5335"}]`,
	`[{"id":"h2","type":"view","visitor":"v","item":"i","user_hash":"00"}]`,
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
	if err := CheckJSONUnicode(b); err != nil {
		t.Fatalf("accepted event encodes to replaced text: %v", err)
	}
	want := *e
	want.UserHash = "" // DecodeEvent drops it: producers on the broker are trusted
	if !sameEvent(&back, &want) {
		t.Fatalf("round trip changed the event:\n got %+v\nwant %+v", back, *e)
	}
}
