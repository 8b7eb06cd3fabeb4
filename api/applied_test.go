package api

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/kairoshq/kairos/signals"
)

// fakeApplier applies an event once it has been asked about after times
// looks (0: at once; negative: never), and fails every look with err.
type fakeApplier struct {
	mu    sync.Mutex
	after int
	err   error
	looks map[string]int
}

func (f *fakeApplier) Applied(ctx context.Context, evs []signals.Event) ([]bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	if f.looks == nil {
		f.looks = map[string]int{}
	}
	out := make([]bool, len(evs))
	for i, ev := range evs {
		f.looks[ev.ID]++
		out[i] = f.after >= 0 && f.looks[ev.ID] > f.after
	}
	return out, nil
}

// applierHarness is a harness whose server has a as its Applier.
func applierHarness(t *testing.T, a *fakeApplier) *harness {
	h := newHarness(t, nil)
	h.s = h.server(nil, func(d *Deps) { d.Applier = a })
	return h
}

func TestEventsWaitForApplied(t *testing.T) {
	a := &fakeApplier{after: 3}
	h := applierHarness(t, a)
	w := h.secret("POST", "/v1/events?wait=2s", `[`+evJSON("w1")+`,`+evJSON("w2")+`]`)
	got := decode[EventsResponse](t, w)
	if w.Code != 200 || got.Applied == nil || *got.Applied != 2 {
		t.Fatalf("status %d, applied %v: %s", w.Code, got.Applied, w.Body)
	}
	if a.looks["w1"] != 4 || a.looks["w2"] != 4 {
		t.Fatalf("looks %v, want 4 each (applied at the fourth)", a.looks)
	}
	// Without wait= nothing is asked and "applied" is absent.
	w = h.secret("POST", "/v1/events", `[`+evJSON("w3")+`]`)
	if w.Code != 200 || strings.Contains(w.Body.String(), "applied") || a.looks["w3"] != 0 {
		t.Fatalf("without wait: %d %s, looks %v", w.Code, w.Body, a.looks)
	}
}

func TestEventsWaitRunsOut(t *testing.T) {
	h := applierHarness(t, &fakeApplier{after: -1})
	w := h.secret("POST", "/v1/events?wait=30ms", `[`+evJSON("n1")+`]`)
	got := decode[EventsResponse](t, w)
	if w.Code != 200 || got.Accepted != 1 || got.Applied == nil || *got.Applied != 0 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	// A failing look ends the wait: the events stay accepted.
	h = applierHarness(t, &fakeApplier{err: errors.New("store down")})
	w = h.secret("POST", "/v1/events?wait=5s", `[`+evJSON("n2")+`]`)
	if got := decode[EventsResponse](t, w); w.Code != 200 || got.Accepted != 1 || *got.Applied != 0 {
		t.Fatalf("failing look: %d %s", w.Code, w.Body)
	}
	if !strings.Contains(h.log.String(), "store down") {
		t.Fatalf("the failed look is not logged: %s", h.log)
	}
}

func TestWaitParamChecked(t *testing.T) {
	h := applierHarness(t, &fakeApplier{})
	for _, wait := range []string{"soon", "-1s", "11s", "2"} {
		wantError(t, h.secret("POST", "/v1/events?wait="+wait, `[`+evJSON("x")+`]`), 400, CodeInvalid, "wait: ", "10s")
		wantError(t, h.secret("POST", "/v1/identify?wait="+wait, `{"anonymous_id":"v","user_id":"u"}`), 400, CodeInvalid, "wait: ")
	}
	w := h.do("POST", "/v1/events?wait=1s", `[`+evJSON("x")+`]`, "Authorization", "Bearer "+testPK, "Origin", allowed)
	wantError(t, w, 403, CodeForbidden, "wait: only the secret key")
	// A server without an Applier says it cannot wait.
	wantError(t, newHarness(t, nil).secret("POST", "/v1/events?wait=1s", `[`+evJSON("x")+`]`), 400, CodeInvalid, "cannot tell")
}

func TestIdentifyWaitsForTheLink(t *testing.T) {
	a := &fakeApplier{after: 2}
	h := applierHarness(t, a)
	w := h.secret("POST", "/v1/identify?wait=2s", `{"anonymous_id":"v-17","user_id":"u-42"}`)
	got := decode[IdentifyResponse](t, w)
	if w.Code != 200 || got.Applied == nil || !*got.Applied || a.looks[got.Event] != 3 {
		t.Fatalf("status %d, looks %v: %s", w.Code, a.looks, w.Body)
	}
	h = applierHarness(t, &fakeApplier{after: -1})
	w = h.secret("POST", "/v1/identify?wait=20ms", `{"anonymous_id":"v-17","user_id":"u-42"}`)
	if got := decode[IdentifyResponse](t, w); w.Code != 200 || got.Applied == nil || *got.Applied {
		t.Fatalf("the wait ran out: %d %s", w.Code, w.Body)
	}
}
