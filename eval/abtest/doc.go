// Package abtest is the statistics of Kairos A/B experiments: the manual
// analysts read to know exactly what `kairos eval abtest` and the results
// endpoint (GET /v1/experiments/{id}/results) report. Both call Analyze;
// every statistic is also an exported pure function.
//
// The conventions are those of the established tools, so any number can be
// checked against them: R (prop.test, t.test, chisq.test, p.adjust),
// statsmodels, scipy and GrowthBook. The tests state, beside each expected
// value, the tool call that produced it and the tolerance
// (testdata/reference.R, testdata/reference_scipy.py,
// testdata/beta_reference.py regenerate them).
//
// # Input
//
// One experiment is an Input: the metric (conversion or revenue), α
// (default 0.05), the sequential tuning parameter N* (default 5,000), the
// Thompson floor f (default 0.01) and the variants' cumulative counts, the
// first variant being the control A:
//
//	{"metric":"conversion","alpha":0.05,"tuning":5000,"variants":[
//	  {"name":"A","weight":0.5,"users":1000,"conversions":100},
//	  {"name":"B","weight":0.5,"users":1000,"conversions":120}]}
//
// For revenue, sum and sum_squares are Σx and Σx² of revenue per user over
// all users (zeros included). Optional "history" holds earlier cumulative
// snapshots ({"variants":[…]}, oldest first) for the always-valid p-value.
// Validation reports every problem at once, each naming its field
// ("variants[1].conversions: 1200 > users 1000") and wrapping ErrInvalid.
//
// # Per-arm summaries
//
// Each arm has n units, a mean m and a per-unit variance V:
//
//	conversion: m = x/n,  V = m(1 − m)
//	revenue:    m = Σx/n, V = (Σx² − (Σx)²/n)/(n − 1)
//
// Below, a subscript A is the control, B the variant compared with it, and
// z = z₁₋α/₂ is the exact normal quantile (1.959963984540054 for α = 0.05,
// not 1.96).
//
// # Fixed-horizon tests and intervals
//
// Two proportions (conversion): pooled-variance z (score) test, two-sided,
// no continuity correction; z² is R's prop.test(correct = FALSE) statistic:
//
//	p̂ = (x_A + x_B)/(n_A + n_B),  z = (m_B − m_A)/√(p̂(1 − p̂)(1/n_A + 1/n_B)),  p = 2Φ(−|z|)
//
// Means (revenue): Welch's t test with Welch–Satterthwaite degrees of
// freedom (R's t.test default):
//
//	t = (m_B − m_A)/√(V_A/n_A + V_B/n_B)
//	df = (V_A/n_A + V_B/n_B)² / ((V_A/n_A)²/(n_A − 1) + (V_B/n_B)²/(n_B − 1)),  p = 2P(T_df > |t|)
//
// Absolute difference B − A: unpooled Wald interval
// m_B − m_A ± c·√(V_A/n_A + V_B/n_B), with c = z for conversion and
// c = t₁₋α/₂,df (Welch df) for revenue, so that the revenue interval is R's
// t.test interval.
//
// Relative lift (m_B − m_A)/|m_A| with the log-ratio (Katz) interval of
// R = m_B/m_A for positive means, minus 1 — the Wald interval of the risk
// ratio on the log scale, which never goes below −100 % (the delta-method
// interval on the linear scale did, for small arms):
//
//	Var(log R) = V_B/(n_B·m_B²) + V_A/(n_A·m_A²),  [R·e^(−c·√Var) − 1, R·e^(c·√Var) − 1]
//
// (a negative mean falls back to the delta method; see RelativeLift).
//
// Per-arm conversion rate: Wilson score interval, no continuity correction,
// clipped to [0, 1] (R's prop.test(x, n, correct = FALSE)$conf.int):
//
//	(p̂ + z²/2n ± z·√(p̂(1 − p̂)/n + z²/4n²)) / (1 + z²/n)
//
// Several variants: each is compared with the control, and the p-values
// are Holm-adjusted (p_value_holm; R's p.adjust(p, "holm")).
//
// # Sequential testing (peeking allowed)
//
// A fixed-horizon p-value is only valid if the experiment is looked at
// once. The results endpoint is looked at continually, so Kairos also
// reports the asymptotic normal-mixture confidence sequence of Howard et
// al. (2021) and Waudby-Smith et al. (2023) — the mSPRT of Johari et al.
// (2017) — in GrowthBook's parametrisation. With n = n_A + n_B units in the
// two arms compared, d = m_B − m_A and v = V_A/n_A + V_B/n_B:
//
//	ρ² = (−2 ln α + ln(1 − 2 ln α))/N*
//	seq interval: d ± √(v·n)·√(2(nρ² + 1)/(n²ρ²)·ln(√(nρ² + 1)/α))
//	ln Λ = −½ ln(nρ² + 1) + nρ²d²/(2v(nρ² + 1)),  seq_p_value = min(1, 1/Λ)
//
// The interval contains the true difference at every look simultaneously
// with probability ≥ 1 − α, and seq_p_value < α exactly when it excludes
// 0. N* is the total sample size at which the interval is tightest; the
// result is valid for any N*. always_valid_p_value is the minimum of
// seq_p_value over the looks in History and the current one: stop the
// experiment the first time it falls below α. `kairos bench abtest`
// measures it (2,000 A/A experiments of 10,000 visitors, a look every 100:
// the sequential false-positive rate is 2.0 %, the naive repeated z test's
// 38 %).
//
// # Bayesian results
//
// Conversion posteriors are Beta(1 + x, 1 + n − x) (uniform prior);
// revenue posteriors are N(m, V/n) (flat prior, large sample; a point
// mass when V = 0, e.g. before the first sale). For each variant:
//
//	chance_to_win = P(m_B > m_A)          (control: P(control is best of all arms))
//	expected_loss = E[max(m_A − m_B, 0)]  (metric units lost if B is shipped and is worse)
//	chance_to_be_best = P(arm is best of all arms)
//
// These are exact, not Monte Carlo: for normal posteriors by closed form
// (Φ(d/s) and s·φ(d/s) − d·Φ(−d/s), s = √(σ_A² + σ_B²)), for Beta
// posteriors by quadrature — composite 20-point Gauss–Legendre panels ½σ
// wide around every arm out to 40σ, each density normalised by its own
// quadrature sum and each CDF obtained by integrating the interpolant of
// the density (incomplete-beta routines lose accuracy beyond ~10⁵
// conversions). The tests agree with Evan Miller's closed form evaluated at
// 50 digits to ~1e-14, up to a million users per arm.
//
// # Thompson allocation (bandit weights)
//
// bandit_weight is the Thompson-sampling allocation w_i = P(arm i is best |
// data), computed exactly for up to 4 arms and by Monte Carlo beyond
// (MonteCarloDraws = 200,000 seeded draws; Input.Seed), then floored so that
// no arm starves:
//
//	w'_i = f + (1 − k·f)·w_i,  uniform 1/k when k·f ≥ 1.
//
// # Sample-ratio mismatch
//
// Pearson's chi-square goodness of fit of users per arm to the configured
// weights, normalised over the arms with weight > 0 (arms of weight 0 are
// dropped with their users); df = active arms − 1; p = 1 when fewer than two
// arms are active or they have no users. When no weight is configured at
// all, an equal split is assumed. srm_flag is p < 0.001 (SRMThreshold): the
// assignment is broken and no other number should be trusted.
//
// # Undefined values
//
// The report never contains NaN or Inf. An undefined statistic is null in
// JSON (Num holds NaN in Go) and Report.Notes says why:
//
//   - an arm with 0 users: its rate, mean, Wilson interval and every
//     comparison with it are null; conversion posteriors fall back to the
//     Beta(1, 1) prior, so chance_to_win is still defined;
//   - both arms at 0 % or both at 100 %: the pooled variance is 0, z and
//     p_value are null; diff is 0 and its intervals (Wald, lift, sequential)
//     are null because their standard error is 0;
//   - control mean 0: lift is null (diff is still reported);
//   - revenue with fewer than 2 users in an arm: t, df, p_value and the
//     intervals are null, the Bayesian statistics are null and the bandit
//     weights uniform; revenue with no variance anywhere (no sales yet):
//     t, df and p_value are null, chance_to_win is ½ for equal point masses;
//   - Holm leaves undefined p-values out of the count of tests.
//
// # Verdict
//
// Verdict (also Report.Verdict) phrases the result for people:
//
//	B beats A on conversion: +12.0 % [+5.8 %, +18.6 %], chance to win > 99.9 %; keep running: no / SRM: none
//
// A variant beats (or loses to) the control when its always-valid p-value,
// Holm-adjusted across variants, is below α; otherwise "no clear
// difference" and keep running. The bracket is the log-ratio lift
// interval. A flagged SRM is stated as a reason to distrust the result.
//
// # Off-policy evaluation
//
// From a log of served decisions (propensity μ of the logging policy,
// reward r, probability π the target policy gives the same action), with
// w = π/μ: IPS = (1/n)·Σ w·r (unbiased when μ > 0 wherever π > 0) and
// self-normalised SNIPS = Σ w·r / Σ w (lower variance, slightly biased).
// OffPolicy accumulates a stream and also reports the IPS standard error
// and Kish's effective sample size (Σw)²/Σw². `kairos eval offpolicy`
// reads {"propensity":p,"reward":r,"target":q} lines on stdin.
//
// # Simulations
//
// SimulatePeeking and SimulateBandit back `kairos bench abtest`: A/A and
// A/B experiments looked at every 100 visitors (false-positive rate, power
// and stopping time of the sequential test against the naive repeated z
// test), and Thompson sampling against a fixed split (regret).
//
// # Dependencies
//
// abtest is a leaf: it imports the standard library and gonum, never
// another Kairos package (TestLeaf), so that engine/experiments runs the
// same statistics on live experiments as `kairos eval abtest` offline.
//
// # References
//
// Newcombe (1998), Two-sided confidence intervals for the single
// proportion, Stat. Med. 17:857. Howard, Ramdas, McAuliffe, Sekhon (2021),
// Time-uniform, nonparametric, nonasymptotic confidence sequences, Ann.
// Statist. 49:1055. Waudby-Smith, Arbour, Sinha, Kennedy, Ramdas (2023),
// Time-uniform central limit theory and asymptotic confidence sequences,
// arXiv:2103.06476. Johari, Koomen, Pekelis, Walsh (2017), Peeking at A/B
// tests, KDD. Holm (1979), A simple sequentially rejective multiple test
// procedure, Scand. J. Statist. 6:65. Evan Miller (2015), Formulas for
// Bayesian A/B testing.
package abtest
