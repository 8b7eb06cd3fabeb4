# Reference values for package abtest from statsmodels and scipy.
# Run: /usr/bin/python3 testdata/reference_scipy.py
# (Debian bookworm: scipy 1.10.1, statsmodels 0.13.5, numpy 1.24.2, mpmath 1.3)
import math
import numpy as np
import scipy.stats as st
from statsmodels.stats.proportion import proportions_ztest, proportion_confint, confint_proportions_2indep
from statsmodels.stats.multitest import multipletests
import mpmath as mp

print("## proportions_ztest([xB, xA], [nB, nA]) (pooled, two-sided): z, p")
for xA, nA, xB, nB in [(100, 1000, 120, 1000), (45, 500, 70, 520)]:
    z, p = proportions_ztest([xB, xA], [nB, nA])
    print("%r %r %r" % ((xA, nA, xB, nB), float(z), float(p)))
print("## confint_proportions_2indep(xB, nB, xA, nA, method='wald', compare='diff')")
for xA, nA, xB, nB in [(100, 1000, 120, 1000), (45, 500, 70, 520)]:
    print(repr(confint_proportions_2indep(xB, nB, xA, nA, method="wald", compare="diff")))
print("## proportion_confint(x, n, alpha, method='wilson')")
for x, n, a in [(81, 263, 0.05), (0, 20, 0.05), (100, 1000, 0.1)]:
    print(repr(proportion_confint(x, n, alpha=a, method="wilson")))
print("## ttest_ind_from_stats(mB, sdB, nB, mA, sdA, nA, equal_var=False), df by Welch-Satterthwaite")
# revenue arms given as sums: n, sum, sum of squares
for (nA, sA, qA), (nB, sB, qB) in [((20000, 61234.5, 2.5e6), (19876, 63001.25, 2.61e6))]:
    mA, mB = sA / nA, sB / nB
    vA, vB = (qA - sA * sA / nA) / (nA - 1), (qB - sB * sB / nB) / (nB - 1)
    r = st.ttest_ind_from_stats(mB, math.sqrt(vB), nB, mA, math.sqrt(vA), nA, equal_var=False)
    a, b = vA / nA, vB / nB
    df = (a + b) ** 2 / (a * a / (nA - 1) + b * b / (nB - 1))
    print("t=%r p=%r df=%r tcrit=%r" % (float(r.statistic), float(r.pvalue), df, float(st.t.ppf(0.975, df))))
print("## scipy.stats.chisquare(obs, f_exp)")
print(repr(st.chisquare([5050, 2400, 2550], f_exp=[5000, 2500, 2500])))
print("## multipletests(p, method='holm')[1]")
print(repr(multipletests([0.01, 0.04, 0.03, 0.005], method="holm")[1]))
print("## normal chance to beat control: norm.cdf(d / s); expected loss s*pdf(d/s) - d*cdf(-d/s)")
for (mA, sA), (mB, sB) in [((3.06, 0.011), (3.17, 0.012)), ((10.0, 0.5), (9.5, 0.3))]:
    d, s = mB - mA, math.hypot(sA, sB)
    print("%r %r" % (float(st.norm.cdf(d / s)), float(s * st.norm.pdf(d / s) - d * st.norm.cdf(-d / s))))

print("## sequential (GrowthBook gbstats SequentialTwoSidedTTest equations, transcribed in mpmath, 40 digits)")
mp.mp.dps = 40


def seq(d, v, n, alpha, tuning):
    d, v, n, alpha = mp.mpf(d), mp.mpf(v), mp.mpf(n), mp.mpf(alpha)
    rho2 = (-2 * mp.log(alpha) + mp.log(-2 * mp.log(alpha) + 1)) / tuning
    half = mp.sqrt(v * n) * mp.sqrt(2 * (n * rho2 + 1) / (n * n * rho2) * mp.log(mp.sqrt(n * rho2 + 1) / alpha))
    lam = mp.exp(-mp.log(n * rho2 + 1) / 2 + n * rho2 * d * d / (2 * v * (n * rho2 + 1)))
    return d - half, d + half, min(mp.mpf(1), 1 / lam)


for xA, nA, xB, nB, alpha, tuning in [(1000, 10000, 1120, 10000, 0.05, 5000), (100, 1000, 120, 1000, 0.05, 5000),
                                      (1000, 10000, 1120, 10000, 0.1, 20000), (480, 5000, 530, 5100, 0.05, 5000)]:
    pA, pB = mp.mpf(xA) / nA, mp.mpf(xB) / nB
    v = pA * (1 - pA) / nA + pB * (1 - pB) / nB
    print([mp.nstr(x, 20) for x in seq(pB - pA, v, nA + nB, alpha, tuning)])
