package redisstore

import (
	"context"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine/promo"
	"github.com/kairoshq/kairos/engine/promo/promotest"
	"github.com/kairoshq/kairos/engine/redisstore/redistest"
)

func TestPromoContract(t *testing.T) {
	url := redistest.URL(t)
	promotest.Run(t, func(t *testing.T) promo.Store {
		s := mustOpen(t, Config{URL: url, Prefix: redistest.Prefix(t, url)})
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestPromoPersistence(t *testing.T) {
	url := redistest.URL(t)
	promotest.RunPersistence(t, func(t *testing.T) func(t *testing.T) promotest.Closer {
		prefix := redistest.Prefix(t, url)
		return func(t *testing.T) promotest.Closer {
			return mustOpen(t, Config{URL: url, Prefix: prefix})
		}
	})
}

// TestPromoKeyTTL: a visitor's promo hash and log expire (no visitor
// state is kept forever).
func TestPromoKeyTTL(t *testing.T) {
	url := redistest.URL(t)
	s := mustOpen(t, Config{URL: url, Prefix: redistest.Prefix(t, url)})
	defer s.Close()
	ctx := context.Background()
	now := time.Now()
	if err := s.AddOfferCounts(ctx, promo.Counts{Now: now, Caps: []promo.CapIncrement{{Visitor: "v", Offer: "o", Period: time.Hour}}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.TryRuleCooldown(ctx, "v", "r", now, 2*time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendPromotion(ctx, promo.Promotion{Visitor: "v", Created: now}, 5, 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]time.Duration{
		s.promoVisitorKey("v"): 2*time.Hour + promoSlack,
		s.promoLogKey("v"):     10 * time.Minute,
	} {
		ttl, err := s.rdb.PTTL(ctx, key).Result()
		if err != nil || ttl <= want-time.Minute || ttl > want {
			t.Errorf("TTL of %s = %v (%v), want about %v", key, ttl, err, want)
		}
	}
}
