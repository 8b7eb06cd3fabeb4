package api

import (
	"bytes"
	"math"
	"net/http/httptest"
	"testing"

	"github.com/kairoshq/kairos/signals"
)

// fuzzHarness is a server without rate limits (the fuzzer sends many
// requests from one client).
func fuzzHarness(f *testing.F) *harness {
	f.Helper()
	return newHarness(f, func(c *Config) {
		c.SecretRate = RateLimit{Rate: math.Inf(1)}
		c.PublishableRate = RateLimit{Rate: math.Inf(1)}
	})
}

// FuzzPixelQuery: any query string gets the GIF with 200 or a 4xx, never
// a panic or a 5xx, and a 200 publishes exactly one valid event.
func FuzzPixelQuery(f *testing.F) {
	for _, s := range []string{
		"visitor=v1&item=sku-1&id=p1&page=https%3A%2F%2Fshop.example%2F",
		"visitor=v1&type=click&item=i&ts=2026-11-23T09:00:00Z&value=2",
		"visitor=v&type=impression&offer=o&token=t",
		"visitor=v&item=i&ts=1795428000000",
		"visitor=v&item=i&value=NaN", "visitor=v&item=i&value=-Inf", "visitor=v&item=i&value=1e400",
		"visitor=v&item=i&ts=99999999999999999999", "visitor=%ff&item=i", "visitor=a%00b&item=i",
		"type=like", "=&&=%", "visitor=v&visitor=w&item=i&item=", ";;;", "visitor=v&item=i&key=sk_test_secret_key_0001",
		"visitor=user%3Aalice&item=i", "visitor=v%E2%80%AE&item=i", "visitor=v&item=%C2%85",
		"visitor=v&user=u&user_hash=00&item=i", "visitor=v&user_hash=00&item=i",
	} {
		f.Add(s)
	}
	h := fuzzHarness(f)
	f.Fuzz(func(t *testing.T, q string) {
		h.pub.mu.Lock()
		h.pub.batches = nil // keep the recorded events small
		h.pub.mu.Unlock()
		before := 0
		r := httptest.NewRequest("GET", "/v1/pixel.gif", nil)
		r.URL.RawQuery = q
		r.Header.Set("Authorization", "Bearer "+testPK)
		w := h.serve(r)
		if w.Code >= 500 || (w.Code != 200 && (w.Code < 400 || w.Code > 499)) {
			t.Fatalf("query %q: status %d (X-Kairos-Error %q)", q, w.Code, w.Header().Get("X-Kairos-Error"))
		}
		if !bytes.Equal(w.Body.Bytes(), transparentGIF) {
			t.Fatalf("query %q: body is not the GIF", q)
		}
		evs := h.pub.events()
		switch {
		case w.Code == 200 && len(evs) != before+1:
			t.Fatalf("query %q: 200 but %d events published", q, len(evs)-before)
		case w.Code == 200:
			e := evs[len(evs)-1]
			if err := e.Validate(testNow, h.s.evLim); err != nil {
				t.Fatalf("query %q: published an invalid event: %v", q, err)
			}
			if e.UserHash != "" {
				t.Fatalf("query %q: published user_hash", q)
			}
		case len(evs) != before:
			t.Fatalf("query %q: status %d but an event was published", q, w.Code)
		case w.Header().Get("X-Kairos-Error") == "":
			t.Fatalf("query %q: status %d without X-Kairos-Error", q, w.Code)
		}
		for _, c := range []byte(w.Header().Get("X-Kairos-Error")) {
			if c < 0x20 || c > 0x7e {
				t.Fatalf("query %q: X-Kairos-Error has byte %#x", q, c)
			}
		}
	})
}

// FuzzRecommendationsQuery: any query string gets 200 (with a request
// the engine accepts) or a 400 JSON error, never a panic or another
// status.
func FuzzRecommendationsQuery(f *testing.F) {
	for _, s := range []string{
		"visitor=v1", "visitor=v1&n=5&exclude_seen=false&category=shoes&explain=true",
		"visitor=v&n=0", "visitor=v&n=-1", "visitor=v&n=1e3", "visitor=v&n=99999999999999999999",
		"visitor=v&explain=maybe", "n=3", "visitor=%zz", "visitor=%ff", "visitor=a%00b", "&&&==",
		"visitor=user:alice", "visitor=v&user=user:alice", "visitor=v%E2%81%A6", "visitor=v&category=%C2%9F",
	} {
		f.Add(s)
	}
	h := fuzzHarness(f)
	f.Fuzz(func(t *testing.T, q string) {
		r := httptest.NewRequest("GET", "/v1/recommendations", nil)
		r.URL.RawQuery = q
		r.Header.Set("Authorization", "Bearer "+testSK)
		w := h.serve(r)
		switch w.Code {
		case 200:
			h.rec.mu.Lock()
			last := h.rec.last
			h.rec.mu.Unlock()
			_, reserved := signals.ReservedPrefix(last.Visitor)
			if last.Visitor == "" || reserved || !signals.ValidID(last.Visitor, 200) || !signals.ValidID(last.User, 200) ||
				last.N < 1 || last.N > h.cfg.MaxResults {
				t.Fatalf("query %q: engine got %+v", q, last)
			}
		case 400:
			if e := apiError(t, w); e.Code != CodeInvalid {
				t.Fatalf("query %q: code %q", q, e.Code)
			}
		default:
			t.Fatalf("query %q: status %d: %s", q, w.Code, w.Body)
		}
	})
}
