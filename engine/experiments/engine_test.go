package experiments_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/experiments"
	"github.com/kairoshq/kairos/engine/promo"
	"github.com/kairoshq/kairos/eval/abtest"
	"github.com/kairoshq/kairos/signals"
)

func total(cs map[string]experiments.Counts) (n int64) {
	for _, c := range cs {
		n += c.N
	}
	return n
}

func TestExposureMakesOneUnit(t *testing.T) {
	h := newHarness(t)
	h.put(heroJSON)
	d := h.serve(offers("v1"))
	if !d.First() || d.Experiment != "hero" || d.Propensity != 0.5 {
		t.Fatalf("first decision %+v", d)
	}
	evs := h.archive()
	if len(evs) != 1 {
		t.Fatalf("published %d events, want the exposure", len(evs))
	}
	ev := evs[0]
	if ev.Type != signals.TypeImpression || ev.Visitor != "v1" || ev.User != "" || ev.ID != experiments.ExposureEventID("hero", "a:v1") ||
		ev.Props["experiment"] != "hero" || ev.Props["variant"] != d.Variant || ev.Props["propensity"] != "0.500000" ||
		ev.Props["weights"] != "0.500000,0.500000" || ev.Props["sig"] == "" {
		t.Errorf("exposure event %+v", ev)
	}
	if err := ev.Validate(t0, signals.DefaultLimits()); err != nil {
		t.Errorf("the exposure event does not validate: %v", err)
	}
	for range 3 {
		again := h.serve(offers("v1"))
		if again.First() || again.Variant != d.Variant || again.Propensity != 0.5 {
			t.Errorf("returning visitor: %+v", again)
		}
	}
	if n := len(h.archive()); n != 1 {
		t.Errorf("%d events after returning visits, want 1 (only first exposures are logged)", n)
	}
	cs := h.counts("hero")
	if total(cs) != 1 || cs[d.Variant].N != 1 || cs["A"].Expected != 500_000 || cs["B"].Expected != 500_000 {
		t.Errorf("counts %+v", cs)
	}
	// The exposure consumed again (a redelivery past de-duplication)
	// counts nothing more.
	h.e.React(ctx, []engine.VisitorChange{{Visitor: engine.Visitor{ID: "v1"}, Fresh: []signals.Event{ev}}})
	// A forged exposure (anyone can post an impression with props)
	// counts nothing.
	forged := ev
	forged.ID, forged.Visitor = "forged", "v9"
	h.deliver(forged)
	tampered := ev
	tampered.ID, tampered.Props = "tampered", map[string]string{"experiment": "hero", "variant": "B", "propensity": "1.000000", "weights": "0.000000,1.000000", "sig": ev.Props["sig"]}
	h.deliver(tampered)
	if cs := h.counts("hero"); total(cs) != 1 {
		t.Errorf("counts after a redelivery and forgeries %+v", cs)
	}
	// No experiment on another slot.
	if _, ok, err := h.e.Decide(ctx, experiments.Request{Surface: experiments.SurfaceOffers, Slot: "sidebar", Visitor: "v1"}); ok || err != nil {
		t.Errorf("decided on another slot: %v %v", ok, err)
	}
}

func TestAttributionWindow(t *testing.T) {
	h := newHarness(t)
	h.put(heroJSON) // window 1h
	variant := map[string]string{}
	for _, v := range []string{"in", "late", "early-ts", "no-offer", "offer", "before"} {
		if v == "before" {
			// A conversion consumed before the visitor's first exposure
			// counts for nothing.
			h.deliver(h.ev(signals.TypeConversion, v, "", 5))
		}
		variant[v] = h.serve(offers(v)).Variant
	}
	h.clock.Add(10 * time.Minute)
	h.deliver(h.ev(signals.TypeConversion, "in", "", 12.5))
	early := h.ev(signals.TypeConversion, "early-ts", "", 3)
	early.Time.Time = t0.Add(-time.Second) // before the exposure (client clock)
	h.deliver(early)
	h.deliver(h.ev(signals.TypeClick, "no-offer", "", 0)) // a click on something else: not a click-through of the slot
	click := h.ev(signals.TypeClick, "offer", "", 0)
	click.Offer = "o2"
	h.deliver(click)
	h.clock.Add(50 * time.Minute) // 60 min after the exposures: the window [t0, t0+1h) has closed
	h.deliver(h.ev(signals.TypeConversion, "late", "", 7))
	cs := h.counts("hero")
	var conv, clicks, rev int64
	for _, c := range cs {
		conv, clicks, rev = conv+c.Conversions, clicks+c.Clicks, rev+c.Revenue
	}
	if conv != 1 || rev != 1250 || cs[variant["in"]].Conversions != 1 || clicks != 1 || cs[variant["offer"]].Clicks != 1 {
		t.Errorf("counts %+v: want only visitor in's conversion (12.50) and visitor offer's click", cs)
	}
}

// TestRevenueSums checks n, Σx and Σx² on a hand-computed example: three
// units in A with revenue 10.00 + 5.50 = 15.50, 0 and 2.25:
// n = 3, Σx = 17.75, Σx² = 15.5² + 2.25² = 240.25 + 5.0625 = 245.3125.
func TestRevenueSums(t *testing.T) {
	h := newHarness(t)
	h.put(`{"id":"rev","metric":"revenue","target":{"surface":"offers","slot":"hero"},
	 "variants":[{"name":"A","weight":1},{"name":"B","weight":0}]}`)
	for _, v := range []string{"v1", "v2", "v3"} {
		if d := h.serve(offers(v)); d.Variant != "A" {
			t.Fatalf("%s got %s with B's weight 0", v, d.Variant)
		}
	}
	h.clock.Add(time.Minute)
	h.deliver(h.ev(signals.TypeConversion, "v1", "", 10))
	h.deliver(h.ev(signals.TypeConversion, "v1", "", 5.5))
	h.deliver(h.ev(signals.TypeConversion, "v3", "", 2.25))
	h.deliver(h.ev(signals.TypeConversion, "v3", "", 0))
	a := h.counts("rev")["A"]
	a.Normalize()
	want := experiments.Counts{N: 3, Expected: 3_000_000, Conversions: 2, Revenue: 1775, RevenueSq: [4]int64{1550*1550 + 225*225}}
	if a != want {
		t.Errorf("A = %+v, want %+v", a, want)
	}
	if a.Sum(experiments.MetricRevenue) != 17.75 || a.SumSquares() != 245.3125 {
		t.Errorf("Σx = %v, Σx² = %v", a.Sum(experiments.MetricRevenue), a.SumSquares())
	}
	r, err := h.e.Results(ctx, "rev", experiments.ResultsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v := r.Input.Variants[0]; v.Users != 3 || v.Conversions != 2 || v.Sum != 17.75 || v.SumSquares != 245.3125 || v.Weight != 3 {
		t.Errorf("abtest input %+v", v)
	}
	// Mean 17.75/3 and variance (245.3125 − 17.75²/3)/2.
	if m := float64(r.Report.Variants[0].Mean); math.Abs(m-17.75/3) > 1e-12 {
		t.Errorf("mean %v", m)
	}
}

// TestRevenueExactForLargeSums: Σx² stays exact (limbs) where int64
// would overflow.
func TestRevenueExactForLargeSums(t *testing.T) {
	h := newHarness(t)
	h.put(`{"id":"big","metric":"revenue","target":{"surface":"offers","slot":"hero"},"variants":[{"name":"A","weight":1},{"name":"B","weight":0}]}`)
	h.serve(offers("whale"))
	for range 3 {
		h.deliver(h.ev(signals.TypeConversion, "whale", "", 1e9)) // the largest value an event may carry
	}
	a := h.counts("big")["A"]
	a.Normalize()
	if got, want := a.RevenueSqInt().String(), "90000000000000000000000"; got != want { // (3·10¹¹ cents)²
		t.Errorf("Σx² = %s cents², want %s", got, want)
	}
}

func TestIdentityKeepsTheVariant(t *testing.T) {
	h := newHarness(t)
	x := h.put(heroJSON)
	// A visitor and a user whose own hashes pick different arms.
	var visitor, user string
	for i := 0; visitor == ""; i++ {
		v, u := fmt.Sprintf("anon-%d", i), fmt.Sprintf("user-%d", i)
		w := x.Weights()
		if experiments.Pick(w, experiments.Bucket(x.Salt, experiments.AnonKey(v))) != experiments.Pick(w, experiments.Bucket(x.Salt, experiments.UserKey(u))) {
			visitor, user = v, u
		}
	}
	anon := h.serve(offers(visitor))
	h.clock.Add(time.Minute)
	h.deliver(h.ev(signals.TypeIdentify, visitor, user, 0)) // sign-up: the engine links the ids
	for name, r := range map[string]experiments.Request{
		"same device, linked":    offers(visitor),
		"user named":             {Surface: experiments.SurfaceOffers, Slot: "hero", Visitor: visitor, User: user},
		"other device, user":     {Surface: experiments.SurfaceOffers, Slot: "hero", Visitor: "phone-1", User: user},
		"engine state key":       {Surface: experiments.SurfaceOffers, Slot: "hero", Visitor: engine.UserKey(user)},
		"user only, no visitor":  {Surface: experiments.SurfaceOffers, Slot: "hero", User: user},
		"other device, returned": {Surface: experiments.SurfaceOffers, Slot: "hero", Visitor: "phone-1", User: user},
	} {
		d := h.serve(r)
		if d.Variant != anon.Variant || d.First() {
			t.Errorf("%s: %+v, want %s kept (not a new unit)", name, d, anon.Variant)
		}
	}
	// A second device that was anonymous before linking also gets it.
	h.links.Link(ctx, "tablet", user)
	if d := h.serve(offers("tablet")); d.Variant != anon.Variant {
		t.Errorf("linked tablet got %s", d.Variant)
	}
	if cs := h.counts("hero"); total(cs) != 1 {
		t.Errorf("counts %+v: one person is one unit", cs)
	}
	// The user's conversion on another device is the anonymous unit's.
	h.deliver(h.ev(signals.TypeConversion, "phone-1", user, 20))
	if c := h.counts("hero")[anon.Variant]; c.Conversions != 1 || c.Revenue != 2000 {
		t.Errorf("%s after the user's conversion: %+v", anon.Variant, c)
	}
}

func TestStickyAcrossWeightChanges(t *testing.T) {
	h := newHarness(t)
	h.put(heroJSON)
	const n = 2000
	first := make([]string, n)
	for i := range n {
		first[i] = h.serve(offers(fmt.Sprint("old-", i))).Variant
	}
	h.clock.Add(time.Hour)
	if _, _, err := h.e.PutJSON(ctx, "hero", []byte(strings.Replace(strings.Replace(heroJSON, `"weight":0.5}`, `"weight":0.1}`, 1), `"weight":0.5,`, `"weight":0.9,`, 1))); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if d := h.serve(offers(fmt.Sprint("old-", i))); d.Variant != first[i] || d.First() {
			t.Fatalf("visitor %d moved from %s to %+v after the weights changed", i, first[i], d)
		}
	}
	b := 0
	for i := range n {
		if h.serve(offers(fmt.Sprint("new-", i))).Variant == "B" {
			b++
		}
	}
	if share := float64(b) / n; math.Abs(share-0.9) > 0.03 {
		t.Errorf("new visitors' share of B %.3f, want 0.9", share)
	}
	// The SRM check expects the weights each exposure had: no mismatch.
	r, err := h.e.Results(ctx, "hero", experiments.ResultsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Report.SRMFlag || float64(r.Report.SRMPValue) < 0.001 {
		t.Errorf("SRM flagged (p = %v) after a weight change", r.Report.SRMPValue)
	}
	if es := r.Counts[0].ExpectedShare; math.Abs(es-0.3) > 1e-9 { // (0.5 + 0.1)/2
		t.Errorf("A's expected share %v, want 0.3", es)
	}
}

func TestExposeFailureUndoesTheAssignment(t *testing.T) {
	h := newHarness(t)
	h.put(heroJSON)
	h.pubErr = fmt.Errorf("broker down: %w", signals.ErrUnavailable)
	d, ok, err := h.e.Decide(ctx, offers("v1"))
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if err := h.e.Expose(ctx, d); !errors.Is(err, signals.ErrUnavailable) {
		t.Fatalf("Expose: %v, want the publisher's error", err)
	}
	h.pubErr = nil
	if d := h.serve(offers("v1")); !d.First() {
		t.Errorf("after a failed exposure the next decision is not a first exposure")
	}
	if cs := h.counts("hero"); total(cs) != 1 {
		t.Errorf("counts %+v", cs)
	}
}

func TestAbandonUndoesTheAssignment(t *testing.T) {
	h := newHarness(t)
	h.put(heroJSON)
	d, _, err := h.e.Decide(ctx, offers("v1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.e.Abandon(ctx, d); err != nil {
		t.Fatal(err)
	}
	if d := h.serve(offers("v1")); !d.First() {
		t.Errorf("after an abandoned decision the next one is not a first exposure")
	}
	if err := h.e.Abandon(ctx, h.serve(offers("v1"))); err != nil { // a returning visitor: nothing to undo
		t.Fatal(err)
	}
	if cs := h.counts("hero"); total(cs) != 1 {
		t.Errorf("counts %+v", cs)
	}
	if d := h.serve(offers("v1")); d.First() {
		t.Errorf("abandoning a returning visitor's decision removed the assignment")
	}
}

func TestReactRetriesStaleUnits(t *testing.T) {
	h := newHarness(t)
	h.put(heroJSON)
	h.back.stale.Store(2) // another replica wrote twice in between
	h.serve(offers("v1"))
	if cs := h.counts("hero"); total(cs) != 1 {
		t.Errorf("counts %+v after two stale attempts", cs)
	}
}

// TestCreateAcrossReplicas: a create is atomic in the store, so a replica
// that has not reloaded yet cannot create an id another one created.
func TestCreateAcrossReplicas(t *testing.T) {
	h := newHarness(t)
	other, err := experiments.New(ctx, experiments.Config{Now: h.clock.Now}, experiments.Deps{Backend: h.back, Publisher: h, Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	side := strings.Replace(heroJSON, `"slot":"hero"`, `"slot":"side"`, 1)
	if _, created, err := h.e.PutJSON(ctx, "", []byte(heroJSON)); err != nil || !created {
		t.Fatalf("create: %v, created %v", err, created)
	}
	if _, _, err := other.PutJSON(ctx, "", []byte(side)); !errors.Is(err, experiments.ErrConflict) {
		t.Errorf("create of the same id on another replica: %v, want ErrConflict", err)
	}
	// A PUT on the other replica replaces the stored definition, checked
	// against it (not against its own, stale, snapshot): created false.
	if _, created, err := other.PutJSON(ctx, "hero", []byte(heroJSON)); err != nil || created {
		t.Errorf("replace on another replica: %v, created %v", err, created)
	}
	if _, _, err := other.PutJSON(ctx, "hero", []byte(side)); !errors.Is(err, experiments.ErrConflict) {
		t.Errorf("target change of a started experiment on another replica: %v, want ErrConflict", err)
	}
}

func TestConflicts(t *testing.T) {
	h := newHarness(t)
	h.put(heroJSON)
	for name, body := range map[string]string{
		"same slot":              strings.Replace(heroJSON, `"id":"hero"`, `"id":"hero2"`, 1),
		"later start, open stop": strings.Replace(heroJSON, `"id":"hero"`, `"id":"hero2","start":"2026-12-01T00:00:00Z"`, 1),
	} {
		if _, _, err := h.e.PutJSON(ctx, "", []byte(body)); !errors.Is(err, experiments.ErrConflict) {
			t.Errorf("%s: %v, want ErrConflict", name, err)
		}
	}
	if _, _, err := h.e.PutJSON(ctx, "", []byte(heroJSON)); !errors.Is(err, experiments.ErrConflict) || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("create of an existing id: %v, want ErrConflict", err)
	}
	// Another slot, and the same slot after this one stops, are fine.
	h.put(strings.Replace(strings.Replace(heroJSON, `"id":"hero"`, `"id":"side"`, 1), `"slot":"hero"`, `"slot":"side"`, 1))
	stopped := strings.Replace(heroJSON, `"attribution_window":"1h"`, `"attribution_window":"1h","stop":"2026-11-30T00:00:00Z"`, 1)
	h.put(stopped)
	h.put(strings.Replace(heroJSON, `"id":"hero"`, `"id":"hero2","start":"2026-11-30T00:00:00Z"`, 1))
	// A started experiment keeps its variants, salt, target and window.
	for name, body := range map[string]string{
		"variant offer": strings.Replace(heroJSON, `"offer":"o2"`, `"offer":"o3"`, 1),
		"variant name":  strings.Replace(heroJSON, `"name":"B"`, `"name":"C"`, 1),
		"window":        strings.Replace(heroJSON, `"1h"`, `"2h"`, 1),
		"salt":          strings.Replace(heroJSON, `"id":"hero"`, `"id":"hero","salt":"other"`, 1),
		"start moved":   strings.Replace(stopped, `"id":"hero"`, `"id":"hero","start":"2026-01-01T00:00:00Z"`, 1),
		"reopened":      heroJSON, // without the stop that has passed
	} {
		if _, _, err := h.e.PutJSON(ctx, "hero", []byte(body)); !errors.Is(err, experiments.ErrConflict) {
			t.Errorf("%s: %v, want ErrConflict", name, err)
		}
	}
	if _, created, err := h.e.PutJSON(ctx, "hero", []byte(strings.Replace(stopped, `"weight":0.5}`, `"weight":0.2}`, 1))); err != nil || created {
		t.Errorf("weight change: %v, created %v", err, created)
	}
	if err := h.e.Delete(ctx, "nope"); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("delete unknown: %v", err)
	}
	if _, err := h.e.Get("side"); err != nil {
		t.Error(err)
	}
	if got := len(h.e.List()); got != 3 {
		t.Errorf("List has %d experiments, want 3", got)
	}
}

// TestResultsAreAnalyze: the results' report is abtest.Analyze of the
// results' input, which holds the stored counts.
func TestResultsAreAnalyze(t *testing.T) {
	h := newHarness(t)
	h.put(heroJSON)
	err := h.store.UpdateExperimentUnits(ctx, experiments.Update{Counts: []experiments.CountDelta{
		{Exp: "hero", Variant: "A", Counts: experiments.Counts{N: 1000, Expected: 500_000_000, Conversions: 100, Clicks: 300}},
		{Exp: "hero", Variant: "B", Counts: experiments.Counts{N: 1000, Expected: 500_000_000, Conversions: 120, Clicks: 310}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := h.e.Results(ctx, "hero", experiments.ResultsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want, err := abtest.Analyze(abtest.Input{Metric: abtest.Conversion, Variants: []abtest.Variant{
		{Name: "A", Weight: 0.5, Users: 1000, Conversions: 100}, {Name: "B", Weight: 0.5, Users: 1000, Conversions: 120}}})
	if err != nil {
		t.Fatal(err)
	}
	gotJS, _ := json.Marshal(r.Report)
	wantJS, _ := json.Marshal(want)
	if string(gotJS) != string(wantJS) {
		t.Errorf("report\n got %s\nwant %s", gotJS, wantJS)
	}
	if r.Verdict != want.Verdict || !strings.HasPrefix(r.Verdict, "no clear difference between B and A on conversion: +20.0 %") {
		t.Errorf("verdict %q", r.Verdict)
	}
	b := r.Report.Variants[1]
	t.Logf("B: rate %.3f [%.3f, %.3f], lift %.3f [%.3f, %.3f], p %.4f, always-valid p %.4f, chance to win %.4f, loss %.5f, SRM p %v",
		b.Rate, b.WilsonLow, b.WilsonHigh, b.Lift, b.LiftLow, b.LiftHigh, b.PValue, b.AlwaysValidPValue, b.ChanceToWin, b.ExpectedLoss, r.Report.SRMPValue)
}

func TestHistoryAndGuardrails(t *testing.T) {
	h := newHarness(t)
	h.put(`{"id":"g","target":{"surface":"offers","slot":"hero"},"metric":"ctr",
	 "guardrails":[{"metric":"revenue","max_drop":0.05},{"metric":"conversion"}],
	 "variants":[{"name":"A"},{"name":"B","offer":"o2"}]}`)
	add := func(a, b experiments.Counts) {
		t.Helper()
		if err := h.store.UpdateExperimentUnits(ctx, experiments.Update{Counts: []experiments.CountDelta{
			{Exp: "g", Variant: "A", Counts: a}, {Exp: "g", Variant: "B", Counts: b}}}); err != nil {
			t.Fatal(err)
		}
	}
	// Per step: 1000 units per arm; B clicks more (30 % vs 20 %) but
	// sells much less (revenue 10 per converter, 10 % vs 5 %).
	step := func(clicks, conv int64) experiments.Counts {
		return experiments.Counts{N: 1000, Expected: 500_000_000, Clicks: clicks, Conversions: conv, Revenue: conv * 1000,
			RevenueSq: [4]int64{conv * 1000 * 1000}}
	}
	for i := range 4 {
		add(step(200, 100), step(300, 50))
		if err := h.e.TakeLook(ctx, "g", t0.Add(time.Duration(i)*15*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	add(step(200, 100), step(300, 50))
	h.clock.Add(time.Hour)
	r, err := h.e.Results(ctx, "g", experiments.ResultsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.History) != 5 || !r.History[4].At.Equal(h.clock.Now()) || !r.History[0].At.Equal(t0) {
		t.Fatalf("history of %d points", len(r.History))
	}
	prev := math.Inf(1)
	for i, p := range r.History {
		b := p.Variants[1]
		if p.Variants[0].HistoryComparison != nil || b.HistoryComparison == nil || b.Units != int64(1000*(i+1)) {
			t.Fatalf("point %d: %+v", i, p)
		}
		avp := float64(b.AlwaysValidPValue)
		if avp > prev || avp > float64(b.SeqPValue) {
			t.Errorf("point %d: always-valid p %v after %v (seq p %v): want the running minimum", i, avp, prev, b.SeqPValue)
		}
		prev = avp
	}
	last := r.History[4].Variants[1]
	rep := r.Report.Variants[1]
	if last.AlwaysValidPValue != rep.AlwaysValidPValue || last.Lift != rep.Lift || last.SeqLow != rep.SeqLow || last.LiftLow != rep.LiftLow {
		t.Errorf("last history point %+v differs from the report %+v", last.HistoryComparison, rep.Comparison)
	}
	if r.Report.Metric != "ctr" || !strings.HasPrefix(r.Verdict, "B beats A on ctr: +50.0 %") {
		t.Errorf("verdict %q", r.Verdict)
	}
	if len(r.Guardrails) != 2 || r.Guardrails[0].Status != experiments.GuardrailFail || r.Guardrails[1].Status != experiments.GuardrailFail {
		t.Errorf("guardrails %+v", r.Guardrails)
	}
	if !strings.HasSuffix(r.Verdict, " / SRM: none / guardrails: revenue fail (B), conversion fail (B)") {
		t.Errorf("verdict %q", r.Verdict)
	}
	t.Logf("verdict: %s", r.Verdict)
	// Without history.
	r, err = h.e.Results(ctx, "g", experiments.ResultsOptions{NoHistory: true})
	if err != nil || r.History != nil || r.Input.History != nil {
		t.Errorf("NoHistory: %v, %d points", err, len(r.History))
	}
}

func TestPromotionVariants(t *testing.T) {
	h := newHarness(t)
	h.put(`{"id":"push","target":{"surface":"promotions","rule":"exit"},
	 "variants":[{"name":"control"},{"name":"other","offer":"o9"},{"name":"none","holdout":true}]}`)
	defer run(t, h)()
	got := map[string]int{}
	const n = 300
	for i := range n {
		off := h.e.PromotionOffer(ctx, fmt.Sprint("v", i), "", "exit", "o1")
		got[off]++
	}
	if h.e.PromotionOffer(ctx, "v0", "", "other-rule", "o1") != "o1" {
		t.Errorf("a rule without experiment got another offer")
	}
	if len(got) != 3 || got["o1"] < 70 || got["o9"] < 70 || got[""] < 70 {
		t.Errorf("offers pushed %v, want o1 (control), o9 and nothing (holdout) about a third each", got)
	}
	waitFor(t, "the queued exposures to be published and counted", func() bool { return total(h.counts("push")) == n })
	cs := h.counts("push")
	if cs["control"].N != int64(got["o1"]) || cs["other"].N != int64(got["o9"]) || cs["none"].N != int64(got[""]) {
		t.Errorf("counts %+v, pushed %v", cs, got)
	}
	// A state key of a known user is the user.
	h.e.PromotionOffer(ctx, engine.UserKey("alice"), "", "exit", "o1")
	waitFor(t, "the user's exposure", func() bool { return total(h.counts("push")) == n+1 })
	if us, _ := h.store.ExperimentUnits(ctx, []experiments.UnitKey{{Exp: "push", Key: "u:alice"}}); us[0].Variant == "" {
		t.Errorf("no unit u:alice")
	}
}

// The engine implements engine/promo's hook.
var _ promo.Experiments = (*experiments.Engine)(nil)

func TestForgetVisitor(t *testing.T) {
	h := newHarness(t)
	h.put(heroJSON)
	h.serve(offers("v1"))
	if err := h.e.ForgetVisitor(ctx, "v1"); err != nil {
		t.Fatal(err)
	}
	as, _ := h.store.SubjectAssignments(ctx, "hero", []string{"a:v1"})
	us, _ := h.store.ExperimentUnits(ctx, []experiments.UnitKey{{Exp: "hero", Key: "a:v1"}})
	if as[0].Variant != "" || us[0].Exists() || total(h.counts("hero")) != 1 {
		t.Errorf("after forget: %+v %+v %+v", as, us, h.counts("hero"))
	}
}

// run runs the engine's Run loop until the returned stop is called.
func run(t *testing.T, h *harness) (stop func()) {
	t.Helper()
	c, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- h.e.Run(c) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// rng returns a seeded generator.
func rng(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 42)) }

// equalCounts compares counts after normalisation.
func equalCounts(a, b map[string]experiments.Counts) bool {
	norm := func(m map[string]experiments.Counts) map[string]experiments.Counts {
		out := map[string]experiments.Counts{}
		for k, c := range m {
			c.Normalize()
			if !c.IsZero() {
				out[k] = c
			}
		}
		return out
	}
	return reflect.DeepEqual(norm(a), norm(b))
}

// TestHistoryLiftNeverBelowMinus100: with small arms the confidence
// sequence of the difference reaches far below −m_A; the lift's sequence
// (and fixed-horizon interval) stop at −100 %, where a lift of
// non-negative outcomes ends.
func TestHistoryLiftNeverBelowMinus100(t *testing.T) {
	in := abtest.Input{Metric: abtest.Conversion, Variants: []abtest.Variant{
		{Name: "A", Weight: 0.5, Users: 12, Conversions: 2},
		{Name: "B", Weight: 0.5, Users: 11, Conversions: 3},
	}}
	h := experiments.History(in)
	c := h[len(h)-1].Variants[1].HistoryComparison
	if float64(c.SeqLow)/(2.0/12) >= -1 {
		t.Fatalf("the difference's sequence low %v does not reach below −m_A: the case tests nothing", c.SeqLow)
	}
	if c.SeqLiftLow != -1 || !(float64(c.LiftLow) > -1) {
		t.Fatalf("lift bounds: sequence low %v (want −1), interval low %v (want > −1)", c.SeqLiftLow, c.LiftLow)
	}
}
