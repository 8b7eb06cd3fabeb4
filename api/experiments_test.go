package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/experiments"
	"github.com/kairoshq/kairos/engine/promo"
	"github.com/kairoshq/kairos/engine/promo/promotest"
	"github.com/kairoshq/kairos/engine/storage/storagetest"
	"github.com/kairoshq/kairos/eval/abtest"
	"github.com/kairoshq/kairos/signals"
)

// xpHarness is a server with the promo engine and the experiments engine
// over in-memory stores; exposures go to the fake publisher.
type xpHarness struct {
	*harness
	xstore *experiments.BackendStore
	x      *experiments.Engine
}

func newXPHarness(t *testing.T) *xpHarness {
	t.Helper()
	h := &xpHarness{harness: newHarness(t, func(c *Config) { c.PublishableRate = RateLimit{Rate: 1e6, Burst: 1e6} })}
	xb := storagetest.NewMem(nil)
	h.xstore = experiments.NewStore(xb)
	p, err := promo.New(context.Background(), promo.Config{Seed: 1}, promo.Deps{Store: promotest.NewMem(), Profiles: fakeVisitors{}})
	if err != nil {
		t.Fatal(err)
	}
	x, err := experiments.New(context.Background(), experiments.Config{Now: func() time.Time { return testNow }},
		experiments.Deps{Backend: xb, Publisher: h.pub, Secret: []byte("0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	h.x = x
	h.s = h.server(nil, func(d *Deps) { d.Offers, d.Definitions, d.Experiments = p, p, x })
	for _, b := range []string{`{"id":"o1","slot":"hero"}`, `{"id":"o2","slot":"hero"}`, `{"id":"o3","slot":"hero"}`} {
		if w := h.secret("POST", "/v1/offers", b); w.Code != http.StatusCreated {
			t.Fatalf("POST offer: %d %s", w.Code, w.Body)
		}
	}
	if w := h.secret("POST", "/v1/campaigns", `{"id":"c3","offers":["o3"]}`); w.Code != http.StatusCreated {
		t.Fatalf("POST campaign: %d %s", w.Code, w.Body)
	}
	return h
}

const heroExperiment = `{"id":"hero","target":{"surface":"offers","slot":"hero"},
 "variants":[{"name":"A"},{"name":"B","offer":"o2"},{"name":"C","campaign":"c3"},{"name":"H","holdout":true}]}`

func TestExperimentsCRUD(t *testing.T) {
	h := newXPHarness(t)
	w := h.secret("POST", "/v1/experiments", heroExperiment)
	if w.Code != http.StatusCreated || w.Header().Get("Location") != "/v1/experiments/hero" {
		t.Fatalf("POST: %d %s", w.Code, w.Body)
	}
	v := decode[ExperimentView](t, w)
	if v.ID != "hero" || v.Status != experiments.StatusRunning || len(v.Variants) != 4 || !v.Created.Equal(testNow) {
		t.Errorf("created %+v", v)
	}
	wantError(t, h.secret("POST", "/v1/experiments", heroExperiment), 409, CodeConflict, "already exists")
	wantError(t, h.secret("POST", "/v1/experiments", strings.Replace(heroExperiment, `"id":"hero"`, `"id":"hero2"`, 1)),
		409, CodeConflict, `experiment "hero" targets the same offer slot "hero"`)
	wantError(t, h.secret("POST", "/v1/experiments", `{"id":"x","target":{"surface":"offers","slot":"s"},"variants":[{"name":"A"},{"name":"B","weight":-2}]}`),
		400, CodeInvalid, "variants[1].weight: -2 is not in [0, 1e6]")
	wantError(t, h.secret("PUT", "/v1/experiments/hero", strings.Replace(heroExperiment, `"offer":"o2"`, `"offer":"o1"`, 1)),
		409, CodeConflict, "variants[1]: the experiment has started")
	w = h.secret("PUT", "/v1/experiments/hero", strings.Replace(heroExperiment, `{"name":"A"}`, `{"name":"A","weight":3}`, 1))
	if w.Code != http.StatusOK || decode[ExperimentView](t, w).Variants[0].Weight != 3 {
		t.Errorf("PUT weight: %d %s", w.Code, w.Body)
	}
	if w := h.secret("PUT", "/v1/experiments/side", strings.Replace(strings.Replace(heroExperiment, `"id":"hero",`, "", 1), `"slot":"hero"`, `"slot":"side"`, 1)); w.Code != http.StatusCreated {
		t.Errorf("PUT new: %d %s", w.Code, w.Body)
	}
	l := decode[ExperimentList](t, h.secret("GET", "/v1/experiments", ""))
	if len(l.Experiments) != 2 || l.Experiments[0].ID != "hero" || l.Experiments[1].ID != "side" {
		t.Errorf("list %+v", l)
	}
	if w := h.secret("GET", "/v1/experiments/side", ""); w.Code != 200 {
		t.Errorf("GET: %d", w.Code)
	}
	if w := h.secret("DELETE", "/v1/experiments/side", ""); w.Code != http.StatusNoContent {
		t.Errorf("DELETE: %d %s", w.Code, w.Body)
	}
	wantError(t, h.secret("GET", "/v1/experiments/side", ""), 404, CodeNotFound, "experiment")
	wantError(t, h.secret("DELETE", "/v1/experiments/side", ""), 404, CodeNotFound)
	wantError(t, h.secret("GET", "/v1/experiments/side/results", ""), 404, CodeNotFound)
	wantError(t, h.secret("GET", "/v1/experiments/hero/results?history=maybe", ""), 400, CodeInvalid, "history")
	// The publishable key may not manage experiments.
	if w := h.do("GET", "/v1/experiments", "", "Authorization", "Bearer "+testPK); w.Code != http.StatusForbidden {
		t.Errorf("publishable key: %d", w.Code)
	}
	// Without the engine the routes answer 404.
	plain := newHarness(t, nil)
	wantError(t, plain.secret("GET", "/v1/experiments", ""), 404, CodeNotFound, "experiments are not configured")
}

// TestOffersInExperiment: the visitor's variant decides what GET /v1/offers
// serves, the response names it, and only first exposures are published.
func TestOffersInExperiment(t *testing.T) {
	h := newXPHarness(t)
	if w := h.secret("POST", "/v1/experiments", heroExperiment); w.Code != http.StatusCreated {
		t.Fatal(w.Body)
	}
	get := func(visitor string) ExperimentOffers {
		t.Helper()
		w := h.do("GET", "/v1/offers?visitor="+visitor+"&slot=hero&n=3", "", "Authorization", "Bearer "+testPK)
		if w.Code != 200 {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
		return decode[ExperimentOffers](t, w)
	}
	seen := map[string]int{}
	const n = 80
	for i := range n {
		visitor := fmt.Sprint("v", i)
		r := get(visitor)
		if r.Experiment == nil || r.Experiment.Experiment != "hero" || r.Experiment.Propensity != 0.25 {
			t.Fatalf("experiment %+v", r.Experiment)
		}
		var ids []string
		for _, o := range r.Offers {
			ids = append(ids, o.ID)
		}
		got := strings.Join(ids, ",")
		switch r.Experiment.Variant {
		case "A":
			if len(ids) != 3 {
				t.Errorf("A: %s", got)
			}
		case "B":
			if len(ids) != 3 || ids[0] != "o2" {
				t.Errorf("B: %s, want o2 first", got)
			}
		case "C":
			if got != "o3" {
				t.Errorf("C: %s, want the campaign's o3 only", got)
			}
		case "H":
			if r.Offers == nil || len(r.Offers) != 0 {
				t.Errorf("H: %v, want an empty list", r.Offers)
			}
		}
		seen[r.Experiment.Variant]++
		if again := get(visitor); again.Experiment.Variant != r.Experiment.Variant {
			t.Errorf("%s moved from %s to %s", visitor, r.Experiment.Variant, again.Experiment.Variant)
		}
	}
	if len(seen) != 4 {
		t.Errorf("variants served %v", seen)
	}
	evs := h.pub.events()
	if len(evs) != n {
		t.Fatalf("%d exposure events for %d visitors seen twice, want %d", len(evs), n, n)
	}
	for _, ev := range evs {
		if ev.Type != signals.TypeImpression || ev.Props["experiment"] != "hero" || ev.Props["sig"] == "" {
			t.Errorf("exposure %+v", ev)
		}
	}
	// Another slot is not in the experiment.
	w := h.do("GET", "/v1/offers?visitor=v1&slot=side", "", "Authorization", "Bearer "+testPK)
	if w.Code != 200 || strings.Contains(w.Body.String(), `"experiment"`) {
		t.Errorf("other slot: %d %s", w.Code, w.Body)
	}
	// A failed exposure fails the request (503) and is tried again later.
	h.pub.mu.Lock()
	h.pub.err = fmt.Errorf("down: %w", signals.ErrUnavailable)
	h.pub.mu.Unlock()
	wantError(t, h.do("GET", "/v1/offers?visitor=new&slot=hero", "", "Authorization", "Bearer "+testPK), 503, CodeUnavailable)
}

func TestRecommendationsInExperiment(t *testing.T) {
	h := newXPHarness(t)
	if w := h.secret("POST", "/v1/experiments", `{"id":"recs","target":{"surface":"recommendations"},
	  "variants":[{"name":"A"},{"name":"T","params":{"strategy":"trending","blend_below":7,"exclude_seen":false}}]}`); w.Code != http.StatusCreated {
		t.Fatal(w.Body)
	}
	both := map[string]bool{}
	for i := range 40 {
		w := h.secret("GET", fmt.Sprintf("/v1/recommendations?visitor=v%d&n=2", i), "")
		r := decode[ExperimentRecs](t, w)
		if r.Experiment == nil || len(r.Items) != 2 {
			t.Fatalf("%s", w.Body)
		}
		last := h.rec.last
		switch r.Experiment.Variant {
		case "T":
			if last.Strategy != engine.StrategyTrending || last.BlendBelow != 7 || last.ExcludeSeen {
				t.Errorf("T request %+v", last)
			}
		case "A":
			if last.Strategy != "" || last.BlendBelow != 0 || !last.ExcludeSeen {
				t.Errorf("A request %+v", last)
			}
		}
		both[r.Experiment.Variant] = true
	}
	if !both["A"] || !both["T"] {
		t.Errorf("variants %v", both)
	}
	// A failed recommendation is no exposure: the visitor is decided
	// again, and exposed, by the next request.
	before := len(h.pub.events())
	h.rec.mu.Lock()
	h.rec.err = fmt.Errorf("boom: %w", engine.ErrUnavailable)
	h.rec.mu.Unlock()
	wantError(t, h.secret("GET", "/v1/recommendations?visitor=fails&n=2", ""), 503, CodeUnavailable)
	h.rec.mu.Lock()
	h.rec.err = nil
	h.rec.mu.Unlock()
	if w := h.secret("GET", "/v1/recommendations?visitor=fails&n=2", ""); w.Code != 200 {
		t.Fatal(w.Body)
	}
	if got := len(h.pub.events()); got != before+1 {
		t.Errorf("%d exposures published for the failed then served visitor, want 1", got-before)
	}
	// A HEAD shows nothing: no exposure until a GET, on both surfaces.
	for _, path := range []string{"/v1/recommendations?visitor=peeks&n=2", "/v1/offers?visitor=peeks&slot=hero"} {
		if path == "/v1/offers?visitor=peeks&slot=hero" {
			if w := h.secret("POST", "/v1/experiments", heroExperiment); w.Code != http.StatusCreated {
				t.Fatal(w.Body)
			}
		}
		before = len(h.pub.events())
		if w := h.secret("HEAD", path, ""); w.Code != 200 {
			t.Fatalf("HEAD %s: %d", path, w.Code)
		}
		if got := len(h.pub.events()); got != before {
			t.Errorf("HEAD %s published %d exposures, want none", path, got-before)
		}
		if w := h.secret("GET", path, ""); w.Code != 200 {
			t.Fatal(w.Body)
		}
		if got := len(h.pub.events()); got != before+1 {
			t.Errorf("GET %s after a HEAD published %d exposures, want 1", path, got-before)
		}
	}
}

// TestResultsEndpointIsAnalyze: the endpoint's report is abtest.Analyze of
// the same counts, and of the input it returns.
func TestResultsEndpointIsAnalyze(t *testing.T) {
	h := newXPHarness(t)
	if w := h.secret("POST", "/v1/experiments", `{"id":"ab","target":{"surface":"offers","slot":"hero"},"variants":[{"name":"A"},{"name":"B","offer":"o2"}]}`); w.Code != http.StatusCreated {
		t.Fatal(w.Body)
	}
	err := h.xstore.UpdateExperimentUnits(context.Background(), experiments.Update{Counts: []experiments.CountDelta{
		{Exp: "ab", Variant: "A", Counts: experiments.Counts{N: 5000, Expected: 2_500_000_000, Conversions: 500}},
		{Exp: "ab", Variant: "B", Counts: experiments.Counts{N: 5000, Expected: 2_500_000_000, Conversions: 600}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	w := h.secret("GET", "/v1/experiments/ab/results", "")
	if w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	var got struct {
		Report  json.RawMessage `json:"report"`
		Input   abtest.Input    `json:"input"`
		Verdict string          `json:"verdict"`
		Counts  []experiments.VariantCounts
		History []experiments.HistoryPoint
	}
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want, err := abtest.Analyze(abtest.Input{Variants: []abtest.Variant{
		{Name: "A", Weight: 1, Users: 5000, Conversions: 500}, {Name: "B", Weight: 1, Users: 5000, Conversions: 600}}})
	if err != nil {
		t.Fatal(err)
	}
	// Compare through one encoder (the API's does not escape HTML).
	var rep abtest.Report
	if err := json.Unmarshal(got.Report, &rep); err != nil {
		t.Fatal(err)
	}
	gotJS, _ := json.Marshal(rep)
	wantJS, _ := json.Marshal(want)
	if string(gotJS) != string(wantJS) {
		t.Errorf("report\n got %s\nwant %s", gotJS, wantJS)
	}
	again, err := abtest.Analyze(got.Input)
	if err != nil {
		t.Fatal(err)
	}
	if againJS, _ := json.Marshal(again); string(againJS) != string(gotJS) {
		t.Errorf("Analyze(input) differs from the report")
	}
	if !strings.HasPrefix(got.Verdict, "B beats A on conversion: +20.0 %") || len(got.Counts) != 2 || got.Counts[1].Units != 5000 || len(got.History) != 1 {
		t.Errorf("verdict %q, counts %+v, %d history points", got.Verdict, got.Counts, len(got.History))
	}
	t.Logf("verdict: %s", got.Verdict)
	if w := h.secret("GET", "/v1/experiments/ab/results?history=false", ""); strings.Contains(w.Body.String(), `"history"`) {
		t.Errorf("history=false still has a history")
	}
}

// TestExperimentRacingAnOfferDelete: an experiment naming an offer and
// the offer's deletion, sent at once, never both succeed (the
// experiment would name an offer that does not exist).
func TestExperimentRacingAnOfferDelete(t *testing.T) {
	h := newXPHarness(t)
	// Wired as kairos serve wires them: each engine checks the other.
	p, err := promo.New(context.Background(), promo.Config{Seed: 1}, promo.Deps{Store: promotest.NewMem(), Profiles: fakeVisitors{}, Experiments: h.x})
	if err != nil {
		t.Fatal(err)
	}
	h.x.SetDefinitions(p)
	h.s = h.server(nil, func(d *Deps) { d.Offers, d.Definitions, d.Experiments = p, p, h.x })
	for i := range 40 {
		id := fmt.Sprintf("race%d", i)
		if w := h.secret("POST", "/v1/offers", `{"id":"`+id+`","slot":"`+id+`"}`); w.Code != http.StatusCreated {
			t.Fatal(w.Body)
		}
		xp := `{"id":"x` + id + `","target":{"surface":"offers","slot":"` + id + `"},"variants":[{"name":"A"},{"name":"B","offer":"` + id + `"}]}`
		var created, deleted int
		var wg sync.WaitGroup
		wg.Go(func() { created = h.secret("POST", "/v1/experiments", xp).Code })
		wg.Go(func() { deleted = h.secret("DELETE", "/v1/offers/"+id, "").Code })
		wg.Wait()
		if created == http.StatusCreated && deleted == http.StatusNoContent {
			t.Fatalf("round %d: the experiment was created and its offer deleted", i)
		}
	}
}
