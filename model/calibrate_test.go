package model

import (
	"context"
	"testing"
)

// CalibrateIndex raises the probe count where AutoProbe falls short (many
// tight topics) until recall on its sample reaches the target, and the
// recall of other, differently drawn queries follows; where AutoProbe is
// enough it keeps it, and where it is more than enough (recall ≥ 0.98)
// it lowers it, down to half, keeping the margin on its sample and the
// target on other queries.
func TestCalibrateIndex(t *testing.T) {
	for _, tc := range []struct {
		name          string
		items, topics int
	}{
		{"many tight topics", 25_000, 400},
		{"few topics", 20_000, 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := mustOnline(t, clusteredModel(tc.items, 32, tc.topics, 5), nil)
			info := mustBuild(t, o, IVFParams{Seed: 5})
			queries := userQueries(o, tc.items, 150, 9)
			before := recallAt(t, o, queries, 10, IVFSearch{})
			c, err := o.CalibrateIndex(context.Background(), 0.95, 0, 11)
			if err != nil {
				t.Fatal(err)
			}
			after := recallAt(t, o, queries, 10, IVFSearch{})
			t.Logf("%d lists: AutoProbe %d recall %.3f (sample %.3f) → probe %d recall %.3f (sample %.3f)",
				info.Lists, AutoProbe(info.Lists), before, c.AutoRecall, c.Probe, after, c.Recall)
			if c.Recall < 0.95 && c.Probe < info.Lists {
				t.Fatalf("calibration stopped at probe %d with sample recall %.3f < 0.95", c.Probe, c.Recall)
			}
			auto := AutoProbe(info.Lists)
			switch {
			case c.AutoRecall >= 0.98: // a margin: fewer lists, keeping it
				if c.Probe > auto || c.Probe < auto/2 || c.Recall < 0.98 {
					t.Fatalf("AutoProbe reached %.3f: probe %d with sample recall %.3f, want in [%d, %d] with >= 0.98", c.AutoRecall, c.Probe, c.Recall, auto/2, auto)
				}
				if after < 0.95 {
					t.Fatalf("recall of other queries %.3f after calibrating down to %d lists (before %.3f), want >= 0.95", after, c.Probe, before)
				}
			case c.AutoRecall >= 0.95:
				if c.Probe != auto {
					t.Fatalf("AutoProbe reached %.3f, yet the probe count moved to %d", c.AutoRecall, c.Probe)
				}
			default:
				if after < 0.93 || after+0.005 < before {
					t.Fatalf("recall of other queries %.3f after calibration (before %.3f), want >= 0.93 and no worse", after, before)
				}
			}
		})
	}
	o := mustOnline(t, clusteredModel(100, 8, 3, 1), nil)
	if _, err := o.CalibrateIndex(context.Background(), 0.95, 0, 1); err == nil {
		t.Fatal("calibrated without an index")
	}
}
