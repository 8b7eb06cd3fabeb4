package promo_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/promo"
	"github.com/kairoshq/kairos/engine/promo/promotest"
	"github.com/kairoshq/kairos/signals"
)

// ruleMix returns n rules of realistic shapes (count windows, categories,
// not-conversion, dwell, scroll, exit, affinity, any/all), over offer o0.
func ruleMix(n int) []string {
	shapes := []string{
		`{"all":[{"count":{"type":"view","category":"cat%d","within":"10m","min":3}},{"not":{"count":{"type":"conversion","within":"all"}}},{"exit":{}}]}`,
		`{"dwell":{"element":"offer:o%d","min_ms":2000}}`,
		`{"all":[{"scroll":{"min":75,"page":"/article/%d"}},{"session":{"min_events":5}}]}`,
		`{"any":[{"count":{"type":"add_to_cart","item":"sku-%d","within":"1h"}},{"count":{"type":"click","min":4,"within":"5m"}}]}`,
		`{"all":[{"affinity":{"offer":"o0","min":%d.5}},{"count":{"type":"view","min":2}}]}`,
	}
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf(shapes[i%len(shapes)], i+10)
	}
	return out
}

// BenchmarkReact measures React for one visitor with a 50-event history
// and one fresh event, against 10 and 100 active rules (none of which
// matches: the per-event cost every batch pays). ns/op is per event.
func BenchmarkReact(b *testing.B) {
	for _, nRules := range []int{10, 100} {
		b.Run(fmt.Sprintf("rules=%d", nRules), func(b *testing.B) {
			const kk = 64
			model := &fakeModel{factors: map[string][]float32{}, items: map[string]engine.Item{}}
			rng := rand.New(rand.NewPCG(1, 2))
			for i := range 200 {
				id := fmt.Sprintf("sku-%d", i)
				y := make([]float32, kk)
				for f := range y {
					y[f] = float32(rng.NormFloat64() * 0.1)
				}
				model.factors[id] = y
				model.items[id] = engine.Item{ID: id, Category: fmt.Sprintf("cat%d", i%20), Active: true}
			}
			e, err := promo.New(context.Background(), promo.Config{Factors: kk, Seed: 1}, promo.Deps{Store: promotest.NewMem(), Profiles: &fakeVisitors{m: map[string][]float32{}}, Model: model})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			if _, _, err := e.PutJSON(ctx, promo.KindOffer, "", []byte(`{"id":"o0","slot":"s","items":["sku-1","sku-2"]}`)); err != nil {
				b.Fatal(err)
			}
			for i, w := range ruleMix(nRules) {
				if _, _, err := e.PutJSON(ctx, promo.KindRule, "", fmt.Appendf(nil, `{"id":"r%d","when":%s,"then":{"offer":"o0"}}`, i, w)); err != nil {
					b.Fatal(err)
				}
			}
			now := time.Now()
			hist := make([]engine.HistoryEvent, 50)
			types := []signals.Type{signals.TypeView, signals.TypeView, signals.TypeDwell, signals.TypeScroll, signals.TypeClick}
			for i := range hist {
				hist[i] = engine.HistoryEvent{ID: fmt.Sprint(i), Type: types[i%len(types)], Item: fmt.Sprintf("sku-%d", i*7%200),
					Page: "https://shop.example/p/" + fmt.Sprint(i), Value: 40, Time: now.Add(time.Duration(i-50) * 20 * time.Second)}
			}
			x := make([]float32, kk)
			for f := range x {
				x[f] = float32(rng.NormFloat64() * 0.1)
			}
			fresh := []signals.Event{{ID: "49", Type: hist[49].Type, Visitor: "v", Item: hist[49].Item, Time: signals.Timestamp{Time: hist[49].Time}}}
			changes := []engine.VisitorChange{{
				Visitor: engine.Visitor{ID: "v", Factors: x, History: hist,
					Session: engine.Session{Start: hist[20].Time, Last: hist[49].Time, Events: 30}},
				Fresh: fresh,
			}}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				e.React(ctx, changes)
			}
		})
	}
}

// BenchmarkRankOffers measures RankOffers over 100 eligible offers of one
// slot (k = 64, items with factors, click statistics), n = 5, with the
// in-memory store: the CPU cost of ranking, sampling and signing.
func BenchmarkRankOffers(b *testing.B) {
	const kk, nOffers = 64, 100
	model := &fakeModel{factors: map[string][]float32{}, items: map[string]engine.Item{}}
	rng := rand.New(rand.NewPCG(3, 4))
	vec := func() []float32 {
		y := make([]float32, kk)
		for f := range y {
			y[f] = float32(rng.NormFloat64() * 0.1)
		}
		return y
	}
	store := promotest.NewMem()
	c := promo.Counts{Now: time.Now(), Stats: map[string]promo.OfferStats{}}
	for i := range nOffers {
		model.factors[fmt.Sprintf("sku-%d", i)] = vec()
		c.Stats[fmt.Sprintf("o%d", i)] = promo.OfferStats{Impressions: int64(100 + i*10), Clicks: int64(i)}
	}
	if err := store.AddOfferCounts(context.Background(), c); err != nil {
		b.Fatal(err)
	}
	vis := &fakeVisitors{m: map[string][]float32{"v": vec()}}
	e, err := promo.New(context.Background(), promo.Config{Factors: kk, Seed: 1}, promo.Deps{Store: store, Profiles: vis, Model: model})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for i := range nOffers {
		body := fmt.Appendf(nil, `{"id":"o%d","slot":"hero","title":"Offer %d","items":["sku-%d","sku-%d"]}`, i, i, i, (i+1)%nOffers)
		if _, _, err := e.PutJSON(ctx, promo.KindOffer, "", body); err != nil {
			b.Fatal(err)
		}
	}
	req := promo.OfferRequest{Visitor: "v", Slot: "hero", N: 5}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := e.RankOffers(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}
