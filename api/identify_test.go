package api

import (
	"strings"
	"testing"

	"github.com/kairoshq/kairos/signals"
)

func TestIdentify(t *testing.T) {
	h := newHarness(t, nil)
	w := h.secret("POST", "/v1/identify", `{"anonymous_id":"v-17","user_id":"u-42"}`)
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"event":"identify-`) {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	evs := h.pub.events()
	if len(evs) != 1 || evs[0].Type != signals.TypeIdentify || evs[0].Visitor != "v-17" || evs[0].User != "u-42" {
		t.Fatalf("published %+v", evs)
	}
	// A retry publishes the same event id.
	h.secret("POST", "/v1/identify", `{"anonymous_id":"v-17","user_id":"u-42"}`)
	if evs := h.pub.events(); len(evs) != 2 || evs[1].ID != evs[0].ID {
		t.Fatalf("retry: %+v", evs)
	}
	for _, tc := range []struct{ body, msg string }{
		{`{"user_id":"u"}`, "anonymous_id: missing"},
		{`{"anonymous_id":"v"}`, "user_id: missing"},
		{`{"anonymous_id":"v","user_id":"u","x":1}`, "unknown field"},
		{`not json`, "body: not a JSON object"},
		{`{"anonymous_id":"v","user_id":"` + strings.Repeat("u", 201) + `"}`, "user_id: 201 bytes long"},
	} {
		wantError(t, h.secret("POST", "/v1/identify", tc.body), 400, CodeInvalid, tc.msg)
	}
	if w := h.do("POST", "/v1/identify", `{"anonymous_id":"v","user_id":"u"}`, "Authorization", "Bearer "+testPK); w.Code != 403 {
		t.Fatalf("publishable key: %d, want 403", w.Code)
	}
}
