package abtest

import (
	"math"
)

// Decision is one decision served by a logging policy and its outcome, for
// off-policy evaluation of another (target) policy.
type Decision struct {
	// Propensity is μ(a|x), the probability with which the logging policy
	// chose the served action, in (0, 1].
	Propensity float64 `json:"propensity"`
	// Reward is the observed reward (1 for a conversion, revenue, …).
	Reward float64 `json:"reward"`
	// Target is π(a|x), the probability that the target policy would have
	// chosen the same action in the same context, in [0, 1].
	Target float64 `json:"target"`
}

// Validate reports the first invalid field of d, wrapping ErrInvalid.
func (d Decision) Validate() error {
	switch {
	case !(d.Propensity > 0 && d.Propensity <= 1):
		return fieldErr("propensity", "%v not in (0, 1]", d.Propensity)
	case !(d.Target >= 0 && d.Target <= 1):
		return fieldErr("target", "%v not in [0, 1]", d.Target)
	case math.IsNaN(d.Reward) || math.IsInf(d.Reward, 0):
		return fieldErr("reward", "%v is not a finite number", d.Reward)
	}
	return nil
}

// IPS is the inverse-propensity-score (Horvitz–Thompson) estimate of the
// target policy's mean reward per decision,
//
//	V̂_IPS = (1/n)·Σ w_i·r_i,  w_i = π(a_i|x_i)/μ(a_i|x_i)
//
// unbiased when every action the target policy may take had a positive
// logging propensity. NaN for an empty log.
func IPS(log []Decision) float64 {
	var o OffPolicy
	for _, d := range log {
		o.add(d)
	}
	return float64(o.Estimate().IPS)
}

// SNIPS is the self-normalised IPS estimate,
//
//	V̂_SNIPS = Σ w_i·r_i / Σ w_i
//
// slightly biased but with much lower variance than IPS when weights are
// large, and always within the range of the rewards. NaN when Σ w_i = 0.
func SNIPS(log []Decision) float64 {
	var o OffPolicy
	for _, d := range log {
		o.add(d)
	}
	return float64(o.Estimate().SNIPS)
}

// OffPolicy accumulates a log of decisions one at a time (for streams too
// large to hold) and estimates the target policy's value. The zero value is
// ready to use.
type OffPolicy struct {
	n                          int
	sumW, sumW2, sumWR, sumWR2 float64
}

// Add validates d and adds it to the estimate.
func (o *OffPolicy) Add(d Decision) error {
	if err := d.Validate(); err != nil {
		return err
	}
	o.add(d)
	return nil
}

func (o *OffPolicy) add(d Decision) {
	w := d.Target / d.Propensity
	o.n++
	o.sumW += w
	o.sumW2 += w * w
	o.sumWR += w * d.Reward
	o.sumWR2 += w * d.Reward * w * d.Reward
}

// OffPolicyEstimate is the result of an off-policy evaluation.
type OffPolicyEstimate struct {
	// N is the number of logged decisions.
	N int `json:"n"`
	// IPS and SNIPS are the two estimates of the target policy's mean reward.
	IPS   Num `json:"ips"`
	SNIPS Num `json:"snips"`
	// IPSStdErr is the standard error of IPS, √(s²/n) with s² the sample
	// variance of w·r (null for n < 2).
	IPSStdErr Num `json:"ips_se"`
	// ESS is Kish's effective sample size (Σw)²/Σw²: far below N means a
	// few large weights dominate and both estimates are unreliable.
	ESS Num `json:"ess"`
}

// Estimate returns the estimates for the decisions added so far.
func (o *OffPolicy) Estimate() OffPolicyEstimate {
	e := OffPolicyEstimate{N: o.n, IPS: undefined, SNIPS: undefined, IPSStdErr: undefined, ESS: undefined}
	if o.n == 0 {
		return e
	}
	n := float64(o.n)
	e.IPS = Num(o.sumWR / n)
	if o.sumW > 0 {
		e.SNIPS = Num(o.sumWR / o.sumW)
		e.ESS = Num(o.sumW * o.sumW / o.sumW2)
	}
	if o.n >= 2 {
		v := max(0, (o.sumWR2-o.sumWR*o.sumWR/n)/(n-1))
		e.IPSStdErr = Num(math.Sqrt(v / n))
	}
	return e
}
