package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine/experiments"
)

// xpFlow is one end-to-end experiment: visitors ask for the hero slot's
// offers, some click the offer they were shown and some buy; the results
// endpoint must show exactly the counts the test expects.
type xpFlow struct {
	srv      *testServer
	visitors int
	// send delivers the visitor's events (HTTP or straight to RabbitMQ).
	send func(t *testing.T, evs []map[string]any)
	// expected counts per variant
	units, clicks, conv map[string]int64
	revenue             map[string]float64
	revenueSq           map[string]float64
	variantOf           map[string]string
}

func (s *testServer) secretJSON(t *testing.T, method, path, body string, want int) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(method, s.base+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer sk_test_0123456789abcdef")
	return doJSON(t, req, want)
}

// run creates the offers and the experiment, serves the visitors and
// sends their outcomes.
func (f *xpFlow) run(t *testing.T) {
	t.Helper()
	f.units, f.clicks, f.conv = map[string]int64{}, map[string]int64{}, map[string]int64{}
	f.revenue, f.revenueSq, f.variantOf = map[string]float64{}, map[string]float64{}, map[string]string{}
	f.srv.secretJSON(t, "POST", "/v1/offers", `{"id":"o1","title":"Default","slot":"hero"}`, http.StatusCreated)
	f.srv.secretJSON(t, "POST", "/v1/offers", `{"id":"o2","title":"Spring sale","slot":"hero"}`, http.StatusCreated)
	f.srv.secretJSON(t, "POST", "/v1/experiments", `{"id":"hero","target":{"surface":"offers","slot":"hero"},
	  "metric":"conversion","guardrails":[{"metric":"revenue","max_drop":0.2}],"attribution_window":"1h",
	  "variants":[{"name":"A"},{"name":"B","offer":"o2"}]}`, http.StatusCreated)
	for i := range f.visitors {
		visitor := fmt.Sprintf("xv-%d", i)
		req, _ := http.NewRequest("GET", f.srv.base+"/v1/offers?visitor="+visitor+"&slot=hero&n=2", nil)
		req.Header.Set("Authorization", "Bearer pk_test_0123456789abcdef")
		out := doJSON(t, req, http.StatusOK)
		x := out["experiment"].(map[string]any)
		v := x["variant"].(string)
		offers := out["offers"].([]any)
		first := offers[0].(map[string]any)
		if v == "B" && first["id"] != "o2" {
			t.Fatalf("%s in B was shown %v first", visitor, first["id"])
		}
		f.variantOf[visitor] = v
		f.units[v]++
		now := time.Now().UnixMilli()
		var evs []map[string]any
		if i%2 == 0 { // clicks the first offer, with its token
			evs = append(evs, map[string]any{"id": visitor + "-click", "type": "click", "visitor": visitor, "offer": first["id"], "token": first["token"], "ts": now})
			f.clicks[v]++
		}
		if i%3 == 0 { // buys, twice for some: one converting unit
			value := float64(10 + i)
			evs = append(evs, map[string]any{"id": visitor + "-buy", "type": "conversion", "visitor": visitor, "value": value, "ts": now + 1})
			if i%2 == 0 {
				evs = append(evs, map[string]any{"id": visitor + "-buy2", "type": "conversion", "visitor": visitor, "value": 5.25, "ts": now + 2})
				value += 5.25
			}
			f.conv[v]++
			f.revenue[v] += value
			f.revenueSq[v] += value * value
		}
		if len(evs) > 0 {
			f.send(t, evs)
		}
	}
	// A visitor who converts without having been exposed counts nowhere.
	f.send(t, []map[string]any{{"id": "stranger-buy", "type": "conversion", "visitor": "stranger", "value": 99, "ts": time.Now().UnixMilli()}})
}

// matches reports whether the results show exactly the expected counts.
func (f *xpFlow) matches(r experiments.Results) bool {
	if len(r.Counts) != 2 {
		return false
	}
	for _, c := range r.Counts {
		v := c.Variant
		if c.Units != f.units[v] || c.Clicks != f.clicks[v] || c.Conversions != f.conv[v] ||
			math.Abs(c.Revenue-f.revenue[v]) > 1e-9 || math.Abs(c.RevenueSq-f.revenueSq[v]) > 1e-6 {
			return false
		}
	}
	rep := r.Report.Variants
	return rep[0].Users == f.units["A"] && rep[0].Conversions == f.conv["A"] && rep[1].Users == f.units["B"] && rep[1].Conversions == f.conv["B"]
}

func (f *xpFlow) check(t *testing.T) experiments.Results {
	t.Helper()
	var r experiments.Results
	waitFor(t, 15*time.Second, "the results to show the expected counts", func() bool {
		r = f.srv.results(t, "hero")
		return f.matches(r)
	})
	if r.Verdict == "" || len(r.Guardrails) != 1 || len(r.History) == 0 || !r.Report.SRMPValue.Valid() {
		t.Errorf("results %+v", r)
	}
	t.Logf("units A %d B %d; clicks %d/%d; conversions %d/%d; revenue %.2f/%.2f; verdict: %s",
		f.units["A"], f.units["B"], f.clicks["A"], f.clicks["B"], f.conv["A"], f.conv["B"], f.revenue["A"], f.revenue["B"], r.Verdict)
	return r
}

// rebuild runs `kairos eval experiment --from-archive` and checks that the
// rebuilt counts equal the live ones.
func rebuild(t *testing.T, args ...string) rebuildLine {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(t.Context(), append([]string{"eval", "experiment", "--id", "hero", "--from-archive"}, args...), &out, &errb); code != 0 {
		t.Fatalf("eval experiment: exit %d: %s", code, errb.String())
	}
	var l rebuildLine
	if err := json.Unmarshal(out.Bytes(), &l); err != nil {
		t.Fatalf("%v in %s", err, out.String())
	}
	if !l.Equal {
		t.Errorf("rebuilt %+v\n   live %+v", l.Rebuilt, l.Live)
	}
	t.Logf("rebuilt from %d archived events (%d duplicates): %d units, equal to the live counts: %v", l.Events, l.Duplicates, l.Units, l.Equal)
	return l
}

// decisions runs `kairos eval experiment --decisions --target B` and then
// `kairos eval offpolicy` on its output.
func decisions(t *testing.T, units int, args ...string) {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(t.Context(), append([]string{"eval", "experiment", "--id", "hero", "--decisions", "--target", "B"}, args...), &out, &errb); code != 0 {
		t.Fatalf("eval experiment --decisions: exit %d: %s", code, errb.String())
	}
	if n := strings.Count(out.String(), "\n"); n != units {
		t.Errorf("%d decision lines, want one per unit (%d)", n, units)
	}
	var est, errb2 bytes.Buffer
	ctx := t.Context()
	path := t.TempDir() + "/decisions.jsonl"
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if code := run(ctx, []string{"eval", "offpolicy", "--in", path}, &est, &errb2); code != 0 {
		t.Fatalf("eval offpolicy: exit %d: %s", code, errb2.String())
	}
	t.Logf("off-policy value of always-B: %s", strings.TrimSpace(est.String()))
}

// TestExperimentEndToEndEmbedded: kairos serve (embedded): visitors get
// the hero slot's offers in an experiment, clicks and conversions are
// posted to /v1/events, the results endpoint shows exactly the expected
// counts; beside the running server (which holds the store's and the
// archive's locks) and again after it stops, the counts rebuilt from the
// archive equal the live ones, and the decision log feeds kairos eval
// offpolicy.
func TestExperimentEndToEndEmbedded(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, "--data-dir", dir)
	f := &xpFlow{srv: srv, visitors: 60, send: func(t *testing.T, evs []map[string]any) {
		if out := srv.postEvents(t, evs); out["accepted"].(float64) != float64(len(evs)) {
			t.Fatalf("events refused: %v", out)
		}
	}}
	f.run(t)
	f.check(t)
	l := rebuild(t, "--data-dir", dir, "--redis-url", "")
	if l.Units != f.visitors {
		t.Errorf("rebuilt %d units beside the server, want %d", l.Units, f.visitors)
	}
	decisions(t, f.visitors, "--data-dir", dir, "--redis-url", "")
	srv.stop(t)
	rebuild(t, "--data-dir", dir, "--redis-url", "")
}

// TestExperimentEndToEndRabbitRedis: the same on RabbitMQ and Redis (a
// unique namespace), the clicks and conversions published straight to
// the RabbitMQ exchange as a server-side producer would; the counts are
// rebuilt from the archive while the server runs.
func TestExperimentEndToEndRabbitRedis(t *testing.T) {
	requireServices(t)
	ns := testNamespace(t)
	dir := t.TempDir()
	srv := startServer(t, "--amqp-url", amqpURL(), "--redis-url", redisURL(), "--namespace", ns, "--data-dir", dir)
	pub := newAMQPPublisher(t, ns)
	f := &xpFlow{srv: srv, visitors: 60, send: func(t *testing.T, evs []map[string]any) {
		for _, ev := range evs {
			pub.publish(t, ev)
		}
	}}
	f.run(t)
	f.check(t)
	// The command prints the endpoint's results from the store.
	var out, errb bytes.Buffer
	if code := run(t.Context(), []string{"eval", "experiment", "--id", "hero", "--redis-url", redisURL(), "--namespace", ns}, &out, &errb); code != 0 {
		t.Fatalf("eval experiment: exit %d: %s", code, errb.String())
	}
	var r experiments.Results
	if err := json.Unmarshal(out.Bytes(), &r); err != nil || !f.matches(r) {
		t.Errorf("kairos eval experiment: %v: %s", err, out.String())
	}
	rebuild(t, "--data-dir", dir, "--redis-url", redisURL(), "--namespace", ns)
	decisions(t, f.visitors, "--data-dir", dir, "--redis-url", redisURL(), "--namespace", ns)
}

// TestPromotionExperimentEmbedded: an experiment on a rule decides what
// the rule pushes; the exposures, logged from the engine's consuming
// goroutine, are published later by the experiments engine (a
// synchronous publish to the in-process bus would wait for itself) and
// counted: every visitor the rule fired for is a unit.
func TestPromotionExperimentEmbedded(t *testing.T) {
	srv := startServer(t)
	srv.secretJSON(t, "POST", "/v1/offers", `{"id":"o1","title":"Stay!","slot":"exit"}`, http.StatusCreated)
	srv.secretJSON(t, "POST", "/v1/offers", `{"id":"o2","title":"Stay, −10 %!","slot":"exit"}`, http.StatusCreated)
	srv.secretJSON(t, "POST", "/v1/rules", `{"id":"r1","cooldown":"1h","when":{"exit":{}},"then":{"offer":"o1"}}`, http.StatusCreated)
	srv.secretJSON(t, "POST", "/v1/experiments", `{"id":"push","target":{"surface":"promotions","rule":"r1"},
	  "variants":[{"name":"control"},{"name":"other","offer":"o2"},{"name":"none","holdout":true}]}`, http.StatusCreated)
	const n = 30
	for i := range n {
		v := fmt.Sprintf("pv-%d", i)
		srv.postEvents(t, []map[string]any{{"id": v + "-exit", "type": "exit", "visitor": v}})
	}
	waitFor(t, 15*time.Second, "every fired visitor to be a unit", func() bool {
		out := srv.secretJSON(t, "GET", "/v1/experiments/push/results?history=false", "", http.StatusOK)
		total := 0.0
		for _, c := range out["counts"].([]any) {
			total += c.(map[string]any)["units"].(float64)
		}
		return total == n
	})
	out := srv.secretJSON(t, "GET", "/v1/experiments/push/results?history=false", "", http.StatusOK)
	for _, c := range out["counts"].([]any) {
		if c.(map[string]any)["units"].(float64) == 0 {
			t.Errorf("no unit in %v", c)
		}
	}
	t.Logf("counts %v", out["counts"])
}

// TestPromotionsExperimentNamesItsRule: a promotions experiment must
// target an existing rule, and the rule cannot be deleted while the
// experiment targets it (as for offers and campaigns).
func TestPromotionsExperimentNamesItsRule(t *testing.T) {
	srv := startServer(t)
	xp := `{"id":"px","target":{"surface":"promotions","rule":"rq"},"variants":[{"name":"A"},{"name":"H","holdout":true}]}`
	bad := srv.secretJSON(t, "POST", "/v1/experiments", xp, http.StatusBadRequest)
	if msg := bad["error"].(map[string]any)["message"].(string); !strings.Contains(msg, `target.rule: rule "rq" does not exist`) {
		t.Fatalf("unknown rule: %q", msg)
	}
	srv.secretJSON(t, "POST", "/v1/offers", `{"id":"o1","slot":"exit"}`, http.StatusCreated)
	srv.secretJSON(t, "POST", "/v1/rules", `{"id":"rq","when":{"exit":{}},"then":{"offer":"o1"}}`, http.StatusCreated)
	srv.secretJSON(t, "POST", "/v1/experiments", xp, http.StatusCreated)
	used := srv.secretJSON(t, "DELETE", "/v1/rules/rq", "", http.StatusConflict)
	if msg := used["error"].(map[string]any)["message"].(string); !strings.Contains(msg, "experiments[px].target.rule") {
		t.Fatalf("delete of a targeted rule: %q", msg)
	}
}
