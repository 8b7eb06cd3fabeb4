package embedded

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine/promo"
	"github.com/kairoshq/kairos/engine/promo/promotest"
)

func TestPromoContract(t *testing.T) {
	promotest.Run(t, func(t *testing.T) promo.Store { return mustOpen(t, t.TempDir(), testConfig()) })
}

func TestPromoPersistence(t *testing.T) {
	for _, tt := range []struct {
		name    string
		cfg     Config
		abandon bool
	}{
		{"close (snapshot)", Config{}, false},
		{"crash (log replay)", testConfig(), true},
		{"frequent compaction", Config{Sync: SyncInterval, SyncEvery: time.Millisecond, CompactBytes: 1024}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			promotest.RunPersistence(t, func(t *testing.T) func(t *testing.T) promotest.Closer {
				dir := t.TempDir()
				return func(t *testing.T) promotest.Closer {
					s := mustOpen(t, dir, tt.cfg)
					if tt.abandon {
						return abandoning{s}
					}
					return s
				}
			})
		})
	}
}

// TestPromoSnapshotPrunes: a snapshot leaves out cap windows, cooldowns
// and promotion logs that expired by the store's clock, and keeps the
// others.
func TestPromoSnapshotPrunes(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	clock := now
	cfg := testConfig()
	cfg.Now = func() time.Time { return clock }
	s := mustOpen(t, dir, cfg)
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.AddOfferCounts(ctx, promo.Counts{Now: now, Stats: map[string]promo.OfferStats{"o": {Clicks: 1}},
		Caps: []promo.CapIncrement{{Visitor: "short", Offer: "o", Period: time.Minute}, {Visitor: "long", Offer: "o", Period: 24 * time.Hour}}}))
	if _, _, err := s.TryRuleCooldown(ctx, "short", "r", now, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendPromotion(ctx, promo.Promotion{Visitor: "short", Created: now}, 5, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendPromotion(ctx, promo.Promotion{Visitor: "long", Created: now}, 5, 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	clock = now.Add(time.Hour)
	must(s.Close())
	if _, err := os.Stat(filepath.Join(dir, snapName)); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, dir, cfg)
	if _, ok := s.st.promo.visitors["short"]; ok {
		t.Errorf("the expired visitor's state was written to the snapshot")
	}
	if c, _ := s.OfferCaps(ctx, "long", []string{"o"}, clock); c[0] != 1 {
		t.Errorf("long cap after the snapshot = %v", c)
	}
	if ps, _ := s.Promotions(ctx, "long", 0, 5); len(ps) != 1 {
		t.Errorf("long log after the snapshot = %v", ps)
	}
	if oc, _ := s.OfferCounts(ctx); oc.Stats["o"].Clicks != 1 {
		t.Errorf("counters after the snapshot = %+v", oc.Stats)
	}
}
