# Reference values for the Bayesian statistics of package abtest.
# Run: python3 testdata/beta_reference.py   (needs mpmath; 50 significant digits)
#
# P(p_B > p_A) for independent Beta posteriors uses Evan Miller's closed form
# ("Formulas for Bayesian A/B testing", 2015):
#   P = sum_{i=0}^{aB-1} B(aA+i, bA+bB) / ((bB+i) B(1+i, bB) B(aA, bA))
# Expected loss of shipping B, E[max(pA - pB, 0)], uses the size-biased
# identity E[pA 1{pA>pB}] = E[pA] P(Beta(aA+1,bA) > Beta(aB,bB)).
# P(arm i best) for 3-4 arms is mpmath.quad of f_i * prod_j F_j, with F_j from
# mpmath.betainc (exact at these sizes).
import sys
import mpmath as mp

mp.mp.dps = 50


def p_b_beats_a(aA, bA, aB, bB):
    lbA = mp.log(mp.beta(aA, bA))
    s = mp.mpf(0)
    for i in range(int(aB)):
        s += mp.exp(mp.log(mp.beta(aA + i, bA + bB)) - mp.log(bB + i)
                    - mp.log(mp.beta(1 + i, bB)) - lbA)
    return s


def counts(xA, nA, xB, nB):
    return 1 + xA, 1 + nA - xA, 1 + xB, 1 + nB - xB


def loss_b(aA, bA, aB, bB):
    mA, mB = mp.mpf(aA) / (aA + bA), mp.mpf(aB) / (aB + bB)
    return mA * (1 - p_b_beats_a(aA + 1, bA, aB, bB)) - mB * (1 - p_b_beats_a(aA, bA, aB + 1, bB))


def p_best(params):
    out = []
    for i, (a, b) in enumerate(params):
        def f(x, a=a, b=b, i=i):
            v = x**(a - 1) * (1 - x)**(b - 1) / mp.beta(a, b)
            for j, (c, d) in enumerate(params):
                if j != i:
                    v *= mp.betainc(c, d, 0, x, regularized=True)
            return v
        pts = sorted(set([mp.mpf(0), mp.mpf(1)] + [mp.mpf(a) / (a + b) for a, b in params]))
        out.append(mp.quad(f, pts))
    return out


pairs = [
    (100, 1000, 120, 1000),
    (0, 0, 0, 0),
    (0, 10, 1, 10),
    (5, 50, 50, 50),
    (1000, 10000, 1100, 10000),
    (10, 100, 1200, 10000),
    (10000, 100000, 10200, 100000),
    (0, 1000, 0, 1000),
    (1000, 1000, 999, 1000),
]
if len(sys.argv) > 1 and sys.argv[1] == "big":
    pairs = [(100000, 1000000, 100500, 1000000)]
for xA, nA, xB, nB in pairs:
    a = counts(xA, nA, xB, nB)
    print("{%d, %d, %d, %d, %s, %s}," % (xA, nA, xB, nB,
          mp.nstr(p_b_beats_a(*a), 20), mp.nstr(loss_b(*a), 20)))
if len(sys.argv) == 1:
    for arms in [[(100, 1000), (120, 1000), (110, 1000)],
                 [(30, 300), (36, 300), (33, 280), (25, 310)],
                 [(0, 0), (1, 3), (0, 5)]]:
        params = [(1 + x, 1 + n - x) for x, n in arms]
        print(arms, [mp.nstr(v, 20) for v in p_best(params)])
