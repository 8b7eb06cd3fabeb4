package experiments_test

import (
	"fmt"
	"testing"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/experiments"
	"github.com/kairoshq/kairos/signals"
)

// BenchmarkDecideReturning is a returning visitor's decision over the
// in-memory store (the store's round trips come on top: two with Redis).
func BenchmarkDecideReturning(b *testing.B) {
	h := newHarness(b)
	h.put(heroJSON)
	for i := range 1000 {
		h.serve(offers(fmt.Sprint("v", i)))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, ok, err := h.e.Decide(ctx, offers(fmt.Sprint("v", i%1000))); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

// BenchmarkReact is the attribution of a batch of 256 events (clicks,
// carts, conversions) of exposed visitors, with two running experiments.
func BenchmarkReact(b *testing.B) {
	h := newHarness(b)
	h.put(heroJSON)
	h.put(`{"id":"recs","target":{"surface":"recommendations"},"metric":"revenue","variants":[{"name":"A"},{"name":"B","params":{"strategy":"trending"}}]}`)
	changes := make([]engine.VisitorChange, 256)
	types := []signals.Type{signals.TypeClick, signals.TypeAddToCart, signals.TypeConversion, signals.TypeView}
	for i := range changes {
		v := fmt.Sprint("v", i)
		h.serve(offers(v))
		h.serve(experiments.Request{Surface: experiments.SurfaceRecommendations, Visitor: v})
		ev := h.ev(types[i%4], v, "", float64(i%7))
		ev.Offer = "o2"
		changes[i] = engine.VisitorChange{Visitor: engine.Visitor{ID: v}, Fresh: []signals.Event{ev}}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		h.e.React(ctx, changes)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/256, "ns/event")
}
