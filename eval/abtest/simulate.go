package abtest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
)

// PeekingConfig configures SimulatePeeking.
type PeekingConfig struct {
	// Experiments is the number of simulated experiments.
	Experiments int `json:"experiments"`
	// Horizon is the number of visitors per experiment (both arms); each
	// visitor is assigned to A or B with probability ½.
	Horizon int `json:"horizon"`
	// PeekEvery is the number of visitors between two looks.
	PeekEvery int `json:"peek_every"`
	// BaseRate is A's conversion rate; B's is BaseRate·(1 + Lift).
	BaseRate float64 `json:"base_rate"`
	// Lift is B's true relative lift; 0 simulates A/A experiments.
	Lift float64 `json:"lift"`
	// Alpha and Tuning are the tests' α and N*.
	Alpha  float64 `json:"alpha"`
	Tuning float64 `json:"tuning"`
	// Seed makes the simulation reproducible; experiment e draws from
	// PCG(Seed, e).
	Seed uint64 `json:"seed"`
}

// PeekingResult is the outcome of SimulatePeeking. A "rejection" is a look
// at which the test's p-value fell below α: under A/A every rejection is a
// false positive, under a real lift it is a detection (power).
type PeekingResult struct {
	PeekingConfig
	Looks int `json:"looks"`
	// SequentialRejectRate is the share of experiments in which the
	// sequential p-value (equivalently the always-valid p-value) fell below
	// α at some look.
	SequentialRejectRate float64 `json:"sequential_reject_rate"`
	// NaiveRejectRate is the same for the fixed-horizon z test applied at
	// every look (the peeking mistake).
	NaiveRejectRate float64 `json:"naive_reject_rate"`
	// FixedHorizonRejectRate is the z test looked at once, at the horizon.
	FixedHorizonRejectRate float64 `json:"fixed_horizon_reject_rate"`
	// RateStdErr is the Monte Carlo standard error of a rate near 5 %,
	// √(0.05·0.95/Experiments).
	RateStdErr float64 `json:"rate_std_err"`
	// SequentialMeanStop is the mean number of visitors when the sequential
	// test stopped the experiment (the horizon for those it never stopped);
	// SequentialMeanStopRejected averages over the stopped ones only.
	SequentialMeanStop         float64 `json:"sequential_mean_stop"`
	SequentialMeanStopRejected Num     `json:"sequential_mean_stop_rejected"`
}

func (c PeekingConfig) validate() error {
	var errs []error
	if c.Experiments <= 0 {
		errs = append(errs, fieldErr("experiments", "%d <= 0", c.Experiments))
	}
	if c.Horizon <= 0 {
		errs = append(errs, fieldErr("horizon", "%d <= 0", c.Horizon))
	}
	if c.PeekEvery <= 0 || c.PeekEvery > c.Horizon {
		errs = append(errs, fieldErr("peek_every", "%d not in [1, horizon]", c.PeekEvery))
	}
	if !(c.BaseRate > 0 && c.BaseRate < 1) || !(c.BaseRate*(1+c.Lift) > 0 && c.BaseRate*(1+c.Lift) < 1) {
		errs = append(errs, fieldErr("base_rate", "rates %v and %v must be in (0, 1)", c.BaseRate, c.BaseRate*(1+c.Lift)))
	}
	if !(c.Alpha > 0 && c.Alpha < 1) {
		errs = append(errs, fieldErr("alpha", "%v not in (0, 1)", c.Alpha))
	}
	if !(c.Tuning > 0) {
		errs = append(errs, fieldErr("tuning", "%v <= 0", c.Tuning))
	}
	return errors.Join(errs...)
}

// threshold converts a probability to a 53-bit integer threshold.
func threshold(p float64) uint64 { return uint64(p * (1 << 53)) }

// SimulatePeeking runs cfg.Experiments two-arm conversion experiments,
// looking every cfg.PeekEvery visitors with both the sequential test
// (SequentialTest) and the naive fixed-horizon z test (TwoProportionZTest),
// and reports how often each rejected and when the sequential test stopped.
// It returns ctx.Err() if ctx is cancelled.
func SimulatePeeking(ctx context.Context, cfg PeekingConfig) (PeekingResult, error) {
	if err := cfg.validate(); err != nil {
		return PeekingResult{}, fmt.Errorf("abtest: simulate peeking: %w", err)
	}
	thA, thB := threshold(cfg.BaseRate), threshold(cfg.BaseRate*(1+cfg.Lift))
	const low53 = 1<<53 - 1
	var seqRej, naiveRej, fixedRej int
	var stopSum, stopRejSum float64
	for e := range cfg.Experiments {
		if e%64 == 0 {
			if err := ctx.Err(); err != nil {
				return PeekingResult{}, err
			}
		}
		rng := rand.New(rand.NewPCG(cfg.Seed, uint64(e)))
		var nA, xA, nB, xB int64
		seqStop, naive := 0, false
		for v := 1; v <= cfg.Horizon; v++ {
			u := rng.Uint64()
			if u>>63 == 0 {
				nA++
				if u&low53 < thA {
					xA++
				}
			} else {
				nB++
				if u&low53 < thB {
					xB++
				}
			}
			if v%cfg.PeekEvery != 0 && v != cfg.Horizon {
				continue
			}
			if _, p := TwoProportionZTest(xA, nA, xB, nB); p < cfg.Alpha {
				naive = true
				if v == cfg.Horizon {
					fixedRej++
				}
			}
			if seqStop == 0 {
				a, b := ProportionSummary(xA, nA), ProportionSummary(xB, nB)
				if a.N > 0 && b.N > 0 {
					p := SequentialP(b.Mean-a.Mean, a.Var/a.N+b.Var/b.N, a.N+b.N, cfg.Alpha, cfg.Tuning)
					if p < cfg.Alpha {
						seqStop = v
					}
				}
			}
		}
		if naive {
			naiveRej++
		}
		if seqStop > 0 {
			seqRej++
			stopSum += float64(seqStop)
			stopRejSum += float64(seqStop)
		} else {
			stopSum += float64(cfg.Horizon)
		}
	}
	n := float64(cfg.Experiments)
	res := PeekingResult{
		PeekingConfig:              cfg,
		Looks:                      (cfg.Horizon + cfg.PeekEvery - 1) / cfg.PeekEvery,
		SequentialRejectRate:       float64(seqRej) / n,
		NaiveRejectRate:            float64(naiveRej) / n,
		FixedHorizonRejectRate:     float64(fixedRej) / n,
		RateStdErr:                 math.Sqrt(0.05 * 0.95 / n),
		SequentialMeanStop:         stopSum / n,
		SequentialMeanStopRejected: undefined,
	}
	if seqRej > 0 {
		res.SequentialMeanStopRejected = Num(stopRejSum / float64(seqRej))
	}
	return res, nil
}

// BanditConfig configures SimulateBandit.
type BanditConfig struct {
	// Runs is the number of independent simulated runs.
	Runs int `json:"runs"`
	// Visitors is the number of visitors per run.
	Visitors int `json:"visitors"`
	// Rates are the arms' true conversion rates (2 to ExactArms arms).
	Rates []float64 `json:"rates"`
	// UpdateEvery is the number of visitors between two re-weightings.
	UpdateEvery int `json:"update_every"`
	// Floor is the Thompson weight floor (ApplyFloor).
	Floor float64 `json:"floor"`
	// Seed makes the simulation reproducible; run r draws from PCG(Seed, r).
	Seed uint64 `json:"seed"`
}

// BanditResult is the outcome of SimulateBandit. Regret is the expected
// (pseudo-)regret Σ_t (p* − p_{a_t}) over a run's visitors: conversions lost
// against always showing the best arm.
type BanditResult struct {
	BanditConfig
	ThompsonRegret   float64 `json:"thompson_regret"`
	ThompsonRegretSE float64 `json:"thompson_regret_se"`
	FixedRegret      float64 `json:"fixed_regret"`
	FixedRegretSE    float64 `json:"fixed_regret_se"`
	// ThompsonBestShare and FixedBestShare are the mean shares of visitors
	// sent to the best arm.
	ThompsonBestShare float64 `json:"thompson_best_share"`
	FixedBestShare    float64 `json:"fixed_best_share"`
}

func (c BanditConfig) validate() error {
	var errs []error
	if c.Runs <= 0 {
		errs = append(errs, fieldErr("runs", "%d <= 0", c.Runs))
	}
	if c.Visitors <= 0 {
		errs = append(errs, fieldErr("visitors", "%d <= 0", c.Visitors))
	}
	if len(c.Rates) < 2 || len(c.Rates) > ExactArms {
		errs = append(errs, fieldErr("rates", "%d arms, want 2 to %d", len(c.Rates), ExactArms))
	}
	for i, r := range c.Rates {
		if !(r >= 0 && r <= 1) {
			errs = append(errs, fieldErr(fmt.Sprintf("rates[%d]", i), "%v not in [0, 1]", r))
		}
	}
	if c.UpdateEvery <= 0 {
		errs = append(errs, fieldErr("update_every", "%d <= 0", c.UpdateEvery))
	}
	if !(c.Floor >= 0 && c.Floor < 1) {
		errs = append(errs, fieldErr("floor", "%v not in [0, 1)", c.Floor))
	}
	return errors.Join(errs...)
}

// SimulateBandit compares Thompson-sampling allocation (ThompsonWeights
// recomputed every cfg.UpdateEvery visitors, with cfg.Floor) against a fixed
// uniform split on arms with known conversion rates, averaging regret over
// cfg.Runs seeded runs. It returns ctx.Err() if ctx is cancelled.
func SimulateBandit(ctx context.Context, cfg BanditConfig) (BanditResult, error) {
	if err := cfg.validate(); err != nil {
		return BanditResult{}, fmt.Errorf("abtest: simulate bandit: %w", err)
	}
	k := len(cfg.Rates)
	best, bestArm := math.Inf(-1), 0
	ths := make([]uint64, k)
	for i, r := range cfg.Rates {
		ths[i] = threshold(r)
		if r > best {
			best, bestArm = r, i
		}
	}
	var tSum, tSum2, fSum, fSum2, tShare, fShare float64
	users := make([]int64, k)
	convs := make([]int64, k)
	posts := make([]Posterior, k)
	w := make([]float64, k)
	cum := make([]float64, k)
	for run := range cfg.Runs {
		if err := ctx.Err(); err != nil {
			return BanditResult{}, err
		}
		rng := rand.New(rand.NewPCG(cfg.Seed, uint64(run)))
		clear(users)
		clear(convs)
		var tRegret, fRegret float64
		var tBest, fBest int
		for v := range cfg.Visitors {
			if v%cfg.UpdateEvery == 0 {
				for i := range posts {
					posts[i] = BetaPosterior(convs[i], users[i])
				}
				ThompsonWeights(w, posts, cfg.Floor, cfg.Seed)
				c := 0.0
				for i, x := range w {
					c += x
					cum[i] = c
				}
			}
			// Thompson arm.
			u := rng.Float64() * cum[k-1]
			a := 0
			for a < k-1 && u >= cum[a] {
				a++
			}
			users[a]++
			if rng.Uint64()>>11 < ths[a] {
				convs[a]++
			}
			tRegret += best - cfg.Rates[a]
			if a == bestArm {
				tBest++
			}
			// Fixed uniform arm (its outcome does not matter for regret).
			f := rng.IntN(k)
			fRegret += best - cfg.Rates[f]
			if f == bestArm {
				fBest++
			}
		}
		tSum += tRegret
		tSum2 += tRegret * tRegret
		fSum += fRegret
		fSum2 += fRegret * fRegret
		tShare += float64(tBest) / float64(cfg.Visitors)
		fShare += float64(fBest) / float64(cfg.Visitors)
	}
	n := float64(cfg.Runs)
	se := func(s, s2 float64) float64 {
		if cfg.Runs < 2 {
			return math.NaN()
		}
		m := s / n
		return math.Sqrt(max(0, (s2-n*m*m)/(n-1)) / n)
	}
	return BanditResult{
		BanditConfig:      cfg,
		ThompsonRegret:    tSum / n,
		ThompsonRegretSE:  se(tSum, tSum2),
		FixedRegret:       fSum / n,
		FixedRegretSE:     se(fSum, fSum2),
		ThompsonBestShare: tShare / n,
		FixedBestShare:    fShare / n,
	}, nil
}
