package api

import (
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/rotation"
	"github.com/kairoshq/kairos/engine/storage/storagetest"
	"github.com/kairoshq/kairos/internal/testutil"
)

func recItems(rs []engine.Rec) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Item
	}
	return out
}

// TestRotationAndPaging runs GET /v1/recommendations through a real
// rotation layer over the fake recommender (items i0, i1, … in order).
func TestRotationAndPaging(t *testing.T) {
	h := newHarness(t, nil)
	clock := testutil.NewClock(testNow)
	rot, err := rotation.New(storagetest.NewMem(clock.Now), rotation.Config{Secret: []byte("0123456789abcdef0123"), Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	h.s = h.server(nil, func(d *Deps) { d.Rotation = rot })
	get := func(q string) engine.RecResponse {
		t.Helper()
		w := h.secret(http.MethodGet, "/v1/recommendations?"+q, "")
		if w.Code != 200 {
			t.Fatalf("%s: %d %s", q, w.Code, w.Body)
		}
		return decode[engine.RecResponse](t, w)
	}
	first := get("visitor=r1&n=3&rotation=30m")
	clock.Add(time.Minute)
	second := get("visitor=r1&n=3&rotation=30m")
	if !slices.Equal(recItems(first.Items), []string{"i0", "i1", "i2"}) || !slices.Equal(recItems(second.Items), []string{"i3", "i4", "i5"}) {
		t.Errorf("rotation: %v then %v", recItems(first.Items), recItems(second.Items))
	}
	clock.Add(30 * time.Minute)
	if third := get("visitor=r1&n=3&rotation=30m"); !slices.Equal(recItems(third.Items), recItems(first.Items)) {
		t.Errorf("after the rotation: %v", recItems(third.Items))
	}
	// Pages of 4 over the fake's 100: never a repeat.
	seen := map[string]bool{}
	resp := get("visitor=p1&n=4&rotation=0")
	for range 5 {
		for _, it := range recItems(resp.Items) {
			if seen[it] {
				t.Fatalf("item %s repeated", it)
			}
			seen[it] = true
		}
		if resp.Next == "" {
			t.Fatal("no next token")
		}
		resp = get("visitor=p1&n=4&page=" + url.QueryEscape(resp.Next))
	}
	if plain := get("visitor=p1&n=4"); plain.Next != "" {
		t.Errorf("a request without rotation or page got a next token")
	}
	for _, tc := range []struct{ q, frag string }{
		{"visitor=p1&n=4&page=nonsense", "page: not a valid page token"},
		{"visitor=p2&n=4&page=" + url.QueryEscape(resp.Next), "page: the token was made for another visitor"},
		{"visitor=p1&n=4&rotation=48h", "rotation: 48h0m0s is longer than the maximum 24h0m0s"},
		{"visitor=p1&n=4&rotation=soon", `rotation: "soon" is not a duration`},
	} {
		wantError(t, h.secret(http.MethodGet, "/v1/recommendations?"+tc.q, ""), http.StatusBadRequest, CodeInvalid, tc.frag)
	}
	off := newHarness(t, nil)
	wantError(t, off.secret(http.MethodGet, "/v1/recommendations?visitor=p1&rotation=1m", ""), http.StatusBadRequest, CodeInvalid, "rotation is not configured")
}
