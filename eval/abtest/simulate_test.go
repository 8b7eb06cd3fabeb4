package abtest

import (
	"context"
	"errors"
	"testing"
)

func TestSimulatePeeking(t *testing.T) {
	// A/A with 50 looks: the sequential test's false-positive rate stays at
	// or below α (within 2 Monte Carlo SE) while the naive repeated z test's
	// is far above it; the single fixed-horizon look is at α.
	aa, err := SimulatePeeking(context.Background(), PeekingConfig{
		Experiments: 1000, Horizon: 5000, PeekEvery: 100, BaseRate: 0.1, Alpha: 0.05, Tuning: 5000, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("A/A: %+v", aa)
	if aa.Looks != 50 {
		t.Errorf("looks = %d, want 50", aa.Looks)
	}
	if aa.SequentialRejectRate > 0.05+2*aa.RateStdErr {
		t.Errorf("sequential false-positive rate %.3f", aa.SequentialRejectRate)
	}
	if aa.NaiveRejectRate < 0.15 {
		t.Errorf("naive false-positive rate %.3f, want far above 5 %%", aa.NaiveRejectRate)
	}
	if d := aa.FixedHorizonRejectRate - 0.05; d > 3*aa.RateStdErr || d < -3*aa.RateStdErr {
		t.Errorf("fixed-horizon false-positive rate %.3f, want 0.05 ± 3 SE", aa.FixedHorizonRejectRate)
	}

	// A real +30 % lift is detected early and often.
	ab, err := SimulatePeeking(context.Background(), PeekingConfig{
		Experiments: 300, Horizon: 20000, PeekEvery: 200, BaseRate: 0.1, Lift: 0.3, Alpha: 0.05, Tuning: 5000, Seed: 6})
	if err != nil {
		t.Fatal(err)
	}
	if ab.SequentialRejectRate < 0.9 || ab.SequentialMeanStop > 12000 {
		t.Errorf("A/B: power %.3f, mean stop %.0f", ab.SequentialRejectRate, ab.SequentialMeanStop)
	}

	// Reproducible.
	again, _ := SimulatePeeking(context.Background(), ab.PeekingConfig)
	if again != ab {
		t.Errorf("not reproducible: %+v vs %+v", again, ab)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := SimulatePeeking(ctx, ab.PeekingConfig); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err = %v", err)
	}
	if _, err := SimulatePeeking(context.Background(), PeekingConfig{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("zero config: err = %v", err)
	}
}

func TestSimulateBandit(t *testing.T) {
	cfg := BanditConfig{Runs: 30, Visitors: 5000, Rates: []float64{0.10, 0.12, 0.08}, UpdateEvery: 100, Floor: 0.01, Seed: 8}
	r, err := SimulateBandit(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("bandit: %+v", r)
	// Fixed uniform split: expected regret 5000·(0.02 + 0 + 0.04)/3 = 100.
	if d := r.FixedRegret - 100; d > 4*r.FixedRegretSE+1 || d < -4*r.FixedRegretSE-1 {
		t.Errorf("fixed regret %.1f ± %.1f, want 100", r.FixedRegret, r.FixedRegretSE)
	}
	if !(r.ThompsonRegret < r.FixedRegret/2) || !(r.ThompsonBestShare > 0.6) {
		t.Errorf("Thompson regret %.1f (best share %.2f) vs fixed %.1f", r.ThompsonRegret, r.ThompsonBestShare, r.FixedRegret)
	}
	if _, err := SimulateBandit(context.Background(), BanditConfig{Runs: 1, Visitors: 10, Rates: []float64{0.1}, UpdateEvery: 1}); !errors.Is(err, ErrInvalid) {
		t.Errorf("one arm: err = %v", err)
	}
}
