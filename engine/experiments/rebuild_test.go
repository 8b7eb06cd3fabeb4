package experiments_test

import (
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine/experiments"
	"github.com/kairoshq/kairos/eval/abtest"
	"github.com/kairoshq/kairos/signals"
)

// scanOf replays events as an archive scan does.
func scanOf(evs []signals.Event) func(func(signals.Event) error) error {
	return func(fn func(signals.Event) error) error {
		for _, ev := range evs {
			if err := fn(ev); err != nil {
				return err
			}
		}
		return nil
	}
}

// TestRebuildEqualsLive simulates two experiments with anonymous and
// identified visitors, several devices, clicks, add-to-carts, conversions
// with revenue, late and early events and redeliveries, then rebuilds
// the counts from the consumed events (the archive, with duplicates as
// an at-least-once archive has them): they equal the live counts, unit
// for unit.
func TestRebuildEqualsLive(t *testing.T) {
	h := newHarness(t)
	xs := []experiments.Experiment{
		h.put(`{"id":"hero","target":{"surface":"offers","slot":"hero"},"attribution_window":"30m",
		  "variants":[{"name":"A","weight":2},{"name":"B","offer":"o2"},{"name":"C","holdout":true}]}`),
		h.put(`{"id":"recs","metric":"revenue","mode":"bandit","bandit_every":"5m","target":{"surface":"recommendations"},
		  "variants":[{"name":"A"},{"name":"T","params":{"strategy":"trending"}}]}`),
	}
	r := rng(7)
	var dups []signals.Event
	for i := range 2000 {
		h.clock.Add(time.Duration(r.IntN(20)) * time.Second)
		v := fmt.Sprint("v", r.IntN(400))
		user := ""
		if r.IntN(3) == 0 {
			user = fmt.Sprint("u", r.IntN(80)) // several devices per user
		}
		switch k := r.IntN(10); {
		case k < 3:
			h.serve(experiments.Request{Surface: experiments.SurfaceOffers, Slot: "hero", Visitor: v, User: user})
		case k < 5:
			h.serve(experiments.Request{Surface: experiments.SurfaceRecommendations, Visitor: v, User: user})
		case k < 6:
			h.deliver(h.ev(signals.TypeIdentify, v, fmt.Sprint("u", r.IntN(80)), 0))
		default:
			typ := []signals.Type{signals.TypeClick, signals.TypeAddToCart, signals.TypeConversion, signals.TypeView}[r.IntN(4)]
			ev := h.ev(typ, v, user, 0)
			if typ == signals.TypeConversion {
				ev.Value = math.Round(r.Float64()*20000) / 100
			}
			if typ == signals.TypeClick {
				if r.IntN(2) == 0 {
					ev.Offer = "o2"
				} else {
					ev.Item = "sku"
				}
			}
			if r.IntN(10) == 0 {
				ev.Time.Time = ev.Time.Add(-time.Duration(r.IntN(3600)) * time.Second) // late, or early
			}
			h.deliver(ev)
			if r.IntN(8) == 0 {
				dups = append(dups, ev)
				h.deliver(ev) // redelivered: de-duplicated by the engine
			}
		}
		if i%100 == 99 {
			if err := h.e.Reweigh(ctx, "recs", false); err != nil {
				t.Fatal(err)
			}
		}
	}
	archive := h.archive()
	// An at-least-once archive holds some events twice.
	for i, ev := range dups {
		at := min(len(archive), slices.IndexFunc(archive, func(e signals.Event) bool { return e.ID == ev.ID })+1+i%5)
		archive = slices.Insert(archive, at, ev)
	}
	relevantDups := 0
	for _, ev := range dups {
		if ev.Type != signals.TypeView || ev.User != "" {
			relevantDups++
		}
	}
	for _, x := range xs {
		live := h.counts(x.ID)
		rb, err := experiments.Rebuild(ctx, &x, h.e.Signer(), scanOf(archive))
		if err != nil {
			t.Fatal(err)
		}
		if !equalCounts(live, rb.Counts) {
			t.Errorf("%s: rebuilt %+v\n              live %+v", x.ID, rb.Counts, live)
		}
		var n, conv, clicks int64
		for _, c := range live {
			n, conv, clicks = n+c.N, conv+c.Conversions, clicks+c.Clicks
		}
		if n < 50 || conv < 5 || (x.ID == "hero" && clicks < 5) {
			t.Errorf("%s: the simulation is too thin to test anything: %+v", x.ID, live)
		}
		if rb.Duplicates != relevantDups {
			t.Errorf("%s: %d duplicates skipped, want %d", x.ID, rb.Duplicates, relevantDups)
		}
		for key, u := range rb.Units {
			got, err := h.store.ExperimentUnits(ctx, []experiments.UnitKey{{Exp: x.ID, Key: key}})
			if err != nil || !got[0].Equal(u) {
				t.Errorf("%s/%s: live unit %+v, rebuilt %+v", x.ID, key, got[0], u)
			}
		}
		t.Logf("%s: %d events, %d units, counts %+v", x.ID, rb.Events, len(rb.Units), rb.Counts)
	}
}

// TestBanditSimulation runs a three-arm bandit through the real code
// path — Decide, Expose, the exposure events consumed by React,
// conversions attributed by React, Reweigh every minute of simulated
// time — on arms converting at 4 %, 6 % and 10 %: the best arm ends with
// most of the traffic. The decision log rebuilt from the events then
// estimates, by IPS and SNIPS, the conversion rate of "always the best
// arm" close to its true 10 %.
func TestBanditSimulation(t *testing.T) {
	h := newHarness(t)
	x := h.put(`{"id":"bandit","mode":"bandit","bandit_every":"1m","floor":0.01,"attribution_window":"1h",
	  "target":{"surface":"offers","slot":"hero"},
	  "variants":[{"name":"low","offer":"o1"},{"name":"mid","offer":"o2"},{"name":"best","offer":"o3"}]}`)
	rates := map[string]float64{"low": 0.04, "mid": 0.06, "best": 0.10}
	r := rng(11)
	const n = 6000
	late := map[string]int{}
	first := map[string]string{}
	for i := range n {
		h.clock.Add(time.Second) // one visitor a second: a re-weighting every 60 visitors
		v := fmt.Sprint("v", i)
		d := h.serve(offers(v))
		first[v] = d.Variant
		if i >= n-2000 {
			late[d.Variant]++
		}
		if r.Float64() < rates[d.Variant] {
			h.deliver(h.ev(signals.TypeConversion, v, "", 0))
		}
		if err := h.e.Reweigh(ctx, "bandit", false); err != nil {
			t.Fatal(err)
		}
	}
	cs := h.counts("bandit")
	w, err := h.store.BanditWeights(ctx, "bandit")
	if err != nil {
		t.Fatal(err)
	}
	share := float64(late["best"]) / 2000
	t.Logf("units %d/%d/%d (low/mid/best), conversions %d/%d/%d; share of the best arm in the last 2,000 visitors %.3f; weights v%d %v",
		cs["low"].N, cs["mid"].N, cs["best"].N, cs["low"].Conversions, cs["mid"].Conversions, cs["best"].Conversions, share, w.Version, w.Weights)
	if cs["best"].N <= cs["mid"].N || cs["best"].N <= cs["low"].N || share < 0.6 {
		t.Errorf("the best arm did not get most of the traffic: %+v, late share %.3f", cs, share)
	}
	if w.Version < 90 {
		t.Errorf("%d re-weightings in 100 minutes, want about 100", w.Version)
	}
	for _, v := range w.Weights {
		if v < 0.01-1e-12 {
			t.Errorf("weight %v below the floor", v)
		}
	}
	// Returning visitors keep the arm they got, whatever the weights
	// became (most early visitors got low or mid at ⅓ each).
	for i := range 600 {
		v := fmt.Sprint("v", i)
		if d := h.serve(offers(v)); d.Variant != first[v] || d.First() {
			t.Fatalf("returning %s: %+v, first %s", v, d, first[v])
		}
	}
	// Off-policy: the value of "always best" from the logged decisions.
	rb, err := experiments.Rebuild(ctx, &x, h.e.Signer(), scanOf(h.archive()))
	if err != nil {
		t.Fatal(err)
	}
	var op abtest.OffPolicy
	for _, d := range rb.Decisions(&x, x.Metric, []float64{0, 0, 1}) {
		if err := op.Add(d.Decision); err != nil {
			t.Fatal(err)
		}
	}
	est := op.Estimate()
	t.Logf("off-policy value of always-best: IPS %.4f ± %.4f, SNIPS %.4f, ESS %.0f of %d", est.IPS, est.IPSStdErr, est.SNIPS, est.ESS, est.N)
	if est.N != n || math.Abs(float64(est.IPS)-0.10) > 3*float64(est.IPSStdErr) || math.Abs(float64(est.SNIPS)-0.10) > 0.03 {
		t.Errorf("off-policy estimate %+v, want about 0.10", est)
	}
}
