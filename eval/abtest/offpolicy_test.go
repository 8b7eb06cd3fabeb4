package abtest

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

// offPolicyWorld is a simulated site: two contexts (new and returning
// visitors, 60/40), three offers with context-dependent conversion rates, a
// logging policy and a target policy. The true value of the target policy
// is Σ_x P(x) Σ_a π(a|x)·r(x, a).
type offPolicyWorld struct {
	px      []float64
	rate    [][]float64
	logging [][]float64
	target  [][]float64
}

var world = offPolicyWorld{
	px:      []float64{0.6, 0.4},
	rate:    [][]float64{{0.10, 0.30, 0.50}, {0.40, 0.20, 0.05}},
	logging: [][]float64{{0.5, 0.3, 0.2}, {1.0 / 3, 1.0 / 3, 1.0 / 3}},
	target:  [][]float64{{0.1, 0.2, 0.7}, {0.8, 0.2, 0}},
}

func (w offPolicyWorld) trueValue() float64 {
	v := 0.0
	for x, p := range w.px {
		for a, q := range w.target[x] {
			v += p * q * w.rate[x][a]
		}
	}
	return v
}

func pick(rng *rand.Rand, probs []float64) int {
	u, c := rng.Float64(), 0.0
	for i, p := range probs {
		c += p
		if u < c {
			return i
		}
	}
	return len(probs) - 1
}

func (w offPolicyWorld) log(n int, seed uint64) []Decision {
	rng := rand.New(rand.NewPCG(seed, 1))
	out := make([]Decision, n)
	for i := range out {
		x := pick(rng, w.px)
		a := pick(rng, w.logging[x])
		r := 0.0
		if rng.Float64() < w.rate[x][a] {
			r = 1
		}
		out[i] = Decision{Propensity: w.logging[x][a], Reward: r, Target: w.target[x][a]}
	}
	return out
}

func TestOffPolicySimulated(t *testing.T) {
	truth := world.trueValue() // 0.6·(0.01 + 0.06 + 0.35) + 0.4·(0.32 + 0.04) = 0.396
	near(t, "true value", truth, 0.396, 1e-15)
	// Over 200 seeded logs of 5,000 decisions, both estimates centre on the
	// truth (mean within 4 standard errors of the mean) and IPS's reported
	// standard error matches its spread within 15 %.
	const runs, n = 200, 5000
	var sumIPS, sumSN, sumIPS2, sumSE float64
	for s := range runs {
		var o OffPolicy
		for _, d := range world.log(n, uint64(s)) {
			if err := o.Add(d); err != nil {
				t.Fatal(err)
			}
		}
		e := o.Estimate()
		sumIPS += float64(e.IPS)
		sumIPS2 += float64(e.IPS) * float64(e.IPS)
		sumSN += float64(e.SNIPS)
		sumSE += float64(e.IPSStdErr)
		if e.N != n || !(e.ESS > 0 && float64(e.ESS) < n) {
			t.Fatalf("estimate %+v", e)
		}
	}
	meanIPS, meanSN := sumIPS/runs, sumSN/runs
	sd := math.Sqrt(sumIPS2/runs - meanIPS*meanIPS)
	if math.Abs(meanIPS-truth) > 4*sd/math.Sqrt(runs) {
		t.Errorf("mean IPS %v, truth %v (sd %v)", meanIPS, truth, sd)
	}
	if math.Abs(meanSN-truth) > 4*sd/math.Sqrt(runs) {
		t.Errorf("mean SNIPS %v, truth %v", meanSN, truth)
	}
	if se := sumSE / runs; math.Abs(se-sd)/sd > 0.15 {
		t.Errorf("reported IPS standard error %v, observed spread %v", se, sd)
	}
}

func TestOffPolicyExact(t *testing.T) {
	// A log with actions in exactly the logging proportions and rewards at
	// their means: IPS equals the true value exactly, and so does SNIPS
	// because Σw = n.
	var log []Decision
	mu, q, r := []float64{0.5, 0.3, 0.2}, []float64{0.1, 0.2, 0.7}, []float64{0.1, 0.3, 0.5}
	for a, count := range []int{50, 30, 20} {
		for range count {
			log = append(log, Decision{Propensity: mu[a], Reward: r[a], Target: q[a]})
		}
	}
	near(t, "IPS", IPS(log), 0.42, 1e-14)
	near(t, "SNIPS", SNIPS(log), 0.42, 1e-14)
	// Same policy: the weights are 1 and both are the plain mean reward.
	same := []Decision{{0.5, 1, 0.5}, {0.25, 0, 0.25}, {0.25, 2, 0.25}}
	near(t, "IPS on-policy", IPS(same), 1, 1e-15)
	near(t, "SNIPS on-policy", SNIPS(same), 1, 1e-15)
}

func TestOffPolicyEdgeCases(t *testing.T) {
	if e := (&OffPolicy{}).Estimate(); e.N != 0 || e.IPS.Valid() || e.SNIPS.Valid() {
		t.Errorf("empty log: %+v", e)
	}
	// The target never takes the logged actions: IPS 0, SNIPS undefined.
	log := []Decision{{0.5, 1, 0}, {0.5, 1, 0}}
	if ips, sn := IPS(log), SNIPS(log); ips != 0 || !math.IsNaN(sn) {
		t.Errorf("IPS %v SNIPS %v, want 0 and NaN", ips, sn)
	}
	for _, d := range []Decision{{0, 1, 0.5}, {1.5, 1, 0.5}, {0.5, 1, -0.1}, {0.5, math.NaN(), 0.5}} {
		var o OffPolicy
		if err := o.Add(d); !errors.Is(err, ErrInvalid) {
			t.Errorf("Add(%+v) = %v, want ErrInvalid", d, err)
		}
	}
	var o OffPolicy
	err := o.Add(Decision{Propensity: 0, Reward: 1, Target: 1})
	if err == nil || err.Error() != "propensity: 0 not in (0, 1]" {
		t.Errorf("error %v", err)
	}
}
