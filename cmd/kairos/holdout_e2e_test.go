package main

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine/experiments"
	"github.com/kairoshq/kairos/engine/holdout"
)

// TestHoldoutEmbedded and TestHoldoutRabbitRedis run kairos serve
// --holdout-share 0.3: a held-out visitor gets the baseline (trending,
// "holdout": true) on recommendations and similar items whatever its
// history, a personalized one its own recommendations, and
// GET /v1/holdout/results counts every visitor and conversion in its arm.
func TestHoldoutEmbedded(t *testing.T) {
	testHoldout(t, startServer(t, "--holdout-share", "0.3"))
}

func TestHoldoutRabbitRedis(t *testing.T) {
	testHoldout(t, startServices(t, "--holdout-share", "0.3"))
}

func secretGet(t *testing.T, url string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer sk_test_0123456789abcdef")
	return doJSON(t, req, http.StatusOK)
}

func testHoldout(t *testing.T, srv *testServer) {
	const share = 0.3
	armOf := func(v string) holdout.Arm {
		if experiments.Bucket(holdout.DefaultSalt, experiments.AnonKey(v)) < share {
			return holdout.ArmHoldout
		}
		return holdout.ArmPersonalized
	}
	base := clusterBatch("hb", 3, 20, 12, 12, 7)
	units := map[holdout.Arm]int{}
	seen := map[string]bool{}
	for _, ev := range base {
		if v := ev["visitor"].(string); !seen[v] {
			seen[v] = true
			units[armOf(v)]++
		}
	}
	for start := 0; start < len(base); start += 500 {
		srv.postEvents(t, base[start:min(start+500, len(base))])
	}
	// One visitor of each arm clicks the items of cluster 1, then buys.
	var held, pers string
	for i := 0; held == "" || pers == ""; i++ {
		v := fmt.Sprintf("shopper-%d", i)
		if armOf(v) == holdout.ArmHoldout && held == "" {
			held = v
		} else if armOf(v) == holdout.ArmPersonalized && pers == "" {
			pers = v
		}
	}
	revenue := map[holdout.Arm]float64{armOf(held): 10, armOf(pers): 30}
	for _, v := range []string{held, pers} {
		units[armOf(v)]++
		var evs []map[string]any
		for j := range 4 {
			evs = append(evs, map[string]any{"id": fmt.Sprintf("%s-c%d", v, j), "type": "click", "visitor": v, "item": fmt.Sprintf("c1-item%d", j)})
		}
		srv.postEvents(t, evs)
	}
	rec := func(v string) map[string]any {
		return secretGet(t, fmt.Sprintf("%s/v1/recommendations?visitor=%s&n=5", srv.base, v))
	}
	waitFor(t, 15*time.Second, "the personalized shopper's own recommendations", func() bool {
		return rec(pers)["strategy"] == "als"
	})
	r := rec(pers)
	if _, ok := r["holdout"]; ok {
		t.Errorf("personalized shopper: %v, want no holdout", r)
	}
	r = rec(held)
	t.Logf("held-out shopper %s: %v", held, r)
	if r["holdout"] != true || r["strategy"] != "trending" {
		t.Errorf("held-out shopper %s with 4 clicks: %v, want the trending baseline with holdout: true", held, r)
	}
	sim := secretGet(t, fmt.Sprintf("%s/v1/items/c1-item0/similar?n=3&visitor=%s", srv.base, held))
	if sim["holdout"] != true || len(sim["items"].([]any)) != 3 {
		t.Errorf("similar items for the held-out shopper: %v, want 3 baseline items and holdout: true", sim)
	}
	if sim := secretGet(t, fmt.Sprintf("%s/v1/items/c1-item0/similar?n=3&visitor=%s", srv.base, pers)); sim["holdout"] != nil {
		t.Errorf("similar items for the personalized shopper: %v, want the neighbours", sim)
	}

	srv.postEvents(t, []map[string]any{
		{"id": held + "-buy", "type": "conversion", "visitor": held, "item": "c1-item0", "value": 10},
		{"id": pers + "-buy", "type": "conversion", "visitor": pers, "item": "c1-item1", "value": 30},
	})
	var res map[string]any
	waitFor(t, 15*time.Second, "the conversions to be counted", func() bool {
		res = secretGet(t, srv.base+"/v1/holdout/results")
		n := 0.0
		for _, a := range res["arms"].([]any) {
			n += a.(map[string]any)["conversions"].(float64)
		}
		return n == 2
	})
	t.Logf("results: arms %v; verdict %s", res["arms"], res["verdict"])
	for _, a := range res["arms"].([]any) {
		a := a.(map[string]any)
		arm := holdout.Arm(a["arm"].(string))
		if a["units"].(float64) != float64(units[arm]) || a["converters"].(float64) != 1 || a["revenue"].(float64) != revenue[arm] {
			t.Errorf("arm %s: %v, want %d units, 1 converter, revenue %v", arm, a, units[arm], revenue[arm])
		}
	}
	if res["on"] != true || res["share"].(float64) != share {
		t.Errorf("results: on %v share %v", res["on"], res["share"])
	}
}
