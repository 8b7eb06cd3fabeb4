package promo_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine/promo"
	"github.com/kairoshq/kairos/engine/promo/promotest"
	"github.com/kairoshq/kairos/engine/storage"
	"github.com/kairoshq/kairos/engine/storage/backendtest"
)

// TestBackendStoreContract runs the contract suite, and its persistence
// part, on the store written on the primitives, on every backend
// (in-memory, embedded, Redis).
func TestBackendStoreContract(t *testing.T) {
	for _, k := range backendtest.Kinds() {
		t.Run(k.Name, func(t *testing.T) {
			promotest.Run(t, func(t *testing.T) promo.Store { return promo.NewStore(k.Open(t)) })
			promotest.RunPersistence(t, func(t *testing.T) func(t *testing.T) promotest.Closer {
				open := k.New(t)
				return func(t *testing.T) promotest.Closer {
					b := open(t)
					return closer{promo.NewStore(b), b}
				}
			})
		})
	}
}

type closer struct {
	*promo.BackendStore
	b backendtest.Closer
}

func (c closer) Close() error { return c.b.Close() }

// benchStores runs fn on the store written on the primitives,
// per backend.
func benchStores(b *testing.B, fn func(b *testing.B, s promo.Store)) {
	backendtest.Bench(b, func(b *testing.B, be storage.Backend) { fn(b, promo.NewStore(be)) })
}

// BenchmarkStoreAddOfferCounts measures AddOfferCounts of one batch's
// changes: counters of 5 offers, their k = 64 factor deltas, and 20 cap
// increments of 20 visitors (the windows running after the first round).
func BenchmarkStoreAddOfferCounts(b *testing.B) {
	c := promo.Counts{Stats: map[string]promo.OfferStats{}, Factors: map[string][]float32{}, Now: time.Now()}
	for o := range 5 {
		id := "o" + strconv.Itoa(o)
		c.Stats[id] = promo.OfferStats{Impressions: 4, Clicks: 1}
		f := make([]float32, 64)
		for i := range f {
			f[i] = float32(i+1) * 0.001
		}
		c.Factors[id] = f
	}
	for v := range 20 {
		c.Caps = append(c.Caps, promo.CapIncrement{Visitor: "v" + strconv.Itoa(v), Offer: "o" + strconv.Itoa(v%5), Period: 24 * time.Hour})
	}
	benchStores(b, func(b *testing.B, s promo.Store) {
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if err := s.AddOfferCounts(ctx, c); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkStoreOfferCaps measures reading one visitor's cap windows of
// 10 offers (RankOffers does it per request).
func BenchmarkStoreOfferCaps(b *testing.B) {
	offers := make([]string, 10)
	var caps []promo.CapIncrement
	for i := range offers {
		offers[i] = "o" + strconv.Itoa(i)
		caps = append(caps, promo.CapIncrement{Visitor: "v", Offer: offers[i], Period: time.Hour})
	}
	benchStores(b, func(b *testing.B, s promo.Store) {
		ctx := context.Background()
		now := time.Now()
		if err := s.AddOfferCounts(ctx, promo.Counts{Caps: caps, Now: now}); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.OfferCaps(ctx, "v", offers, now); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkStoreRuleCooldown measures TryRuleCooldown of a rule whose
// cooldown runs (the common case: a rule that matched recently) and of
// one that starts.
func BenchmarkStoreRuleCooldown(b *testing.B) {
	benchStores(b, func(b *testing.B, s promo.Store) {
		ctx := context.Background()
		now := time.Now()
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			// Every other call starts the cooldown of a new visitor; the
			// others find it running.
			if _, _, err := s.TryRuleCooldown(ctx, "v"+strconv.Itoa(i/2), "r", now, time.Hour); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

// BenchmarkStoreAppendPromotion measures logging one promotion (keep 50).
func BenchmarkStoreAppendPromotion(b *testing.B) {
	benchStores(b, func(b *testing.B, s promo.Store) {
		ctx := context.Background()
		p := promo.Promotion{Visitor: "v", Offer: promo.OfferView{ID: "o1", Title: "10% off", Link: "https://shop.example/sale"},
			Slot: "exit", Token: "tok", Rule: "r1", Created: time.Now(), Expires: time.Now().Add(10 * time.Minute)}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.AppendPromotion(ctx, p, 50, time.Hour); err != nil {
				b.Fatal(err)
			}
		}
	})
}
