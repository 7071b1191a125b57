#!/usr/bin/env python3
"""Fits the coefficients of rnnc_tanhf (Sources/CKernels/include/rnnc_kernels.h).

tanh(x) ~ x P(x^2) / Q(x^2) on [0, 9], P and Q of degree 4, Q(0) = 1. The fit is linear
least squares on x P(s) - tanh(x) Q(s), each row divided by tanh(x) so that the residual
is the relative error, then reweighted by |error|^0.3 for 200 rounds (Lawson's method),
which moves the least-squares solution toward the one with the smallest maximum error.
In float the roundings of P, Q, the product and the division add up to 5 ulp, more than
the fit's own error, so the round kept is the one whose coefficients, rounded to float,
give the smallest error in float arithmetic as the kernel evaluates it (each multiply-add
rounded once, as an FMA does), measured in ulp of tanh on 400,000 points of [0, 9.5].
Prints that error, the fit's error in exact arithmetic and the coefficients to 9
significant digits, as the header has them. Needs numpy only; deterministic.
"""
import numpy as np
from numpy.polynomial import polynomial as poly


def to_float(coefficients):
    """Rounded as the header's 9-digit literals are."""
    return np.array([np.float32(f"{c:.9g}") for c in coefficients], dtype=np.float32)


def fma(a, b, c):
    """a * b + c rounded once to float (float32 * float32 is exact in float64)."""
    return (a.astype(np.float64) * b.astype(np.float64) + c.astype(np.float64)).astype(np.float32)


GRID = np.linspace(0, 9.5, 400001).astype(np.float32)


def float_ulps(p, q):
    """Largest error of rnnc_tanhf with these coefficients over GRID, in ulp of tanh."""
    x = np.minimum(GRID, np.float32(9))
    s = x * x
    pv, qv = np.full_like(s, p[-1]), np.full_like(s, q[-1])
    for c in p[-2::-1]:
        pv = fma(pv, s, np.full_like(s, c))
    for c in q[-2::-1]:
        qv = fma(qv, s, np.full_like(s, c))
    t = (x * pv) / qv
    t[t > np.float32(0.99999988)] = np.float32(1)  # as the kernel rounds its last float below 1
    exact = np.tanh(GRID.astype(np.float64))
    ulp = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    ulp[exact == 0] = np.float64(np.finfo(np.float32).smallest_subnormal)
    return float((np.abs(t.astype(np.float64) - exact) / ulp).max())


def fit(p_degree=4, q_degree=4, limit=9.0, rounds=200):
    x = np.concatenate([np.linspace(1e-3, limit, 100001), np.geomspace(1e-7, 1e-3, 200)])
    x.sort()
    f = np.tanh(x)
    s = x * x
    a = np.concatenate([np.stack([x * s**k for k in range(p_degree + 1)], 1),
                        np.stack([-f * s**k for k in range(1, q_degree + 1)], 1)], 1)
    w = np.ones_like(x)
    best = (np.inf, None, None, None)
    for _ in range(rounds):
        sol, *_ = np.linalg.lstsq(a * (w / f)[:, None], w, rcond=None)
        p, q = sol[:p_degree + 1], np.concatenate([[1.0], sol[p_degree + 1:]])
        err = (x * poly.polyval(s, p) / poly.polyval(s, q) - f) / f
        p32, q32 = to_float(p), to_float(q)
        ulps = float_ulps(p32, q32)
        if ulps < best[0]:
            best = (ulps, np.abs(err).max(), p32, q32)
        w = w * np.abs(err) ** 0.3
        w = np.maximum(w / w.max(), 1e-12)
    return best


def main():
    ulps, worst, p, q = fit()
    print(f"max error in float: {ulps:.2f} ulp; max relative error in exact arithmetic: {worst:.3g}")
    print("p:", ", ".join(f"{c:.9g}" for c in p))
    print("q:", ", ".join(f"{c:.9g}" for c in q[1:]))


if __name__ == "__main__":
    main()
